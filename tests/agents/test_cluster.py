"""Proof across processes: real servers, a real external agent over a real socket.

With Redis, two uvicorn processes (A and B) share Redis and one database: an agent connected
to A answers a request sent through B's API, and a broadcast sent on B reaches agents on A and
B. The same suite runs against one process on the in-memory layer.
"""

import asyncio
import json
import os
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
import websockets
from asgiref.sync import sync_to_async

from autobot.testing import start_all
from tests.conftest import app_server, make_token

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)], scope="module")
def cluster(request, django_db_setup, django_db_blocker, tmp_path_factory):
    """(address A, address B): two processes sharing Redis, or one in-memory process twice."""
    redis_url = os.environ.get("AUTOBOT_TEST_REDIS_URL", "")
    if request.param == "redis" and not redis_url:
        pytest.skip("needs Redis: set AUTOBOT_TEST_REDIS_URL")
    var_dir = tmp_path_factory.mktemp(f"cluster-{request.param}")
    env = {"REDIS_URL": redis_url} if request.param == "redis" else {}
    count = 2 if request.param == "redis" else 1
    servers = start_all(app_server(var_dir, env=env, name=f"server-{i}") for i in range(count))
    try:
        yield servers[0].address, servers[-1].address
    finally:
        for server in servers:
            server.stop()


@pytest.fixture(autouse=True)
async def agents_gone_before_the_flush(request):
    """After a test on the cluster, wait until the servers have recorded every external agent's
    departure: the test database's flush (one TRUNCATE of every table) landing while a server
    writes it deadlocked on PostgreSQL, and the flush lost left the next test's rows in place.
    (A star import takes this fixture to the PostgreSQL module too: no leading underscore.)"""
    yield
    if "cluster" not in request.fixturenames:
        return
    from agents.models import Agent

    online = Agent.objects.filter(kind=Agent.Kind.EXTERNAL, status=Agent.Status.ONLINE)
    for _ in range(150):  # 15 s at most: a departure is recorded within milliseconds
        if not await online.aexists():
            return
        await asyncio.sleep(0.1)


def frame(agent_id, message_type, action, data=None, **header):
    return json.dumps({
        "header": {"message_id": str(uuid.uuid4()), "message_type": message_type, "sender_id": agent_id,
                   "timestamp": datetime.now(UTC).isoformat(), **header},
        "payload": {"action": action, "data": data or {}},
    })


async def connect_agent(address, token, agent_id):
    ws = await websockets.connect(f"ws://{address}/ws/agents/?agent_id={agent_id}",
                                  additional_headers={"Authorization": f"Bearer {token}"})
    await ws.send(frame(agent_id, "NOTIFICATION", "agent.register",
                        {"name": agent_id, "capabilities": ["echo"], "version": "1"}))
    registered = json.loads(await asyncio.wait_for(ws.recv(), 10))
    assert registered["payload"]["action"] == "agent.registered", registered
    return ws


async def serve_one(ws, agent_id):
    """Answer the next REQUEST, echoing its data and saying who answered."""
    while True:
        message = json.loads(await ws.recv())
        if message["header"]["message_type"] == "REQUEST":
            await ws.send(frame(agent_id, "RESPONSE", message["payload"]["action"],
                                {"echo": message["payload"]["data"], "by": agent_id},
                                correlation_id=message["header"]["message_id"]))
            return


async def next_of_type(ws, message_type):
    while True:
        message = json.loads(await ws.recv())
        if message["header"]["message_type"] == message_type:
            return message


async def post(address, token, body, query=""):
    async with aiohttp.ClientSession() as http:
        async with http.post(f"http://{address}/api/agents/messages{query}", json=body,
                             headers={"Authorization": f"Bearer {token}"}) as response:
            return response.status, await response.json()


async def test_an_agent_on_a_answers_a_request_sent_through_b(cluster, owner):
    address_a, address_b = cluster
    token = await sync_to_async(make_token)(owner)
    agent_id = f"echo-{uuid.uuid4().hex[:8]}"
    ws = await connect_agent(address_a, token, agent_id)
    try:
        body = {"header": {"message_type": "REQUEST", "recipient_id": agent_id},
                "payload": {"action": "echo", "data": {"via": "B"}}}
        call = asyncio.create_task(post(address_b, token, body, "?wait=true&timeout=15"))
        await asyncio.wait_for(serve_one(ws, agent_id), 20)
        status, answer = await call
        assert status == 200, answer
        assert answer["header"]["message_type"] == "RESPONSE"
        assert answer["payload"]["data"] == {"echo": {"via": "B"}, "by": agent_id}
    finally:
        await ws.close()


