"""A door's call cancelled while it asks for approval (interop/calls.py), on a real server with the
official A2A client: the cancel and the storing of the approval race, and whichever lands first,
the owner is left nothing to approve.

To hold the call in the middle of asking, the test locks the approvals' table (PostgreSQL
`LOCK TABLE … IN EXCLUSIVE MODE`: reads go on, writes wait): the call has stored the message
showing it and waits to store its approval until the test lets go."""

import asyncio

import httpx
import pytest
from a2a.types import CancelTaskRequest, TaskState
from asgiref.sync import sync_to_async
from django.db import connection

from autobot.models import AuditEvent
from chat.models import Approval
from tests.conftest import app_server, make_token
from tests.interop.test_a2a import connect, data_message, last_task
from tests.pglock import table_locked

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

WRITE = {"path": ".profile", "content": "export EDITOR=vim\n"}  # a dotfile: HIGH, waits for approval
REASON = "the A2A task was cancelled"


@pytest.fixture(scope="module")
def server(tmp_path_factory, django_db_blocker):
    # Four lanes rather than two: the call waiting on the lock holds one, and the cancel's own
    # database work must find a free one.
    tmp = tmp_path_factory.mktemp("asking")
    server = app_server(tmp / "var", env={"AUTOBOT_FILES_ROOT": str(tmp / "files"),
                                          "AUTOBOT_SYNC_THREADS": "4"}).start()
    yield server
    server.kill()


def _storing_an_approval() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_locks WHERE relation = 'chat_approval'::regclass AND NOT granted")
        return cursor.fetchone()[0] > 0


async def asking() -> None:
    """Until a call waits on the lock to store its approval."""
    for _ in range(600):
        if await sync_to_async(_storing_an_approval)():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("no call came to store its approval")


async def audited(action: str, correlation_id: str) -> AuditEvent:
    """The event, once written (the cancelled call's own comes last, after its clean-up)."""
    for _ in range(600):
        event = await AuditEvent.objects.filter(action=action, correlation_id=correlation_id).afirst()
        if event is not None:
            return event
        await asyncio.sleep(0.05)
    raise AssertionError(f"no {action} event")


async def test_a_task_cancelled_as_its_call_asks_leaves_the_owner_nothing_to_approve(server, owner):
    """CancelTask on the worker running the call returns once the task is stored canceled, and
    withdraws the task's approvals then: here before the call has stored its approval. The call,
    stopped in the middle of asking, withdraws it itself once stored."""
    _, client = await connect(server.address, await sync_to_async(make_token)(owner), streaming=False)
    request = data_message({"tool": "files_write", "arguments": WRITE})
    request.configuration.return_immediately = True
    async with table_locked("chat_approval", "EXCLUSIVE"):
        _, task = await last_task(client, request)
        await asking()
        cancelled = await client.cancel_task(CancelTaskRequest(id=task.id))
        assert cancelled.status.state == TaskState.TASK_STATE_CANCELED
    cid = task.id.replace("-", "")
    call = await audited("a2a.tool_call", cid)

    approval = await Approval.objects.aget(correlation_id=cid)
    owners = await sync_to_async(make_token)(owner)  # the owner's own credentials, not the client's token
    async with httpx.AsyncClient(base_url=f"http://{server.address}",
                                 headers={"Authorization": f"Bearer {owners}"}) as http:
        url = f"/api/chat/sessions/{approval.session_id}/approvals"
        listed = await http.get(url)
        assert listed.status_code == 200 and listed.json()["count"] == 0, listed.json()  # not asked
        decided = await http.post(f"{url}/{approval.pk}", json={"decision": "approve"})
        assert decided.status_code == 409, decided.text
    assert decided.json()["detail"] == f"approval {approval.pk} is already expired: {REASON}"
    assert (call.data["status"], call.data["approval_id"]) == ("cancelled", str(approval.pk))
    withdrawn = await audited("chat.approval_withdrawn", cid)
    assert withdrawn.data == {"approval_ids": [str(approval.pk)], "reason": REASON}

    # Nor may a new task name it to run the call after all.
    _, again = await last_task(client, data_message({"tool": "files_write", "arguments": WRITE,
                                                     "approval_id": str(approval.pk)}))
    assert again.status.state == TaskState.TASK_STATE_FAILED
    assert f"approval {approval.pk} is expired: {REASON}" in again.artifacts[-1].parts[0].text
