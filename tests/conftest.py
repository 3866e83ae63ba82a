"""Shared fixtures: users (owner, colleague, stranger, staff), API clients, WebSocket helper,
and the rules that make postgres/redis/e2e tests mandatory when their variables are set."""

import os

import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient

# Fails a test that held an event loop over 100 ms (tests/loop_watchdog.py).
pytest_plugins = ["tests.loop_watchdog"]

PASSWORD = "correct-horse-battery-staple"
TEST_DATABASE_URL = os.environ.get("AUTOBOT_TEST_DATABASE_URL", "")
TEST_REDIS_URL = os.environ.get("AUTOBOT_TEST_REDIS_URL", "")


def _on_postgres() -> bool:
    from django.conf import settings

    return settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"


def pytest_collection_modifyitems(config, items):
    on_pg = _on_postgres()
    deselected, kept = [], []
    for item in items:
        if "postgres" in item.keywords and not on_pg:
            if TEST_DATABASE_URL:
                # They run in make test's second pass, with DATABASE_URL pointing at PostgreSQL.
                deselected.append(item)
                continue
            item.add_marker(pytest.mark.skip(
                reason="needs PostgreSQL: set AUTOBOT_TEST_DATABASE_URL (make test then runs a PostgreSQL pass)"))
        if "redis" in item.keywords and not TEST_REDIS_URL:
            item.add_marker(pytest.mark.skip(reason="needs Redis: set AUTOBOT_TEST_REDIS_URL"))
        kept.append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
    # Browser tests last: Playwright's sync API leaves an event loop running in the main thread.
    items[:] = [i for i in kept if "e2e" not in i.keywords] + [i for i in kept if "e2e" in i.keywords]


_skipped_required: list[str] = []


def pytest_runtest_logreport(report):
    """With the service variables set, a skipped postgres/redis/e2e test is a failure: CI must
    really exercise them, not pass by skipping."""
    if not report.skipped:
        return
    keywords = report.keywords
    required = (("postgres" in keywords and TEST_DATABASE_URL) or ("redis" in keywords and TEST_REDIS_URL)
                or ("e2e" in keywords and os.environ.get("AUTOBOT_REQUIRE_E2E")))
    if required:
        _skipped_required.append(report.nodeid)


def pytest_sessionfinish(session, exitstatus):
    if _skipped_required:
        print("\nRequired tests were skipped (their service variables are set):")
        for nodeid in _skipped_required:
            print(f"  {nodeid}")
        session.exitstatus = 1


@pytest.fixture(scope="session", autouse=True)
def _close_orm_thread_connections(django_db_setup):
    """Async tests run the ORM on asgiref's one shared thread and on the lanes; close those
    threads' connections before the test database is dropped (PostgreSQL refuses to drop a
    database in use)."""
    yield
    from asgiref.sync import SyncToAsync
    from django.db import connections

    from autobot.lanes import close_connections

    executor = getattr(SyncToAsync, "single_thread_executor", None)
    if executor is not None:
        executor.submit(connections.close_all).result(timeout=10)
    close_connections()  # requests' and background tasks' threads (autobot/lanes.py)


@pytest.fixture(scope="session")
def django_db_modify_db_settings(tmp_path_factory):
    """SQLite tests use a real file (WAL, several connections, a live server can open it),
    in a folder of this run's own so parallel runs never share it."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    if db["ENGINE"] == "django.db.backends.sqlite3":
        db.setdefault("TEST", {})["NAME"] = str(tmp_path_factory.mktemp("db") / "test.sqlite3")


@pytest.fixture(autouse=True)
def _fresh_login_throttle():
    """Failed sign-ins are counted per process: each test starts with none."""
    from autobot import views

    views._windows.clear()


@pytest.fixture(autouse=True)
def _isolated_dirs(settings, tmp_path_factory):
    """Every test gets its own files area; nothing is written outside temporary folders."""
    settings.FILES_ROOT = tmp_path_factory.mktemp("files")


def _make_user(django_user_model, username, **extra):
    return django_user_model.objects.create_user(username=username, password=PASSWORD,
                                                 email=f"{username}@example.test", **extra)


@pytest.fixture
def owner(db, django_user_model):
    return _make_user(django_user_model, "owner")


@pytest.fixture
def colleague(db, django_user_model):
    return _make_user(django_user_model, "colleague")


@pytest.fixture
def stranger(db, django_user_model):
    return _make_user(django_user_model, "stranger")


@pytest.fixture
def staff(db, django_user_model):
    return _make_user(django_user_model, "staffer", is_staff=True, is_superuser=True)


def _call_sync(fn, *args, **kwargs):
    """Run sync ORM code from a sync or an async test (from a loop, in a worker thread)."""
    import asyncio
    import concurrent.futures

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return fn(*args, **kwargs)
    def call_and_close():
        from django.db import connection

        try:
            return fn(*args, **kwargs)
        finally:
            connection.close()  # the thread ends here; PostgreSQL must not keep its session

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(call_and_close).result()


def make_token(user, **kwargs) -> str:
    return _call_sync(_make_token, user, **kwargs)


def _make_token(user, **kwargs) -> str:
    from autobot.auth import new_raw_token
    from autobot.models import ApiToken

    raw = new_raw_token()
    ApiToken.objects.create(user=user, prefix=raw[:12], token_hash=ApiToken.hash(raw), **kwargs)
    return raw


@pytest.fixture
def token_for(db):
    return make_token


class BearerClient(AsyncClient):
    """AsyncClient sending `Authorization: Bearer <token>` on every request (AsyncClient drops
    headers given to its constructor)."""

    def __init__(self, token: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self._auth = {"Authorization": f"Bearer {token}"} if token else {}

    def generic(self, method, path, *args, headers=None, **kwargs):
        return super().generic(method, path, *args, headers={**self._auth, **(headers or {})}, **kwargs)


@pytest.fixture
def api_client(db):
    """api_client(user) → AsyncClient authenticated by a Bearer token; api_client(None) → anonymous."""

    def build(user=None, **kwargs):
        return BearerClient(make_token(user) if user is not None else None, **kwargs)

    return build


@pytest.fixture
def ws_connect(db):
    """await ws_connect(path, user=..., origin=...) → a WebsocketCommunicator that has connected.

    Call `await comm.disconnect()` at the end. With user=None no credentials are sent."""
    from channels.testing import WebsocketCommunicator

    from autobot.asgi import application

    communicators = []

    async def connect(path, *, user=None, origin="http://testserver", headers=None):
        hdrs = list(headers or [])
        if not any(name == b"host" for name, _ in hdrs):
            hdrs.append((b"host", b"testserver"))
        if origin:
            hdrs.append((b"origin", origin.encode()))
        if user is not None:
            raw = await sync_to_async(_make_token)(user)
            hdrs.append((b"authorization", f"Bearer {raw}".encode()))
        comm = WebsocketCommunicator(application, path, headers=hdrs)
        comm.connected, _ = await comm.connect()
        communicators.append(comm)
        return comm

    yield connect
    # Whatever a test left open is cancelled here, so no consumer task outlives its test.
    for comm in communicators:
        try:
            if not comm.future.done():
                comm.future.cancel()
        except RuntimeError:  # its event loop is already closed
            pass
