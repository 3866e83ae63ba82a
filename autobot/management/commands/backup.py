from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from autobot.backup import BackupError, backup_create


class Command(BaseCommand):
    help = ("Back up the database (SQLite online backup, or pg_dump), the files area and the terminal "
            "recordings into a new folder DEST, with a manifest naming the audit chain's head.")

    def add_arguments(self, parser):
        parser.add_argument("dest", type=Path, help="a folder that does not exist yet (or is empty)")

    def handle(self, *args, dest: Path, **options):
        try:
            manifest = backup_create(dest)
        except (BackupError, OSError) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"backup written to {dest}: {', '.join(manifest['parts'])}")
        self.stdout.write(f"audit rows: {manifest['audit_rows']}, head: {manifest['audit_head'] or '-'}")
