"""What a CancelTask does to the command an A2A terminal_run typed into the user's terminal: a
real server, the official client, a real sandboxed shell. The line is stopped (Ctrl-C, as the
operator's stop), the shell takes the next command, and a call still waiting for approval types
nothing at all."""

import asyncio
import uuid
from pathlib import Path

import httpx
import pytest
from a2a.types import CancelTaskRequest, Message, Part, Role, SendMessageRequest, TaskState
from a2a.utils.errors import UnsupportedOperationError
from asgiref.sync import sync_to_async
from google.protobuf.json_format import MessageToDict

from autobot.models import AuditEvent
from terminal.models import CommandRecord
from tests.conftest import make_token
from tests.interop.conftest import HIGH_COMMAND
from tests.interop.test_a2a import connect, data_message, last_task
from tests.terminal.conftest import _grant

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

# 300 ticks, one every 0.1 s: half a minute of visible work in the user's files area.
TICKING = "for i in $(seq 1 300); do echo tick$i >> ticks.txt; sleep 0.1; done"
# The ticks counted twice, a second apart: equal once nothing writes them any more.
COUNT_TWICE = 'a=$(wc -l < ticks.txt); sleep 1; b=$(wc -l < ticks.txt); echo "ticks $a $b"'


def run(command: str) -> SendMessageRequest:
    return data_message({"tool": "terminal_run", "arguments": {"command": command}})


def go_on(task) -> SendMessageRequest:
    """The follow-up that runs a parked call once its approval is granted."""
    return SendMessageRequest(message=Message(role=Role.ROLE_USER, message_id=uuid.uuid4().hex, task_id=task.id,
                                              context_id=task.context_id, parts=[Part(text="go on")]))


async def started(client, command: str) -> tuple[str, CommandRecord]:
    """Send terminal_run `command`, returned at once; (task id, its record) once the shell runs it."""
    request = run(command)
    request.configuration.return_immediately = True
    _, task = await last_task(client, request)
    for _ in range(600):  # the hook records the line as bash starts it: 30 s at most
        record = await CommandRecord.objects.filter(command=command, correlation_id=task.id.replace("-", "")).afirst()
        if record is not None:
            return task.id, record
        await asyncio.sleep(0.05)
    raise AssertionError(f"the shell never ran {command!r}")


async def first_write(path: Path) -> None:
    """Until the running line has written something to `path`: the hook records the line as bash
    starts it, and on a loaded machine a cancel sent then can stop it before it did anything."""
    for _ in range(600):  # 30 s at most
        if await asyncio.to_thread(lambda: path.is_file() and path.stat().st_size > 0):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"nothing was ever written to {path}")


async def finished(record: CommandRecord) -> CommandRecord:
    for _ in range(200):  # the stopped line reports its end to the hook
        await record.arefresh_from_db()
        if record.finished is not None:
            return record
        await asyncio.sleep(0.05)
    raise AssertionError(f"{record.command!r} never finished")


async def output_of(client, command: str) -> str:
    _, task = await last_task(client, run(command))
    assert task.status.state == TaskState.TASK_STATE_COMPLETED, task.status
    return task.artifacts[-1].parts[0].text.strip()


async def test_cancelling_a_running_terminal_run_stops_the_command_and_the_terminal_takes_the_next(server, owner):
    await sync_to_async(_grant)(owner)
    _, client = await connect(server.address, await sync_to_async(make_token)(owner), streaming=False)
    task_id, record = await started(client, TICKING)
    assert record.actor == "operator" and record.finished is None  # ticking in the user's terminal
    await first_write(Path(server.env["AUTOBOT_FILES_ROOT"]) / owner.get_username() / "ticks.txt")

    cancelled = await client.cancel_task(CancelTaskRequest(id=task_id))
    assert cancelled.status.state == TaskState.TASK_STATE_CANCELED

    record = await finished(record)
    assert record.exit_code == 130  # interrupted (Ctrl-C), not run to its end
    # The same terminal takes the next command, and nothing ticks in it any more.
    assert (await output_of(client, "echo next-$((2+3))")).splitlines()[-1] == "next-5"
    _, before, after = (await output_of(client, COUNT_TWICE)).splitlines()[-1].split()
    assert before == after and int(before) < 300
    audited = await AuditEvent.objects.aget(action="a2a.tool_call", correlation_id=task_id.replace("-", ""))
    assert audited.data["status"] == "cancelled"


async def test_a_cancelled_task_waiting_for_approval_types_nothing_even_once_approved(server, staff):
    from chat.models import Approval, OperatorPolicy

    await OperatorPolicy.objects.acreate(user=staff, terminal_level="STANDARD")  # where approved HIGH may run
    await sync_to_async(_grant)(staff)
    token = await sync_to_async(make_token)(staff)
    _, client = await connect(server.address, token, streaming=False)
    _, task = await last_task(client, run(HIGH_COMMAND))
    assert task.status.state == TaskState.TASK_STATE_INPUT_REQUIRED
    approval = MessageToDict(task.status.message.parts[1].data)["approval"]
    owners = await sync_to_async(make_token)(staff)  # the owner's own credentials, not the client's token
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {owners}"}) as http:
        url = f"http://{server.address}/api/chat/sessions/{approval['chat_session_id']}/approvals/{approval['id']}"
        assert (await http.post(url, json={"decision": "approve"})).status_code == 200

    cancelled = await client.cancel_task(CancelTaskRequest(id=task.id))
    assert cancelled.status.state == TaskState.TASK_STATE_CANCELED
    with pytest.raises(UnsupportedOperationError, match="terminal state"):  # the task has ended: nothing runs
        await last_task(client, go_on(task))
    assert not await CommandRecord.objects.filter(command=HIGH_COMMAND).aexists()  # never typed
    assert (await Approval.objects.aget(pk=approval["id"])).status == Approval.Status.EXPIRED  # withdrawn, unused

    # Nor can a new task name the approval to run the call after all.
    _, again = await last_task(client, data_message({"tool": "terminal_run", "arguments": {"command": HIGH_COMMAND},
                                                     "approval_id": approval["id"]}))
    assert again.status.state != TaskState.TASK_STATE_COMPLETED, again.status
    assert not await CommandRecord.objects.filter(command=HIGH_COMMAND).aexists()


