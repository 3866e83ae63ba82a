from django.core.management.base import BaseCommand, CommandError

from autobot.audit import verify


class Command(BaseCommand):
    help = "Check the audit trail's hash chain; exit non-zero at the first edited, inserted or deleted row."

    def handle(self, *args, **options):
        report = verify()
        if not report.ok:
            raise CommandError(f"audit chain broken: {report.problem} ({report.checked} rows verified before it)")
        self.stdout.write(f"audit chain intact: {report.checked} rows verified")
