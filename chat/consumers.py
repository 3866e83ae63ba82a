"""WebSocket /ws/chat/<session_id>/: post messages, cancel, and watch the session's answers.

Thin on purpose: posting goes through `services.message_post` (the same rules as REST), and
tokens come from the session's channel-layer group, fed by the server-side generation task.
Closing the socket doesn't stop an answer; reconnecting replays the text so far and follows on.
"""

import asyncio
import logging

from django.conf import settings

from autobot.errors import AppError
from autobot.http import scope_ip
from autobot.workers import WORKER_ID, wait_gone
from autobot.ws import JsonConsumer, leave_group
from chat import services
from chat.generation import group_name
from chat.operator import services as operator
from chat.operator.turn import call_frame

log = logging.getLogger("chat.consumers")


async def _may_stay(user, scope) -> None:
    await services.session_get(user=user, session_id=scope["url_route"]["kwargs"]["session_id"])


class ChatConsumer(JsonConsumer):
    group = None
    watch: asyncio.Task | None = None
    watches_layer = True  # after a Redis restart the page reconnects and takes a new snapshot
    # Checked at connect and, by the front door, while the socket is open: staff status taken
    # away closes a socket on someone else's chat (4403).
    requires = staticmethod(_may_stay)

    @property
    def max_frame_bytes(self) -> int:
        # Room for the longest message allowed however it is encoded (JSON may escape a character
        # into 12 bytes: a surrogate pair); its length is the service's rule (message_too_large).
        return 12 * settings.CHAT_MAX_MESSAGE_CHARS + 4096

    async def connect(self):
        self.user = self.scope["user"]
        self.session_id = self.scope["url_route"]["kwargs"]["session_id"]
        await self.accept()
        try:
            session = await services.session_get(user=self.user, session_id=self.session_id)
        except AppError as exc:
            return await self.refuse(exc)
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
            await leave_group(self.channel_layer, self.group, self.channel_name)

    # -- frames from the client

    async def handle_message(self, frame: dict) -> None:
        await services.message_post(
            user=self.user, session_id=self.session_id, content=frame.get("content"),
            use_knowledge=bool(frame.get("use_knowledge", True)), model=frame.get("model") or None,
            client_ip=scope_ip(self.scope), regenerate=frame.get("regenerate") is True,
        )

    async def handle_cancel(self, frame: dict) -> None:
        await services.generation_cancel(user=self.user, session_id=self.session_id)

    async def handle_approve(self, frame: dict) -> None:
        await self._decide(frame, "approve")

    async def handle_deny(self, frame: dict) -> None:
        await self._decide(frame, "deny")

    async def _decide(self, frame: dict, decision: str) -> None:
        await operator.approval_decide(
            user=self.user, session_id=self.session_id, approval_id=frame.get("approval_id"),
            decision=decision, reason=str(frame.get("reason") or ""), client_ip=scope_ip(self.scope))

    async def handle_pause(self, frame: dict) -> None:
        await operator.operator_control(user=self.user, session_id=self.session_id, action="pause")

    async def handle_resume(self, frame: dict) -> None:
        await operator.operator_control(user=self.user, session_id=self.session_id, action="resume")

    async def handle_stop(self, frame: dict) -> None:
        await operator.operator_control(user=self.user, session_id=self.session_id, action="stop")

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
