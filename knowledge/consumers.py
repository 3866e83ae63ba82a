"""WebSocket /ws/knowledge/crawls/<id>/: live progress of one crawl job.

Thin: the crawl runs as a server-side task (`services.crawl_start`) that publishes each update
to the group ``knowledge.crawl.<id>``; this consumer only checks access, sends the current
state, then forwards updates. Clients may send {"type": "cancel"}.
"""


from channels.generic.websocket import AsyncJsonWebsocketConsumer

from autobot.errors import AppError
from autobot.http import json_loads
from knowledge import services
from knowledge.models import CrawlJob

MAX_FRAME_CHARS = 4096  # clients send only {"type": "cancel"} and {"type": "ping"}


class CrawlProgressConsumer(AsyncJsonWebsocketConsumer):
    group = None

    async def connect(self):
        self.user = self.scope["user"]
        crawl_id = int(self.scope["url_route"]["kwargs"]["crawl_id"])
        await self.accept()
        try:
            job = await services.crawl_get(user=self.user, crawl_id=crawl_id)
        except AppError as exc:
            await self.send_error(exc)
            await self.close(code=exc.close_code)
            return
        self.crawl_id = job.pk
        # Join first, then send the snapshot: an update in between arrives twice rather than never.
        self.group = services.crawl_group(job.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await job.arefresh_from_db(from_queryset=CrawlJob.objects.select_related("owner"))
        await self.send_json({"type": "progress", "crawl": services.crawl_as_dict(job)})

    async def disconnect(self, code):
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        if text_data and len(text_data) > MAX_FRAME_CHARS:  # parsing is on the loop: refuse it unread
            await self.send_error(AppError(f"frames are at most {MAX_FRAME_CHARS} characters", code="frame_too_large"))
            return
        try:
            content = json_loads(text_data or "")  # nesting bounded: no RecursionError
        except ValueError:
            content = None
        if not isinstance(content, dict):
            await self.send_error(AppError("frames must be JSON objects", code="invalid_json"))
            return
        if content.get("type") == "cancel":
            try:
                job = await services.crawl_cancel(user=self.user, crawl_id=self.crawl_id)
            except AppError as exc:
                await self.send_error(exc)
                return
            await self.send_json({"type": "progress", "crawl": services.crawl_as_dict(job)})
        elif content.get("type") == "ping":
            await self.send_json({"type": "pong"})
        else:
            await self.send_error(AppError(f"unknown message type {content.get('type')!r}", code="invalid_type"))

    async def send_error(self, exc: AppError):
        await self.send_json({"type": "error", "detail": exc.detail, "code": exc.code})

    async def knowledge_progress(self, event):
        await self.send_json({"type": "progress", "crawl": event["crawl"]})
