"""autobot/middleware.py: Django's middleware made async-native keeps Django's behaviour.

The session, messages, CSRF, security and common middleware run inline on the event loop (no
thread hop per request); the session and messages go to a thread only to write. These tests go
through the real MIDDLEWARE setting with async views, as the API and pages do."""

import pytest
from django.contrib.sessions.models import Session
from django.core.checks import Error
from django.core.exceptions import PermissionDenied
from django.test import AsyncClient
from django.utils.deprecation import MiddlewareMixin

from autobot.middleware import check_memory_only_settings

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _async_test_views(settings):
    settings.ROOT_URLCONF = "tests.platform.middleware_urls"


async def test_a_session_written_by_an_async_view_is_saved_and_read_back(owner):
    client = AsyncClient()
    await client.aforce_login(owner)
    response = await client.get("/test-mw/remember", {"colour": "teal"})
    assert response.status_code == 200
    key = client.cookies["sessionid"].value
    stored = await Session.objects.aget(session_key=key)
    assert stored.get_decoded()["colour"] == "teal"
    response = await client.get("/test-mw/recall")
    assert response.json() == {"colour": "teal"}


async def test_an_anonymous_visitors_session_is_created_when_written():
    client = AsyncClient()
    await client.get("/test-mw/remember", {"colour": "plum"})
    assert await Session.objects.acount() == 1
    assert (await client.get("/test-mw/recall")).json() == {"colour": "plum"}


async def test_messages_reach_the_next_request_even_when_they_overflow_into_the_session(owner):
    client = AsyncClient()
    await client.aforce_login(owner)
    await client.get("/test-mw/notify", {"text": "saved"})
    long_text = "x" * 5000  # beyond the cookie's room: the rest goes to the session (a database write)
    await client.get("/test-mw/notify", {"text": long_text})
    response = await client.get("/test-mw/inbox")
    assert response.json() == {"messages": ["saved", long_text]}
    assert (await client.get("/test-mw/inbox")).json() == {"messages": []}  # shown once


async def test_api_calls_get_no_message_storage_and_leave_waiting_messages_for_the_next_page(owner):
    client = AsyncClient()
    await client.aforce_login(owner)
    await client.get("/test-mw/notify", {"text": "saved"})
    response = await client.get("/api/test-mw/probe")
    assert response.json() == {"message_storage": False}
    assert (await client.get("/api/chat/sessions")).status_code == 200
    assert (await client.get("/test-mw/inbox")).json() == {"messages": ["saved"]}


async def test_a_page_post_without_the_csrf_token_is_refused_and_with_it_accepted(owner):
    client = AsyncClient(enforce_csrf_checks=True)
    await client.aforce_login(owner)
    refused = await client.post("/test-mw/form", {"x": "1"})
    assert refused.status_code == 403
    await client.get("/")  # the dashboard sets the csrftoken cookie
    token = client.cookies["csrftoken"].value
    accepted = await client.post("/test-mw/form", {"x": "1", "csrfmiddlewaretoken": token})
    assert accepted.status_code == 200
    assert accepted.content == b"posted POST"


async def test_a_wrong_method_on_the_api_is_a_405_in_the_json_error_shape_with_allow(api_client, owner):
    response = await api_client(owner).delete("/api/health")
    assert response.status_code == 405
    assert response.json() == {"detail": response.json()["detail"], "code": "method_not_allowed"}
    assert "GET" in response["Allow"]


async def test_an_api_error_made_outside_ninja_keeps_the_security_headers(api_client, owner):
    response = await api_client(owner).delete("/api/health")
    assert response.status_code == 405 and response["Content-Type"] == "application/json"
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"] and response["X-Request-ID"]


@pytest.mark.parametrize("sent", ["abc\n", "a" * 65, "a b", ""])
async def test_a_request_id_not_wholly_of_the_allowed_characters_is_replaced(sent):
    response = await AsyncClient().get("/api/health", headers={"x-request-id": sent})
    assert response.status_code == 200
    assert response["X-Request-ID"] != sent and len(response["X-Request-ID"]) == 32


async def test_a_request_id_of_the_allowed_characters_is_kept():
    response = await AsyncClient().get("/api/health", headers={"x-request-id": "job-42.retry_1"})
    assert response["X-Request-ID"] == "job-42.retry_1"


def test_a_subclass_of_an_inline_middleware_cannot_add_a_hook_its_call_never_runs():
    from autobot.middleware import XFrameOptionsMiddleware

    with pytest.raises(TypeError, match="process_request"):
        type("WithRequestHook", (XFrameOptionsMiddleware,), {"process_request": lambda self, request: None})
    # Overriding a hook the class already has is fine (AuthenticationMiddleware does).
    type("OwnResponseHook", (XFrameOptionsMiddleware,), {"process_response": lambda self, request, response: response})


