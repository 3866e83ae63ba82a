"""Crawl jobs: validation, the server-side task that runs `knowledge.crawler`, progress on the
channel layer (group ``knowledge.crawl.<id>``), cancellation."""

from __future__ import annotations

import asyncio
import logging
import time

import re2
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from autobot import audit
from autobot.caps import CapReached, cap_reserve
from autobot.errors import InvalidInput, LimitExceeded, NotFound, RateLimited
from autobot.lanes import spawn
from autobot.workers import WORKER_ID, worker_gone
from knowledge.crawler import (
    CrawlConfig,
    Crawler,
    CrawlError,
    CrawlStats,
    Page,
    UnsafeURL,
    check_url_allowed,
    compile_pattern,
    normalise_url,
)
from knowledge.models import CrawlJob, KnowledgeEntry
from knowledge.services.entries import clean_tags, content_check, entry_store

log = logging.getLogger(__name__)

# The running crawls of this process: job id → (task, crawler). A job is cancelled by stopping
# its crawler here, or (another worker's job) by its status, which the runner checks.
_RUNNING: dict[int, tuple[asyncio.Task, Crawler | None]] = {}
PROGRESS_EVERY = 0.25  # seconds between stored/pushed progress updates
STATUS_CHECK_EVERY = 2.0  # seconds between checks for a cancel from another process


def crawl_group(crawl_id: int) -> str:
    return f"knowledge.crawl.{crawl_id}"


def visible_crawls(user) -> QuerySet:
    qs = CrawlJob.objects.all()
    return qs if user.is_staff else qs.filter(owner_id=user.pk)


def crawl_as_dict(job: CrawlJob) -> dict:
    fields = ("id", "url", "status", "max_pages", "max_depth", "same_domain", "include", "exclude", "category",
              "tags", "shared", "pages_found", "pages_fetched", "pages_ingested", "pages_unchanged", "pages_skipped",
              "pages_failed", "errors", "detail")
    data = {name: getattr(job, name) for name in fields}
    for name in ("created_at", "started_at", "finished_at"):
        value = getattr(job, name)
        data[name] = value.isoformat() if value else None
    data["owner"] = job.owner.get_username() if "owner" in job._state.fields_cache else None
    return data


async def crawl_start(*, user, url: str, max_pages: int = 50, max_depth: int = 2, same_domain: bool = True,
                      include: list[str] | None = None, exclude: list[str] | None = None, category: str = "",
                      tags: list[str] | None = None, shared: bool = False) -> CrawlJob:
    """Validate, record the job and start it as a task of this server's event loop."""
    start = normalise_url(url or "")
    if start is None:
        raise InvalidInput(f"only http and https URLs can be crawled, not {url[:200]!r}", code="invalid_url")
    if not 1 <= max_pages <= settings.KNOWLEDGE_CRAWL_MAX_PAGES:
        raise InvalidInput(f"max_pages must be between 1 and {settings.KNOWLEDGE_CRAWL_MAX_PAGES}")
    if not 0 <= max_depth <= settings.KNOWLEDGE_CRAWL_MAX_DEPTH:
        raise InvalidInput(f"max_depth must be between 0 and {settings.KNOWLEDGE_CRAWL_MAX_DEPTH}")
    include, exclude = _patterns(include, "include"), _patterns(exclude, "exclude")
    try:
        await check_url_allowed(start, allow_private=settings.KNOWLEDGE_CRAWL_ALLOW_PRIVATE)
    except UnsafeURL as exc:
        raise InvalidInput(str(exc), code="url_not_allowed") from exc
    except CrawlError as exc:
        raise InvalidInput(str(exc), code="invalid_url") from exc
    await _end_orphans(owner=user)
    fields = dict(owner=user, url=start, max_pages=max_pages, max_depth=max_depth, same_domain=same_domain,
                  include=include, exclude=exclude, category=(category or "").strip()[:100], tags=clean_tags(tags),
                  shared=shared, worker=WORKER_ID)
    try:
        # Counted and created under one lock: concurrent starts (any worker) can't all pass the cap.
        active = CrawlJob.objects.filter(owner=user, status__in=CrawlJob.ACTIVE)
        job = await cap_reserve(owner=user, queryset=active, cap=settings.KNOWLEDGE_CRAWL_MAX_ACTIVE,
                                create=lambda: CrawlJob.objects.create(**fields))
    except CapReached as exc:
        raise RateLimited(f"you already have {exc.count} crawls running; wait for one to finish or cancel it") from None
    # Registered before any await, so no other request sees this job without its task.
    task = spawn(_crawl_run(job.pk), name=f"knowledge-crawl-{job.pk}")
    _RUNNING[job.pk] = (task, None)
    task.add_done_callback(lambda _t, job_id=job.pk: _RUNNING.pop(job_id, None))
    await audit.record(actor=user, action="knowledge.crawl_started", target_type="crawl_job", target_id=str(job.pk),
                       data={"url": start, "max_pages": max_pages, "max_depth": max_depth})
    job.owner = user
    return job


