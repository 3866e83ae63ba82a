"""Terminals from any worker: the process that owns a PTY relays it over the channel layer.

A PTY lives in the process that spawned it (the "host"), but behind a proxy without sticky
sessions a socket or REST call may land on any worker. The host reads its session's named
channel ``terminal.host.<session id>``; another worker reaches the session through it:

* a socket elsewhere attaches (``attach``): the host subscribes to the PTY as a local socket
  would (recent output replayed first) and sends output, events and the exit to the remote
  worker's own channel; the remote side (``RemoteAttachment``) looks like a local attachment
  to the consumer, so the frames a client gets are the same whichever worker it reached;
* input, resize, signal, a level change, close and detach are calls answered on a reply channel;
* a line typed for the chat's operator (``type``, by a turn running on another worker) is typed
  here, through the shell's hook like any line; its output goes back as it comes, then its result.

Every call is answered, failures too, and at once: what the service raised (``session_ended``,
``terminal_busy``…), or for anything else (a database error, a malformed call, a bug) a
``502 terminal_host_error``, its traceback logged here. Without an answer the caller would wait
out its timeout and then report the host lost.

Liveness both ways: the host pings each remote attachment and the remote side pings back every
``PING_SECONDS``. A host that stops answering (its process died) is noticed by the remote side,
which marks the session ended (``server_gone``, audited) and ends the client's socket with an
error and an ``exit`` frame; a remote attachment that stops pinging is detached by the host, so
the reconnect grace starts as it would for a dropped local socket.

A relay that breaks while both processes run (Redis restarted: a read or send failed, or what it
held is gone) cannot be mended, since the stream has a gap: the host detaches the socket and the
remote side ends it with ``session_unreachable`` (close 1011, no exit), so the page reconnects and
gets the recent output replayed, instead of staying open and deaf.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from channels.exceptions import ChannelFull
from channels.layers import get_channel_layer

from autobot.errors import AppError, Conflict, Unavailable
from autobot.lanes import spawn
from autobot.supervise import cancel, cancel_and_wait, run_to_end, supervised
from autobot.workers import wait_gone, worker_gone

from . import live as registry

log = logging.getLogger("terminal.relay")

PING_SECONDS = 5.0
# Silence after which the other side counts as gone: several missed pings, so a busy Redis
# or a paused event loop is not mistaken for a dead process.
LOST_SECONDS = 20.0
CALL_TIMEOUT = 10.0
ENDED_CHECK_SECONDS = 1.0  # how often a call waiting for its answer checks whether the session ended


def host_channel(session_id) -> str:
    return f"terminal.host.{session_id}"


def _error_dict(exc: AppError) -> dict:
    return {"detail": exc.detail, "code": exc.code, "status": exc.status}


def _failure(live: registry.LiveSession, op, exc: Exception) -> dict:
    """The answer to a call that failed on the host: what a service raised, else (a database
    error, a malformed call, a bug) a generic ``terminal_host_error``, logged here with its
    traceback. Answered at once, so the caller does not wait out its timeout and then report the
    host lost. 502: the worker the client reached is a gateway to this one, which failed; it is
    not 503 because the host is up and answering, nor 500 because the caller's own process did
    not fail."""
    if isinstance(exc, AppError):
        return _error_dict(exc)
    log.error("terminal %s: relayed %s failed", live.id, op, exc_info=exc)
    return {"detail": f"the terminal's server process failed to carry out {op!r}", "code": "terminal_host_error",
            "status": 502}


def _raise(error: dict) -> None:
    raise AppError(error["detail"], code=error["code"], status=error["status"])


# ---- the host: the process that owns the PTY ---------------------------------------------------


class _Remote:
    """A socket on another worker, attached to a PTY here."""

    def __init__(self, live: registry.LiveSession, reply: str, attachment: Any) -> None:
        self.live, self.reply, self.attachment = live, reply, attachment
        self.seen = time.monotonic()
        self.seq = 0
        self.tasks: list[asyncio.Task] = []

    async def send(self, message: dict) -> None:
        self.seq += 1
        try:
            await get_channel_layer().send(self.reply, {**message, "seq": self.seq})
        except Exception as exc:  # noqa: BLE001 - full (it stopped reading) or Redis away: either way
            # its stream now misses a message, so it cannot go on. Detached, the reconnect grace
            # starts; the remote side ends its socket (its reader failed too, or its next ping is
            # answered "detached") and the page's new socket gets the recent output replayed.
            why = "is not reading" if isinstance(exc, ChannelFull) else f"could not be reached ({exc!r})"
            log.warning("terminal %s: remote attachment %s %s; detaching", self.live.id, self.reply, why)
            await self.close()

    async def close(self) -> None:
        remotes = _remotes.get(self.live.id, {})
        if remotes.pop(self.reply, None) is None:
            return
        for task in self.tasks:
            if task is not asyncio.current_task():
                cancel(task)
        # Out of ``_remotes`` already: nothing else would detach it if this stopped halfway.
        await run_to_end(self.attachment.detach())


_remotes: dict[uuid.UUID, dict[str, _Remote]] = {}


async def serve(live: registry.LiveSession) -> None:
    """The host side, supervised: read the session's channel until the session ends."""
    try:
        await supervised(f"terminal-{live.id}-relay", lambda: _serve(live))
    finally:
        # The session's end cancels this reader, insisting (supervise.cancel): each detach awaits
        # (audit, recording) and would be cut short, leaving sockets attached to a dead session.
        await run_to_end(_detach_all(live))


