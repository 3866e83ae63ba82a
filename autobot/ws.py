"""WebSockets: the front door every socket passes, and the one base every consumer is built on.

The front door (`websocket_application`): Origin check, session-or-token auth, then each app's
routes. Refusals accept the handshake and close at once with an application close code (4403
wrong origin, 4401 anonymous, 4404 no such socket path), because a refused handshake reaches a
browser only as a bare 1006. While the socket is open its credentials, and what its consumer
requires (``JsonConsumer.requires``), are checked again every WS_REAUTH_SECONDS and whenever
something may have taken them away (autobot/revocation.py nudges the user's sockets); once the
credentials fail it closes with 4401, once the requirement fails with 4403 (`_while_authenticated`).

The base (`JsonConsumer`): frame limits, JSON checks, dispatch to ``handle_<type>`` methods and
error frames, with one set of codes for the faults of a frame (docs/platform.md, "WebSocket
frames"). A consumer is its connect, its handlers and its channel-layer events.
"""

import asyncio
import importlib
import logging
import re
from urllib.parse import urlsplit

from channels.auth import get_user
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.layers import get_channel_layer
from channels.routing import URLRouter
from channels.sessions import SessionMiddlewareStack
from django.conf import settings
from django.http.request import split_domain_port, validate_host
from django.urls import re_path

from autobot import layerwatch, metrics, revocation
from autobot.auth import read_only, token_authenticate
from autobot.errors import REDIS_FAULTS, AppError, BadRequest, RedisUnavailable, Unavailable
from autobot.http import json_loads
from autobot.supervise import cancel

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
        user = await socket_user(scope, token=token)
        if user is None:
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
            return await _while_authenticated(self.inner, scope, receive, counting_send, token=token)
        finally:
            if counted:
                gauge.dec()


async def socket_user(scope, *, token: str):
    """The user the socket's credentials stand for, read afresh, or None: the Bearer token's (not
    revoked or expired, its user active), else the session's (not signed out, the password
    unchanged, the user active). The gate asks at connect; the watch asks again while it is open."""
    if token:
        return await token_authenticate(token)
    key = getattr(scope.get("session"), "session_key", None)
    if not key:
        return None
    # A store of its own: the scope's keeps what it read at connect.
    store = importlib.import_module(settings.SESSION_ENGINE).SessionStore
    user = await get_user({"session": store(session_key=key)})
    return user if user.is_authenticated else None


# What a consumer needs for as long as its socket is open (``JsonConsumer.requires``): a
# permission ("app.codename", `user.has_perm`), or an async callable ``(user, scope)`` that raises
# an AppError (a 4xx one: Forbidden, NotFound …) once the user may no longer have the socket.
_REQUIREMENTS = "autobot.requires"


def keep_requiring(scope, requires) -> None:
    """From now on the socket also closes (4403) once ``requires`` fails for its user."""
    wanted = scope.get(_REQUIREMENTS)
    if wanted is not None:
        wanted.append((requires, scope))


async def meets(user, requires, scope) -> bool:
    if isinstance(requires, str):
        return await user.ahas_perm(requires)
    try:
        await requires(user, scope)
    except AppError as exc:
        if exc.status >= 500:  # could not tell (a database away): not a refusal
            raise
        return False
    return True


async def refusal(scope, *, token: str, requirements: list) -> int | None:
    """None while the socket may stay open, else the code to close it with: 4401 when its
    credentials no longer hold (for the same user as at connect), 4403 when a requirement fails."""
    user = await socket_user(scope, token=token)
    if user is None or user.pk != scope["user"].pk:
        return 4401
    for requires, app_scope in requirements:
        if not await meets(user, requires, app_scope):
            return 4403
    return None


