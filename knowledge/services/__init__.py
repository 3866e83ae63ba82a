"""Knowledge base services: every state change of the app goes through here.

Entries, documents and search live in `entries`; crawl jobs in `crawls`. Callers import from
this package (`knowledge.services.entry_search` is the cross-app contract).
"""

from django.db import connection
from django.db.models import Count

from knowledge.models import CrawlJob, KnowledgeChunk, KnowledgeEntry
from knowledge.services.crawls import (
    crawl_as_dict,
    crawl_cancel,
    crawl_get,
    crawl_group,
    crawl_list,
    crawl_start,
    crawl_wait,
    visible_crawls,
)
from knowledge.services.entries import (
    Stored,
    clean_tags,
    content_hash,
    document_ingest,
    entry_as_dict,
    entry_create,
    entry_delete,
    entry_get,
    entry_list,
    entry_search,
    entry_update,
    visible_entries,
)

__all__ = [
    "Stored", "clean_tags", "content_hash", "crawl_as_dict", "crawl_cancel", "crawl_get", "crawl_group", "crawl_list",
    "crawl_start", "crawl_wait", "document_ingest", "entry_as_dict", "entry_create", "entry_delete", "entry_get",
    "entry_list", "entry_search", "entry_update", "stats", "visible_crawls", "visible_entries",
]


async def stats(*, user) -> dict:
    """Counts of what the user can see."""
    entries = visible_entries(KnowledgeEntry.objects.all(), user)
    by_type = {row["source_type"]: row["n"] async for row in entries.values("source_type").annotate(n=Count("id"))}
    categories = [
        {"category": row["category"], "count": row["n"]}
        async for row in entries.exclude(category="").values("category").annotate(n=Count("id")).order_by("-n")[:50]
    ]
    chunks = await KnowledgeChunk.objects.filter(entry__in=entries).acount()
    crawls = visible_crawls(user)
    return {
        "entries": sum(by_type.values()),
        "chunks": chunks,
        "by_source_type": {t: by_type.get(t, 0) for t in KnowledgeEntry.SourceType.values},
        "categories": categories,
        "crawls": await crawls.acount(),
        "crawls_active": await crawls.filter(status__in=CrawlJob.ACTIVE).acount(),
        "search_backend": "postgresql" if connection.vendor == "postgresql" else "sqlite-fts5",
    }
