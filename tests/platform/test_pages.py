"""`@page` (autobot/pages.py): a signed-in page runs as one lane job and keeps what the pages had
with `login_required`: the redirect of anonymous visitors, a fresh CSRF token, the CSP, messages,
the session saved."""

import asyncio
import json
import re

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.test import AsyncClient

from autobot.asgi import application  # here, not in a test: importing it takes a second or more
from autobot.sessions import SessionStore
from tests.conftest import asgi_get
from tests.platform import pages_urls

pytestmark = pytest.mark.django_db(transaction=True)

PAGES = ["/", "/chat/", "/knowledge/", "/terminal/", "/files/", "/agents/", "/tokens/"]


@pytest.fixture(autouse=True)
def _test_views(settings):
    settings.ROOT_URLCONF = "tests.platform.pages_urls"
    pages_urls.seen.clear()


@pytest.mark.parametrize("url", [*PAGES, "/test-pages/teapot"])
async def test_an_anonymous_visitor_is_sent_to_the_login_page_and_back(url):
    response = await AsyncClient().get(url, {"tab": "2"})
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={url}%3Ftab%3D2"


@pytest.mark.parametrize("url", PAGES)
async def test_each_page_renders_for_a_signed_in_user_with_its_name(staff, url):
    client = AsyncClient()
    await client.aforce_login(staff)
    response = await client.get(url)
    assert response.status_code == 200, url
    assert '<span class="who">staffer</span>' in response.content.decode()


async def test_a_view_keeps_its_own_status_and_headers(owner):
    client = AsyncClient()
    await client.aforce_login(owner)
    response = await client.get("/test-pages/teapot")
    assert response.status_code == 418 and response["X-Kettle"] == "on"


def _tokens(html: str) -> list[str]:
    return re.findall(r'name="csrf-token" content="([^"]+)"|name="csrfmiddlewaretoken" value="([^"]+)"', html)


async def test_each_request_gets_a_fresh_csrf_token_and_the_policy(owner):
    """Nothing made per request is kept between requests: the masked CSRF token differs every
    time (it and the CSRF cookie are what a page carries per request), the policy is on each."""
    client = AsyncClient(enforce_csrf_checks=True)
    await client.aforce_login(owner)
    first = await client.get("/chat/")
    second = await client.get("/chat/")
    assert "csrftoken" in first.cookies
    one, two = _tokens(first.content.decode()), _tokens(second.content.decode())
    assert one and two and one != two
    for response in (first, second):
        policy = response["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
        nonces = re.findall(r"'nonce-([^']+)'", policy)  # none today; if a policy gets them, never reused
        assert all(f'nonce="{nonce}"' in response.content.decode() for nonce in nonces)
    assert not set(re.findall(r"'nonce-([^']+)'", first["Content-Security-Policy"])) & set(
        re.findall(r"'nonce-([^']+)'", second["Content-Security-Policy"]))
    # The token from the page is accepted on a form post.
    token = _tokens(second.content.decode())[0][0]
    response = await client.post("/accounts/logout/", {"csrfmiddlewaretoken": token})
    assert response.status_code == 302


async def test_messages_show_once_on_a_page_and_the_session_is_saved(owner):
    client = AsyncClient()
    await client.aforce_login(owner)
    long_text = "y" * 5000  # beyond the cookie's room: it is kept in the session (a database write)
    await client.get("/test-pages/notify", {"text": long_text})
    html = (await client.get("/chat/")).content.decode()
    assert f'<li class="msg-info">{long_text}</li>' in html
    assert long_text not in (await client.get("/chat/")).content.decode()  # shown once


async def _get(path: str, cookie: str) -> int:
    return await asgi_get(application, path, (b"cookie", cookie.encode()))


def _session_for(user) -> str:
    session = SessionStore()
    session.update({SESSION_KEY: str(user.pk), BACKEND_SESSION_KEY: "django.contrib.auth.backends.ModelBackend",
                    HASH_SESSION_KEY: user.get_session_auth_hash()})
    session.create()
    return session.session_key


async def test_through_the_server_each_page_runs_on_a_lane_and_reads_the_user_once(owner, settings):
    cookie = f"sessionid={await sync_to_async(_session_for)(owner)}"
    statuses = await asyncio.gather(*(_get(f"/test-pages/probe/{n}", cookie) for n in range(20)))
    assert statuses == [200] * 20
    assert len(pages_urls.seen) == 20
    assert all(run["thread"].startswith("autobot-lane-") for run in pages_urls.seen)
    assert all(run["user"] == "owner" and run["same_user"] for run in pages_urls.seen)
    assert not any(run["lazy"] for run in pages_urls.seen)  # the user itself, not a lazy stand-in
    assert len({run["thread"] for run in pages_urls.seen}) <= settings.SYNC_THREADS


async def test_through_the_server_a_page_that_calls_async_code_runs_on_a_lane(owner):
    """`@page(async_calls=True)`: the body's `async_to_sync` call works from the lane job."""
    from asgiref.testing import ApplicationCommunicator

    from tests.conftest import asgi_response

    cookie = f"sessionid={await sync_to_async(_session_for)(owner)}"
    scope = {"type": "http", "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": "/test-pages/nested", "raw_path": b"/test-pages/nested", "query_string": b"", "root_path": "",
             "headers": [(b"host", b"testserver"), (b"cookie", cookie.encode())],
             "client": ("127.0.0.1", 50000), "server": ("testserver", 80)}
    comm = ApplicationCommunicator(application, scope)
    await comm.send_input({"type": "http.request", "body": b"", "more_body": False})
    start, body = await asgi_response(comm)
    assert start["status"] == 200
    answer = json.loads(body)
    assert answer["count"] == 1 and answer["thread"].startswith("autobot-lane-")


async def test_through_the_server_every_page_renders_for_its_user(staff):
    """Each page as served (its job on a lane by `lanes.run`, the dashboard's through asgiref)."""
    cookie = f"sessionid={await sync_to_async(_session_for)(staff)}"
    assert [await _get(url, cookie) for url in PAGES] == [200] * len(PAGES)
