import re
import secrets
import time
import weakref

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings
from django.contrib.auth import middleware as _auth_middleware
from django.contrib.messages.middleware import MessageMiddleware as _DjangoMessageMiddleware
from django.contrib.messages.storage import default_storage
from django.contrib.sessions.middleware import SessionMiddleware as _DjangoSessionMiddleware
from django.core import checks
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.core.handlers.exception import convert_exception_to_response, response_for_exception
from django.utils.functional import SimpleLazyObject
from django.utils.module_loading import import_string
from whitenoise.middleware import WhiteNoiseMiddleware

from autobot import context, metrics
from autobot.http import API_PREFIX, client_ip
from autobot.memo import Memo, request_settings

_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
# Matched whole (`fullmatch`: `$` would let a trailing newline through, which Django then refuses
# to put in a header).
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


# Django wraps every middleware in `convert_exception_to_response`: an `inner` coroutine that turns
# an exception the middleware raised into a response, which the middleware outside it then
# processes. Eleven such levels a request, a coroutine frame each to make and to pass through at
# every resumption. The middleware below convert their own exceptions, in their `__call__`, exactly
# as that `inner` does (`response_for`), so the one outside each of them calls it directly
# (`next_of`): an exception still becomes a response at the same level, and every middleware
# outside sees that response as before. `tests/platform/test_middleware.py` fails when Django's
# `convert_exception_to_response` changes.

_CONVERTING = set()  # the `__call__`s that convert their own exceptions


def converts_exceptions(call):
    _CONVERTING.add(call)
    return call


async def _async_view(request):
    pass


_DJANGO_ASYNC_INNER = convert_exception_to_response(_async_view).__code__


def next_of(get_response):
    """What a middleware calls next: `get_response`, or, when that is Django's exception-converting
    `inner` around a middleware that converts its own exceptions, that middleware itself."""
    wrapped = getattr(get_response, "__wrapped__", None)
    if getattr(get_response, "__code__", None) is _DJANGO_ASYNC_INNER and type(wrapped).__call__ in _CONVERTING:
        return wrapped
    return get_response


async def response_for(request, exc):
    """What Django's `convert_exception_to_response` makes of an exception (called in the except
    block, as there: `response_for_exception` reads it from `sys.exc_info()` too)."""
    return await sync_to_async(response_for_exception, thread_sensitive=False)(request, exc)


class RequestContextMiddleware:
    """Correlation id and client IP for audit events, plus request metrics."""

    async_capable = True
    sync_capable = False

    def __init__(self, get_response):
        self.get_response = get_response = next_of(get_response)
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    async def __call__(self, request):
        incoming = _header(request, "HTTP_X_REQUEST_ID", "X-Request-ID")
        # 128 random bits in 32 hex digits, as uuid4().hex gave, at a quarter of its cost.
        request_id = incoming if _REQUEST_ID.fullmatch(incoming) else secrets.token_hex(16)
        context.correlation_id.set(request_id)
        context.client_ip.set(client_ip(request))
        started = time.perf_counter()
        response = await self.get_response(request)
        match = getattr(request, "resolver_match", None)
        # The route pattern, not the path, keeps label cardinality bounded.
        if match and match.route:
            route = match.route
        else:
            route = "static" if request.path.startswith(request_settings.STATIC_URL) else "unmatched"
        # Labels come from fixed sets only: a client must not be able to mint new time series.
        method = request.method if request.method in _METHODS else "other"
        count, latency = _request_metrics(method, route, response.status_code)
        count.inc()
        latency.observe(time.perf_counter() - started)
        if request.path.startswith(API_PREFIX) and response.status_code >= 400 and not _is_json(response):
            response = _json_error(response)
        response["X-Request-ID"] = request_id
        return response


def _header(request, meta_key: str, name: str) -> str:
    """A request header's value, or "": `request.META[meta_key]` (`HTTP_X_REQUEST_ID`), as
    `request.headers[name]` reads it. `request.headers` is built from every META entry the first
    time it is read (~20 names parsed, ~2 % of a list call's instructions on the loop), and a
    Bearer list call reads no other header. A request whose `headers` someone already set or
    read (a test's hand-made request) is asked directly."""
    if "headers" in request.__dict__:
        return request.headers.get(name, "")
    return request.META.get(meta_key, "")


_metric_children = Memo(1024)  # (method, route, status) sets; then forgotten at once and looked up again


