"""Event-loop watchdog: report anything that holds the event loop longer than a threshold.

One slow callback on the loop (a sync database call, a file read, a password hash, a big
regex) stalls every socket and request the process serves. Two ways to see it:

- `LoopWatchdog` (the server): a heartbeat on the loop every few milliseconds and a thread
  that, when the heartbeat is late past the threshold, takes the loop thread's stack, so the
  report says where the loop was stuck. Works with any loop, uvloop included (whose callbacks
  cannot be wrapped). Cheap enough to leave on: one timer callback and one thread wake-up per
  tick. `AUTOBOT_LOOP_WATCHDOG_MS` (default 100; 0 turns it off).
- `time_callbacks` (the test suite): wraps the standard library loop's callback runner, as
  asyncio's debug mode does for `slow_callback_duration` but without debug mode's other costs,
  so the report names the very callback (task and coroutine) that was slow.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("autobot.watchdog")

TICK_SECONDS = 0.02  # heartbeat period: a stall is measured to within this


@dataclass
class Stall:
    """The loop was held for `seconds`; `where` is what held it (a callback, or a stack), and
    `stack` where it was stuck, when a thread managed to look in time."""

    seconds: float
    where: str
    stack: traceback.StackSummary | None = None


def _log_stall(stall: Stall) -> None:
    from autobot import metrics

    metrics.loop_stalls.inc()
    log.warning("event loop blocked for %.0f ms; %s", stall.seconds * 1000, stall.where)


class LoopWatchdog:
    """Heartbeat + sampler for one running loop. `start()` from inside the loop."""

    def __init__(self, threshold: float, on_stall: Callable[[Stall], None] = _log_stall) -> None:
        self.threshold = threshold
        self.on_stall = on_stall
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._last_beat = 0.0
        self._stack = ""  # the loop thread's stack, taken once during the current stall
        self._timer: asyncio.TimerHandle | None = None
        self._stopped = threading.Event()

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._last_beat = time.monotonic()
        self._timer = self._loop.call_later(TICK_SECONDS, self._beat)
        threading.Thread(target=self._sample, name="autobot-loop-watchdog", daemon=True).start()

    def stop(self) -> None:
        self._stopped.set()
        if self._timer is not None:
            self._timer.cancel()

    def _beat(self) -> None:
        now = time.monotonic()
        # The gap since the last beat includes up to one tick of ordinary waiting.
        held = now - self._last_beat - TICK_SECONDS
        if held > self.threshold:
            where = f"the loop thread was at:\n{self._stack}" if self._stack else "no stack was taken in time"
            try:
                self.on_stall(Stall(held, where))
            except Exception:  # a reporter must never take the heartbeat down
                log.exception("the loop watchdog's reporter failed")
        self._stack = ""
        self._last_beat = now
        if not self._stopped.is_set():
            self._timer = self._loop.call_later(TICK_SECONDS, self._beat)

    def _sample(self) -> None:
        """Runs in its own thread: the loop thread cannot look at itself while it is stuck."""
        while not self._stopped.wait(TICK_SECONDS * 2):
            if self._loop is not None and self._loop.is_closed():
                return
            if not self._stack and time.monotonic() - self._last_beat > self.threshold:
                frame = sys._current_frames().get(self._loop_thread)
                if frame is not None:
                    self._stack = "".join(traceback.format_stack(frame, limit=12))


def preload() -> None:
    """Import at start-up what the first request or socket would otherwise import on the event
    loop: the URLconf with every app's API and views (one to three seconds), and the channel
    layer's backend (redis, about half a second)."""
    from django.conf import settings
    from django.urls import get_resolver
    from django.utils.module_loading import import_string

    get_resolver().url_patterns  # noqa: B018
    for layer in settings.CHANNEL_LAYERS.values():
        import_string(layer["BACKEND"])


