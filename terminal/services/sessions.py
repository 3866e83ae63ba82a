"""Terminal sessions: open, attach, type, resize, signal, change level, close."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal
import uuid
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from autobot import audit
from autobot.caps import CapReached, cap_reserve
from autobot.errors import AppError, Conflict, InvalidInput, LimitExceeded, NotFound, RateLimited, Unavailable
from autobot.lanes import spawn
from autobot.supervise import cancel
from autobot.workers import single_process, worker_gone
from terminal.hook import HookChannel
from terminal.models import CommandRecord, TerminalSession
from terminal.policy import Level
from terminal.pty import MAX_COLS, MAX_ROWS, InputOverflow, PtyClosed, PtyOptions, PtyProcess
from terminal.recording import Recorder

from . import live as registry
from . import relay
from .access import check_level, home_for, owned_session, parse_level, require_terminal
from .commands import command_env, hook_decide, hook_done
from .confine import launch_check, launch_for

log = logging.getLogger("terminal")

SIGNALS = {name: getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGKILL", "SIGSTOP", "SIGCONT")}
Status = TerminalSession.Status


def session_info(session: TerminalSession) -> dict:
    live = registry.get(session.pk)
    return {
        "id": str(session.pk),
        "title": session.title,
        "owner": session.owner.get_username(),
        "security_level": live.level.value if live else session.security_level,
        "status": session.status,
        "cwd": (live.proc.cwd() if live else None) or session.cwd,
        "cols": live.proc.cols if live else session.cols,
        "rows": live.proc.rows if live else session.rows,
        "created": session.created.isoformat(),
        "ended": session.ended.isoformat() if session.ended else None,
        "exit_code": session.exit_code,
        "end_reason": session.end_reason,
        "attached": live.attached if live else 0,
        "foreground": live.proc.foreground_command() if live else None,
        "sandboxed": bool(live.launch and live.launch.sandboxed) if live else None,
        "grace_ends": _grace_ends(live),
    }


def _grace_ends(live: registry.LiveSession | None) -> str | None:
    """When a detached session ends unless a socket reattaches (known to the owning worker)."""
    if live is None or live.grace_ends is None:
        return None
    return datetime.fromtimestamp(live.grace_ends, tz=UTC).isoformat()


def validate_size(cols, rows) -> tuple[int, int]:
    valid = all(isinstance(v, int) and not isinstance(v, bool) for v in (cols, rows))
    if not valid or not (1 <= cols <= MAX_COLS and 1 <= rows <= MAX_ROWS):
        raise InvalidInput(f"terminal size must be 1-{MAX_COLS} columns and 1-{MAX_ROWS} rows", code="invalid_size")
    return cols, rows


# ---- lifecycle ------------------------------------------------------------------------------


async def _mark_stale(user=None) -> int:
    """Rows left live by a server process that no longer runs (or lost by this one) end now:
    ``user``'s, or everyone's when None."""
    rows = TerminalSession.objects.exclude(status=Status.ENDED)
    if user is not None:
        rows = rows.filter(owner=user)
    ended = 0
    async for row in rows:
        ours = row.host == registry.HOST_ID
        if (ours and not registry.known(row.pk)) or worker_gone(row.host):
            ended += await mark_server_gone(row)
    return ended


async def mark_server_gone(session: TerminalSession) -> int:
    """The process that ran the session stopped (killed, restarted): the row ends, audited once."""
    changed = await TerminalSession.objects.filter(pk=session.pk).exclude(status=Status.ENDED).aupdate(
        status=Status.ENDED, ended=timezone.now(), end_reason="server_gone"
    )
    if changed:
        await audit.record(
            actor=None, action="terminal.session_end", target_type="terminal_session", target_id=str(session.pk),
            data={"reason": "server_gone", "host": session.host, "owner": session.owner_id},
        )
    return changed


async def sessions_reconcile() -> int:
    """Mark every session whose server process is gone as ended; returns how many."""
    return await _mark_stale()


async def session_open(
    *,
    user,
    title: str = "",
    security_level: str | None = None,
    cols: int = 80,
    rows: int = 24,
    client_ip: str | None = None,
) -> TerminalSession:
    await require_terminal(user)
    level = parse_level(security_level) if security_level else Level.RESTRICTED
    check_level(user=user, current=None, requested=level)
    cols, rows = validate_size(cols, rows)
    await _mark_stale(user)
    await launch_check(user=user, level=level)
    home = await home_for(user)
    session_id = uuid.uuid4()
    with registry.opening(session_id) as start:  # from before its row exists until it is live (or ended)
        return await _open(user=user, session_id=session_id, level=level, home=home, title=title, cols=cols,
                           rows=rows, client_ip=client_ip, start=start)


async def _open(*, user, session_id, level: Level, home: str, title: str, cols: int, rows: int,
                client_ip, start: registry.Opening) -> TerminalSession:
    cap = settings.TERMINAL_MAX_SESSIONS_PER_USER
    fields = dict(
        id=session_id,
        owner=user,
        title=(title or "").strip()[:200] or f"{user.get_username()}'s shell",
        security_level=level.value,
        cwd=home,
        cols=cols,
        rows=rows,
        host=registry.HOST_ID,
        client_ip=client_ip,
    )
    try:  # counted and created in one locked transaction: concurrent opens cannot overshoot the cap
        session = await cap_reserve(owner=user, cap=cap,
                                    queryset=TerminalSession.objects.filter(owner=user).exclude(status=Status.ENDED),
                                    create=lambda: TerminalSession.objects.create(**fields))
    except CapReached as exc:
        raise RateLimited(
            f"you already have {exc.count} open terminal sessions (the limit is {cap}); close one first",
            code="session_limit",
        ) from None
    session.recording_path = str(Path(settings.TERMINAL_RECORDINGS_DIR) / f"{session.pk}.cast")
    try:
        live = await _spawn(session, user=user, level=level, home=home, client_ip=client_ip)
    except Exception as exc:
        log.exception("terminal: could not start a shell for session %s", session.pk)
        await TerminalSession.objects.filter(pk=session.pk).aupdate(
            status=Status.ENDED, ended=timezone.now(), end_reason="spawn_failed"
        )
        raise Unavailable("the shell could not be started", code="spawn_failed") from exc
    session.pid = live.proc.pid
    await session.asave(update_fields=["pid", "recording_path"])
    await audit.record(
        actor=user,
        action="terminal.session_open",
        target_type="terminal_session",
        target_id=str(session.pk),
        data={"level": level.value, "pid": live.proc.pid, "cwd": home},
        ip=client_ip,
    )
    if start.close_reason:  # closed (or the server stopping) while the shell started: it ends here
        await close_live(live, start.close_reason)
        await session.arefresh_from_db(fields=["status", "ended", "exit_code", "end_reason"])
    return session


async def _spawn(session: TerminalSession, *, user, level: Level, home: str, client_ip) -> registry.LiveSession:
    holder: list[registry.LiveSession] = []
    hook = HookChannel(decide=lambda req: hook_decide(holder[0], req),
                       notify=lambda req, go_on: hook_done(holder[0], req, go_on),
                       spawn=spawn, shell_pid=lambda: holder[0].proc.shell_pid(),
                       answer_within=max(1.0, settings.TERMINAL_HOOK_TIMEOUT - 2))
    env = {
        **command_env(user=user, home=home, level=level),
        **hook.env(),
        "AUTOBOT_SESSION_ID": str(session.pk),
        "AUTOBOT_HOOK_TIMEOUT": str(int(settings.TERMINAL_HOOK_TIMEOUT)),
    }
    try:
        launch = await launch_for(user=user, level=level, home=home, interactive=True)
    except BaseException:
        await hook.close()
        raise
    options = PtyOptions(
        argv=launch.argv,
        env=env,
        cwd=home,
        cols=session.cols,
        rows=session.rows,
        rlimits=launch.rlimits,
        pass_fds=[*hook.child_fds, *launch.pass_fds],
        cgroup_procs=launch.cgroup_procs,
        replay_chars=settings.TERMINAL_REPLAY_CHARS,
    )
    try:
        proc = await PtyProcess.spawn(options)
    except BaseException:
        await hook.close()
        await launch.release()
        raise
    launch.spawned()
    recorder = Recorder(
        Path(session.recording_path),
        cols=session.cols,
        rows=session.rows,
        title=session.title,
        max_bytes=settings.TERMINAL_RECORDING_MAX_BYTES,
    )
    live = registry.LiveSession(
        id=session.pk, owner=user, level=level, proc=proc, hook=hook, recorder=recorder, client_ip=client_ip,
        launch=launch,
    )
    holder.append(live)
    registry.add(live)
    try:
        await recorder.start()
        await hook.start()
    except BaseException:
        # The shell runs: it goes (its sandbox, its registry entry) as any session ends, the row
        # ended as spawn_failed; the caller tells the user (this error, not one of the teardown's,
        # which _end logs).
        with contextlib.suppress(Exception):
            await close_live(live, "spawn_failed")
        raise
    live.spawn_task(registry.pump_output(live, proc.subscribe()), f"terminal {session.pk} recorder")
    live.spawn_task(_end_on_exit(live), f"terminal {session.pk} exit")
    if not single_process():  # sockets and calls reaching other workers come through here
        live.spawn_task(relay.serve(live), f"terminal {session.pk} relay", endless=True)
    live.schedule_idle_check(settings.TERMINAL_IDLE_SECONDS, functools.partial(_check_idle, live))
    return live


def _check_idle(live: registry.LiveSession) -> None:
    limit = settings.TERMINAL_IDLE_SECONDS
    idle = live.idle_for()
    if idle >= limit:
        end_live(live, "idle")
    else:
        live.schedule_idle_check(limit - idle, functools.partial(_check_idle, live))


async def _end_on_exit(live: registry.LiveSession) -> None:
    await live.proc.wait()
    end_live(live, "exited")


def end_live(live: registry.LiveSession, reason: str) -> asyncio.Task:
    """End a live session once (idempotent); returns the task doing it.

    Await it only through ``asyncio.shield`` (``await close_live(...)``): awaiting the task itself
    ties it to the caller, and a caller that is cancelled (a client gone, the relay's reader that
    the teardown stops) would cancel the teardown halfway, and with it every other caller."""
    if live.ending is None:
        live.ending = spawn(_end(live, reason), name=f"terminal {live.id} end")
    return live.ending


async def close_live(live: registry.LiveSession, reason: str) -> None:
    """End a live session and wait until it has ended; cancelling the caller leaves the teardown
    running."""
    await asyncio.shield(end_live(live, reason))


async def _end(live: registry.LiveSession, reason: str) -> None:
    current = asyncio.current_task()
    try:
        live.cancel_timers()
        code = await live.proc.terminate(grace=1.0)
        # The recorder drains what the shell wrote last, and a remote socket's pump sends the exit:
        # they stop by themselves (waited for, not cancelled: the recording keeps its last output).
        # The endless ones (the relay's reader) are cancelled at the end; waiting for them would
        # only wait out the timeout, or forever for one that waits for this task.
        finite = [t for t in live.tasks if t is not current and t not in live.endless]
        if finite:
            await asyncio.wait(finite, timeout=5)
        await registry.close_quietly(live)
        await live.launch.release()
        if reason == "exited" and live.launch.memory_exceeded:
            reason = "memory_limit"  # the kernel killed the sandbox's programs at its memory cap
        await TerminalSession.objects.filter(pk=live.id).aupdate(
            status=Status.ENDED, ended=timezone.now(), exit_code=code, end_reason=reason
        )
        await audit.record(
            actor=live.owner,
            action="terminal.session_end",
            target_type="terminal_session",
            target_id=str(live.id),
            data={"reason": reason, "exit_code": code},
            ip=live.client_ip,
        )
    except Exception:
        # Logged here: callers await through a shield, which drops the error of a cancelled one.
        # The row may still say running; out of the registry, the next list marks it lost.
        log.exception("terminal %s: ending the session failed", live.id)
        raise
    finally:
        # After the row has ended (when it could be): a close that finds the session gone finds
        # the row ended. Whatever failed, the session leaves the registry and its waiters wake.
        registry.remove(live.id)
        live.ended.set()
        # Last, and without waiting: a task cancelled here may be one that waits for this one.
        # Insisting (supervise.cancel): the relay's reader waits in redis-py, which can lose a
        # cancellation on Python 3.11.
        for task in list(live.tasks):
            if task is not current:
                cancel(task)


async def sessions_shutdown() -> None:
    """End every live session of this process (server shutdown, tests), and those starting."""
    starting = registry.all_starting()
    for start in starting:
        start.close("shutdown")
    if starting:  # each start ends its session once its shell is up
        await asyncio.gather(*(start.done.wait() for start in starting))
    closing = [close_live(live, "shutdown") for live in registry.all_sessions()]
    if closing:
        await asyncio.gather(*closing, return_exceptions=True)


async def _live_here(session: TerminalSession) -> registry.LiveSession | None:
    """The live session when this process runs it; None when another live process does (reach it
    through ``relay``); raises when it has ended."""
    live = registry.get(session.pk)
    if live is not None and live.ending is None:
        return live
    if session.status == Status.ENDED or live is not None or session.host == registry.HOST_ID:
        raise Conflict(f"terminal session {session.pk} has ended", code="session_ended")
    if worker_gone(session.host):
        await mark_server_gone(session)
        raise Conflict(f"terminal session {session.pk} ended: its server process stopped", code="session_lost")
    if single_process():
        raise Unavailable(
            f"terminal session {session.pk} runs in another server process ({session.host}), and without "
            "REDIS_URL processes cannot reach each other's terminals",
            code="session_elsewhere",
        )
    return None


async def session_reachable(*, user, session_id) -> bool:
    """Whether ``user``'s session is live and can be typed into from here: this process runs it,
    or another worker that still runs does (reached through ``relay``). False for a session that
    ended, was lost with its worker (marked so here), runs in a process out of reach (no Redis),
    or is not the user's."""
    try:
        session = await owned_session(user=user, session_id=session_id)
        await _live_here(session)
    except AppError:
        return False
    return True


