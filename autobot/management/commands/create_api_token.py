from asgiref.sync import async_to_sync
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from autobot.auth import token_create


class Command(BaseCommand):
    help = "Create an API token for USER. The token is printed alone on the last line, once."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="", help="a label to recognise the token by")
        parser.add_argument("--expires-days", type=int, default=None, help="days until it expires (0: never)")

    def handle(self, *args, username, name, expires_days, **options):
        User = get_user_model()
        try:
            user = User.objects.get(username=username)
        except User.DoesNotExist:
            raise CommandError(f"no user named {username!r}") from None
        if expires_days is not None and expires_days < 0:
            raise CommandError("--expires-days must be 0 (never) or more")
        token, raw = async_to_sync(token_create)(actor=None, user=user, name=name, expires_days=expires_days,
                                                 via="manage.py")
        expiry = f"expires {token.expires_at:%Y-%m-%d %H:%M} UTC" if token.expires_at else "never expires"
        self.stderr.write(f"Token {token.prefix}… for {username} ({expiry}). Store it now; it is not kept.")
        self.stdout.write(raw)