async def _detach_all(live: registry.LiveSession) -> None:
    for remote in list(_remotes.pop(live.id, {}).values()):
        with contextlib.suppress(Exception):
            await remote.attachment.detach()


async def _serve(live: registry.LiveSession) -> None:
    layer = get_channel_layer()
    channel = host_channel(live.id)
    while True:
        await _logged(_handle, live, await layer.receive(channel))


async def _handle(live: registry.LiveSession, message: dict) -> None:
    op, reply = message.get("op"), message.get("reply")
    if op == "attach":
        await _attach(live, message)
        return
    if op == "ping":
        if remote := _remotes.get(live.id, {}).get(reply):
            remote.seen = time.monotonic()
        elif reply:  # detached here (a send to it failed, or it went silent): its socket must end
            with contextlib.suppress(Exception):
                await get_channel_layer().send(reply, {"type": "terminal.detached"})
        return
    if op == "detach":
        if remote := _remotes.get(live.id, {}).get(reply):
            await remote.close()
        return
    if op == "type":  # lasts as long as the command: from a task of its own, the reader goes on
        _typing_start(live, message)
        return
    if op == "type_cancel":  # the operator's stop reached the worker waiting for the line
        if task := _typing.get(message.get("call_id")):
            task.cancel()
        return
    if op == "close":  # the teardown ends by cancelling this reader: answer from a task of its own
        task = spawn(_logged(_answer, live, message), name=f"terminal {live.id} relay close")
        _closing.add(task)
        task.add_done_callback(_closing.discard)
        return
    await _answer(live, message)


_closing: set[asyncio.Task] = set()


async def _logged(handler, live: registry.LiveSession, message: dict) -> None:
    """Run `handler(live, message)`; a failure is logged and the relay goes on."""
    try:
        await handler(live, message)
    except Exception:
        log.exception("terminal %s: relay message %s failed", live.id, message.get("op"))


async def _answer(live: registry.LiveSession, message: dict) -> None:
    op, reply = message.get("op"), message.get("reply")
    result: dict = {"type": "terminal.result", "call_id": message.get("call_id")}
    try:
        result["value"] = await _call(live, op, message.get("args") or {})
        result["ok"] = True
    except Exception as exc:
        result.update(ok=False, error=_failure(live, op, exc))
    if reply:
        with contextlib.suppress(ChannelFull):
            await get_channel_layer().send(reply, result)


