"""A door's call parked behind an approval (interop/calls.py), in-process against the database:
its record and its approval stay in step however the caller or another request interleaves."""

import pytest

from autobot.models import AuditEvent
from chat.models import Approval, ChatMessage
from interop import calls
from tests.chat.test_approvals import WRITE, _cancelled_as_it_lands

pytestmark = pytest.mark.django_db(transaction=True)

TASK = "a2atask1"  # the correlation of an A2A task's calls


async def _ask(user) -> dict:
    pending = await calls.call(user=user, door="a2a", name="files_write", arguments=dict(WRITE), correlation_id=TASK)
    assert pending.status == "pending_approval"
    return pending.approval


async def _record(approval: dict) -> dict:
    message = await ChatMessage.objects.aget(pk=approval["message_id"])
    return next(call for call in message.tool_calls if call["id"] == approval["call_id"])


async def test_a_withdrawal_whose_caller_is_cancelled_as_it_lands_is_audited_and_cancels_the_record(owner):
    approval = await _ask(owner)

    await _cancelled_as_it_lands(calls.calls_withdraw(user=owner, door="a2a", correlation_id=TASK))

    assert (await Approval.objects.aget(pk=approval["id"])).status == Approval.Status.EXPIRED
    event = await AuditEvent.objects.aget(action="chat.approval_withdrawn")
    assert event.data == {"approval_ids": [approval["id"]], "reason": "the A2A task was cancelled"}
    record = await _record(approval)
    assert (record["status"], record["ok"]) == ("cancelled", False)
    assert record["output"].endswith("the A2A task was cancelled")