class WatchdogMiddleware:
    """ASGI middleware that starts a `LoopWatchdog` on the server's loop with its first scope
    (the lifespan's, when the server runs one: autobot/lifespan.py)."""

    def __init__(self, app, threshold_ms: int) -> None:
        self.app = app
        self.threshold = threshold_ms / 1000
        self._watching: asyncio.AbstractEventLoop | None = None

    async def __call__(self, scope, receive, send) -> None:
        if self.threshold > 0 and self._watching is not asyncio.get_running_loop():
            self._watching = asyncio.get_running_loop()
            LoopWatchdog(self.threshold).start()
        await self.app(scope, receive, send)


# --- per-callback timing for the standard library loop (the test suite) -----------------------

_timed = False
_running: dict[int, list] = {}  # thread id → [when its current callback started, its stack once slow]
STACK_LIMIT = 80


def time_callbacks(threshold: float, on_stall: Callable[[Stall], None]) -> None:
    """Time every callback of every standard library event loop in this process and report
    those that ran longer than `threshold` seconds, with where they were stuck (a thread takes
    the stack of a callback still running past the threshold). Process-wide; for test suites."""
    global _timed
    if _timed:
        raise RuntimeError("callbacks are timed already")
    _timed = True
    run = asyncio.events.Handle._run

    def timed_run(handle):
        thread = threading.get_ident()
        current = _running[thread] = [time.perf_counter(), "", run_queue_seconds()]
        try:
            return run(handle)
        finally:
            del _running[thread]
            held = time.perf_counter() - current[0]
            if held > threshold:
                held -= run_queue_seconds() - current[2]
            if held > threshold:
                stack = current[1] or None
                at = f"; it was at:\n{''.join(stack.format()[-16:])}" if stack else ""
                with contextlib.suppress(Exception):
                    on_stall(Stall(held, f"callback {_describe(handle)}{at}", stack))

    asyncio.events.Handle._run = timed_run
    threading.Thread(target=_sample_callbacks, args=(threshold,), name="autobot-callback-watchdog",
                     daemon=True).start()


class _SchedStat(threading.local):
    """This thread's own /proc/thread-self/schedstat, open for as long as the thread lives (the
    thread's local storage goes with it, and the file's finalizer closes it)."""

    file = None
    missing = False


_schedstat = _SchedStat()


def run_queue_seconds() -> float:
    """How long this thread has waited, runnable, for a CPU (the kernel's run-queue delay;
    0 where the kernel does not keep it). Subtracted from a callback's time: on a loaded
    machine the scheduler can keep a thread off the CPU for 100 ms and more in the middle of
    a callback, which says nothing about the code it runs (a full test run under load saw
    a 133 ms "stall" in a callback that had just started a coroutine, at a load of 9 on 2
    cores). Time waiting for the GIL or sleeping in a blocking call still counts. One `pread`
    (~1.5 µs)."""
    local = _schedstat
    if local.file is None:
        if local.missing:
            return 0.0
        try:
            local.file = open("/proc/thread-self/schedstat", "rb", buffering=0)  # noqa: SIM115
        except OSError:
            local.missing = True
            return 0.0
    try:
        return int(os.pread(local.file.fileno(), 64, 0).split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


def _sample_callbacks(threshold: float) -> None:
    while True:
        time.sleep(TICK_SECONDS)
        now = time.perf_counter()
        for thread, current in list(_running.items()):
            if not current[1] and now - current[0] > threshold:
                frame = sys._current_frames().get(thread)
                if frame is not None:
                    stack = traceback.StackSummary.extract(traceback.walk_stack(frame), limit=STACK_LIMIT)
                    stack.reverse()  # outermost first, as tracebacks print
                    current[1] = stack


def _describe(handle) -> str:
    """What a handle ran: for a task step, the task and its coroutine."""
    callback = getattr(handle, "_callback", None)
    task = getattr(callback, "__self__", None)
    if isinstance(task, asyncio.Task):
        coro = task.get_coro()
        return f"{task.get_name()} running {getattr(coro, '__qualname__', coro)!s}"
    return repr(handle)