def _request_metrics(method: str, route: str, status: int) -> tuple:
    """The request counter's and the latency histogram's children for these labels.
    prometheus_client's `labels()` checks and converts the values and takes the metric's lock on
    each call (two a request) to find the same child every time: its children live as long as the
    metric, since nothing here removes one (`remove`, `clear`). The labels come from bounded sets
    (methods, URL patterns, statuses), and so does this memo."""
    key = (method, route, status)
    children = _metric_children.get(key)
    if children is None:
        children = (metrics.http_requests.labels(method, route, str(status)),
                    metrics.http_latency.labels(method, route))
        _metric_children.put(key, children)
    return children


def _is_json(response) -> bool:
    return response.get("Content-Type", "").startswith("application/json")


def _json_error(response):
    """Errors made outside ninja (405 from the router, 400 for a bad Host) in the API's shape."""
    from django.http import JsonResponse

    codes = {400: "bad_request", 403: "forbidden", 404: "not_found", 405: "method_not_allowed", 413: "too_large"}
    status = response.status_code
    text = response.content.decode(errors="replace").strip() if not response.streaming else ""
    detail = text if text and len(text) < 200 and "<" not in text else f"HTTP {status}"
    converted = JsonResponse({"detail": detail, "code": codes.get(status, "http_error")}, status=status)
    # The headers the inner middleware set (the security ones, Allow, Vary) still hold for the new
    # body; only the body's own describe the old one.
    for name, value in response.items():
        if name.lower() not in ("content-type", "content-length"):
            converted[name] = value
    converted.cookies = response.cookies
    return converted


class StaticFilesMiddleware:
    """WhiteNoise, but only for /static/: it is sync-only, so every other request skips the
    thread hop it would otherwise cost under ASGI."""

    async_capable = True
    sync_capable = False

    def __init__(self, get_response):
        self.get_response = get_response = next_of(get_response)
        self.whitenoise = WhiteNoiseMiddleware(get_response=None)
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    @converts_exceptions
    async def __call__(self, request):
        try:
            if request.path.startswith(request_settings.STATIC_URL):
                static_file = await sync_to_async(self._find)(request.path_info)
                if static_file is not None:
                    return await sync_to_async(self.whitenoise.serve)(static_file, request)
            return await self.get_response(request)
        except Exception as exc:
            return await response_for(request, exc)

    def _find(self, path: str):
        if self.whitenoise.autorefresh:
            return self.whitenoise.find_file(path)
        return self.whitenoise.files.get(path)


def _inline(path: str):
    """An async-native subclass of a Django middleware whose hooks only read and write the
    request and response in memory (no database, no files). Django runs every sync hook of an
    old-style middleware through a thread hop under ASGI — two per middleware per request —
    and under load those hops queue; these hooks take microseconds, so they run inline. A
    subclass, so checks like the admin's "AuthenticationMiddleware must be installed" still hold."""
    cls = import_string(path)

    # Which hooks the class has is known now: not asked twice a request for each of five classes.
    # Each converts its own exceptions (see `next_of`).
    if hasattr(cls, "process_request") and hasattr(cls, "process_response"):
        async def __call__(self, request):
            try:
                response = self.process_request(request) or await self.get_response(request)
                return self.process_response(request, response)
            except Exception as exc:
                return await response_for(request, exc)
    elif hasattr(cls, "process_request"):
        async def __call__(self, request):
            try:
                return self.process_request(request) or await self.get_response(request)
            except Exception as exc:
                return await response_for(request, exc)
    elif hasattr(cls, "process_response"):
        async def __call__(self, request):
            try:
                return self.process_response(request, await self.get_response(request))
            except Exception as exc:
                return await response_for(request, exc)
    else:
        async def __call__(self, request):
            try:
                return await self.get_response(request)
            except Exception as exc:
                return await response_for(request, exc)

    hooks = {name for name in ("process_request", "process_response", "process_view") if hasattr(cls, name)}

    def __init_subclass__(subclass, **kwargs):
        # `__call__` above calls the hooks `cls` has: one a subclass adds would never run.
        super(made, subclass).__init_subclass__(**kwargs)
        added = {name for name in ("process_request", "process_response", "process_view")
                 if hasattr(subclass, name)} - hooks
        if added:
            raise TypeError(f"{subclass.__name__} adds {sorted(added)}, which {cls.__name__}'s inline call never runs")

    def __init__(self, get_response):
        cls.__init__(self, next_of(get_response))

    body = {"async_capable": True, "sync_capable": False, "__call__": converts_exceptions(__call__),
            "__init__": __init__, "__module__": __name__, "__init_subclass__": classmethod(__init_subclass__)}
    if hasattr(cls, "process_view"):
        async def process_view(self, request, view_func, view_args, view_kwargs):
            return cls.process_view(self, request, view_func, view_args, view_kwargs)

        body["process_view"] = process_view
    made = type(cls.__name__, (cls,), body)
    return made


