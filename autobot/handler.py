"""Django's ASGI handler, without its two thread hops per request for requests on the lanes.

Django's `ASGIHandler.handle` sends `request_started` with `asend`, which runs the sync
receivers (`reset_queries`, `close_old_connections`) through `sync_to_async`, and closes the
response through `sync_to_async(response.close)`, which sends `request_finished`
(`close_old_connections`, `close_caches`, `reset_urlconf`). Two thread hops a request, for
receivers that do nothing useful there: under `LaneMiddleware` they ran on whichever lane took the
hop and looked only at that lane's connections, not at the lanes the request's queries ran on.
The lanes now look after their own connections before every job (`autobot.lanes._tidy_connections`:
age, autocommit, errors, health checks), so for a request on the lanes this handler does, on the
event loop, what those receivers would do there, without sending the signals: nothing, as they
look at the loop thread's database connections (it has none open: the ORM refuses to connect from
async code), close in-process caches (a no-op) or reset a URL configuration that this context
never set. See `ASGIHandler._send`.

That holds only for receivers known to touch memory only (`_MEMORY_ONLY`, and `close_caches` only
when every cache is in process memory): as soon as any other receiver is connected to either
signal (a debug toolbar, an app's own), or the response is streamed (a file, a generator, whose
closing may do I/O) or holds uploaded files, the request goes Django's way, hops included. Requests to sync views (the
admin, the login form: not on the lanes, a thread each) always go Django's way.

`handle` below is Django 5.2's with those two calls changed, and `_close_without_signal` is
`HttpResponseBase.close` without its send; `tests/platform/test_handler.py` fails when either of
Django's changes, so a new Django version gets looked at.
"""

import asyncio
import hashlib
import inspect
import io

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core import signals
from django.core.cache import close_caches
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler as DjangoASGIHandler
from django.core.handlers.base import BaseHandler, reset_urlconf
from django.db import close_old_connections, reset_queries
from django.http import HttpRequest, HttpResponseBase
from django.urls import ResolverMatch, get_resolver, set_script_prefix

from autobot.lanes import in_lane_request
from autobot.memo import Memo, request_settings

# The sha256 of the source of the Django `handle` copied below (see the module docstring).
DJANGO_HANDLE_SHA256 = "98faeb5bef800331e6a8002fbc96b30e4122a23438ae45a047190a531ea11323"

_LOCAL_CACHES = ("django.core.cache.backends.locmem.LocMemCache", "django.core.cache.backends.dummy.DummyCache")


def _memory_only_receivers() -> frozenset:
    receivers = {reset_queries, close_old_connections, reset_urlconf}
    if all(cache["BACKEND"] in _LOCAL_CACHES for cache in settings.CACHES.values()):
        receivers.add(close_caches)
    return frozenset(receivers)


