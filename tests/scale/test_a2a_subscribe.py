"""A2A tasks across two real workers on PostgreSQL + Redis: a task runs on worker A and a client
subscribes to it (SubscribeToTask, the official client's `subscribe`) or cancels it on worker B.

The task is slow on purpose: a request to an external agent the test holds, answered when the
test says. Each worker is reached directly, so which one runs and which one follows is certain.
"""

import asyncio
import uuid
from pathlib import Path

import httpx
import pytest
from a2a.types import CancelTaskRequest, SubscribeToTaskRequest, TaskState
from a2a.utils.errors import TaskNotFoundError, UnsupportedOperationError
from asgiref.sync import sync_to_async
from google.protobuf.json_format import MessageToDict

from autobot.models import AuditEvent
from interop.models import A2aTask
from terminal.models import CommandRecord
from tests.agents.test_cluster import connect_agent, next_of_type, serve_one
from tests.conftest import make_token
from tests.interop.conftest import HIGH_COMMAND
from tests.interop.test_a2a import connect, data_message, follow, last_task, start_slow_task, states
from tests.interop.test_a2a_cancel import COUNT_TWICE, TICKING, finished, first_write, go_on, output_of, started
from tests.scale.cluster import running_cluster, worker_id
from tests.scale.test_nginx import heartbeats
from tests.terminal.conftest import _grant

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True),
              pytest.mark.timeout(180)]


@pytest.fixture(scope="module")
def cluster(django_db_setup, django_db_blocker, tmp_path_factory):
    # The agent request may wait a minute; a worker that stops beating counts as gone after 9 s
    # (beats every 3 s), so the long silence below also proves the beats keep a live task alive.
    extra = {"AUTOBOT_AGENTS_REQUEST_TIMEOUT": "60", "AUTOBOT_A2A_TASK_LOST_SECONDS": "9"}
    with running_cluster(tmp_path_factory.mktemp("a2a-cluster"), extra_env=extra) as cluster:
        yield cluster


@pytest.fixture
async def token(owner):
    return await sync_to_async(make_token)(owner)


async def test_a_task_running_on_one_worker_is_followed_to_its_end_from_the_other(cluster, token, stranger):
    a, b = cluster.workers
    agent = await connect_agent(b.address, token, "slow-a")
    try:
        task = await start_slow_task(a.address, token, "slow-a")
        _, theirs = await connect(b.address, await sync_to_async(make_token)(stranger), streaming=True)
        with pytest.raises(TaskNotFoundError):  # another user's task does not exist for them
            await anext(theirs.subscribe(SubscribeToTaskRequest(id=task.id)))
        _, client = await connect(b.address, token, streaming=True)
        events = await follow(client, task.id, lambda: serve_one(agent, "slow-a"))
    finally:
        await agent.close()
    assert TaskState.TASK_STATE_COMPLETED == states(events)[-1]
    artifacts = [e.artifact_update.artifact for e in events if e.HasField("artifact_update")]
    assert '"slow": true' in artifacts[0].parts[0].text
    row = await A2aTask.objects.aget(pk=task.id)
    assert row.worker == worker_id(a)  # A ran it; B only followed


async def test_a_subscription_silent_longer_than_every_redis_timeout_still_gets_the_end(cluster, token):
    """Quieter than the layer's 5 s blocking read and redis-py's 30 s read timeout; the task's
    beats keep it alive all along (it is not declared lost)."""
    a, b = cluster.workers
    agent = await connect_agent(b.address, token, "slow-b")

    async def answer_late():
        await heartbeats(agent, 35)  # what the agent protocol asks of it while it waits
        await serve_one(agent, "slow-b")

    try:
        task = await start_slow_task(a.address, token, "slow-b")
        _, client = await connect(b.address, token, streaming=True)
        events = await follow(client, task.id, answer_late)
    finally:
        await agent.close()
    assert last_state(events) == TaskState.TASK_STATE_COMPLETED


