"""WebSocket front door: Origin check, session-or-token auth, then each app's routes.

Refusals accept the handshake and close at once with an application close code (4403 wrong
origin, 4401 anonymous, 4404 no such socket path), because a refused handshake reaches a browser
only as a bare 1006.
"""

import importlib
import logging
from urllib.parse import urlsplit

from channels.auth import get_user
from channels.routing import URLRouter
from channels.sessions import SessionMiddlewareStack
from django.conf import settings
from django.http.request import split_domain_port, validate_host
from django.urls import re_path

from autobot import metrics
from autobot.auth import read_only, token_authenticate

log = logging.getLogger("autobot.ws")
APPS = ("terminal", "knowledge", "chat", "files", "agents")


def collect_websocket_urlpatterns() -> list:
    patterns = []
    for app in APPS:
        try:
            module = importlib.import_module(f"{app}.routing")
        except ModuleNotFoundError as exc:
            if exc.name != f"{app}.routing":
                raise
            continue
        patterns.extend(getattr(module, "websocket_urlpatterns", []))
    return patterns


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


def origin_allowed(origin: str | None, host: str | None, *, has_token: bool) -> bool:
    """Same-origin only, as Django's CSRF check: the Origin's host *and port* must be the Host
    the socket was opened on (browsers send cookies to every port of a host, so a page on
    another local port must not get a session-authenticated socket), and that host must be an
    allowed one; or the Origin is listed in AUTOBOT_CSRF_TRUSTED_ORIGINS (for proxies).
    Browsers always send Origin; a client without one must bring a Bearer token (no cookies
    ride along with it, so cross-site use is not possible)."""
    if not origin:
        return has_token
    if origin in settings.CSRF_TRUSTED_ORIGINS:
        return True
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.hostname or not host:
        return False
    if parts.netloc.lower() != host.lower():
        return False
    domain, _port = split_domain_port(host)
    allowed = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not allowed:
        allowed = [".localhost", "127.0.0.1", "[::1]"]
    return bool(domain) and validate_host(domain, allowed)


async def close_with(send, receive, code: int, reason: str) -> None:
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    metrics.ws_rejected.labels(reason).inc()
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.close", "code": code, "reason": reason})


class WebSocketGate:
    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        authorization = _header(scope, b"authorization") or ""
        token = authorization[7:].strip() if authorization.lower().startswith("bearer ") else ""
        origin = _header(scope, b"origin")
        if origin and not origin_allowed(origin, _header(scope, b"host"), has_token=bool(token)):
            return await close_with(send, receive, 4403, "origin")
        user = await token_authenticate(token) if token else await get_user(scope)
        if not user or not user.is_authenticated:
            return await close_with(send, receive, 4401, "auth")  # no credentials: say so, Origin or not
        if not origin_allowed(origin, _header(scope, b"host"), has_token=bool(token)):
            return await close_with(send, receive, 4403, "origin")  # a session cookie without Origin
        if read_only(user):  # sockets type commands, send messages, act as agents: none is reading
            return await close_with(send, receive, 4403, "read_only_token")
        scope = dict(scope, user=user)
        route = scope["path"].split("/")[2] if scope["path"].count("/") >= 2 else "?"
        gauge = metrics.ws_connections.labels(route if route in APPS else "other")
        counted = False

        async def counting_send(message):
            nonlocal counted
            if message["type"] == "websocket.accept" and not counted:
                counted = True
                gauge.inc()
            await send(message)

        try:
            return await self.inner(scope, receive, counting_send)
        finally:
            if counted:
                gauge.dec()


async def no_such_socket(scope, receive, send):
    """The last route: an unknown path closes with 4404 instead of the router's ValueError (a 500)."""
    await close_with(send, receive, 4404, "not_found")


def websocket_application():
    routes = [*collect_websocket_urlpatterns(), re_path(r"", no_such_socket)]
    return SessionMiddlewareStack(WebSocketGate(URLRouter(routes)))
