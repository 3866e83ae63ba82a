"""The external-agent WebSocket and the page feed, through the full ASGI app."""

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from agents import signing
from agents.models import Agent, AgentMessage

pytestmark = pytest.mark.django_db(transaction=True)


def frame(agent_id, message_type="NOTIFICATION", action="hello", data=None, **header):
    return {
        "header": {
            "message_id": str(uuid.uuid4()), "message_type": message_type, "sender_id": agent_id,
            "timestamp": datetime.now(UTC).isoformat(), **header,
        },
        "payload": {"action": action, "data": data or {}},
    }


def register_frame(agent_id, capabilities=("echo",)):
    return frame(agent_id, action="agent.register",
                 data={"name": f"{agent_id} agent", "capabilities": list(capabilities), "version": "1.0"})


async def send(comm, message):
    await comm.send_to(text_data=message if isinstance(message, str) else json.dumps(message))


async def receive(comm):
    return json.loads(await comm.receive_from(timeout=5))


async def connect_agent(ws_connect, user, agent_id="echo", capabilities=("echo",)):
    comm = await ws_connect(f"/ws/agents/?agent_id={agent_id}", user=user, origin=None)
    assert comm.connected
    hello = register_frame(agent_id, capabilities)
    await send(comm, hello)
    answer = await receive(comm)
    assert answer["header"]["message_type"] == "RESPONSE", answer
    assert answer["header"]["correlation_id"] == hello["header"]["message_id"]
    assert answer["payload"]["action"] == "agent.registered"
    return comm, answer


async def expect_error(comm, code):
    answer = await receive(comm)
    assert answer["header"]["message_type"] == "ERROR", answer
    assert answer["payload"]["data"]["code"] == code, answer
    assert answer["payload"]["data"]["detail"]
    return answer


async def api_request(api_client, user, recipient, action="echo", data=None, wait_seconds=5):
    body = {"header": {"message_type": "REQUEST", "recipient_id": recipient},
            "payload": {"action": action, "data": data or {}}}
    return await api_client(user).post(f"/api/agents/messages?wait=true&timeout={wait_seconds}",
                                       data=json.dumps(body), content_type="application/json")


async def answer_requests(comm, agent_id, count=1):
    """Play the agent: answer ``count`` REQUEST frames with a RESPONSE echoing the data."""
    for _ in range(count):
        request = await receive(comm)
        assert request["header"]["message_type"] == "REQUEST", request
        reply = frame(agent_id, "RESPONSE", request["payload"]["action"],
                      {"echo": request["payload"]["data"], "by": agent_id},
                      correlation_id=request["header"]["message_id"])
        await send(comm, reply)


async def test_registration_is_answered_with_the_heartbeat_interval(ws_connect, owner, settings):
    comm, answer = await connect_agent(ws_connect, owner)
    assert answer["payload"]["data"]["heartbeat_seconds"] == settings.AGENTS_HEARTBEAT_SECONDS
    agent = await Agent.objects.aget(pk="echo")
    assert agent.status == "online" and agent.owner_id == owner.pk and agent.capabilities == ["echo"]
    await comm.disconnect()
    assert (await Agent.objects.aget(pk="echo")).status == "offline"


async def test_a_request_through_the_api_is_answered_by_the_external_agent(ws_connect, owner, api_client):
    comm, _ = await connect_agent(ws_connect, owner)
    call = asyncio.create_task(api_request(api_client, owner, "echo", data={"x": 1}))
    await answer_requests(comm, "echo")
    response = await call
    assert response.status_code == 200
    assert response.json()["payload"]["data"] == {"echo": {"x": 1}, "by": "echo"}
    await comm.disconnect()


async def test_an_error_answer_from_the_agent_reaches_the_caller(ws_connect, owner, api_client):
    comm, _ = await connect_agent(ws_connect, owner)
    call = asyncio.create_task(api_request(api_client, owner, "echo"))
    request = await receive(comm)
    await send(comm, frame("echo", "ERROR", "error", {"code": "nope", "detail": "not today"},
                           correlation_id=request["header"]["message_id"]))
    response = await call
    assert response.status_code == 502 and response.json()["code"] == "nope"
    await comm.disconnect()


