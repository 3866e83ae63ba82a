"""Commands typed into a live terminal on someone's behalf (the chat's operator).

The line goes through the shell like keystrokes, so the hook rates, records and audits it as
it does a person's typing; the record is marked with who typed it (``actor``) and the chat
turn's ``correlation_id``. The caller gets the line's exit status (from the hook's ``done``)
and the terminal output it produced.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from autobot.errors import Conflict, InvalidInput
from terminal.pty import PtyError
from terminal.risk import Risk

from . import live as registry
from .access import owned_session, require_terminal
from .clearance import line_starts
from .commands import assess_text
from .sessions import _live_here, _write

log = logging.getLogger("terminal")
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-_]|\r")
DRAIN_SECONDS = 0.2  # output still in flight after the line finished
STOP_GRACE_SECONDS = 2.0  # after the Ctrl-C of a stop, before the program still running is killed
OPERATOR_STOPPED = "the operator stopped this line"  # why a cancelled line stops, unless its caller says
PROMPT_WAIT_SECONDS = 10.0  # for a shell still starting, or a line of someone else's to end


@dataclass
class TypedLine:
    """The line being typed for an actor; the hook fills it in (see commands.hook_decide)."""

    actor: str
    correlation_id: str
    command: str = ""
    # Its rating, which its caller cleared it for (approved, or allowed to run): nothing the line
    # runs may be rated above it (services.clearance).
    clearance: Risk = Risk.SAFE
    done: asyncio.Future = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    number: int | None = None  # its history number, once the shell asked about it (0: not in history)
    record_id: int | None = None
    blocked: bool = False
    reason: str | None = None
    risk: str | None = None
    refused: str | None = None  # why a later part of it was refused
    prompt_back: bool = False  # the prompt came back before its record was written
    prompt_status: int | None = None


async def command_type(*, user, session_id, command: str, actor: str, correlation_id: str = "",
                       timeout: float = 120.0,  # noqa: ASYNC109 - a budget, not a wrapper
                       on_output: Callable[[str], Awaitable[None]] | None = None, stop_reason: str = "",
                       clearance: str | None = None) -> dict:
    """Type one line into ``user``'s live session and wait for it to finish.

    Returns ``exit_code, output, blocked, reason, risk, record_id, timed_out``; ``on_output``
    gets the terminal's output as it comes. Cancelling the caller stops the line, all of it
    (the operator's stop: ``line_stop``), and what of it is refused says ``stop_reason`` (or
    OPERATOR_STOPPED). A session another worker runs is typed into there (``relay``).

    Nothing the line runs may be rated above its own rating, or ``clearance`` (a risk name: what
    the caller would run without asking anyway) when that is higher (services.clearance)."""
    await require_terminal(user)
    # Control characters would be keystrokes to readline (Ctrl-A, Tab…), editing the line into
    # something other than what the caller rated.
    if not command.strip() or any(ord(ch) < 32 or ord(ch) == 127 for ch in command):
        raise InvalidInput("the command must be one line without control characters", code="invalid_command")
    session = await owned_session(user=user, session_id=session_id)
    live = await _live_here(session)
    if live is None:  # another worker runs it: the line is typed there, through the same hook
        from . import relay

        return await relay.type_remote(session, command=command, actor=actor, correlation_id=correlation_id,
                                       timeout=timeout, on_output=on_output, stop_reason=stop_reason,
                                       clearance=clearance)
    return await type_live(live, command=command, actor=actor, correlation_id=correlation_id, timeout=timeout,
                           on_output=on_output, stop_reason=stop_reason, clearance=clearance)


async def type_live(live: registry.LiveSession, *, command: str, actor: str, correlation_id: str,
                    timeout: float,  # noqa: ASYNC109 - a budget, not a wrapper
                    on_output: Callable[[str], Awaitable[None]] | None, stop_reason: str = "",
                    clearance: str | None = None) -> dict:
    """``command_type`` on a session this process runs (checked by the caller)."""
    await _previous_stopped(live)
    rating = (await assess_text(command)).risk  # as its caller rated it (chat.tools.terminal)
    floor = Risk.__members__.get(str(clearance or "SAFE").upper(), Risk.SAFE)
    await _at_prompt(live, min(timeout, PROMPT_WAIT_SECONDS))
    if live.typed is not None:
        raise Conflict("another command is being typed into this terminal", code="terminal_busy")
    line = TypedLine(actor=actor, correlation_id=correlation_id, command=command, clearance=max(rating, floor))
    live.typed = line
    sub = live.proc.subscribe()
    chunks: list[str] = []
    reader = asyncio.create_task(_collect(sub, chunks, on_output))
    timed_out = False
    try:
        # Ctrl-U first: whatever the user left half-typed on the prompt is not run with it.
        line_starts(live, line)
        await _write(live, "\x15" + command + "\n")
        try:
            async with asyncio.timeout(timeout):
                exit_code = await asyncio.shield(line.done)
        except TimeoutError:
            timed_out, exit_code = True, None
            line_stop(live, f"the operator's line ran out of time ({timeout:g} s)", line)
    except asyncio.CancelledError:
        if not line.done.done():
            line_stop(live, stop_reason or OPERATOR_STOPPED, line)
        raise
    finally:
        live.typed = None
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(reader), DRAIN_SECONDS)
        finally:
            # A caller cancelled again meanwhile (supervise.cancel insists, as an A2A cancel does)
            # skips the drain, not this: the reader would stay subscribed to the terminal for its
            # life, passing every later line's output to the stopped line's watcher.
            sub.close()
            reader.cancel()
    # Whatever printed the hook's secret (`set`), the caller (a model) does not learn it.
    output = _clean("".join(chunks), command).replace(live.hook.secret, "[the hook's secret]")
    return {"exit_code": exit_code, "output": output,
            "blocked": line.blocked or line.refused is not None, "reason": line.reason or line.refused,
            "risk": line.risk, "record_id": line.record_id, "timed_out": timed_out}


async def _at_prompt(live: registry.LiveSession, seconds: float) -> None:
    """Wait until the shell waits at its prompt: typed while it runs something, the line would be
    that program's input (a REPL, a nested shell, ``cat``), which no hook rates."""
    if live.at_prompt.is_set():
        return
    try:
        async with asyncio.timeout(seconds):
            await live.at_prompt.wait()
    except TimeoutError:
        running = live.proc.foreground_command() or "a command"
        raise Conflict(f"{running} is running in this terminal; the operator types only at the shell's prompt",
                       code="terminal_busy") from None


