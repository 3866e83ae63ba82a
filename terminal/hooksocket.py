"""The server's end of one hook socket: lines in, each with the pid of the process that wrote it,
and answers out. Knows nothing of Django (see ``terminal/hook.py``).

asyncio's streams read with ``recv``, which drops ancillary data. Here the server's end has
``SO_PASSCRED`` (set before the shell can write), so Linux attaches the writer's credentials to
what each process writes, and never glues two writers' bytes into one read
(``unix_stream_read_generic``): a line is known to come from the shell itself, or not. Lines are
put together per writer, so one writer's half line never corrupts another's.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from collections import deque

_CRED = struct.Struct("3i")  # struct ucred: pid, uid, gid
_ANCILLARY = socket.CMSG_SPACE(_CRED.size)
READ_BYTES = 65536
MAX_WRITERS = 64  # writers with half a line pending (the sandbox caps its processes anyway)


def pass_credentials(sock: socket.socket) -> None:
    """Call before the other end can write: the kernel notes the writer only from then on."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)


class Endpoint:
    def __init__(self, sock: socket.socket, *, limit: int) -> None:
        sock.setblocking(False)
        self._sock = sock
        self._fd = sock.fileno()
        self._loop = asyncio.get_running_loop()
        self._limit = limit
        self._partial: dict[int | None, bytearray] = {}
        self._skipping: set[int | None] = set()  # writers in the middle of a line over the limit
        self._lines: deque[tuple[bytes | None, int | None, float]] = deque()
        self._out = bytearray()
        self._gone = False  # the other end: nothing more to read
        self._closed = False  # nothing more to write

    async def readline(self) -> tuple[bytes | None, int | None, float] | None:
        """The next line a writer finished, its pid and when it was read (``time.monotonic``);
        ``(None, pid, …)`` for a line over the limit (dropped, whatever of it is still to come
        too); None once the other end is gone."""
        while not self._lines:
            if self._gone:
                return None
            if not self._receive():
                await self._readable()
        return self._lines.popleft()

    def _receive(self) -> bool:
        """Read what is there; False when nothing was."""
        try:
            data, ancillary, _flags, _address = self._sock.recvmsg(READ_BYTES, _ANCILLARY)
        except BlockingIOError:
            return False
        except OSError:  # reset: the shell went with an answer of ours unread
            data = b""
        if not data:
            self._gone = True
            return True
        pid = next((_CRED.unpack_from(payload)[0] for level, kind, payload in ancillary
                    if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS), None)
        self._split(data, pid)
        return True

    def _split(self, data: bytes, pid: int | None) -> None:
        pending = self._partial.pop(pid, bytearray()) + data
        while (end := pending.find(b"\n")) >= 0:
            line = bytes(pending[: end + 1])
            del pending[: end + 1]
            if pid in self._skipping:  # the end of a line over the limit
                self._skipping.discard(pid)
            else:
                self._lines.append((line if len(line) <= self._limit else None, pid, time.monotonic()))
        if len(pending) > self._limit:
            if pid not in self._skipping:
                self._lines.append((None, pid, time.monotonic()))
                self._skipping.add(pid)
            pending.clear()
        if pending:
            self._partial[pid] = pending
            while len(self._partial) > MAX_WRITERS:
                self._partial.pop(next(iter(self._partial)))

    async def _readable(self) -> None:
        waiter = self._loop.create_future()
        self._loop.add_reader(self._fd, lambda: waiter.done() or waiter.set_result(None))
        try:
            await waiter
        finally:
            self._loop.remove_reader(self._fd)

    def write(self, data: bytes) -> None:
        """Send now, or once the socket takes it; nothing when the other end is gone (an answer
        the shell will never read)."""
        if self._closed:
            return
        if not self._out:
            try:
                sent = self._sock.send(data)
            except BlockingIOError:
                sent = 0
            except OSError:  # a broken pipe: the shell went
                self._closed = True
                return
            data = data[sent:]
            if not data:
                return
            self._loop.add_writer(self._fd, self._flush)
        self._out += data

    def _flush(self) -> None:
        try:
            sent = self._sock.send(self._out)
        except BlockingIOError:
            return
        except OSError:
            self._closed = True
            sent = len(self._out)
        del self._out[:sent]
        if not self._out:
            self._loop.remove_writer(self._fd)

    def is_closing(self) -> bool:
        return self._closed

    def close(self) -> None:
        if self._out:
            self._loop.remove_writer(self._fd)
            self._out.clear()
        self._closed = True
