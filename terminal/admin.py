"""The review screens staff read: sessions with their commands in order, and command records
with verdicts in words, times to the second, and filters for every question a review asks."""

from urllib.parse import urlencode

from asgiref.sync import async_to_sync
from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from autobot.admin import ReadOnlyAdmin, ReadOnlyInline, seconds  # records are written by the services only
from terminal.models import CommandRecord, TerminalSession
from terminal.services import sessions_reconcile

# How each source reads to a reviewer; values the model gains later show under their own name.
SOURCE_LABELS = {"interactive": "typed in the shell", "execute": "API", "operator": "operator (chat)",
                 "pasted": "pasted"}


class AdminStyles:
    css = {"all": ("css/admin.css",)}


def source_of(record: CommandRecord) -> str:
    # The operator types into a terminal like a person: its records are marked by actor.
    return "operator" if record.actor == "operator" else SOURCE_LABELS.get(record.source, record.source)


def verdict_badge(record: CommandRecord):
    # format_html without arguments is deprecated (Django 6): the class and words are ours.
    if record.blocked:
        kind, words = "blocked", "blocked"
    elif record.warned:
        kind, words = "warned", "allowed, warned"
    else:
        kind, words = "allowed", "allowed"
    return format_html('<span class="verdict verdict-{}">{}</span>', kind, words)


def replay_link(session_id, offset: float | None = None, text: str = "replay"):
    url = reverse("terminal:replay", args=[session_id])
    if offset is not None:
        url += "?" + urlencode({"t": max(0, int(offset))})
    return format_html('<a href="{}">{}</a>', url, text)


class VerdictFilter(admin.SimpleListFilter):
    title = "verdict"
    parameter_name = "verdict"

    def lookups(self, request, model_admin):
        return [("blocked", "blocked"), ("warned", "allowed, warned"), ("allowed", "allowed, no warning")]

    def queryset(self, request, queryset):
        match self.value():
            case "blocked":
                return queryset.filter(blocked=True)
            case "warned":
                return queryset.filter(blocked=False, warned=True)
            case "allowed":
                return queryset.filter(blocked=False, warned=False)
        return queryset


class SourceFilter(admin.SimpleListFilter):
    title = "source"
    parameter_name = "source"

    def lookups(self, request, model_admin):
        values = set(CommandRecord.objects.values_list("source", flat=True).distinct()) | {"interactive", "execute"}
        return [(value, SOURCE_LABELS.get(value, value)) for value in sorted(values | {"operator"})]

    def queryset(self, request, queryset):
        if self.value() == "operator":  # the operator's commands are typed into a shell: marked by actor
            return queryset.filter(actor="operator")
        return queryset.filter(source=self.value()) if self.value() else queryset


class SessionFilter(admin.SimpleListFilter):
    """The most recent sessions as choices; any session id works in the address (the session's
    page links here), so a list of thousands of sessions is never rendered."""

    title = "session"
    parameter_name = "session"

    def lookups(self, request, model_admin):
        recent = TerminalSession.objects.select_related("owner").order_by("-created")[:8]
        choices = [(str(s.pk), f"{s.title or 'untitled'} · {s.owner} · {seconds(s.created)}") for s in recent]
        value = self.value()
        if value and value not in {c[0] for c in choices}:
            choices.append((value, f"session {value[:8]}"))
        return choices

    def queryset(self, request, queryset):
        return queryset.filter(session_id=self.value()) if self.value() else queryset


class CommandInline(ReadOnlyInline):
    """A session's commands in the order they ran, each with a link into the recording."""

    model = CommandRecord
    fk_name = "session"
    show_change_link = True
    ordering = ("started", "id")
    fields = ("at", "command", "verdict", "risk", "security_level", "source_label", "exit_code", "replay_at")
    readonly_fields = fields
    verbose_name_plural = "commands, in order"

    @admin.display(description="time")
    def at(self, obj):
        return seconds(obj.started)

    @admin.display(description="verdict")
    def verdict(self, obj):
        return verdict_badge(obj)

    @admin.display(description="source")
    def source_label(self, obj):
        return source_of(obj)

    @admin.display(description="recording")
    def replay_at(self, obj):
        offset = (obj.started - obj.session.created).total_seconds()
        return replay_link(obj.session_id, offset, "replay from here")


