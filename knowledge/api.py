"""Knowledge REST API (thin: parse, call one service, format). Mounted at /api/knowledge/."""

import asyncio
from typing import Literal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Q
from ninja import File, Form, Query, Router, Schema
from ninja.files import UploadedFile
from ninja.responses import Status

from autobot.auth import token_reading
from autobot.compiled import CompiledQuery, Param
from autobot.errors import InvalidInput, LimitExceeded, errors
from autobot.pagination import paginate
from autobot.prefetch import Prefetch
from autobot.responses import JSON_DATETIME, unchecked
from autobot.schemas import NOT_BLANK
from knowledge import services
from knowledge.models import KnowledgeEntry
from knowledge.schemas import (
    CrawlIn,
    CrawlList,
    CrawlOut,
    DocumentOut,
    KnowledgeEntryIn,
    KnowledgeEntryList,
    KnowledgeEntryOut,
    KnowledgeEntryPatch,
    SearchOut,
    StatsOut,
)

router = Router(tags=["knowledge"])
CrawlStatus = Literal["queued", "running", "done", "failed", "cancelled"]


class EntryFilters(Schema):
    category: str | None = None
    tag: str | None = None
    source_type: Literal["note", "document", "web"] | None = None
    source: str | None = None
    owner: str | None = None
    limit: int = 50
    offset: int = 0


# The fields of services.entry_as_dict(entry, content=False), in its order; "owner" is the
# owner's username, read with a join.
_ENTRY_FIELDS = ("id", "title", "source_type", "source", "category", "tags", "shared", "owner", "chunk_count",
                 "content_hash", "created_at", "updated_at")


def _entry_list_query(*, staff: bool, category: bool, tag: bool, source_type: bool, source: bool,
                      mine: bool) -> CompiledQuery:
    """services.entry_list's query (`visible_entries`: own and shared entries, all for staff; the
    filters given; newest first), compiled once per shape (autobot/compiled.py).
    tests/knowledge/test_entry_list.py checks that both give the same rows."""
    def param(name: str, field: str | None = None) -> Param:
        return Param(name, KnowledgeEntry._meta.get_field(field or name))

    def build():
        entries = KnowledgeEntry.objects.all()
        owner_pk = Param("user", KnowledgeEntry._meta.get_field("owner").target_field)
        if not staff:
            entries = entries.filter(Q(owner_id=owner_pk) | Q(shared=True))
        if category:
            entries = entries.filter(category=param("category"))
        if tag:
            entries = entries.filter(tag_index__contains=param("tag", "tag_index"))
        if source_type:
            entries = entries.filter(source_type=param("source_type"))
        if source:
            entries = entries.filter(source__icontains=param("source"))
        if mine:
            entries = entries.filter(owner_id=owner_pk)
        username = f"owner__{get_user_model().USERNAME_FIELD}"
        return entries.values_list(*(username if name == "owner" else name for name in _ENTRY_FIELDS))

    # The dates as the text the response carries (json_datetime's), read straight from the row.
    return CompiledQuery(build, text={"created_at": JSON_DATETIME, "updated_at": JSON_DATETIME})


_ENTRY_LISTS: dict[tuple, CompiledQuery] = {}


def _entry_page(user, *, category, tag, source_type, source, owner, limit, offset) -> tuple[list, int]:
    """The page of entries `user` sees with these filters (sync: on a lane)."""
    values = {"user": user.pk, "category": category, "source_type": source_type, "source": source,
              "tag": f",{tag.strip().lower()}," if tag else None}
    shape = {"staff": user.is_staff, "mine": owner == "me",
             **{name: bool(values[name]) for name in ("category", "tag", "source_type", "source")}}
    key = tuple(sorted(shape.items()))
    query = _ENTRY_LISTS.get(key) or _ENTRY_LISTS.setdefault(key, _entry_list_query(**shape))
    return query.page(values, limit=limit, offset=offset)


ENTRY_PAGE = Prefetch(_entry_page, EntryFilters)


@router.get("/entries", response=KnowledgeEntryList, auth=token_reading(ENTRY_PAGE),
            summary="Entries you can see, newest first (filter by category/tag/source)")
async def entry_list(request, filters: Query[EntryFilters]):
    # With a Bearer token the page was most likely read with the token check, in one lane job.
    rows, count = await ENTRY_PAGE.page(request, request.auth, **filters.model_dump())
    # Rendered without ninja re-validating each item against KnowledgeEntryList, which stays the
    # documented schema (autobot/responses.py).
    return unchecked(request, {"items": [dict(zip(_ENTRY_FIELDS, row, strict=True)) for row in rows], "count": count})


