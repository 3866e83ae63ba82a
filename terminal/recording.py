"""asciicast v2 recordings, written by a task so the event loop never waits on the disk.

https://docs.asciinema.org/manual/asciicast/v2/ — a JSON header line, then one
``[seconds, code, data]`` line per event: ``"o"`` output, ``"i"`` input, ``"r"`` resize,
``"m"`` marker (someone joined or left the session).
Knows nothing of Django.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path

from autobot.http import json_string

log = logging.getLogger("terminal")

QUEUE_EVENTS = 256  # a full queue makes the producer (the PTY pump) wait: backpressure, bounded memory


_last_json: tuple[str, str] = ("", '""')


def output_json(text: str) -> str:
    """``json_string(text)``, remembered for the last text given. The PTY hands the same string
    to each of its readers (the socket's and the recorder's, docs/performance.md, twelfth round),
    and a reader that read one chunk gets that very object: its JSON (~40 µs for 64 KiB on the
    loop) is then made once for the frame and the recording line. Matched by identity, which
    the reference kept here makes safe: the object cannot go and its id be reused meanwhile."""
    global _last_json
    last, encoded = _last_json
    if last is not text:
        encoded = json_string(text)
        _last_json = (text, encoded)
    return encoded


def _write_flush(fh, text: str) -> None:
    fh.write(text)
    fh.flush()


class Recorder:
    def __init__(
        self,
        path: Path,
        *,
        cols: int,
        rows: int,
        title: str = "",
        max_bytes: int = 50 * 1024 * 1024,
        env: dict[str, str] | None = None,
    ) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.written = 0
        self.truncated = False
        self._header = {
            "version": 2,
            "width": cols,
            "height": rows,
            "timestamp": int(time.time()),
            "title": title,
            "env": env or {"SHELL": "/bin/bash", "TERM": "xterm-256color"},
        }
        self._started = time.monotonic()
        self._queue: asyncio.Queue[str | None] = asyncio.Queue(QUEUE_EVENTS)
        self._task: asyncio.Task | None = None
        self.failed: BaseException | None = None  # why the writer stopped early (a disk error, no file)

    async def start(self) -> None:
        await asyncio.to_thread(self.path.parent.mkdir, parents=True, exist_ok=True)
        self._task = asyncio.create_task(self._write_all(), name=f"recorder {self.path.name}")
        self._task.add_done_callback(self._writer_done)
        await self._send(json.dumps(self._header) + "\n")

    def _writer_done(self, task: asyncio.Task) -> None:
        if not task.cancelled() and task.exception() is not None:
            # Said once, when it happens: the session goes on, unrecorded from here.
            self.failed = task.exception()
            log.error("recording %s stopped: %s; the rest of the session is not recorded", self.path,
                      self.failed, exc_info=self.failed)

    async def _send(self, item: str | None) -> bool:
        """Queue an item for the writer, waiting while the queue is full (backpressure), but never
        for a writer that has stopped: nothing would read it. False when it was dropped."""
        task = self._task
        if task is None or task.done():
            return False
        try:
            self._queue.put_nowait(item)
            return True
        except asyncio.QueueFull:
            pass
        put = asyncio.ensure_future(self._queue.put(item))
        try:
            await asyncio.wait((put, task), return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not put.done():
                put.cancel()
        return put.done() and not put.cancelled()

    async def _write_all(self) -> None:
        # One thread trip per batch: whatever is queued when the writer wakes is written and
        # flushed together (a flooding program queues 64 KiB lines, a typist one line a key;
        # a trip per line and another per flush cost the loop two thread hand-offs each).
        fh = await asyncio.to_thread(open, self.path, "w", encoding="utf-8")
        try:
            ended = False
            while not ended:
                lines = [await self._queue.get()]
                while not self._queue.empty():
                    lines.append(self._queue.get_nowait())
                if None in lines:
                    lines, ended = lines[: lines.index(None)], True
                if lines:
                    await asyncio.to_thread(_write_flush, fh, "".join(lines))
        finally:
            fh.close()  # flushed after every batch: nothing left to write, a quick close

    def _line(self, code: str, data: str) -> str | None:
        if self.truncated:
            return None
        # What json.dumps([seconds, code, data], ensure_ascii=False) writes, the data's JSON from
        # the quicker encoder (a flood records 64 KiB a line, on the event loop).
        line = f'[{json.dumps(round(time.monotonic() - self._started, 6))}, {json_string(code)}, {output_json(data)}]\n'
        if self.written + len(line) > self.max_bytes:
            self.truncated = True
            note = "\r\n[autobot: recording size limit reached; the rest of the session is not recorded]\r\n"
            return json.dumps([round(time.monotonic() - self._started, 6), "o", note]) + "\n"
        self.written += len(line)
        return line

    async def _put(self, code: str, data: str) -> None:
        line = self._line(code, data)
        if line is not None:
            await self._send(line)

    async def output(self, data: str) -> None:
        await self._put("o", data)

    async def input(self, data: str) -> None:
        await self._put("i", data)

    async def marker(self, label: str) -> None:
        await self._put("m", label)

    async def resize(self, cols: int, rows: int) -> None:
        await self._put("r", f"{cols}x{rows}")

    async def close(self) -> None:
        """Write what is queued and close the file. Returns at once when the writer has stopped
        early (``failed`` says why)."""
        task = self._task
        if task is None:
            return
        await self._send(None)
        await asyncio.wait((task,))  # an error of the writer's was logged when it stopped: not raised here
        self._task = None
