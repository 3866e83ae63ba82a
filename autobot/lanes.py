"""Where the synchronous parts of async code run: a fixed set of long-lived threads ("lanes").

Under ASGI, Django gives every HTTP request a `ThreadSensitiveContext` of its own, and with
it a brand-new thread the first time the request touches sync code (the request_started signal
already does) and a new database connection in that thread. A burst of 100 requests thus made
100 threads and 100 SQLite connections at once; that many runnable threads starved the event
loop of the GIL, and `/api/health` stalled for hundreds of milliseconds.

Here every HTTP request to an async view, and every background task started with `spawn`,
runs its thread-sensitive sync work (the async ORM, Django's sync hooks) on the lanes, each call
on the lane with the fewest jobs waiting. Each call is one job on one thread with that thread's
connection, which is all Django needs: no transaction spans two calls (`atomic` lives inside one
sync function), and nothing here uses `QuerySet.aiterator()`, whose chunks would have to come
from one connection. Lanes live as long as the process, so their connections can be kept
(`CONN_MAX_AGE`), and a burst queues work on a few threads instead of creating a hundred.
Requests to sync views (the admin, the login form) keep Django's thread per request: each is
one long job, password hashing included, that must not hold a lane.

A task that outlives the request that started it must not keep the request's lane context:
asgiref refuses thread-sensitive calls from such a task once the request has ended. That is
why long-lived tasks start with `spawn`, which gives them a lane context of their own.

Other work that needs threads of its own gets a named `pool` of lanes (chat's writes,
chat/db.py) or a `dedicated` lane (the health check's database ping); `close_connections`
closes every lane's connections. Lanes of a pool made with `idle_close_seconds` close their
connections when idle, and any lane drops a connection that a database error left unusable.
Before every job a lane does for its own connections what Django does between requests
(`_tidy_connections`: age, autocommit, errors, health check after idling), so requests on the
lanes need not send Django's request signals through a thread (autobot/handler.py).

Needs asgiref >= 3.13 (requirements.txt): older versions, which Django allows, have no
`ThreadSensitiveContext(executor=...)` and raise TypeError at the first request.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import Executor, Future

from asgiref.sync import ThreadSensitiveContext, iscoroutinefunction
from django.conf import settings
from django.urls import Resolver404, get_resolver

from autobot.http import API_PREFIX

log = logging.getLogger("autobot.lanes")


class Lane(Executor):
    """One thread that runs the jobs handed to it one after another, and a count of those not
    finished yet.

    Not a ThreadPoolExecutor(max_workers=1): its submit takes a semaphore that its worker
    releases after every job, and under load the event loop kept blocking on that exchange (then
    waited for the GIL to come back). A SimpleQueue hand-over takes no Python-level lock."""

    def __init__(self, name: str, *, idle_close_seconds: float | None = None) -> None:
        self.name = f"autobot-lane-{name}"
        # None: keep the thread's database connections (CONN_MAX_AGE decides). A number: close
        # them after that many seconds without a job, so an idle server holds none.
        self.idle_close_seconds = idle_close_seconds
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._start_lock = threading.Lock()
        self._submitted = itertools.count(1)
        self._finished = itertools.count(1)
        self._submitted_n = 0
        self._finished_n = 0

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future: Future = Future()
        self.hand_over(future, fn, args, kwargs)
        return future

    def hand_over(self, future: Future | LoopWaiter, fn, args, kwargs) -> None:
        """Queue `fn(*args, **kwargs)`, its outcome for `future` (anything with a Future's
        `set_running_or_notify_cancel`, `set_result` and `set_exception`)."""
        if self._closed:
            raise RuntimeError(f"{self.name} has been shut down")
        if self._thread is None:
            self._start()
        self._submitted_n = next(self._submitted)  # next() on a count is atomic under the GIL
        self._jobs.put((future, fn, args, kwargs))

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name=self.name, daemon=True)
                self._thread.start()

    def _work(self) -> None:
        timeout = self.idle_close_seconds
        last_job = time.monotonic()
        while True:
            try:
                job = self._jobs.get(timeout=timeout)
            except queue.Empty:
                _close_thread_connections()
                timeout = None  # nothing left to close: sleep until the next job
                continue
            if job is None:
                return
            timeout = self.idle_close_seconds
            future, fn, args, kwargs = job
            started = time.monotonic()
            try:
                _tidy_connections(idle=started - last_job)
            except Exception:  # the lane must outlive it: drop the connections, the job opens new ones
                log.warning("%s: closing its database connections after an error tidying them", self.name,
                            exc_info=True)
                _close_thread_connections_quietly()
            last_job = started
            if future.set_running_or_notify_cancel():
                try:
                    result = fn(*args, **kwargs)
                except BaseException as exc:  # handed to whoever waits on the future
                    _drop_broken_connections(exc)
                    future.set_exception(exc)
                else:
                    future.set_result(result)
            self._finished_n = next(self._finished)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """No new jobs; the queued ones still run (cancelled first with `cancel_futures`)."""
        self._closed = True
        if cancel_futures:
            while True:
                try:
                    job = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if job is not None:
                    job[0].cancel()
        if self._thread is not None:
            self._jobs.put(None)
            if wait:
                self._thread.join()

    @property
    def pending(self) -> int:
        return self._submitted_n - self._finished_n


def _close_thread_connections() -> None:
    from django.db import connections

    connections.close_all()


HEALTH_CHECK_IDLE_SECONDS = 1.0  # a connection unused this long is checked before its next query


def _tidy_connections(*, idle: float) -> None:
    """Before each job: what Django does between two requests (`close_old_connections` on the
    request_started and request_finished signals), for this lane's own connections.

    Django's signals would do it on whichever lane ran the signal, not on the lanes the request's
    queries then ran on, and cost two thread hops a request (autobot/handler.py keeps them on the
    event loop). Here every lane tidies its own connections, before every job, in the thread
    that owns them: a connection past its age (`CONN_MAX_AGE`), left outside autocommit (a
    transaction a job did not finish), or unusable after a database error is closed, and the job
    opens a fresh one. With `CONN_HEALTH_CHECKS`, a connection idle for more than
    HEALTH_CHECK_IDLE_SECONDS is checked (`is_usable`) before its next query, as Django checks it
    at the start of every request; one the lane used within the last second is known to work,
    and checking it before every job would cost a round trip each on PostgreSQL."""
    if not settings.configured:
        return
    from django.db import connections

    for connection in connections.all(initialized_only=True):
        if connection.connection is None:
            continue
        known_good = idle < HEALTH_CHECK_IDLE_SECONDS and not connection.errors_occurred
        connection.close_if_unusable_or_obsolete()  # clears health_check_done
        if known_good and connection.connection is not None:
            connection.health_check_done = True


def _close_thread_connections_quietly() -> None:
    from django.db import connections

    for connection in connections.all(initialized_only=True):
        try:
            connection.close()
        except Exception:  # a connection that cannot even close is dropped with the wrapper
            log.debug("closing a database connection failed", exc_info=True)


def _drop_broken_connections(exc: BaseException) -> None:
    """After a database error, close this thread's connections that no longer work (a restarted
    database, a dropped socket), as Django does between requests: the next job on this lane
    then opens a fresh one instead of failing on the dead one."""
    from django.db import Error, connections

    if isinstance(exc, Error):
        for connection in connections.all(initialized_only=True):
            connection.close_if_unusable_or_obsolete()


class Pool(Executor):
    """Several lanes as one executor: each call goes to the lane with the fewest jobs waiting at
    that moment. Per call, not per request: a request or task bound to one lane for its whole
    life would wait behind whatever long job that lane picked up meanwhile (a password hash, an
    SQLite write-lock wait), however idle the others were.

    The lanes start on first use: `count` may be a function, read then (settings are not
    necessarily loaded when this module is imported)."""

    def __init__(self, name: str, count: int | Callable[[], int], *, idle_close_seconds: float | None = None):
        self.name, self._count, self.idle_close_seconds = name, count, idle_close_seconds
        self._lanes: list[Lane] = []

    @property
    def lanes(self) -> list[Lane]:
        if not self._lanes:
            with _lock:
                if not self._lanes:
                    count = self._count() if callable(self._count) else self._count
                    prefix = f"{self.name}-" if self.name else ""
                    self._lanes.extend(Lane(f"{prefix}{number}", idle_close_seconds=self.idle_close_seconds)
                                       for number in range(count))
        return self._lanes

    def submit(self, fn, /, *args, **kwargs) -> Future:
        return self.least_busy().submit(fn, *args, **kwargs)

    def least_busy(self) -> Lane:
        return min(self.lanes, key=lambda lane: lane.pending)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        for lane in list(self._lanes):
            lane.shutdown(wait, cancel_futures=cancel_futures)


_lock = threading.Lock()


DEFAULT_COUNT = 2  # settings.SYNC_THREADS; also used by code running without Django settings (benchmarks)


def _sync_threads() -> int:
    return settings.SYNC_THREADS if settings.configured else DEFAULT_COUNT


# The lanes of HTTP requests to async views and of spawned tasks: threads "autobot-lane-<n>".
_requests = Pool("", _sync_threads)
_pools: dict[str, Pool] = {}


def lanes() -> list[Lane]:
    """The lanes requests and spawned tasks run on."""
    return _requests.lanes


def pool(name: str, *, count: int | Callable[[], int], idle_close_seconds: float | None = None) -> Pool:
    """The pool named `name`, made on first call (later calls get that one, whatever they pass):
    lanes apart from the requests' ones, for work that should neither wait behind requests nor
    make them wait (chat's writes: chat/db.py). Threads are "autobot-lane-<name>-<n>"; their
    connections are closed by `close_connections` like the others'."""
    with _lock:
        if name not in _pools:
            _pools[name] = Pool(name, count, idle_close_seconds=idle_close_seconds)
        return _pools[name]


@contextlib.asynccontextmanager
async def lane_context():
    """Run the block's thread-sensitive sync calls on the lanes."""
    async with ThreadSensitiveContext(executor=_requests):
        yield


_ASYNC_PREFIXES = (API_PREFIX, "/static/")


def _sync_view(scope) -> bool:
    """Whether the request goes to a sync view (the admin, the login form). Such a view is one
    long job, password hashing included: it runs on a thread of its own, as stock Django does,
    and never holds a lane."""
    path = scope.get("path", "")
    root = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root):]
    if path.startswith(_ASYNC_PREFIXES):
        return False  # resolving a deep API path costs ~0.2 ms, and every API operation is async
    path = path or "/"
    if len(path) > _REMEMBERED_PATH_CHARS:
        return _resolves_to_sync_view.__wrapped__(get_resolver(), path)
    return _resolves_to_sync_view(get_resolver(), path)


