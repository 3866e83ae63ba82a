"""Agent bus benchmark: the bus beside the raw Channels layer, same message size, same run.

For the in-memory layer and (when reachable) Redis it prints:
  * request/response round trips: sequential latency (p50/p99) and throughput with 32 in flight,
    for `Bus.request` to an in-process echo agent vs. a raw `send` + `receive` echo;
  * broadcast fan-out to 10 agents: deliveries per second for `Bus.broadcast` vs. raw `group_send`.
The ratio column is bus / raw throughput (target: at least 0.5).

The bus does more per message than the raw layer — seal (msgpack + HMAC) and open each
envelope, check TTL/skew, de-duplicate, queue by priority and hand over to a worker, match the
answer under a timeout — which is what the ratio prices.
Not a test: it asserts nothing.
    .venv/bin/python bench/agents.py [--requests 2000] [--broadcasts 300] [--redis redis://127.0.0.1:6379/0]
"""

import argparse
import asyncio
import os
import statistics
import time
import uuid

from channels.layers import InMemoryChannelLayer
from common import percentile_high  # first: it puts the project root on sys.path
from report import record

from agents.bus import AgentEndpoint, Bus, BusConfig
from agents.protocol import MessageType

KEY = "bench-key"
DATA = {"query": "x" * 200, "n": 1, "tags": ["a", "b", "c"]}
CONCURRENCY = 32
FANOUT = 10
CAPACITY = 100_000


def raw_event() -> dict:
    """A raw layer message as big as a bus message: the same wire dict, unsigned."""
    bus = Bus(None, KEY, sender_id="bench")
    wire = bus.message(MessageType.REQUEST, "echo", DATA, recipient_id="echo").to_wire()
    return {"type": "bench.message", "m": wire}


# --- raw layer -------------------------------------------------------------------------


async def raw_round_trips(layer, count: int, concurrency: int) -> tuple[float, list[float]]:
    inbox, replies = f"bench.in.{uuid.uuid4().hex}", f"bench.out.{uuid.uuid4().hex}"
    event = raw_event()
    waiting: dict[int, asyncio.Future] = {}

    async def echo():
        while True:
            message = await layer.receive(inbox)
            await layer.send(replies, {**message, "type": "bench.reply"})

    async def collect():
        while True:
            message = await layer.receive(replies)
            waiting.pop(message["i"]).set_result(None)

    async def one(i: int) -> float:
        started = time.perf_counter()
        waiting[i] = asyncio.get_running_loop().create_future()
        await layer.send(inbox, {**event, "i": i})
        await waiting[i]
        return time.perf_counter() - started

    return await _drive(one, [echo(), collect()], count, concurrency)


async def raw_fanout(layer, count: int) -> float:
    group = f"bench.group.{uuid.uuid4().hex[:12]}"
    channels = [f"bench.fan.{uuid.uuid4().hex}" for _ in range(FANOUT)]
    for channel in channels:
        await layer.group_add(group, channel)
    event = raw_event()

    async def drain(channel):
        for _ in range(count):
            await layer.receive(channel)

    started = time.perf_counter()
    readers = [asyncio.create_task(drain(c)) for c in channels]
    for i in range(count):
        await layer.group_send(group, {**event, "i": i})
    await asyncio.gather(*readers)
    return count * FANOUT / (time.perf_counter() - started)


# --- the bus ---------------------------------------------------------------------------


async def bus_round_trips(layer, count: int, concurrency: int) -> tuple[float, list[float]]:
    bus = await Bus(layer, KEY, config=BusConfig(request_timeout=30), sender_id="bench").start()

    async def echo(message):
        return message.payload.data

    endpoint = await AgentEndpoint(bus, f"echo-{uuid.uuid4().hex[:8]}", echo, concurrency=8).start()

    async def one(i: int) -> float:
        started = time.perf_counter()
        await bus.request(endpoint.agent_id, "echo", DATA)
        return time.perf_counter() - started

    try:
        return await _drive(one, [], count, concurrency)
    finally:
        await endpoint.stop()
        await bus.close()


