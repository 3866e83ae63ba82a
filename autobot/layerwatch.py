"""Whether the channel layer's Redis may have lost what it held or what was sent through it.

Groups live in Redis. After a restart that empties it every membership is gone, yet a reader
whose connection came back within redis-py's retry (a restart takes a fraction of a second)
never sees an error: it goes on waiting on its channel, and nothing sent to its groups reaches it
again. A chat page then shows no more answers until it is reloaded. An outage that empties
nothing (a Redis that saves to disk, a network cut) loses the messages sent meanwhile just the
same, and most readers never see an error either: channels-redis lets one receiver of a process
wait on Redis at a time, and only that one is told.

So each process keeps a key of its own in each of the layer's Redis servers, with a counter it
writes every LAYER_WATCH_SECONDS, reading the previous value in the same transaction. The layer
counts as having lost its state (the epoch goes up) when:
- the value read is not the one last written: Redis restarted empty, was flushed, or came back
  from an older snapshot;
- a round succeeds after one or more that failed: Redis was away, whatever it kept;
- something else reported a failure of the layer since the last round (``suspect``): a publish
  that failed during a blip shorter than a round.
Then whoever holds groups joins them again (``rejoining``) or, for a socket whose client also
missed what was sent meanwhile, closes so the client reconnects and catches up (autobot/ws.py).

With the in-memory layer (one process, nothing to lose) there is no watch and no restart.
Django-free at import (the agent bus, which uses it, is imported by benchmarks without settings).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from channels.layers import get_channel_layer
from django.conf import settings

from autobot.redisconf import REDIS_FAULTS
from autobot.supervise import backoff, cancel_and_wait

log = logging.getLogger("autobot.layerwatch")

KEY = "autobot-epoch"
DEFAULT_SECONDS = 2.0  # AUTOBOT_LAYER_WATCH_SECONDS's default, where no settings are configured
# A process's key outlives the process by this long (a key per dead worker would pile up).
KEY_SECONDS = 3600
# Failed rounds in a row before the watch says so at warning level (one blip is not news).
FAILURES_TO_WARN = 3


class _Watch:
    """The watch of one layer, on one event loop."""

    def __init__(self, layer) -> None:
        self.layer = layer
        self.loop = asyncio.get_running_loop()
        self.epoch = 0
        # Done (and replaced) when the epoch goes up; one future shared by every waiter, so a
        # socket waiting on it costs a callback, not a task.
        self.next: asyncio.Future = self.loop.create_future()
        self.ready = asyncio.Event()  # set by the first round that reached every server
        self.written: dict[int, int] = {}  # per server: the counter last written
        self.failures = 0  # rounds failed in a row
        self.last_success: float | None = None  # loop time of the last round that reached Redis
        self.started = self.loop.time()
        self.suspect = False
        self.task = self.loop.create_task(self._run(), name="layer-watch")

    async def _run(self) -> None:
        while True:
            await self._round()
            await asyncio.sleep(_seconds())

    async def _round(self) -> None:
        suspect, self.suspect = self.suspect, False
        try:
            lost = await self._lost_state()
        except REDIS_FAULTS as exc:
            self.failures += 1
            level = logging.WARNING if self.failures == FAILURES_TO_WARN else logging.DEBUG
            log.log(level, "layer watch: Redis did not answer %d round(s) in a row (%r)", self.failures, exc)
            return
        except Exception:  # noqa: BLE001 - not an outage (an ACL, a read-only replica): say so, go on
            self.failures += 1
            log.warning("layer watch: the round failed; restarts may go unnoticed", exc_info=self.failures == 1)
            return
        was_away, self.failures = self.failures, 0
        self.last_success = self.loop.time()
        self.ready.set()
        if lost or was_away or suspect:
            self._bump("lost its state" if lost else "was away")

    async def _lost_state(self) -> bool:
        lost = False
        key = f"{self.layer.prefix}:{KEY}:{self.layer.client_prefix}"
        for index in range(self.layer.ring_size):
            # channels-redis's own connection to that server (the same pool its groups use)
            connection = self.layer.connection(index)
            count = self.written.get(index, 0) + 1
            async with connection.pipeline(transaction=True) as pipe:
                before, _ = await pipe.get(key).set(key, count, ex=KEY_SECONDS).execute()
            expected = self.written.get(index)
            lost = lost or (expected is not None and before != str(expected).encode())
            self.written[index] = count
        return lost

    def _bump(self, why: str) -> None:
        log.warning("the channel layer's Redis %s: joining groups again, closing sockets to catch up", why)
        self.epoch += 1
        fired, self.next = self.next, self.loop.create_future()
        fired.set_result(self.epoch)


def _seconds() -> float:
    return settings.LAYER_WATCH_SECONDS if settings.configured else DEFAULT_SECONDS


# Each layer's watch, per event loop (a layer's connections belong to the loop that made them).
_watches: dict[tuple[object, asyncio.AbstractEventLoop], _Watch] = {}


def _watch(layer=None) -> _Watch | None:
    """The watch of ``layer`` (the default layer if None) on this loop, started on first use;
    None without Redis."""
    layer = layer or get_channel_layer()
    if layer is None or not hasattr(layer, "ring_size"):  # the in-memory layer
        return None
    key = (layer, asyncio.get_running_loop())
    watch = _watches.get(key)
    if watch is None or watch.task.done():
        for old in [other for other, each in _watches.items() if each.task.done()]:
            del _watches[old]  # watches of loops that ended (tests)
        watch = _watches[key] = _Watch(layer)
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
    ``asyncio.wait`` or a done-callback; None without Redis. Never cancel it: it is shared."""
    watch = _watch(layer)
    return None if watch is None else watch.next