class _ThreadWhenNeeded:
    """Async `__call__` for a Django middleware whose request side only touches memory and whose
    response side touches the database only sometimes (`needs_thread`): only then does it go to
    a thread. The sync originals held a thread for the whole of every request, view included."""

    async_capable = True
    sync_capable = False

    def __init__(self, get_response):
        super().__init__(next_of(get_response))

    @converts_exceptions
    async def __call__(self, request):
        try:
            self.process_request(request)
            response = await self.get_response(request)
            if self.needs_thread(request):
                return await sync_to_async(self.process_response)(request, response)
            return self.process_response(request, response)
        except Exception as exc:
            return await response_for(request, exc)


class SessionMiddleware(_ThreadWhenNeeded, _DjangoSessionMiddleware):
    """Saving a modified session is the only database work; otherwise the response side sets a
    cookie deletion or a Vary header at most.

    Django's hooks, with the settings read from `request_settings` (plain attributes, forgotten
    when a setting changes), and a response whose session nobody used, on a request that sent no
    session cookie (a Bearer-token API call), returned as Django's `process_response` returns it:
    untouched. There the cookie is absent (nothing to delete), the session not accessed (no
    Vary: Cookie), not modified and not saved on every request (nothing to save); Django's then
    only asks `is_empty()` and reads three settings to reach the same answer.
    `tests/platform/test_no_cycles.py` fails when Django's hooks change."""

    def process_request(self, request):
        request.session = self.SessionStore(request.COOKIES.get(request_settings.SESSION_COOKIE_NAME))

    def process_response(self, request, response):
        session = getattr(request, "session", None)
        if (type(session) is self.SessionStore and not session.accessed and not session.modified
                and not request_settings.SESSION_SAVE_EVERY_REQUEST
                and request_settings.SESSION_COOKIE_NAME not in request.COOKIES):
            return response
        return super().process_response(request, response)

    def needs_thread(self, request) -> bool:
        session = getattr(request, "session", None)
        return session is not None and (session.modified or request_settings.SESSION_SAVE_EVERY_REQUEST)


class MessageMiddleware(_ThreadWhenNeeded, _DjangoMessageMiddleware):
    """Storing messages can touch the session (the database), but only if messages were added
    or read.

    Not for the API (`/api/`): its operations answer in JSON and never add or show a message, yet
    making the storage (a cookie signer and a session storage) cost every call ~7 µs. Messages
    waiting for the next page stay where they are, as they would with a storage nobody read."""

    @converts_exceptions
    async def __call__(self, request):
        if request.path_info.startswith(API_PREFIX):
            try:
                return await self.get_response(request)
            except Exception as exc:  # none: what it calls converts its own (`next_of`); as Django's `inner`
                return await response_for(request, exc)
        return await super().__call__(request)

    def process_request(self, request):
        # Django's storages keep the request they are of, and the request keeps its storage: a
        # reference cycle a request (see AuthenticationMiddleware below). A weak proxy for the
        # request: the storage lives on the request, so the request outlives its use.
        request._messages = default_storage(weakref.proxy(request))

    def needs_thread(self, request) -> bool:
        storage = getattr(request, "_messages", None)
        return storage is not None and (storage.used or storage.added_new)


SecurityMiddleware = _inline("django.middleware.security.SecurityMiddleware")
_InlineCommonMiddleware = _inline("django.middleware.common.CommonMiddleware")
_InlineCsrfViewMiddleware = _inline("django.middleware.csrf.CsrfViewMiddleware")
XFrameOptionsMiddleware = _inline("django.middleware.clickjacking.XFrameOptionsMiddleware")
_InlineAuthenticationMiddleware = _inline("django.contrib.auth.middleware.AuthenticationMiddleware")


# Host headers `request.get_host()` accepted: whether it accepts one depends only on the host's
# text and the settings (ALLOWED_HOSTS, DEBUG), and what it returns is that text. Forgotten when a
# setting changes; a refused host is never kept (it raises each time); bounded (a wildcard in
# ALLOWED_HOSTS lets clients name any number of hosts).
_accepted_hosts = Memo(1024, settings=True)


