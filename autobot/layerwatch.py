"""Whether the channel layer's Redis lost what it held (restarted empty, or flushed).

Groups live in Redis. After a restart (this deployment's Redis keeps nothing on disk) every
membership is gone, yet a reader whose connection came back within redis-py's retry (a restart
takes a fraction of a second) never sees an error: it goes on waiting on its channel, and nothing
sent to its groups reaches it again. A chat page then shows no more answers until it is reloaded.

So each process keeps one key in each of the layer's Redis servers and reads it every
LAYER_WATCH_SECONDS. When the key is gone, or holds another value than last time, the layer lost
its state: the epoch goes up, and whoever holds groups joins them again (``rejoining``) or, for a
socket whose client also missed what was sent meanwhile, closes so the client reconnects and
catches up (autobot/ws.py). A round that fails (Redis away) is only logged: the next one, once
Redis is back, finds the key gone.

With the in-memory layer (one process, nothing to lose) there is no watch and no restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable

from channels.layers import get_channel_layer
from django.conf import settings

from autobot.supervise import backoff, cancel, cancel_and_wait

log = logging.getLogger("autobot.layerwatch")

KEY = "autobot-epoch"


class _Watch:
    """The watch of one layer, on one event loop."""

    def __init__(self, layer) -> None:
        self.layer = layer
        self.loop = asyncio.get_running_loop()
        self.epoch = 0
        # Done (and replaced) when the epoch goes up; one future shared by every waiter, so a
        # socket waiting on it costs a callback, not a task.
        self.next: asyncio.Future = self.loop.create_future()
        self.known: dict[int, bytes] = {}
        self.task = self.loop.create_task(self._run(), name="layer-watch")

    async def _run(self) -> None:
        while True:
            try:
                if await self._lost_state():
                    self._bump()
            except Exception as exc:  # noqa: BLE001 - Redis away: the next round finds out what it lost
                log.debug("layer watch: could not read the epoch (%r)", exc)
            await asyncio.sleep(settings.LAYER_WATCH_SECONDS)

    async def _lost_state(self) -> bool:
        lost = False
        key = f"{self.layer.prefix}:{KEY}"
        for index in range(self.layer.ring_size):
            # channels-redis's own connection to that server (the same pool its groups use)
            connection = self.layer.connection(index)
            await connection.set(key, uuid.uuid4().hex, nx=True)
            value = await connection.get(key)
            lost = lost or self.known.get(index, value) != value
            self.known[index] = value
        return lost

    def _bump(self) -> None:
        log.warning("the channel layer's Redis lost its state (restarted or flushed): joining groups again")
        self.epoch += 1
        fired, self.next = self.next, self.loop.create_future()
        fired.set_result(self.epoch)


# Each layer's watch, on the loop that uses it (the layer's connections belong to that loop).
_watches: dict[object, _Watch] = {}


def _watch(layer=None) -> _Watch | None:
    """The watch of ``layer`` (the default layer if None), started on first use; None without Redis."""
    layer = layer or get_channel_layer()
    if layer is None or not hasattr(layer, "ring_size"):  # the in-memory layer
        return None
    watch = _watches.get(layer)
    if watch is None or watch.loop is not asyncio.get_running_loop() or watch.task.done():
        if watch is not None:
            cancel(watch.task)
        for old in [key for key, other in _watches.items() if other.task.done()]:
            del _watches[old]  # layers of loops that ended (tests)
        watch = _watches[layer] = _Watch(layer)
    return watch


def epoch(layer=None) -> int:
    """The current epoch of ``layer`` (the default one if None): remember it, then
    ``restarted_since`` it."""
    watch = _watch(layer)
    return 0 if watch is None else watch.epoch


async def restarted_since(since: int, layer=None) -> None:
    """Return once the layer has lost its state after epoch ``since``; never without Redis."""
    watch = _watch(layer)
    if watch is None:
        await asyncio.Future()  # nothing to lose: wait until cancelled
    while watch.epoch <= since:
        await asyncio.shield(watch.next)  # the shared future must not be cancelled with a waiter


def next_restart(layer=None) -> asyncio.Future | None:
    """A future done when ``layer`` (the default one if None) next loses its state, for an
    ``asyncio.wait`` beside other things; None without Redis. Never cancel it: it is shared."""
    watch = _watch(layer)
    return None if watch is None else watch.next


@contextlib.asynccontextmanager
async def rejoining(rejoin: Callable[[], Awaitable[None]], layer=None):
    """Within the block, ``rejoin()`` runs each time ``layer`` (the default one if None) loses its
    state: it joins the holder's groups again. A rejoin that fails is tried again with backoff."""
    if _watch(layer) is None:  # nothing to lose
        yield
        return
    task = asyncio.ensure_future(_rejoin_each_time(rejoin, layer))
    try:
        yield
    finally:
        await cancel_and_wait([task])


async def _rejoin_each_time(rejoin: Callable[[], Awaitable[None]], layer) -> None:
    seen = epoch(layer)
    while True:
        await restarted_since(seen, layer)
        seen = epoch(layer)
        attempt = 0
        while True:
            try:
                await rejoin()
                break
            except Exception:  # noqa: BLE001 - Redis away again: try until it answers
                log.warning("could not join groups again after the layer restarted", exc_info=attempt == 0)
                await asyncio.sleep(backoff(attempt))
                attempt += 1


async def stop() -> None:
    """Stop the watches on this loop (worker shutdown)."""
    loop = asyncio.get_running_loop()
    mine = [(layer, watch) for layer, watch in list(_watches.items()) if watch.loop is loop]
    for layer, _ in mine:
        _watches.pop(layer, None)
    await cancel_and_wait([watch.task for _, watch in mine])
