"""An answer sent after the agent reconnected reaches its asker (issue agents4).

Before, each connection kept its own map of the requests it handed over, so a RESPONSE sent on
the new connection, after a hand-over or after the old socket dropped, was refused as
`unknown_correlation` and the asker waited for its timeout although the answer existed. The
request's claim now keeps where its answer goes: taken once, from the agent the request was sent
to, until the asker's deadline. Real sockets, on the in-memory layer and on Redis; the same across
worker processes is in test_cluster.py.
"""

import asyncio
import json

import pytest

from agents.models import AgentMessage
from tests.agents.test_consumers import api_request, connect_agent, expect_error, frame, receive, send

pytestmark = pytest.mark.django_db(transaction=True)



def answer_to(request, agent_id="echo", **data):
    return frame(agent_id, "RESPONSE", request["payload"]["action"], {"by": agent_id, **data},
                 correlation_id=request["header"]["message_id"])


async def test_an_answer_sent_after_a_hand_over_reaches_the_asker(layer, ws_connect, owner, api_client):
    old, _ = await connect_agent(ws_connect, owner)
    call = asyncio.create_task(api_request(api_client, owner, "echo", data={"x": 1}, wait_seconds=10))
    request = await receive(old)
    new, _ = await connect_agent(ws_connect, owner)  # newest connection wins
    await expect_error(old, "replaced")
    assert (await old.receive_output())["code"] == 4409
    await send(new, answer_to(request, via="new"))
    response = await call
    assert response.status_code == 200, response.json()
    assert response.json()["payload"]["data"] == {"by": "echo", "via": "new"}
    assert await new.receive_nothing(0.2)  # no ERROR frame, and the request is not handed over again
    await new.disconnect()


async def test_an_answer_sent_after_the_old_socket_dropped_reaches_the_asker(layer, ws_connect, owner, api_client):
    old, _ = await connect_agent(ws_connect, owner)
    call = asyncio.create_task(api_request(api_client, owner, "echo", wait_seconds=10))
    request = await receive(old)
    await old.disconnect()  # gone mid-request, no hand-over
    new, _ = await connect_agent(ws_connect, owner)
    await send(new, answer_to(request))
    response = await call
    assert response.status_code == 200, response.json()
    assert response.json()["header"]["correlation_id"] == request["header"]["message_id"]
    assert await new.receive_nothing(0.2)
    await new.disconnect()


async def test_an_error_answer_after_a_reconnect_reaches_the_asker(layer, ws_connect, owner, api_client):
    old, _ = await connect_agent(ws_connect, owner)
    call = asyncio.create_task(api_request(api_client, owner, "echo", wait_seconds=10))
    request = await receive(old)
    await old.disconnect()
    new, _ = await connect_agent(ws_connect, owner)
    await send(new, frame("echo", "ERROR", "error", {"code": "nope", "detail": "not today"},
                          correlation_id=request["header"]["message_id"]))
    response = await call
    assert response.status_code == 502 and response.json()["code"] == "nope"
    await new.disconnect()


async def test_another_agent_cannot_answer_and_the_answer_is_taken_once(layer, ws_connect, owner, api_client):
    echo, _ = await connect_agent(ws_connect, owner, "echo")
    other, _ = await connect_agent(ws_connect, owner, "other")  # the same user's other agent
    call = asyncio.create_task(api_request(api_client, owner, "echo", wait_seconds=10))
    request = await receive(echo)
    await send(other, answer_to(request, "other"))
    await expect_error(other, "unknown_correlation")
    await echo.disconnect()
    again, _ = await connect_agent(ws_connect, owner, "echo")
    await send(again, answer_to(request, n=1))
    response = await call
    assert response.status_code == 200 and response.json()["payload"]["data"] == {"by": "echo", "n": 1}
    await send(again, answer_to(request, n=2))  # a second answer, under a new message id
    await expect_error(again, "unknown_correlation")
    await other.disconnect()
    await again.disconnect()


async def test_an_answer_after_the_askers_deadline_is_refused(layer, ws_connect, owner, api_client):
    old, _ = await connect_agent(ws_connect, owner)
    call = asyncio.create_task(api_request(api_client, owner, "echo", wait_seconds=0.5))
    request = await receive(old)
    assert (await call).status_code == 504  # the agent is live but slow: the asker gave up
    new, _ = await connect_agent(ws_connect, owner)
    await send(new, answer_to(request))
    error = await expect_error(new, "unknown_correlation")
    assert "deadline" in error["payload"]["data"]["detail"]
    row = await AgentMessage.objects.aget(message_id=request["header"]["message_id"])
    assert row.status == AgentMessage.Status.TIMED_OUT
    await new.disconnect()


async def test_an_unawaited_request_answered_after_a_reconnect_is_logged_answered(layer, ws_connect, owner,
                                                                                    api_client):
    feed = await ws_connect("/ws/agents/feed/", user=owner)
    await feed.receive_json_from(timeout=5)  # the registry
    old, _ = await connect_agent(ws_connect, owner)
    body = {"header": {"message_type": "REQUEST", "recipient_id": "echo"}, "payload": {"action": "echo"}}
    accepted = await api_client(owner).post("/api/agents/messages", data=json.dumps(body),
                                            content_type="application/json")
    assert accepted.status_code == 202
    request = await receive(old)
    await old.disconnect()
    new, _ = await connect_agent(ws_connect, owner)
    await send(new, answer_to(request))
    while True:  # the feed shows the log row change as it happens
        event = await feed.receive_json_from(timeout=5)
        if event["type"] == "message" and event["item"]["status"] == "answered":
            break
    assert event["item"]["message_id"] == request["header"]["message_id"]
    await new.disconnect()
    await feed.disconnect()
