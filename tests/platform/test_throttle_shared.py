"""Failed sign-ins are counted once for every worker: in the database, or in Redis when it is set.

Two real server processes share one database (and one Redis in the Redis variant); failures
spread over both lock the username out on both, as they would behind a round-robin proxy."""

import asyncio
import re

import aiohttp
import pytest

from autobot import throttle
from autobot.lanes import spawn
from autobot.models import AuditEvent
from autobot.testing import ServerProcess, database_url
from tests.conftest import PASSWORD, SERVER_READY_SECONDS, TEST_REDIS_URL

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(params=["database", pytest.param("redis", marks=pytest.mark.redis)], scope="module")
def two_workers(request, django_db_setup, django_db_blocker, tmp_path_factory):
    """Addresses of two server processes that allow 3 failed sign-ins per username."""
    from django.conf import settings

    var_dir = tmp_path_factory.mktemp(f"throttle-{request.param}")
    env = {
        "DATABASE_URL": database_url(settings.DATABASES["default"]), "DJANGO_SETTINGS_MODULE": "tests.server_settings",
        "AUTOBOT_SECRET_KEY": settings.SECRET_KEY,  # one CSRF cookie works on both
        "AUTOBOT_LOGIN_MAX_FAILURES": "3",
    }
    if request.param == "redis":
        env["REDIS_URL"] = TEST_REDIS_URL
    servers = [ServerProcess(env=env, var_dir=var_dir, name=f"worker-{i}", ready_seconds=SERVER_READY_SECONDS)
               for i in range(2)]
    try:
        yield [server.start().address for server in servers]
    finally:
        for server in servers:
            server.stop()


async def sign_in(address: str, username: str, password: str) -> aiohttp.ClientResponse:
    """The browser's way: fetch the form (CSRF cookie and token), post it."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.get(f"http://{address}/accounts/login/") as page:
            token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', await page.text()).group(1)
        async with http.post(f"http://{address}/accounts/login/", allow_redirects=False,
                             data={"csrfmiddlewaretoken": token, "username": username, "password": password}) as r:
            await r.read()
            return r


@pytest.mark.django_db(transaction=True)
async def test_failures_on_two_workers_lock_the_username_out_on_both(two_workers, owner):
    a, b = two_workers
    for address in (a, b, a):
        assert (await sign_in(address, "owner", "wrong")).status == 200
    for address in (b, a):  # the right password, on either worker
        refused = await sign_in(address, "owner", PASSWORD)
        assert refused.status == 429
        assert 0 < int(refused.headers["Retry-After"]) <= 901
    assert await AuditEvent.objects.filter(action="auth.login_throttled").acount() == 2
    # Another username is not affected.
    assert (await sign_in(b, "colleague", "wrong")).status == 200


@pytest.mark.django_db(transaction=True)
async def test_a_success_on_one_worker_clears_the_count_for_the_other(two_workers, owner):
    a, b = two_workers
    for address in (a, b):
        await sign_in(address, "owner", "wrong")
    assert (await sign_in(a, "owner", PASSWORD)).status == 302
    for address in (b, a):
        assert (await sign_in(address, "owner", "wrong")).status == 200
    assert (await sign_in(b, "owner", PASSWORD)).status == 302


@pytest.mark.django_db
def test_a_full_width_username_counts_against_the_plain_one(client, settings, owner):
    settings.LOGIN_MAX_FAILURES = 3
    for name in ("ｏｗｎｅｒ", "ＯＷＮＥＲ", "Owner"):
        assert client.post("/accounts/login/", {"username": name, "password": "wrong"}).status_code == 200
    assert client.post("/accounts/login/", {"username": "owner", "password": PASSWORD}).status_code == 429


def test_usernames_are_keyed_as_django_normalises_them():
    assert throttle.normalise_username("ｅｖｅ") == "eve"
    assert throttle.normalise_username(" EVE ") == "eve"
    assert throttle.normalise_username("Straße") == "strasse"
    assert throttle.normalise_username("ﬁle") == "file"  # the ligature, as NFKC spells it


@pytest.fixture(params=["database", pytest.param("redis", marks=pytest.mark.redis)])
def store(request, settings):
    settings.REDIS_URL = TEST_REDIS_URL if request.param == "redis" else ""
    return request.param


@pytest.mark.django_db(transaction=True)
async def test_concurrent_hits_are_all_counted(store):
    limit = throttle.Limit("test.concurrent", 5, 60)
    # Each hit a task on the lanes: its own thread and database connection, as concurrent requests have.
    counts = await asyncio.gather(*(spawn(throttle.throttle_hit(limit=limit, key="k")) for _ in range(8)))
    assert sorted(counts) == list(range(1, 9))
    assert 0 < await throttle.throttle_wait(limit=limit, key="k") <= 60
    await throttle.throttle_clear(limit=limit, key="k")
    assert await throttle.throttle_wait(limit=limit, key="k") == 0


@pytest.mark.django_db
def test_an_unreachable_redis_refuses_sign_in_with_503(client, settings, owner):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    response = client.post("/accounts/login/", {"username": "owner", "password": PASSWORD})
    assert response.status_code == 503
    assert b"sign-in is unavailable right now" in response.content
    assert "_auth_user_id" not in client.session
