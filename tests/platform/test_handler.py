"""The ASGI handler (autobot/handler.py): requests on the lanes do on the event loop what the request
signals' memory-only receivers would do there, instead of two thread hops; anything else goes
Django's way."""

import threading

import pytest
from asgiref.sync import sync_to_async
from django.core.signals import request_finished, request_started
from django.urls import Resolver404, clear_url_caches, get_resolver

from autobot.handler import (
    DJANGO_CLOSE_SHA256,
    DJANGO_HANDLE_SHA256,
    DJANGO_RESOLVE_REQUEST_SHA256,
    RESOLVED_PATHS,
    _close_without_signal,
    django_close_sha256,
    django_handle_sha256,
    django_resolve_request_sha256,
    resolved,
)
from autobot.lanes import lanes
from autobot.views import api_not_found
from tests.conftest import make_token
from tests.platform.test_lanes import _get

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_copied_handle_is_django_s_current_one():
    assert django_handle_sha256() == DJANGO_HANDLE_SHA256, (
        "Django's ASGIHandler.handle changed: bring autobot/handler.py's copy in line with it, then "
        "update DJANGO_HANDLE_SHA256")


def test_the_copied_close_is_django_s_current_one():
    assert django_close_sha256() == DJANGO_CLOSE_SHA256, (
        "Django's HttpResponseBase.close changed: bring autobot/handler.py's _close_without_signal in "
        "line with it, then update DJANGO_CLOSE_SHA256")


def test_closing_without_the_signal_still_runs_every_closer():
    from django.http import HttpResponse

    closed = []

    def failing():
        raise OSError("a closer that fails")

    response = HttpResponse(b"x")
    for closer in (lambda: closed.append(1), failing, lambda: closed.append(2)):
        response._resource_closers.append(closer)
    _close_without_signal(response)
    assert closed == [1, 2]
    assert response.closed and not response._resource_closers


@pytest.fixture
def application():
    from autobot.asgi import application  # imported here, not on the test's event loop (it takes a while)

    return application


def _jobs() -> int:
    return sum(lane._submitted_n for lane in lanes())


async def test_a_request_on_the_lanes_makes_no_thread_hop_for_the_request_signals(application):
    await _get(application, "/api/me", "")  # the lanes exist from here on
    before = _jobs()
    assert await _get(application, "/api/me", "") == 401  # no credentials: no database work at all
    assert _jobs() == before


async def test_any_other_receiver_still_runs_on_a_thread_and_sees_both_signals(owner, application):
    token = await sync_to_async(make_token)(owner)
    seen: list[tuple[str, str]] = []

    def started(**_kwargs):
        seen.append(("started", threading.current_thread().name))

    def finished(**_kwargs):
        seen.append(("finished", threading.current_thread().name))

    request_started.connect(started)
    request_finished.connect(finished)
    try:
        assert await _get(application, "/api/me", token) == 200
    finally:
        request_started.disconnect(started)
        request_finished.disconnect(finished)
    assert [signal for signal, _thread in seen] == ["started", "finished"]
    assert all(thread.startswith("autobot-lane-") for _signal, thread in seen)


def test_a_signal_without_django_s_private_receiver_list_goes_django_s_way():
    from django.dispatch import Signal

    from autobot.handler import ASGIHandler

    class Changed(Signal):  # as if a new Django renamed or reshaped `_live_receivers`
        def _live_receivers(self, sender):
            return [], [], []

    handler = ASGIHandler()
    assert handler._inline(request_started, None)
    assert not handler._inline(Changed(), None)
    missing = Signal()
    missing._live_receivers = None  # not callable
    assert not handler._inline(missing, None)


def test_the_resolve_request_it_repeats_is_django_s_current_one():
    assert django_resolve_request_sha256() == DJANGO_RESOLVE_REQUEST_SHA256, (
        "Django's BaseHandler.resolve_request changed: bring autobot/handler.py's resolve_request in line "
        "with it, then update DJANGO_RESOLVE_REQUEST_SHA256")


