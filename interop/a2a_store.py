"""The A2A SDK's task store on AutoBot's database (interop.models.A2aTask): a task is found by
any worker, and only by its owner (the token's user).

A versioned store (the SDK's `VersionedTaskStore`): every write counts up the row's `version`
and must name the version it read, so two workers never overwrite each other's progress; a
cancel overwrites any task not yet finished. Versions let a subscriber on another worker tell
which events it has already seen (interop/a2a_stream.py). Each write also records the worker
that made it and when (`worker`, `beat`).
"""

from __future__ import annotations

from a2a.server.cluster import ConcurrentTaskModificationError, StoredTask, TaskVersion, VersionedTaskStore
from a2a.types import ListTasksResponse, Task, TaskState
from asgiref.sync import sync_to_async
from django.db import IntegrityError, transaction
from django.db.models.functions import Now

from autobot.workers import WORKER_ID
from interop.http import on_lanes
from interop.models import A2aTask

USER_KEY = "autobot.user"
PAGE_SIZE = 50
TERMINAL = frozenset({TaskState.TASK_STATE_COMPLETED, TaskState.TASK_STATE_CANCELED, TaskState.TASK_STATE_FAILED,
                      TaskState.TASK_STATE_REJECTED})


def _owner(context):
    return context.state[USER_KEY]


def version_number(version: TaskVersion) -> int:
    """The count a TaskVersion of this store wraps (0: never written, the SDK's MISSING)."""
    return int(version._value)  # the SDK's own stores read it so  # noqa: SLF001


def _write(task: Task, owner, prev: int) -> int:
    """Store `task` if its row is still at version `prev` (any unfinished row for a cancel);
    returns the new version."""
    cancel = task.status.state == TaskState.TASK_STATE_CANCELED
    with transaction.atomic():
        row = A2aTask.objects.select_for_update().filter(pk=task.id).values("owner_id", "state", "version").first()
        if row is not None and row["owner_id"] != owner.pk:
            # A task id another user already holds is not theirs to overwrite.
            raise PermissionError(f"task {task.id} belongs to someone else")
        if cancel:
            if row is None or row["state"] in TERMINAL:
                raise ConcurrentTaskModificationError(task.id)
        elif (row["version"] if row else 0) != prev:
            raise ConcurrentTaskModificationError(task.id)
        version = (row["version"] if row else 0) + 1
        fields = {"context_id": task.context_id, "state": task.status.state, "data": task.SerializeToString(),
                  "version": version, "worker": WORKER_ID, "beat": Now(), "updated": Now()}
        if row is None:
            try:
                with transaction.atomic():
                    A2aTask.objects.create(pk=task.id, owner=owner, **fields)
            except IntegrityError:  # another worker created it first
                raise ConcurrentTaskModificationError(task.id) from None
        else:
            A2aTask.objects.filter(pk=task.id).update(**fields)
    return version


class DatabaseTaskStore(VersionedTaskStore):
    @on_lanes
    async def save(self, task: Task, *, event=None, prev=None, prev_version: TaskVersion, context) -> TaskVersion:
        return TaskVersion(await sync_to_async(_write)(task, _owner(context), version_number(prev_version)))

    @on_lanes
    async def get(self, task_id: str, context) -> StoredTask | None:
        row = await A2aTask.objects.filter(pk=task_id, owner=_owner(context)).only("data", "version").afirst()
        return StoredTask(Task.FromString(bytes(row.data)), TaskVersion(row.version)) if row else None

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