async def test_a_broadcast_reaches_the_connected_agent(ws_connect, owner, api_client):
    comm, _ = await connect_agent(ws_connect, owner)
    body = {"header": {"message_type": "broadcast"}, "payload": {"action": "news", "data": {"n": 1}}}
    response = await api_client(owner).post("/api/agents/messages", data=json.dumps(body),
                                            content_type="application/json")
    assert response.status_code == 202
    got = await receive(comm)
    assert got["header"]["message_type"] == "BROADCAST" and got["payload"]["data"] == {"n": 1}
    await comm.disconnect()


async def test_the_agent_can_ask_a_builtin(ws_connect, owner):
    comm, _ = await connect_agent(ws_connect, owner)
    ask = frame("echo", "REQUEST", "nonsense", recipient_id="knowledge")
    await send(comm, ask)
    answer = await receive(comm)
    assert answer["header"]["message_type"] == "ERROR"
    assert answer["header"]["correlation_id"] == ask["header"]["message_id"]
    assert answer["payload"]["data"]["code"] == "unknown_action"
    await comm.disconnect()


async def test_heartbeats_refresh_the_registry(ws_connect, owner):
    comm, _ = await connect_agent(ws_connect, owner)
    before = (await Agent.objects.aget(pk="echo")).last_heartbeat
    await send(comm, frame("echo", "HEARTBEAT", "heartbeat"))
    assert await comm.receive_nothing(0.2)
    assert (await Agent.objects.aget(pk="echo")).last_heartbeat > before
    await comm.disconnect()


async def test_agents_whose_heartbeats_stop_are_marked_offline(ws_connect, owner):
    from agents.services import agents_sweep

    comm, _ = await connect_agent(ws_connect, owner)
    await Agent.objects.filter(pk="echo").aupdate(last_heartbeat=datetime.now(UTC) - timedelta(hours=1))
    assert await agents_sweep() == 1
    assert (await Agent.objects.aget(pk="echo")).status == "offline"
    await comm.disconnect()


# --- bad input: an ERROR frame, and the connection stays open --------------------------


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("{nope", "invalid_json"),
        ("[1, 2]", "invalid_frame"),
        (json.dumps({"header": {"message_type": "SHOUT", "sender_id": "echo"}, "payload": {"action": "x"}}),
         "invalid_message"),
        (json.dumps({"header": {"message_type": "NOTIFICATION", "sender_id": "echo", "priority": "9"},
                     "payload": {"action": "x"}}), "invalid_message"),
        (json.dumps({"header": {"message_type": "NOTIFICATION", "sender_id": "echo"},
                     "payload": {"action": "x", "data": "not an object"}}), "invalid_message"),
    ],
    ids=["malformed", "not-object", "unknown-type", "unknown-priority", "wrong-type"],
)
async def test_a_bad_frame_gets_an_error_and_the_connection_stays_open(ws_connect, owner, raw, code):
    comm, _ = await connect_agent(ws_connect, owner)
    await send(comm, raw)
    error = await expect_error(comm, code)
    if code == "invalid_message" and "SHOUT" in raw:
        assert "REQUEST, RESPONSE, BROADCAST" in error["payload"]["data"]["detail"]
    await send(comm, frame("echo", "HEARTBEAT", "heartbeat"))
    assert await comm.receive_nothing(0.1)
    await comm.disconnect()


async def test_binary_frames_are_refused(ws_connect, owner):
    comm, _ = await connect_agent(ws_connect, owner)
    await comm.send_to(bytes_data=b"\x00\x01")
    await expect_error(comm, "binary_frame")
    await comm.disconnect()


async def test_frames_before_registration_are_refused(ws_connect, owner):
    comm = await ws_connect("/ws/agents/?agent_id=echo", user=owner, origin=None)
    await send(comm, frame("echo", "HEARTBEAT", "heartbeat"))
    await expect_error(comm, "not_registered")
    await comm.disconnect()


async def test_an_oversized_payload_is_refused(ws_connect, owner, settings):
    settings.AGENTS_MAX_PAYLOAD_BYTES = 2048
    comm, _ = await connect_agent(ws_connect, owner)
    await send(comm, frame("echo", data={"blob": "x" * 4000}))
    await expect_error(comm, "too_large")
    await comm.disconnect()


async def test_an_expired_message_is_refused(ws_connect, owner):
    comm, _ = await connect_agent(ws_connect, owner)
    old = (datetime.now(UTC) - timedelta(seconds=30)).isoformat()
    await send(comm, frame("echo", timestamp=old, ttl_seconds=5))
    await expect_error(comm, "expired")
    await comm.disconnect()


