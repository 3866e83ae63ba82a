"""WebSocket /ws/knowledge/crawls/<id>/: live progress of one crawl job.

Thin: the crawl runs as a server-side task (`services.crawl_start`) that publishes each update
to the group ``knowledge.crawl.<id>``; this consumer only checks access, sends the current
state, then forwards updates. Clients may send {"type": "cancel"}.
"""

from autobot.errors import AppError, NotFound
from autobot.ws import JsonConsumer, leave_group
from knowledge import services
from knowledge.models import CrawlJob


async def _may_stay(user, scope) -> None:
    """Someone else's crawl is watched only while the watcher is staff (checked again by the
    front door while the socket is open). A crawl deleted meanwhile is this consumer's to end."""
    if user.is_staff:
        return
    crawl_id = int(scope["url_route"]["kwargs"]["crawl_id"])
    if await CrawlJob.objects.filter(pk=crawl_id).exclude(owner_id=user.pk).aexists():
        raise NotFound(f"crawl {crawl_id} not found", code="crawl_not_found")


class CrawlProgressConsumer(JsonConsumer):
    max_frame_bytes = 4096  # clients send only {"type": "cancel"} and {"type": "ping"}
    group = None
    requires = staticmethod(_may_stay)
    watches_layer = True  # after a Redis restart the page reconnects and is sent the crawl's state

    async def connect(self):
        self.user = self.scope["user"]
        crawl_id = int(self.scope["url_route"]["kwargs"]["crawl_id"])
        await self.accept()
        try:
            job = await services.crawl_get(user=self.user, crawl_id=crawl_id)
        except AppError as exc:
            return await self.refuse(exc)
        self.crawl_id = job.pk
        # Join first, then send the snapshot: an update in between arrives twice rather than never.
        self.group = services.crawl_group(job.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        try:  # read again after joining; the crawl may have been deleted in between
            job = await services.crawl_get(user=self.user, crawl_id=crawl_id)
        except AppError as exc:
            return await self.refuse(exc)
        await self.send_json({"type": "progress", "crawl": services.crawl_as_dict(job)})

    async def disconnect(self, code):
        if self.group:
            await leave_group(self.channel_layer, self.group, self.channel_name)

    async def handle_cancel(self, frame: dict) -> None:
        job = await services.crawl_cancel(user=self.user, crawl_id=self.crawl_id)
        await self.send_json({"type": "progress", "crawl": services.crawl_as_dict(job)})

    async def handle_ping(self, frame: dict) -> None:
        await self.send_json({"type": "pong"})

    async def knowledge_progress(self, event):
        await self.send_json({"type": "progress", "crawl": event["crawl"]})
