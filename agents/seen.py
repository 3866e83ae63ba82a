"""Message ids already received from agents: the replay window, one for every connection and worker.

A frame's ``message_id`` is accepted once within ``AGENTS_REPLAY_WINDOW_SECONDS``, whichever
socket and worker it arrives on. With ``REDIS_URL`` set the record is one Redis key per id,
written with ``SET NX PX`` (one atomic step: of two workers seeing the same id at once, exactly
one wins) that expires with the window. Without Redis the server is one process, and the record
is a bounded, expiring set in its memory (``agents.protocol.ReplayWindow``).

When Redis fails (refused, timed out, an error answer) the check fails open: the message is
accepted and counted in ``autobot_agents_seen_unavailable_total``. What that lets through is
bounded: the message log's unique id still refuses a second copy of a logged message as
``replayed`` (``services.message_log``), and the freshness check bounds how late any copy may
come (docs/security.md, "Agents: replays"). A signed agent's registration is the exception: it is
not logged, and a copy would take over the agent's socket, so its check fails closed
(``required``: the agent is told to register again later).

A Redis that drops packets (a blackhole: no refusal, no answer) costs each check its full
timeout, and frames on one socket are checked one after the other. So after one failure the
checks skip Redis for ``AGENTS_REPLAY_REDIS_COOLDOWN_SECONDS`` (a small circuit breaker: one
warning when it opens, one when it closes, ``autobot_agents_seen_redis_skipped`` and
``/api/health`` show it), then one check probes Redis again while the others keep skipping it; a
probe that answers closes the breaker, one that fails opens it for another cool-down.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
import weakref
from typing import Protocol

from django.conf import settings
from prometheus_client import Counter, Gauge
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from agents.protocol import ReplayWindow
from autobot import metrics

log = logging.getLogger("agents.seen")

KEY_PREFIX = "autobot:agents:seen:"
# The settings' defaults (AGENTS_REPLAY_REDIS_TIMEOUT_SECONDS, _COOLDOWN_SECONDS). One SET answers
# in microseconds; a Redis that does not answer within the timeout is treated as unreachable (fail
# open) rather than holding the agent's frame for the layer's 30 s.
REDIS_TIMEOUT_SECONDS = 2.0
REDIS_COOLDOWN_SECONDS = 10.0
MEMORY_MAX_ENTRIES = 100_000

UNAVAILABLE = Counter("autobot_agents_seen_unavailable", "Replay checks accepted unchecked: Redis unreachable.",
                      registry=metrics.registry)
# livesum: how many running workers skip Redis right now.
SKIPPING = Gauge("autobot_agents_seen_redis_skipped", "Workers whose replay checks skip Redis after it failed.",
                 registry=metrics.registry, multiprocess_mode="livesum")


class Unavailable(Exception):
    """A check that must not be skipped could not ask the shared record."""


class SeenIds(Protocol):
    async def seen(self, key: str, *, required: bool = False) -> bool:
        """True when ``key`` was already recorded within the window; records it otherwise.
        ``required``: raise ``Unavailable`` rather than accept unchecked."""


class MemorySeen:
    """This process's record: bounded (the oldest go first when full) and expiring."""

    def __init__(self, window_seconds: float, max_entries: int = MEMORY_MAX_ENTRIES):
        self.window = ReplayWindow(window_seconds, max_entries)

    async def seen(self, key: str, *, required: bool = False) -> bool:
        return self.window.seen(key)


class Breaker:
    """Open after a failure: checks skip Redis until ``open_until``; then one check at a time may
    probe it. Hand-written: redis-py's circuit breakers belong to its multi-database failover
    client, and one deadline and one flag do not need a library."""

    def __init__(self):
        self.open_until: float | None = None  # time.monotonic(); None while closed
        self.probing = False

    @property
    def is_open(self) -> bool:
        return self.open_until is not None

    def allows(self) -> bool:
        """May this check ask Redis? Closed: yes. Open: only once the cool-down is over, and only
        the one check that then probes (the others would each wait out the same timeout)."""
        if self.open_until is None:
            return True
        if self.probing or time.monotonic() < self.open_until:
            return False
        self.probing = True
        return True

    def failed(self, cool_down: float) -> bool:
        """Open (again) for ``cool_down`` seconds; True when it was closed until now."""
        was_closed = self.open_until is None
        self.open_until = time.monotonic() + cool_down
        self.probing = False
        return was_closed

    def answered(self) -> bool:
        """Close; True when it was open until now."""
        was_open = self.open_until is not None
        self.open_until = None
        self.probing = False
        return was_open

    def abandoned(self) -> None:
        """The probe was cancelled (its socket closed) before Redis answered: let another probe."""
        self.probing = False


