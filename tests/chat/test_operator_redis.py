"""With several workers (Redis channel layer), a decision made in another process reaches the
turn over the session's control group."""

import os
import uuid

import pytest
from channels.layers import get_channel_layer

from chat import generation, services
from chat.operator import approvals, turn
from tests.chat.test_operator import call, run_turn

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]


@pytest.fixture
async def redis_layer(settings):
    settings.CHANNEL_LAYERS = {"default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [os.environ["AUTOBOT_TEST_REDIS_URL"]], "prefix": f"t{uuid.uuid4().hex[:8]}"}}}
    yield get_channel_layer()
    await get_channel_layer().flush()


async def test_an_approval_decided_in_another_worker_wakes_the_turn(owner, llm, redis_layer, monkeypatch):
    monkeypatch.setattr(turn, "POLL_SECONDS", 600.0)  # only the notice can wake it in time
    llm.script = [{"tool_calls": [call("files_write", {"path": ".profile", "content": "x\n"}, "w")]},
                  {"text": "Written."}]
    session = await services.session_create(user=owner, model="fakeai/fake-large")

    async def decide_elsewhere(approval):
        # What another worker does: the decision in the database, the notice on the layer.
        await approvals.approval_decide(user=owner, session_id=session.id, approval_id=approval["id"],
                                        decision="approve")
        await redis_layer.group_send(generation.control_group(session.id),
                                     {"type": "chat.approval_decided", "approval_id": approval["id"]})

    reply, _ = await run_turn(owner, session, "set it", on_approval=decide_elsewhere)

    assert reply["tool_calls"][0]["status"] == "done"
