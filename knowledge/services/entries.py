"""Entries: visibility, storing (one transaction with chunks and index), notes, documents, search.

An entry is seen by its owner, by everyone signed in when ``shared``, and by staff; anything
else is reported as not found. Storing an entry and its chunks is one transaction (the search
index follows the chunks inside it), so nothing is ever half-stored.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from dataclasses import dataclass

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet

from autobot import audit
from autobot.errors import Conflict, Forbidden, InvalidInput, LimitExceeded, NotFound
from knowledge import search
from knowledge.chunking import chunk_text
from knowledge.extract import ExtractionError, extract, normalise_text
from knowledge.models import KnowledgeChunk, KnowledgeEntry

log = logging.getLogger(__name__)

MAX_TAGS = 20
_TAG = re.compile(r"^[\w.+-]{1,50}$")


# --- visibility ---------------------------------------------------------------


def visible_entries(qs: QuerySet, user) -> QuerySet:
    if user.is_staff:
        return qs
    return qs.filter(Q(owner_id=user.pk) | Q(shared=True))


def _can_edit(entry: KnowledgeEntry, user) -> bool:
    return user.is_staff or entry.owner_id == user.pk


async def _entry_for(user, entry_id: int, *, edit: bool = False) -> KnowledgeEntry:
    entry = await visible_entries(KnowledgeEntry.objects.select_related("owner"), user).filter(pk=entry_id).afirst()
    if entry is None:
        raise NotFound(f"knowledge entry {entry_id} not found", code="entry_not_found")
    if edit and not _can_edit(entry, user):
        raise Forbidden(f"knowledge entry {entry_id} is shared with you but only its owner can change it")
    return entry


# --- storing --------------------------------------------------------------------


def clean_tags(tags: list[str] | None) -> list[str]:
    cleaned: list[str] = []
    for tag in tags or []:
        tag = str(tag).strip().lower()
        if not tag:
            continue
        if not _TAG.match(tag):
            raise InvalidInput(f"tag {tag[:60]!r} is not valid: use up to 50 letters, digits, '.', '+', '-' or '_'")
        if tag not in cleaned:
            cleaned.append(tag)
    if len(cleaned) > MAX_TAGS:
        raise InvalidInput(f"at most {MAX_TAGS} tags per entry")
    return cleaned


def content_hash(content: str) -> str:
    return hashlib.sha256(content.encode()).hexdigest()


def content_check(content: str) -> str:
    content = normalise_text(content or "")
    if not content:
        raise InvalidInput("content is empty", code="empty_content")
    if len(content) > settings.KNOWLEDGE_MAX_ENTRY_CHARS:
        raise LimitExceeded(f"content is longer than {settings.KNOWLEDGE_MAX_ENTRY_CHARS} characters")
    return content


def _chunks_for(title: str, content: str) -> list[KnowledgeChunk]:
    """The chunks of an entry with this title and content, not saved and not yet tied to it.

    Made before the store's transaction, in a thread of its own (``_chunks_off_lanes``): for the
    largest entries this is a fifth of a second of CPU, which would otherwise hold SQLite's write
    lock, and a lane, that the other requests' writes and reads wait for."""
    chunks = chunk_text(content, size=settings.KNOWLEDGE_CHUNK_SIZE, overlap=settings.KNOWLEDGE_CHUNK_OVERLAP)
    return [
        KnowledgeChunk(
            position=c.index,
            text=c.text,
            heading_path=c.heading[:1000],
            search_heading=" > ".join((title, *c.heading_path))[:1400],
        )
        for c in chunks
    ]


async def _chunks_off_lanes(title: str, content: str) -> list[KnowledgeChunk]:
    return await asyncio.to_thread(_chunks_for, title, content)


def _save_with_chunks(entry: KnowledgeEntry, chunks: list[KnowledgeChunk] | None) -> None:
    """Save the entry and, given its new chunks (``_chunks_for``), replace the old ones with
    them; the caller holds the transaction."""
    entry.tag_index = "," + ",".join(entry.tags) + "," if entry.tags else ""
    if chunks is not None:
        entry.chunk_count = len(chunks)
        entry.save()
        KnowledgeChunk.objects.filter(entry=entry).delete()
        for chunk in chunks:
            chunk.entry = entry
        KnowledgeChunk.objects.bulk_create(chunks, batch_size=500)
    else:
        entry.save()


@dataclass
class Stored:
    entry: KnowledgeEntry
    outcome: str  # created | updated | unchanged | duplicate


def _same_source(owner, source_type: str, source: str) -> KnowledgeEntry | None:
    """The entry a re-upload or re-crawl of `source` updates in place (none for notes)."""
    if not source or source_type == KnowledgeEntry.SourceType.NOTE:
        return None
    same = KnowledgeEntry.objects.select_related("owner").filter(owner=owner, source_type=source_type, source=source)
    return same.order_by("id").first()


def _same_content(owner, digest: str) -> KnowledgeEntry | None:
    same = KnowledgeEntry.objects.select_related("owner").filter(owner=owner, content_hash=digest)
    return same.order_by("id").first()


