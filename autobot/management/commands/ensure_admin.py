import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create the admin account if no superuser exists (password from AUTOBOT_ADMIN_PASSWORD)."

    def handle(self, *args, **options):
        User = get_user_model()
        if User.objects.filter(is_superuser=True).exists():
            return
        username = os.environ.get("AUTOBOT_ADMIN_USER", "admin")
        password = os.environ.get("AUTOBOT_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
        User.objects.create_superuser(username=username, email="", password=password)
        if os.environ.get("AUTOBOT_ADMIN_PASSWORD"):
            self.stdout.write(f"Created admin account {username!r} with the password from AUTOBOT_ADMIN_PASSWORD.")
        else:
            self.stdout.write(f"Created admin account {username!r} with password: {password}\n"
                              "It is shown only this once; change it in the admin.")
