"""Supervised long-lived loops: readers that wait on the channel layer must outlive a Redis error.

A reader (the bus's reply reader, a built-in agent's inbox, an external agent's inbox, a chat
answer's cancel listener) that lets one ``ConnectionError`` escape stops for good: from then on
requests time out and cancels are ignored while the process looks healthy. ``supervised`` runs a
reader's body again after any error, with exponential backoff and jitter; the body joins its
groups itself, so they are re-joined once Redis is back. ``/api/health`` reports a registered
reader that is not running (``not_running()``), naming it.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from itertools import count

log = logging.getLogger("autobot.supervise")

BACKOFF_FIRST = 0.2
BACKOFF_MAX = 10.0
# A body that ran at least this long before failing counts as having worked: backoff restarts
# from its first step, so one error an hour never waits the maximum.
HEALTHY_RUN_SECONDS = 30.0
# A reader restarted after an error counts as running only once it has stayed up this long: a
# reader whose Redis is still gone fails again at once, and health must not flicker to "ok".
RECOVERY_SECONDS = 3.0


@dataclass
class ReaderState:
    name: str
    running: bool = False
    failures: int = 0
    last_error: str = ""
    failed_at: float = float("-inf")
    since: float = field(default_factory=time.monotonic)


_readers: dict[int, ReaderState] = {}
_ids = count()


def not_running() -> list[str]:
    """Names of the supervised readers of this process that are waiting to be restarted."""
    now = time.monotonic()
    return sorted({state.name for state in _readers.values()
                   if not state.running or now - state.failed_at < RECOVERY_SECONDS})


def readers() -> list[ReaderState]:
    return list(_readers.values())


def backoff(attempt: int) -> float:
    return random.uniform(0.5, 1.0) * min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** attempt)


async def supervised(name: str, body: Callable[[], Awaitable[None]]) -> None:
    """Run ``body()`` until it returns or the task is cancelled; after an error, log it, back
    off and run it again. ``body`` must (re)do its own set-up (groups, channels)."""
    key = next(_ids)
    state = _readers[key] = ReaderState(name)
    attempt = 0
    try:
        while True:
            state.running, started = True, time.monotonic()
            try:
                await body()
                return
            except Exception as exc:  # noqa: BLE001 - any error: the loop must come back
                if time.monotonic() - started >= HEALTHY_RUN_SECONDS:
                    attempt = 0
                delay = backoff(attempt)
                attempt += 1
                state.running, state.failures, state.last_error = False, state.failures + 1, repr(exc)
                state.failed_at = time.monotonic()
                log.warning("%s stopped (%r); restarting in %.1f s (failure %d)",
                            name, exc, delay, state.failures, exc_info=state.failures == 1)
                await asyncio.sleep(delay)
    finally:
        _readers.pop(key, None)


# Python 3.11's asyncio.wait_for (which redis-py wraps around every command it sends) loses a
# cancellation that arrives as the inner operation completes (CPython gh-86296, fixed in 3.12):
# a reader cancelled at that moment carries on into its next blocking read. Cancelling again
# until the task is done makes the race harmless.
RECANCEL_SECONDS = 0.2
RECANCEL_TRIES = 50


def cancel(task: asyncio.Task) -> None:
    """Cancel ``task``, and again every RECANCEL_SECONDS while it keeps running."""
    loop = task.get_loop()

    def again(tries: int) -> None:
        if not task.done():
            task.cancel()
            if tries:
                loop.call_later(RECANCEL_SECONDS, again, tries - 1)

    again(RECANCEL_TRIES)


async def cancel_and_wait(tasks) -> None:
    """Cancel the tasks (insisting, see ``cancel``) and wait until every one has ended."""
    tasks = [task for task in tasks if task is not None]
    for task in tasks:
        cancel(task)
    if tasks:
        await asyncio.wait(tasks)


async def run_to_end(coro):
    """Run ``coro`` to its end even when the caller is cancelled, once or again and again
    (``cancel`` insists): a clean-up that must not stop halfway. Returns its result; a
    cancellation of the caller is raised once it has ended."""
    task = asyncio.ensure_future(coro)
    interrupted = False
    while not task.done():
        try:
            await asyncio.wait({task})  # unlike awaiting it, waiting does not pass a cancel on
        except asyncio.CancelledError:
            interrupted = True
    if interrupted:
        if not task.cancelled() and task.exception() is not None:
            log.error("a clean-up failed after its caller was cancelled", exc_info=task.exception())
        raise asyncio.CancelledError
    return task.result()
