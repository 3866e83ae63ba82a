"""The ASGI handler (autobot/handler.py): requests on the lanes do on the event loop what the request
signals' memory-only receivers would do there, instead of two thread hops; anything else goes
Django's way."""

import threading

import pytest
from asgiref.sync import sync_to_async
from django.core.signals import request_finished, request_started

from autobot.handler import (
    DJANGO_CLOSE_SHA256,
    DJANGO_HANDLE_SHA256,
    _close_without_signal,
    django_close_sha256,
    django_handle_sha256,
)
from autobot.lanes import lanes
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
