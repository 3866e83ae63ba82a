from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from autobot.admin import ReadOnlyAdmin  # terminal records are written by the services only
from terminal.models import CommandRecord, TerminalSession


@admin.register(TerminalSession)
class TerminalSessionAdmin(ReadOnlyAdmin):
    list_display = (
        "created",
        "owner",
        "title",
        "security_level",
        "status",
        "ended",
        "exit_code",
        "end_reason",
        "replay",
    )
    list_filter = (
        "status",
        "security_level",
        "end_reason",
        ("created", admin.DateFieldListFilter),
        ("owner", admin.RelatedOnlyFieldListFilter),
    )
    search_fields = ("id", "title", "owner__username", "host")
    date_hierarchy = "created"
    readonly_fields = [f.name for f in TerminalSession._meta.fields] + ["replay"]

    @admin.display(description="recording")
    def replay(self, obj):
        url = reverse("terminal:replay", args=[obj.pk])
        return format_html('<a href="{}">replay</a>', url)


@admin.register(CommandRecord)
class CommandRecordAdmin(ReadOnlyAdmin):
    list_display = (
        "started",
        "user",
        "short_command",
        "risk",
        "blocked",
        "warned",
        "security_level",
        "exit_code",
        "source",
        "client_ip",
        "session_link",
        "actor",
        "chat_turn",
    )
    list_filter = (
        "risk",
        "blocked",
        "warned",
        "security_level",
        "source",
        "actor",
        ("started", admin.DateFieldListFilter),
        ("user", admin.RelatedOnlyFieldListFilter),
    )
    search_fields = ("command", "user__username", "session__id", "client_ip", "correlation_id")
    date_hierarchy = "started"
    readonly_fields = [f.name for f in CommandRecord._meta.fields] + ["chat_turn"]
    list_select_related = ("user", "session")

    @admin.display(description="command")
    def short_command(self, obj):
        return obj.command if len(obj.command) <= 80 else obj.command[:79] + "…"

    @admin.display(description="session")
    def session_link(self, obj):
        if obj.session_id is None:
            return "-"
        url = reverse("admin:terminal_terminalsession_change", args=[obj.session_id])
        return format_html('<a href="{}">{}</a>', url, str(obj.session_id)[:8])

    @admin.display(description="chat turn")
    def chat_turn(self, obj):
        # The operator's commands belong to a chat turn; its message shows the whole trail.
        if not obj.correlation_id:
            return "-"
        url = reverse("admin:chat_chatmessage_changelist")
        return format_html('<a href="{}?correlation_id={}&amp;role=assistant">trail</a>', url, obj.correlation_id)