async def test_a_foreign_host_header_on_the_api_is_a_400_in_the_json_error_shape():
    response = await AsyncClient().get("/api/health", headers={"host": "evil.example"})
    assert response.status_code == 400
    assert response.json()["code"] == "bad_request"
    assert response.json()["detail"]


async def test_pages_get_the_security_headers():
    response = await AsyncClient().get("/accounts/login/")
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_the_system_check_refuses_csrf_tokens_in_the_session(settings):
    assert check_memory_only_settings(None) == []
    settings.CSRF_USE_SESSIONS = True
    errors = check_memory_only_settings(None)
    assert [error.id for error in errors] == ["autobot.E001"]
    assert isinstance(errors[0], Error) and "CSRF_USE_SESSIONS" in errors[0].msg


class _Both:
    def __init__(self, get_response):
        self.get_response = get_response

    def process_request(self, request):
        request.seen.append("request")
        return "short" if request.short else None

    def process_response(self, request, response):
        request.seen.append("response")
        return f"{response}+processed"


class _RequestOnly:
    def __init__(self, get_response):
        self.get_response = get_response

    def process_request(self, request):
        request.seen.append("request")
        return "short" if request.short else None


class _ResponseOnly:
    def __init__(self, get_response):
        self.get_response = get_response

    def process_response(self, request, response):
        request.seen.append("response")
        return f"{response}+processed"


class _Neither:
    def __init__(self, get_response):
        self.get_response = get_response


@pytest.mark.parametrize("name,short,seen,result", [
    ("_Both", False, ["request", "view", "response"], "view+processed"),
    ("_Both", True, ["request", "response"], "short+processed"),  # as Django's: a short answer is processed
    ("_RequestOnly", False, ["request", "view"], "view"),
    ("_RequestOnly", True, ["request"], "short"),
    ("_ResponseOnly", False, ["view", "response"], "view+processed"),
    ("_Neither", False, ["view"], "view"),
])
async def test_an_inline_middleware_runs_the_hooks_its_class_has_in_django_s_order(name, short, seen, result):
    from types import SimpleNamespace

    from autobot.middleware import _inline

    async def view(request):
        request.seen.append("view")
        return "view"

    middleware = _inline(f"{__name__}.{name}")(view)
    request = SimpleNamespace(seen=[], short=short)
    assert await middleware(request) == result
    assert request.seen == seen


def test_the_request_id_header_is_read_as_request_headers_reads_it():
    from django.http import HttpHeaders
    from django.test import RequestFactory

    from autobot.middleware import _header

    request = RequestFactory().get("/", headers={"X-Request-ID": "abc"})
    assert _header(request, "HTTP_X_REQUEST_ID", "X-Request-ID") == "abc" == request.headers["X-Request-ID"]
    assert _header(RequestFactory().get("/"), "HTTP_X_REQUEST_ID", "X-Request-ID") == ""
    made = RequestFactory().get("/")  # a hand-made request's own headers (ninja's test client's way)
    made.headers = HttpHeaders({"HTTP_X-Request-ID": "own"})
    assert _header(made, "HTTP_X_REQUEST_ID", "X-Request-ID") == "own"


async def test_each_request_is_counted_once_under_its_own_labels(api_client, owner):
    from autobot.metrics import http_latency, http_requests

    def count(status: str) -> float:
        return http_requests.labels("GET", "api/me", status)._value.get()

    def observed() -> float:
        return http_latency.labels("GET", "api/me")._sum.get()

    ok, refused, latency = count("200"), count("401"), observed()
    for _ in range(3):  # the second and third from the memo
        assert (await api_client(owner).get("/api/me")).status_code == 200
    assert (await AsyncClient().get("/api/me")).status_code == 401
    assert count("200") == ok + 3 and count("401") == refused + 1
    assert observed() > latency