def _store_writes_chunks(*, owner, title: str, content: str, source_type: str, source: str, **_) -> bool:
    """Whether storing this entry would (re)write its chunks: not when it is unchanged or a
    duplicate (a re-crawl of the same page), so those pay no chunking (a read, before it)."""
    digest = content_hash(content)
    existing = _same_source(owner, source_type, source)
    if existing is not None:
        return not (existing.content_hash == digest and existing.title == title)
    return _same_content(owner, digest) is None


def _entry_store_sync(*, owner, title: str, content: str, source_type: str, source: str, category: str,
                      tags: list[str], shared: bool, chunks: list[KnowledgeChunk] | None) -> Stored:
    """Create or update-in-place by (owner, source), skipping identical content; `chunks` are
    those of `title` and `content`, made beforehand when `_store_writes_chunks` said they would
    be written (made here if what it read has changed since)."""
    digest = content_hash(content)
    with transaction.atomic():
        existing = _same_source(owner, source_type, source)
        if existing is not None:
            if existing.content_hash == digest and existing.title == title:
                return Stored(existing, "unchanged")
            existing.title, existing.content, existing.content_hash = title, content, digest
            existing.category = category or existing.category
            existing.tags = tags or existing.tags
            existing.shared = shared or existing.shared
            _save_with_chunks(existing, chunks if chunks is not None else _chunks_for(title, content))
            return Stored(existing, "updated")
        duplicate = _same_content(owner, digest)
        if duplicate is not None:
            return Stored(duplicate, "duplicate")
        entry = KnowledgeEntry(
            owner=owner, title=title, content=content, source_type=source_type, source=source,
            category=category, tags=tags, shared=shared, content_hash=digest,
        )
        _save_with_chunks(entry, chunks if chunks is not None else _chunks_for(title, content))
        return Stored(entry, "created")


async def entry_store(**fields) -> Stored:
    writes = await sync_to_async(_store_writes_chunks)(**fields)
    chunks = await _chunks_off_lanes(fields["title"], fields["content"]) if writes else None
    return await sync_to_async(_entry_store_sync)(**fields, chunks=chunks)


def _title_for(title: str | None, content: str) -> str:
    title = (title or "").strip()
    if title:
        return title[:300]
    first = content.strip().split("\n", 1)[0].lstrip("# ").strip()
    return (first[:80] + "…") if len(first) > 80 else (first or "Untitled")


# --- entries ----------------------------------------------------------------------


async def entry_create(*, user, title: str | None, content: str, category: str = "",
                       tags: list[str] | None = None, shared: bool = False, source_type: str = "note",
                       source: str = "") -> KnowledgeEntry:
    """Store a note (or any text). Identical content already stored by the user is a 409."""
    content = await asyncio.to_thread(content_check, content)  # megabytes of text: off the loop
    if source_type not in KnowledgeEntry.SourceType.values:
        raise InvalidInput(f"source_type must be one of {', '.join(KnowledgeEntry.SourceType.values)}")
    stored = await entry_store(
        owner=user, title=_title_for(title, content), content=content, source_type=source_type,
        source=(source or "")[:2000], category=(category or "").strip()[:100], tags=clean_tags(tags), shared=shared,
    )
    if stored.outcome == "duplicate":
        raise Conflict(
            f"the same content is already stored as entry {stored.entry.pk} ({stored.entry.title!r})",
            code="duplicate_entry",
        )
    await _audit(user, f"knowledge.entry_{stored.outcome}", stored.entry)
    return stored.entry


async def entry_get(*, user, entry_id: int) -> KnowledgeEntry:
    return await _entry_for(user, entry_id)


async def entry_list(*, user, category: str | None = None, tag: str | None = None, source_type: str | None = None,
                     source: str | None = None, owner: str | None = None) -> QuerySet:
    """A filtered queryset of the entries the user can see (paginate it)."""
    qs = visible_entries(KnowledgeEntry.objects.select_related("owner"), user)
    if category:
        qs = qs.filter(category=category)
    if tag:
        qs = qs.filter(tag_index__contains=f",{tag.strip().lower()},")
    if source_type:
        qs = qs.filter(source_type=source_type)
    if source:
        qs = qs.filter(source__icontains=source)
    if owner == "me":
        qs = qs.filter(owner_id=user.pk)
    return qs.defer("content")


async def entry_update(*, user, entry_id: int, title: str | None = None, content: str | None = None,
                       category: str | None = None, tags: list[str] | None = None,
                       shared: bool | None = None) -> KnowledgeEntry:
    entry = await _entry_for(user, entry_id, edit=True)
    changed: list[str] = []
    rechunk = False
    if content is not None:
        content = await asyncio.to_thread(content_check, content)  # megabytes of text: off the loop
        if content != entry.content:
            entry.content, entry.content_hash = content, content_hash(content)
            changed.append("content")
            rechunk = True
    if title is not None and title.strip() and title.strip()[:300] != entry.title:
        entry.title = title.strip()[:300]
        changed.append("title")
        rechunk = True  # the title is indexed with every chunk
    if category is not None and category.strip() != entry.category:
        entry.category = category.strip()[:100]
        changed.append("category")
    if tags is not None and clean_tags(tags) != entry.tags:
        entry.tags = clean_tags(tags)
        changed.append("tags")
    if shared is not None and shared != entry.shared:
        entry.shared = shared
        changed.append("shared")
    if changed:
        chunks = await _chunks_off_lanes(entry.title, entry.content) if rechunk else None
        await sync_to_async(_update_sync)(entry, chunks)
        await _audit(user, "knowledge.entry_updated", entry, changed=changed)
    return entry


