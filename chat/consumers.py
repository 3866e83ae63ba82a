"""WebSocket /ws/chat/<session_id>/: post messages, cancel, and watch the session's answers.

Thin on purpose: posting goes through `services.message_post` (the same rules as REST), and
tokens come from the session's channel-layer group, fed by the server-side generation task.
Closing the socket doesn't stop an answer; reconnecting replays the text so far and follows on.
"""

import asyncio
import logging

from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from autobot.errors import AppError, LimitExceeded
from autobot.http import json_loads, scope_ip
from autobot.workers import WORKER_ID, wait_gone
from chat import services
from chat.generation import group_name
from chat.operator import services as operator
from chat.operator.turn import call_frame

log = logging.getLogger("chat.consumers")


class ChatConsumer(AsyncJsonWebsocketConsumer):
    group = None
    watch: asyncio.Task | None = None

    async def connect(self):
        self.user = self.scope["user"]
        self.session_id = self.scope["url_route"]["kwargs"]["session_id"]
        await self.accept()
        try:
            session = await services.session_get(user=self.user, session_id=self.session_id)
        except AppError as exc:
            await self.send_error(exc)
            await self.close(code=exc.close_code)
            return
        self.session_id = str(session.id)
        # Join before taking the snapshot: a token published in between then arrives twice
        # (harmless, offsets dedupe it) rather than not at all.
        self.group = group_name(self.session_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        snapshot = await services.generation_snapshot(user=self.user, session_id=self.session_id)
        if snapshot and snapshot["text"]:
            await self.send_json({"type": "token", "message_id": snapshot["message_id"], "data": snapshot["text"],
                                  "offset": 0})
        if snapshot:
            # A reload mid-turn sees the operator's calls so far and what waits for approval.
            for call in snapshot.get("calls") or []:
                await self.send_json({"type": "tool_call", "message_id": snapshot["message_id"],
                                      "call": call_frame(call)})
                if call.get("ok") is not None:  # finished: its result too
                    await self.send_json({"type": "tool_result", "message_id": snapshot["message_id"],
                                          "call_id": call["id"], "ok": call["ok"], "output": call["output"],
                                          "exit_code": call["exit_code"]})
            if session.owner_id == self.user.pk:
                for approval in await operator.approval_list(user=self.user, session_id=self.session_id):
                    await self.send_json({"type": "approval", "approval": {
                        k: approval[k] for k in ("id", "call_id", "command", "cwd", "risk", "reasons", "expires")}})
        if snapshot and snapshot.get("worker") and snapshot["worker"] != WORKER_ID:
            self.watch = asyncio.create_task(self._watch_generator(snapshot["message_id"], snapshot["worker"]))

    async def _watch_generator(self, message_id: int, worker: str) -> None:
        """Another worker generates this answer: if it dies, end the answer here with its
        interrupted state instead of leaving the client waiting for tokens that never come."""
        await wait_gone(worker)
        stored = await services.generation_orphan_check(user=self.user, session_id=self.session_id,
                                                         message_id=message_id)
        if stored is not None:
            await self.send_json({"type": "error", "message_id": message_id, "detail": stored["error"],
                                  "code": stored["error_code"] or "interrupted"})
            await self.send_json({"type": "done", "message": stored})

    async def disconnect(self, code):
        if self.watch is not None:
            self.watch.cancel()
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        # Parsing is on the loop: a frame far larger than any allowed message (JSON may escape a
        # character into 6) is refused unread, not decoded for a second first.
        if text_data and len(text_data) > 6 * settings.CHAT_MAX_MESSAGE_CHARS + 4096:
            await self.send_error(LimitExceeded(
                f"the frame is larger than any message allowed ({settings.CHAT_MAX_MESSAGE_CHARS} characters)",
                code="message_too_large"))
            return
        try:
            content = json_loads(text_data or "")  # nesting bounded: no RecursionError
        except ValueError:
            content = None
        if not isinstance(content, dict):
            await self.send_error(AppError("frames must be JSON objects", code="invalid_json"))
            return
        await self.receive_json(content)

    async def receive_json(self, content, **kwargs):
        kind = content.get("type")
        try:
            if kind == "message":
                await services.message_post(
                    user=self.user, session_id=self.session_id, content=content.get("content"),
                    use_knowledge=bool(content.get("use_knowledge", True)), model=content.get("model") or None,
                    client_ip=scope_ip(self.scope), regenerate=content.get("regenerate") is True,
                )
            elif kind == "cancel":
                await services.generation_cancel(user=self.user, session_id=self.session_id)
            elif kind in ("approve", "deny"):
                await operator.approval_decide(
                    user=self.user, session_id=self.session_id, approval_id=content.get("approval_id"),
                    decision=kind, reason=str(content.get("reason") or ""), client_ip=scope_ip(self.scope))
            elif kind in operator.CONTROLS:
                await operator.operator_control(user=self.user, session_id=self.session_id, action=kind)
            else:
                raise AppError(f"unknown message type {kind!r}; use message, cancel, approve, deny, pause, resume "
                               "or stop", code="invalid_type")
        except AppError as exc:
            await self.send_error(exc)

    async def send_error(self, exc: AppError):
        await self.send_json({"type": "error", "detail": exc.detail, "code": exc.code})

    # Channel-layer events from the generation task.
    async def chat_token(self, event):
        await self.send_json({"type": "token", "message_id": event["message_id"], "data": event["data"],
                              "offset": event["offset"]})

    async def chat_error(self, event):
        await self.send_json({"type": "error", "message_id": event["message_id"], "detail": event["detail"],
                              "code": event["code"]})

    async def chat_done(self, event):
        if self.watch is not None:
            self.watch.cancel()
        await self.send_json({"type": "done", "message": event["message"]})

    async def chat_tool_call(self, event):
        await self.send_json({"type": "tool_call", "message_id": event["message_id"], "call": event["call"]})

    async def chat_approval(self, event):
        await self.send_json({"type": "approval", "approval": event["approval"]})

    async def chat_tool_result(self, event):
        await self.send_json({"type": "tool_result", "message_id": event["message_id"], "call_id": event["call_id"],
                              "ok": event["ok"], "output": event["output"], "exit_code": event["exit_code"]})

    async def chat_operator(self, event):
        await self.send_json({"type": "operator", "paused": event["paused"]})

    async def chat_tool_output(self, event):
        await self.send_json({"type": "tool_output", "message_id": event["message_id"], "call_id": event["call_id"],
                              "data": event["data"]})