async def _call(live: registry.LiveSession, op: str, args: dict):
    from . import sessions

    if op == "close":  # a second close (a retried DELETE) waits for the first one
        await sessions.close_live(live, "closed")
        return None
    if live.ending is not None:
        raise Conflict(f"terminal session {live.id} has ended", code="session_ended")
    if op in ATTACHMENT_OPS:
        remote = _remotes.get(live.id, {}).get(args.get("attachment", ""))
        if remote is None:
            raise Conflict("this socket is no longer attached to the session", code="not_attached")
        return await ATTACHMENT_OPS[op](remote.attachment, args)
    if op == "input":
        user = await _user(args.get("user_id"))
        if user is not None and user.pk != live.owner.pk:
            from .watch import input_by_staff

            await input_by_staff(live, user, args.get("client_ip"))
        await sessions._write(live, args["text"], is_password=bool(args.get("is_password")), user=user)
    elif op == "resize":
        await sessions.resize_live(live, args.get("cols"), args.get("rows"))
    elif op == "signal":
        return sessions.signal_live(live, args["signal"])
    elif op == "level":
        sessions.set_level(live, args["level"])
        live.broadcast({"type": "session", **(args.get("info") or {})})
    else:
        raise AppError(f"unknown relay operation {op!r}", code="invalid_relay_op")
    return None


# Lines typed here for the operator of a chat turn running on another worker, by call id.
_typing: dict[str, asyncio.Task] = {}


def _typing_start(live: registry.LiveSession, message: dict) -> None:
    call_id = str(message.get("call_id"))
    # Endless: the session's end cancels it at once; the caller notices the ended row.
    task = live.spawn_task(_logged(_type, live, message), f"terminal {live.id} relay type", endless=True)
    _typing[call_id] = task
    task.add_done_callback(lambda _: _typing.pop(call_id, None))


async def _type(live: registry.LiveSession, message: dict) -> None:
    """Type the line here (services.typed) and send its output, then its result, to the caller."""
    from .typed import type_live

    layer, reply, call_id, args = get_channel_layer(), message["reply"], message.get("call_id"), message.get("args")
    sent = 0

    async def send(frame: dict, *, retry: bool) -> None:
        nonlocal sent
        # Numbered only once sent: a chunk dropped on a full channel leaves no gap to wait for.
        for _ in range(int(CALL_TIMEOUT / 0.1) if retry else 1):
            try:
                await layer.send(reply, {**frame, "call_id": call_id, "seq": sent + 1})
            except ChannelFull:  # the caller is slow to read: live output may go, the result may not
                if retry:
                    await asyncio.sleep(0.1)
                continue
            sent += 1
            return

    async def output(text: str) -> None:
        await send({"type": "terminal.typed_output", "data": text}, retry=False)

    result: dict = {"type": "terminal.result"}
    try:
        result["value"] = await type_live(live, command=args["command"], actor=args.get("actor") or "",
                                          correlation_id=args.get("correlation_id") or "",
                                          timeout=float(args.get("timeout") or 120.0), on_output=output,
                                          stop_reason=str(args.get("stop_reason") or "")[:200],
                                          clearance=args.get("clearance"))
        result["ok"] = True
    except Exception as exc:
        result.update(ok=False, error=_failure(live, "type", exc))
    await send(result, retry=True)


# Calls a remote socket makes on its attachment here (identified by its reply channel).
ATTACHMENT_OPS = {
    "attached_input": lambda attachment, args: attachment.input(args["text"]),
    "attached_resize": lambda attachment, args: attachment.resize(args.get("cols"), args.get("rows")),
    "join": lambda attachment, args: attachment.join(),
    "leave": lambda attachment, args: attachment.leave(),
}


async def _user(user_id):
    from django.contrib.auth import get_user_model

    if user_id is None:
        return None
    return await get_user_model().objects.aget(pk=user_id)