async def test_a_subscriber_hears_failed_when_the_worker_running_the_task_is_killed(cluster, token):
    a, b = cluster.workers
    agent = await connect_agent(b.address, token, "slow-c")
    try:
        task = await start_slow_task(a.address, token, "slow-c")
        _, client = await connect(b.address, token, streaming=True)
        events = await follow(client, task.id, lambda: asyncio.to_thread(a.kill))
    finally:
        await agent.close()
        await asyncio.to_thread(cluster.restart_worker, 0)
    ended = [e.status_update.status for e in events if e.HasField("status_update")][-1]
    assert ended.state == TaskState.TASK_STATE_FAILED
    assert "stopped before it finished" in ended.message.parts[0].text
    row = await A2aTask.objects.aget(pk=task.id)
    assert row.state == TaskState.TASK_STATE_FAILED



async def test_a_subscription_across_a_redis_restart_still_gets_the_end(cluster, token):
    """Redis forgets the subscription's group when it restarts: the subscriber joins again and
    compares with the stored task, so the end arrives (as a status update or as the task)."""
    a, b = cluster.workers
    agent = await connect_agent(b.address, token, "slow-d")

    async def restart_then_answer():
        await asyncio.to_thread(cluster.redis.restart)
        await wait_healthy(a.address, b.address)
        await serve_one(agent, "slow-d")

    try:
        task = await start_slow_task(a.address, token, "slow-d")
        _, client = await connect(b.address, token, streaming=True)
        events = await follow(client, task.id, restart_then_answer)
    finally:
        await agent.close()
    assert last_state(events) == TaskState.TASK_STATE_COMPLETED, events[-1]


def last_state(events):
    """How the stream ended: a status update, or the task itself when a periodic comparison with
    the stored row saw the end before the group's event arrived (either may win that race)."""
    last = events[-1].task.status if events[-1].HasField("task") else events[-1].status_update.status
    return last.state


async def test_a_cancel_on_another_worker_expires_the_approval_a_parked_task_waits_for(cluster, staff):
    from chat.models import Approval

    a, b = cluster.workers
    token = await sync_to_async(make_token)(staff)
    _, on_a = await connect(a.address, token, streaming=False)
    _, task = await last_task(on_a, data_message({"tool": "terminal_run", "arguments": {"command": HIGH_COMMAND}}))
    assert task.status.state == TaskState.TASK_STATE_INPUT_REQUIRED  # A holds the parked task
    _, on_b = await connect(b.address, token, streaming=False)
    cancelled = await on_b.cancel_task(CancelTaskRequest(id=task.id))
    assert cancelled.status.state == TaskState.TASK_STATE_CANCELED
    approval = await Approval.objects.aget(correlation_id=task.id.replace("-", ""))
    owners = await sync_to_async(make_token)(staff)  # the owner's own credentials, not the client's token
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {owners}"}) as http:
        late = await http.post(f"http://{a.address}/api/chat/sessions/{approval.session_id}/approvals/{approval.pk}",
                               json={"decision": "approve"})
    assert late.status_code == 409, late.text
    assert late.json()["code"] == "approval_closed" and "cancelled" in late.json()["detail"], late.json()
    await approval.arefresh_from_db()
    assert approval.status == Approval.Status.EXPIRED


async def test_a_cancel_on_another_worker_stops_the_call_running_on_the_first(cluster, token):
    a, b = cluster.workers
    agent = await connect_agent(b.address, token, "slow-e")
    try:
        _, on_a = await connect(a.address, token, streaming=False)
        sent = asyncio.create_task(last_task(on_a, data_message({"agent_id": "slow-e", "action": "echo", "data": {}})))
        request = await next_of_type(agent, "REQUEST")  # the call is waiting for the agent on A
        task_id = str(uuid.UUID(request["payload"]["context"]["correlation_id"]))  # the task's id, as a hex
        _, on_b = await connect(b.address, token, streaming=False)
        cancelled = await on_b.cancel_task(CancelTaskRequest(id=task_id))
        assert cancelled.status.state == TaskState.TASK_STATE_CANCELED
        _, returned = await sent  # A stopped waiting for the agent, which never answered
    finally:
        await agent.close()
    assert returned.status.state == TaskState.TASK_STATE_CANCELED
    audited = await AuditEvent.objects.aget(action="a2a.tool_call", correlation_id=task_id.replace("-", ""))
    assert audited.data["status"] == "cancelled"


