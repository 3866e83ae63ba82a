"""AutoBot as an A2A agent, through the official `a2a-sdk` client against a real server."""

import asyncio
import socket
import uuid
from datetime import timedelta

import httpx
import pytest
from a2a.client import A2ACardResolver, ClientConfig, ClientFactory
from a2a.types import (
    CancelTaskRequest,
    GetTaskRequest,
    ListTasksRequest,
    Message,
    Part,
    Role,
    SendMessageRequest,
    SubscribeToTaskRequest,
    Task,
    TaskState,
    TaskStatus,
)
from a2a.utils.errors import TaskNotFoundError
from asgiref.sync import sync_to_async
from django.utils import timezone
from google.protobuf import struct_pb2
from google.protobuf.json_format import MessageToDict

from interop.models import A2aTask
from tests.agents.test_cluster import connect_agent, serve_one
from tests.conftest import make_token
from tests.interop.conftest import HIGH_COMMAND
from tests.terminal.conftest import _grant

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


def data_message(data: dict, *, task_id: str = "") -> SendMessageRequest:
    value = struct_pb2.Value()
    value.struct_value.update(data)
    return SendMessageRequest(message=Message(role=Role.ROLE_USER, message_id=uuid.uuid4().hex, task_id=task_id,
                                              parts=[Part(data=value)]))


async def connect(address: str, token: str | None, *, streaming: bool):
    http = httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"} if token else {}, timeout=60)
    card = await A2ACardResolver(http, f"http://{address}").get_agent_card()
    return card, ClientFactory(ClientConfig(httpx_client=http, streaming=streaming)).create(card)


async def last_task(client, request):
    events = [event async for event in client.send_message(request)]
    tasks = [e.task for e in events if e.HasField("task")]
    return events, (tasks[-1] if tasks else None)


async def test_the_card_is_public_and_describes_the_endpoint(server):
    async with httpx.AsyncClient() as http:
        card = await A2ACardResolver(http, f"http://{server.address}").get_agent_card()
    assert card.name == "AutoBot" and card.capabilities.streaming
    assert card.supported_interfaces[0].url == f"http://{server.address}/a2a"
    assert card.supported_interfaces[0].protocol_binding == "JSONRPC"
    assert card.security_schemes["bearer"].http_auth_security_scheme.scheme == "bearer"
    skills = {skill.id for skill in card.skills}
    assert {"tool:knowledge_search", "tool:terminal_run", "agent:knowledge:search"} <= skills
    assert not any(skill.startswith("agent:terminal:") for skill in skills)  # commands: terminal_run


async def test_a_bus_agent_answers_sent_and_streamed(server, owner, stranger):
    from knowledge.services import entry_create

    await entry_create(user=owner, title="Backups", content="Backups run nightly at 02:00 with restic.")
    token = await sync_to_async(make_token)(owner)
    ask = {"agent_id": "knowledge", "action": "search", "data": {"q": "restic"}}

    _, client = await connect(server.address, token, streaming=False)
    _, task = await last_task(client, data_message(ask))
    assert task.status.state == TaskState.TASK_STATE_COMPLETED
    assert "Backups" in task.artifacts[0].parts[0].text
    again = await client.get_task(GetTaskRequest(id=task.id))
    assert again.status.state == TaskState.TASK_STATE_COMPLETED
    assert await A2aTask.objects.filter(pk=task.id, owner=owner).aexists()  # any worker finds it

    _, theirs = await connect(server.address, await sync_to_async(make_token)(stranger), streaming=False)
    with pytest.raises(TaskNotFoundError):  # another user's task does not exist for them
        await theirs.get_task(GetTaskRequest(id=task.id))

    _, streaming = await connect(server.address, token, streaming=True)
    events = [event async for event in streaming.send_message(data_message(ask))]
    states = [e.status_update.status.state for e in events if e.HasField("status_update")]
    assert TaskState.TASK_STATE_WORKING in states and states[-1] == TaskState.TASK_STATE_COMPLETED
    artifacts = [e.artifact_update.artifact for e in events if e.HasField("artifact_update")]
    assert "Backups" in artifacts[0].parts[0].text