@admin.register(TerminalSession)
class TerminalSessionAdmin(ReadOnlyAdmin):
    list_display = ("name", "owner", "security_level", "status", "started", "ended_at", "end_reason",
                    "commands_link", "replay")
    list_filter = (
        "status",
        "security_level",
        "end_reason",
        ("created", admin.DateFieldListFilter),
        ("owner", admin.RelatedOnlyFieldListFilter),
    )
    search_fields = ("id", "title", "owner__username", "host")
    date_hierarchy = "created"
    list_select_related = ("owner",)
    fields = ("id", "owner", "title", "security_level", "status", "started", "ended_at", "end_reason", "exit_code",
              "cwd", "cols", "rows", "client_ip", "host", "pid", "recording_path", "replay")
    readonly_fields = fields
    inlines = [CommandInline]
    Media = AdminStyles

    # A reviewer sees the sessions whose server process stopped as ended, whoever owned them:
    # the service marks them (audited) before the list or a session's page is read. Only for a
    # reviewer: staff without the view permission get the admin's 403 and change nothing.
    def changelist_view(self, request, extra_context=None):
        self._reconcile_for(request)
        return super().changelist_view(request, extra_context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        self._reconcile_for(request)
        return super().change_view(request, object_id, form_url, extra_context)

    def _reconcile_for(self, request) -> None:
        if self.has_view_or_change_permission(request):
            async_to_sync(sessions_reconcile)()

    @admin.display(description="name", ordering="title")
    def name(self, obj):
        return obj.title or f"untitled {str(obj.pk)[:8]}"

    @admin.display(description="started", ordering="created")
    def started(self, obj):
        return seconds(obj.created)

    @admin.display(description="ended", ordering="ended")
    def ended_at(self, obj):
        return seconds(obj.ended)

    @admin.display(description="commands")
    def commands_link(self, obj):
        url = reverse("admin:terminal_commandrecord_changelist") + "?" + urlencode({"session": obj.pk})
        return format_html('<a href="{}">commands</a>', url)

    @admin.display(description="recording")
    def replay(self, obj):
        return replay_link(obj.pk)


@admin.register(CommandRecord)
class CommandRecordAdmin(ReadOnlyAdmin):
    # Eight narrow columns: the list fits a 1366 px screen; the rest is on each record's page.
    list_display = ("at", "user", "short_command", "verdict", "risk", "level", "source_label", "session_link")
    list_display_links = ("at",)
    list_filter = (
        VerdictFilter,
        "risk",
        "security_level",
        SourceFilter,
        SessionFilter,
        "actor",
        ("started", admin.DateFieldListFilter),
        ("user", admin.RelatedOnlyFieldListFilter),
    )
    search_fields = ("command", "user__username", "session__id", "session__title", "client_ip", "correlation_id")
    date_hierarchy = "started"
    fields = ("at", "finished_at", "user", "session", "command", "verdict", "risk", "reasons", "security_level",
              "source_label", "actor", "exit_code", "cwd", "client_ip", "replay_at", "chat_turn")
    readonly_fields = fields
    list_select_related = ("user", "session")
    list_per_page = 50
    Media = AdminStyles

    @admin.display(description="time", ordering="started")
    def at(self, obj):
        return seconds(obj.started)

    @admin.display(description="finished")
    def finished_at(self, obj):
        return seconds(obj.finished)

    @admin.display(description="verdict", ordering="blocked")
    def verdict(self, obj):
        return verdict_badge(obj)

    @admin.display(description="source", ordering="source")
    def source_label(self, obj):
        return source_of(obj)

    @admin.display(description="level", ordering="security_level")
    def level(self, obj):
        return obj.security_level

    @admin.display(description="command")
    def short_command(self, obj):
        text = obj.command if len(obj.command) <= 70 else obj.command[:69] + "…"
        return format_html('<code class="command" title="{}">{}</code>', obj.command, text)

    @admin.display(description="session")
    def session_link(self, obj):
        if obj.session_id is None:
            return "-"
        url = reverse("admin:terminal_terminalsession_change", args=[obj.session_id])
        return format_html('<a href="{}">{}</a>', url, obj.session.title or str(obj.session_id)[:8])

    @admin.display(description="recording")
    def replay_at(self, obj):
        if obj.session_id is None:
            return "-"
        return replay_link(obj.session_id, (obj.started - obj.session.created).total_seconds(), "replay from here")


    @admin.display(description="chat turn")
    def chat_turn(self, obj):
        # The operator's commands belong to a chat turn; its message shows the whole trail.
        if not obj.correlation_id:
            return "-"
        url = reverse("admin:chat_chatmessage_changelist")
        return format_html('<a href="{}?correlation_id={}&amp;role=assistant">trail</a>', url, obj.correlation_id)
