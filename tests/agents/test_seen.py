"""The shared replay window (agents/seen.py): one record for every connection and worker, and a
Redis that cannot be reached lets messages through (the message log still refuses a copy)."""

import asyncio
import os
import re
import uuid

import pytest

from agents import seen
from autobot.testbed import RedisServer
from tests.agents.test_consumers import connect_agent, expect_error, frame, receive, send

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.redis
async def test_an_id_recorded_through_one_redis_client_is_seen_through_another(settings):
    """Two clients with pools of their own, as two workers have: the record is Redis's, not theirs."""
    url = os.environ["AUTOBOT_TEST_REDIS_URL"]
    first, second = seen._redis_client(url), seen._redis_client(url)
    try:
        one = seen.RedisSeen(first, window_seconds=60)
        other = seen.RedisSeen(second, window_seconds=60)
        message_id = str(uuid.uuid4())
        assert not await one.seen(message_id)
        assert await other.seen(message_id)
        assert await one.seen(message_id)
        assert 0 < await first.pttl(seen.KEY_PREFIX + message_id) <= 60_000  # it expires with the window
    finally:
        await first.aclose()
        await second.aclose()


def unavailable_count(text: str) -> float:
    match = re.search(r"^autobot_agents_seen_unavailable_total (\S+)$", text, re.MULTILINE)
    return float(match[1]) if match else 0.0


@pytest.fixture
async def stopped_redis(settings):
    """REDIS_URL names a redis-server of the test's own that has been stopped (the channel layer
    stays in memory: only the replay window's Redis is gone)."""
    server = await asyncio.to_thread(RedisServer().start)
    settings.REDIS_URL = server.url
    yield server
    await asyncio.to_thread(server.stop)


async def test_with_redis_unreachable_a_message_is_accepted_and_counted(stopped_redis, ws_connect, owner,
                                                                        staff, api_client, caplog):
    comm, _ = await connect_agent(ws_connect, owner)  # its id recorded in the running Redis
    await asyncio.to_thread(stopped_redis.stop)
    metrics = api_client(staff)
    before = unavailable_count((await metrics.get("/metrics")).content.decode())

    ask = frame("echo", "REQUEST", "search", {"q": "anything"}, recipient_id="knowledge")
    await send(comm, ask)
    answer = await receive(comm)
    assert answer["header"]["message_type"] == "RESPONSE", answer
    assert answer["header"]["correlation_id"] == ask["header"]["message_id"]
    assert unavailable_count((await metrics.get("/metrics")).content.decode()) > before
    assert any("Redis unreachable" in r.getMessage() for r in caplog.records if r.name == "agents.seen")

    await send(comm, ask)  # unchecked by the window, but the message log knows the id
    error = await expect_error(comm, "replayed")
    assert error["header"]["correlation_id"] == ask["header"]["message_id"]
    await comm.disconnect()