async def test_a_frame_replayed_on_a_new_connection_to_b_is_refused(cluster, owner):
    """One replay window for every worker: a heartbeat (never logged, so only the window can
    know it) sent through A and again through B is refused there, and B's socket stays usable."""
    address_a, address_b = cluster
    token = await sync_to_async(make_token)(owner)
    agent_id = f"replay-{uuid.uuid4().hex[:8]}"
    beat = frame(agent_id, "HEARTBEAT", "heartbeat")

    async def ask_knowledge(ws):  # answered only after every earlier frame was handled
        await ws.send(frame(agent_id, "REQUEST", "search", {"q": "x"}, recipient_id="knowledge"))
        return await asyncio.wait_for(next_of_type(ws, "RESPONSE"), 10)

    on_a = await connect_agent(address_a, token, agent_id)
    try:
        await on_a.send(beat)
        await ask_knowledge(on_a)
    finally:
        await on_a.close()
    on_b = await connect_agent(address_b, token, agent_id)
    try:
        await on_b.send(beat)
        error = await asyncio.wait_for(next_of_type(on_b, "ERROR"), 10)
        assert error["payload"]["data"]["code"] == "replayed", error
        assert error["header"]["correlation_id"] == json.loads(beat)["header"]["message_id"]
        assert (await ask_knowledge(on_b))["header"]["sender_id"] == "knowledge"
    finally:
        await on_b.close()


async def test_a_broadcast_on_b_reaches_agents_on_a_and_b(cluster, owner):
    address_a, address_b = cluster
    token = await sync_to_async(make_token)(owner)
    suffix = uuid.uuid4().hex[:8]
    on_a = await connect_agent(address_a, token, f"a-{suffix}")
    on_b = await connect_agent(address_b, token, f"b-{suffix}")
    try:
        body = {"header": {"message_type": "BROADCAST"}, "payload": {"action": "news", "data": {"id": suffix}}}
        status, accepted = await post(address_b, token, body)
        assert status == 202, accepted
        for ws in (on_a, on_b):
            while True:  # other runs sharing Redis may broadcast too: find ours
                got = await asyncio.wait_for(next_of_type(ws, "BROADCAST"), 10)
                if got["payload"]["data"].get("id") == suffix:
                    break
    finally:
        await on_a.close()
        await on_b.close()


async def test_a_capability_request_through_b_is_balanced_over_agents_on_a_and_b(cluster, owner):
    address_a, address_b = cluster
    token = await sync_to_async(make_token)(owner)
    capability = f"cap-{uuid.uuid4().hex[:8]}"
    agents = []
    for address, name in ((address_a, "x"), (address_b, "y")):
        agent_id = f"{name}-{capability}"
        ws = await websockets.connect(f"ws://{address}/ws/agents/?agent_id={agent_id}",
                                      additional_headers={"Authorization": f"Bearer {token}"})
        await ws.send(frame(agent_id, "NOTIFICATION", "agent.register", {"capabilities": [capability]}))
        await asyncio.wait_for(ws.recv(), 10)
        agents.append((ws, agent_id))
    try:
        answered_by = []
        for _ in range(2):
            body = {"header": {"message_type": "REQUEST", "capability": capability}, "payload": {"action": "echo"}}
            call = asyncio.create_task(post(address_b, token, body, "?wait=true&timeout=15"))
            servers = [asyncio.create_task(serve_one(ws, agent_id)) for ws, agent_id in agents]
            status, answer = await asyncio.wait_for(call, 20)
            assert status == 200, answer
            answered_by.append(answer["payload"]["data"]["by"])
            for task in servers:
                task.cancel()
            await asyncio.gather(*servers, return_exceptions=True)
        assert sorted(answered_by) == sorted(agent_id for _, agent_id in agents)
    finally:
        for ws, _ in agents:
            await ws.close()


async def test_the_builtin_knowledge_agent_answers_through_b(cluster, owner):
    _, address_b = cluster
    token = await sync_to_async(make_token)(owner)
    body = {"header": {"message_type": "REQUEST", "recipient_id": "knowledge"},
            "payload": {"action": "search", "data": {"q": "anything"}}}
    status, answer = await post(address_b, token, body, "?wait=true&timeout=15")
    assert status == 200, answer
    assert answer["header"]["sender_id"] == "knowledge"
    assert answer["payload"]["data"]["count"] == 0


