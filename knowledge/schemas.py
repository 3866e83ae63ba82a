from datetime import datetime

from django.conf import settings
from ninja import Field, Schema

from autobot.schemas import NOT_BLANK, JsonInt, StrictSchema


class KnowledgeEntryIn(StrictSchema):
    title: str = Field("", max_length=300, description="empty: taken from the first line")
    content: str = Field(..., min_length=1, pattern=NOT_BLANK)
    category: str = Field("", max_length=100)
    tags: list[str] = Field(default_factory=list)
    shared: bool = False


class KnowledgeEntryPatch(StrictSchema):
    title: str | None = Field(None, max_length=300)
    content: str | None = Field(None, min_length=1, pattern=NOT_BLANK)
    category: str | None = Field(None, max_length=100)
    tags: list[str] | None = None
    shared: bool | None = None


class KnowledgeEntrySummaryOut(Schema):
    id: int
    title: str
    source_type: str
    source: str
    category: str
    tags: list[str]
    shared: bool
    owner: str
    chunk_count: int
    content_hash: str
    created_at: datetime
    updated_at: datetime


class KnowledgeEntryOut(KnowledgeEntrySummaryOut):
    content: str
    can_edit: bool


class KnowledgeEntryList(Schema):
    items: list[KnowledgeEntrySummaryOut]
    count: int


class DocumentOut(Schema):
    outcome: str = Field(description="created | updated | unchanged | duplicate")
    entry: KnowledgeEntryOut


class SearchResultOut(Schema):
    entry_id: int
    title: str
    source_type: str
    source: str
    snippet: str = Field(description="HTML: the text is escaped, matches wrapped in <mark>")
    content: str
    heading_path: str
    score: float
    category: str
    tags: list[str]


class SearchOut(Schema):
    items: list[SearchResultOut]
    count: int
    query: str


class CrawlIn(StrictSchema):
    url: str = Field(..., max_length=2000, pattern=r"^[Hh][Tt][Tt][Pp][Ss]?://[^\s/]", examples=["https://docs.example.com/"])
    max_pages: JsonInt = Field(50, ge=1, le=settings.KNOWLEDGE_CRAWL_MAX_PAGES)
    max_depth: JsonInt = Field(2, ge=0, le=settings.KNOWLEDGE_CRAWL_MAX_DEPTH)
    same_domain: bool = True
    include: list[str] = Field(default_factory=list, description="regular expressions; a URL must match one")
    exclude: list[str] = Field(default_factory=list, description="regular expressions; matching URLs are skipped")
    category: str = Field("", max_length=100)
    tags: list[str] = Field(default_factory=list)
    shared: bool = False


class CrawlError(Schema):
    url: str
    error: str


class CrawlOut(Schema):
    id: int
    url: str
    status: str = Field(description="queued | running | done | failed | cancelled")
    owner: str | None
    max_pages: int
    max_depth: int
    same_domain: bool
    include: list[str]
    exclude: list[str]
    category: str
    tags: list[str]
    shared: bool
    pages_found: int
    pages_fetched: int
    pages_ingested: int
    pages_unchanged: int
    pages_skipped: int
    pages_failed: int
    errors: list[CrawlError]
    detail: str
    created_at: str
    started_at: str | None
    finished_at: str | None


class CrawlList(Schema):
    items: list[CrawlOut]
    count: int


class StatsOut(Schema):
    entries: int
    chunks: int
    by_source_type: dict[str, int]
    categories: list[dict]
    crawls: int
    crawls_active: int
    search_backend: str