# ---- reading and changing -------------------------------------------------------------------


async def session_list(*, user, status: str | None = None, owner: str | None = None):
    """The sessions ``user`` may see, newest first. A queryset."""
    await require_terminal(user)
    await _mark_stale(None if user.is_staff else user)  # staff see everyone's sessions: all are checked
    sessions = TerminalSession.objects.select_related("owner").order_by("-created")
    if not user.is_staff:
        sessions = sessions.filter(owner=user)
    elif owner:
        sessions = sessions.filter(owner__username=owner)
    if status == "live":
        sessions = sessions.exclude(status=Status.ENDED)
    elif status:
        if status not in Status.values:
            raise InvalidInput(
                f"unknown status {status!r}; use live, {', '.join(Status.values)}", code="invalid_status"
            )
        sessions = sessions.filter(status=status)
    return sessions


async def session_get(*, user, session_id) -> TerminalSession:
    await require_terminal(user)
    return await owned_session(user=user, session_id=session_id)


async def session_update(
    *, user, session_id, title: str | None = None, security_level: str | None = None, client_ip: str | None = None
) -> TerminalSession:
    await require_terminal(user)
    session = await owned_session(user=user, session_id=session_id)
    changes: dict = {}
    if title is not None:
        session.title = title.strip()[:200]
        changes["title"] = session.title
    if security_level is not None:
        requested = parse_level(security_level)
        current = parse_level(session.security_level)
        if requested != current:
            live = await _live_here(session)
            check_level(user=user, current=current, requested=requested)
            session.security_level = requested.value
            if live is not None:
                set_level(live, requested.value)
            else:
                await relay.call(session, "level", level=requested.value, info=session_info(session))
            changes["security_level"] = {"from": current.value, "to": requested.value}
    if changes:
        await session.asave(update_fields=["title", "security_level"])
        await audit.record(
            actor=user,
            action="terminal.session_update",
            target_type="terminal_session",
            target_id=str(session.pk),
            data=changes,
            ip=client_ip,
        )
        live = registry.get(session.pk)
        if live is not None:
            live.broadcast({"type": "session", **session_info(session)})
    return session