_REMEMBERED_PATH_CHARS = 200


@functools.lru_cache(maxsize=1024)
def _resolves_to_sync_view(resolver, path: str) -> bool:
    """Remembered per URLconf and path: every page request asked it again (~0.05 ms), and Django
    resolves the path once more anyway. Keyed by the resolver, so a changed ROOT_URLCONF (tests)
    asks afresh; bounded in entries and in path length, as paths come from clients."""
    try:
        match = resolver.resolve(path)
    except Resolver404:
        return False
    return not iscoroutinefunction(match.func)


class LaneMiddleware:
    """ASGI middleware: HTTP requests to async views run their sync work on the lanes (see the
    module docstring). Django's own per-request `ThreadSensitiveContext` inside then changes
    nothing. Requests to sync views keep Django's thread per request."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if _sync_view(scope):
            await self.app(scope, receive, send)
            return
        token = _lane_request.set(True)
        try:
            async with lane_context():
                await self.app(scope, receive, send)
        finally:
            _lane_request.reset(token)


_lane_request: contextvars.ContextVar[bool] = contextvars.ContextVar("autobot_lane_request", default=False)


def in_lane_request() -> bool:
    """Whether the current HTTP request runs its sync work on the lanes (`LaneMiddleware`), whose
    threads look after their own database connections (see `_tidy_connections`)."""
    return _lane_request.get()


async def run(fn: Callable, /, *args, **kwargs):
    """`await sync_to_async(fn)(*args, **kwargs)` for a short database call of a request on the
    lanes, without asgiref's wrapper around it (its executor lookup, deadlock bookkeeping and
    context restoring cost about as much as a small SQLite query). `fn` runs on a request lane
    with a copy of the caller's context (the correlation id for logs); context variables it sets
    stay in the lane. For calls that do no more than run queries and return plain values: the
    token check, the list endpoints. Anything else keeps `sync_to_async`.

    The lane reports straight to an asyncio future (`LoopWaiter`), not through a
    `concurrent.futures.Future` chained to one by `asyncio.wrap_future` (a Condition and its lock
    made per call, callbacks both ways): ~18 µs of a trip's ~75 µs of CPU."""
    return await run_on(_requests.least_busy(), fn, *args, **kwargs)


