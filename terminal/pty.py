"""A process on a pseudo-terminal, driven by the asyncio loop.

Knows nothing of Django or WebSockets (like terminado's manager): the terminal
services own the processes, consumers subscribe to their output.

- Output: ``loop.add_reader`` on the master fd, up to 64 KiB per wake-up, decoded
  with an incremental UTF-8 decoder (a character split across reads survives,
  invalid bytes become U+FFFD), coalesced for a few ms or 64 KiB, then handed to
  every ``Subscription`` and to a bounded replay buffer. A wake-up reads once on the
  loop; when that read came back full (a flood), the rest of the 64 KiB is read by a
  thread, one batch at a time (a PTY hands out ~4 KiB a read: 12-65 reads a batch,
  mostly kernel time, which no longer holds the loop; docs/performance.md, twelfth round).
- Backpressure: when a subscriber falls behind by more than its high-water mark
  the reader is paused, so a flooding program blocks in ``write`` instead of
  filling our memory.
- Input: non-blocking writes with a bounded queue (never blocks the loop).
- Ctrl-C: the master is in packet mode (TIOCPKT), so the kernel tells us when the terminal has
  acted on a Ctrl-C (signalled the foreground group, dropped the unread input): ``interrupt``.
- Exit: a pidfd tells the loop when the child exits (terminal.procs); ``terminate`` escalates
  SIGHUP → SIGTERM → SIGKILL; ``kill_jobs`` ends everything but the program itself.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import errno
import fcntl
import logging
import os
import resource
import select
import signal
import struct
import termios
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import ptyprocess

from terminal.procs import children, kill_tree, watch_exit

log = logging.getLogger(__name__)

READ_BYTES = 64 * 1024
COALESCE_BYTES = 64 * 1024
# A first read this large means more is waiting (a flood, not a keystroke's echo): the rest of
# the wake-up's reads go to a thread. Smaller output is read and delivered on the loop at once.
BATCH_AFTER_BYTES = 1024
MIN_COLS, MAX_COLS = 2, 1000
MIN_ROWS, MAX_ROWS = 1, 500


class PtyError(Exception):
    """Base for errors of this module."""


class PtyClosed(PtyError):
    """The process has exited; it takes no more input."""


class InputOverflow(PtyError):
    """Too much input is queued for a program that does not read it."""


@dataclass(frozen=True)
class PtyOptions:
    argv: Sequence[str]
    env: Mapping[str, str]
    cwd: str
    cols: int = 80
    rows: int = 24
    # resource -> (soft, hard), applied in the child before exec (RESTRICTED).
    rlimits: Mapping[int, tuple[int, int]] = field(default_factory=dict)
    # Extra fds the child inherits (the hook channel).
    pass_fds: Sequence[int] = ()
    # cgroup.procs files the child moves itself into before exec (process and memory caps).
    cgroup_procs: Sequence[str] = ()
    replay_chars: int = 256 * 1024
    coalesce_seconds: float = 0.004
    write_queue_bytes: int = 1024 * 1024
    subscriber_high_water: int = 1024 * 1024


def clamp_size(cols: int, rows: int) -> tuple[int, int]:
    return (min(max(int(cols), MIN_COLS), MAX_COLS), min(max(int(rows), MIN_ROWS), MAX_ROWS))


def _read(fd: int, want: int) -> bytes | None:
    """One read of up to ``want`` bytes of output (and the status byte of packet mode); b"" at
    EOF (EIO: every slave fd is closed), None when nothing is waiting."""
    try:
        return os.read(fd, want + 1)
    except BlockingIOError:
        return None
    except OSError as exc:
        if exc.errno not in (errno.EIO, errno.EBADF):
            raise
        return b""


@dataclass
class Batch:
    """What a thread read for the loop: the output (status bytes taken out), whether the kernel
    reported an input flush (Ctrl-C acted on), and whether the output ended (EOF/EIO)."""

    data: bytes = b""
    flushed: bool = False
    eof: bool = False


def _read_batch(fd: int, want: int, wait_seconds: float) -> Batch:
    """In a thread: reads until ``want`` bytes of output or EOF, waiting up to ``wait_seconds``
    (the coalescing time) for more when none is there, so that a flood comes back in full
    batches. Each read lets go of the GIL for the syscall, where a read's time goes. The fd
    stays open meanwhile: the loop closes it only once the batch is done (``_finish``)."""
    pieces: list[bytes] = []
    batch = Batch()
    deadline = time.monotonic() + wait_seconds
    waiter = select.poll()  # not select(): no limit on the fd's number
    waiter.register(fd, select.POLLIN)
    try:
        while want > 0:
            data = _read(fd, want)
            if data is None:
                left = deadline - time.monotonic()
                if left <= 0 or not waiter.poll(left * 1000):
                    break
                continue
            if not data:
                batch.eof = True
                break
            if len(data) > 1:
                pieces.append(data[1:])
                want -= len(data) - 1
            if data[0] & termios.TIOCPKT_FLUSHREAD:
                # Back to the loop at once: an interrupt() may be waiting for this report, and
                # a later read could mix it up with the next Ctrl-C's.
                batch.flushed = True
                break
    except OSError:  # unexpected (the fd gone): end the output as EIO would
        batch.eof = True
    batch.data = b"".join(pieces)
    return batch


# The threads that read floods (see _read_batch): their own, so that a batch's wait for more
# output never holds up other work handed to threads, nor the other way round.
READER_THREADS = 8
_READERS = ThreadPoolExecutor(max_workers=READER_THREADS, thread_name_prefix="pty-read")
# Batches submitted and not done. Past READER_THREADS a batch waits in the pool's queue, so none
# then waits for more output in a thread: a few terminals trickling output must not hold every
# reader for its coalescing time while other terminals' batches queue behind them.
_batches = 0
_batches_lock = threading.Lock()


def _batch_started() -> bool:
    """Count a batch in; whether a reader thread is free for it to wait for more output."""
    global _batches
    with _batches_lock:
        _batches += 1
        return _batches <= READER_THREADS


def _batch_ended() -> None:
    global _batches
    with _batches_lock:
        _batches -= 1


class Subscription:
    """One reader of a process's output: a WebSocket, the recorder, a test.

    ``await read()`` returns everything produced since the last call (so a slow
    reader gets fewer, larger chunks), or None once the process has exited and
    everything was read.
    """

    def __init__(self, proc: PtyProcess, high_water: int) -> None:
        self._proc = proc
        self._chunks: list[str] = []
        self.pending = 0
        self.high_water = high_water
        self._ready = asyncio.Event()
        self._ended = False

    def _push(self, text: str) -> None:
        self._chunks.append(text)
        self.pending += len(text)
        self._ready.set()

    def _end(self) -> None:
        self._ended = True
        self._ready.set()

    async def read(self) -> str | None:
        while not self._chunks:
            if self._ended:
                return None
            self._ready.clear()
            await self._ready.wait()
        text = "".join(self._chunks)
        self._chunks.clear()
        self.pending = 0
        self._proc._maybe_resume()
        return text

    def close(self) -> None:
        self._proc._unsubscribe(self)
        self._end()


def preexec(
    rlimits: Mapping[int, tuple[int, int]], pass_fds: Sequence[int] = (), cgroup_procs: Sequence[str] = ()
) -> Callable[[], None]:
    """The child's set-up before exec (shells on a PTY, and the non-interactive commands of
    terminal/services/commands.py): inherited fds, the session's cgroups, the rlimits.
    Runs in the forked child: keep it to plain syscalls."""
    def run() -> None:
        for fd in pass_fds:
            os.set_inheritable(fd, True)
        for procs in cgroup_procs:
            cg = os.open(procs, os.O_WRONLY)
            try:
                os.write(cg, b"0")
            finally:
                os.close(cg)
        for res, (soft, hard) in rlimits.items():
            resource.setrlimit(res, (soft, hard))

    return run


class PtyProcess:
    """A running program on a PTY. Create with ``await PtyProcess.spawn(options)``."""

    def __init__(self, proc: ptyprocess.PtyProcess, options: PtyOptions) -> None:
        self._proc = proc
        self.pid: int = proc.pid
        self.fd: int = proc.fd
        self.options = options
        self.cols, self.rows = clamp_size(options.cols, options.rows)
        self.exit_code: int | None = None
        self.started_at = time.monotonic()
        self.last_activity = self.started_at
        self._loop = asyncio.get_running_loop()
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._flush_handle: asyncio.TimerHandle | None = None
        self._replay: deque[str] = deque()
        self._replay_size = 0
        self._subs: list[Subscription] = []
        self._reading = False  # output wanted (not paused, not at EOF)
        self._watching = False  # the fd is registered with the loop
        self._batch: Future | None = None  # reads running in a thread
        self._flooding = False  # the last batch came back full
        self._finish_after_batch = False
        self._eof = False
        self._write_queue = bytearray()
        self._writing = False
        self._exited = self._loop.create_future()
        self._flush_waiters: list[asyncio.Future] = []
        os.set_blocking(self.fd, False)
        # Packet mode: each read starts with a status byte, alone when it reports a flush.
        fcntl.ioctl(self.fd, termios.TIOCPKT, struct.pack("i", 1))
        self._resume_reading()
        watch_exit(self.pid, self._finish)

    # ---- lifecycle -------------------------------------------------------------

    @classmethod
    async def spawn(cls, options: PtyOptions) -> PtyProcess:
        cols, rows = clamp_size(options.cols, options.rows)
        # fork + waiting for exec takes milliseconds in a large process: off the loop.
        proc = await asyncio.to_thread(
            ptyprocess.PtyProcess.spawn,
            list(options.argv),
            cwd=options.cwd,
            env=dict(options.env),
            dimensions=(rows, cols),
            preexec_fn=preexec(options.rlimits, options.pass_fds, options.cgroup_procs),
            pass_fds=tuple(options.pass_fds),
        )
        return cls(proc, options)

    @property
    def alive(self) -> bool:
        return not self._exited.done()

    async def wait(self) -> int:
        """Wait for the program to exit and its output to be delivered; return its code."""
        return await asyncio.shield(self._exited)


    def _reap(self) -> int | None:
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            return -1
        if pid == 0:
            return None
        return os.waitstatus_to_exitcode(status)

    def _finish(self) -> None:
        if self._batch is not None:  # a thread is reading the fd: finish once it is done
            self._finish_after_batch = True
            return
        code = self._reap()
        self.exit_code = -1 if code is None else code
        # Deliver what the program wrote last, then close the master: whatever is
        # still attached to the terminal gets SIGHUP from the kernel.
        self._drain_available()
        self._flush()
        self._pause_reading()
        self._close_fd()
        self._input_flushed()  # nothing more will be reported
        for sub in list(self._subs):
            sub._end()
        if not self._exited.done():
            self._exited.set_result(self.exit_code)

    def _close_fd(self) -> None:
        if self._writing:
            self._loop.remove_writer(self.fd)
            self._writing = False
        if not self._proc.closed:
            # Close ptyprocess's file object ourselves: its close() sleeps and waits.
            self._proc.fileobj.close()
            self._proc.closed = True

    def _signal_all(self, sig: int) -> None:
        for target in (self._foreground_pgrp(), self.pid):
            if target is None:
                continue
            try:
                os.killpg(target, sig)
            except (ProcessLookupError, PermissionError):
                pass

    async def terminate(self, *, grace: float = 1.0) -> int:
        """End the program: SIGHUP, then SIGTERM, then SIGKILL, ``grace`` seconds apart."""
        for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGKILL):
            if not self.alive:
                break
            self._signal_all(sig)
            try:
                await asyncio.wait_for(asyncio.shield(self._exited), grace)
            except TimeoutError:
                continue
        return await self.wait()

    # ---- output ----------------------------------------------------------------

    def subscribe(self, *, replay: bool = False) -> Subscription:
        sub = Subscription(self, self.options.subscriber_high_water)
        if replay and self._replay_size:
            sub._push("".join(self._replay))
        if self._exited.done():
            sub._end()
        else:
            self._subs.append(sub)
        return sub

    def _unsubscribe(self, sub: Subscription) -> None:
        if sub in self._subs:
            self._subs.remove(sub)
            self._maybe_resume()

    def replay(self) -> str:
        return "".join(self._replay)

    def _resume_reading(self) -> None:
        if not self._reading and not self._eof and not self._proc.closed:
            self._reading = True
            self._watch()

    def _pause_reading(self) -> None:
        self._reading = False
        self._unwatch()

    def _watch(self) -> None:
        # Not while a batch runs: its end watches again if reading is still wanted.
        if self._reading and not self._watching and self._batch is None:
            self._loop.add_reader(self.fd, self._on_readable)
            self._watching = True

    def _unwatch(self) -> None:
        if self._watching:
            self._loop.remove_reader(self.fd)
            self._watching = False

    def _maybe_resume(self) -> None:
        limit = self.options.subscriber_high_water // 2
        if all(sub.pending <= limit for sub in self._subs):
            self._resume_reading()

    def _read_once(self) -> bool:
        """Read what is available; False on EOF or nothing to read."""
        want = READ_BYTES - self._pending_size if self._pending_size < READ_BYTES else READ_BYTES
        data = _read(self.fd, want)
        if data is None:
            return False
        return self._take(data)

    def _take(self, data: bytes) -> bool:
        """One read's bytes (b"" at EOF) into the pending output; False at EOF."""
        if not data:
            self._eof = True
            self._pause_reading()
            return False
        status, data = data[0], data[1:]
        if status & termios.TIOCPKT_FLUSHREAD:
            self._input_flushed()
        if not data:  # a status report alone
            return True
        self._pending.append(data)
        self._pending_size += len(data)
        return True

    def _on_readable(self) -> None:
        # Up to 64 KiB per wake-up: a PTY hands out a few KiB per read, so keep reading
        # while there is more rather than going back round the event loop for each piece.
        # Once a read comes back full (a flood), the rest in a thread (see _read_batch); while
        # the batches keep coming back full, the next starts there at once.
        if self._flooding:
            self._start_batch()
            return
        got = False
        while self._pending_size < READ_BYTES:
            before = self._pending_size
            if not self._read_once():
                break
            got = True
            if self._reading and self._pending_size - before >= BATCH_AFTER_BYTES and self._pending_size < READ_BYTES:
                self._start_batch()
                return
        if not got:
            self._flush()
            return
        self._delivered()

    def _start_batch(self) -> None:
        self._unwatch()
        loop = self._loop
        want = READ_BYTES - self._pending_size
        wait = self.options.coalesce_seconds if _batch_started() else 0.0
        self._batch = batch = _READERS.submit(_read_batch, self.fd, want, wait)

        def done(batch: Future) -> None:  # in the reading thread
            _batch_ended()
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody to tell
                loop.call_soon_threadsafe(self._batch_done, batch, want)

        batch.add_done_callback(done)

    def _batch_done(self, future: Future, want: int) -> None:
        self._batch = None
        try:
            batch = future.result()
        except BaseException:  # noqa: BLE001 - cancelled, or a bug: end the output, never leave it hanging
            log.exception("terminal: reading the output in a thread failed; the output ends here")
            batch = Batch(eof=True)
        self._flooding = len(batch.data) >= want and not batch.eof
        if batch.flushed:
            self._input_flushed()
        if batch.data:
            self._pending.append(batch.data)
            self._pending_size += len(batch.data)
        if batch.eof:
            self._eof = True
            self._pause_reading()
        if self._finish_after_batch:
            self._finish_after_batch = False
            self._finish()
            return
        # The batch already waited the coalescing time for more: deliver now.
        self.last_activity = time.monotonic()
        self._flush()
        self._watch()

    def _delivered(self) -> None:
        """After a wake-up's reads: the pending output now, or after a short coalescing wait."""
        self.last_activity = time.monotonic()
        if self._pending_size >= COALESCE_BYTES:
            self._flush()
        elif self._pending_size < 1024 and self._flush_handle is None:
            # A keystroke echo or a prompt: deliver now, latency matters more.
            self._flush()
        elif self._flush_handle is None:
            self._flush_handle = self._loop.call_later(self.options.coalesce_seconds, self._flush)

    def _drain_available(self) -> None:
        if self._proc.closed:
            return
        for _ in range(64):  # bounded: a program still writing must not hold us here
            if not self._read_once():
                break

    def _flush(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        data = b"".join(self._pending)
        self._pending.clear()
        self._pending_size = 0
        final = self._eof or self._exited.done()
        text = self._decoder.decode(data, final=final)
        if not text:
            return
        self._remember(text)
        for sub in self._subs:
            sub._push(text)
        if any(sub.pending > sub.high_water for sub in self._subs):
            self._pause_reading()

    def _remember(self, text: str) -> None:
        limit = self.options.replay_chars
        if len(text) >= limit:
            self._replay.clear()
            self._replay.append(text[-limit:])
            self._replay_size = limit
            return
        self._replay.append(text)
        self._replay_size += len(text)
        while self._replay_size > limit:
            head = self._replay[0]
            excess = self._replay_size - limit
            if len(head) <= excess:
                self._replay.popleft()
                self._replay_size -= len(head)
            else:
                self._replay[0] = head[excess:]
                self._replay_size -= excess

    # ---- input -----------------------------------------------------------------

    def write(self, data: bytes | str) -> None:
        """Queue input for the program; never blocks."""
        if isinstance(data, str):
            data = data.encode("utf-8")
        if not self.alive or self._proc.closed:
            raise PtyClosed("the terminal has exited")
        if len(self._write_queue) + len(data) > self.options.write_queue_bytes:
            raise InputOverflow("the program is not reading its input")
        self.last_activity = time.monotonic()
        self._write_queue += data
        self._on_writable()

    def _on_writable(self) -> None:
        while self._write_queue:
            try:
                sent = os.write(self.fd, self._write_queue)
            except BlockingIOError:
                break
            except OSError:  # the terminal went away; the exit watcher ends things
                self._write_queue.clear()
                break
            del self._write_queue[:sent]
        if self._write_queue and not self._writing:
            self._loop.add_writer(self.fd, self._on_writable)
            self._writing = True
        elif not self._write_queue and self._writing:
            self._loop.remove_writer(self.fd)
            self._writing = False

    # ---- control ---------------------------------------------------------------

    def resize(self, cols: int, rows: int) -> tuple[int, int]:
        """Set the window size (clamped to sane bounds); the kernel sends SIGWINCH."""
        cols, rows = clamp_size(cols, rows)
        if self.alive and not self._proc.closed:
            fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.cols, self.rows = cols, rows
        return cols, rows

    def _foreground_pgrp(self) -> int | None:
        if self._proc.closed:
            return None
        try:
            return os.tcgetpgrp(self.fd)
        except OSError:
            return None

    def signal_foreground(self, sig: int) -> int | None:
        """Send ``sig`` to the terminal's foreground process group (what Ctrl-C does)."""
        pgrp = self._foreground_pgrp() or self.pid
        try:
            os.killpg(pgrp, sig)
        except ProcessLookupError:
            return None
        return pgrp

    def interrupt(self) -> asyncio.Future | None:
        """Type Ctrl-C: the terminal sends SIGINT to its foreground process group and drops the
        input not read yet. Not while that group is still the launcher's (bubblewrap, before the
        shell in it has taken the terminal): SIGINT would end the launcher and the shell with it.

        Returns None when nothing was typed, else a future set once the terminal has acted on it
        (the kernel reports the flush; the terminal works on its input in the background). Set
        at once when the Ctrl-C is a plain byte (a raw-mode program) or the terminal drops no
        input on it (``stty noflsh``): there is nothing to wait for, or no report will come."""
        pgrp = self._foreground_pgrp()
        if pgrp is None or (pgrp == self.pid and self.shell_pid() != self.pid):
            return None
        self.write("\x03")
        acted = self._loop.create_future()
        try:
            lflag = termios.tcgetattr(self.fd)[3]  # the terminal's settings (the program's side)
        except termios.error:
            lflag = 0
        if lflag & termios.ISIG and not lflag & termios.NOFLSH:
            self._flush_waiters.append(acted)
        else:
            acted.set_result(None)
        return acted

    def _input_flushed(self) -> None:
        waiters, self._flush_waiters = self._flush_waiters, []
        for acted in waiters:
            if not acted.done():
                acted.set_result(None)

    def foreground_command(self) -> str | None:
        """The name of the foreground program, or None when the shell itself is idle."""
        pgrp = self._foreground_pgrp()
        # Sandboxed, the shell is bwrap's descendant: idle at its prompt, the group is the shell's.
        if pgrp is None or pgrp == self.pid or pgrp == self.shell_pid():
            return None
        try:
            with open(f"/proc/{pgrp}/comm", encoding="utf-8", errors="replace") as fh:  # noqa: ASYNC230 - procfs, no disk I/O
                return fh.read().strip()
        except OSError:
            return None

    def shell_pid(self) -> int | None:
        """The program's pid, past any bubblewrap launcher in front of it (bwrap forks the
        sandboxed program as its child, and with a PID namespace keeps an init in between).
        None while the program has not started yet (only bwrap is there)."""
        chain = self._launch_chain()
        return chain[-1] if chain else None

    def _launch_chain(self) -> list[int]:
        """The pids from the child to the program (bwrap, its init, the shell); [] while the
        program has not started yet."""
        chain = [self.pid]
        for _ in range(4):
            pid = chain[-1]
            try:
                with open(f"/proc/{pid}/comm", encoding="utf-8") as fh:  # noqa: ASYNC230 - procfs, no disk I/O
                    if fh.read().strip() != "bwrap":
                        return chain
            except OSError:
                return []
            below = children(pid)
            if not below:
                return []
            chain.append(below[0])
        return []

    def kill_jobs(self) -> int:
        """SIGKILL every process of the terminal but the program (the shell), its launcher and
        the shell's own process group: background jobs (``sleep 1000 &``), whatever a stopped
        line left running. Returns how many were signalled. Sandboxed, that is everything in the
        session's PID namespace (bwrap's init adopts the orphans); on the host, a process that
        left the tree (a double fork) is not reached."""
        chain = self._launch_chain()
        if not chain:
            return 0
        try:
            group = os.getpgid(chain[-1])
        except OSError:
            return 0
        return kill_tree(self.pid, spare=set(chain), spare_group=group)

    def cwd(self) -> str | None:
        pid = self.shell_pid()
        if pid is None:
            return None
        try:
            return os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            return None