async def session_close(*, user, session_id, client_ip: str | None = None) -> TerminalSession:
    await require_terminal(user)
    session = await owned_session(user=user, session_id=session_id)
    start = registry.starting(session.pk)
    if start is not None:
        # Its shell is still starting here: the start ends the session once the shell is up
        # (handing out none); answered when it has.
        await _audit_close(user, session, client_ip, {"starting": True})
        start.close("closed")
        await start.done.wait()
    live = registry.get(session.pk)
    if live is not None:
        if start is None:
            await _audit_close(user, session, client_ip, {})
        await close_live(live, "closed")
    elif session.status == Status.ENDED:
        pass
    elif session.host == registry.HOST_ID:
        # It ended here since the row was read (a session leaves the registry once its row has
        # ended), or this process lost it: either way it is closed.
        row = await owned_session(user=user, session_id=session.pk)
        if row.status != Status.ENDED and not registry.known(session.pk):
            await mark_server_gone(session)
    elif await _live_here(session) is None:
        await _audit_close(user, session, client_ip, {"host": session.host})
        try:
            await relay.call(session, "close")
        except AppError as exc:  # it ended meanwhile (another close, its shell exited): closed all the same
            if exc.code != "session_ended":
                raise
    return await owned_session(user=user, session_id=session.pk)


