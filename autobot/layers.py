"""The channel layers: the in-memory one `make run` uses (one process, no Redis), made cheap per
message, and channels-redis's, made safe to cancel a receiver of (`RedisChannelLayer` below).

Channels' `InMemoryChannelLayer` walks every channel's queue and every group's members on each
`send`-to-group and each `receive` (`_clean_expired`), so a token streamed to one chat costs time
in proportion to all the sockets the process holds: with 1,000 idle sockets open, every token of
every answer walks 1,000 channels twice. Here the walk runs at most once every CLEAN_SECONDS. What
it removes (messages past their 60 s expiry, a channel that let one expire, group memberships
past a day) goes at most that much later; nothing else changes.
"""

import asyncio
import time

from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer as ChannelsInMemoryChannelLayer
from channels_redis.core import RedisChannelLayer as ChannelsRedisChannelLayer

CLEAN_SECONDS = 1.0


class InMemoryChannelLayer(ChannelsInMemoryChannelLayer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._next_clean = 0.0

    def _clean_expired(self):
        now = time.monotonic()
        if now < self._next_clean:
            return
        self._next_clean = now + CLEAN_SECONDS
        super()._clean_expired()

    async def send(self, channel, message):
        try:
            await super().send(channel, message)
        except ChannelFull:
            # Full, perhaps of messages past their expiry that the walk has not removed yet:
            # walk now, then try once more (a channel full of live messages is still full).
            super()._clean_expired()
            await super().send(channel, message)


class RedisChannelLayer(ChannelsRedisChannelLayer):
    """channels-redis's layer, except that a receiver's cancellation never cuts a Redis read short.

    All the channels a process makes (`new_channel()`: every socket's) share one list in Redis,
    read by whichever of their receivers holds the layer's receive lock, for all of them. A socket
    that closes cancels its receiver, and channels-redis cancelled that receiver's read with it:
    redis-py then drops a reply already on its way — a message Redis has popped, for another
    socket of the process (a chat token, terminal output), is lost — or, landing just as the reply
    arrives, the cancel is swallowed and the closed socket's receiver reads on (channels_redis
    #366; tests/scale/test_layer_receive.py shows both). Here that read runs as a task of its own,
    awaited through a shield: a cancelled receiver leaves it running, and the next receiver to take
    the lock takes its message, or the message is put where `receive` would have put it when the
    read ended as its receiver was cancelled. One read at a time, so the order holds."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._read: asyncio.Task | None = None  # the read of this process's channels under way

    async def receive_single(self, channel):
        if "!" not in channel:  # a named channel: its own list, read by its own receiver
            return await super().receive_single(channel)
        while True:
            read = self._reading(channel)
            try:
                result = await asyncio.shield(read)
            except asyncio.CancelledError:
                if not read.done():
                    raise  # this receiver was cancelled: the read goes on, for the next one
                self._forget(read)
                if read.cancelled():  # the layer ended that read (flush, close), not this receiver
                    if asyncio.current_task().cancelling():
                        raise
                    continue
                if read.exception() is None:
                    self._deliver(*read.result())  # it ended just now: as `receive` would have
                raise
            except BaseException:
                self._forget(read)
                raise
            self._forget(read)
            return result

    async def _brpop_with_clean(self, index, channel, timeout):  # noqa: ASYNC109 - channels-redis's signature
        """channels-redis's, but a read whose task was cancelled reads no more. redis-py may swallow
        a cancel that lands as its reply arrives, and channels-redis then reads on (`receive_single`
        loops while Redis answers "nothing yet", every `brpop_timeout`): the task never ends,
        though cancelled, and whatever waits for it — a worker's shutdown, an event loop's close —
        waits for ever. The cancel is honoured here, before the next read, within `brpop_timeout`.
        Also for a named channel, read in its caller's task (an agent's inbox): a task that is still
        `cancelling()` has a cancel it has not taken back (`uncancel`), and asyncio itself (its
        timeouts, task groups) already treats such a task as being cancelled."""
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise asyncio.CancelledError
        return await super()._brpop_with_clean(index, channel, timeout)

    def _reading(self, channel) -> asyncio.Task:
        """The read under way, or a new one."""
        loop = asyncio.get_running_loop()
        read = self._read
        if read is None or read.get_loop() is not loop:  # (another loop's: tests; it is gone with it)
            read = self._read = loop.create_task(super().receive_single(channel), name="channel-layer-read")
            read.add_done_callback(self._read_done)
        return read

    def _read_done(self, read: asyncio.Task) -> None:
        """A read that failed is forgotten at once: its error is its waiters' (they have it), not
        that of a receiver that comes later, which reads afresh. (Taken, so asyncio does not log
        it as never retrieved.) A read that succeeded stays until a receiver takes its message."""
        if not read.cancelled() and read.exception() is not None:
            self._forget(read)

    def _forget(self, read: asyncio.Task) -> None:
        if self._read is read:
            self._read = None

    def _deliver(self, channels, message) -> None:
        for channel in channels if isinstance(channels, list) else [channels]:
            self.receive_buffer[channel].put_nowait(message)

    async def _stop_reading(self) -> None:
        """Shutdown and flush: a read nobody waits for any more ends here (what it would have read
        stays in Redis unless Redis has already handed it over)."""
        read, self._read = self._read, None
        if read is not None and not read.done() and read.get_loop() is asyncio.get_running_loop():
            read.cancel()
            # redis-py may swallow the cancel and finish its blocking read first (brpop_timeout).
            await asyncio.wait({read}, timeout=self.brpop_timeout + 1)

    async def flush(self):
        await self._stop_reading()
        await super().flush()

    async def close_pools(self):
        await self._stop_reading()
        await super().close_pools()

