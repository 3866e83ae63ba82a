"""A request leaves no reference cycle behind: once answered, its request object, user, session,
message storage and template context are freed at once, not left for the cyclic garbage
collector, whose collections under load took a share of the worker's CPU and, when a full one
came due, held the event loop (docs/performance.md, "Eighth round")."""

import asyncio
import gc
import hashlib
import importlib
import inspect
import uuid

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.http import HttpRequest
from django.test import Client, RequestFactory

from tests.conftest import make_token

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def application():
    from autobot.asgi import application  # imported here, not on the test's event loop (it takes a while)

    return application


async def _get(application, path: str, headers: list[tuple[bytes, bytes]]) -> int:
    """GET through the ASGI application as uvicorn serves it: once the response is whole, the
    server reports the exchange over (`http.disconnect`) to whoever still listens."""
    answered = asyncio.Event()
    statuses = []

    async def receive():
        if not statuses:
            statuses.append(None)
            return {"type": "http.request", "body": b"", "more_body": False}
        await answered.wait()
        return {"type": "http.disconnect"}

    async def send(message):
        if message["type"] == "http.response.start":
            statuses[0] = message["status"]
        elif not message.get("more_body"):
            answered.set()

    await application({
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
        "headers": [(b"host", b"testserver"), *headers], "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }, receive, send)
    return statuses[0]


async def _cyclic_garbage(application, path: str, headers: list) -> tuple[int, list, list]:
    """The status of one GET, the requests of that GET (by its request id) among what only the
    cyclic collector would free, and the kinds of everything found. Other tests' leftovers may
    turn into garbage meanwhile: only this request's are the test's business."""
    await _get(application, path, headers)  # first: what the first request sets up, kept for good
    probe = f"cycle-probe-{uuid.uuid4().hex}"
    gc.collect()
    enabled, flags = gc.isenabled(), gc.get_debug()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)  # what a collection finds is kept in gc.garbage, to look at
    try:
        status = await _get(application, path, [*headers, (b"x-request-id", probe.encode())])
        gc.collect()
        # By type, not isinstance: a weak proxy whose object is gone raises on isinstance.
        requests = [thing for thing in gc.garbage if issubclass(type(thing), HttpRequest)]
        ours = [request for request in requests if request.META.get("HTTP_X_REQUEST_ID") == probe]
        kinds = {type(thing).__name__ for thing in gc.garbage} if requests == ours else set()
    finally:
        gc.garbage.clear()
        gc.set_debug(flags)
        if enabled:
            gc.enable()
    return status, ours, kinds


@pytest.mark.parametrize("path", ["/api/chat/sessions", "/api/knowledge/entries", "/api/health"])
async def test_an_api_call_leaves_no_cycle(owner, application, path):
    token = await sync_to_async(make_token)(owner)
    status, ours, _kinds = await _cyclic_garbage(application, path, [(b"authorization", f"Bearer {token}".encode())])
    assert status == 200
    assert ours == []


@sync_to_async
def _session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


@pytest.mark.parametrize("path", ["/chat/", "/knowledge/", "/", "/api/chat/sessions"])
async def test_a_signed_in_page_leaves_no_cycle(owner, application, path):
    cookie = await _session_cookie(owner)
    status, ours, kinds = await _cyclic_garbage(application, path, [(b"cookie", f"sessionid={cookie}".encode())])
    assert status == 200
    assert ours == []
    # (Only when no other test's request turned up, whose own parts would be in it.)
    assert not kinds & {"RequestContext", "FallbackStorage", "SessionStore", "SimpleLazyObject"}


def _signed_in_request(user):
    """A request through Django's session and authentication middleware, as AutoBot runs them."""
    from autobot.middleware import AuthenticationMiddleware, SessionMiddleware

    client = Client()
    client.force_login(user)
    request = RequestFactory().get("/", HTTP_COOKIE=f"sessionid={client.cookies['sessionid'].value}")
    SessionMiddleware(lambda r: None).process_request(request)
    AuthenticationMiddleware(lambda r: None).process_request(request)
    return request


def test_request_user_and_auser_read_the_session_s_user(owner):
    request = _signed_in_request(owner)
    assert request.user.pk == owner.pk and request.user.is_authenticated
    assert async_to_sync(request.auser)().pk == owner.pk


def test_a_user_kept_unread_past_its_request_says_so(owner):
    request = _signed_in_request(owner)
    kept = request.user  # the lazy object, not read yet
    del request
    gc.collect()
    with pytest.raises(RuntimeError, match="after its request had ended"):
        _ = kept.is_authenticated


# Django's code that autobot/templating.py, autobot/middleware.py and autobot/sessions.py restate, as
# it was when they were written: a new Django version fails here, so the copies get looked at.
DJANGO_COPIED_SHA256 = {
    "django.template.backends.django.Template.render":
        "4a1ec275ca1ac35030a9677e666e02531bde05ca16e9998987d6b3fe080c3d3c",
    "django.contrib.auth.middleware.AuthenticationMiddleware.process_request":
        "6dd39b90ad6373e2c7d5b0ceda543c912360da9e1daf5766c3ca9b090e8675e6",
    "django.contrib.messages.middleware.MessageMiddleware.process_request":
        "7f4834ba26ee05835eb38324e7ff6b2e85f109815e42b641783401775d367e74",
    # autobot/middleware.py's SessionMiddleware (its hooks, and the short way out of process_response)
    "django.contrib.sessions.middleware.SessionMiddleware.process_request":
        "6782d24847e4a9267ad523e25487d5366241c7b7c2f0c90fe71c233b74af80aa",
    "django.contrib.sessions.middleware.SessionMiddleware.process_response":
        "fbaf5503c20d7dd09b0917969f49541a469fb48ca8f7867d97da879e9ca9bf79",
    # autobot/sessions.py's SessionStore.__init__
    "django.contrib.sessions.backends.base.SessionBase.__init__":
        "f78360c7a64901afa6ccfcaadb2b695b0b764ad0c9fc5d8470c6b674c8db2399",
    "django.contrib.sessions.backends.db.SessionStore.__init__":
        "0cbd3599a781a12471c1b82e263342bc8fde8a16a063610e883e3a3f85f773f9",
    # autobot/templating.py's `{% extends %}` (tests/platform/test_templating.py)
    "django.template.loader_tags.ExtendsNode.render":
        "a5faa7f78356ce8cb4a34ecf468287e525483678bd11a1ac3703eb7df7ff7d8a",
}


@pytest.mark.parametrize("name", DJANGO_COPIED_SHA256)
def test_the_django_code_restated_here_is_unchanged(name):
    module, cls, method = name.rsplit(".", 2)
    source = inspect.getsource(getattr(getattr(importlib.import_module(module), cls), method))
    assert hashlib.sha256(source.encode()).hexdigest() == DJANGO_COPIED_SHA256[name], (
        f"Django's {name} changed: compare it with AutoBot's restatement, then update the hash")


def test_the_collector_stays_on_with_a_larger_young_threshold():
    """autobot/asgi.py raises the young generation's threshold (docs/performance.md, twelfth
    round); the collector still runs, and the older generations keep Python's thresholds."""
    import autobot.asgi

    assert gc.isenabled()
    assert gc.get_threshold() == (autobot.asgi.YOUNG_COLLECTION_THRESHOLD, 10, 10)
