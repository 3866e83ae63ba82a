from django.contrib import admin

from chat.models import ChatMessage, ChatSession


class ChatMessageInline(admin.TabularInline):
    model = ChatMessage
    extra = 0
    fields = ("role", "status", "model", "content", "completion_tokens", "first_token_ms", "total_ms", "created")
    readonly_fields = fields
    can_delete = False
    show_change_link = True


@admin.register(ChatSession)
class ChatSessionAdmin(admin.ModelAdmin):
    list_display = ("title", "owner", "model", "created", "updated")
    list_filter = ("model",)
    search_fields = ("title", "owner__username")
    readonly_fields = ("id", "created", "updated")
    raw_id_fields = ("owner",)
    inlines = [ChatMessageInline]


@admin.register(ChatMessage)
class ChatMessageAdmin(admin.ModelAdmin):
    list_display = ("id", "session", "role", "status", "model", "completion_tokens", "first_token_ms", "created")
    list_filter = ("role", "status", "model")
    search_fields = ("content", "session__title")
    raw_id_fields = ("session",)
    readonly_fields = ("created", "updated")
