"""A list call reads its page in the token or session check's lane job (autobot/prefetch.py): one
lane job a call, the same answer, authentication still first, and a guess that does not match the
validated values only costs a second read."""

import json

import pytest
from asgiref.sync import sync_to_async
from asgiref.testing import ApplicationCommunicator

from autobot.lanes import lanes
from autobot.prefetch import Prefetch
from chat.api import SESSION_PAGE
from chat.models import ChatSession
from chat.schemas import ChatSessionFilters
from tests.conftest import asgi_response, make_token

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def application():
    from autobot.asgi import application  # imported here, not on the test's event loop (it takes a while)

    return application


async def _get(application, path: str, query: str = "", token: str | None = None,
               cookie: str | None = None) -> tuple[int, dict]:
    """GET through the ASGI application (the real path through the lanes): status and JSON body."""
    headers = [(b"host", b"testserver")] + ([(b"authorization", f"Bearer {token}".encode())] if token else [])
    headers += [(b"cookie", f"sessionid={cookie}".encode())] if cookie else []
    comm = ApplicationCommunicator(application, {
        "type": "http", "http_version": "1.1", "method": "GET", "scheme": "http", "path": path,
        "raw_path": path.encode(), "query_string": query.encode(), "root_path": "", "headers": headers,
        "client": ("127.0.0.1", 50000), "server": ("testserver", 80),
    })
    await comm.send_input({"type": "http.request", "body": b"", "more_body": False})
    start, body = await asgi_response(comm)
    return start["status"], json.loads(body)


def _jobs() -> int:
    return sum(lane._submitted_n for lane in lanes())


@sync_to_async
def _sessions(user, titles):
    for title in titles:
        ChatSession.objects.create(owner=user, title=title)


@pytest.mark.parametrize("path", ["/api/chat/sessions", "/api/knowledge/entries"])
async def test_a_bearer_list_call_is_one_lane_job(owner, application, path):
    token = await sync_to_async(make_token)(owner)
    await _get(application, path, token=token)  # the lanes exist, last_used_at is written
    before = _jobs()
    status, _body = await _get(application, path, "limit=5", token)
    assert status == 200
    assert _jobs() == before + 1


async def test_the_list_is_the_caller_s_and_the_parameters_apply(owner, colleague, application):
    await _sessions(owner, ["alpha one", "alpha two", "beta"])
    await _sessions(colleague, ["alpha of someone else"])
    token = await sync_to_async(make_token)(owner)
    status, body = await _get(application, "/api/chat/sessions", "q=alpha&limit=1", token)
    assert status == 200
    assert body["count"] == 2
    assert [item["title"] for item in body["items"]] == ["alpha two"]
    status, body = await _get(application, "/api/chat/sessions", "q=alpha&limit=1&offset=1", token)
    assert [item["title"] for item in body["items"]] == ["alpha one"]


async def test_a_bad_token_is_refused_before_the_parameters_are_checked(owner, application):
    await _sessions(owner, ["mine"])
    for path in ("/api/chat/sessions", "/api/knowledge/entries"):
        status, body = await _get(application, path, "limit=many", "abt_not-a-real-token")
        assert (status, body["code"]) == (401, "invalid_token")
    token = await sync_to_async(make_token)(owner)
    for path in ("/api/chat/sessions", "/api/knowledge/entries"):
        status, body = await _get(application, path, "limit=many", token)
        assert status == 422 and body["code"] == "validation_error"


async def test_a_revoked_token_reads_nothing(owner, application):
    from django.utils import timezone

    await _sessions(owner, ["mine"])
    token = await sync_to_async(make_token)(owner, revoked_at=timezone.now())
    status, body = await _get(application, "/api/chat/sessions", token=token)
    assert (status, body["code"]) == (401, "invalid_token")


@sync_to_async
def _signed_in(user) -> str:
    """A browser session of `user`: its session cookie's value."""
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


@pytest.mark.parametrize("path", ["/api/chat/sessions", "/api/knowledge/entries"])
async def test_a_session_list_call_is_one_lane_job(owner, application, path):
    cookie = await _signed_in(owner)
    await _get(application, path, cookie=cookie)  # the lanes exist
    before = _jobs()
    status, _body = await _get(application, path, "limit=5", cookie=cookie)
    assert status == 200
    assert _jobs() == before + 1


