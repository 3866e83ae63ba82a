"""Chat records are evidence: staff read them, nobody edits them here (like audit events)."""

import contextlib

from asgiref.sync import async_to_sync
from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.utils.html import format_html, format_html_join

from autobot.admin import ReadOnlyAdmin, ReadOnlyInline, seconds
from chat.models import Approval, ChatMessage, ChatSession, OperatorPolicy
from chat.operator import approvals, policy


class ChatMessageInline(ReadOnlyInline):
    model = ChatMessage
    fields = ("at", "role", "status", "model", "content", "completion_tokens", "first_token_ms", "total_ms")
    readonly_fields = fields
    show_change_link = True

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
    search_fields = ("content", "session__title", "session__owner__username", "correlation_id")
    list_select_related = ("session",)
    readonly_fields = [f.name for f in ChatMessage._meta.fields] + ["trail"]

    @admin.display(description="time", ordering="created")
    def at(self, obj):
        return seconds(obj.created)

    @admin.display(description="trail (this turn's calls, approvals, commands, audit events)")
    def trail(self, obj):
        from chat.operator.services import trail_of

        if not obj.pk or not obj.correlation_id:
            return "-"
        items = async_to_sync(trail_of)(obj.session, obj.correlation_id)
        rows = format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                                ((i["at"], i["kind"], _summary(i)) for i in items))
        return format_html("<table><tr><th>at</th><th>kind</th><th>what</th></tr>{}</table>", rows)


def _summary(item: dict) -> str:
    keys = ("role", "name", "action", "command", "status", "risk", "actor", "exit_code", "target")
    return " · ".join(f"{k}={item[k]}" for k in keys if item.get(k) not in (None, ""))


class OperatorPolicyForm(forms.ModelForm):
    class Meta:
        model = OperatorPolicy
        fields = ("user", "safe", "moderate", "high", "dangerous", "terminal_level")

    def clean(self):
        data = super().clean()
        changes = {k: data[k] for k in ("safe", "moderate", "high", "dangerous", "terminal_level") if k in data}
        try:
            policy.check_grant(granter=self.request_user, target=data.get("user"), changes=changes)
        except Exception as exc:
            raise forms.ValidationError(getattr(exc, "detail", str(exc))) from None
        return data


@admin.register(OperatorPolicy)
class OperatorPolicyAdmin(admin.ModelAdmin):
    """Staff set a user's operator policy within what they may grant (chat.operator.policy)."""

    form = OperatorPolicyForm
    list_display = ("user", "safe", "moderate", "high", "dangerous", "terminal_level", "updated")
    raw_id_fields = ("user",)

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        form.request_user = request.user
        return form

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        from autobot import audit

        audit.record_sync(actor=request.user, action="chat.operator_policy", target_type="user",
                          target_id=str(obj.user_id), data={k: form.cleaned_data.get(k) for k in form.changed_data})


@admin.register(Approval)
class ApprovalAdmin(admin.ModelAdmin):
    list_display = ("created", "session", "tool", "command", "risk", "status", "decided_by", "decided_at")
    list_filter = ("status", "risk", "tool")
    search_fields = ("command", "correlation_id", "session__title")
    readonly_fields = [f.name for f in Approval._meta.fields]

    def changelist_view(self, request, extra_context=None):
        # Mark what ran out of time first, so the list and its status filter say "expired"; only for
        # staff who may see the list (the others get the admin's 403 and change nothing).
        if self.has_view_or_change_permission(request):
            async_to_sync(approvals.approvals_expire_due)()
        return super().changelist_view(request, extra_context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        if self.has_view_or_change_permission(request):
            with contextlib.suppress(ValidationError, ValueError):  # a malformed id: Django's "not found"
                async_to_sync(approvals.approvals_expire_due)(approval_id=object_id)
        return super().change_view(request, object_id, form_url, extra_context)

    def has_add_permission(self, request):
        return False  # approvals come from operator turns only

    def has_change_permission(self, request, obj=None):
        return False
