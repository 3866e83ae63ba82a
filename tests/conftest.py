"""Shared fixtures: users (owner, colleague, stranger, staff), API clients, WebSocket helper,
and the rules that make postgres/redis/e2e tests mandatory when their variables are set."""

import os

import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient

# Fails a test that held an event loop over 100 ms (tests/loop_watchdog.py).
pytest_plugins = ["tests.loop_watchdog"]

PASSWORD = "correct-horse-battery-staple"
# PBKDF2 at Django's iteration count costs ~0.3 s per hash and the suite makes hundreds of users:
# tests hash with MD5. One test keeps the real hasher (fixture `real_password_hasher`).
FAST_PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
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


@pytest.fixture(scope="session", autouse=True)
def _fast_password_hasher():
    from django.test import override_settings

    with override_settings(PASSWORD_HASHERS=FAST_PASSWORD_HASHERS):  # clears Django's hasher cache
        yield


@pytest.fixture
def real_password_hasher(settings):
    """Django's default hashers (PBKDF2 first), as in production, for this test only. Users made
    before it still have MD5 hashes: give them a real one with `set_password`."""
    from django.conf import global_settings

    settings.PASSWORD_HASHERS = global_settings.PASSWORD_HASHERS


@pytest.fixture(scope="session", autouse=True)
def _quick_transactional_flush(django_db_setup, django_db_blocker):
    """A transactional test ends with a flush of every table, after which Django re-runs
    post_migrate to recreate the content types and permissions: ~60 ms a test, a minute and a half
    of the suite, for rows that are the same every time. Instead, the rows the migrations left are
    read once here and put back with plain INSERTs after each flush — the same database state,
    even the same ids (the content-type cache stays right)."""
    from django.core.management import call_command
    from django.db import connections, transaction
    from django.test import TransactionTestCase

    with django_db_blocker.unblock():
        snapshots = {alias: _table_rows(connections[alias]) for alias in connections}
    stock_teardown = TransactionTestCase._fixture_teardown

    def flush_and_restore(test_case):
        if test_case.available_apps is not None or test_case.serialized_rollback:
            return stock_teardown(test_case)  # Django's own ways; unused here
        for alias in test_case._databases_names(include_mirrors=False):
            call_command("flush", verbosity=0, interactive=False, database=alias, reset_sequences=False,
                         inhibit_post_migrate=True)
            with transaction.atomic(using=alias), connections[alias].cursor() as cursor:
                for table, columns, rows in snapshots[alias]:  # foreign keys are checked at commit
                    names = ", ".join(connections[alias].ops.quote_name(column) for column in columns)
                    marks = ", ".join(["%s"] * len(columns))
                    quoted = connections[alias].ops.quote_name(table)
                    cursor.executemany(f"INSERT INTO {quoted} ({names}) VALUES ({marks})", rows)

    TransactionTestCase._fixture_teardown = flush_and_restore
    yield
    TransactionTestCase._fixture_teardown = stock_teardown


def _table_rows(connection) -> list[tuple[str, list[str], list[tuple]]]:
    """(table, columns, rows) of every non-empty table of the apps."""
    found = []
    with connection.cursor() as cursor:
        for table in connection.introspection.django_table_names(only_existing=True, include_views=False):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            rows = cursor.fetchall()
            if rows:
                found.append((table, [column[0] for column in cursor.description], rows))
    return found