@pytest.mark.parametrize("secret", [None, "example-secret"], ids=["unsigned", "signed"])
async def test_the_example_agent_answers(cluster, owner, secret):
    from agents.models import Agent

    address_a, address_b = cluster
    token = await sync_to_async(make_token)(owner)
    agent_id = f"example-{uuid.uuid4().hex[:8]}"
    if secret:
        await Agent.objects.acreate(id=agent_id, owner=owner, secret=secret)
    args = [sys.executable, str(ROOT / "examples" / "echo_agent.py"), "--url", f"ws://{address_a}",
            "--token", token, "--agent-id", agent_id] + (["--secret", secret] if secret else [])
    proc = await asyncio.create_subprocess_exec(*args, stderr=asyncio.subprocess.PIPE)
    try:
        while b"registered as" not in (line := await asyncio.wait_for(proc.stderr.readline(), 20)):
            assert line, "the example agent exited before registering"
        body = {"header": {"message_type": "REQUEST", "recipient_id": agent_id},
                "payload": {"action": "echo", "data": {"hello": "world"}}}
        status, answer = await post(address_b, token, body, "?wait=true&timeout=15")
        assert status == 200, answer
        assert answer["payload"]["data"] == {"echo": {"hello": "world"}}
    finally:
        proc.terminate()
        await proc.wait()


def answer_frame(agent_id, request, **data):
    return frame(agent_id, "RESPONSE", request["payload"]["action"], {"by": agent_id, **data},
                 correlation_id=request["header"]["message_id"])


async def test_an_answer_sent_after_the_agent_moved_from_a_to_b_reaches_the_asker(cluster, owner):
    """The request was handed to the agent's socket on A; it reconnects to B (A's socket is
    evicted through the layer) and answers there."""
    address_a, address_b = cluster
    token = await sync_to_async(make_token)(owner)
    agent_id = f"mover-{uuid.uuid4().hex[:8]}"
    on_a = await connect_agent(address_a, token, agent_id)
    try:
        body = {"header": {"message_type": "REQUEST", "recipient_id": agent_id},
                "payload": {"action": "echo", "data": {}}}
        call = asyncio.create_task(post(address_b, token, body, "?wait=true&timeout=15"))
        request = await asyncio.wait_for(next_of_type(on_a, "REQUEST"), 10)
        on_b = await connect_agent(address_b, token, agent_id)
        try:
            await on_b.send(answer_frame(agent_id, request, on="B"))
            status, answer = await asyncio.wait_for(call, 20)
            assert status == 200, answer
            assert answer["payload"]["data"] == {"by": agent_id, "on": "B"}
        finally:
            await on_b.close()
    finally:
        await on_a.close()


@pytest.mark.redis
async def test_an_answer_sent_after_the_agents_worker_died_reaches_the_asker(owner, tmp_path):
    """A is killed while its socket holds a request asked through B: no disconnect, no hand-over
    (B's eviction message goes to a dead channel). The agent reconnects to B and answers."""
    redis_url = os.environ.get("AUTOBOT_TEST_REDIS_URL", "")
    if not redis_url:
        pytest.skip("needs Redis: set AUTOBOT_TEST_REDIS_URL")
    server_a, server_b = await asyncio.to_thread(
        start_all, [app_server(tmp_path, env={"REDIS_URL": redis_url}, name=f"dying-{i}") for i in range(2)])
    try:
        token = await sync_to_async(make_token)(owner)
        agent_id = f"orphan-{uuid.uuid4().hex[:8]}"
        on_a = await connect_agent(server_a.address, token, agent_id)
        body = {"header": {"message_type": "REQUEST", "recipient_id": agent_id},
                "payload": {"action": "echo", "data": {}}}
        call = asyncio.create_task(post(server_b.address, token, body, "?wait=true&timeout=20"))
        request = await asyncio.wait_for(next_of_type(on_a, "REQUEST"), 10)
        await asyncio.to_thread(server_a.kill)
        on_a.transport.abort()
        on_b = await connect_agent(server_b.address, token, agent_id)
        try:
            await on_b.send(answer_frame(agent_id, request))
            status, answer = await asyncio.wait_for(call, 25)
            assert status == 200, answer
            assert answer["header"]["correlation_id"] == request["header"]["message_id"]
        finally:
            await on_b.close()
    finally:
        for server in (server_a, server_b):
            await asyncio.to_thread(server.stop)
