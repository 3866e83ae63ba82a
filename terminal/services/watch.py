"""Sockets on a live session: the owner, staff watching (observers), staff who joined to type.

Staff open another user's session read-only; the owner is told who watches (a ``watchers``
frame to every socket on the session). Typing into someone else's session is an explicit
join: audited, shown to the owner, marked in the recording, and what the joiner types is
recorded as theirs. Leaving is audited too. Non-staff never reach another user's session
(``owned_session`` answers 404).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings

from autobot import audit
from autobot.errors import Forbidden, InvalidInput
from terminal.models import TerminalSession
from terminal.pty import Subscription

from . import live as registry
from .access import owned_session, require_terminal
from .sessions import Status, _live_here, _write, end_live, session_info, validate_size

OWNER, OBSERVER, JOINED = "owner", "observer", "joined"
MODES = {"watch", "join"}


def watchers(live: registry.LiveSession) -> list[dict]:
    """Who is on the session besides its owner, in the order they arrived."""
    return [
        {"user": a.user.get_username(), "role": a.role, "since": a.since}
        for a in live.attachments
        if a.role != OWNER
    ]


async def _set_status(live: registry.LiveSession, status: str) -> None:
    await TerminalSession.objects.filter(pk=live.id).exclude(status=Status.ENDED).aupdate(status=status)


def _announce(live: registry.LiveSession) -> None:
    live.broadcast({"type": "watchers", "watchers": watchers(live)})


async def _audit(live: registry.LiveSession, user, action: str, client_ip: str | None, **data) -> None:
    await audit.record(
        actor=user,
        action=action,
        target_type="terminal_session",
        target_id=str(live.id),
        data={"owner": live.owner.get_username(), **data},
        ip=client_ip,
    )


async def _mark(live: registry.LiveSession, text: str) -> None:
    await live.recorder.marker(text)
    # The owner's terminal shows it too, like a talk(1) banner.
    live.broadcast({"type": "notice", "detail": text})


class Attachment:
    """One socket on a live session: output subscription, events, input and resize."""

    def __init__(self, live: registry.LiveSession, sub: Subscription, on_event: Callable[[dict], None], *,
                 user, role: str, client_ip: str | None) -> None:
        self.live = live
        self.sub = sub
        self.user = user
        self.role = role
        self.client_ip = client_ip
        self.since = time.time()
        self._on_event = on_event
        live.listeners.add(on_event)
        live.attachments.append(self)

    async def read(self) -> str | None:
        return await self.sub.read()

    async def exit_code(self) -> int:
        return await self.live.proc.wait()

    async def input(self, text: str) -> None:
        if self.role == OBSERVER:
            raise Forbidden(
                "you are watching this session read-only; join it ({\"type\": \"join\"}) to type",
                code="observer_read_only",
            )
        await _write(self.live, text, user=self.user)

    async def resize(self, cols, rows) -> None:
        cols, rows = validate_size(cols, rows)
        if self.role == OBSERVER:
            return  # a watcher's window does not reshape the owner's terminal
        if (cols, rows) != (self.live.proc.cols, self.live.proc.rows):
            self.live.proc.resize(cols, rows)
            await self.live.recorder.resize(cols, rows)

    async def join(self) -> None:
        if self.role == OWNER:
            raise InvalidInput("this is your own session", code="own_session")
        if self.role == JOINED:
            return
        self.role = JOINED
        name = self.user.get_username()
        await _audit(self.live, self.user, "terminal.session_join", self.client_ip)
        await _mark(self.live, f"{name} joined the session and may type")
        _announce(self.live)

    async def leave(self) -> None:
        if self.role != JOINED:
            return
        self.role = OBSERVER
        await _audit(self.live, self.user, "terminal.session_leave", self.client_ip)
        await _mark(self.live, f"{self.user.get_username()} left the session")
        _announce(self.live)

    async def detach(self) -> None:
        live = self.live
        self.sub.close()
        if self in live.attachments:
            live.attachments.remove(self)
        if self._on_event in live.listeners:
            live.listeners.discard(self._on_event)
            live.attached -= 1
        if self.role == JOINED:
            await self.leave()
        if self.role == OBSERVER:
            await _audit(live, self.user, "terminal.session_unwatch", self.client_ip)
            _announce(live)
        if live.attached == 0 and live.ending is None:
            live.schedule_grace(settings.TERMINAL_RECONNECT_SECONDS, lambda: end_live(live, "detached"))
            live.spawn_task(_set_status(live, Status.DETACHED), f"terminal {live.id} status")


async def session_attach(
    *, user, session_id, on_event: Callable[[dict], None], client_ip: str | None = None, mode: str | None = None
) -> tuple[Attachment, dict]:
    """Attach a socket: recent output is replayed first. Returns the attachment and session info
    (with ``role`` and ``watchers``). Staff on someone else's session watch; ``mode="join"``
    joins at once. A session another worker runs is reached through ``relay``."""
    await require_terminal(user)
    if mode is not None and mode not in MODES:
        raise InvalidInput(f"unknown mode {mode!r}; use watch or join", code="invalid_mode")
    session = await owned_session(user=user, session_id=session_id)
    live = await _live_here(session)
    if live is None:  # another worker runs it
        from . import relay

        attachment = relay.RemoteAttachment(session, on_event)
        extra = await attachment.start(user=user, mode=mode, client_ip=client_ip)
        return attachment, {**session_info(session), "status": Status.RUNNING, **extra}
    attachment = await attach_local(live, user=user, own=session.owner_id == user.pk, on_event=on_event,
                                    client_ip=client_ip, mode=mode)
    session.status = Status.RUNNING
    return attachment, {**session_info(session), "role": attachment.role, "watchers": watchers(live)}


async def attach_local(live: registry.LiveSession, *, user, own: bool, on_event: Callable[[dict], None],
                       client_ip: str | None, mode: str | None) -> Attachment:
    """A socket on a session this process runs: here, or on another worker through the relay."""
    live.cancel_grace()
    live.attached += 1
    live.last_attach = time.monotonic()
    attachment = Attachment(live, live.proc.subscribe(replay=True), on_event, user=user,
                            role=OWNER if own else OBSERVER, client_ip=client_ip)
    if not own:
        await _audit(live, user, "terminal.session_watch", client_ip)
        await _mark(live, f"{user.get_username()} is watching")
        _announce(live)
    if mode == "join" and not own:
        await attachment.join()
    live.spawn_task(_set_status(live, Status.RUNNING), f"terminal {live.id} status")
    return attachment


async def input_by_staff(live: registry.LiveSession, user, client_ip: str | None) -> None:
    """REST input into someone else's session is a join too: audited and marked each time."""
    await _audit(live, user, "terminal.session_join", client_ip, via="api")
    await _mark(live, f"{user.get_username()} typed into the session (API)")
