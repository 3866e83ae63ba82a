"""WebSocket /ws/terminal/{session_id}/ — thin: one handler per frame type calls the services
(frames are checked by `autobot.ws.JsonConsumer`).

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

from django.conf import settings

from autobot.errors import AppError, InvalidInput
from autobot.http import scope_ip
from autobot.ws import JsonConsumer
from terminal import services
from terminal.recording import output_json

log = logging.getLogger("terminal")


async def _may_stay(user, scope) -> None:
    await services.session_access(user=user, session_id=scope["url_route"]["kwargs"]["session_id"])


class TerminalConsumer(JsonConsumer):
    attachment: services.Attachment | None = None
    # No channel of its own on the layer: nothing is sent to it there (output and events come
    # through the attachment, nudges through the front door), and channels' consumer dies when a
    # receive on it fails (Redis restarting): the socket then closed without an error frame and
    # without `disconnect`, leaving its attachment on the session. An alias with no layer: None.
    channel_layer_alias = None
    # Checked at connect (session_attach) and, by the front door, for as long as the socket is
    # open: the permission withdrawn (or staff status, on someone else's session) closes it, 4403.
    requires = staticmethod(_may_stay)

    @property
    def max_frame_bytes(self) -> int:
        return settings.TERMINAL_MAX_FRAME_BYTES

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
            return await self.refuse(exc)
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

    @classmethod
    async def encode_json(cls, content):
        return json.dumps(content, ensure_ascii=False)  # output text as is: smaller frames

    async def _send_output(self) -> None:
        while (text := await self.attachment.read()) is not None:
            # The frame send_json would write, with the text's JSON from the quicker encoder
            # (made once for this frame and the recording's line when they share the text).
            await self.send(text_data='{"type": "output", "data": ' + output_json(text) + "}")
        try:
            code = await self.attachment.exit_code()
        except AppError as exc:  # the relay to the terminal's worker was lost: error, close 1011
            return await self.refuse(exc)
        await self.send_json({"type": "exit", "code": code})
        await self.close_with(1000)

    async def _send_events(self) -> None:
        while True:
            await self.send_json(await self.events.get())

    # -- frames from the client

    async def handle_input(self, frame: dict) -> None:
        data = frame.get("data")
        if not isinstance(data, str):
            raise InvalidInput("input needs a string 'data'", code="invalid_input")
        await self.attachment.input(data)

    async def handle_resize(self, frame: dict) -> None:
        await self.attachment.resize(frame.get("cols"), frame.get("rows"))

    async def handle_ping(self, frame: dict) -> None:
        await self.send_json({"type": "pong"})

    async def handle_join(self, frame: dict) -> None:
        await self.attachment.join()

    async def handle_leave(self, frame: dict) -> None:
        await self.attachment.leave()