async def _attach(live: registry.LiveSession, message: dict) -> None:
    from .watch import attach_local, watchers

    reply = message["reply"]
    holder: list[_Remote] = []

    def forward(event: dict) -> None:
        if holder:
            holder[0].tasks.append(asyncio.create_task(holder[0].send({"type": "terminal.event", "event": event})))

    user = await _user(message["user_id"])
    attachment = await attach_local(live, user=user, own=user.pk == live.owner.pk, on_event=forward,
                                    client_ip=message.get("client_ip"), mode=message.get("mode"))
    remote = _Remote(live, reply, attachment)
    holder.append(remote)
    _remotes.setdefault(live.id, {})[reply] = remote
    await remote.send({"type": "terminal.attached", "role": attachment.role, "watchers": watchers(live)})
    if _remotes.get(live.id, {}).get(reply) is not remote:  # the send failed: detached already
        return
    remote.tasks += [
        live.spawn_task(_pump(remote), f"terminal {live.id} relay out"),
        live.spawn_task(_watch(remote), f"terminal {live.id} relay watch", endless=True),
    ]


async def _pump(remote: _Remote) -> None:
    while (text := await remote.attachment.read()) is not None:
        await remote.send({"type": "terminal.output", "data": text})
    await remote.send({"type": "terminal.exit", "code": await remote.attachment.exit_code()})
    await remote.close()


async def _watch(remote: _Remote) -> None:
    while True:
        await asyncio.sleep(PING_SECONDS)
        if time.monotonic() - remote.seen > LOST_SECONDS:
            log.info("terminal %s: remote attachment %s went silent; detaching", remote.live.id, remote.reply)
            await remote.close()
            return
        await remote.send({"type": "terminal.ping"})


# ---- the other workers -----------------------------------------------------------------------


async def call(session, op: str, **args) -> Any:
    """Run ``op`` on the session's host; raises what the host raised, or session_lost."""
    layer = get_channel_layer()
    reply = await layer.new_channel()
    call_id = uuid.uuid4().hex
    await layer.send(host_channel(session.pk), {"type": "terminal.relay", "op": op, "args": args,
                                                 "reply": reply, "call_id": call_id})
    return await _outcome(session, asyncio.create_task(_answer_to(layer, reply, call_id)), CALL_TIMEOUT)


async def type_remote(session, *, command: str, actor: str, correlation_id: str, timeout: float,  # noqa: ASYNC109
                      on_output: Callable[[str], Awaitable[None]] | None = None, stop_reason: str = "",
                      clearance: str | None = None) -> dict:
    """``services.typed.command_type`` for a session another worker runs: the line is typed there
    (the same hook rates, records and audits it) and its output comes back as it is produced.
    Cancelling the caller (the operator's stop) stops the line there (``typed.line_stop``)."""
    layer = get_channel_layer()
    reply = await layer.new_channel()
    call_id = uuid.uuid4().hex
    host = host_channel(session.pk)
    await layer.send(host, {"type": "terminal.relay", "op": "type", "reply": reply, "call_id": call_id,
                            "args": {"command": command, "actor": actor, "correlation_id": correlation_id,
                                     "timeout": timeout, "stop_reason": stop_reason, "clearance": clearance}})
    try:
        # The host interrupts the line itself after ``timeout``; the margin is for the way back.
        return await _outcome(session, asyncio.create_task(_typed_answer(layer, reply, call_id, on_output)),
                              timeout + CALL_TIMEOUT, watch_host=True)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await run_to_end(layer.send(host, {"type": "terminal.relay", "op": "type_cancel", "call_id": call_id}))
        raise


async def _typed_answer(layer, reply: str, call_id: str, on_output) -> dict:
    """The typed line's output (passed to ``on_output`` in the order sent), then its result."""
    pending: dict[int, dict] = {}
    expected = 1
    while True:
        message = await layer.receive(reply)
        if message.get("call_id") != call_id:
            continue
        pending[message.get("seq", expected)] = message
        while (message := pending.pop(expected, None)) is not None:
            expected += 1
            if message.get("type") == "terminal.result":
                return message
            if on_output is not None:
                try:
                    await on_output(message.get("data", ""))
                except Exception:  # a watcher failing must not cost the caller the result
                    log.warning("terminal: relayed output of a typed line could not be passed on", exc_info=True)


