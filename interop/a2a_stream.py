"""A2A task events across workers, on the channel layer (the SDK's `TaskEventStream`).

The worker that runs a task publishes every event it applied, with the task's version after it
(interop/a2a_store.py), to the group `interop.a2a_task.<id>`; a subscription (`SubscribeToTask`)
on any worker joins that group and passes the events on in version order. With `REDIS_URL` the
layer is Redis and the workers share it; in one process it is the in-memory layer, same path.

What the group cannot carry, the subscription reads from the task's row:
- **Missed events.** On joining, and after every CHECK_SECONDS without an event, it joins again
  (a Redis restart forgets groups) and compares the row's version with the last it passed on:
  a newer row is sent as the `Task` itself (a final one ends the subscription). So an event sent
  before it joined, while Redis was away, or dropped by a full channel is never waited for.
- **A dead worker.** While it runs a task, a worker beats on its row every third of
  `AUTOBOT_A2A_TASK_LOST_SECONDS` (`run`). A task still submitted or working whose worker
  has stopped — seen at once on the same host (autobot/workers.py), or after that many seconds
  without a beat from another host — is written `failed` with a message saying so, and the
  event is published: every subscriber ends with it instead of waiting forever. `GetTask` and
  `ListTasks` apply the same verdict to the running tasks they return (`settle`), so a client
  that only polls sees it too; nothing scans tasks nobody asks about.
- **A cancel on another worker.** While it runs a task, the worker also follows the task's group
  (and its row after CHECK_SECONDS of silence): once the task has ended elsewhere (CancelTask
  on another worker writes it `canceled` and publishes that), the call is cancelled (`run`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import re
import uuid
from collections.abc import Awaitable
from datetime import timedelta
from typing import TypeVar

from a2a.server.cluster import TaskEventStream, TaskVersion, VersionedEvent
from a2a.types import Message, Part, Role, StreamResponse, Task, TaskState, TaskStatus, TaskStatusUpdateEvent
from a2a.utils.proto_utils import to_stream_response
from channels.layers import get_channel_layer
from django.conf import settings
from django.db.models import BooleanField, ExpressionWrapper, Q
from django.db.models.functions import Now

from autobot.supervise import cancel, supervised
from autobot.workers import WORKER_ID, worker_gone
from interop.a2a_store import TERMINAL, version_number
from interop.http import on_lanes
from interop.models import A2aTask

log = logging.getLogger("interop.a2a")
T = TypeVar("T")

CHECK_SECONDS = 5.0  # silence after which a subscription re-joins and compares with the row
RUNNING = frozenset({TaskState.TASK_STATE_SUBMITTED, TaskState.TASK_STATE_WORKING})
LOST_TEXT = ("the server process running this task stopped before it finished; nothing more will come "
             "from this run: send the request again")
_PLAIN_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def group_name(task_id: str) -> str:
    safe = task_id if _PLAIN_ID.fullmatch(task_id) else hashlib.sha256(task_id.encode()).hexdigest()[:40]
    return f"interop.a2a_task.{safe}"


def beat_seconds() -> float:
    return settings.A2A_TASK_LOST_SECONDS / 3


class ChannelLayerTaskEventStream(TaskEventStream):
    async def publish(self, task_id: str, event: VersionedEvent) -> None:
        message = {"type": "interop.a2a_event", "version": version_number(event.version),
                   "event": to_stream_response(event.event).SerializeToString()}
        try:
            await get_channel_layer().group_send(group_name(task_id), message)
        except Exception:  # noqa: BLE001 - the run goes on; subscribers catch up from the row
            log.warning("could not publish an event of A2A task %s", task_id, exc_info=True)

    async def subscribe(self, task_id: str, *, after: TaskVersion):
        layer = get_channel_layer()
        group, channel = group_name(task_id), await layer.new_channel()
        inbox: asyncio.Queue[dict] = asyncio.Queue()
        seen = version_number(after)
        reader = asyncio.create_task(supervised("a2a task subscription", functools.partial(
            _read, layer, channel, inbox)))
        try:
            check, first = True, True
            while True:
                if check:
                    await _join(layer, group, channel)
                    try:
                        found = await _check(task_id, seen)
                    except Exception:
                        if first:
                            raise
                        # A database blip: the subscription goes on; the next check retries.
                        log.warning("could not compare A2A task %s with its subscription", task_id, exc_info=True)
                        found = []
                    first = False
                    if found is None:  # the task was deleted: nothing more will come
                        return
                    for versioned in found:
                        seen = max(seen, version_number(versioned.version))
                        if isinstance(versioned.event, TaskStatusUpdateEvent):  # our verdict: for the others too
                            await self.publish(task_id, versioned)
                        yield versioned
                try:
                    message = await asyncio.wait_for(inbox.get(), timeout=CHECK_SECONDS)
                except TimeoutError:
                    check = True
                    continue
                check = False
                if message.get("type") != "interop.a2a_event" or message["version"] <= seen:
                    continue
                seen = message["version"]
                yield VersionedEvent(event=_event(message["event"]), version=TaskVersion(seen))
        finally:
            cancel(reader)
            with contextlib.suppress(Exception):
                await layer.group_discard(group, channel)

    async def destroy(self, task_id: str) -> None:
        """Nothing to release: a group without members costs nothing."""


def _event(data: bytes):
    response = StreamResponse.FromString(data)
    return getattr(response, response.WhichOneof("payload"))


async def _read(layer, channel: str, inbox: asyncio.Queue) -> None:
    while True:
        inbox.put_nowait(await layer.receive(channel))


async def _join(layer, group: str, channel: str) -> None:
    try:
        await layer.group_add(group, channel)
    except Exception:  # noqa: BLE001 - Redis away: the row still tells what happened
        log.warning("could not join %s; comparing with the stored task only", group, exc_info=True)


@on_lanes
async def _check(task_id: str, seen: int) -> list[VersionedEvent] | None:
    """What the row holds that the subscriber has not seen, or its verdict that the run is lost;
    None when the task no longer exists."""
    row = await A2aTask.objects.filter(pk=task_id).only("state", "version", "worker", "data").afirst()
    if row is None:
        return None
    if row.version > seen:
        return [VersionedEvent(event=Task.FromString(bytes(row.data)), version=TaskVersion(row.version))]
    if row.state in RUNNING and await _lost(row):
        failed = await _fail(row)
        return [failed] if failed is not None else []
    return []


def _stale() -> Q:
    """No beat from the worker running it for A2A_TASK_LOST_SECONDS (the database's clock)."""
    return Q(beat__isnull=True) | Q(beat__lt=Now() - timedelta(seconds=settings.A2A_TASK_LOST_SECONDS))


async def _lost(row: A2aTask) -> bool:
    if worker_gone(row.worker):
        return True
    return await A2aTask.objects.filter(_stale(), pk=row.pk, version=row.version).aexists()


async def _fail(row: A2aTask) -> VersionedEvent | None:
    """Write the task failed if nobody wrote it since `row` was read (and, its worker being on
    another host, no beat came meanwhile); the event, or None."""
    task = Task.FromString(bytes(row.data))
    status = TaskStatus(state=TaskState.TASK_STATE_FAILED, message=Message(
        role=Role.ROLE_AGENT, message_id=uuid.uuid4().hex, task_id=task.id, context_id=task.context_id,
        parts=[Part(text=LOST_TEXT)]))
    status.timestamp.GetCurrentTime()
    task.status.CopyFrom(status)
    version = row.version + 1
    unchanged = A2aTask.objects.filter(pk=row.pk, version=row.version)
    if not worker_gone(row.worker):
        unchanged = unchanged.filter(_stale())
    written = await unchanged.aupdate(state=TaskState.TASK_STATE_FAILED, data=task.SerializeToString(),
                                      version=version, worker=WORKER_ID, beat=Now(), updated=Now())
    if not written:
        return None  # it moved on meanwhile: the next check sends what it became
    log.warning("A2A task %s: its worker %s stopped mid-run; marked failed", row.pk, row.worker)
    event = TaskStatusUpdateEvent(task_id=task.id, context_id=task.context_id, status=status)
    return VersionedEvent(event=event, version=TaskVersion(version))


@on_lanes
async def settle(task_ids: list[str]) -> dict[str, TaskStatus]:
    """Of these tasks (ones a client is being sent), write `failed` those still submitted or
    working whose worker has stopped, and tell their subscribers; their new status by id."""
    rows = (A2aTask.objects.filter(pk__in=task_ids, state__in=RUNNING)
            .annotate(stale=ExpressionWrapper(_stale(), output_field=BooleanField()))
            .only("state", "version", "worker", "data"))
    settled = {}
    async for row in rows:
        if not (row.stale or worker_gone(row.worker)):
            continue
        failed = await _fail(row)
        if failed is not None:
            await ChannelLayerTaskEventStream().publish(row.pk, failed)
            settled[row.pk] = failed.event.status
    return settled


async def run(task_id: str, work: Awaitable[T]) -> T | None:
    """Run `work` for the task on this worker: beat on its row meanwhile (so subscribers elsewhere
    know it runs), and watch for the task ending elsewhere (CancelTask on another worker). Then
    `work` is cancelled and this returns None."""
    job = asyncio.ensure_future(work)
    beat = asyncio.create_task(_beat(task_id))
    watch = asyncio.create_task(supervised("a2a task watch", functools.partial(_until_ended, task_id)))
    try:
        await asyncio.wait({job, watch}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        cancel(beat)
        cancel(watch)
        if not job.done():
            cancel(job)
            await asyncio.wait({job})  # its clean-up (an audit of the cancelled call) finishes first
    if job.cancelled():
        log.info("A2A task %s ended on another worker; its call here was stopped", task_id)
        return None
    return job.result()


async def _until_ended(task_id: str) -> None:
    """Return once the task has ended: heard on its group, or read from its row after
    CHECK_SECONDS without an event (joining again then, as a subscription does)."""
    layer = get_channel_layer()
    group, channel = group_name(task_id), await layer.new_channel()
    inbox: asyncio.Queue[dict] = asyncio.Queue()
    reader = asyncio.create_task(supervised("a2a task watch", functools.partial(_read, layer, channel, inbox)))
    try:
        while True:
            await _join(layer, group, channel)
            if await ended(task_id):
                return
            with contextlib.suppress(TimeoutError):
                while not _final(await asyncio.wait_for(inbox.get(), timeout=CHECK_SECONDS)):
                    pass
                return
    finally:
        cancel(reader)
        with contextlib.suppress(Exception):
            await layer.group_discard(group, channel)


def _final(message: dict) -> bool:
    if message.get("type") != "interop.a2a_event":
        return False
    event = _event(message["event"])
    return isinstance(event, Task | TaskStatusUpdateEvent) and event.status.state in TERMINAL


@on_lanes
async def ended(task_id: str) -> bool:
    """True when the task's row says it has ended (cancelled, failed, completed)."""
    return await A2aTask.objects.filter(pk=task_id, state__in=TERMINAL).aexists()


async def _beat(task_id: str) -> None:
    while True:
        await asyncio.sleep(beat_seconds())
        try:
            await _touch(task_id)
        except Exception:  # noqa: BLE001 - a missed beat is retried at the next one
            log.warning("could not record that this worker still runs A2A task %s", task_id, exc_info=True)


@on_lanes
async def _touch(task_id: str) -> None:
    await A2aTask.objects.filter(pk=task_id).exclude(state__in=TERMINAL).aupdate(worker=WORKER_ID, beat=Now())