def line_stop(live: registry.LiveSession, reason: str, line: TypedLine | None = None) -> None:
    """Stop the line the shell runs, all of it, and leave the shell at its prompt.

    Ctrl-C first, as a person would type it: the terminal sends SIGINT to the program in the
    foreground (bash then abandons the rest of a list such as ``a; b``), or to the shell itself
    between two commands, and drops what it has not read yet of the line. A program that ignores
    it (or reads the terminal raw) is killed after ``STOP_GRACE_SECONDS``. Whatever of the line
    would still run is refused by the hook until the prompt is back (``live.stopping``), the
    verdicts the shell keeps included (a new generation, and a nudge so it asks), and the refusal
    ends the line (a Ctrl-C lost to a program, or ignored, leaves no loop running). Only a prompt
    reported once the terminal has acted on the Ctrl-C ends the stop (commands.hook_done): one
    reported just before would let the next line reach readline while it still handles the
    interrupt, which throws away the characters it has read (``cho next`` for ``echo next``).
    What it refuses is recorded as ``line``'s (its actor and correlation id), when given."""
    if live.stopping is None:
        live.stopping = registry.LineStop(reason, actor=line.actor if line else "",
                                          correlation_id=line.correlation_id if line else "")
        live.generation += 1
        live.hook.nudge()
    # Not before the first prompt: the shell is still reading its rc file, a Ctrl-C there could
    # make it abandon the hook (see LiveSession.prompted), and no line of anyone's runs yet.
    with contextlib.suppress(PtyError):
        if live.prompted and (acted := live.proc.interrupt()) is not None:
            live.stopping.interrupts.append(acted)
    # Endless: a session ending meanwhile has no program left to kill, and need not wait.
    live.spawn_task(_kill_if_still_running(live, live.stopping), f"terminal {live.id} stop", endless=True)


async def _kill_if_still_running(live: registry.LiveSession, stop: registry.LineStop) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(STOP_GRACE_SECONDS):
            await stop.over.wait()
            return
    # Only a running program and the line's background jobs: the shell itself must survive a
    # stop. No await from the timeout to here: the stop still holds, no next line runs.
    if live.proc.foreground_command() is not None:
        live.proc.signal_foreground(signal.SIGKILL)
    live.proc.kill_jobs()


async def _previous_stopped(live: registry.LiveSession) -> None:
    """A line stopped a moment ago may still be ending (its program gets the grace to exit):
    the next line waits for the prompt rather than be refused as the rest of the stopped one."""
    if live.stopping is None:
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(live.stopping.over.wait(), STOP_GRACE_SECONDS * 2)
    if live.stopping is not None:
        raise Conflict("the previous line is still being stopped in this terminal", code="terminal_busy")


async def _collect(sub, chunks: list[str], on_output) -> None:
    while (text := await sub.read()) is not None:
        chunks.append(text)
        if on_output is not None:
            try:
                await on_output(_ANSI.sub("", text))
            except Exception:  # a watcher failing must not cost the caller the output
                log.warning("terminal: live output of a typed line could not be passed on", exc_info=True)


def _readline_redraw(raw: str) -> bool:
    """Whether the raw output's second line starts as readline starts a line (bracketed paste on)."""
    second = raw.split("\n", 2)[1:2]
    return bool(second) and second[0].lstrip("\r").startswith(_READLINE_STARTS)


_READLINE_STARTS = "\x1b[?2004h"


def _clean(raw: str, command: str) -> str:
    """The output without colours, the echoed command line and the next prompt."""
    lines = _ANSI.sub("", raw).split("\n")
    typed = command.strip()
    if lines and typed in lines[0]:
        lines = lines[1:]
        # Typed before readline took the terminal (at_prompt is reported from PROMPT_COMMAND, just
        # before; a busy machine may run the rest later), the line is echoed twice: by the terminal
        # as it arrives, then by readline after the prompt, which starts by switching bracketed
        # paste on: a first line of the command's own output that only looks like a prompt and the
        # command stays.
        if lines and lines[0].endswith(typed) and lines[0][:-len(typed)].endswith(("$ ", "# ")) \
                and _readline_redraw(raw):
            lines = lines[1:]
    if lines and not lines[-1].endswith("\n") and ("$ " in lines[-1] or "# " in lines[-1]):
        lines = lines[:-1]  # the prompt that came back
    return "\n".join(lines).strip("\n")
