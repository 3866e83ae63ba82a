"""Staff change a connected agent's secret, owner or kind in the admin (or delete it): its sockets
close, so it must connect again and sign (security review, issue agents3-3). Before the fix the
socket kept checking frames against the row it read at connect: unsigned frames were accepted
until the agent happened to reconnect."""


import pytest
from django.test import AsyncClient

from agents import signing
from agents.models import Agent
from tests.agents.test_consumers import connect_agent, expect_error, frame, receive, register_frame, send

pytestmark = pytest.mark.django_db(transaction=True)


async def admin_client(staff) -> AsyncClient:
    client = AsyncClient()
    await client.aforce_login(staff)
    return client


async def admin_change(client, agent_id, **changes):
    """Post the admin's change form for the agent, with ``changes`` over its current values."""
    agent = await Agent.objects.aget(pk=agent_id)
    form = {"id": agent.id, "name": agent.name, "description": agent.description, "kind": agent.kind,
            "owner": agent.owner_id or "", "capabilities": '["echo"]', "version": agent.version,
            "secret": agent.secret, **changes}
    response = await client.post(f"/admin/agents/agent/{agent_id}/change/", form)
    assert response.status_code == 302, response.content.decode()[:2000]  # saved, back to the list


async def expect_closed(comm, code):
    await expect_error(comm, "credentials_changed")
    assert (await comm.receive_output())["code"] == code


async def test_an_agent_given_a_secret_must_reconnect_and_sign(ws_connect, owner, staff):
    comm, _ = await connect_agent(ws_connect, owner)
    await admin_change(await admin_client(staff), "echo", secret="s3cret")
    await expect_closed(comm, 4401)
    await comm.disconnect()  # the client's side of the close: the server then marks it offline
    assert (await Agent.objects.aget(pk="echo")).status == "offline"
    again = await ws_connect("/ws/agents/?agent_id=echo", user=owner, origin=None)
    await send(again, register_frame("echo"))
    await expect_error(again, "signature_missing")
    await send(again, signing.sign_wire(register_frame("echo"), "s3cret"))
    assert (await receive(again))["payload"]["action"] == "agent.registered"
    await again.disconnect()


async def test_a_socket_not_yet_registered_is_closed_too(ws_connect, owner, staff):
    await Agent.objects.acreate(id="echo", owner=owner, capabilities=["echo"])
    waiting = await ws_connect("/ws/agents/?agent_id=echo", user=owner, origin=None)
    await admin_change(await admin_client(staff), "echo", secret="s3cret")
    await expect_closed(waiting, 4401)


async def test_an_agent_given_to_another_owner_is_closed_and_its_old_owner_refused(ws_connect, owner, stranger,
                                                                                   staff):
    comm, _ = await connect_agent(ws_connect, owner)
    await admin_change(await admin_client(staff), "echo", owner=stranger.pk)
    await expect_closed(comm, 4401)
    again = await ws_connect("/ws/agents/?agent_id=echo", user=owner, origin=None)
    await expect_error(again, "agent_id_taken")


async def test_a_deleted_agent_is_closed(ws_connect, owner, staff):
    comm, _ = await connect_agent(ws_connect, owner)
    client = await admin_client(staff)
    response = await client.post("/admin/agents/agent/echo/delete/", {"post": "yes"})
    assert response.status_code == 302
    await expect_closed(comm, 4401)


async def test_other_changes_leave_the_socket_open(ws_connect, owner, staff):
    comm, _ = await connect_agent(ws_connect, owner)
    await admin_change(await admin_client(staff), "echo", name="Echo, renamed", shared="on")
    await send(comm, frame("echo", "HEARTBEAT", "heartbeat"))
    assert await comm.receive_nothing(0.3)
    await comm.disconnect()


async def test_only_that_agents_sockets_are_closed(ws_connect, owner, staff):
    mine, _ = await connect_agent(ws_connect, owner)
    other, _ = await connect_agent(ws_connect, owner, "other")
    await admin_change(await admin_client(staff), "echo", secret="s3cret")
    await expect_closed(mine, 4401)
    await send(other, frame("other", "HEARTBEAT", "heartbeat"))
    assert await other.receive_nothing(0.3)
    await other.disconnect()