async def test_a_timestamp_far_in_the_future_is_refused(ws_connect, owner):
    comm, _ = await connect_agent(ws_connect, owner)
    await send(comm, frame("echo", timestamp=(datetime.now(UTC) + timedelta(days=1)).isoformat()))
    await expect_error(comm, "clock_skew")
    await comm.disconnect()


async def test_a_replayed_message_id_is_refused(ws_connect, owner):
    comm, _ = await connect_agent(ws_connect, owner)
    note = frame("echo", "BROADCAST", "hello")
    await send(comm, note)
    await send(comm, note)
    await expect_error(comm, "replayed")
    await comm.disconnect()


async def still_answers(comm, agent_id="echo"):
    """The socket still works: a request to a built-in is answered."""
    ask = frame(agent_id, "REQUEST", "nonsense", recipient_id="knowledge")
    await send(comm, ask)
    answer = await receive(comm)
    assert answer["header"]["correlation_id"] == ask["header"]["message_id"], answer
    assert answer["payload"]["data"]["code"] == "unknown_action"


async def test_a_message_replayed_on_a_new_connection_is_refused_and_the_socket_stays(ws_connect, owner):
    first, _ = await connect_agent(ws_connect, owner)
    note = frame("echo", "BROADCAST", "hello")
    await send(first, note)
    assert await first.receive_nothing(0.2)
    await first.disconnect()
    again, _ = await connect_agent(ws_connect, owner)
    await send(again, note)
    error = await expect_error(again, "replayed")
    assert error["header"]["correlation_id"] == note["header"]["message_id"]
    await still_answers(again)
    assert await AgentMessage.objects.filter(message_id=note["header"]["message_id"]).acount() == 1
    await again.disconnect()


async def test_a_heartbeat_replayed_on_a_new_connection_is_refused(ws_connect, owner):
    """Heartbeats are not logged: only the shared replay window can recognise this one."""
    first, _ = await connect_agent(ws_connect, owner)
    beat = frame("echo", "HEARTBEAT", "heartbeat")
    await send(first, beat)
    await still_answers(first)
    await first.disconnect()
    again, _ = await connect_agent(ws_connect, owner)
    await send(again, beat)
    error = await expect_error(again, "replayed")
    assert error["header"]["correlation_id"] == beat["header"]["message_id"]
    await still_answers(again)
    await again.disconnect()


async def test_a_response_with_an_unknown_correlation_id_is_refused(ws_connect, owner):
    comm, _ = await connect_agent(ws_connect, owner)
    await send(comm, frame("echo", "RESPONSE", "echo", correlation_id=str(uuid.uuid4())))
    await expect_error(comm, "unknown_correlation")
    await comm.disconnect()


async def test_an_agent_cannot_speak_as_another_agent(ws_connect, owner):
    comm, _ = await connect_agent(ws_connect, owner)
    await send(comm, frame("knowledge", "BROADCAST", "i-am-knowledge"))
    await expect_error(comm, "sender_mismatch")
    await comm.disconnect()


async def test_another_users_agent_id_cannot_be_taken(ws_connect, owner, stranger):
    first, _ = await connect_agent(ws_connect, owner)
    thief = await ws_connect("/ws/agents/?agent_id=echo", user=stranger, origin=None)
    await expect_error(thief, "agent_id_taken")
    assert (await thief.receive_output())["code"] == 4403
    assert (await Agent.objects.aget(pk="echo")).owner_id == owner.pk
    await first.disconnect()


async def test_a_builtin_id_cannot_be_taken(ws_connect, staff, api_client):
    await api_client(staff).get("/api/agents/")  # built-ins registered
    comm = await ws_connect("/ws/agents/?agent_id=knowledge", user=staff, origin=None)
    await expect_error(comm, "agent_id_taken")
    assert (await comm.receive_output())["code"] == 4403


async def test_an_invalid_agent_id_is_refused(ws_connect, owner):
    comm = await ws_connect("/ws/agents/?agent_id=no%20spaces", user=owner, origin=None)
    await expect_error(comm, "invalid_agent_id")
    assert (await comm.receive_output())["code"] == 4422


async def test_anonymous_agents_are_refused(ws_connect):
    comm = await ws_connect("/ws/agents/?agent_id=echo", user=None, origin=None)
    assert (await comm.receive_output())["code"] in (4401, 4403)


