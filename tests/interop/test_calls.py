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


@pytest.mark.parametrize("door", ["mcp", "a2a"])
async def test_a_call_cancelled_as_it_asks_withdraws_its_approval_at_once(owner, api_client, door):
    """Cancelled the moment its approval is stored (an MCP client gone, an A2A CancelTask): nobody
    waits for the decision, and the client never got the approval's id. The owner is not asked:
    the approval is withdrawn at once (audited, its record settled `cancelled`), approving it is
    refused, and the call's own audit event names it."""
    reason = calls.STOP_REASONS[door]
    await run_cancelled_as_it_lands(
        calls.call(user=owner, door=door, name="files_write", arguments=dict(WRITE),
                   correlation_id=TASK if door == "a2a" else ""),
        statement='INSERT INTO "chat_approval"')

    approval = await Approval.objects.aget()
    client = api_client(owner)
    url = f"/api/chat/sessions/{approval.session_id}/approvals"
    listed = await client.get(url)
    assert listed.status_code == 200 and listed.json()["count"] == 0, listed.json()
    decided = await client.post(f"{url}/{approval.pk}", {"decision": "approve"}, content_type="application/json")
    assert decided.status_code == 409
    assert decided.json()["detail"] == f"approval {approval.pk} is already expired: {reason}"
    await approval.arefresh_from_db()
    assert (approval.status, approval.reason) == (Approval.Status.EXPIRED, reason)
    requested = await AuditEvent.objects.aget(action="chat.approval_requested")
    assert requested.data["approval_id"] == str(approval.pk)
    withdrawn = await AuditEvent.objects.aget(action="chat.approval_withdrawn")
    assert withdrawn.data == {"approval_ids": [str(approval.pk)], "reason": reason}
    record = await _record({"message_id": approval.message_id, "call_id": approval.call_id})
    assert (record["status"], record["ok"], record["approval_id"]) == ("cancelled", False, str(approval.pk))
    assert record["output"].endswith(reason)
    audited = await AuditEvent.objects.aget(action=f"{door}.tool_call")
    assert (audited.data["status"], audited.data["approval_id"]) == ("cancelled", str(approval.pk))
