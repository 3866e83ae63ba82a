"""Message ids already received from agents: the replay window, one for every connection and worker.

A frame's ``message_id`` is accepted once within ``AGENTS_REPLAY_WINDOW_SECONDS``, whichever
socket and worker it arrives on. With ``REDIS_URL`` set the record is one Redis key per id,
written with ``SET NX PX`` (one atomic step: of two workers seeing the same id at once, exactly
one wins) that expires with the window. Without Redis the server is one process, and the record
is a bounded, expiring set in its memory (``agents.protocol.ReplayWindow``).

When Redis cannot be reached the check fails open: the message is accepted, the miss is logged
and counted in ``autobot_agents_seen_unavailable_total``. Nothing is lost by that: the message
log's unique id still refuses a second copy of a logged message as ``replayed``
(``services.message_log``), and the freshness check still bounds how late a copy may come.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
import weakref
from typing import Protocol

from django.conf import settings
from prometheus_client import Counter
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import RedisError

from agents.protocol import ReplayWindow
from autobot import metrics

log = logging.getLogger("agents.seen")

KEY_PREFIX = "autobot:agents:seen:"
# One SET answers in microseconds; a Redis that does not answer within this is treated as
# unreachable (fail open) rather than holding the agent's frame for the layer's 30 s.
REDIS_TIMEOUT_SECONDS = 2.0
MEMORY_MAX_ENTRIES = 100_000

UNAVAILABLE = Counter("autobot_agents_seen_unavailable", "Replay checks accepted unchecked: Redis unreachable.",
                      registry=metrics.registry)


class SeenIds(Protocol):
    async def seen(self, key: str) -> bool:
        """True when ``key`` was already recorded within the window; records it otherwise."""


class MemorySeen:
    """This process's record: bounded (the oldest go first when full) and expiring."""

    def __init__(self, window_seconds: float, max_entries: int = MEMORY_MAX_ENTRIES):
        self.window = ReplayWindow(window_seconds, max_entries)

    async def seen(self, key: str) -> bool:
        return self.window.seen(key)


class RedisSeen:
    """The shared record: a key per id, set only if absent, expiring with the window."""

    def __init__(self, client, window_seconds: float, prefix: str = KEY_PREFIX):
        self.client = client
        self.window_seconds = window_seconds
        self.prefix = prefix

    async def seen(self, key: str) -> bool:
        try:
            created = await self.client.set(self.prefix + key, 1, nx=True, px=max(1, int(self.window_seconds * 1000)))
        except (RedisError, OSError) as exc:  # OSError covers TimeoutError and refused connections
            UNAVAILABLE.inc()
            log.warning("agents: replay check skipped for %s, Redis unreachable: %s", key, exc)
            return False
        return not created


_memory = MemorySeen(600.0)
# One pooled client per event loop (a redis.asyncio connection belongs to the loop that opened it).
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[str, object]] = weakref.WeakKeyDictionary()


def _redis_client(url: str):
    import redis.asyncio as redis

    # One quick retry (a pooled connection a Redis restart closed), not redis-py's default of
    # three with backoff up to seconds: the agent's frame waits for this answer.
    return redis.from_url(url, socket_timeout=REDIS_TIMEOUT_SECONDS, socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
                          health_check_interval=15, retry=Retry(ExponentialBackoff(cap=0.2, base=0.05), 1))


async def store() -> SeenIds:
    """The record this configuration uses: Redis when ``REDIS_URL`` is set, else this process's memory."""
    window = settings.AGENTS_REPLAY_WINDOW_SECONDS
    url = settings.REDIS_URL
    if not url:
        _memory.window.window_seconds = window
        return _memory
    loop = asyncio.get_running_loop()
    kept = _clients.get(loop)
    if kept is None or kept[0] != url:  # the new client is in place before the old one is closed
        old, kept = kept, (url, _redis_client(url))
        _clients[loop] = kept
        if old is not None:
            await old[1].aclose()
    return RedisSeen(kept[1], window)


async def seen_before(*, message_id: uuid.UUID | str) -> bool:
    """True when ``message_id`` was already received within the replay window, on any connection
    of any worker; records it otherwise. False (accept) when the shared record is unreachable."""
    return await (await store()).seen(str(message_id))


async def seen_close() -> None:
    """Close this loop's Redis client (server shutdown, the end of a test's loop)."""
    kept = _clients.pop(asyncio.get_running_loop(), None)
    if kept is not None:
        await kept[1].aclose()