def _update_sync(entry: KnowledgeEntry, chunks: list[KnowledgeChunk] | None) -> None:
    with transaction.atomic():
        _save_with_chunks(entry, chunks)


async def entry_delete(*, user, entry_id: int) -> None:
    entry = await _entry_for(user, entry_id, edit=True)
    await _audit(user, "knowledge.entry_deleted", entry)
    await sync_to_async(_delete_sync)(entry)


def _delete_sync(entry: KnowledgeEntry) -> None:
    with transaction.atomic():
        entry.delete()  # chunks cascade; triggers/generated columns follow


async def document_ingest(*, user, data: bytes, filename: str, content_type: str | None = None,
                          title: str | None = None, category: str = "", tags: list[str] | None = None,
                          shared: bool = False) -> Stored:
    """Extract text from an uploaded file and store it; re-uploading a changed file updates it."""
    limit = settings.KNOWLEDGE_MAX_UPLOAD_BYTES
    if len(data) > limit:
        raise LimitExceeded(f"{filename!r} is {len(data)} bytes; the limit is {limit}", code="too_large")
    try:
        doc = await asyncio.to_thread(extract, data, filename=filename, content_type=content_type,
                                      pdf_max_operations=settings.KNOWLEDGE_PDF_MAX_OPERATIONS)
    except ExtractionError as exc:
        raise InvalidInput(f"cannot read {filename!r}: {exc}", code="unparseable_document") from exc
    content = await asyncio.to_thread(content_check, doc.text)  # up to the upload limit of text: off the loop
    stored = await entry_store(
        owner=user, title=(title or doc.title or filename)[:300], content=content,
        source_type=KnowledgeEntry.SourceType.DOCUMENT, source=filename[:2000],
        category=(category or "").strip()[:100], tags=clean_tags(tags), shared=shared,
    )
    if stored.outcome in ("created", "updated"):
        await _audit(user, f"knowledge.entry_{stored.outcome}", stored.entry, format=doc.format, bytes=len(data))
    return stored


async def _audit(user, action: str, entry: KnowledgeEntry, **data) -> None:
    await audit.record(
        actor=user, action=action, target_type="knowledge_entry", target_id=str(entry.pk),
        data={"title": entry.title, "source_type": entry.source_type, "source": entry.source, **data},
    )


# --- search -----------------------------------------------------------------------


async def entry_search(*, user, q: str, limit: int = 10, category=None, tag=None, prefix: bool = False) -> list[dict]:
    """Entries best matching ``q``, one dict per entry with its best chunk (the cross-app contract)."""
    if not (q or "").strip():
        raise InvalidInput("the search query is empty", code="empty_query")
    limit = max(1, min(int(limit), 50))
    scope = search.Scope(
        user_id=None if user.is_staff else user.pk, category=category or None, tag=(tag or "").lower() or None
    )
    return await sync_to_async(_search_sync)(q[:500], scope, limit, prefix)


def _search_sync(q: str, scope: search.Scope, limit: int, prefix: bool) -> list[dict]:
    hits = search.search_chunks(q, scope=scope, limit=limit, prefix=prefix)
    if not hits:
        return []
    chunks = KnowledgeChunk.objects.select_related("entry").in_bulk([h.chunk_id for h in hits])
    results = []
    for hit in hits:
        chunk = chunks.get(hit.chunk_id)
        if chunk is None:  # deleted between the two queries
            continue
        entry = chunk.entry
        results.append({
            "entry_id": entry.pk,
            "title": entry.title,
            "source_type": entry.source_type,
            "source": entry.source,
            "snippet": hit.snippet,
            "content": chunk.text,
            "heading_path": chunk.heading_path,
            "score": round(hit.score, 4),
            "category": entry.category,
            "tags": entry.tags,
        })
    return results


def entry_as_dict(entry: KnowledgeEntry, *, user=None, content: bool = True) -> dict:
    data = {
        "id": entry.pk,
        "title": entry.title,
        "source_type": entry.source_type,
        "source": entry.source,
        "category": entry.category,
        "tags": entry.tags,
        "shared": entry.shared,
        "owner": entry.owner.get_username() if "owner" in entry._state.fields_cache else "",
        "chunk_count": entry.chunk_count,
        "content_hash": entry.content_hash,
        "created_at": entry.created_at,
        "updated_at": entry.updated_at,
    }
    if content:
        data["content"] = entry.content
        data["can_edit"] = user is not None and _can_edit(entry, user)
    return data
