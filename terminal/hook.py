"""The server end of the shell hook (see ``terminal/bin/autobot.bashrc``).

Each terminal's bash inherits one end of a Unix socketpair on a numbered fd; the
server keeps the other end and answers the hook's requests with verdicts. The
channel is private by construction (no path, no port, nothing to connect to)
and every request carries a per-session secret that only the shell's memory
holds; the kernel says which process wrote each line (``terminal/hooksocket.py``), and on the
main channel only the shell's own count. Knows nothing of Django: ``decide`` and ``notify``
callbacks do the rest.

Wire format, one request per line, tab-separated, ``\\`` ``\\n`` ``\\t`` ``\\r``
escaped::

    secret  nonce  kind  history-number  A  B

kinds: ``line`` (A = the whole history line, B = the first simple command),
``cmd`` (A = a simple command), ``done`` (A = the line's exit status; from the prompt, B = ``1``
while the hook is still in place).
Answers to ``line``/``cmd``: ``nonce  allow|block|stop  generation  message``; ``stop`` is a
"block" that also ends the line: the operator stopped it (terminal/services/typed.py), and the
shell raises SIGINT on itself (``__autobot_stop``), as Ctrl-C at the shell would. A ``done`` from the
prompt carries a nonce of its own and is answered ``nonce  done  0`` once the shell may read
its next line (after the operator's stop, once the terminal has acted on the Ctrl-C:
terminal/services/typed.py); one with nonce ``-`` (a line of a paste ending) is not. Only the
interactive shell itself reads this channel. The server may also write a line of its own
(``nudge``, nonce ``-``): a command the shell allowed before is then asked about again.

Subshells (``( … )``, ``{ …; } &``, coprocs, pipelines) may run at the same time as
the shell and as each other, so they use a second socketpair (``AUTOBOT_HOOK_SUB_FD``):
``sline`` requests (A = their line, B = the command they are about to run) and ``scmd``
requests (A = a simple command they are about to run, once their line is allowed) whose nonce
is one character, answered with one
byte — that character for "allow", ``!`` for "block", and for "stop" the punctuation mark
the nonce's place in ``NONCES`` picks from ``STOPS`` (the subshell then ends itself with SIGINT).
Readers of one socket can steal
each other's bytes; a stolen "allow" only lets a subshell run when it is its own nonce
character (otherwise it counts as "block"), a stolen "stop" ends one only when it is its own
nonce's mark (otherwise "block" too), and a subshell whose answer was stolen
times out and skips its command (an "allow" or "stop" later than ``answer_within`` is sent
as "block", so it never lets another run, nor ends one). The interactive shell never reads the subshells'
channel, so a subshell (a blocked ``coproc``) never costs the next line its verdict.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import re
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path

from terminal.hooksocket import Endpoint, pass_credentials

logger = logging.getLogger(__name__)

RC_PATH = Path(__file__).resolve().parent / "bin" / "autobot.bashrc"
MAX_REQUEST_BYTES = 1024 * 1024
KINDS = {"line", "cmd", "sline", "scmd", "done"}
SUBSHELL_KINDS = {"sline", "scmd"}  # answered with one byte on the subshells' channel
# A subshell's nonces, and its "stop" answers (as __autobot_nonces, __autobot_stops in the rc file).
NONCES = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
STOPS = "#$%&()*+,-./:;<=>?@[]^_{|}~"
_UNESCAPES = {"\\": "\\", "n": "\n", "t": "\t", "r": "\r"}
_ESCAPED = re.compile(r"\\(.)", re.S)


@dataclass(frozen=True)
class HookRequest:
    kind: str
    line: str = ""  # the whole command line (line/sline), "" when unknown
    command: str = ""  # the simple command bash is about to run (line/cmd)
    history_number: int = 0
    exit_status: int | None = None  # done
    prompt: bool = False  # done from the prompt: the shell waits for the answer before reading a line
    # done from the prompt: the DEBUG trap still runs (it ran for the prompt) and can skip commands
    hooked: bool = True
    pid: int | None = None  # the process that wrote it, as the kernel says (None: not known)


@dataclass(frozen=True)
class HookReply:
    allow: bool
    message: str = ""
    generation: int = 0
    stop: bool = False  # not allowed, and the shell (or subshell) ends the line: the operator's stop


def stop_mark(nonce: str) -> bytes:
    """A subshell's answer "stop" to the request with this one-character nonce."""
    return STOPS[NONCES.index(nonce) % len(STOPS)].encode()