@pytest.fixture(scope="session")
def django_db_modify_db_settings(tmp_path_factory):
    """SQLite tests use a real file (WAL, several connections, a live server can open it),
    in a folder of this run's own so parallel runs never share it."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    if db["ENGINE"] == "django.db.backends.sqlite3":
        db.setdefault("TEST", {})["NAME"] = str(tmp_path_factory.mktemp("db") / "test.sqlite3")


# A server's start (Django's set-up, the URLconf, the channel layer) takes a few seconds, but over
# 30 on CI's two shared cores when both are busy (seen: three servers in a row not ready in 30 s).
# A server that fails exits, and is reported at once; only a hung one waits this long.
SERVER_READY_SECONDS = 90.0


def app_server(var_dir, *, env: dict | None = None, name: str = "server", **options):
    """A `ServerProcess` (autobot/testing.py, not started yet) on this run's test database, with
    its secret key and the tests' settings (tests/server_settings.py: the fast password hasher).
    Data a test wants the server to see must be committed: `django_db(transaction=True)`.
    `env` adds or overrides variables (`REDIS_URL`, `AUTOBOT_LLM_*`, …); `options` go to
    ServerProcess (`port`, `ready_statuses`, …; `ready_seconds` defaults to SERVER_READY_SECONDS)."""
    from django.conf import settings

    from autobot.testing import ServerProcess, database_url

    base = {
        "DATABASE_URL": database_url(settings.DATABASES["default"]),
        "AUTOBOT_SECRET_KEY": settings.SECRET_KEY,  # shared: sessions, and the agents bus signing key
        "DJANGO_SETTINGS_MODULE": "tests.server_settings",
    }
    options.setdefault("ready_seconds", SERVER_READY_SECONDS)
    return ServerProcess(env={**base, **(env or {})}, var_dir=var_dir, name=name, **options)


@pytest.fixture(autouse=True)
def _fresh_login_throttle(request):
    """Each test starts with no failed sign-ins counted. Without Redis the counts are rows in the
    test database (rolled back or flushed after each test); a Redis test's are cleared here."""
    if "redis" in request.keywords and TEST_REDIS_URL:
        import redis

        from autobot.throttle import REDIS_PREFIX

        with redis.Redis.from_url(TEST_REDIS_URL, socket_timeout=5) as client:
            keys = list(client.scan_iter(match=REDIS_PREFIX + "*"))
            if keys:
                client.delete(*keys)


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


def _make_token(user, *, revoked_at=None, **kwargs) -> str:
    """A token made as the product makes one (`token_create`: audited as `auth.token_created`);
    `revoked_at` (a token revoked at that moment) is set on the row afterwards."""
    from asgiref.sync import async_to_sync

    from autobot.auth import token_create
    from autobot.models import ApiToken

    token, raw = async_to_sync(token_create)(actor=None, user=user, via="test", **kwargs)
    if revoked_at is not None:
        ApiToken.objects.filter(pk=token.pk).update(revoked_at=revoked_at)
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


async def asgi_get(application, path: str, *headers: tuple[bytes, bytes]) -> int:
    """GET `path` straight through an ASGI application (no server, no test client, so the
    request takes the real path through the lanes); the response status, its body read out."""
    from asgiref.testing import ApplicationCommunicator

    scope = {
        "type": "http", "http_version": "1.1", "method": "GET", "scheme": "http", "path": path,
        "raw_path": path.encode(), "query_string": b"", "root_path": "",
        "headers": [(b"host", b"testserver"), *headers],
        "client": ("127.0.0.1", 50000), "server": ("testserver", 80),
    }
    comm = ApplicationCommunicator(application, scope)
    await comm.send_input({"type": "http.request", "body": b"", "more_body": False})
    start, _ = await asgi_response(comm)
    return start["status"]


async def asgi_response(comm) -> tuple[dict, bytes]:
    """An ASGI communicator's response once it is whole: its start message and its body."""
    start = await comm.receive_output(timeout=20)
    body = b""
    while True:
        message = await comm.receive_output(timeout=20)
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await comm.wait(timeout=5)
    return start, body


def use_redis_layer(settings, prefix: str, url: str | None = None) -> None:
    """Switch the test to the project's real Redis channel layer, configured as settings builds it
    from REDIS_URL (the test Redis unless `url`), with channel names of the test's own."""
    import uuid

    from channels.layers import channel_layers

    from autobot.redisconf import channel_layer_config

    settings.REDIS_URL = url or os.environ["AUTOBOT_TEST_REDIS_URL"]
    settings.CHANNEL_LAYERS = {"default": channel_layer_config(settings.REDIS_URL,
                                                               prefix=f"{prefix}{uuid.uuid4().hex[:8]}")}
    channel_layers.backends.clear()
