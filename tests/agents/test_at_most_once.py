"""A capability request runs at most once across all agents (security review, issue agents3-1).

External agents over real sockets, on the in-memory layer and on Redis. Before the fix a slow
agent lost its request to a retry on another agent when its share of the deadline ran out, and a
redelivery reached a second agent (or the same agent on a new connection, whose duplicate filter
was fresh) and ran again.
"""

import asyncio
import json

import pytest

from agents import services
from agents.bus import Route, inbox_channel
from agents.protocol import MessageType, parse_message
from tests.agents.test_consumers import connect_agent, frame, receive, send

pytestmark = pytest.mark.django_db(transaction=True)



async def capability_call(api_client, user, capability, wait_seconds):
    body = {"header": {"message_type": "REQUEST", "capability": capability},
            "payload": {"action": "deploy", "data": {"release": "v2"}}}
    return await api_client(user).post(f"/api/agents/messages?wait=true&timeout={wait_seconds}",
                                       data=json.dumps(body), content_type="application/json")


async def deliver(agent_id, message):
    """Put ``message`` in an agent's inbox as the bus does (a retry, or a redelivery)."""
    bus = await services.get_bus()
    await bus.deliver(Route(agent_id, inbox_channel(agent_id)), message)


async def test_a_slow_capability_request_reaches_one_agent_only(layer, ws_connect, owner, api_client, settings):
    settings.AGENTS_RETRY_ATTEMPTS = 3  # a share of the 3 s deadline is 1 s
    first, _ = await connect_agent(ws_connect, owner, "worker-a", ("deploy",))  # picked first (by id)
    second, _ = await connect_agent(ws_connect, owner, "worker-b", ("deploy",))
    call = asyncio.create_task(capability_call(api_client, owner, "deploy", wait_seconds=3))
    request = await receive(first)
    await asyncio.sleep(1.5)  # the deploy outlasts its share of the deadline; the agent is live
    await send(first, frame("worker-a", "RESPONSE", "deploy", {"done_by": "worker-a"},
                            correlation_id=request["header"]["message_id"]))
    response = await call
    assert response.status_code == 200, response.json()
    assert response.json()["payload"]["data"] == {"done_by": "worker-a"}
    assert await second.receive_nothing(0.3)  # never sent the same deploy
    await first.disconnect()
    await second.disconnect()


async def test_a_request_redelivered_to_another_agent_is_dropped_there(layer, ws_connect, owner):
    first, _ = await connect_agent(ws_connect, owner, "worker-a", ("deploy",))
    second, _ = await connect_agent(ws_connect, owner, "worker-b", ("deploy",))
    bus = await services.get_bus()
    message = bus.message(MessageType.REQUEST, "deploy", {"release": "v2"}, recipient_id="worker-a",
                          sender_id="user:owner")
    await deliver("worker-a", message)
    assert (await receive(first))["header"]["message_id"] == str(message.header.message_id)
    await deliver("worker-b", message)  # a retry that reached another agent
    later = bus.message(MessageType.REQUEST, "deploy", {"release": "v3"}, recipient_id="worker-b",
                        sender_id="user:owner")
    await deliver("worker-b", later)
    # The inbox is read in order: the first frame worker-b sees is the later request.
    assert (await receive(second))["header"]["message_id"] == str(later.header.message_id)
    await first.disconnect()
    await second.disconnect()


async def test_a_request_redelivered_after_a_reconnect_is_not_run_again(layer, ws_connect, owner):
    old, _ = await connect_agent(ws_connect, owner, "echo")
    bus = await services.get_bus()
    message = bus.message(MessageType.REQUEST, "echo", {"n": 1}, recipient_id="echo", sender_id="user:owner")
    await deliver("echo", message)
    got = await receive(old)
    assert parse_message(got).header.message_id == message.header.message_id
    await old.disconnect()  # mid-request
    new, _ = await connect_agent(ws_connect, owner, "echo")
    await deliver("echo", message)
    later = bus.message(MessageType.REQUEST, "echo", {"n": 2}, recipient_id="echo", sender_id="user:owner")
    await deliver("echo", later)
    assert (await receive(new))["header"]["message_id"] == str(later.header.message_id)
    await new.disconnect()
