"""The bus core against real channel layers: in-memory, and Redis when configured."""

import asyncio
import os
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from channels.layers import InMemoryChannelLayer

from agents.bus import (
    AgentEndpoint,
    AgentError,
    AgentUnavailable,
    Backlog,
    Bus,
    BusConfig,
    DeliveryFailed,
    HandlerError,
    _Timeouts,
    seal,
)
from agents.protocol import Header, Message, MessageType, Payload, Priority

KEY = "test-server-key"
FAST = BusConfig(request_timeout=2.0, retry_attempts=3, backoff_base=0.01, backoff_max=0.05)


def make_layer(kind, **options):
    if kind == "memory":
        return InMemoryChannelLayer(**options)
    url = os.environ.get("AUTOBOT_TEST_REDIS_URL")
    if not url:
        pytest.skip("AUTOBOT_TEST_REDIS_URL not set")
    from channels_redis.core import RedisChannelLayer

    from autobot.redisconf import channel_layer_config

    config = channel_layer_config(url, prefix=f"t{uuid.uuid4().hex[:8]}")["CONFIG"]
    return RedisChannelLayer(**{**config, **options})


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def layer_kind(request):
    return request.param


@pytest.fixture
async def bus(layer_kind):
    layer = make_layer(layer_kind)
    bus = await Bus(layer, KEY, config=FAST, sender_id="tester").start()
    endpoints = []
    bus.test_endpoints = endpoints
    yield bus
    for endpoint in endpoints:
        await endpoint.stop()
    await bus.close()
    if layer_kind == "redis":
        await layer.flush()


async def start(bus, agent_id, handler, **options):
    endpoint = await AgentEndpoint(bus, agent_id, handler, **options).start()
    bus.test_endpoints.append(endpoint)
    return endpoint


async def echo(message):
    return {"echo": message.payload.data}


async def test_a_request_to_an_agent_gets_its_response(bus):
    await start(bus, "echo", echo)
    answer = await bus.request("echo", "echo", {"x": 1})
    assert answer.header.message_type is MessageType.RESPONSE
    assert answer.header.sender_id == "echo"
    assert answer.payload.data == {"echo": {"x": 1}}


async def test_responses_are_matched_by_correlation_id(bus):
    async def slow_echo(message):
        await asyncio.sleep(0.01 * message.payload.data["n"])  # answer out of order
        return {"n": message.payload.data["n"]}

    await start(bus, "echo", slow_echo, concurrency=5)
    answers = await asyncio.gather(*(bus.request("echo", "echo", {"n": n}) for n in range(5, 0, -1)))
    assert [a.payload.data["n"] for a in answers] == [5, 4, 3, 2, 1]


async def test_a_request_to_a_capability_is_balanced_round_robin(bus):
    seen = []

    def worker(name):
        async def handle(message):
            seen.append(name)
            return {}
        return handle

    await start(bus, "w1", worker("w1"), capabilities=["math"])
    await start(bus, "w2", worker("w2"), capabilities=["math"])
    for _ in range(4):
        await bus.request("math", "add", {})
    assert sorted(seen) == ["w1", "w1", "w2", "w2"]
    assert seen[0] != seen[1]


async def test_an_error_answer_raises_agent_error(bus):
    async def refuse(message):
        raise HandlerError("no such thing", code="not_found")

    await start(bus, "picky", refuse)
    with pytest.raises(AgentError) as caught:
        await bus.request("picky", "get", {})
    assert caught.value.code == "not_found"
    assert caught.value.message.header.message_type is MessageType.ERROR


async def test_a_request_to_nobody_raises_unavailable_after_retries(bus):
    with pytest.raises(AgentUnavailable):
        await bus.request("nobody", "ping", {}, timeout=0.5)
    assert bus.stats.retries == FAST.retry_attempts - 1


async def test_a_slow_agent_keeps_its_request_and_it_is_not_sent_again(bus):
    calls = []

    async def slow(message):
        calls.append(message.header.message_id)
        await asyncio.sleep(0.8)  # the work outlasts a share of the deadline (3 s / 6 attempts)
        return {"ok": True}

    endpoint = await start(bus, "slow", slow)
    answer = await bus.request("slow", "work", {}, timeout=3.0, attempts=6)
    assert answer.payload.data == {"ok": True}
    assert len(calls) == 1
    assert bus.stats.retries == 0 and not endpoint.inbox.duplicate_seen.is_set()


