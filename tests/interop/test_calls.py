"""A door's call parked behind an approval (interop/calls.py), in-process against the database:
its record and its approval stay in step however the caller or another request interleaves."""

import pytest

from autobot.models import AuditEvent
from chat.models import Approval, ChatMessage
from chat.operator import approvals
from interop import calls
from tests.chat.test_approvals import WRITE, run_cancelled_as_it_lands

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

    await run_cancelled_as_it_lands(calls.calls_withdraw(user=owner, door="a2a", correlation_id=TASK))

    assert (await Approval.objects.aget(pk=approval["id"])).status == Approval.Status.EXPIRED
    event = await AuditEvent.objects.aget(action="chat.approval_withdrawn")
    assert event.data == {"approval_ids": [approval["id"]], "reason": "the A2A task was cancelled"}
    record = await _record(approval)
    assert (record["status"], record["ok"]) == ("cancelled", False)
    assert record["output"].endswith("the A2A task was cancelled")


async def _withdrawn(owner, approval) -> None:
    await calls.calls_withdraw(user=owner, door="a2a", correlation_id=TASK)


async def _denied(owner, approval) -> None:
    await approvals.approval_decide(user=owner, session_id=approval.session_id, approval_id=approval.pk,
                                    decision="deny", reason="no")


@pytest.mark.parametrize(("meanwhile", "status", "output"), [
    (_withdrawn, "cancelled", "stopped before it finished: the A2A task was cancelled"),
    (_denied, "denied", "not approved (denied: no)"),
])
async def test_an_approval_ended_as_soon_as_it_exists_leaves_its_record_settled(owner, meanwhile, status, output):
    """The approval ends (its A2A task cancelled on another worker, the owner quick to deny it)
    right after the call asked. The message showing the call and the approval are stored in one
    transaction, and the message's calls are not written again afterwards from a copy the call
    holds, so the end settles the record for good."""
    approval = await _ask(owner)
    await meanwhile(owner, await Approval.objects.aget(pk=approval["id"]))

    record = await _record(approval)
    assert (record["status"], record["ok"], record["output"]) == (status, False, output)
    assert record["approval_id"] == approval["id"]


async def test_a_call_cancelled_as_its_message_is_stored_still_makes_the_approval_its_record_names(owner):
    """Cancelled the moment the message showing the call is stored (an A2A CancelTask, an MCP
    client cancelling): the approval it waits on is made all the same, audited, and named by its
    record, so it can be decided, expires and settles like any other; none waits on nothing."""
    await run_cancelled_as_it_lands(
        calls.call(user=owner, door="a2a", name="files_write", arguments=dict(WRITE), correlation_id=TASK),
        statement='INSERT INTO "chat_chatmessage"')

    approval = await Approval.objects.aget(correlation_id=TASK)
    assert approval.status == Approval.Status.PENDING
    record = await _record({"message_id": approval.message_id, "call_id": approval.call_id})
    assert (record["status"], record["approval_id"]) == ("awaiting_approval", str(approval.pk))
    requested = await AuditEvent.objects.aget(action="chat.approval_requested")
    assert requested.data["approval_id"] == str(approval.pk)
    assert (await AuditEvent.objects.aget(action="a2a.tool_call")).data["status"] == "cancelled"
