"""A child process started and watched without blocking the event loop.

``asyncio.create_subprocess_exec`` runs ``subprocess.Popen`` on the loop's thread. With a
``preexec_fn`` (terminal.pty.preexec: cgroups, rlimits) Popen must fork rather than vfork, and
then waits until the child has exec'd: milliseconds in a large process, far more on a loaded
machine, all of it holding the loop. Here Popen runs in a thread; the loop reads the child's
output through a pipe transport and learns of its exit from a pidfd (Linux 5.3+), so no thread
is parked for the child's life and no SIGCHLD handler is shared with the rest of the process.
Knows nothing of Django.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
from collections.abc import Sequence

from terminal.procs import watch_exit

Popen = subprocess.Popen  # one name, so a test can slow the start down


class Child:
    """A started child: ``stdout`` (a StreamReader when it was a pipe), ``wait()``,
    ``kill_group()``. Create with ``await Child.start(argv, **popen_arguments)``."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc = proc
        self.pid: int = proc.pid
        self.stdout: asyncio.StreamReader | None = None
        self._transport: asyncio.BaseTransport | None = None
        self._loop = asyncio.get_running_loop()
        self._exited = self._loop.create_future()
        watch_exit(proc.pid, self._on_exit)  # ours and not reaped yet: the pid cannot have been reused

    @classmethod
    async def start(cls, argv: Sequence[str], **popen: object) -> Child:
        """Popen in a thread. Cancelled meanwhile, it still waits for that thread (a start cannot
        be called back, and the caller's clean-up — closing the fds the child inherits, removing
        its cgroup — must come after it), ends the child if it started, then gives way."""
        starting = asyncio.ensure_future(asyncio.to_thread(Popen, list(argv), **popen))
        try:
            proc = await asyncio.shield(starting)
        except asyncio.CancelledError:
            while not starting.done():
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.shield(starting)
            if not starting.cancelled() and starting.exception() is None:
                cls(starting.result()).kill_group()  # reaped by its pidfd watcher
                if starting.result().stdout is not None:
                    starting.result().stdout.close()
            raise
        child = cls(proc)
        if proc.stdout is not None:
            try:
                child.stdout = asyncio.StreamReader(limit=2**16, loop=child._loop)
                protocol = asyncio.StreamReaderProtocol(child.stdout, loop=child._loop)
                child._transport, _ = await child._loop.connect_read_pipe(lambda: protocol, proc.stdout)
            except BaseException:
                child.kill_group()
                proc.stdout.close()
                raise
        return child

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode

    async def wait(self) -> int:
        return await asyncio.shield(self._exited)

    def kill_group(self, sig: int = signal.SIGKILL) -> None:
        """Signal the child's process group (it leads one: ``start_new_session``), so its
        background jobs go with it."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    def close(self) -> None:
        """Stop reading the child's output (after it has exited and been read)."""
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    def _on_exit(self) -> None:
        self.proc.poll()  # the child has exited: waitpid returns at once and reaps it
        if not self._exited.done():
            self._exited.set_result(self.proc.returncode)
