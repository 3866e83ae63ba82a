"""Admin: read-only views of entries and crawl jobs. Changes go through the services (chunking,
dedupe, audit), so deleting and cancelling here call them too."""

from asgiref.sync import async_to_sync
from django.contrib import admin, messages

from autobot.errors import AppError
from knowledge import services
from knowledge.models import CrawlJob, KnowledgeChunk, KnowledgeEntry


class KnowledgeChunkInline(admin.TabularInline):
    model = KnowledgeChunk
    fields = ("position", "heading_path", "text")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(KnowledgeEntry)
class KnowledgeEntryAdmin(admin.ModelAdmin):
    list_display = ("title", "source_type", "category", "owner", "shared", "chunk_count", "updated_at")
    list_filter = ("source_type", "shared", "category")
    search_fields = ("title", "source", "category", "owner__username")
    list_select_related = ("owner",)
    inlines = [KnowledgeChunkInline]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def delete_model(self, request, obj):
        async_to_sync(services.entry_delete)(user=request.user, entry_id=obj.pk)

    def delete_queryset(self, request, queryset):
        for entry_id in queryset.values_list("pk", flat=True):
            async_to_sync(services.entry_delete)(user=request.user, entry_id=entry_id)


@admin.register(CrawlJob)
class CrawlJobAdmin(admin.ModelAdmin):
    list_display = ("id", "url", "owner", "status", "pages_found", "pages_ingested", "pages_failed", "created_at")
    list_filter = ("status",)
    search_fields = ("url", "owner__username")
    list_select_related = ("owner",)
    actions = ["cancel"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_cancel_permission(self, request) -> bool:
        # The admin edits no crawl (has_change_permission is False), yet cancelling one is a
        # change: it needs the change permission, not only the view one.
        return request.user.has_perm("knowledge.change_crawljob")

    @admin.action(description="Cancel the selected crawls", permissions=["cancel"])
    def cancel(self, request, queryset):
        for job_id in queryset.filter(status__in=CrawlJob.ACTIVE).values_list("pk", flat=True):
            try:
                async_to_sync(services.crawl_cancel)(user=request.user, crawl_id=job_id)
            except AppError as exc:
                self.message_user(request, exc.detail, messages.ERROR)