async def test_a_repeated_request_id_gets_the_cached_answer_without_rehandling(bus):
    calls = []

    async def count(message):
        calls.append(1)
        return {"n": len(calls)}

    await start(bus, "counter", count)
    message = bus.message(MessageType.REQUEST, "inc", recipient_id="counter")
    first = await bus.request_message(message)
    second = await bus.request_message(message)
    assert first.payload.data == second.payload.data == {"n": 1}
    assert calls == [1]
    assert bus.stats.duplicates == 1


async def test_a_slow_capability_agent_keeps_the_request_and_no_other_agent_gets_it(bus):
    seen = []

    def worker(name, seconds):
        async def handle(message):
            seen.append(name)
            await asyncio.sleep(seconds)
            return {"by": name}
        return handle

    await start(bus, "a-slow", worker("a-slow", 0.8), capabilities=["deploy"])  # picked first (by name)
    await start(bus, "b-idle", worker("b-idle", 0), capabilities=["deploy"])
    answer = await bus.request("deploy", "release", {}, timeout=3.0, attempts=6)
    assert answer.header.sender_id == "a-slow"
    assert seen == ["a-slow"]
    assert bus.stats.retries == 0


async def test_a_capability_request_goes_to_another_agent_when_its_agent_goes_offline(bus):
    async def vanish(message):
        await bus.directory.remove("a-gone")  # what the registry records when its socket closes
        await asyncio.Event().wait()

    async def ok(message):
        return {"by": "b-ok"}

    await start(bus, "a-gone", vanish, capabilities=["search"])
    await start(bus, "b-ok", ok, capabilities=["search"])
    answer = await bus.request("search", "find", {}, timeout=1.5)
    assert answer.header.sender_id == "b-ok"
    assert bus.stats.retries == 1


async def test_a_backlog_is_handled_urgent_first_then_high_normal_low(bus):
    started, release, order = asyncio.Event(), asyncio.Event(), []

    async def handle(message):
        if message.payload.action == "block":
            started.set()
            await release.wait()
            return None
        order.append(message.payload.data["tag"])
        return None

    endpoint = await start(bus, "busy", handle)
    await bus.notify("busy", "block")
    await started.wait()
    backlog = [
        (Priority.LOW, "low-1"), (Priority.NORMAL, "normal-1"), (Priority.URGENT, "urgent-1"),
        (Priority.HIGH, "high-1"), (Priority.LOW, "low-2"), (Priority.URGENT, "urgent-2"),
        (Priority.NORMAL, "normal-2"), (Priority.HIGH, "high-2"),
    ]
    for priority, tag in backlog:
        await bus.notify("busy", "work", {"tag": tag}, priority=priority)
    await endpoint.wait_backlog(len(backlog))
    release.set()
    await endpoint.wait_handled(len(backlog) + 1)
    assert order == [
        "urgent-1", "urgent-2", "high-1", "high-2", "normal-1", "normal-2", "low-1", "low-2"
    ]


async def test_a_broadcast_reaches_every_agent(bus):
    got = {name: asyncio.Event() for name in ("a", "b", "c")}

    def listener(name):
        async def handle(message):
            assert message.header.message_type is MessageType.BROADCAST
            got[name].set()
        return handle

    for name in got:
        await start(bus, name, listener(name))
    await bus.broadcast("hello", {"n": 1})
    await asyncio.wait_for(asyncio.gather(*(e.wait() for e in got.values())), 5)


async def test_a_capability_notification_reaches_only_that_capability(bus):
    got = []
    done = asyncio.Event()

    def listener(name):
        async def handle(message):
            got.append((name, message.payload.action))
            if message.payload.action == "last":
                done.set()
        return handle

    await start(bus, "indexer", listener("indexer"), capabilities=["index"])
    await start(bus, "other", listener("other"), capabilities=["chat"])
    await bus.send(bus.message(MessageType.NOTIFICATION, "reindex", capability="index"))
    await bus.send(bus.message(MessageType.NOTIFICATION, "last", capability="index"))
    await done.wait()
    assert got == [("indexer", "reindex"), ("indexer", "last")]


async def test_an_injected_unsigned_or_forged_envelope_is_rejected(bus):
    calls = []

    async def handle(message):
        calls.append(message.payload.action)
        return {}

    endpoint = await start(bus, "victim", handle)
    forged = bus.message(MessageType.REQUEST, "rm-rf", recipient_id="victim")
    await bus.layer.send(endpoint.channel, {"type": "agents.message", "m": forged.to_wire()})
    await bus.layer.send(
        endpoint.channel, seal(b"wrong-key", forged, reply_to=None, origin="x", via=None, seq=None)
    )
    await bus.request("victim", "legit", {})
    assert calls == ["legit"]
    assert bus.stats.rejected == 2