class ASGIHandler(DjangoASGIHandler):
    def __init__(self) -> None:
        super().__init__()
        self._memory_only = _memory_only_receivers()
        # (signal, sender) → (the signal's receiver list as it was, the answer for it): see `_inline`.
        self._inline_answers = Memo(64)  # senders are handler classes: a handful

    def _inline(self, signal, sender) -> bool:
        """Whether every receiver `signal` has for `sender` is sync and touches memory only.

        Remembered per signal and sender against a copy of the signal's receiver list: Django's
        `connect` appends a new entry (a new tuple) to `signal.receivers`, `disconnect` deletes
        one, and dropping dead weak receivers makes a new list, so a list equal to the copy, entry
        by entry (the same tuples: a C-level comparison by identity first), has the same
        receivers. Looking them up (`_live_receivers`: the signal's lock, the sender's id, every
        entry's weak reference) was twice a request for the same answer. A weakly held receiver
        that died since stays in the list until Django drops it: it could only have made the
        answer no, and a no only sends the signal Django's way. `_live_receivers` is Django's
        private API (there is no public one listing receivers): should a new Django change it,
        every request goes Django's way instead of failing."""
        receivers = getattr(signal, "receivers", None)
        remembered = self._inline_answers.get((signal, sender))
        if remembered is not None and remembered[0] == receivers:
            return remembered[1]
        seen = list(receivers) if isinstance(receivers, list) else None  # before reading them
        try:
            sync_receivers, async_receivers = signal._live_receivers(sender)
        except (AttributeError, TypeError, ValueError):
            return False
        answer = not async_receivers and all(receiver in self._memory_only for receiver in sync_receivers)
        if seen is not None:
            self._inline_answers.put((signal, sender), (seen, answer))
        return answer

    # What the memory-only receivers would do on the event loop thread, the signal not sent (~10 µs
    # a send, two a request), is nothing. `reset_queries` and `close_old_connections` look at the
    # current thread's database connections, and the loop thread never has one open (the ORM
    # refuses to connect from async code); `close_caches` closes in-process caches, whose `close`
    # does nothing. `reset_urlconf` deletes the URL configuration `get_response_async` set for the
    # request (`set_urlconf`, an asgiref `Local`: a context variable in async code), but that was
    # set in `handle`'s `process_request` task, whose context is a copy: the value never reaches
    # the context `handle` runs in and closes the response in, where the reset looked for it (and,
    # not finding it, cost an `AttributeError` raised and caught, ~1 % of a list call's
    # instructions). Django's own `handle` is no different: its `request_finished` runs
    # `reset_urlconf` on a thread, in another copy. `tests/platform/test_handler.py` checks that a
    # request leaves the caller's context without a URL configuration.
    async def _send(self, signal, **kwargs) -> None:
        if not self._inline(signal, kwargs["sender"]):
            await signal.asend(**kwargs)

    async def _close(self, response) -> None:
        sender = getattr(response, "_handler_class", None) or self.__class__
        if not response.streaming and _closers_in_memory(response) and self._inline(signals.request_finished, sender):
            _close_without_signal(response)
        else:
            await sync_to_async(response.close)()

    def resolve_request(self, request):
        """Django's, but a path without parameters is resolved once per URL configuration
        (`resolved`); a request with its own `urlconf` goes Django's way. `tests/platform/test_handler.py`
        fails when Django's changes."""
        if hasattr(request, "urlconf"):
            return super().resolve_request(request)
        match = resolved(get_resolver(request_settings.ROOT_URLCONF), request.path_info)
        request.resolver_match = match
        return match

    async def __call__(self, scope, receive, send):
        """Django's, but a request on the lanes skips Django's `ThreadSensitiveContext`: the lanes'
        (`autobot.lanes.lane_context`) is the one in force, and Django's, entered inside it,
        does nothing (it keeps an enclosing context) but cost its making and entering."""
        if scope["type"] == "http" and in_lane_request():
            await self.handle(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)

    async def read_body(self, receive):
        """Django's, but a request on the lanes whose body comes in one message, no larger than
        FILE_UPLOAD_MAX_MEMORY_SIZE (every GET, most JSON posts), gets it in a `BytesIO`. Django's
        `SpooledTemporaryFile` keeps such a body in memory too, in a `BytesIO` of its own, but its
        making costs ~3 µs a request; both read, seek and close alike. A larger or streamed body
        goes Django's way, to a file once it outgrows memory."""
        if not in_lane_request():
            return await super().read_body(receive)
        message = await receive()
        if message["type"] == "http.disconnect":
            raise RequestAborted()
        body = message.get("body", b"")
        if not message.get("more_body", False) and len(body) <= request_settings.FILE_UPLOAD_MAX_MEMORY_SIZE:
            return io.BytesIO(body)
        return await super().read_body(_replay(message, receive))

    async def handle(self, scope, receive, send):
        if not in_lane_request():
            return await super().handle(scope, receive, send)
        # From here on Django 5.2's ASGIHandler.handle, but for `self._send`, `self._close` and
        # `_script_prefix`.
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        set_script_prefix(_script_prefix(scope))
        await self._send(signals.request_started, sender=self.__class__, scope=scope)
        request, error_response = self.create_request(scope, body_file)
        if request is None:
            body_file.close()
            await self.send_response(error_response, send)
            await self._close(error_response)
            return

        async def process_request(request, send):
            response = await self.run_get_response(request)
            try:
                await self.send_response(response, send)
            except asyncio.CancelledError:
                pass  # the client disconnected during send_response
            return response

        # Catch a disconnect while getting the response: listen_for_disconnect goes first, as it
        # should not raise errors that would keep process_request from being cancelled.
        tasks = [
            asyncio.create_task(self.listen_for_disconnect(receive)),
            asyncio.create_task(process_request(request, send)),
        ]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            if task.done():
                try:
                    task.result()
                except RequestAborted:
                    pass  # client disconnects
                except AssertionError:
                    body_file.close()
                    raise
            else:
                task.cancel()  # views may handle the cancellation
                try:
                    await task
                except asyncio.CancelledError:
                    pass
        try:
            response = tasks[1].result()
        except asyncio.CancelledError:
            await self._send(signals.request_finished, sender=self.__class__)
        else:
            await self._close(response)
        body_file.close()
        # Not Django's: the listener ends with RequestAborted once the response is sent (the
        # server reports the exchange over), and `task.result()` re-raised it here, so its
        # traceback holds this frame, whose `tasks` holds the task holding the exception: a
        # reference cycle a request, with the request, its user and the server's exchange in it,
        # which only the cyclic garbage collector would free (docs/performance.md, "Eighth round").
        tasks.clear()
        del task  # the loop's last task, in the same cycle