async def call_record(http, approval: dict) -> dict:
    """The call's record as its owner reads it: the messages of the door's chat session."""
    listed = await http.get(f"/api/chat/sessions/{approval['chat_session_id']}/messages")
    assert listed.status_code == 200, listed.text
    return next(call for message in listed.json()["items"] for call in message["tool_calls"]
                if call["id"] == approval["call_id"])


async def test_a_call_cancelled_while_it_waits_for_approval_shows_cancelled_saying_why(server, owner):
    token = await sync_to_async(make_token)(owner)
    _, client = await connect(server.address, token, streaming=False)
    _, task = await last_task(client, run(HIGH_COMMAND))
    assert task.status.state == TaskState.TASK_STATE_INPUT_REQUIRED
    approval = MessageToDict(task.status.message.parts[1].data)["approval"]
    async with httpx.AsyncClient(base_url=f"http://{server.address}",
                                 headers={"Authorization": f"Bearer {token}"}) as http:
        assert (await call_record(http, approval))["status"] == "awaiting_approval"

        await client.cancel_task(CancelTaskRequest(id=task.id))

        record = await call_record(http, approval)
    assert (record["status"], record["ok"]) == ("cancelled", False)
    assert record["output"].endswith("the A2A task was cancelled")
    withdrawn = await AuditEvent.objects.aget(action="chat.approval_withdrawn", correlation_id=task.id.replace("-", ""))
    assert withdrawn.data == {"approval_ids": [approval["id"]], "reason": "the A2A task was cancelled"}


# Ignores Ctrl-C (and says so with a file once it does), so the stop kills it and the hook refuses
# the rest of the line; inline Python: rated HIGH, it waits for approval.
DEAF = ("python3 -c 'import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); "
        "open(\"deaf.txt\", \"w\").close(); time.sleep(30)'")
REST = "echo after-stop > stopped.txt"


async def exists(http, name: str) -> bool:
    listed = await http.get("/api/files/", params={"path": ""})
    assert listed.status_code == 200, listed.text
    return any(item["name"] == name for item in listed.json()["items"])


async def test_an_approved_call_cancelled_midway_settles_cancelled_and_its_refusals_say_the_task_was_cancelled(
        server, staff):
    from chat.models import OperatorPolicy

    await OperatorPolicy.objects.acreate(user=staff, terminal_level="ELEVATED")  # sandboxed; HIGH runs approved
    await sync_to_async(_grant)(staff)
    token = await sync_to_async(make_token)(staff)
    _, client = await connect(server.address, token, streaming=False)
    _, task = await last_task(client, run(f"{DEAF}; {REST}"))
    approval = MessageToDict(task.status.message.parts[1].data)["approval"]
    owners = await sync_to_async(make_token)(staff)  # the owner's own credentials, not the client's token
    async with httpx.AsyncClient(base_url=f"http://{server.address}",
                                 headers={"Authorization": f"Bearer {owners}"}) as http:
        decided = await http.post(f"/api/chat/sessions/{approval['chat_session_id']}/approvals/{approval['id']}",
                                  json={"decision": "approve"})
        assert decided.status_code == 200, decided.text
        follow_up = go_on(task)
        follow_up.configuration.return_immediately = True
        await last_task(client, follow_up)
        for _ in range(600):  # until the program runs, deaf to Ctrl-C: 30 s at most
            if await exists(http, "deaf.txt"):
                break
            await asyncio.sleep(0.05)
        assert (await call_record(http, approval))["status"] == "running"

        await client.cancel_task(CancelTaskRequest(id=task.id))

        cid = task.id.replace("-", "")
        for _ in range(200):  # killed after the stop's grace, then the rest of the line is refused
            refused = await CommandRecord.objects.filter(command=REST, correlation_id=cid, blocked=True).afirst()
            if refused is not None:
                break
            await asyncio.sleep(0.05)
        record = await call_record(http, approval)
        assert not await exists(http, "stopped.txt")
    assert refused is not None and refused.reasons[0] == "the A2A task was cancelled" and refused.actor == "operator"
    blocked = await AuditEvent.objects.aget(action="terminal.command_blocked", data__record_id=refused.pk)
    assert blocked.data["reasons"][0] == "the A2A task was cancelled"
    assert (record["status"], record["ok"]) == ("cancelled", False)
    assert record["output"].endswith("the A2A task was cancelled")
    audited = await AuditEvent.objects.aget(action="a2a.tool_call", correlation_id=cid, data__status="cancelled")
    assert audited.data["reason"] == "the A2A task was cancelled"
