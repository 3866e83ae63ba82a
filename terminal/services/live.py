"""The live side of a terminal session: its PTY, hook channel, recorder and timers.

Live sessions belong to the server process that spawned them (see docs/deployment.md);
this module keeps them in a per-process registry. Only the services use it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from autobot.lanes import spawn
from autobot.workers import WORKER_ID
from terminal.hook import HookChannel
from terminal.policy import Level
from terminal.pty import PtyProcess, Subscription
from terminal.recording import Recorder

log = logging.getLogger("terminal")

HOST_ID = WORKER_ID

Listener = Callable[[dict], None]
# How long a prompt's report waits for the terminal to act on a stop's Ctrl-C (it reports that
# at once unless starved: a reader paused by a slow subscriber).
INTERRUPT_SECONDS = 2.0


@dataclass
class LineStop:
    """The operator stopped the line the shell runs: until the shell is back at its prompt (the
    hook's ``done``, which sets ``over``), every further command of the line is refused with
    ``reason`` (services.commands.hook_decide), recorded as the stopped line's (its actor and
    correlation id: the refusals belong to the trail of what typed it). The refusal is a "stop":
    the shell, or the subshell that asked, ends the line there (autobot.bashrc __autobot_stop)."""

    reason: str
    actor: str = ""
    correlation_id: str = ""
    over: asyncio.Event = field(default_factory=asyncio.Event)
    # The Ctrl-Cs typed for it (terminal.pty.PtyProcess.interrupt), each set once the terminal
    # has acted on it: only a prompt after that may end the stop.
    interrupts: list[asyncio.Future] = field(default_factory=list)
    # The stop refused a command: the line was cut short (its exit status is recorded as 130).
    refused: bool = False
    refusals: int = 0  # how many (services.commands._unstoppable past MAX_STOP_REFUSALS)

    async def interrupts_acted(self, seconds: float) -> None:
        """Wait (at most ``seconds``) until the terminal has acted on every Ctrl-C typed for
        this stop, those typed meanwhile included."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                while pending := [acted for acted in self.interrupts if not acted.done()]:
                    await asyncio.wait(pending)