async def test_an_expired_request_is_answered_with_an_error(bus):
    await start(bus, "echo", echo)
    old = Message(
        header=Header(
            message_type=MessageType.REQUEST, sender_id="tester", recipient_id="echo",
            ttl_seconds=1, timestamp=datetime.now(UTC) - timedelta(seconds=5),
        ),
        payload=Payload(action="echo"),
    )
    with pytest.raises(AgentError) as caught:
        await bus.request_message(old)
    assert caught.value.code == "expired"


async def test_a_full_inbox_on_direct_send_is_surfaced(layer_kind):
    layer = make_layer(layer_kind, capacity=2)
    bus = await Bus(layer, KEY, config=BusConfig(backlog_limit=1), sender_id="t").start()
    started, release = asyncio.Event(), asyncio.Event()

    async def handle(message):
        started.set()
        await release.wait()

    endpoint = await AgentEndpoint(bus, "full", handle).start()
    try:
        await bus.notify("full", "first")
        await started.wait()
        await bus.notify("full", "queued")
        await endpoint.wait_backlog(1)
        await bus.notify("full", "in-channel-1")
        await bus.notify("full", "in-channel-2")
        with pytest.raises(DeliveryFailed):
            await bus.notify("full", "overflow")
        assert bus.stats.channel_full == 1
    finally:
        release.set()
        await endpoint.stop()
        await bus.close()


async def test_a_broadcast_dropped_by_a_full_channel_is_detected(layer_kind):
    layer = make_layer(layer_kind, capacity=2)
    bus = await Bus(layer, KEY, config=BusConfig(backlog_limit=1), sender_id="t").start()
    started, release, last, seen = asyncio.Event(), asyncio.Event(), asyncio.Event(), []

    async def handle(message):
        n = message.payload.data["n"]
        seen.append(n)
        started.set()
        if n == 7:
            last.set()
        await release.wait()

    endpoint = await AgentEndpoint(bus, "slow", handle).start()
    try:
        await bus.broadcast("tick", {"n": 0})
        await started.wait()
        await bus.broadcast("tick", {"n": 1})
        await endpoint.wait_backlog(1)
        for n in range(2, 7):  # more than the channel holds: group_send drops silently
            await bus.broadcast("tick", {"n": n})
        release.set()
        await endpoint.wait_handled(4)
        await bus.broadcast("tick", {"n": 7})
        await last.wait()
        # Two fitted in the channel, three were dropped; the next delivery reveals the gap.
        assert seen == [0, 1, 2, 3, 7]
        assert bus.stats.gaps == 3
    finally:
        release.set()
        await endpoint.stop()
        await bus.close()


async def test_a_handler_answering_something_other_than_a_dict_gets_an_agent_error(bus):
    async def confused(message):
        return ["not", "a", "dict"]

    await start(bus, "confused", confused)
    for action in ("x", "again"):  # the worker survives to answer the next one
        with pytest.raises(AgentError) as caught:
            await bus.request("confused", action, {})
        assert caught.value.code == "agent_failed"


async def test_an_idle_worker_takes_a_message_at_once_and_a_backlog_queues_by_priority():
    backlog = Backlog(limit=2)
    worker = asyncio.create_task(backlog.get())
    await asyncio.sleep(0)  # one loop turn: the worker reaches its wait (no timed wait)
    backlog.put(Priority.LOW, "low-while-idle")
    assert len(backlog) == 0  # handed to the idle worker, not queued
    assert await worker == "low-while-idle"
    backlog.put(Priority.LOW, "low")
    backlog.put(Priority.URGENT, "urgent")
    reader = asyncio.create_task(backlog.wait_for_room())
    await asyncio.sleep(0)
    assert not reader.done()  # full: the reader stops until a worker takes something
    assert await backlog.get() == "urgent"
    await asyncio.wait_for(reader, 5)
    assert await backlog.get() == "low"


async def test_request_timeouts_wake_only_waits_still_running():
    timeouts, loop = _Timeouts(), asyncio.get_running_loop()
    expiring, answered = loop.create_future(), loop.create_future()
    timeouts.add(expiring, 0.02)
    timeouts.discard(timeouts.add(answered, 0.02), answered)
    await asyncio.wait_for(expiring, 5)  # woken by its deadline
    assert not answered.done()


def test_the_bus_imports_without_django_settings():
    """bench/agents.py drives the bus with no Django settings: the bus and what it imports
    (the layer's watch among them) must not need them to import."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    done = subprocess.run([sys.executable, "-c", "import agents.bus"], env=env, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
