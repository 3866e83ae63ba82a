"""Requests and background tasks run their sync work on a fixed set of threads (autobot/lanes.py)."""

import asyncio
import threading
import time

import pytest
from asgiref.sync import sync_to_async
from django.core.signals import request_started

from autobot.lanes import Lane, close_connections, lane_context, lanes, pool, spawn
from tests.conftest import asgi_get, make_token

pytestmark = pytest.mark.django_db(transaction=True)


async def _get(application, path: str, token: str | None) -> int:
    return await asgi_get(application, path, *([(b"authorization", f"Bearer {token}".encode())] if token else []))


@pytest.fixture
def application():
    from autobot.asgi import application  # imported here, not on the test's event loop (it takes a while)

    return application


async def test_a_burst_of_requests_shares_the_lanes_instead_of_a_thread_each(owner, settings, application):
    token = await sync_to_async(make_token)(owner)
    threads_seen: set[str] = set()

    def note_thread(**_kwargs):  # a sync receiver: Django runs it on the request's sync thread
        threads_seen.add(threading.current_thread().name)

    request_started.connect(note_thread)
    try:
        statuses = await asyncio.gather(*(_get(application, "/api/me", token) for _ in range(40)))
    finally:
        request_started.disconnect(note_thread)
    assert statuses == [200] * 40
    assert threads_seen and all(name.startswith("autobot-lane-") for name in threads_seen)
    assert len(threads_seen) <= settings.SYNC_THREADS


async def test_a_spawned_task_keeps_its_database_access_after_the_request_has_ended(owner):
    from django.contrib.auth import get_user_model

    started, go_on = asyncio.Event(), asyncio.Event()

    async def background() -> str:
        started.set()
        await go_on.wait()  # the "request" below has ended by now
        user = await get_user_model().objects.aget(pk=owner.pk)
        return user.username

    async with lane_context():
        task = spawn(background(), name="test-background")
        await started.wait()
    go_on.set()
    assert await task == "owner"


async def test_a_plain_task_outliving_its_lane_context_is_refused():
    """Why long-lived tasks start with `spawn`: asgiref refuses a task that inherited a lane
    context which has since exited, rather than running its work on an unrelated thread."""
    go_on = asyncio.Event()

    async def background():
        await go_on.wait()
        return await sync_to_async(threading.current_thread)()

    async with lane_context():
        task = asyncio.create_task(background())
    go_on.set()
    with pytest.raises(RuntimeError, match="ThreadSensitiveContext has exited"):
        await task


async def test_a_lane_busy_with_a_long_job_is_passed_over_by_the_next_call():
    release = threading.Event()
    async with lane_context():
        blocked = asyncio.ensure_future(sync_to_async(release.wait)())
        await asyncio.sleep(0)  # one step: the call is handed to a lane before its first await
        busy = [lane for lane in lanes() if lane.pending]
        assert len(busy) == 1
        # The same request's (or task's) next call does not queue behind the long one.
        name = await sync_to_async(lambda: threading.current_thread().name)()
        assert name.startswith("autobot-lane-") and name != busy[0].name
        release.set()
        await blocked


async def test_a_request_to_a_sync_view_gets_a_thread_of_its_own_not_a_lane(owner, application):
    """Sync views (the admin, the login form) are one long job each, password hashing included:
    a flood of them must not occupy the lanes that every API request needs."""
    token = await sync_to_async(make_token)(owner)
    threads_seen: list[str] = []

    def note_thread(**_kwargs):
        threads_seen.append(threading.current_thread().name)

    request_started.connect(note_thread)
    try:
        assert await _get(application, "/accounts/login/", token) == 200  # Django's sync LoginView
        assert await _get(application, "/api/me", token) == 200
    finally:
        request_started.disconnect(note_thread)
    login_thread, api_thread = threads_seen
    assert not login_thread.startswith("autobot-lane-") and api_thread.startswith("autobot-lane-")