def _reason(exc: Exception) -> str:
    reason = exc.args[0] if exc.args else exc
    return reason.decode(errors="replace") if isinstance(reason, bytes) else str(reason)


def _patterns(patterns: list[str] | None, name: str) -> list[str]:
    cleaned = [p for p in (str(p).strip() for p in patterns or []) if p]
    if len(cleaned) > 20:
        raise InvalidInput(f"at most 20 {name} patterns")
    for pattern in cleaned:
        try:
            compile_pattern(pattern)
        except re2.error as exc:
            raise InvalidInput(
                f"{name} pattern {pattern[:100]!r} is not a valid regular expression (RE2 syntax: no backreferences"
                f" or lookaround): {_reason(exc)}"
            ) from exc
    return cleaned


async def _end_orphans(**filters) -> int:
    """Jobs left active by a server process that has stopped (or by this one, without a task)
    will never finish: mark them failed, so they stop counting against the user's limit."""
    ended = 0
    jobs = CrawlJob.objects.filter(status__in=CrawlJob.ACTIVE, **filters).select_related("owner")
    async for job in jobs.only("pk", "worker", "url", "owner"):
        lost_here = job.worker == WORKER_ID and job.pk not in _RUNNING
        if lost_here or worker_gone(job.worker):
            ended += await sync_to_async(_mark_interrupted)(job)
    return ended


def _mark_interrupted(job: CrawlJob) -> int:
    """Mark `job` failed and audit it in one transaction: both or neither. Whoever marks it
    (several workers may look at once) records it, once."""
    with transaction.atomic():
        marked = CrawlJob.objects.filter(pk=job.pk, status__in=CrawlJob.ACTIVE).update(
            status=CrawlJob.Status.FAILED, finished_at=timezone.now(),
            detail="interrupted: the server process running this crawl stopped; start it again")
        if marked:
            audit.record_sync(actor=job.owner, action="knowledge.crawl_interrupted", target_type="crawl_job",
                              target_id=str(job.pk), data={"url": job.url, "worker": job.worker})
        return marked


async def crawls_end_orphans() -> int:
    """Mark failed (and audit) every crawl left active by a process that has stopped: run when
    a worker starts, so a killed worker's crawls end without waiting for someone to look."""
    return await _end_orphans()


async def crawl_get(*, user, crawl_id: int) -> CrawlJob:
    await _end_orphans(pk=crawl_id)
    job = await visible_crawls(user).select_related("owner").filter(pk=crawl_id).afirst()
    if job is None:
        raise NotFound(f"crawl {crawl_id} not found", code="crawl_not_found")
    return job


async def crawl_list(*, user, status: str | None = None) -> QuerySet:
    await _end_orphans() if user.is_staff else await _end_orphans(owner=user)
    qs = visible_crawls(user).select_related("owner")
    return qs.filter(status=status) if status else qs


async def crawl_cancel(*, user, crawl_id: int) -> CrawlJob:
    job = await crawl_get(user=user, crawl_id=crawl_id)
    if not job.is_active:
        return job
    running = _RUNNING.get(job.pk)
    if running and running[1] is not None:
        running[1].stop()  # graceful: the runner records the final counters
    elif running:
        running[0].cancel()
    # Mark it here too, so a job of another worker (or one orphaned by a restart) ends.
    await CrawlJob.objects.filter(pk=job.pk, status__in=CrawlJob.ACTIVE).aupdate(
        status=CrawlJob.Status.CANCELLED, finished_at=timezone.now()
    )
    await audit.record(actor=user, action="knowledge.crawl_cancelled", target_type="crawl_job",
                       target_id=str(job.pk), data={"url": job.url})
    await job.arefresh_from_db(from_queryset=CrawlJob.objects.select_related("owner"))
    await _publish(job)
    return job


async def crawl_wait(crawl_id: int) -> None:
    """Wait for this process's task of a crawl to end (tests and management commands)."""
    running = _RUNNING.get(crawl_id)
    if running:
        await asyncio.gather(running[0], return_exceptions=True)


