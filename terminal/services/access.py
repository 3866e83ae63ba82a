"""Who may use the terminal, at which level, in which folder."""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

from autobot.errors import Forbidden, InvalidInput, NotFound, Unauthorized
from files import services as files_services
from terminal.models import TerminalSession
from terminal.policy import Level, can_set_level


async def require_terminal(user) -> None:
    """The terminal is remote code execution: staff, or the terminal.use_terminal permission."""
    if user is None or not user.is_authenticated:
        raise Unauthorized("log in to use the terminal", code="not_authenticated")
    if not user.is_active:
        raise Forbidden("this account is disabled", code="terminal_forbidden")
    if user.is_staff or await user.ahas_perm("terminal.use_terminal"):
        return
    raise Forbidden("you do not have permission to use the terminal", code="terminal_forbidden")


async def session_access(*, user, session_id) -> TerminalSession:
    """What attaching a socket to a session takes, and keeps taking while it is attached: the
    terminal, and the session being the user's (or the user staff)."""
    await require_terminal(user)
    return await owned_session(user=user, session_id=session_id)


def parse_level(value: str | Level) -> Level:
    try:
        return Level(str(value).upper())
    except ValueError:
        names = ", ".join(level.value for level in Level)
        raise InvalidInput(f"unknown security level {value!r}; use one of {names}", code="invalid_level") from None


def check_level(*, user, current: Level | None, requested: Level) -> None:
    if not can_set_level(current=current, requested=requested, is_staff=user.is_staff):
        if current is None:
            detail = f"you may not use the {requested} level; non-staff users are limited to RESTRICTED"
        else:
            detail = f"you may not change this session from {current} to {requested}: only staff may loosen a level"
        raise Forbidden(detail, code="level_not_allowed")


def stricter(a: Level, b: Level) -> Level:
    return a if a.strictness >= b.strictness else b


def parse_session_id(value) -> uuid.UUID:
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except ValueError:
        raise NotFound(f"terminal session {value} not found", code="session_not_found") from None


async def owned_session(*, user, session_id) -> TerminalSession:
    """The session if ``user`` owns it (or is staff). Others get the same 404 as a missing one."""
    sid = parse_session_id(session_id)
    try:
        session = await TerminalSession.objects.select_related("owner").aget(id=sid)
    except TerminalSession.DoesNotExist:
        session = None
    if session is None or (session.owner_id != user.pk and not user.is_staff):
        raise NotFound(f"terminal session {sid} not found", code="session_not_found")
    return session


async def home_for(user) -> str:
    """The user's files area (created on first use): every session's home and starting folder."""
    root, _area = await files_services.area_root(user=user)
    return root


def _resolve(root: str, cwd: str) -> str:
    path = Path(cwd) if os.path.isabs(cwd) else Path(root) / cwd
    return os.path.realpath(path)


async def working_dir(*, user, cwd: str | None, level: Level, default: str | None = None) -> str:
    """Where a command runs. RESTRICTED (and every non-staff user) stays inside the files area."""
    root = await home_for(user)
    if not cwd:
        return default or root
    resolved = await asyncio.to_thread(_resolve, root, cwd)
    confined = level == Level.RESTRICTED or not user.is_staff
    if confined and resolved != root and not resolved.startswith(root.rstrip("/") + "/"):
        raise Forbidden("the working directory must be inside your files area", code="cwd_forbidden")
    if not await asyncio.to_thread(os.path.isdir, resolved):
        raise InvalidInput(f"working directory {cwd!r} does not exist", code="invalid_cwd")
    return resolved
