"""Chat records are evidence: staff read them, nobody edits them here (like audit events)."""

from django.contrib import admin
from django.utils import timezone

from autobot.admin import ReadOnlyAdmin
from chat.models import ChatMessage, ChatSession


def seconds(value) -> str:
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S") if value else "-"


class ChatMessageInline(admin.TabularInline):
    model = ChatMessage
    extra = 0
    fields = ("at", "role", "status", "model", "content", "completion_tokens", "first_token_ms", "total_ms")
    readonly_fields = fields
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="time")
    def at(self, obj):
        return seconds(obj.created)


@admin.register(ChatSession)
class ChatSessionAdmin(ReadOnlyAdmin):
    list_display = ("title", "owner", "model", "started", "last_activity")
    list_filter = ("model", ("created", admin.DateFieldListFilter), ("owner", admin.RelatedOnlyFieldListFilter))
    search_fields = ("title", "owner__username")
    list_select_related = ("owner",)
    readonly_fields = [f.name for f in ChatSession._meta.fields]
    inlines = [ChatMessageInline]

    @admin.display(description="started", ordering="created")
    def started(self, obj):
        return seconds(obj.created)

    @admin.display(description="last activity", ordering="updated")
    def last_activity(self, obj):
        return seconds(obj.updated)


@admin.register(ChatMessage)
class ChatMessageAdmin(ReadOnlyAdmin):
    list_display = ("id", "at", "session", "role", "status", "model", "completion_tokens", "first_token_ms")
    list_filter = ("role", "status", "model", ("created", admin.DateFieldListFilter))
    search_fields = ("content", "session__title", "session__owner__username")
    list_select_related = ("session",)
    readonly_fields = [f.name for f in ChatMessage._meta.fields]

    @admin.display(description="time", ordering="created")
    def at(self, obj):
        return seconds(obj.created)