async def test_a_session_list_call_is_the_caller_s_and_the_parameters_apply(owner, colleague, application):
    await _sessions(owner, ["alpha one", "alpha two", "beta"])
    await _sessions(colleague, ["alpha of someone else"])
    cookie = await _signed_in(owner)
    status, body = await _get(application, "/api/chat/sessions", "q=alpha&limit=1&offset=1", cookie=cookie)
    assert status == 200
    assert body["count"] == 2
    assert [item["title"] for item in body["items"]] == ["alpha one"]
    status, body = await _get(application, "/api/chat/sessions", "limit=many", cookie=cookie)
    assert status == 422 and body["code"] == "validation_error"


async def test_a_signed_out_or_stale_session_reads_nothing(owner, application):
    await _sessions(owner, ["mine"])
    status, body = await _get(application, "/api/chat/sessions", cookie="not-a-session-key")
    assert (status, body["code"]) == (401, "not_authenticated")
    cookie = await _signed_in(owner)

    @sync_to_async
    def change_password():
        owner.set_password("a-new-password-123")
        owner.save()

    await change_password()  # signs every other session out, as in Django
    for path in ("/api/chat/sessions", "/api/knowledge/entries"):
        status, body = await _get(application, path, "limit=many", cookie=cookie)
        assert (status, body["code"]) == (401, "not_authenticated")


class _FakeRequest:
    """Only what Prefetch touches: a place for its note (a real HttpRequest would do the same)."""


async def test_the_page_is_read_again_for_other_values_or_another_user(owner, colleague):
    await _sessions(owner, ["one", "two"])
    await _sessions(colleague, ["theirs"])
    read = sync_to_async(SESSION_PAGE.run_with, thread_sensitive=True)
    values = {"q": "", "limit": 50, "offset": 0}
    request = _FakeRequest()
    SESSION_PAGE.keep(request, owner, values, await read(owner, values))
    # The view was given other values: the page is read for them, not the kept one.
    rows, count = await SESSION_PAGE.page(request, owner, q="", limit=1, offset=0)
    assert count == 2 and len(rows) == 1
    # Kept for the owner, asked for the colleague: the colleague's page.
    SESSION_PAGE.keep(request, owner, values, await read(owner, values))
    rows, count = await SESSION_PAGE.page(request, colleague, **values)
    assert count == 1 and rows[0][1] == "theirs"
    # Kept once, used once.
    SESSION_PAGE.keep(request, owner, values, ([], 0))
    assert await SESSION_PAGE.page(request, owner, **values) == ([], 0)
    rows, count = await SESSION_PAGE.page(request, owner, **values)
    assert count == 2


def test_a_query_string_that_does_not_parse_guesses_nothing():
    from django.test import RequestFactory

    prefetch = Prefetch(lambda user, **values: values, ChatSessionFilters)
    assert prefetch.guess(RequestFactory().get("/", {"limit": "many"})) is None
    assert prefetch.guess(RequestFactory().get("/", {"q": "x", "offset": "3"})) == {"q": "x", "limit": 50, "offset": 3}
    assert prefetch.run_with(None, None) is None


def test_a_remembered_guess_is_the_same_and_a_caller_cannot_change_it():
    from django.test import RequestFactory

    prefetch = Prefetch(lambda user, **values: values, ChatSessionFilters)
    factory = RequestFactory()
    first = prefetch.guess(factory.get("/", {"q": "x", "limit": "5"}))
    first["limit"] = 999
    assert prefetch.guess(factory.get("/", {"q": "x", "limit": "5"})) == {"q": "x", "limit": 5, "offset": 0}
    assert prefetch.guess(factory.get("/", {"limit": "many"})) is None
    assert prefetch.guess(factory.get("/", {"limit": "many"})) is None
    for offset in range(300):  # past what is remembered: still each one's own
        assert prefetch.guess(factory.get("/", {"offset": str(offset)}))["offset"] == offset
    long_query = {"q": "y" * 300}
    assert prefetch.guess(factory.get("/", long_query)) == {"q": "y" * 300, "limit": 50, "offset": 0}