Decide = Callable[[HookRequest], Awaitable[HookReply]]
# Gets the request and ``go_on``, which answers a prompt's ``done`` (called at the latest when
# the callback returns).
Notify = Callable[[HookRequest, Callable[[], None]], Awaitable[None]]


def unescape(text: str) -> str:
    return _ESCAPED.sub(lambda m: _UNESCAPES.get(m.group(1), m.group(1)), text)


def _one_line(text: str) -> str:
    # The answer is one tab-separated line; the message must not break it.
    return " ".join(text.replace("\t", " ").splitlines())[:500]


def parse_request(raw: bytes, secret: str) -> tuple[str, HookRequest] | None:
    """(nonce, request) from one raw line, or None when it is not a genuine request."""
    fields = raw.rstrip(b"\n").decode("utf-8", errors="replace").split("\t")
    if len(fields) != 6:
        return None
    given, nonce, kind, number, a, b = fields
    if not hmac.compare_digest(given.encode(), secret.encode()) or kind not in KINDS:
        return None
    history_number = int(number) if number.isdigit() else 0
    if kind == "done":
        status = int(a) if a.isdigit() else None
        prompt = nonce != "-"
        return nonce, HookRequest(kind, history_number=history_number, exit_status=status, prompt=prompt,
                                  hooked=not prompt or b == "1")
    if kind in ("cmd", "scmd"):
        return nonce, HookRequest(kind, command=unescape(a), history_number=history_number)
    return nonce, HookRequest(kind, line=unescape(a), command=unescape(b), history_number=history_number)