async def test_a_cancel_on_another_worker_stops_the_command_a_terminal_run_typed_on_the_first(cluster, owner,
                                                                                          token):
    a, b = cluster.workers
    await sync_to_async(_grant)(owner)
    _, on_a = await connect(a.address, token, streaming=False)
    task_id, record = await started(on_a, TICKING)  # ticking in the user's terminal, which A runs
    await first_write(Path(a.env["AUTOBOT_FILES_ROOT"]) / owner.get_username() / "ticks.txt")
    _, on_b = await connect(b.address, token, streaming=False)
    cancelled = await on_b.cancel_task(CancelTaskRequest(id=task_id))
    assert cancelled.status.state == TaskState.TASK_STATE_CANCELED

    record = await finished(record)
    assert record.exit_code not in (None, 0)  # A interrupted it
    # The terminal takes the next command, here from B (typed on A through the relay), and
    # nothing ticks in it any more.
    assert (await output_of(on_b, "echo next-$((2+3))")).splitlines()[-1] == "next-5"
    _, before, after = (await output_of(on_b, COUNT_TWICE)).splitlines()[-1].split()
    assert before == after and int(before) < 300
    audited = await AuditEvent.objects.aget(action="a2a.tool_call", correlation_id=task_id.replace("-", ""))
    assert audited.data["status"] == "cancelled"


async def test_a_task_cancelled_on_another_worker_while_parked_types_nothing_even_once_approved(cluster, staff):
    from chat.models import Approval, OperatorPolicy

    a, b = cluster.workers
    await OperatorPolicy.objects.acreate(user=staff, terminal_level="STANDARD")  # where approved HIGH may run
    await sync_to_async(_grant)(staff)
    token = await sync_to_async(make_token)(staff)
    _, on_a = await connect(a.address, token, streaming=False)
    _, task = await last_task(on_a, data_message({"tool": "terminal_run", "arguments": {"command": HIGH_COMMAND}}))
    assert task.status.state == TaskState.TASK_STATE_INPUT_REQUIRED  # A holds the parked task
    approval = MessageToDict(task.status.message.parts[1].data)["approval"]
    owners = await sync_to_async(make_token)(staff)  # the owner's own credentials, not the client's token
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {owners}"}) as http:
        url = f"http://{a.address}/api/chat/sessions/{approval['chat_session_id']}/approvals/{approval['id']}"
        assert (await http.post(url, json={"decision": "approve"})).status_code == 200
    _, on_b = await connect(b.address, token, streaming=False)
    cancelled = await on_b.cancel_task(CancelTaskRequest(id=task.id))
    assert cancelled.status.state == TaskState.TASK_STATE_CANCELED

    with pytest.raises(UnsupportedOperationError, match="terminal state"):  # A reads it ended: no run
        await last_task(on_a, go_on(task))  # to A, which parked the task and still holds it
    assert not await CommandRecord.objects.filter(command=HIGH_COMMAND).aexists()  # never typed
    assert (await Approval.objects.aget(pk=approval["id"])).status == Approval.Status.EXPIRED  # withdrawn, unused


async def wait_healthy(*addresses: str) -> None:
    async with httpx.AsyncClient() as http:
        for _ in range(120):  # a restart has no event to await: poll health, 60 s at most
            answers = [await http.get(f"http://{address}/api/health") for address in addresses]
            if all(answer.status_code == 200 for answer in answers):
                return
            await asyncio.sleep(0.5)
    raise AssertionError("the workers did not report healthy after Redis came back")
