"""Chat's database work runs on chat's own worker thread, one job after another.

Why not the loop's default executor (`sync_to_async(thread_sensitive=False)`): it has only a
few threads and other work needs them — the health check's database ping runs there. A burst
of chat posts filled it with writers that, on SQLite, mostly slept in the busy handler waiting
for the one write lock, and every other job queued behind them. On SQLite one thread is the
natural shape anyway (one writer at a time, no lock waits, no busy sleeps); PostgreSQL takes a
few writers at once.

A worker keeps its connection while jobs keep coming (opening an SQLite connection costs more
than a chat write) and closes it after IDLE_CLOSE_SECONDS without work, so an idle server holds
no connection and a restarted database costs nothing.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import queue
import threading
from concurrent.futures import Future

from django.db import connection

IDLE_CLOSE_SECONDS = 1.0

_lock = threading.Lock()
_jobs: queue.SimpleQueue = queue.SimpleQueue()
_workers: list[threading.Thread] = []


def _work() -> None:
    while True:
        try:
            future, call = _jobs.get(timeout=IDLE_CLOSE_SECONDS)
        except queue.Empty:
            connection.close()
            continue
        if not future.set_running_or_notify_cancel():
            continue
        try:
            future.set_result(call())
        except BaseException as exc:  # handed to the awaiting coroutine
            if connection.connection is not None and not connection.is_usable():
                connection.close()  # a broken connection must not poison the next job
            future.set_exception(exc)


def _start_workers() -> None:
    with _lock:
        if _workers:
            return
        count = 1 if connection.vendor == "sqlite" else 4
        for number in range(count):
            worker = threading.Thread(target=_work, name=f"chat-db-{number}", daemon=True)
            worker.start()
            _workers.append(worker)


def db_job(fn):
    """`fn` (sync ORM work) as a coroutine function that runs it on chat's database thread.

    The caller's context variables (correlation id, client IP for audit events) go with it."""

    @functools.wraps(fn)
    async def run(*args, **kwargs):
        _start_workers()
        future: Future = Future()
        context = contextvars.copy_context()
        _jobs.put((future, functools.partial(context.run, fn, *args, **kwargs)))
        # Shielded: once queued, a job runs to the end even if the caller is cancelled, as a
        # half-written answer would otherwise be left behind.
        return await asyncio.shield(asyncio.wrap_future(future))

    return run