@pytest.mark.parametrize("save_every_request", [False, True])
@pytest.mark.parametrize("cookie", [None, "unknown-key", "known"])
@pytest.mark.parametrize("use", ["none", "read", "write"])
def test_the_session_middleware_answers_as_django_s_does(owner, settings, save_every_request, cookie, use):
    """Cookie sent or not (an unknown key: Django deletes the cookie), the session unused, read or
    written, saved on every request or not: the same cookies and headers as Django's middleware."""
    from django.contrib.sessions.middleware import SessionMiddleware as DjangoSessionMiddleware
    from django.http import HttpResponse
    from django.test import RequestFactory

    from autobot.middleware import SessionMiddleware
    from autobot.sessions import SessionStore

    settings.SESSION_SAVE_EVERY_REQUEST = save_every_request
    settings.SESSION_COOKIE_NAME = "autobot-session"  # read from the settings as they are now
    known = SessionStore()
    known["colour"] = "teal"
    known.save()

    def answer(middleware_class):
        factory = RequestFactory()
        if cookie is not None:
            factory.cookies["autobot-session"] = known.session_key if cookie == "known" else cookie
        request = factory.get("/api/chat/sessions")
        middleware = middleware_class(lambda request: HttpResponse())
        middleware.process_request(request)
        if use == "read":
            request.session.get("colour")
        elif use == "write":
            request.session["shade"] = "dark"
        response = middleware.process_response(request, HttpResponse())
        cookies = {name: (morsel["max-age"], bool(morsel.value)) for name, morsel in response.cookies.items()}
        return cookies, response.get("Vary"), type(request.session)

    ours, django_s = answer(SessionMiddleware), answer(DjangoSessionMiddleware)
    assert ours[:2] == django_s[:2]
    assert ours[2] is SessionStore and issubclass(django_s[2], SessionStore)
    if cookie is None and use == "none" and not save_every_request:  # a Bearer call: nothing added
        assert ours[:2] == ({}, None)


def test_the_converter_the_middleware_restates_is_django_s_current_one():
    import hashlib
    import inspect

    from django.core.handlers.exception import convert_exception_to_response

    source = inspect.getsource(convert_exception_to_response)
    assert hashlib.sha256(source.encode()).hexdigest() == (
        "a297ae868bddaca2e7a82847cb707105b2a23ded927d6609f6832901db45758e"), (
        "Django's convert_exception_to_response changed: compare it with autobot/middleware.py's "
        "response_for and next_of, then update the hash")


def test_between_the_request_context_and_the_clickjacking_middleware_each_calls_the_next_directly():
    from autobot.csp import ContentSecurityPolicyMiddleware
    from autobot.handler import ASGIHandler
    from autobot.middleware import (
        AuthenticationMiddleware,
        CommonMiddleware,
        CsrfViewMiddleware,
        MessageMiddleware,
        SecurityMiddleware,
        SessionMiddleware,
        StaticFilesMiddleware,
        XFrameOptionsMiddleware,
    )

    handler = ASGIHandler()
    handler.load_middleware(is_async=True)
    context = handler._middleware_chain.__wrapped__  # the outermost: Django's converter around it stays
    middleware = context.get_response  # RequestContext → CSP: called directly
    for expected in (ContentSecurityPolicyMiddleware, SecurityMiddleware, StaticFilesMiddleware, SessionMiddleware,
                     CommonMiddleware, CsrfViewMiddleware, AuthenticationMiddleware, MessageMiddleware,
                     XFrameOptionsMiddleware):
        assert type(middleware) is expected
        middleware = middleware.get_response
    assert middleware.__wrapped__ == handler._get_response_async  # the view's own converter stays


class _Records(MiddlewareMixin):
    def process_response(self, request, response):
        request.seen.append(response.status_code)
        return response


class _RefusesOnRequest(MiddlewareMixin):
    def process_request(self, request):
        raise PermissionDenied("no")


class _FailsOnResponse(MiddlewareMixin):
    def process_response(self, request, response):
        raise ValueError("broken")


@pytest.mark.parametrize("inner,view_raises,status,seen", [
    ("_RefusesOnRequest", False, 403, [403]),  # refused at its level; the outer one processes the 403
    ("_FailsOnResponse", False, 500, [500]),
    ("_Records", True, 404, [404, 404]),  # the view's exception: converted by Django's own inner
])
async def test_an_exception_becomes_a_response_at_its_own_level_as_with_django_s_converter(
        inner, view_raises, status, seen):
    from django.core.handlers.exception import convert_exception_to_response
    from django.http import Http404, HttpResponse
    from django.test import RequestFactory

    from autobot.middleware import _inline

    async def view(request):
        if view_raises:
            raise Http404("none")
        return HttpResponse()

    # As Django's load_middleware builds the chain: each level wrapped in the converter.
    inner_middleware = _inline(f"{__name__}.{inner}")(convert_exception_to_response(view))
    outer = _inline(f"{__name__}._Records")(convert_exception_to_response(inner_middleware))
    assert outer.get_response is inner_middleware
    request = RequestFactory().get("/")
    request.seen = []
    response = await convert_exception_to_response(outer)(request)
    assert response.status_code == status
    assert request.seen == seen


