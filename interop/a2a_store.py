"""The A2A SDK's task store on AutoBot's database (interop.models.A2aTask): a task is found by
any worker, and only by its owner (the token's user)."""

from __future__ import annotations

from a2a.server.tasks import TaskStore
from a2a.types import ListTasksResponse, Task

from interop.http import on_lanes
from interop.models import A2aTask

USER_KEY = "autobot.user"
PAGE_SIZE = 50


def _owner(context):
    return context.state[USER_KEY]


class DatabaseTaskStore(TaskStore):
    @on_lanes
    async def save(self, task: Task, context) -> None:
        owner = _owner(context)
        # A task id another user already holds is not theirs to overwrite.
        stored = await A2aTask.objects.filter(pk=task.id).exclude(owner=owner).aexists()
        if stored:
            raise PermissionError(f"task {task.id} belongs to someone else")
        await A2aTask.objects.aupdate_or_create(
            pk=task.id, defaults={"owner": owner, "context_id": task.context_id, "state": task.status.state,
                                  "data": task.SerializeToString()})

    @on_lanes
    async def get(self, task_id: str, context) -> Task | None:
        row = await A2aTask.objects.filter(pk=task_id, owner=_owner(context)).afirst()
        return Task.FromString(bytes(row.data)) if row else None

    @on_lanes
    async def delete(self, task_id: str, context) -> None:
        await A2aTask.objects.filter(pk=task_id, owner=_owner(context)).adelete()

    @on_lanes
    async def list(self, params, context) -> ListTasksResponse:
        rows = A2aTask.objects.filter(owner=_owner(context)).order_by("-updated", "id")
        if params.context_id:
            rows = rows.filter(context_id=params.context_id)
        if params.status:
            rows = rows.filter(state=params.status)
        size = min(params.page_size or PAGE_SIZE, 100)
        start = int(params.page_token) if params.page_token.isdigit() else 0
        total = await rows.acount()
        tasks = [Task.FromString(bytes(row.data)) async for row in rows[start:start + size]]
        following = str(start + size) if start + size < total else ""
        return ListTasksResponse(tasks=tasks, next_page_token=following, page_size=size, total_size=total)