def test_a_lane_that_was_shut_down_refuses_new_work_but_finishes_what_it_had():
    from autobot.lanes import Lane

    lane = Lane("test")
    queued = lane.submit(lambda: "done")
    lane.shutdown(wait=True)
    assert queued.result(timeout=5) == "done"
    with pytest.raises(RuntimeError, match="shut down"):
        lane.submit(lambda: None)


def _wait_until(predicate, seconds: float = 10.0) -> None:
    """Poll a condition another thread brings about (a lane's idle timer gives no event)."""
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def _connection_in_use():
    """This thread's connection to the database (the wrapper itself, not the thread-local proxy)."""
    from django.db import connections

    wrapper = connections["default"]
    wrapper.ensure_connection()
    return wrapper


def test_a_lane_with_an_idle_limit_closes_its_connection_when_idle_and_reopens_it_for_the_next_job():
    from django.contrib.auth import get_user_model

    lane = Lane("test-idle", idle_close_seconds=0.05)
    try:
        wrapper = lane.submit(_connection_in_use).result(timeout=10)
        _wait_until(lambda: wrapper.connection is None)
        assert lane.submit(get_user_model().objects.count).result(timeout=10) == 0
    finally:
        lane.shutdown()


def test_close_connections_closes_the_connections_of_named_pools():
    test_pool = pool("test-close", count=1)  # no idle limit: the connection would stay
    wrapper = test_pool.submit(_connection_in_use).result(timeout=10)
    assert test_pool.lanes[0].name == "autobot-lane-test-close-0"
    assert wrapper.connection is not None
    close_connections()
    assert wrapper.connection is None


@pytest.mark.postgres
def test_a_lane_whose_connection_the_database_dropped_opens_a_new_one_for_the_next_job(monkeypatch):
    """As after a database restart: the job that meets the dead connection fails, the next works."""
    from django.contrib.auth import get_user_model
    from django.db import Error, connections

    from autobot import lanes as lanes_module

    # A connection used moments ago is not health-checked before the next job (the idle case is
    # the test below): keep it so however slowly this test runs.
    monkeypatch.setattr(lanes_module, "HEALTH_CHECK_IDLE_SECONDS", 3600)
    count = get_user_model().objects.count
    lane = Lane("test-dropped")
    try:
        pid = lane.submit(lambda: _connection_in_use().connection.info.backend_pid).result(timeout=10)
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
        with pytest.raises(Error):
            lane.submit(count).result(timeout=10)
        assert lane.submit(count).result(timeout=10) == 0
    finally:
        lane.submit(connections.close_all).result(timeout=10)
        lane.shutdown()


# --- each lane looks after its own connections before every job (autobot.lanes._tidy_connections)


def _raw_connection():
    """This thread's open DB-API connection (the driver's object, new after a reconnect)."""
    return _connection_in_use().connection


def test_a_lane_replaces_a_connection_past_its_age_before_the_next_job():
    from django.contrib.auth import get_user_model
    from django.db import connections

    lane = Lane("test-age")
    try:
        wrapper = lane.submit(_connection_in_use).result(timeout=10)
        first = wrapper.connection
        assert lane.submit(_raw_connection).result(timeout=10) is first  # young: kept
        wrapper.close_at = time.monotonic() - 1  # as if CONN_MAX_AGE had passed
        second = lane.submit(_raw_connection).result(timeout=10)
        assert second is not None and second is not first
        assert lane.submit(get_user_model().objects.count).result(timeout=10) == 0
    finally:
        lane.submit(connections.close_all).result(timeout=10)
        lane.shutdown()


def test_a_lane_drops_a_connection_a_job_left_outside_autocommit():
    from django.db import connections

    def leave_a_transaction_open():
        connection = _connection_in_use()
        connection.set_autocommit(False)
        return connection.connection

    lane = Lane("test-autocommit")
    try:
        first = lane.submit(leave_a_transaction_open).result(timeout=10)
        assert lane.submit(lambda: connections["default"].get_autocommit()).result(timeout=10) is True
        assert lane.submit(_raw_connection).result(timeout=10) is not first
    finally:
        lane.submit(connections.close_all).result(timeout=10)
        lane.shutdown()


