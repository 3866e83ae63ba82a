"""A socket closing (its receiver cancelled) loses no other socket's message on the Redis layer.

A process's channels share one list in Redis, read by whichever receiver holds the layer's lock.
With channels-redis's own layer, cancelling that receiver just as Redis hands over a message for
another channel lost the message, or the cancel was swallowed and the cancelled receiver hung on
(autobot/layers.py). Real Redis (the test one), the layer as settings configure it."""

import asyncio
import os
import random
import uuid

import pytest
from django.utils.module_loading import import_string

from autobot.layers import RedisChannelLayer
from autobot.redisconf import channel_layer_config

pytestmark = [pytest.mark.redis, pytest.mark.timeout(120)]


@pytest.fixture
async def layer():
    config = channel_layer_config(os.environ["AUTOBOT_TEST_REDIS_URL"], prefix=f"lr{uuid.uuid4().hex[:8]}")
    layer = import_string(config["BACKEND"])(**config["CONFIG"])
    yield layer
    await layer.flush()


async def _holding_the_read(layer):
    """A receiver on a channel of its own that has taken the layer's lock and is reading Redis."""
    channel = await layer.new_channel()
    receiver = asyncio.ensure_future(layer.receive(channel))
    await asyncio.sleep(0.05)
    return receiver


async def test_a_receiver_cancelled_as_a_message_arrives_loses_no_other_channels_message(layer):
    for n in range(25):
        reading = await _holding_the_read(layer)
        other = await layer.new_channel()
        waiting = asyncio.ensure_future(layer.receive(other))
        await asyncio.sleep(0.01)
        await layer.send(other, {"type": "token", "n": n})
        reading.cancel()  # the socket closes just as Redis hands the message over
        done, _ = await asyncio.wait({reading}, timeout=3)
        assert done and reading.cancelled(), f"round {n}: the cancelled receiver did not stop"
        message = await asyncio.wait_for(waiting, 3)
        assert message["n"] == n


async def test_messages_keep_their_order_while_other_receivers_come_and_go(layer):
    channel = await layer.new_channel()
    received: list[int] = []
    count = 400

    async def read_all():
        while len(received) < count:
            received.append((await layer.receive(channel))["n"])

    async def churn():  # other sockets of the process opening and closing
        while True:
            receiver = await _holding_the_read(layer)
            try:
                await asyncio.sleep(random.random() * 0.005)
            finally:
                receiver.cancel()
                await asyncio.wait({receiver})

    reader = asyncio.ensure_future(read_all())
    churners = [asyncio.ensure_future(churn()) for _ in range(4)]
    try:
        for n in range(count):
            await layer.send(channel, {"type": "token", "n": n})
            if n % 10 == 0:
                await asyncio.sleep(random.random() * 0.003)
        await asyncio.wait_for(reader, 20)
    finally:
        for task in churners:
            task.cancel()
        await asyncio.gather(*churners, return_exceptions=True)
    assert received == list(range(count))


async def test_a_message_read_after_its_receiver_left_waits_for_the_next_receiver(layer):
    """The last receiver goes; the read it started goes on and hands its message to the next."""
    channel = await layer.new_channel()
    reading = await _holding_the_read(layer)
    reading.cancel()
    await asyncio.wait({reading})
    await layer.send(channel, {"type": "token", "n": 1})
    await asyncio.sleep(0.1)  # read by the read nobody waits for
    assert (await asyncio.wait_for(layer.receive(channel), 3))["n"] == 1


async def test_closing_the_layer_ends_a_read_nobody_waits_for(layer):
    reading = await _holding_the_read(layer)
    reading.cancel()
    await asyncio.wait({reading})
    await asyncio.wait_for(layer.close_pools(), layer.brpop_timeout + 3)
    assert not [task for task in asyncio.all_tasks() if task.get_name() == "channel-layer-read"]


async def test_a_receiver_waiting_when_the_layer_ends_its_read_receives_on(layer):
    """Closing the layer's pools ends the read; a receiver that was not cancelled reads again."""
    channel = await layer.new_channel()
    waiting = asyncio.ensure_future(layer.receive(channel))
    await asyncio.sleep(0.05)
    await asyncio.wait_for(layer.close_pools(), layer.brpop_timeout + 3)
    assert not waiting.done()
    await layer.send(channel, {"type": "token", "n": 7})
    assert (await asyncio.wait_for(waiting, 3))["n"] == 7


async def test_a_read_that_failed_with_nobody_waiting_is_not_the_next_receivers_error(own_redis):
    """Redis goes away under a read whose receiver has left, and comes back: the next receiver
    reads afresh instead of getting that old error."""
    config = channel_layer_config(own_redis.url, prefix="lrf")
    layer = import_string(config["BACKEND"])(**config["CONFIG"])
    reading = await _holding_the_read(layer)
    reading.cancel()
    await asyncio.wait({reading})
    await asyncio.to_thread(own_redis.stop)
    await asyncio.sleep(1.5)  # the read fails (redis-py's retries: well under a second)
    await asyncio.to_thread(own_redis.start)
    channel = await layer.new_channel()
    await layer.send(channel, {"type": "token", "n": 3})
    assert (await asyncio.wait_for(layer.receive(channel), 5))["n"] == 3
    await layer.flush()


class _SwallowsOneCancel(RedisChannelLayer):
    """The layer, with its read swallowing the first cancel that reaches it as redis-py may (the
    cancel landing as Redis's reply arrives): the read goes on as if Redis had said "nothing yet"."""

    swallowed = False

    async def _brpop_with_clean(self, index, channel, timeout):  # noqa: ASYNC109 - channels-redis's signature
        try:
            return await super()._brpop_with_clean(index, channel, timeout)
        except asyncio.CancelledError:
            if self.swallowed:
                raise
            self.swallowed = True
            return None


async def test_a_read_whose_cancel_was_swallowed_reads_no_more():
    """channels-redis then read on, every `brpop_timeout`, for ever: a worker's shutdown or an event
    loop's close waited for it without end (this file's teardown hung one time in three). The
    cancel is honoured before the next read, and a message sent meanwhile stays for the next reader."""
    config = channel_layer_config(os.environ["AUTOBOT_TEST_REDIS_URL"], prefix=f"lr{uuid.uuid4().hex[:8]}")
    layer = _SwallowsOneCancel(**config["CONFIG"])
    try:
        receiver = await _holding_the_read(layer)
        read = layer._read
        read.cancel()  # as shutdown (`_stop_reading`) does
        done, _ = await asyncio.wait({read}, timeout=3)
        assert layer.swallowed and done and read.cancelled()
        receiver.cancel()
        await asyncio.wait({receiver})
        channel = await layer.new_channel()
        await layer.send(channel, {"type": "token", "n": 1})
        assert (await asyncio.wait_for(layer.receive(channel), 3))["n"] == 1
    finally:
        await layer.flush()
