"""Chat's database writes run on chat's own lanes (a pool of autobot/lanes.py), one job at a time
per lane.

Why not the request lanes or the loop's default executor: a burst of chat posts filled them with
writers that, on SQLite, mostly slept in the busy handler waiting for the one write lock, and
every other job queued behind them (the health check's database ping among them). On SQLite one
lane is the natural shape anyway (one writer at a time, no lock waits, no busy sleeps);
PostgreSQL takes a few writers at once.

A lane keeps its connection while jobs keep coming (opening an SQLite connection costs more than
a chat write) and closes it after IDLE_CLOSE_SECONDS without work, so an idle server holds no
connection and a restarted database costs nothing. `autobot.lanes.close_connections()` closes
these connections too.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools

from django.db import connection

from autobot import lanes

IDLE_CLOSE_SECONDS = 1.0
POSTGRES_WRITERS = 4  # lanes on PostgreSQL; SQLite gets one (it has one write lock)


def _writers() -> int:
    return 1 if connection.vendor == "sqlite" else POSTGRES_WRITERS


def _pool() -> lanes.Pool:
    return lanes.pool("chat-db", count=_writers, idle_close_seconds=IDLE_CLOSE_SECONDS)


def db_job(fn):
    """`fn` (sync ORM work) as a coroutine function that runs it on chat's database lanes.

    The caller's context variables (correlation id, client IP for audit events) go with it."""

    @functools.wraps(fn)
    async def run(*args, **kwargs):
        context = contextvars.copy_context()
        future = _pool().submit(context.run, fn, *args, **kwargs)
        # Shielded: once queued, a job runs to the end even if the caller is cancelled, as a
        # half-written answer would otherwise be left behind.
        return await asyncio.shield(asyncio.wrap_future(future))

    return run