async def test_a_newer_connection_replaces_the_old_one(ws_connect, owner, api_client):
    old, _ = await connect_agent(ws_connect, owner)
    new, _ = await connect_agent(ws_connect, owner)
    await expect_error(old, "replaced")
    assert (await old.receive_output())["code"] == 4409
    call = asyncio.create_task(api_request(api_client, owner, "echo"))
    await answer_requests(new, "echo")
    assert (await call).status_code == 200
    await new.disconnect()


# --- signing ---------------------------------------------------------------------------


def signed(message, secret):
    return signing.sign_wire(message, secret)


async def test_an_agent_with_a_secret_must_sign(ws_connect, owner, api_client):
    await Agent.objects.acreate(id="signer", owner=owner, secret="s3cret")
    comm = await ws_connect("/ws/agents/?agent_id=signer", user=owner, origin=None)
    await send(comm, register_frame("signer"))
    await expect_error(comm, "signature_missing")
    bad = register_frame("signer")
    bad["header"]["signature"] = "0" * 64
    await send(comm, bad)
    await expect_error(comm, "signature_invalid")
    await send(comm, signed(register_frame("signer"), "s3cret"))
    assert (await receive(comm))["payload"]["action"] == "agent.registered"
    call = asyncio.create_task(api_request(api_client, owner, "signer"))
    request = await receive(comm)
    reply = frame("signer", "RESPONSE", "echo", {"ok": 1}, correlation_id=request["header"]["message_id"])
    await send(comm, signed(reply, "s3cret"))
    assert (await call).status_code == 200
    await comm.disconnect()


async def test_require_signed_refuses_agents_without_a_secret(ws_connect, owner, settings):
    settings.AGENTS_REQUIRE_SIGNED = True
    comm = await ws_connect("/ws/agents/?agent_id=plain", user=owner, origin=None)
    await send(comm, register_frame("plain"))
    await expect_error(comm, "signature_required")
    await comm.disconnect()


# --- rate limit ------------------------------------------------------------------------


async def test_a_flooding_agent_is_rate_limited_and_others_are_unaffected(ws_connect, owner, colleague,
                                                                         api_client, settings):
    settings.AGENTS_RATE_LIMIT = 0.5
    settings.AGENTS_RATE_BURST = 5
    flooder, _ = await connect_agent(ws_connect, owner, "flooder")
    calm, _ = await connect_agent(ws_connect, colleague, "calm")
    for _ in range(10):
        await send(flooder, frame("flooder", "HEARTBEAT", "heartbeat"))
    await expect_error(flooder, "rate_limited")
    call = asyncio.create_task(api_request(api_client, colleague, "calm"))
    await answer_requests(calm, "calm")
    assert (await call).status_code == 200
    await flooder.disconnect()
    await calm.disconnect()


# --- the page feed ---------------------------------------------------------------------


async def test_the_feed_sends_the_registry_then_live_changes(ws_connect, owner, api_client):
    feed = await ws_connect("/ws/agents/feed/", user=owner)
    snapshot = await feed.receive_json_from(timeout=5)
    assert snapshot["type"] == "agents"
    assert "knowledge" in {a["id"] for a in snapshot["items"]}
    comm, _ = await connect_agent(ws_connect, owner)
    event = await feed.receive_json_from(timeout=5)
    assert event["type"] == "agent" and event["item"]["id"] == "echo" and event["item"]["status"] == "online"
    call = asyncio.create_task(api_request(api_client, owner, "echo"))
    await answer_requests(comm, "echo")
    await call
    kinds = [(await feed.receive_json_from(timeout=5))["item"]["status"] for _ in range(2)]
    assert kinds == ["delivered", "answered"]
    await comm.disconnect()
    await feed.disconnect()


async def test_the_feed_does_not_show_other_users_messages(ws_connect, owner, stranger, api_client):
    feed = await ws_connect("/ws/agents/feed/", user=stranger)
    await feed.receive_json_from(timeout=5)
    comm, _ = await connect_agent(ws_connect, owner)
    assert (await feed.receive_json_from(timeout=5))["type"] == "agent"
    call = asyncio.create_task(api_request(api_client, owner, "echo"))
    await answer_requests(comm, "echo")
    await call
    assert await feed.receive_nothing(0.2)
    assert await AgentMessage.objects.acount() == 1
    await comm.disconnect()
    await feed.disconnect()