def _script_prefix(scope) -> str:
    """Django's `get_script_prefix(scope)` (`django.core.handlers.asgi`), FORCE_SCRIPT_NAME read
    from `request_settings`; `tests/platform/test_handler.py` fails when Django's changes."""
    if request_settings.FORCE_SCRIPT_NAME:
        return request_settings.FORCE_SCRIPT_NAME
    return scope.get("root_path", "") or ""


# The sha256 of the source of Django's `get_script_prefix` (django.core.handlers.asgi).
DJANGO_SCRIPT_PREFIX_SHA256 = "bd6e761a557ee4c5968d5feec8825b21e7aef610e237f09c4aea9b952a0ff027"


def _replay(first: dict, receive):
    """`receive`, but the first message it gives is `first` (already received)."""
    pending = [first]

    async def replayed():
        return pending.pop() if pending else await receive()

    return replayed


RESOLVED_PATHS = 512  # per URL configuration; then forgotten at once and learnt again


def resolved(resolver, path: str):
    """`resolver.resolve(path)`, remembered for paths whose match carries no arguments (the lists,
    the pages: `/api/chat/sessions`, `/chat/`). Resolving walks the patterns, 13–25 µs a request
    (docs/performance.md, eleventh round); a path's match depends only on the patterns, which
    belong to the resolver: a new URL configuration (`clear_url_caches`, another `ROOT_URLCONF`)
    is a new resolver with nothing remembered. A match with arguments (an id in the path) is never
    kept: its path is one of many. Each request gets a match of its own with empty dicts of its
    own (middleware is handed `kwargs` in `process_view`, and may write to it). Unknown paths raise
    `Resolver404` each time, and so do paths a catch-all view answers (`matches_any_path`, the API's
    404): a client inventing paths would only churn the memory (bounded by RESOLVED_PATHS anyway)."""
    remembered = resolver.__dict__.setdefault("_autobot_resolved", {})
    match = remembered.get(path)
    if match is None:
        match = resolver.resolve(path)
        if match.args or match.kwargs or getattr(match.func, "matches_any_path", False):
            return match
        if len(remembered) >= RESOLVED_PATHS:
            remembered.clear()
        remembered[path] = match
    own = object.__new__(ResolverMatch)
    own.__dict__.update(match.__dict__)
    own.kwargs, own.captured_kwargs, own.extra_kwargs = {}, {}, {}
    return own


def _close_without_signal(response) -> None:
    """Django's `HttpResponseBase.close` but for its `request_finished` send (see `ASGIHandler._send`);
    `tests/platform/test_handler.py` fails when Django's changes."""
    for closer in response._resource_closers:
        try:
            closer()
        except Exception:  # as Django's close: a failing closer must not stop the others
            pass
    response._resource_closers.clear()
    response.closed = True


def _closers_in_memory(response) -> bool:
    """Whether closing the response only closes its request (Django adds `request.close` to every
    response), and that request holds no uploaded files: its body is a spooled temporary file,
    in memory or already unlinked, whose closing is not I/O worth a thread."""
    for closer in response._resource_closers:
        request = getattr(closer, "__self__", None)
        if not isinstance(request, HttpRequest) or closer.__name__ != "close" or getattr(request, "_files", None):
            return False
    return True


# The sha256 of the source of the Django `HttpResponseBase.close` copied in `_close_without_signal`.
DJANGO_CLOSE_SHA256 = "84589f5b23acbb23aa9010f3506ef411b72b1053f2fc2764590e2b3bf3470438"


# The sha256 of the source of Django's `BaseHandler.resolve_request`, which `ASGIHandler.resolve_request`
# does again for a request without its own `urlconf`.
DJANGO_RESOLVE_REQUEST_SHA256 = "ff178c3d63eebcd3e38110341593518dcd67d84cff94bbc7dd5aa323637cba6d"


def django_handle_sha256() -> str:
    return hashlib.sha256(inspect.getsource(DjangoASGIHandler.handle).encode()).hexdigest()


# The sha256 of the sources of Django's `ASGIHandler.__call__` and `read_body`, which `ASGIHandler`'s
# short-cut for requests on the lanes.
DJANGO_CALL_AND_READ_BODY_SHA256 = "77d85f281bd38c508e7b9c91601ef4c0403069b93968662107c1a71b6ddf3908"


def django_call_and_read_body_sha256() -> str:
    sources = inspect.getsource(DjangoASGIHandler.__call__) + inspect.getsource(DjangoASGIHandler.read_body)
    return hashlib.sha256(sources.encode()).hexdigest()


def django_resolve_request_sha256() -> str:
    return hashlib.sha256(inspect.getsource(BaseHandler.resolve_request).encode()).hexdigest()


def django_close_sha256() -> str:
    return hashlib.sha256(inspect.getsource(HttpResponseBase.close).encode()).hexdigest()