class Nudges:
    """The socket's place in its user's group (autobot/revocation.py): a message there asks for
    the check now. A layer that fails costs only the promptness: the periodic check goes on, and
    joins again at each round (which also renews a membership the layer would expire), and at once
    when the layer's Redis lost its state (autobot/layerwatch.py)."""

    def __init__(self, user_id) -> None:
        revocation.sockets_listen_here()
        self.group = revocation.user_group(user_id)
        self.layer = get_channel_layer()
        self.channel: str | None = None
        self.joined = False
        self.receiving: asyncio.Task | None = None

    async def join(self) -> None:
        if self.layer is None:
            return
        try:
            self.channel = self.channel or await self.layer.new_channel()
            await self.layer.group_add(self.group, self.channel)
            self.joined = True
        except Exception:
            self.joined = False
            log.warning("websocket: could not join %s; only the periodic check covers it", self.group,
                        exc_info=True)

    async def wait(self, seconds: float) -> bool:
        """Until a nudge comes (True) or ``seconds`` pass (False). A restart of the layer's Redis
        (autobot/layerwatch.py) ends the wait early (False): the round joins the group again."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        if self.joined:
            self.receiving = self.receiving or asyncio.ensure_future(self.layer.receive(self.channel))
            restart = layerwatch.next_restart()
            done, _ = await asyncio.wait({self.receiving, restart} - {None}, timeout=seconds,
                                         return_when=asyncio.FIRST_COMPLETED)
            if not done or self.receiving not in done:
                return False
            received, self.receiving = self.receiving, None
            if received.exception() is None:
                return True
            self.joined = False  # until the next round joins again; no busy loop on a broken layer
            log.warning("websocket: lost %s", self.group, exc_info=received.exception())
        await asyncio.sleep(max(0.0, deadline - loop.time()))
        return False

    async def leave(self) -> None:
        if self.receiving is not None:
            cancel(self.receiving)  # insists: a cancel can be lost inside redis-py (autobot/supervise.py)
        if self.channel is None:
            return
        try:
            await self.layer.group_discard(self.group, self.channel)
        except Exception:  # the membership expires with the layer's group expiry
            log.warning("websocket: could not leave %s", self.group, exc_info=True)


async def _while_authenticated(inner, scope, receive, send, *, token: str):
    """Run the socket's app while its credentials and its consumer's requirement hold. They are
    checked again every WS_REAUTH_SECONDS and at each nudge; once they fail, the client gets close
    4401 (or 4403) and the app a disconnect (its own clean-up runs: a terminal detaches, a chat
    stops listening), and whatever it sends later is dropped."""
    requirements: list = []
    scope = {**scope, _REQUIREMENTS: requirements}  # the consumer adds to it (URLRouter copies the scope)
    # One future for the socket's life, not a waiter task per frame received; its result is the
    # close code.
    lost = asyncio.get_running_loop().create_future()
    closed = False
    pending: asyncio.Task | None = None

    async def guarded_send(message):
        nonlocal closed
        if not closed:
            closed = message["type"] == "websocket.close"
            await send(message)

    async def guarded_receive():
        nonlocal pending
        if lost.done():
            return {"type": "websocket.disconnect", "code": lost.result()}
        pending = pending or asyncio.ensure_future(receive())
        await asyncio.wait({pending, lost}, return_when=asyncio.FIRST_COMPLETED)
        if lost.done():  # a frame that came with (or after) the failed check is dropped
            return {"type": "websocket.disconnect", "code": lost.result()}
        message, pending = pending.result(), None
        return message

    async def watch():
        nonlocal closed
        while True:
            if not await nudges.wait(settings.WS_REAUTH_SECONDS):
                await nudges.join()  # the periodic round
            try:
                code = await refusal(scope, token=token, requirements=requirements)
            except Exception:  # the database away for a moment is not a reason to drop sockets
                log.warning("websocket: credentials could not be checked again", exc_info=True)
                continue
            if code is None:
                continue
            # Lost first: while the close is being sent the client may already send again, and
            # that frame must find the socket's app told to stop, not read it as input.
            lost.set_result(code)
            if not closed:
                closed = True
                reason = "auth" if code == 4401 else "forbidden"
                metrics.ws_rejected.labels("reauth" if code == 4401 else "reauth_forbidden").inc()
                await send({"type": "websocket.close", "code": code, "reason": reason})
            return

    # Joined before the app runs: a change made as soon as the socket is open must reach it.
    nudges = Nudges(scope["user"].pk)
    await nudges.join()
    watcher = asyncio.ensure_future(watch())
    try:
        return await inner(scope, guarded_receive, guarded_send)
    finally:
        watcher.cancel()
        if pending is not None:
            pending.cancel()
        await nudges.leave()


async def no_such_socket(scope, receive, send):
    """The last route: an unknown path closes with 4404 instead of the router's ValueError (a 500)."""
    await close_with(send, receive, 4404, "not_found")


def websocket_application():
    routes = [*collect_websocket_urlpatterns(), re_path(r"", no_such_socket)]
    return SessionMiddlewareStack(WebSocketGate(URLRouter(routes)))


# -- the base of every consumer ---------------------------------------------------------------

INTERNAL_ERROR = "internal error: it has been logged"
_HANDLER_NAME = re.compile(r"[a-z][a-z0-9_]*")


async def leave_group(layer, group: str, channel: str) -> None:
    """A socket's clean-up leaving a group: with Redis away it cannot, and need not (the
    membership expires with the layer's group expiry, or is gone with a restart)."""
    try:
        await layer.group_discard(group, channel)
    except REDIS_FAULTS:
        log.info("websocket: could not leave %s (the layer is unavailable)", group)