def _host(request) -> str:
    """`request.get_host()`: the Host header, checked against ALLOWED_HOSTS. Django's check costs
    ~3 µs a request (a lazily compiled regular expression reached through a proxy that raises and
    catches an `AttributeError` each time, a split, the allowed hosts' loop) for the same answer
    for the same header. A Host header already accepted is returned as it is; anything else
    (X-Forwarded-Host in use, no Host header, a host not yet seen) goes Django's way, which raises
    `DisallowedHost` for a host it refuses."""
    if not request_settings.USE_X_FORWARDED_HOST:
        host = request.META.get("HTTP_HOST")
        if host is not None and _accepted_hosts.get(host):
            return host
    host = request.get_host()
    _accepted_hosts.put(host, True)
    return host


class CsrfViewMiddleware(_InlineCsrfViewMiddleware):
    """Django's; a request without a CSRF cookie (a Bearer-token API call) has no secret, found
    with a lookup where Django's `_get_secret` raises and catches a `KeyError` and reads two
    settings to say so. A request with the cookie, or CSRF tokens kept in the session, goes
    Django's way. `tests/platform/test_middleware.py` fails when Django's `_get_secret` changes."""

    def _get_secret(self, request):
        if not request_settings.CSRF_USE_SESSIONS and request_settings.CSRF_COOKIE_NAME not in request.COOKIES:
            return None
        return super()._get_secret(request)


class CommonMiddleware(_InlineCommonMiddleware):
    """Django's, with the host checked by `_host` and the settings read from `request_settings`.
    `process_request` is Django 5.2's otherwise; `tests/platform/test_middleware.py` fails when
    Django's changes."""

    def process_request(self, request):
        # Check for denied User-Agents
        user_agent = request.META.get("HTTP_USER_AGENT")
        if user_agent is not None:
            for user_agent_regex in request_settings.DISALLOWED_USER_AGENTS:
                if user_agent_regex.search(user_agent):
                    raise PermissionDenied("Forbidden user agent")

        # Check for a redirect based on settings.PREPEND_WWW
        host = _host(request)

        if request_settings.PREPEND_WWW and host and not host.startswith("www."):
            # Check if we also need to append a slash so we can do it all
            # with a single redirect. (This check may be somewhat expensive,
            # so we only do it if we already know we're sending a redirect,
            # or in process_response if we get a 404.)
            if self.should_redirect_with_slash(request):
                path = self.get_full_path_with_slash(request)
            else:
                path = request.get_full_path()

            return self.response_redirect_class(f"{request.scheme}://www.{host}{path}")


class AuthenticationMiddleware(_InlineAuthenticationMiddleware):
    """Django's, but `request.user` and `request.auser` reach their request through a weak
    reference. Django's (a lambda and a partial holding the request, kept on the request) make
    every request a reference cycle, which only the cyclic garbage collector frees: under load
    its collections took ~9 % of a worker's CPU, and a full one held the event loop for up to
    ~100 ms (docs/performance.md, "Eighth round"). Read the same way, cached the same way.
    (tests/platform/test_no_cycles.py fails when Django's `process_request` changes, as for
    MessageMiddleware's below.)"""

    def process_request(self, request):
        if not hasattr(request, "session"):
            raise ImproperlyConfigured("AuthenticationMiddleware needs SessionMiddleware before it in MIDDLEWARE.")
        source = _UserOf(request)
        request.user = SimpleLazyObject(source)
        request.auser = source.auser


class _UserOf:
    """What `request.user` and `request.auser()` read: Django's `get_user` and `auser` for a
    request held weakly. Both live on the request, so the request outlives them unless someone
    keeps `request.user` unread past the end of the request; that is an error, said plainly."""

    __slots__ = ("request",)

    def __init__(self, request) -> None:
        self.request = weakref.ref(request)

    def _live(self):
        request = self.request()
        if request is None:
            raise RuntimeError("request.user was first read after its request had ended")
        return request

    def __call__(self):
        return _auth_middleware.get_user(self._live())

    async def auser(self):
        return await _auth_middleware.auser(self._live())


@checks.register(checks.Tags.security)
def check_memory_only_settings(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """The middleware above runs Django's hooks inline on the event loop, on the promise that they
    only touch memory; refuse the settings that would make them reach the database there."""
    errors = []
    if settings.CSRF_USE_SESSIONS:
        errors.append(checks.Error(
            "CSRF_USE_SESSIONS is on: CsrfViewMiddleware would read and write the session (the "
            "database) on the event loop.",
            hint="Leave CSRF_USE_SESSIONS off: AutoBot's middleware runs the CSRF check inline "
                 "(autobot/middleware.py) and keeps the token in its cookie.",
            id="autobot.E001",
        ))
    return errors