async def _outcome(session, answering: asyncio.Task, seconds: float, *, watch_host: bool = False) -> Any:
    """The value of the answer ``answering`` waits for; raises what the host raised, session_ended
    or what ``host_lost`` finds when no answer comes within ``seconds``."""
    # A session that ends meanwhile (closed on its host, say) leaves a call unanswered: its host's
    # reader stops with it. The call then ends as one reaching an ended session would.
    ending = asyncio.create_task(_ended(session))
    # A long wait also watches the host's process (a pidfd on the same host): it may die meanwhile.
    gone = asyncio.create_task(wait_gone(session.host)) if watch_host else None
    waiting = {t for t in (answering, ending, gone) if t is not None}
    try:
        done, _ = await asyncio.wait(waiting, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        await cancel_and_wait([t for t in waiting if not t.done()])
    if answering in done:
        answer = answering.result()
    elif ending in done:
        ending.result()  # a failed check (the database) is that failure, not "ended"
        raise Conflict(f"terminal session {session.pk} has ended", code="session_ended")
    else:
        await host_lost(session)
    if not answer.get("ok"):
        _raise(answer["error"])
    return answer.get("value")


async def _answer_to(layer, reply: str, call_id: str) -> dict:
    while True:
        answer = await layer.receive(reply)
        if answer.get("call_id") == call_id:
            return answer


async def _ended(session) -> None:
    from terminal.models import TerminalSession

    ended = TerminalSession.objects.filter(pk=session.pk, status=TerminalSession.Status.ENDED)
    while True:  # after a pause first: most calls are answered in milliseconds
        await asyncio.sleep(ENDED_CHECK_SECONDS)
        if await ended.aexists():
            return


async def host_lost(session) -> None:
    """The host did not answer: if its process is gone, the session ends here, audited."""
    from .sessions import mark_server_gone

    if worker_gone(session.host):
        await mark_server_gone(session)
        raise Conflict(f"terminal session {session.pk} ended: its server process stopped", code="session_lost")
    raise Unavailable(f"terminal session {session.pk}: its server process ({session.host}) is not answering",
                      code="session_unreachable")


class RemoteAttachment:
    """A socket here on a PTY owned by another worker; the same methods as a local Attachment."""

    def __init__(self, session, on_event: Callable[[dict], None]) -> None:
        self.session = session
        self._on_event = on_event
        self._output: asyncio.Queue[str | None] = asyncio.Queue()
        self._exit: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._pending: dict[int, dict] = {}
        self._next = 1
        self._seen = time.monotonic()
        self._tasks: list[asyncio.Task] = []
        self.reply = ""

    async def start(self, *, user, mode: str | None, client_ip: str | None) -> dict:
        """Attach on the host; returns the socket's ``role`` and the session's ``watchers``."""
        layer = get_channel_layer()
        self.reply = await layer.new_channel()
        await layer.send(host_channel(self.session.pk), {"type": "terminal.relay", "op": "attach",
                                                          "reply": self.reply, "user_id": user.pk,
                                                          "mode": mode, "client_ip": client_ip})
        try:
            first = await asyncio.wait_for(layer.receive(self.reply), timeout=CALL_TIMEOUT)
        except TimeoutError:
            await host_lost(self.session)
        if first.get("type") != "terminal.attached":
            raise Unavailable("the terminal's server process answered unexpectedly", code="session_unreachable")
        self._next = first["seq"] + 1
        self._tasks = [asyncio.create_task(self._read()), asyncio.create_task(self._ping())]
        return {"role": first["role"], "watchers": first["watchers"]}

    async def _read(self) -> None:
        """Deliver the host's messages in order. The stream cannot survive a gap, so this ends the
        socket (``_broken``) when the layer fails under it (Redis restarted: what was queued there
        is gone), when a message stays missing past PING_SECONDS (later ones, the host's pings
        among them, wait behind it) or when the host says it detached this socket."""
        layer = get_channel_layer()
        stalled: float | None = None  # since when the next message is missing
        while True:
            try:
                message = await layer.receive(self.reply)
            except Exception as exc:  # noqa: BLE001 - any failure of the layer loses the stream
                log.warning("terminal %s: relay from its host lost (%r); ending the socket", self.session.pk, exc)
                return self._broken()
            self._seen = time.monotonic()
            if message.get("type") == "terminal.detached":
                log.warning("terminal %s: its host detached this socket; ending it", self.session.pk)
                return self._broken()
            # Messages carry the host's sequence: deliver them in the order they were sent.
            self._pending[message.get("seq", self._next)] = message
            delivered = False
            while (message := self._pending.pop(self._next, None)) is not None:
                self._next += 1
                delivered = True
                if self._deliver(message):
                    return
            if not self._pending:
                stalled = None
            elif delivered or stalled is None:
                stalled = self._seen
            elif self._seen - stalled > PING_SECONDS:
                log.warning("terminal %s: relay message %d from its host lost; ending the socket",
                            self.session.pk, self._next)
                return self._broken()

    def _deliver(self, message: dict) -> bool:
        kind = message.get("type")
        if kind == "terminal.output":
            self._output.put_nowait(message["data"])
        elif kind == "terminal.event":
            self._on_event(message["event"])
        elif kind == "terminal.exit":
            self._finish(message.get("code", -1))
            return True
        return False

    def _finish(self, code: int) -> None:
        if not self._exit.done():
            self._exit.set_result(code)
        self._output.put_nowait(None)

    def _broken(self, exc: AppError | None = None) -> None:
        """The relay is lost but the session may well run on: the socket ends with ``exc`` (an
        error frame, close 1011), not an exit, and the page reconnects (recent output replayed)."""
        if exc is None:
            exc = Unavailable(f"terminal session {self.session.pk}: the connection to its server process "
                              f"({self.session.host}) was lost; reconnect", code="session_unreachable")
        if not self._exit.done():
            self._exit.set_exception(exc)
            self._exit.exception()  # retrieved: nobody may be left to await it
        self._output.put_nowait(None)
        for task in self._tasks:
            if task is not asyncio.current_task():
                cancel(task)

    async def _ping(self) -> None:
        layer = get_channel_layer()
        while True:
            await asyncio.sleep(PING_SECONDS)
            lost = time.monotonic() - self._seen > LOST_SECONDS or worker_gone(self.session.host)
            if lost:
                await self._lost()
                return
            try:
                await layer.send(host_channel(self.session.pk), {"type": "terminal.relay", "op": "ping",
                                                                  "reply": self.reply})
            except Exception as exc:  # noqa: BLE001 - full, or Redis away: one missed ping, the next may pass
                log.info("terminal %s: relay ping not sent (%r)", self.session.pk, exc)

    async def _lost(self) -> None:
        try:
            await host_lost(self.session)
        except AppError as exc:
            if exc.code != "session_lost":  # its process runs but does not answer: reconnect
                return self._broken(exc)
            self._on_event({"type": "error", **exc.to_dict()})
            self._finish(-1)
            for task in self._tasks:
                if task is not asyncio.current_task():
                    cancel(task)

    async def read(self) -> str | None:
        return await self._output.get()

    async def exit_code(self) -> int:
        """The shell's exit code; raises an ``AppError`` if the relay was lost instead."""
        return await self._exit

    async def input(self, text: str) -> None:
        await call(self.session, "attached_input", text=text, attachment=self.reply)

    async def resize(self, cols, rows) -> None:
        await call(self.session, "attached_resize", cols=cols, rows=rows, attachment=self.reply)

    async def join(self) -> None:
        await call(self.session, "join", attachment=self.reply)

    async def leave(self) -> None:
        await call(self.session, "leave", attachment=self.reply)

    async def detach(self) -> None:
        for task in self._tasks:
            cancel(task)
        if self.reply:
            await self._send_detach()

    async def _send_detach(self) -> None:
        with contextlib.suppress(Exception):
            await get_channel_layer().send(host_channel(self.session.pk), {"type": "terminal.relay", "op": "detach",
                                                                            "reply": self.reply})