class BadFrame(BadRequest):
    """A fault of the frame itself (not of a field inside it); ``fields`` join the error frame."""

    def __init__(self, detail: str, *, code: str, **fields):
        super().__init__(detail, code=code)
        self.fields = fields


class JsonConsumer(AsyncJsonWebsocketConsumer):
    """JSON text frames in and out, with one set of error codes for the faults of a frame.

    Every text frame is checked before anything else sees it: at most ``max_frame_bytes`` UTF-8
    bytes (``frame_too_large``, refused unread), text not binary (``binary_frame``), JSON nested
    at most 64 deep (``invalid_json``), an object with a string ``type`` (``invalid_frame``).
    It then goes to ``handle_<type>(frame)``; a type without a handler is ``unknown_type`` and
    the error frame lists the types that have one (``accepts``). A subclass whose frames are
    not ``{"type": …}`` objects overrides ``receive_json`` (the agents' protocol messages).

    An ``AppError`` raised by a handler, a channel-layer event or ``connect`` becomes
    ``{"type": "error", "code", "detail"}`` (the REST body's fields) and the socket stays open,
    unless the error is ``fatal`` (or raised in ``connect``): then it closes with
    ``exc.close_code`` (4000 + status). A Redis error (from a handler, or the consumer's own
    channel on the layer failing) is ``redis_unavailable``, closed with 1011; anything else is
    logged with its stack, answered with ``internal_error`` and closed with 1011. After a close,
    further frames are ignored.
    """

    max_frame_bytes: int = 4096  # a property where a setting decides it
    # What the user must keep holding while the socket is open, beside its credentials: checked
    # by the front door every WS_REAUTH_SECONDS and at each nudge, from accept on; when it fails
    # the socket closes with 4403 "forbidden". A permission ("app.codename") or an async callable
    # ``(user, scope)`` raising a 4xx AppError: usually the same service check connect makes.
    requires = None
    # A consumer that joins groups on the layer: once the layer's Redis loses its state
    # (autobot/layerwatch.py) its memberships are gone and what was sent meanwhile is lost, and
    # ``layer_restarted`` runs. By default the socket closes (error frame ``layer_restarted``, close 1011) and the
    # client reconnects, joining again and taking a new snapshot.
    watches_layer = False
    accepted = False
    closing = False
    _layer_restart: asyncio.Future | None = None  # the layer's next restart, heard from accept on
    _layer_task: asyncio.Task | None = None
    _layer_lost = False

    # -- helpers for subclasses

    async def refuse(self, exc: AppError) -> None:
        """Turn the socket away (at connect, or later): accept if not yet (a refused handshake
        reaches a browser as a bare 1006), send the error frame, close with its close code."""
        if not self.accepted:
            await self.accept()
        self.closing = True  # from here on: no second error frame (two refusals may race)
        await self.send_error(exc)
        await self.close_with(exc.close_code)

    async def send_error(self, exc: AppError) -> None:
        await self.send_json({"type": "error", **exc.to_dict(), **getattr(exc, "fields", {})})

    async def close_with(self, code: int) -> None:
        self.closing = True
        await self.close(code=code)

    @classmethod
    def frame_types(cls) -> list[str]:
        """The frame types this consumer handles, in the order its classes define them."""
        types: list[str] = []
        for klass in reversed(cls.__mro__):
            for name, value in vars(klass).items():
                if name.startswith("handle_") and callable(value) and name[7:] not in types:
                    types.append(name[7:])
        return types

    # -- the frame pipeline

    async def accept(self, subprotocol=None, headers=None):
        self.accepted = True
        if self.requires is not None:
            keep_requiring(self.scope, self.requires)
        if self._layer_restart is not None:
            self._layer_restart.add_done_callback(self._heard_restart)
        await super().accept(subprotocol, headers)

    async def websocket_connect(self, message):
        if self.watches_layer and self.channel_layer is not None:
            # Taken before connect joins any group: a restart from this point on is heard.
            self._layer_restart = layerwatch.next_restart()
        await super().websocket_connect(message)

    async def websocket_disconnect(self, message):
        if self._layer_restart is not None:
            self._layer_restart.remove_done_callback(self._heard_restart)
        if self._layer_task is not None:
            cancel(self._layer_task)
        await super().websocket_disconnect(message)

    def _heard_restart(self, _future) -> None:
        # A callback on the one future every socket shares, not a task per idle socket.
        if not self.closing:
            self._layer_task = asyncio.ensure_future(self._after_restart())

    async def _after_restart(self) -> None:
        self._layer_restart = layerwatch.next_restart()  # the next one, for a socket that stays open
        # Through dispatch, as a layer event: its errors become error frames and closes like any
        # handler's (a database error while an agent's row is read again closes with internal_error).
        await self.dispatch({"type": "autobot.layer_restarted"})
        if not self.closing and self._layer_restart is not None:
            self._layer_restart.add_done_callback(self._heard_restart)

    async def autobot_layer_restarted(self, event) -> None:
        await self.layer_restarted()

    async def layer_restarted(self) -> None:
        await self.refuse(Unavailable("the server's message layer restarted; reconnect to catch up",
                                      code="layer_restarted"))

    # -- the consumer's own channel on the layer

    # Channels' consumer waits on ``self.channel_receive`` beside the socket, and ends with an
    # exception (no error frame, no ``disconnect``) when a receive fails: Redis away. It is set
    # in Channels' ``__call__``; reading it gives a receive that turns a failure into an event
    # for this consumer instead (``autobot_layer_lost``: error frame, close 1011).
    @property
    def channel_receive(self):
        return self._layer_receive

    @channel_receive.setter
    def channel_receive(self, receive) -> None:
        self._channel_receive = receive

    async def _layer_receive(self) -> dict:
        if self._layer_lost:
            await asyncio.Future()  # the socket is closing: wait for its disconnect, no busy loop
        try:
            return await self._channel_receive()
        except REDIS_FAULTS as exc:
            self._layer_lost = True
            layerwatch.suspect()  # the other sockets' groups missed what was sent meanwhile too
            log.warning("%s: its channel on the layer failed (%r); closing the socket", type(self).__name__, exc)
            return {"type": "autobot.layer_lost"}

    async def autobot_layer_lost(self, event) -> None:
        if not self.closing:
            await self.refuse(RedisUnavailable())

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        if self.closing:
            return
        if text_data is None:
            raise BadFrame("binary frames are not accepted; send JSON text frames", code="binary_frame")
        limit = self.max_frame_bytes
        # Parsing is on the loop: a frame over the limit is refused unread (a character is at
        # least one byte, so a long string is refused before it is even encoded).
        data = b"" if len(text_data) > limit else text_data.encode("utf-8", "surrogatepass")
        if len(text_data) > limit or len(data) > limit:
            raise BadFrame(f"frames are at most {limit} bytes", code="frame_too_large", limit=limit)
        try:
            content = json_loads(data)  # nesting bounded: no RecursionError
        except ValueError as exc:
            raise BadFrame(f"the frame is not valid JSON: {exc}", code="invalid_json") from None
        if not isinstance(content, dict):
            raise BadFrame("a frame is a JSON object with a string 'type'", code="invalid_frame")
        await self.receive_json(content)

    async def receive_json(self, content, **kwargs):
        kind = content.get("type")
        if not isinstance(kind, str):
            raise BadFrame("a frame is a JSON object with a string 'type'", code="invalid_frame")
        handler = getattr(self, f"handle_{kind}", None) if _HANDLER_NAME.fullmatch(kind) else None
        if handler is None:
            accepts = self.frame_types()
            raise BadFrame(f"unknown frame type {kind[:40]!r}; use {_either(accepts)}", code="unknown_type",
                           accepts=accepts)
        await handler(content)

    async def dispatch(self, message):
        """Channels' dispatch, with the errors of connect, frames and events turned into frames."""
        kind = message.get("type")
        if kind == "websocket.disconnect":
            return await super().dispatch(message)
        try:
            await super().dispatch(message)
        except StopConsumer:
            raise
        except AppError as exc:
            if self.closing:
                return
            if kind == "websocket.connect" or exc.fatal:
                await self._quietly(self.refuse(exc))
            else:
                await self._quietly(self.send_error(exc))
        except REDIS_FAULTS as exc:  # an outage, not a bug: the client reconnects
            log.warning("%s: Redis did not answer on %s (%r)", type(self).__name__, kind, exc)
            if not self.closing:
                await self._quietly(self.refuse(RedisUnavailable()))
        except Exception:
            log.exception("%s failed on %s", type(self).__name__, kind)
            if not self.closing:
                await self._quietly(self.refuse(AppError(INTERNAL_ERROR, code="internal_error", status=500)))

    async def _quietly(self, step) -> None:
        """The socket may already be gone (the client left mid-handler): nothing to tell then."""
        try:
            await step
        except Exception:  # the first failure is reported; a second adds nothing
            self.closing = True
            log.debug("%s: could not report an error to a closed socket", type(self).__name__)


def _either(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