@dataclass
class LiveSession:
    id: uuid.UUID
    owner: Any  # the user object, for audit records
    level: Level
    proc: PtyProcess
    hook: HookChannel
    recorder: Recorder
    client_ip: str | None = None
    launch: Any = None  # confine.Launch: released (PID cgroup removed) once the shell is gone
    generation: int = 1  # bumped when the level changes, so the hook drops its verdict cache
    attached: int = 0
    listeners: set[Listener] = field(default_factory=set)
    attachments: list = field(default_factory=list)  # watch.Attachment: the owner, observers, joiners
    typist: Any = None  # who sent the latest input: the line that runs next is theirs
    tasks: set[asyncio.Task] = field(default_factory=set)
    # Those of ``tasks`` that run until cancelled (the relay's reader, a remote socket's pings):
    # ending the session does not wait for them.
    endless: set[asyncio.Task] = field(default_factory=set)
    recorded_lines: set[int] = field(default_factory=set)  # history numbers with a record already
    current_record_id: int | None = None
    # Lines recorded but not finished yet: history number -> record id (a paste runs several
    # lines before the next prompt; each one's exit status finds its own record).
    open_records: dict[int, int] = field(default_factory=dict)
    typed: Any = None  # the line being typed for the operator (services.typed.TypedLine)
    # The operator's lines (services.typed.TypedLine) by history number, and those that ended
    # before they asked anything by their text: what they left running is held to what they were
    # cleared for (services.clearance).
    clearances: dict[int, Any] = field(default_factory=dict)
    unclaimed: dict[str, Any] = field(default_factory=dict)
    # The operator's line the shell itself runs, until someone else's line starts.
    shell_line: Any = None
    person_lines: dict[int, bool] = field(default_factory=dict)  # history numbers of people's lines
    # When the shell started running each operator's line and when it was back at its prompt
    # (clock ticks since boot, as /proc gives a process's start time) -> the line, or None.
    timeline: list[tuple[int, Any]] = field(default_factory=list)
    # Subshells by (pid, start time) -> the operator's line they are held to (None: a person's).
    subshells: dict[tuple[int, int], Any] = field(default_factory=dict)
    # Set while the shell waits at its prompt (reported, and answered), cleared once it runs a
    # line: the operator types only then, so the line reaches the shell's readline, not a program.
    at_prompt: asyncio.Event = field(default_factory=asyncio.Event)
    # The hook reported the first prompt: its rc file ran whole. Until then typed signal keys are
    # dropped (sessions._write), since a Ctrl-C before the rc file's `trap '' INT` would make bash
    # abandon the file and run without the hook.
    prompted: bool = False
    stopping: LineStop | None = None  # the operator stopped the running line (services.typed.line_stop)
    ending: asyncio.Task | None = None
    ended: asyncio.Event = field(default_factory=asyncio.Event)  # set once everything is closed and saved
    _grace: asyncio.TimerHandle | None = None
    grace_ends: float | None = None  # wall-clock time the detached grace runs out, for the session list
    _idle: asyncio.TimerHandle | None = None
    last_attach: float = field(default_factory=time.monotonic)

    def broadcast(self, event: dict) -> None:
        """Hand an event (blocked, session, exit) to every attached socket."""
        for listener in list(self.listeners):
            listener(event)

    def spawn_task(self, coro: Awaitable, name: str, *, endless: bool = False) -> asyncio.Task:
        """A task of the session's: ending the session waits for it (``endless``: cancels it)."""
        task = spawn(coro, name=name)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        if endless:
            self.endless.add(task)
            task.add_done_callback(self.endless.discard)
        return task

    def cancel_timers(self) -> None:
        for handle in (self._grace, self._idle):
            if handle is not None:
                handle.cancel()
        self._grace = self._idle = None

    def schedule_grace(self, seconds: float, on_expiry: Callable[[], None]) -> None:
        if self._grace is not None:
            self._grace.cancel()
        self._grace = asyncio.get_running_loop().call_later(seconds, on_expiry)
        self.grace_ends = time.time() + seconds

    def cancel_grace(self) -> None:
        if self._grace is not None:
            self._grace.cancel()
            self._grace = None
        self.grace_ends = None

    def schedule_idle_check(self, seconds: float, check: Callable[[], None]) -> None:
        self._idle = asyncio.get_running_loop().call_later(seconds, check)

    def idle_for(self) -> float:
        return time.monotonic() - max(self.proc.last_activity, self.last_attach)


@dataclass
class Opening:
    """A session whose shell is starting. A close that comes meanwhile is noted here (the start
    then ends the session rather than hand it out); ``done`` is set once the start is over."""

    close_reason: str | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def close(self, reason: str) -> None:
        self.close_reason = self.close_reason or reason


_live: dict[uuid.UUID, LiveSession] = {}
# Sessions whose row exists (or is being written) while their shell starts: not live yet, not
# lost either (a concurrent request of the same user must not mark them server_gone).
_opening: dict[uuid.UUID, Opening] = {}


def get(session_id: uuid.UUID) -> LiveSession | None:
    return _live.get(session_id)


def known(session_id: uuid.UUID) -> bool:
    """Whether this process runs the session or is starting it."""
    return session_id in _live or session_id in _opening


def starting(session_id: uuid.UUID) -> Opening | None:
    """The session's start, while its shell is starting in this process."""
    return _opening.get(session_id)


def all_starting() -> list[Opening]:
    return list(_opening.values())


@contextlib.contextmanager
def opening(session_id: uuid.UUID):
    state = _opening[session_id] = Opening()
    try:
        yield state
    finally:
        _opening.pop(session_id, None)
        state.done.set()


def add(live: LiveSession) -> None:
    _live[live.id] = live


def remove(session_id: uuid.UUID) -> None:
    _live.pop(session_id, None)


def all_sessions() -> list[LiveSession]:
    return list(_live.values())


async def pump_output(live: LiveSession, sub: Subscription) -> None:
    """Feed the recorder; waits when the disk is slow (the PTY then pauses)."""
    while (text := await sub.read()) is not None:
        await live.recorder.output(text)


async def close_quietly(live: LiveSession) -> None:
    with contextlib.suppress(Exception):
        await live.hook.close()
    with contextlib.suppress(Exception):
        await live.recorder.close()