def test_a_path_is_resolved_as_django_resolves_it_each_time_with_dicts_of_its_own():
    resolver = get_resolver()
    for path in ("/api/chat/sessions", "/api/knowledge/entries", "/chat/", "/"):
        django_s = resolver.resolve(path)
        first, second = resolved(resolver, path), resolved(resolver, path)
        assert vars(first) == vars(second) == vars(django_s)
        first.kwargs["written"] = "by a middleware"  # process_view is handed this dict
        assert resolved(resolver, path).kwargs == {}


def test_a_path_with_arguments_is_resolved_afresh():
    resolver = get_resolver()
    one = resolved(resolver, "/api/chat/sessions/12345678-1234-5678-1234-567812345678")
    other = resolved(resolver, "/api/chat/sessions/87654321-1234-5678-1234-567812345678")
    assert str(one.kwargs["session_id"]) != str(other.kwargs["session_id"])
    assert "/api/chat/sessions/12345678-1234-5678-1234-567812345678" not in resolver._autobot_resolved


def test_an_unknown_path_is_still_not_found():
    for _ in range(2):
        with pytest.raises(Resolver404):
            resolved(get_resolver(), "/no-such-page/")


def test_what_is_remembered_is_bounded(monkeypatch):
    resolver = get_resolver()
    resolved(resolver, "/chat/")
    for n in range(5):  # the API's catch-all matches every one, without arguments: not remembered
        assert resolved(resolver, f"/api/invented-{n}").func is resolved(resolver, "/api/invented").func
    assert not [path for path in resolver._autobot_resolved if path.startswith("/api/invented")]
    monkeypatch.delattr(api_not_found, "matches_any_path")  # were it remembered: still bounded
    for n in range(RESOLVED_PATHS * 2):
        resolved(resolver, f"/api/invented-{n}")
    assert len(resolver._autobot_resolved) <= RESOLVED_PATHS


def test_another_url_configuration_is_resolved_by_its_own_patterns(settings):
    resolved(get_resolver(), "/chat/")
    settings.ROOT_URLCONF = "tests.platform.urls_other"
    try:
        assert resolved(get_resolver(), "/chat/").url_name == "other-chat"
    finally:
        settings.ROOT_URLCONF = "autobot.urls"
        clear_url_caches()
    assert resolved(get_resolver(), "/chat/").url_name != "other-chat"


async def test_a_page_and_a_list_answer_twice_in_a_row(owner, application):
    token = await sync_to_async(make_token)(owner)
    for _ in range(2):
        assert await _get(application, "/api/chat/sessions", token) == 200


def test_the_remembered_answer_follows_receivers_connected_and_disconnected_at_run_time():
    from django.db import reset_queries
    from django.dispatch import Signal

    from autobot.handler import ASGIHandler

    def own(**_kwargs):
        pass

    def other(**_kwargs):
        pass

    handler, signal = ASGIHandler(), Signal()
    signal.connect(reset_queries)
    for _ in range(2):  # the second from memory
        assert handler._inline(signal, ASGIHandler)
    signal.connect(own)
    assert not handler._inline(signal, ASGIHandler)
    signal.disconnect(own)
    assert handler._inline(signal, ASGIHandler)
    signal.connect(own)
    signal.disconnect(reset_queries)  # one in, one out: a list as long as before, other receivers
    assert not handler._inline(signal, ASGIHandler)
    signal.disconnect(own)
    signal.connect(other, sender=str)  # for another sender only
    assert handler._inline(signal, ASGIHandler) and not handler._inline(signal, str)


async def test_any_receiver_connected_after_requests_went_inline_still_sees_both_signals(owner, application):
    token = await sync_to_async(make_token)(owner)
    for _ in range(2):  # the answer remembered
        assert await _get(application, "/api/me", token) == 200
    seen = []

    def noted(signal, **_kwargs):
        seen.append(signal)

    request_started.connect(noted)
    request_finished.connect(noted)
    try:
        assert await _get(application, "/api/me", token) == 200
    finally:
        request_started.disconnect(noted)
        request_finished.disconnect(noted)
    assert seen == [request_started, request_finished]
    assert await _get(application, "/api/me", token) == 200
    assert seen == [request_started, request_finished]  # gone again


