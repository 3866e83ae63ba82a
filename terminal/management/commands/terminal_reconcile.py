from asgiref.sync import async_to_sync
from django.core.management.base import BaseCommand

from terminal import services


class Command(BaseCommand):
    help = "Mark terminal sessions whose server process is gone (restart, crash) as ended."

    def handle(self, *args, **options):
        count = async_to_sync(services.sessions_reconcile)()
        self.stdout.write(f"{count} stale terminal session(s) marked ended")