async def test_a_call_waiting_for_approval_is_input_required_and_can_be_cancelled(server, staff):
    from chat.models import Approval

    token = await sync_to_async(make_token)(staff)
    _, client = await connect(server.address, token, streaming=False)
    _, task = await last_task(client, data_message({"tool": "terminal_run", "arguments": {"command": HIGH_COMMAND}}))
    assert task.status.state == TaskState.TASK_STATE_INPUT_REQUIRED
    waiting = await client.get_task(GetTaskRequest(id=task.id))
    assert waiting.status.state == TaskState.TASK_STATE_INPUT_REQUIRED
    approval = await Approval.objects.aget(command=HIGH_COMMAND)
    assert approval.status == Approval.Status.PENDING

    cancelled = await client.cancel_task(CancelTaskRequest(id=task.id))
    assert cancelled.status.state == TaskState.TASK_STATE_CANCELED
    await approval.arefresh_from_db()
    assert approval.status == Approval.Status.EXPIRED  # nobody can approve it any more
    owners = await sync_to_async(make_token)(staff)  # the owner's own credentials, not the client's token
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {owners}"}) as http:
        late = await http.post(f"http://{server.address}/api/chat/sessions/{approval.session_id}"
                               f"/approvals/{approval.pk}", json={"decision": "approve"})
    assert late.status_code == 409
    assert late.json() == {"code": "approval_closed",
                           "detail": f"approval {approval.pk} is already expired: the A2A task was cancelled"}


