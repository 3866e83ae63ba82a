"""The operator's stop (terminal/services/typed.py line_stop) against the hook's verdicts and the
session's processes, in a real sandboxed shell."""

import pytest
from django.db.models.signals import post_save

from autobot.models import AuditEvent
from terminal import services
from terminal.hook import HookRequest
from terminal.models import CommandRecord
from terminal.services import commands
from terminal.services.live import LineStop

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]

STOPPED = "the operator stopped this line"


@pytest.fixture
async def session(terminal_user):
    return await services.session_open(user=terminal_user)


async def test_a_stop_that_lands_while_the_record_is_written_refuses_and_the_row_says_blocked(session):
    """The stop comes during the record's own database write (a post_save receiver sets it, as a
    stop landing on the loop while the write awaits would): the reply refuses, and the row and
    the audit trail say so rather than "allowed"."""
    live = services.live_session(session.pk)

    def stop_now(sender, instance, created, **kwargs):
        if created and instance.session_id == live.id:
            live.stopping = LineStop(STOPPED)

    post_save.connect(stop_now, sender=CommandRecord, weak=False)
    try:
        reply = await commands.hook_decide(
            live, HookRequest(kind="line", line="echo harmless", command="echo harmless", history_number=900))
    finally:
        post_save.disconnect(stop_now, sender=CommandRecord)
        live.stopping = None

    assert not reply.allow and STOPPED in reply.message
    row = await CommandRecord.objects.aget(session_id=live.id, command="echo harmless")
    assert row.blocked and row.reasons[0] == STOPPED
    assert live.current_record_id is None and 900 not in live.open_records
    refused = [e async for e in AuditEvent.objects.filter(action="terminal.command_blocked")]
    assert [e.data["record_id"] for e in refused] == [row.pk]


async def test_a_stop_before_the_decision_refuses_with_one_blocked_row(session):
    live = services.live_session(session.pk)
    live.stopping = LineStop(STOPPED)
    try:
        reply = await commands.hook_decide(
            live, HookRequest(kind="line", line="echo harmless", command="echo harmless", history_number=901))
    finally:
        live.stopping = None
    assert not reply.allow
    row = await CommandRecord.objects.aget(session_id=live.id, command="echo harmless")
    assert row.blocked and row.reasons[0] == STOPPED
    assert await AuditEvent.objects.filter(action="terminal.command_blocked").acount() == 1