async def bus_fanout(layer, count: int) -> float:
    bus = await Bus(layer, KEY, config=BusConfig(backlog_limit=CAPACITY), sender_id="bench").start()
    done = asyncio.Event()
    received = 0

    async def handle(message):
        nonlocal received
        received += 1
        if received == count * FANOUT:
            done.set()

    suffix = uuid.uuid4().hex[:8]
    endpoints = [await AgentEndpoint(bus, f"fan{i}-{suffix}", handle).start() for i in range(FANOUT)]
    started = time.perf_counter()
    for _ in range(count):
        await bus.broadcast("tick", DATA)
    await done.wait()
    elapsed = time.perf_counter() - started
    for endpoint in endpoints:
        await endpoint.stop()
        for group in endpoint._groups:
            await layer.group_discard(group, endpoint.channel)
    await bus.close()
    return count * FANOUT / elapsed


async def _drive(one, background, count: int, concurrency: int) -> tuple[float, list[float]]:
    tasks = [asyncio.create_task(coro) for coro in background]
    try:
        for i in range(min(50, count)):  # warm up
            await one(-1 - i)
        latencies = [await one(i) for i in range(count)]  # sequential: latency
        queue = iter(range(count, 2 * count))
        started = time.perf_counter()

        async def worker():
            for i in queue:
                await one(i)

        await asyncio.gather(*(worker() for _ in range(concurrency)))  # pipelined: throughput
        return count / (time.perf_counter() - started), latencies
    finally:
        for task in tasks:
            task.cancel()
        # Bounded: a channels-redis receive cancelled while it waits for its channel's lock
        # (receive_clean_locks) can stay stuck there, and the benchmark then never ended.
        if tasks:
            await asyncio.wait(tasks, timeout=5)


# --- report ----------------------------------------------------------------------------


async def bench_layer(name: str, make_layer, requests: int, broadcasts: int) -> None:
    raw_rps, raw_lat = await raw_round_trips(make_layer(), requests, CONCURRENCY)
    bus_rps, bus_lat = await bus_round_trips(make_layer(), requests, CONCURRENCY)
    raw_fan = await raw_fanout(make_layer(), broadcasts)
    bus_fan = await bus_fanout(make_layer(), broadcasts)
    print(f"\n[{name}] {requests} round trips (sequential for latency, {CONCURRENCY} in flight for "
          f"throughput), {broadcasts} broadcasts to {FANOUT} agents")
    print(f"  {'':30} {'raw layer':>14} {'bus':>14} {'bus/raw':>8}")
    print(f"  {'round trips/s':30} {raw_rps:14,.0f} {bus_rps:14,.0f} {bus_rps / raw_rps:8.2f}")
    print(f"  {'latency p50 (ms)':30} {statistics.median(raw_lat) * 1e3:14.3f} "
          f"{statistics.median(bus_lat) * 1e3:14.3f}")
    print(f"  {'latency p99 (ms)':30} {percentile_high(raw_lat, 99) * 1e3:14.3f} "
          f"{percentile_high(bus_lat, 99) * 1e3:14.3f}")
    print(f"  {'fan-out deliveries/s':30} {raw_fan:14,.0f} {bus_fan:14,.0f} {bus_fan / raw_fan:8.2f}")
    record(f"agent bus round trips ({name})", round(bus_rps), "/s", baseline=round(raw_rps),
           baseline_name="raw channel layer")
    record(f"agent bus fan-out ({name})", round(bus_fan), "deliveries/s", baseline=round(raw_fan),
           baseline_name="raw channel layer")


def redis_factory(url: str):
    from channels_redis.core import RedisChannelLayer

    prefix = f"bench{uuid.uuid4().hex[:6]}"
    from autobot.redisconf import channel_layer_config

    config = channel_layer_config(url, prefix=prefix, capacity=CAPACITY, expiry=60)["CONFIG"]
    return lambda: RedisChannelLayer(**config)


async def redis_reachable(url: str) -> bool:
    import redis.asyncio as redis

    client = redis.from_url(url)
    try:
        await asyncio.wait_for(client.ping(), 2)
        return True
    except Exception:
        return False
    finally:
        await client.aclose()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--broadcasts", type=int, default=300)
    parser.add_argument("--redis", default=os.environ.get("AUTOBOT_TEST_REDIS_URL")
                        or os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    await bench_layer("in-memory", lambda: InMemoryChannelLayer(capacity=CAPACITY), args.requests, args.broadcasts)
    if await redis_reachable(args.redis):
        await bench_layer(f"redis {args.redis}", redis_factory(args.redis), args.requests, args.broadcasts)
    else:
        print(f"\n[redis] skipped: {args.redis} is not reachable")


if __name__ == "__main__":
    asyncio.run(main())