async def test_a_request_leaves_its_caller_without_a_url_configuration(owner, application):
    """Django sets the request's URL configuration in the task that gets the response (a copy of
    the caller's context): nothing is left for `request_finished`'s `reset_urlconf` to reset."""
    from django.urls import get_urlconf

    token = await sync_to_async(make_token)(owner)
    for path in ("/api/chat/sessions", "/api/me", "/api/no-such-thing"):
        await _get(application, path, token)
        assert get_urlconf() is None


def test_the_call_and_read_body_it_short_cuts_are_django_s_current_ones():
    from autobot.handler import DJANGO_CALL_AND_READ_BODY_SHA256, django_call_and_read_body_sha256

    assert django_call_and_read_body_sha256() == DJANGO_CALL_AND_READ_BODY_SHA256, (
        "Django's ASGIHandler.__call__ or read_body changed: bring autobot/handler.py's in line with them, "
        "then update DJANGO_CALL_AND_READ_BODY_SHA256")


def _messages(*messages):
    pending = list(messages)

    async def receive():
        return pending.pop(0)

    return receive


@pytest.mark.parametrize("on_the_lanes", [True, False])
async def test_a_body_is_read_whole_however_it_comes(on_the_lanes, settings):
    import io
    import tempfile

    from django.core.exceptions import RequestAborted

    from autobot.handler import ASGIHandler
    from autobot.lanes import _lane_request

    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 100
    handler = ASGIHandler()
    token = _lane_request.set(on_the_lanes)
    try:
        cases = [
            ([{"type": "http.request"}], b"", io.BytesIO),
            ([{"type": "http.request", "body": b'{"a": 1}'}], b'{"a": 1}', io.BytesIO),
            ([{"type": "http.request", "body": b"x" * 100}], b"x" * 100, io.BytesIO),
            ([{"type": "http.request", "body": b"x" * 101}], b"x" * 101, tempfile.SpooledTemporaryFile),
            ([{"type": "http.request", "body": b"ab", "more_body": True}, {"type": "http.request", "body": b"cd"}],
             b"abcd", tempfile.SpooledTemporaryFile),
        ]
        for messages, body, kind in cases:
            body_file = await handler.read_body(_messages(*messages))
            assert body_file.read() == body
            assert isinstance(body_file, kind if on_the_lanes else tempfile.SpooledTemporaryFile)
            body_file.seek(0)
            assert body_file.read() == body
            body_file.close()
        for messages in ([{"type": "http.disconnect"}],
                         [{"type": "http.request", "body": b"ab", "more_body": True}, {"type": "http.disconnect"}]):
            with pytest.raises(RequestAborted):
                await handler.read_body(_messages(*messages))
    finally:
        _lane_request.reset(token)


def test_the_script_prefix_is_django_s_and_follows_force_script_name(settings):
    import hashlib
    import inspect

    from django.core.handlers.asgi import get_script_prefix

    from autobot.handler import DJANGO_SCRIPT_PREFIX_SHA256, _script_prefix

    assert hashlib.sha256(inspect.getsource(get_script_prefix).encode()).hexdigest() == DJANGO_SCRIPT_PREFIX_SHA256, (
        "Django's get_script_prefix changed: bring autobot/handler.py's _script_prefix in line, then update the hash")
    for scope in ({}, {"root_path": ""}, {"root_path": "/under"}):
        assert _script_prefix(scope) == get_script_prefix(scope)
    settings.FORCE_SCRIPT_NAME = "/forced"
    assert _script_prefix({"root_path": "/under"}) == "/forced" == get_script_prefix({"root_path": "/under"})


async def test_only_http_is_served_on_the_lanes_too():
    from autobot.handler import ASGIHandler
    from autobot.lanes import _lane_request

    token = _lane_request.set(True)
    try:
        with pytest.raises(ValueError, match="only handle ASGI/HTTP"):
            await ASGIHandler()({"type": "websocket"}, None, None)
    finally:
        _lane_request.reset(token)