class RedisSeen:
    """The shared record: a key per id, set only if absent, expiring with the window."""

    def __init__(self, client, window_seconds: float, prefix: str = KEY_PREFIX,
                 cool_down_seconds: float = REDIS_COOLDOWN_SECONDS):
        self.client = client
        self.window_seconds = window_seconds
        self.prefix = prefix
        self.cool_down_seconds = cool_down_seconds
        self.breaker = Breaker()
        self.skipped = 0  # checks let through unchecked since the breaker opened

    async def seen(self, key: str, *, required: bool = False) -> bool:
        if not self.breaker.allows():
            return self._unchecked(required)
        try:
            created = await self.client.set(self.prefix + key, 1, nx=True, px=max(1, int(self.window_seconds * 1000)))
        except (RedisError, OSError) as exc:  # OSError covers TimeoutError and refused connections
            self._failed(exc)
            return self._unchecked(required)
        except asyncio.CancelledError:
            self.breaker.abandoned()
            raise
        if self.breaker.answered():
            SKIPPING.dec()
            log.warning("agents: Redis answers again, replay checks resumed (%d accepted unchecked meanwhile)",
                        self.skipped)
        return not created

    def _failed(self, exc: Exception) -> None:
        if self.breaker.failed(self.cool_down_seconds):
            self.skipped = 0
            SKIPPING.inc()
            log.warning("agents: Redis unreachable (%s): replay checks accept frames unchecked, asking Redis "
                        "again every %g s until it answers", exc, self.cool_down_seconds)
        else:
            log.debug("agents: Redis still unreachable for replay checks: %s", exc)

    def _unchecked(self, required: bool) -> bool:
        if required:
            raise Unavailable("the replay check's Redis is unreachable")
        UNAVAILABLE.inc()
        self.skipped += 1
        return False


_memory = MemorySeen(600.0)
# One record per event loop: a redis.asyncio connection belongs to the loop that opened it, and the
# breaker goes with its client. Kept with the (url, timeout) it was made for.
_records: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[tuple[str, float], RedisSeen]] = (
    weakref.WeakKeyDictionary())


def _redis_client(url: str, timeout: float = REDIS_TIMEOUT_SECONDS):
    import redis.asyncio as redis

    # One quick retry, on a connection error only (a pooled connection a Redis restart closed):
    # the agent's frame waits for this answer. Never after a timeout: the SET may have been
    # applied, and its retry would then find the key and call a genuine frame a replay.
    return redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout, health_check_interval=15,
                          retry=Retry(ExponentialBackoff(cap=0.2, base=0.05), 1,
                                      supported_errors=(RedisConnectionError,)))


async def _close(record: RedisSeen) -> None:
    if record.breaker.is_open:
        SKIPPING.dec()
    await record.client.aclose()


async def store() -> SeenIds:
    """The record this configuration uses: Redis when ``REDIS_URL`` is set, else this process's memory."""
    window = settings.AGENTS_REPLAY_WINDOW_SECONDS
    url = settings.REDIS_URL
    if not url:
        _memory.window.window_seconds = window
        return _memory
    loop = asyncio.get_running_loop()
    made_for = (url, settings.AGENTS_REPLAY_REDIS_TIMEOUT_SECONDS)
    kept = _records.get(loop)
    if kept is None or kept[0] != made_for:  # the new record is in place before the old one is closed
        old, kept = kept, (made_for, RedisSeen(_redis_client(*made_for), window))
        _records[loop] = kept
        if old is not None:
            await _close(old[1])
    record = kept[1]
    record.window_seconds = window
    record.cool_down_seconds = settings.AGENTS_REPLAY_REDIS_COOLDOWN_SECONDS
    return record


def redis_skipped() -> bool:
    """Whether this worker's replay checks are skipping Redis (the breaker is open)."""
    kept = _records.get(asyncio.get_running_loop())
    return kept is not None and kept[1].breaker.is_open


async def seen_before(*, message_id: uuid.UUID | str, required: bool = False) -> bool:
    """True when ``message_id`` was already received within the replay window, on any connection
    of any worker; records it otherwise. False (accept) when the shared record is unreachable,
    unless ``required``: then ``Unavailable`` (a frame whose copy would do harm the message log
    cannot catch, such as a signed agent's registration)."""
    return await (await store()).seen(str(message_id), required=required)


async def seen_close() -> None:
    """Close this loop's Redis client (server shutdown, the end of a test's loop)."""
    kept = _records.pop(asyncio.get_running_loop(), None)
    if kept is not None:
        await _close(kept[1])