def test_a_lane_health_checks_a_connection_only_after_it_was_idle(monkeypatch):
    from django.db import connections

    from autobot import lanes as lanes_module

    def health_check_pending():
        return not connections["default"].health_check_done

    lane = Lane("test-health")
    try:
        lane.submit(_connection_in_use).result(timeout=10)
        monkeypatch.setattr(lanes_module, "HEALTH_CHECK_IDLE_SECONDS", 3600)
        assert lane.submit(health_check_pending).result(timeout=10) is False  # just used: known good
        monkeypatch.setattr(lanes_module, "HEALTH_CHECK_IDLE_SECONDS", 0)
        assert lane.submit(health_check_pending).result(timeout=10) is True  # idle: checked at its next query
    finally:
        lane.submit(connections.close_all).result(timeout=10)
        lane.shutdown()


@pytest.mark.postgres
def test_a_lane_whose_idle_connection_the_database_dropped_reconnects_without_failing_a_job(monkeypatch):
    """As after a database restart while the lane was idle: the health check finds the dead
    connection before the job uses it, as Django's does at the start of a request."""
    from django.contrib.auth import get_user_model
    from django.db import connections

    from autobot import lanes as lanes_module

    lane = Lane("test-idle-dropped")
    try:
        pid = lane.submit(lambda: _connection_in_use().connection.info.backend_pid).result(timeout=10)
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
        monkeypatch.setattr(lanes_module, "HEALTH_CHECK_IDLE_SECONDS", 0)  # every gap counts as idle
        assert lane.submit(get_user_model().objects.count).result(timeout=10) == 0
    finally:
        lane.submit(connections.close_all).result(timeout=10)
        lane.shutdown()


async def test_run_gives_the_job_s_value_or_its_exception_and_carries_the_caller_s_context():
    from autobot import context
    from autobot import lanes as lane_module

    def where(offset):
        return threading.current_thread().name, context.correlation_id.get(), offset + 1

    context.correlation_id.set("req-7")
    name, seen, value = await lane_module.run(where, 41)
    assert name.startswith("autobot-lane-") and seen == "req-7" and value == 42

    def failing():
        raise LookupError("no such row")

    with pytest.raises(LookupError, match="no such row"):
        await lane_module.run(failing)


async def test_run_skips_a_queued_job_whose_caller_stopped_waiting():
    from autobot import lanes as lane_module

    release = threading.Event()
    ran = []
    blockers = [asyncio.ensure_future(lane_module.run(release.wait, 10)) for _ in lanes()]
    await asyncio.sleep(0)  # every lane now holds a blocker
    waiting = asyncio.ensure_future(lane_module.run(ran.append, "late"))
    await asyncio.sleep(0)
    waiting.cancel()
    release.set()
    await asyncio.gather(*blockers)
    # A job behind it on every lane: each lane runs its jobs in order, so the queued one is past.
    await asyncio.gather(*(asyncio.wrap_future(lane.submit(lambda: None)) for lane in lanes()))
    assert waiting.cancelled() and ran == []


def test_a_lane_holding_a_connection_still_runs_a_job_while_database_access_is_blocked(django_db_blocker,
                                                                                      caplog):
    """A lane keeps its connection from one database test into a test without database access,
    where pytest-django refuses every connection: tidying it before the next job fails (a warning
    in the log, CI's "Database access not allowed"), the connection is dropped, and the job runs
    anyway; once access is back, the next database job opens a fresh connection."""
    from django.contrib.auth import get_user_model
    from django.db import connections

    lane = Lane("test-blocked")
    try:
        first = lane.submit(_connection_in_use).result(timeout=10).connection
        with django_db_blocker.block():
            assert lane.submit(lambda: "ran").result(timeout=10) == "ran"
        assert any("tidying" in r.getMessage() and "Database access not allowed" in str(r.exc_info[1])
                   for r in caplog.records if r.exc_info)
        assert lane.submit(get_user_model().objects.count).result(timeout=10) == 0
        assert lane.submit(_raw_connection).result(timeout=10) is not first
    finally:
        lane.submit(connections.close_all).result(timeout=10)
        lane.shutdown()
