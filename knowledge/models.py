from django.conf import settings
from django.db import models


class KnowledgeEntry(models.Model):
    class SourceType(models.TextChoices):
        NOTE = "note", "Note"
        DOCUMENT = "document", "Document"
        WEB = "web", "Web page"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="knowledge_entries")
    title = models.CharField(max_length=300)
    content = models.TextField()
    source_type = models.CharField(max_length=16, choices=SourceType.choices, default=SourceType.NOTE)
    source = models.CharField(max_length=2000, blank=True, default="", help_text="URL or file name")
    category = models.CharField(max_length=100, blank=True, default="")
    tags = models.JSONField(default=list, blank=True)
    # ",tag1,tag2," so one tag filters with a plain indexed-free LIKE on every database.
    tag_index = models.CharField(max_length=1000, blank=True, default="", editable=False)
    shared = models.BooleanField(default=False, help_text="Visible to every signed-in user")
    content_hash = models.CharField(max_length=64, db_index=True)
    chunk_count = models.PositiveIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at", "-id"]
        verbose_name_plural = "knowledge entries"
        indexes = [
            models.Index(fields=["owner", "source_type", "source"], name="knowledge_owner_source"),
            models.Index(fields=["owner", "content_hash"], name="knowledge_owner_hash"),
            models.Index(fields=["category"], name="knowledge_category"),
        ]

    def __str__(self) -> str:
        return self.title


class KnowledgeChunk(models.Model):
    """One retrieval unit. The search index (FTS5 table or tsvector column, created in a
    migration) is kept in step with these rows by the database itself."""

    entry = models.ForeignKey(KnowledgeEntry, on_delete=models.CASCADE, related_name="chunks")
    position = models.PositiveIntegerField()
    text = models.TextField()
    heading_path = models.CharField(max_length=1000, blank=True, default="", help_text='"A > B > C"')
    # Entry title plus heading path: indexed with a higher weight than the text.
    search_heading = models.CharField(max_length=1400, blank=True, default="")

    class Meta:
        ordering = ["entry_id", "position"]
        constraints = [models.UniqueConstraint(fields=["entry", "position"], name="knowledge_chunk_position")]

    def __str__(self) -> str:
        return f"{self.entry_id}#{self.position}"


class CrawlJob(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    ACTIVE = (Status.QUEUED, Status.RUNNING)

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="crawl_jobs")
    url = models.URLField(max_length=2000)
    max_pages = models.PositiveIntegerField(default=50)
    max_depth = models.PositiveIntegerField(default=2)
    same_domain = models.BooleanField(default=True)
    include = models.JSONField(default=list, blank=True)
    exclude = models.JSONField(default=list, blank=True)
    category = models.CharField(max_length=100, blank=True, default="")
    tags = models.JSONField(default=list, blank=True)
    shared = models.BooleanField(default=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True)
    pages_found = models.PositiveIntegerField(default=0)
    pages_fetched = models.PositiveIntegerField(default=0)
    pages_ingested = models.PositiveIntegerField(default=0)
    pages_unchanged = models.PositiveIntegerField(default=0)
    pages_skipped = models.PositiveIntegerField(default=0)
    pages_failed = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)
    detail = models.TextField(blank=True, default="", help_text="Why the job failed, if it did")
    worker = models.CharField(max_length=200, blank=True, default="",
                              help_text="The server process running it (host:pid)")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"crawl {self.pk} {self.url} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE
