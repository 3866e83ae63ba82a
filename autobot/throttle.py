"""Counts that must hold across every worker: failed sign-ins today, any rate limit tomorrow.

A count lives in Redis when ``REDIS_URL`` is set and in the database otherwise, never in one
process's memory: behind a proxy that does not pin a client to a worker, a per-process count let
a locked-out user sign in on the next worker, and gave an attacker N times the allowance.

A window is fixed and starts with the first hit: a key with ``limit`` hits waits until the window
that its first hit opened ends (``Retry-After``). Each hit is one atomic step in either store
(Redis: ``SET NX EX`` + ``INCR`` in one MULTI; database: an insert-if-missing then an update of the
row under a lock), so concurrent hits on several workers are all counted.
"""

from __future__ import annotations

import logging
import unicodedata
from dataclasses import dataclass
from datetime import timedelta

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import DatabaseError, transaction
from django.utils import timezone
from redis.exceptions import RedisError

from autobot.errors import Unavailable
from autobot.models import ThrottleCount

log = logging.getLogger(__name__)

REDIS_PREFIX = "autobot:throttle:"
# Throttle commands answer in microseconds; a Redis that does not answer within this fails the
# sign-in with 503 instead of holding its thread (the channel layer's 30 s read timeout exists
# for its 5 s blocking read, which throttling never does).
REDIS_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class Limit:
    scope: str  # what is counted, e.g. "login.user"; part of the stored key
    limit: int
    window: int  # seconds


def normalise_username(raw: str) -> str:
    """The username as Django normalises it (NFKC), case-folded and trimmed: full-width `ｅｖｅ`,
    `EVE` and ` eve ` all count against `eve`."""
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", raw or "").casefold())
    return folded.strip()[:150]


def _redis_client():
    import redis.asyncio as redis

    # One client per call: the sign-in view is sync, and each async_to_sync call outside a server
    # loop runs on a loop of its own, which a pooled client must not outlive. One loopback
    # connection is nothing beside the password hash that follows.
    return redis.from_url(settings.REDIS_URL, socket_timeout=REDIS_TIMEOUT_SECONDS,
                          socket_connect_timeout=REDIS_TIMEOUT_SECONDS)


def _unavailable(exc: Exception) -> Unavailable:
    log.error("throttle store unavailable: %s", exc)
    return Unavailable("sign-in is unavailable right now: its attempt counter cannot be reached",
                       code="throttle_unavailable")


# -- Redis


async def _redis_wait(key: str, limit: Limit) -> float:
    async with _redis_client() as client:
        count, pttl = await client.pipeline(transaction=True).get(key).pttl(key).execute()
    return pttl / 1000 if count is not None and int(count) >= limit.limit and pttl > 0 else 0.0


async def _redis_hit(key: str, limit: Limit) -> int:
    async with _redis_client() as client:
        _, count = await client.pipeline(transaction=True).set(key, 0, ex=limit.window, nx=True).incr(key).execute()
    return int(count)


async def _redis_clear(key: str) -> None:
    async with _redis_client() as client:
        await client.delete(key)


# -- database


def _db_wait(key: str, limit: Limit) -> float:
    now = timezone.now()
    row = ThrottleCount.objects.filter(key=key, expires__gt=now).values_list("count", "expires").first()
    return (row[1] - now).total_seconds() if row and row[0] >= limit.limit else 0.0


def _db_hit(key: str, limit: Limit) -> int:
    now = timezone.now()
    try:
        # Bounds the table to one window of keys. A statement of its own, outside the row lock: two
        # of them crossing (a deadlock on PostgreSQL) cost a prune, never a sign-in.
        ThrottleCount.objects.filter(expires__lte=now).delete()
    except DatabaseError:
        log.warning("could not prune expired throttle counts", exc_info=True)
    with transaction.atomic():  # IMMEDIATE on SQLite: writers take turns from BEGIN
        # Insert-if-missing never fails on a race; the lock then orders the updates (PostgreSQL).
        ThrottleCount.objects.bulk_create([ThrottleCount(key=key, count=0, expires=now)], ignore_conflicts=True)
        row = ThrottleCount.objects.select_for_update().get(key=key)
        if row.expires <= now:
            row.count, row.expires = 0, now + timedelta(seconds=limit.window)
        row.count += 1
        row.save(update_fields=["count", "expires"])
        return row.count


def _db_clear(key: str) -> None:
    ThrottleCount.objects.filter(key=key).delete()


# -- the service


def _key(limit: Limit, key: str) -> str:
    return f"{limit.scope}:{key}"


async def throttle_wait(*, limit: Limit, key: str) -> float:
    """Seconds until `key` may try again (0 when it may now)."""
    try:
        if settings.REDIS_URL:
            return await _redis_wait(REDIS_PREFIX + _key(limit, key), limit)
        return await sync_to_async(_db_wait)(_key(limit, key), limit)
    except (OSError, DatabaseError, RedisError) as exc:
        raise _unavailable(exc) from exc


async def throttle_hit(*, limit: Limit, key: str) -> int:
    """Count one hit for `key`; returns the count in the current window."""
    try:
        if settings.REDIS_URL:
            return await _redis_hit(REDIS_PREFIX + _key(limit, key), limit)
        return await sync_to_async(_db_hit)(_key(limit, key), limit)
    except (OSError, DatabaseError, RedisError) as exc:
        raise _unavailable(exc) from exc


async def throttle_clear(*, limit: Limit, key: str) -> None:
    try:
        if settings.REDIS_URL:
            await _redis_clear(REDIS_PREFIX + _key(limit, key))
        else:
            await sync_to_async(_db_clear)(_key(limit, key))
    except (OSError, DatabaseError, RedisError) as exc:
        raise _unavailable(exc) from exc


# -- sign-in


def login_limits() -> tuple[Limit, Limit]:
    """Failed sign-ins per username, and per client address (five times the allowance: several
    people may share one address)."""
    limit, window = settings.LOGIN_MAX_FAILURES, settings.LOGIN_FAILURE_WINDOW_SECONDS
    return Limit("login.user", limit, window), Limit("login.address", limit * 5, window)


async def login_wait(*, username: str, address: str) -> float:
    users, addresses = login_limits()
    wait = await throttle_wait(limit=users, key=normalise_username(username))
    return max(wait, await throttle_wait(limit=addresses, key=address)) if address else wait


async def login_failed(*, username: str, address: str) -> None:
    users, addresses = login_limits()
    await throttle_hit(limit=users, key=normalise_username(username))
    if address:
        await throttle_hit(limit=addresses, key=address)


async def login_succeeded(*, username: str) -> None:
    await throttle_clear(limit=login_limits()[0], key=normalise_username(username))
