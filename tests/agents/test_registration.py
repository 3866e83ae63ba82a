"""The first registration of an agent id: two users at once, exactly one keeps it (security review,
issue agents3-2). Before the fix both passed the ownership check, both were told
`agent.registered`, and the row belonged to whoever wrote last."""

import asyncio

import pytest

from agents import services
from agents.models import Agent
from autobot.errors import AppError
from tests.agents.test_consumers import receive, register_frame, send

pytestmark = pytest.mark.django_db(transaction=True)

DATA = {"name": "deployer", "capabilities": ["deploy"], "version": "1"}


async def register(user, connection):
    return await services.agent_register(user=user, agent_id="deployer", data=DATA, connection=connection)


async def test_two_users_registering_a_new_id_at_once_one_wins(owner, stranger):
    results = await asyncio.gather(register(owner, "conn-owner"), register(stranger, "conn-stranger"),
                                   return_exceptions=True)
    refused = [r for r in results if isinstance(r, AppError)]
    assert len(refused) == 1, results
    assert refused[0].code == "agent_id_taken" and refused[0].status == 403
    winner = owner if refused[0] is results[1] else stranger
    row = await Agent.objects.aget(pk="deployer")
    assert row.owner_id == winner.pk and row.connection == f"conn-{winner.username}"


async def test_one_user_registering_a_new_id_twice_at_once_keeps_it(owner):
    (first, _), (second, previous) = await asyncio.gather(register(owner, "conn-1"), register(owner, "conn-2"))
    row = await Agent.objects.aget(pk="deployer")
    assert row.owner_id == owner.pk and row.connection == "conn-2"
    assert previous == "conn-1"  # the newer connection evicts the older, as on any re-registration


async def test_two_sockets_of_two_users_registering_a_new_id_at_once(ws_connect, owner, stranger):
    mine = await ws_connect("/ws/agents/?agent_id=deployer", user=owner, origin=None)
    theirs = await ws_connect("/ws/agents/?agent_id=deployer", user=stranger, origin=None)
    await asyncio.gather(send(mine, register_frame("deployer", ("deploy",))),
                         send(theirs, register_frame("deployer", ("deploy",))))
    answers = await asyncio.gather(receive(mine), receive(theirs))
    actions = sorted(a["payload"]["action"] for a in answers)
    assert actions == ["agent.registered", "error"], answers
    loser = answers.index(next(a for a in answers if a["header"]["message_type"] == "ERROR"))
    assert answers[loser]["payload"]["data"]["code"] == "agent_id_taken"
    loser_comm = (mine, theirs)[loser]
    assert (await loser_comm.receive_output())["code"] == 4403
    row = await Agent.objects.aget(pk="deployer")
    assert row.owner_id == (stranger, owner)[loser].pk
    await (mine, theirs)[1 - loser].disconnect()

