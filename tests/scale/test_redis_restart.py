"""A restart of Redis: every supervised reader comes back on its own and health says when not.

The test runs its own redis-server on another loopback port and restarts that one."""

import asyncio
import json

import pytest
from django.test import AsyncClient

from autobot import supervise
from tests.agents.test_consumers import api_request

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis, pytest.mark.timeout(120)]


async def health() -> dict:
    return (await AsyncClient().get("/api/health")).json()


async def wait_for(predicate, what: str, seconds: float = 40):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not await predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}: {await health()}")
        await asyncio.sleep(0.2)


async def test_readers_recover_after_a_redis_restart(own_redis, owner, api_client):
    before = await api_request(api_client, owner, "knowledge", action="search", data={"q": "x"})
    assert before.status_code == 200, before.content
    assert supervise.readers(), "the bus and the built-in agents run supervised readers"

    await asyncio.to_thread(own_redis.stop)

    async def readers_down():
        return "agents-bus-replies" in supervise.not_running()

    await wait_for(readers_down, "a reader to notice Redis is gone")
    report = await health()
    assert report["status"] == "fail" and report["checks"]["readers"]["status"] == "fail"
    assert "agents-bus-replies" in report["checks"]["readers"]["readers"]
    assert "agents-bus-replies" in report["detail"]

    await asyncio.to_thread(own_redis.start)  # same port, empty: every group is gone

    async def all_healthy():
        return (await health())["status"] == "ok"

    await wait_for(all_healthy, "every reader to come back")
    after = await api_request(api_client, owner, "knowledge", action="search", data={"q": "x"})
    assert after.status_code == 200, after.content
    # The built-in's groups were re-joined: capability routing reaches it again.
    body = {"header": {"message_type": "REQUEST", "capability": "search"},
            "payload": {"action": "search", "data": {"q": "x"}}}
    by_capability = await api_client(owner).post("/api/agents/messages?wait=true&timeout=5",
                                                 data=json.dumps(body), content_type="application/json")
    assert by_capability.status_code == 200, by_capability.content
