from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from autobot.backup import BackupError, backup_restore


class Command(BaseCommand):
    help = ("Restore a folder written by `manage.py backup` into this instance (its DATABASE_URL, "
            "AUTOBOT_FILES_ROOT and recordings folder), which must be empty unless --force. Stop the "
            "servers first; then run `manage.py verify_audit --expect-head <the head it prints>`.")

    def add_arguments(self, parser):
        parser.add_argument("src", type=Path, help="the backup folder")
        parser.add_argument("--force", action="store_true",
                            help="replace a database and files area that are not empty")

    def handle(self, *args, src: Path, force: bool, **options):
        try:
            restored = backup_restore(src, force=force)
        except (BackupError, OSError) as exc:
            raise CommandError(str(exc)) from None
        for name in restored["skipped"]:
            self.stderr.write(f"not restored (it would point or land outside its folder): {name}")
        self.stdout.write(f"restored {', '.join(restored['parts'])} from the backup of {restored['created']}")
        if restored["audit_head"]:
            self.stdout.write(f"check it: manage.py verify_audit --expect-head {restored['audit_head']}")
