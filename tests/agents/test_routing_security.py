"""Capability routing and agent ids cannot be used to read other users' requests (issue 14)."""

import asyncio
import json

import pytest

from agents.models import Agent
from tests.agents.test_consumers import connect_agent, expect_error, frame, receive, send

pytestmark = pytest.mark.django_db(transaction=True)


async def capability_request(api_client, user, capability, data, wait_seconds=5):
    body = {"header": {"message_type": "REQUEST", "capability": capability},
            "payload": {"action": "lookup", "data": data}}
    return await api_client(user).post(f"/api/agents/messages?wait=true&timeout={wait_seconds}",
                                       data=json.dumps(body), content_type="application/json")


async def answer_one(comm, agent_id):
    request = await receive(comm)
    await send(comm, frame(agent_id, "RESPONSE", "lookup", {"by": agent_id, "saw": request["payload"]["data"]},
                           correlation_id=request["header"]["message_id"]))
    return request


async def test_another_users_capability_request_never_reaches_a_private_agent(ws_connect, owner, stranger,
                                                                               api_client):
    spy, _ = await connect_agent(ws_connect, stranger, agent_id="spy", capabilities=("lookup",))
    response = await capability_request(api_client, owner, "lookup", {"q": "owner's secret plans"}, wait_seconds=1)
    assert response.status_code == 503  # no agent serves the owner; the stranger's is not asked
    assert await spy.receive_nothing(timeout=0.3)
    await spy.disconnect()


async def test_the_owners_own_agent_serves_the_owner(ws_connect, owner, api_client):
    mine, _ = await connect_agent(ws_connect, owner, agent_id="mine", capabilities=("lookup",))
    call = asyncio.create_task(capability_request(api_client, owner, "lookup", {"q": "x"}))
    await answer_one(mine, "mine")
    response = await call
    assert response.status_code == 200 and response.json()["payload"]["data"]["by"] == "mine"
    await mine.disconnect()


async def test_an_agent_staff_shared_serves_everyone(ws_connect, owner, stranger, api_client):
    shared, _ = await connect_agent(ws_connect, stranger, agent_id="helpdesk", capabilities=("lookup",))
    await Agent.objects.filter(pk="helpdesk").aupdate(shared=True)  # what staff do in the admin
    call = asyncio.create_task(capability_request(api_client, owner, "lookup", {"q": "hello"}))
    await answer_one(shared, "helpdesk")
    assert (await call).status_code == 200
    await shared.disconnect()


async def test_a_capability_notification_is_not_fanned_out_to_other_users_agents(ws_connect, owner, stranger,
                                                                                  api_client):
    spy, _ = await connect_agent(ws_connect, stranger, agent_id="spy", capabilities=("lookup",))
    mine, _ = await connect_agent(ws_connect, owner, agent_id="mine", capabilities=("lookup",))
    body = {"header": {"message_type": "NOTIFICATION", "capability": "lookup"},
            "payload": {"action": "note", "data": {"text": "owner only"}}}
    response = await api_client(owner).post("/api/agents/messages", data=json.dumps(body),
                                            content_type="application/json")
    assert response.status_code == 202
    assert (await receive(mine))["payload"]["data"] == {"text": "owner only"}
    assert await spy.receive_nothing(timeout=0.3)
    await spy.disconnect()
    await mine.disconnect()


@pytest.mark.parametrize("lookalike", ["Knowledge", "knowledge.", "TERMINAL", "terminal.", "chat-", "Echo_"])
async def test_lookalike_agent_ids_are_refused(ws_connect, owner, stranger, api_client, lookalike):
    await api_client(owner).get("/api/agents/")  # the built-ins are registered
    first, _ = await connect_agent(ws_connect, owner, agent_id="echo")
    comm = await ws_connect(f"/ws/agents/?agent_id={lookalike}", user=stranger, origin=None)
    await expect_error(comm, "agent_id_lookalike")
    assert (await comm.receive_output())["code"] == 4403
    assert not await Agent.objects.filter(pk=lookalike).aexists()
    await first.disconnect()


async def test_an_owner_may_reconnect_under_the_same_id(ws_connect, owner):
    first, _ = await connect_agent(ws_connect, owner, agent_id="echo")
    await first.disconnect()
    again, _ = await connect_agent(ws_connect, owner, agent_id="echo")
    await again.disconnect()