async def _crawl_run(job_id: int) -> None:
    job = await CrawlJob.objects.select_related("owner").aget(pk=job_id)
    job.status, job.started_at = CrawlJob.Status.RUNNING, timezone.now()
    await job.asave(update_fields=["status", "started_at"])
    await _publish(job)
    config = CrawlConfig(
        start_url=job.url, max_pages=job.max_pages, max_depth=job.max_depth, same_domain=job.same_domain,
        include=job.include, exclude=job.exclude, concurrency=settings.KNOWLEDGE_CRAWL_CONCURRENCY,
        per_host_delay=settings.KNOWLEDGE_CRAWL_DELAY, timeout=settings.KNOWLEDGE_CRAWL_TIMEOUT,
        max_bytes=settings.KNOWLEDGE_CRAWL_MAX_BYTES, allow_private=settings.KNOWLEDGE_CRAWL_ALLOW_PRIVATE,
    )
    runner = _CrawlProgress(job)
    crawler = Crawler(config, ingest=runner.ingest, progress=runner.progress)
    runner.crawler = crawler
    if job_id in _RUNNING:
        _RUNNING[job_id] = (_RUNNING[job_id][0], crawler)
    try:
        result = await crawler.run()
        final = CrawlJob.Status.CANCELLED if result.cancelled else CrawlJob.Status.DONE
        await runner.finish(final)
    except asyncio.CancelledError:
        await asyncio.shield(runner.finish(CrawlJob.Status.CANCELLED))
        raise
    except CrawlError as exc:
        await runner.finish(CrawlJob.Status.FAILED, detail=str(exc))
    except Exception as exc:
        log.exception("crawl %s failed", job_id)
        await runner.finish(CrawlJob.Status.FAILED, detail=f"internal error: {exc.__class__.__name__}")


class _CrawlProgress:
    """Connects a crawler to the job row, the entries and the channel layer."""

    def __init__(self, job: CrawlJob) -> None:
        self.job = job
        self.crawler: Crawler | None = None
        self._last_push = 0.0
        self._last_check = time.monotonic()

    async def ingest(self, page: Page) -> str:
        job = self.job
        try:
            content = await asyncio.to_thread(content_check, page.text)  # a page can be megabytes of text
            stored = await entry_store(
                owner=job.owner, title=page.title[:300], content=content,
                source_type=KnowledgeEntry.SourceType.WEB, source=page.url[:2000], category=job.category,
                tags=job.tags, shared=job.shared,
            )
        except (InvalidInput, LimitExceeded) as exc:
            raise CrawlError(exc.detail) from exc
        return "unchanged" if stored.outcome in ("unchanged", "duplicate") else stored.outcome

    async def progress(self, stats: CrawlStats) -> None:
        now = time.monotonic()
        if now - self._last_check > STATUS_CHECK_EVERY:
            self._last_check = now
            status = await CrawlJob.objects.filter(pk=self.job.pk).values_list("status", flat=True).afirst()
            if status == CrawlJob.Status.CANCELLED and self.crawler is not None:
                self.crawler.stop()
        if now - self._last_push >= PROGRESS_EVERY:
            self._last_push = now
            self._copy(stats)
            await self.job.asave(update_fields=_COUNTERS)
            await _publish(self.job)

    def _copy(self, stats: CrawlStats) -> None:
        for name in _COUNTERS:
            setattr(self.job, name, getattr(stats, name))

    async def finish(self, status: str, *, detail: str = "") -> None:
        if self.crawler is not None:
            self._copy(self.crawler.stats)
        job = self.job
        current = await CrawlJob.objects.filter(pk=job.pk).values_list("status", flat=True).afirst()
        job.status = CrawlJob.Status.CANCELLED if current == CrawlJob.Status.CANCELLED else status
        job.detail, job.finished_at = detail, timezone.now()
        await job.asave(update_fields=[*_COUNTERS, "status", "detail", "finished_at"])
        await audit.record(actor=job.owner, action="knowledge.crawl_finished", target_type="crawl_job",
                           target_id=str(job.pk), data={"url": job.url, "status": job.status, "detail": detail,
                           "ingested": job.pages_ingested, "failed": job.pages_failed})
        await _publish(job)


_COUNTERS = ["pages_found", "pages_fetched", "pages_ingested", "pages_unchanged", "pages_skipped", "pages_failed",
             "errors"]


async def _publish(job: CrawlJob) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        await layer.group_send(crawl_group(job.pk), {"type": "knowledge.progress", "crawl": crawl_as_dict(job)})
    except Exception:  # progress is best effort: a full channel layer must not end the crawl
        log.warning("could not publish progress of crawl %s", job.pk, exc_info=True)
