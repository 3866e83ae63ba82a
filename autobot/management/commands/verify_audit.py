from django.core.management.base import BaseCommand, CommandError

from autobot.audit import head_present, verify


class Command(BaseCommand):
    help = (
        "Check the audit trail's hash chain; exit non-zero at the first edited, inserted or deleted row. "
        "Prints the chain's head: keep it off the machine and pass it back with --expect-head to also "
        "catch rows cut from the end."
    )

    def add_arguments(self, parser):
        parser.add_argument("--expect-head", metavar="ID:HASH", action="append", default=[],
                            help="a head printed by an earlier run; fail if that row is gone or changed")

    def handle(self, *args, **options):
        report = verify()
        if not report.ok:
            raise CommandError(f"audit chain broken: {report.problem} ({report.checked} rows verified before it)")
        for head in options["expect_head"]:
            try:
                present = head_present(head)
            except ValueError as exc:
                raise CommandError(str(exc)) from None
            if not present:
                raise CommandError(f"audit chain truncated or rewritten: row {head.partition(':')[0]} with the "
                                   "expected hash is gone")
        self.stdout.write(f"audit chain intact: {report.checked} rows verified")
        if report.head:
            self.stdout.write(f"head: {report.head}")