class HookChannel:
    """One session's verdict channels. ``child_fds`` go to bash (``pass_fds``)."""

    def __init__(self, *, decide: Decide, notify: Notify | None = None,
                 spawn: Callable[..., asyncio.Task] = asyncio.create_task,
                 shell_pid: Callable[[], int | None] | None = None, answer_within: float = 7.5) -> None:
        """`spawn` starts the tasks that serve bash's requests: the server passes one that keeps
        the tasks' sync work off the starting request's thread context (autobot.lanes).
        `shell_pid` gives the shell's pid: then only the shell itself may ask about its lines and
        report its prompt (see ``_from_the_shell``). A subshell's "allow" later than
        ``answer_within`` seconds after its request was read is sent as "block" (the server
        passes the shell's wait less a margin for the time the request spent in the socket: the
        subshells' requests are decided one after another, so one slow decision, a record
        waiting for the database, delays those behind it)."""
        self.secret = secrets.token_hex(16)
        self._spawn = spawn
        self._decide = decide
        self._notify = notify
        self._shell_pid = shell_pid
        self._answer_within = answer_within
        self._shell: int | None = None
        self._server_sock, self._child_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server_sub, self._child_sub = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        for sock in (self._server_sock, self._server_sub):
            pass_credentials(sock)
        self.fd_numbers = (self._child_sock.fileno(), self._child_sub.fileno())  # as the shell knows them
        self._tasks: list[asyncio.Task] = []
        self._writers: list[Endpoint] = []
        self.forged = 0

    @property
    def child_fds(self) -> list[int]:
        return list(self.fd_numbers)

    def env(self) -> dict[str, str]:
        return {"AUTOBOT_HOOK_FD": str(self.fd_numbers[0]), "AUTOBOT_HOOK_SUB_FD": str(self.fd_numbers[1])}

    async def start(self) -> None:
        """Call once bash is spawned: hands over the secret and serves requests."""
        # Our copies of the child's ends must go, or we would never see EOF.
        self._child_sock.close()
        self._child_sub.close()
        for sock, name in ((self._server_sock, "terminal-hook"), (self._server_sub, "terminal-hook-sub")):
            end = Endpoint(sock, limit=MAX_REQUEST_BYTES)
            self._writers.append(end)
            self._tasks.append(self._spawn(self._serve(end), name=name))
        self._writers[0].write(f"{self.secret}\n".encode())

    async def _serve(self, end: Endpoint) -> None:
        # Until bash is gone (its end closed or reset; an answer written after that goes nowhere).
        while (got := await end.readline()) is not None:
            raw, pid, received = got
            if raw is None:  # too long to assess: dropped, and "block" to whoever waits
                # A subshell reads one byte: a whole line would leave bytes that later subshells
                # read as their answers (one whose nonce matched would run).
                main = end is self._writers[0]
                end.write(b"?\tblock\t0\tautobot: command too long to check; skipped\n" if main else b"!")
            else:
                await self._handle(raw, end, pid, received)

    @property
    def shell(self) -> int | None:
        """The shell's pid, once known (with ``shell_pid``)."""
        if self._shell is None and self._shell_pid is not None:
            self._shell = self._shell_pid()
        return self._shell

    def _from_the_shell(self, request: HookRequest, pid: int | None) -> bool:
        """On the main channel only the shell itself asks about its lines and commands and reports
        its prompt (subshells ask on theirs; they report here only the end of a pasted line, which
        settles nothing that matters). A program the shell runs inherits the channel, and, handed
        the secret, could otherwise report a prompt that never came or a line that never ran."""
        if self._shell_pid is None or (request.kind == "done" and not request.prompt):
            return True
        return pid is not None and pid == self.shell  # known once the shell runs; an exec keeps it

    async def _handle(self, raw: bytes, writer: Endpoint, pid: int | None = None,
                      received: float | None = None) -> None:
        parsed = parse_request(raw, self.secret)
        if parsed is None:
            self.forged += 1
            logger.warning("terminal hook: ignored a request without the session secret")
            return
        nonce, request = parsed
        request = replace(request, pid=pid)
        if writer is self._writers[0] and not self._from_the_shell(request, pid):
            self.forged += 1
            logger.warning("terminal hook: ignored a %s request from process %s, not the shell", request.kind, pid)
            return
        if request.kind == "done":
            await self._done(nonce, request, writer)
            return
        try:
            reply = await self._decide(request)
        except Exception:  # fail closed, and keep serving
            logger.exception("terminal hook: deciding failed")
            reply = HookReply(allow=False, message="autobot: the server could not check this command; skipped")
        if request.kind in SUBSHELL_KINDS:
            # A subshell that gave up waiting (AUTOBOT_TERMINAL_HOOK_TIMEOUT) skipped its command; a
            # late "allow" would be read by another subshell, which takes it as its own when the
            # nonce characters match (1 in 62). So a late answer is always "block".
            late = received is not None and time.monotonic() - received > self._answer_within
            timely = not late and len(nonce) == 1 and nonce in NONCES
            if reply.allow and timely:
                writer.write(nonce.encode())
            else:
                writer.write(stop_mark(nonce) if reply.stop and timely else b"!")
            return
        verdict = "allow" if reply.allow else "stop" if reply.stop else "block"
        writer.write(f"{nonce}\t{verdict}\t{reply.generation}\t{_one_line(reply.message)}\n".encode())

    async def _done(self, nonce: str, request: HookRequest, writer: Endpoint) -> None:
        answered = False

        def go_on() -> None:
            nonlocal answered
            if request.prompt and not answered:
                answered = True
                writer.write(f"{_one_line(nonce)[:40]}\tdone\t0\t\n".encode())

        try:
            if self._notify is not None:
                await self._notify(request, go_on)
        finally:
            go_on()

    def nudge(self) -> None:
        """Make the shell ask about its next command even when it allowed the same text before:
        it keeps those verdicts, and asks only when something is waiting on this channel. The
        line reads to it as a stale answer, which it skips (see autobot.bashrc)."""
        if self._writers and not self._writers[0].is_closing():
            self._writers[0].write(b"-\tstale\t0\t\n")

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for writer in self._writers:
            writer.close()
        for sock in (self._server_sock, self._server_sub, self._child_sock, self._child_sub):
            sock.close()


def bash_argv() -> list[str]:
    return ["bash", "--noprofile", "--rcfile", str(RC_PATH), "-i"]