@pytest.mark.parametrize("name,sha256", [
    ("django.middleware.common.CommonMiddleware.process_request",
     "993f4d1f2084e01e0d2c8b96a2b122b17a187170cf8749bf890111689d17096f"),
    # what `_host` relies on: the answer depends on the host's text and the settings only
    ("django.http.request.HttpRequest.get_host", "02735c918f5ce9f1fdbf8acc4329e1a2169dd10548b6295e9c6edc2223cfaeea"),
    ("django.http.request.HttpRequest._get_raw_host",
     "49d5b852251e9afbd6067075e99533f3be32887c60710b6bff713018641571bb"),
    ("django.middleware.csrf.CsrfViewMiddleware._get_secret",
     "b3a608af97a839cc7aca22b50bd17e13c3a33d08487a99fc3c7a811518d176a5"),
])
def test_the_django_code_the_common_and_csrf_middleware_restate_is_unchanged(name, sha256):
    import hashlib
    import importlib
    import inspect

    module, cls, method = name.rsplit(".", 2)
    source = inspect.getsource(getattr(getattr(importlib.import_module(module), cls), method))
    assert hashlib.sha256(source.encode()).hexdigest() == sha256, (
        f"Django's {name} changed: compare it with autobot/middleware.py's restatement, then update the hash")


def _host_answer(**meta):
    from django.core.exceptions import DisallowedHost
    from django.test import RequestFactory

    from autobot.middleware import CommonMiddleware

    request = RequestFactory().get("/api/chat/sessions", **meta)
    try:
        return CommonMiddleware(lambda request: None).process_request(request) or "passed"
    except (DisallowedHost, PermissionDenied) as exc:
        return type(exc).__name__


def test_a_host_is_accepted_or_refused_as_django_s_get_host_decides_each_time(settings):
    settings.ALLOWED_HOSTS = ["autobot.example", ".team.example"]
    for _ in range(2):  # the second time from what was remembered, or refused again
        assert _host_answer(HTTP_HOST="autobot.example") == "passed"
        assert _host_answer(HTTP_HOST="a.team.example:8443") == "passed"
        assert _host_answer(HTTP_HOST="elsewhere.example") == "DisallowedHost"
        assert _host_answer(HTTP_HOST="autobot.example@evil") == "DisallowedHost"
    settings.ALLOWED_HOSTS = ["other.example"]  # an accepted host no longer is
    assert _host_answer(HTTP_HOST="autobot.example") == "DisallowedHost"


def test_a_forwarded_host_is_checked_when_in_use(settings):
    settings.ALLOWED_HOSTS = ["autobot.example"]
    assert _host_answer(HTTP_HOST="autobot.example") == "passed"
    settings.USE_X_FORWARDED_HOST = True
    assert _host_answer(HTTP_HOST="autobot.example", HTTP_X_FORWARDED_HOST="evil.example") == "DisallowedHost"
    assert _host_answer(HTTP_HOST="evil.example", HTTP_X_FORWARDED_HOST="autobot.example") == "passed"


def test_the_common_middleware_still_refuses_user_agents_and_prepends_www(settings):
    import re

    settings.ALLOWED_HOSTS = ["autobot.example", "www.autobot.example"]
    settings.DISALLOWED_USER_AGENTS = [re.compile("BadBot")]
    assert _host_answer(HTTP_HOST="autobot.example", HTTP_USER_AGENT="BadBot/1") == "PermissionDenied"
    settings.PREPEND_WWW = True
    redirect = _host_answer(HTTP_HOST="autobot.example")
    assert redirect.status_code == 301 and redirect["Location"] == "http://www.autobot.example/api/chat/sessions"


@pytest.mark.parametrize("cookie", [None, "a" * 32, "b" * 64, "short", "bad!" * 8])
@pytest.mark.parametrize("method", ["get", "post"])
async def test_the_csrf_middleware_answers_as_django_s_does(cookie, method):
    """No cookie, a secret, a masked token, malformed ones; a safe and an unsafe method: the same
    secret found, the same refusal or acceptance, the same cookie to set."""
    import inspect

    from django.middleware.csrf import CsrfViewMiddleware as DjangoCsrfViewMiddleware
    from django.test import RequestFactory

    from autobot.middleware import CsrfViewMiddleware

    async def view(request):
        pass

    async def answer(middleware_class):
        factory = RequestFactory()
        if cookie is not None:
            factory.cookies["csrftoken"] = cookie
        request = getattr(factory, method)("/test-mw/remember", HTTP_HOST="testserver")
        middleware = middleware_class(lambda request: None)
        middleware.process_request(request)
        refused = middleware.process_view(request, view, (), {})
        if inspect.isawaitable(refused):  # ours runs inline, as a coroutine
            refused = await refused
        secret = request.META.get("CSRF_COOKIE")
        if cookie is None or len(cookie) not in (32, 64) or not cookie.isalnum():
            secret = None if secret is None else len(secret)  # a new random secret: its length
        return secret, request.META.get("CSRF_COOKIE_NEEDS_UPDATE"), getattr(refused, "status_code", None)

    assert await answer(CsrfViewMiddleware) == await answer(DjangoCsrfViewMiddleware)