async def test_the_endpoint_needs_a_token(server):
    body = {"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {"id": "x"}}
    async with httpx.AsyncClient() as http:
        response = await http.post(f"http://{server.address}/a2a", json=body)
    assert response.status_code == 401 and response.json()["code"] == "not_authenticated"


async def test_only_a_get_of_a_card_goes_without_a_token(server):
    """A POST to a path shaped like a card (`agent-card.json` taken as an agent id by the
    JSON-RPC route, or a card path with more segments) is an RPC call: it needs a token."""
    body = {"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {"id": "x"}}
    async with httpx.AsyncClient() as http:
        for path in ("/a2a/agents/agent-card.json", "/a2a/agents/knowledge/agent-card.json",
                     "/a2a/agents/a/b/agent-card.json", "/.well-known/agent-card.json"):
            response = await http.post(f"http://{server.address}{path}", json=body)
            assert response.status_code == 401, (path, response.text)
            assert response.json()["code"] == "not_authenticated"
        card = await http.get(f"http://{server.address}/a2a/agents/knowledge/agent-card.json")
        assert card.status_code == 200 and card.json()["name"]


async def test_once_the_owner_approves_the_task_goes_on_and_completes(server, staff):
    from chat.models import OperatorPolicy

    await OperatorPolicy.objects.acreate(user=staff, terminal_level="STANDARD")  # where approved HIGH may run
    await sync_to_async(_grant)(staff)
    token = await sync_to_async(make_token)(staff)
    _, client = await connect(server.address, token, streaming=False)
    _, task = await last_task(client, data_message({"tool": "terminal_run", "arguments": {"command": HIGH_COMMAND}}))
    assert task.status.state == TaskState.TASK_STATE_INPUT_REQUIRED
    approval = MessageToDict(task.status.message.parts[1].data)["approval"]
    owners = await sync_to_async(make_token)(staff)  # the owner's own credentials, not the client's token
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {owners}"}) as http:
        url = f"http://{server.address}/api/chat/sessions/{approval['chat_session_id']}/approvals/{approval['id']}"
        assert (await http.post(url, json={"decision": "approve"})).status_code == 200
    go_on = SendMessageRequest(message=Message(role=Role.ROLE_USER, message_id=uuid.uuid4().hex, task_id=task.id,
                                               context_id=task.context_id, parts=[Part(text="go on")]))
    _, done = await last_task(client, go_on)
    assert done.status.state == TaskState.TASK_STATE_COMPLETED, done.status
    assert done.artifacts[-1].parts[0].text.strip().endswith("1")


async def test_a_bus_agent_has_its_own_card_and_endpoint(server, owner):
    from knowledge.services import entry_create

    await entry_create(user=owner, title="Backups", content="Backups run nightly at 02:00 with restic.")
    token = await sync_to_async(make_token)(owner)
    http = httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60)
    path = "/a2a/agents/knowledge/agent-card.json"
    resolver = A2ACardResolver(http, f"http://{server.address}", agent_card_path=path)
    card = await resolver.get_agent_card()
    assert card.supported_interfaces[0].url == f"http://{server.address}/a2a/agents/knowledge"
    assert "agent:knowledge:search" in {skill.id for skill in card.skills}
    client = ClientFactory(ClientConfig(httpx_client=http, streaming=False)).create(card)
    _, task = await last_task(client, data_message({"action": "search", "data": {"q": "restic"}}))
    assert task.status.state == TaskState.TASK_STATE_COMPLETED
    assert "Backups" in task.artifacts[0].parts[0].text

    async with httpx.AsyncClient() as anonymous:
        missing = await anonymous.get(f"http://{server.address}/a2a/agents/nobody/agent-card.json")
        assert missing.status_code == 404 and missing.json()["code"] == "agent_not_found"
        refused = await anonymous.post(f"http://{server.address}/a2a/agents/knowledge", json={})
        assert refused.status_code == 401


def states(events) -> list:
    return [e.status_update.status.state for e in events if e.HasField("status_update")]


async def start_slow_task(address: str, token: str, agent_id: str):
    """A task that works until the external agent `agent_id` answers: sent, and returned at once."""
    _, client = await connect(address, token, streaming=False)
    request = data_message({"agent_id": agent_id, "action": "echo", "data": {"slow": True}})
    request.configuration.return_immediately = True
    _, task = await last_task(client, request)
    assert task.status.state in (TaskState.TASK_STATE_SUBMITTED, TaskState.TASK_STATE_WORKING), task.status
    return task


async def follow(client, task_id: str, answer=None) -> list:
    """Subscribe to the task; once its first event (the task as it is) came, run `answer()`;
    then every event until the stream ends."""
    stream = client.subscribe(SubscribeToTaskRequest(id=task_id))
    first = await anext(stream)
    assert first.HasField("task") and first.task.id == task_id
    answering = asyncio.create_task(answer()) if answer else None
    events = [first] + [event async for event in stream]
    if answering:
        await answering
    return events


async def test_a_subscription_follows_a_running_task_to_its_end(server, owner):
    token = await sync_to_async(make_token)(owner)
    agent = await connect_agent(server.address, token, "slowpoke")
    try:
        task = await start_slow_task(server.address, token, "slowpoke")
        _, client = await connect(server.address, token, streaming=True)
        events = await follow(client, task.id, lambda: serve_one(agent, "slowpoke"))
    finally:
        await agent.close()
    assert states(events)[-1] == TaskState.TASK_STATE_COMPLETED
    artifacts = [e.artifact_update.artifact for e in events if e.HasField("artifact_update")]
    assert '"slow": true' in artifacts[0].parts[0].text


async def test_only_the_owner_may_subscribe_to_a_task(server, owner, stranger):
    token = await sync_to_async(make_token)(owner)
    agent = await connect_agent(server.address, token, "private")
    try:
        task = await start_slow_task(server.address, token, "private")
        _, theirs = await connect(server.address, await sync_to_async(make_token)(stranger), streaming=True)
        with pytest.raises(TaskNotFoundError):  # another user's task does not exist for them
            await anext(theirs.subscribe(SubscribeToTaskRequest(id=task.id)))
        await serve_one(agent, "private")
    finally:
        await agent.close()


async def test_a_subscription_to_a_task_whose_worker_is_gone_ends_failed(server, owner):
    """A task left working by a server process on another host that stopped beating (a restart,
    a crash): the subscriber gets `failed` saying so, not a stream that never ends."""
    task = Task(id=uuid.uuid4().hex, context_id=uuid.uuid4().hex,
                status=TaskStatus(state=TaskState.TASK_STATE_WORKING))
    await A2aTask.objects.acreate(pk=task.id, owner=owner, context_id=task.context_id, state=task.status.state,
                                  data=task.SerializeToString(), version=2, worker="elsewhere.example:4242",
                                  beat=timezone.now() - timedelta(hours=1))
    _, client = await connect(server.address, await sync_to_async(make_token)(owner), streaming=True)
    events = await follow(client, task.id)
    ended = [e.status_update.status for e in events if e.HasField("status_update")][-1]
    assert ended.state == TaskState.TASK_STATE_FAILED
    assert "stopped before it finished" in ended.message.parts[0].text
    stored = await client.get_task(GetTaskRequest(id=task.id))
    assert stored.status.state == TaskState.TASK_STATE_FAILED


def stored_task(owner, *, state=TaskState.TASK_STATE_WORKING, worker: str, beat_age: timedelta) -> Task:
    """A task row as a worker left it: `worker` wrote it and beat `beat_age` ago."""
    task = Task(id=uuid.uuid4().hex, context_id=uuid.uuid4().hex, status=TaskStatus(state=state))
    A2aTask.objects.create(pk=task.id, owner=owner, context_id=task.context_id, state=task.status.state,
                           data=task.SerializeToString(), version=2, worker=worker, beat=timezone.now() - beat_age)
    return task


async def dead_worker() -> str:
    """The id of a server process on this host that has ended (a child that ran and was reaped)."""
    child = await asyncio.create_subprocess_exec("true")
    await child.wait()
    return f"{socket.gethostname()}:{child.pid}"


async def test_get_and_list_say_failed_for_a_task_whose_worker_stopped(server, owner):
    """Nobody subscribes: a client that only polls learns the run is lost, and the verdict is
    stored (every worker then agrees)."""
    make = sync_to_async(stored_task)
    gone_here = await make(owner, worker=await dead_worker(), beat_age=timedelta(0))
    silent_elsewhere = await make(owner, worker="elsewhere.example:4242", beat_age=timedelta(hours=1))
    alive_elsewhere = await make(owner, worker="elsewhere.example:4343", beat_age=timedelta(0))
    parked = await make(owner, state=TaskState.TASK_STATE_INPUT_REQUIRED, worker=await dead_worker(),
                        beat_age=timedelta(hours=1))  # waits for its owner, not for a worker
    _, client = await connect(server.address, await sync_to_async(make_token)(owner), streaming=False)

    got = await client.get_task(GetTaskRequest(id=gone_here.id))
    assert got.status.state == TaskState.TASK_STATE_FAILED
    assert "stopped before it finished" in got.status.message.parts[0].text
    listed = {task.id: task.status for task in (await client.list_tasks(ListTasksRequest())).tasks}
    assert listed[silent_elsewhere.id].state == TaskState.TASK_STATE_FAILED
    assert "stopped before it finished" in listed[silent_elsewhere.id].message.parts[0].text
    assert listed[alive_elsewhere.id].state == TaskState.TASK_STATE_WORKING
    assert listed[parked.id].state == TaskState.TASK_STATE_INPUT_REQUIRED
    stored = {row.pk: row.state async for row in A2aTask.objects.filter(owner=owner)}
    assert stored[gone_here.id] == stored[silent_elsewhere.id] == TaskState.TASK_STATE_FAILED
    assert stored[alive_elsewhere.id] == TaskState.TASK_STATE_WORKING