@router.post("/entries", response={201: KnowledgeEntryOut, **errors(409, 413, 422)}, summary="Add a note")
async def entry_create(request, body: KnowledgeEntryIn):
    entry = await services.entry_create(user=request.auth, title=body.title, content=body.content,
                                        category=body.category, tags=body.tags, shared=body.shared)
    return Status(201, services.entry_as_dict(entry, user=request.auth))


@router.get("/entries/{entry_id}", response={200: KnowledgeEntryOut, **errors(404)})
async def entry_get(request, entry_id: int):
    entry = await services.entry_get(user=request.auth, entry_id=entry_id)
    return services.entry_as_dict(entry, user=request.auth)


@router.patch("/entries/{entry_id}", response={200: KnowledgeEntryOut, **errors(403, 404, 413, 422)},
              summary="Change an entry (its owner or staff); content changes re-index it")
async def entry_update(request, entry_id: int, body: KnowledgeEntryPatch):
    entry = await services.entry_update(user=request.auth, entry_id=entry_id, title=body.title, content=body.content,
                                        category=body.category, tags=body.tags, shared=body.shared)
    return services.entry_as_dict(entry, user=request.auth)


@router.delete("/entries/{entry_id}", response={204: None, **errors(403, 404)})
async def entry_delete(request, entry_id: int):
    await services.entry_delete(user=request.auth, entry_id=entry_id)
    return Status(204, None)


@router.post("/documents", response={201: DocumentOut, 200: DocumentOut, **errors(413, 422)},
             summary="Upload a document (text, Markdown, HTML or PDF); re-uploading a file name updates it")
async def document_upload(request, file: File[UploadedFile], title: Form[str] = "", category: Form[str] = "",
                          tags: Form[str] = "", shared: Form[bool] = False):
    limit = settings.KNOWLEDGE_MAX_UPLOAD_BYTES
    if file.size is not None and file.size > limit:
        raise LimitExceeded(f"{file.name!r} is {file.size} bytes; the limit is {limit}")
    data = await asyncio.to_thread(file.read, limit + 1)
    if not file.name:
        raise InvalidInput("the uploaded file has no name")
    stored = await services.document_ingest(
        user=request.auth, data=data, filename=file.name, content_type=file.content_type, title=title or None,
        category=category, tags=[t for t in tags.replace(",", " ").split() if t], shared=shared,
    )
    body = {"outcome": stored.outcome, "entry": services.entry_as_dict(stored.entry, user=request.auth)}
    return Status(201 if stored.outcome == "created" else 200, body)


@router.get("/search", response={200: SearchOut, **errors(422)},
            summary="Ranked full-text search: the best chunk of each matching entry, with a highlighted snippet")
async def search(request, q: str = Query(..., min_length=1, max_length=1000, pattern=NOT_BLANK), limit: int = 10,
                 category: str | None = None, tag: str | None = None,
                 prefix: bool = False):
    items = await services.entry_search(user=request.auth, q=q, limit=limit, category=category, tag=tag,
                                        prefix=prefix)
    return {"items": items, "count": len(items), "query": q}


@router.get("/crawls", response=CrawlList, summary="Your crawl jobs (staff: all), newest first")
async def crawl_list(request, status: CrawlStatus | None = None, limit: int = 50, offset: int = 0):
    qs = await services.crawl_list(user=request.auth, status=status)
    items, count = await paginate(qs, limit=limit, offset=offset)
    return {"items": [services.crawl_as_dict(job) for job in items], "count": count}


@router.post("/crawls", response={202: CrawlOut, **errors(422, 429)},
             summary="Start crawling a site into the knowledge base; watch /ws/knowledge/crawls/{id}/")
async def crawl_start(request, body: CrawlIn):
    job = await services.crawl_start(user=request.auth, **body.dict())
    return Status(202, services.crawl_as_dict(job))


@router.get("/crawls/{crawl_id}", response={200: CrawlOut, **errors(404)})
async def crawl_get(request, crawl_id: int):
    return services.crawl_as_dict(await services.crawl_get(user=request.auth, crawl_id=crawl_id))


@router.post("/crawls/{crawl_id}/cancel", response={200: CrawlOut, **errors(404)}, summary="Cancel a crawl")
async def crawl_cancel(request, crawl_id: int):
    return services.crawl_as_dict(await services.crawl_cancel(user=request.auth, crawl_id=crawl_id))


@router.get("/stats", response=StatsOut, summary="Counts of what you can see")
async def stats(request):
    return await services.stats(user=request.auth)
