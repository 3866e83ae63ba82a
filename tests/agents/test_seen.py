"""The shared replay window (agents/seen.py): one record for every connection and worker, and a
Redis that cannot be reached lets messages through (the message log still refuses a copy) without
making every frame wait for it."""

import asyncio
import logging
import os
import re
import signal
import time
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


def skipping(text: str) -> float:
    match = re.search(r"^autobot_agents_seen_redis_skipped (\S+)$", text, re.MULTILINE)
    return float(match[1]) if match else 0.0


@pytest.fixture
async def own_redis(settings):
    """REDIS_URL names a redis-server of the test's own (the channel layer stays in memory: only
    the replay window's Redis is at stake)."""
    server = await asyncio.to_thread(RedisServer().start)
    settings.REDIS_URL = server.url
    yield server
    if server.proc is not None:
        os.kill(server.proc.pid, signal.SIGCONT)  # a stopped process acts on SIGTERM only once continued
    await asyncio.to_thread(server.stop)


async def test_with_redis_unreachable_a_message_is_accepted_and_counted(own_redis, ws_connect, owner,
                                                                        staff, api_client, caplog):
    comm, _ = await connect_agent(ws_connect, owner)  # its id recorded in the running Redis
    await asyncio.to_thread(own_redis.stop)
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


def replay_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "agents.seen" and r.levelno >= logging.WARNING]


async def test_a_blackholed_redis_holds_up_one_frame_not_each_and_is_used_again_once_back(
        own_redis, ws_connect, owner, staff, api_client, settings, caplog):
    """SIGSTOP makes the test's Redis a blackhole: the kernel still accepts connections and
    commands, nothing ever answers, so every check that asks it waits out the whole timeout."""
    settings.AGENTS_REPLAY_REDIS_TIMEOUT_SECONDS = 1.0
    settings.AGENTS_REPLAY_REDIS_COOLDOWN_SECONDS = 3.0
    settings.HEALTH_TIMEOUT_SECONDS = 0.5
    comm, _ = await connect_agent(ws_connect, owner)  # registered through the running Redis
    observer = api_client(staff)
    os.kill(own_redis.proc.pid, signal.SIGSTOP)

    burst = [frame("echo", "REQUEST", "search", {"q": "anything"}, recipient_id="knowledge") for _ in range(8)]
    started = time.monotonic()
    for ask in burst:
        await send(comm, ask)
    answers = [await receive(comm) for _ in burst]
    elapsed = time.monotonic() - started
    assert {a["header"]["message_type"] for a in answers} == {"RESPONSE"}, answers
    assert {a["header"]["correlation_id"] for a in answers} == {a["header"]["message_id"] for a in burst}
    # Had each frame waited for Redis, the burst would take at least len(burst) timeouts.
    assert elapsed < len(burst) * settings.AGENTS_REPLAY_REDIS_TIMEOUT_SECONDS
    warnings = replay_warnings(caplog)
    assert len(warnings) == 1 and "Redis unreachable" in warnings[0], warnings  # once, not per frame
    assert skipping((await observer.get("/metrics")).content.decode()) == 1
    health = (await observer.get("/api/health")).json()
    assert health["checks"]["redis"]["status"] == "fail"
    assert health["checks"]["redis"]["agents_replay_checks"] == "skipped"

    os.kill(own_redis.proc.pid, signal.SIGCONT)
    # Until a frame after the cool-down asks Redis again, copies still pass unchecked; then the
    # second copy of a heartbeat (never logged: only the window can tell) is refused.
    deadline = time.monotonic() + 30
    while True:
        beat = frame("echo", "HEARTBEAT", "heartbeat")
        await send(comm, beat)
        await send(comm, beat)
        if not await comm.receive_nothing(0.5):
            error = await expect_error(comm, "replayed")
            assert error["header"]["correlation_id"] == beat["header"]["message_id"]
            break
        assert time.monotonic() < deadline, "replay checks did not use Redis again after it came back"
    assert "Redis answers again" in replay_warnings(caplog)[-1]
    assert skipping((await observer.get("/metrics")).content.decode()) == 0
    health = (await observer.get("/api/health")).json()
    assert health["checks"]["redis"] == {**health["checks"]["redis"], "status": "ok", "agents_replay_checks": "on"}
    await comm.disconnect()


def test_after_the_cool_down_one_check_probes_redis_while_the_others_still_skip_it():
    breaker = seen.Breaker()
    assert breaker.allows() and breaker.allows()  # closed: every check asks Redis
    assert breaker.failed(cool_down=0.0)  # a new outage (the one that logs)
    assert breaker.allows()  # the probe
    assert not breaker.allows()  # the others do not queue behind it
    breaker.abandoned()  # its socket closed mid-probe
    assert breaker.allows()
    assert not breaker.failed(cool_down=0.0)  # the same outage: no new warning
    assert breaker.allows()
    assert breaker.answered()  # closed again, and says it was open
    assert breaker.allows() and breaker.allows() and not breaker.is_open


async def test_a_signed_registration_is_refused_not_let_through_while_redis_is_blackholed(
        own_redis, ws_connect, owner, settings):
    """A registration is never logged, so nothing else would catch its copy, and a copy would take
    the agent's socket: unchecked, it fails closed. Other frames keep failing open."""
    from agents.models import Agent
    from tests.agents.test_consumers import register_frame, signed

    settings.AGENTS_REPLAY_REDIS_TIMEOUT_SECONDS = 1.0
    settings.AGENTS_REPLAY_REDIS_COOLDOWN_SECONDS = 2.0
    await Agent.objects.acreate(id="signer", owner=owner, secret="s3cret")
    comm = await ws_connect("/ws/agents/?agent_id=signer", user=owner, origin=None)
    hello = signed(register_frame("signer"), "s3cret")
    os.kill(own_redis.proc.pid, signal.SIGSTOP)
    await send(comm, hello)
    error = await expect_error(comm, "replay_check_unavailable")
    assert error["header"]["correlation_id"] == hello["header"]["message_id"]
    await send(comm, signed(register_frame("signer"), "s3cret"))  # still skipped: refused at once
    await expect_error(comm, "replay_check_unavailable")

    os.kill(own_redis.proc.pid, signal.SIGCONT)
    deadline = time.monotonic() + 30
    while True:  # the agent retries the same frame: once the cool-down is over it probes Redis
        await asyncio.sleep(0.5)
        await send(comm, hello)
        answer = await receive(comm)
        if answer["header"]["message_type"] == "RESPONSE":
            assert answer["payload"]["action"] == "agent.registered"
            break
        assert answer["payload"]["data"]["code"] == "replay_check_unavailable", answer
        assert time.monotonic() < deadline, "registration never accepted after Redis came back"
    await send(comm, hello)  # its copy, now that the check is made again, is a replay
    await expect_error(comm, "replayed")
    await comm.disconnect()