def suspect(layer=None) -> None:
    """Something failed on the layer (a publish, a receive): the next round that reaches Redis
    counts it as lost, even if the round itself never saw Redis away. Starts no watch (a
    management command's passing loop must not get one)."""
    layer = layer or get_channel_layer()
    with contextlib.suppress(RuntimeError):  # no running loop: nothing here watches
        watch = _watches.get((layer, asyncio.get_running_loop()))
        if watch is not None:
            watch.suspect = True


def report(layer=None) -> dict:
    """How the watch of ``layer`` (the default one if None) on this loop is doing, for /api/health:
    ``state`` ok (its last round reached Redis), failing (its last ``failures`` rounds did not, or
    none has for four rounds' time, counted from the watch's start before any has), starting (no
    round has ended yet) or not_running (the in-memory layer: nothing to watch; or no watch
    started on this loop: the worker's start-up starts it, a socket on first use);
    ``seconds_since_success`` (None before the first success) and the current ``epoch``. Starts
    no watch (a health check must not open connections that outlive it). Nothing about where
    Redis is."""
    layer = layer or get_channel_layer()
    watch = None
    with contextlib.suppress(RuntimeError):  # no running loop: nothing here watches
        watch = _watches.get((layer, asyncio.get_running_loop()))
    if watch is None or watch.task.done():
        return {"state": "not_running", "failures": 0, "seconds_since_success": None, "epoch": 0}
    since = None if watch.last_success is None else round(watch.loop.time() - watch.last_success, 3)
    # A round waits on a Redis that accepts and never answers for the whole socket timeout, failing
    # nothing meanwhile: rounds overdue count as failing too, the first one included.
    waited = since if since is not None else watch.loop.time() - watch.started
    overdue = waited > (FAILURES_TO_WARN + 1) * _seconds()
    if watch.failures or overdue:
        state = "failing"
    else:
        state = "starting" if watch.last_success is None else "ok"
    return {"state": state, "failures": watch.failures, "seconds_since_success": since, "epoch": watch.epoch}


async def ready(layer=None) -> None:
    """Until the watch has reached the layer's Redis once (tests: a restart before that point
    is not noticed)."""
    watch = _watch(layer)
    if watch is not None:
        await watch.ready.wait()


@contextlib.asynccontextmanager
async def rejoining(join: Callable[[], Awaitable[None]], layer=None):
    """Join the holder's groups (``join()``), and again each time ``layer`` (the default one if
    None) loses its state, for as long as the block runs. A rejoin that fails is tried again
    with backoff; the first join's failure is raised."""
    since = epoch(layer)  # before the first join: a restart during it is not missed
    await join()
    if _watch(layer) is None:  # nothing to lose
        yield
        return
    task = asyncio.ensure_future(_rejoin_each_time(join, layer, since))
    try:
        yield
    finally:
        await cancel_and_wait([task])


async def _rejoin_each_time(join: Callable[[], Awaitable[None]], layer, seen: int) -> None:
    while True:
        await restarted_since(seen, layer)
        seen = epoch(layer)
        attempt = 0
        while True:
            try:
                await join()
                break
            except Exception:  # noqa: BLE001 - Redis away again: try until it answers
                log.warning("could not join groups again after the layer restarted", exc_info=attempt == 0)
                await asyncio.sleep(backoff(attempt))
                attempt += 1


async def stop() -> None:
    """Stop the watches on this loop (worker shutdown)."""
    loop = asyncio.get_running_loop()
    mine = [key for key in _watches if key[1] is loop]
    tasks = [_watches.pop(key).task for key in mine]
    await cancel_and_wait(tasks)