async def _audit_close(user, session: TerminalSession, client_ip: str | None, data: dict) -> None:
    await audit.record(actor=user, action="terminal.session_close", target_type="terminal_session",
                       target_id=str(session.pk), data=data, ip=client_ip)


async def session_input(
    *, user, session_id, text: str, is_password: bool = False, client_ip: str | None = None
) -> None:
    await require_terminal(user)
    session = await owned_session(user=user, session_id=session_id)
    live = await _live_here(session)
    if session.owner_id != user.pk and live is not None:
        from .watch import input_by_staff  # watch builds on this module

        await input_by_staff(live, user, client_ip)
    if live is None:  # another worker runs it; it audits a staff member's input there
        await relay.call(session, "input", text=text, is_password=is_password, user_id=user.pk,
                         client_ip=client_ip)
    else:
        await _write(live, text, is_password=is_password, user=user)


# Ctrl-C, Ctrl-\ and Ctrl-Z: the keys the terminal turns into signals (its default settings, which
# nobody can have changed before the first prompt). Dropped until then: bash handles SIGINT before
# its rc file sets `trap '' INT`, and one landing there makes it abandon the file, hook and all.
_SIGNAL_KEYS = str.maketrans("", "", "\x03\x1c\x1a")


async def _write(live: registry.LiveSession, text: str, *, is_password: bool = False, user=None) -> None:
    if len(text.encode("utf-8", errors="replace")) > settings.TERMINAL_MAX_FRAME_BYTES:
        raise LimitExceeded(f"input is larger than {settings.TERMINAL_MAX_FRAME_BYTES} bytes", code="input_too_large")
    if not live.prompted:
        text = text.translate(_SIGNAL_KEYS)
    try:
        live.proc.write(text.encode("utf-8", errors="replace"))
        # Whoever typed last is who ran the line: a joiner's commands are recorded as theirs.
        live.typist = user or live.owner
    except PtyClosed:
        raise Conflict("the shell has exited", code="session_ended") from None
    except InputOverflow:
        raise RateLimited("the program is not reading its input; try again later", code="input_backlog") from None
    # Passwords never reach the recording, even with TERMINAL_RECORD_INPUT on.
    if settings.TERMINAL_RECORD_INPUT and not is_password:
        await live.recorder.input(text)


