"""WebSocket /ws/terminal/{session_id}/ — thin: parse frames, call the services, send JSON.

Client → server: input, resize, ping, join, leave. Server → client: session, output, blocked,
exit, pong, error (see DESIGN.md), watchers (who else is on the session) and notice (someone
joined or left). Staff on another user's session are observers until they join (``join``
frame or ``?mode=join``). Bad frames get an error frame and the socket stays open.
"""

import asyncio
import contextlib
import json
import logging
from urllib.parse import parse_qs

from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from autobot.errors import AppError
from autobot.http import scope_ip
from terminal import services

log = logging.getLogger("terminal")


class TerminalConsumer(AsyncWebsocketConsumer):
    attachment: services.Attachment | None = None

    async def connect(self):
        self.tasks: list[asyncio.Task] = []
        self.events: asyncio.Queue[dict] = asyncio.Queue()
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        try:
            self.attachment, info = await services.session_attach(
                user=self.scope["user"],
                session_id=self.scope["url_route"]["kwargs"]["session_id"],
                on_event=self.events.put_nowait,
                client_ip=scope_ip(self.scope),
                mode=(query.get("mode") or [None])[0],
            )
        except AppError as exc:
            await self.accept()
            await self.send_json({"type": "error", **exc.to_dict()})
            await self.close(code=exc.close_code)
            return
        await self.accept()
        await self.send_json({"type": "session", **info})
        self.tasks = [asyncio.create_task(self._send_output()), asyncio.create_task(self._send_events())]

    async def disconnect(self, code):
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.attachment is not None:
            attachment, self.attachment = self.attachment, None
            await attachment.detach()

    async def send_json(self, content: dict) -> None:
        await self.send(text_data=json.dumps(content, ensure_ascii=False))

    async def _send_output(self) -> None:
        while (text := await self.attachment.read()) is not None:
            await self.send_json({"type": "output", "data": text})
        await self.send_json({"type": "exit", "code": await self.attachment.exit_code()})
        await self.close(code=1000)

    async def _send_events(self) -> None:
        while True:
            await self.send_json(await self.events.get())

    async def receive(self, text_data=None, bytes_data=None):
        if self.attachment is None:
            return
        if text_data is None:
            return await self._error("binary frames are not accepted; send JSON text frames", "binary_frame")
        if len(text_data) > settings.TERMINAL_MAX_FRAME_BYTES:
            return await self._error(
                f"frame larger than {settings.TERMINAL_MAX_FRAME_BYTES} bytes rejected", "frame_too_large"
            )
        try:
            frame = json.loads(text_data)
        except ValueError:
            return await self._error("frame is not valid JSON", "invalid_json")
        if not isinstance(frame, dict):
            return await self._error("frame must be a JSON object with a type", "invalid_frame")
        try:
            await self._dispatch(frame)
        except AppError as exc:
            await self.send_json({"type": "error", **exc.to_dict()})

    async def _dispatch(self, frame: dict) -> None:
        kind = frame.get("type")
        if kind == "input":
            data = frame.get("data")
            if not isinstance(data, str):
                return await self._error("input needs a string 'data'", "invalid_input")
            await self.attachment.input(data)
        elif kind == "resize":
            await self.attachment.resize(frame.get("cols"), frame.get("rows"))
        elif kind == "ping":
            await self.send_json({"type": "pong"})
        elif kind == "join":
            await self.attachment.join()
        elif kind == "leave":
            await self.attachment.leave()
        else:
            await self._error(f"unknown frame type {kind!r}; use input, resize, ping, join or leave", "unknown_type")

    async def _error(self, detail: str, code: str) -> None:
        await self.send_json({"type": "error", "detail": detail, "code": code})