async def run_on(lane: Lane, fn: Callable, /, *args, **kwargs):
    """`run` on the given lane (a `dedicated` one: the health check's database ping)."""
    loop = asyncio.get_running_loop()
    future = loop.create_future()
    context = contextvars.copy_context()
    lane.hand_over(LoopWaiter(loop, future), context.run, (fn, *args), kwargs)
    return await future


class LoopWaiter:
    """A lane job's outcome for an asyncio future: set on its loop with one `call_soon_threadsafe`."""

    __slots__ = ("loop", "future")

    def __init__(self, loop: asyncio.AbstractEventLoop, future: asyncio.Future) -> None:
        self.loop, self.future = loop, future

    def set_running_or_notify_cancel(self) -> bool:
        """Whether to run the job: not if its caller has stopped waiting (cancelled). Read from the
        lane, racing the loop: a caller that gives up just after this runs a job whose outcome is
        dropped, as happens when it gives up on a job already running."""
        return not self.future.cancelled()

    def set_result(self, result) -> None:
        self._settle(result, None)

    def set_exception(self, exc: BaseException) -> None:
        self._settle(None, exc)

    def _settle(self, result, exc: BaseException | None) -> None:
        if self.loop.is_closed():  # nobody left to tell (as asyncio.wrap_future does then)
            return
        try:
            self.loop.call_soon_threadsafe(_settle, self.future, result, exc)
        except RuntimeError:  # the loop closed meanwhile
            pass