async def session_signal(*, user, session_id, signal_name: str, client_ip: str | None = None) -> dict:
    await require_terminal(user)
    sig = SIGNALS.get(str(signal_name).upper())
    if sig is None:
        raise InvalidInput(f"unknown signal {signal_name!r}; use one of {', '.join(SIGNALS)}", code="invalid_signal")
    session = await owned_session(user=user, session_id=session_id)
    live = await _live_here(session)
    result = signal_live(live, sig.name) if live is not None else await relay.call(session, "signal", signal=sig.name)
    await audit.record(
        actor=user,
        action="terminal.signal",
        target_type="terminal_session",
        target_id=str(session.pk),
        data=result,
        ip=client_ip,
    )
    return result


def signal_live(live: registry.LiveSession, signal_name: str) -> dict:
    """Signal the program running in the foreground. With the shell idle at its prompt there is
    none, and nothing is signalled (process_group None): a SIGKILL or SIGSTOP meant for a program
    must not end or freeze the shell itself (ending the session is DELETE)."""
    target = live.proc.foreground_command()
    pgrp = live.proc.signal_foreground(SIGNALS[signal_name]) if target is not None else None
    return {"signal": signal_name, "process_group": pgrp, "program": target}


def set_level(live: registry.LiveSession, level: str) -> None:
    live.level = parse_level(level)
    live.generation += 1  # the hook drops its verdict cache


async def resize_live(live: registry.LiveSession, cols, rows) -> None:
    cols, rows = validate_size(cols, rows)
    if (cols, rows) != (live.proc.cols, live.proc.rows):
        live.proc.resize(cols, rows)
        await live.recorder.resize(cols, rows)


async def session_history(*, user, session_id):
    """The session's command records, newest first. A queryset."""
    await require_terminal(user)
    session = await owned_session(user=user, session_id=session_id)
    return CommandRecord.objects.filter(session=session).order_by("-started", "-id")


async def session_recording(*, user, session_id) -> Path:
    await require_terminal(user)
    session = await owned_session(user=user, session_id=session_id)
    path = Path(session.recording_path) if session.recording_path else None
    if path is None or not await asyncio.to_thread(path.is_file):
        raise NotFound(f"terminal session {session.pk} has no recording", code="recording_not_found")
    return path