def _settle(future: asyncio.Future, result, exc: BaseException | None) -> None:
    if future.done():  # cancelled while the job ran
        return
    if exc is None:
        future.set_result(result)
    else:
        future.set_exception(exc)


def spawn(coro: Coroutine, *, name: str | None = None) -> asyncio.Task:
    """Start a task that may outlive its caller (a request, a socket), on a lane of its own
    choosing. Context variables (correlation id, client IP for audit events) still carry over."""
    task = asyncio.get_running_loop().create_task(_in_lane(coro), name=name)
    # A task cancelled before its first step never runs `coro`: close it, or Python warns.
    task.add_done_callback(lambda done: coro.close() if done.cancelled() else None)
    return task


async def _in_lane(coro: Coroutine):
    async with lane_context():
        return await coro


def close_connections() -> None:
    """Close the database connections every lane holds: requests', named pools' (chat's writer)
    and dedicated ones (the test suite, before it drops its database). Sync: call it from a
    thread that is not running an event loop."""
    with _lock:
        every = [*_requests._lanes, *(lane for named in _pools.values() for lane in named._lanes),
                 *_dedicated.values()]
    for lane in every:
        lane.submit(_close_thread_connections).result(timeout=10)


_dedicated: dict[str, Lane] = {}


def dedicated(name: str) -> Lane:
    """A lane of its own for one kind of work that must not queue behind anything else (the
    health check's database ping), outside the set requests and tasks are spread over."""
    with _lock:
        if name not in _dedicated:
            _dedicated[name] = Lane(name)
        return _dedicated[name]
