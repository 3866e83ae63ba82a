from asgiref.sync import async_to_sync
from django import forms
from django.contrib import admin, messages
from django.utils import timezone

from autobot.auth import act_for_refusal, token_create, token_revoke
from autobot.models import ApiToken, AuditEvent

admin.site.site_header = "AutoBot administration"
admin.site.site_title = "AutoBot admin"


def seconds(value) -> str:
    """A time to the second in the server's zone (the admin's default drops the seconds)."""
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S") if value else "-"


class ReadOnlyInline(admin.TabularInline):
    """Records listed under their parent (a session's commands, a chat's messages): read only."""

    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class ReadOnlyAdmin(admin.ModelAdmin):
    """Append-only records: staff can look, filter and search, never change."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ("created", "actor_name", "action", "target_type", "target_id", "ip")
    list_filter = ("action", "target_type", ("created", admin.DateFieldListFilter),
                   ("actor", admin.RelatedOnlyFieldListFilter))
    search_fields = ("actor_name", "action", "target_id", "correlation_id", "ip")
    date_hierarchy = "created"
    readonly_fields = [f.name for f in AuditEvent._meta.fields]


class ApiTokenForm(forms.ModelForm):
    # Left out: a full token, as over the API.
    scope = forms.ChoiceField(choices=ApiToken.Scope.choices, required=False, initial=ApiToken.Scope.FULL)

    class Meta:
        model = ApiToken
        fields = ("user", "name", "scope", "expires_at")

    def clean_scope(self):
        return self.cleaned_data.get("scope") or ApiToken.Scope.FULL

    def clean_user(self):
        # token_create's rule, as a form error rather than a failed save.
        user, actor = self.cleaned_data.get("user"), self.actor
        if user is not None and user.pk != actor.pk:
            refusal = act_for_refusal(actor, user, may_add_tokens=actor.has_perm("autobot.add_apitoken"))
            if refusal:
                raise forms.ValidationError(refusal)
        return user


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    form = ApiTokenForm
    list_display = ("prefix", "user", "name", "scope", "created", "expires_at", "revoked_at", "last_used_at")
    list_filter = (("revoked_at", admin.EmptyFieldListFilter),)
    search_fields = ("user__username", "name", "prefix")
    fields = ("user", "name", "scope", "expires_at", "prefix", "created", "revoked_at", "last_used_at")
    readonly_fields = ("prefix", "created", "revoked_at", "last_used_at")
    actions = ["revoke"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        return type(form.__name__, (form,), {"actor": request.user})

    def has_change_permission(self, request, obj=None):
        # A token is created or revoked, never edited.
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        # The service makes the token and audits it; the admin only shows the raw token once.
        token, raw = async_to_sync(token_create)(actor=request.user, user=obj.user, name=obj.name,
                                                 expires_at=obj.expires_at, via="admin",
                                                 scope=obj.scope)
        obj.pk = token.pk
        obj.refresh_from_db()  # the admin's "added" message and redirect use this object
        messages.warning(request, f"The new token is {raw} — copy it now, it will not be shown again.")

    @admin.action(description="Revoke the selected tokens", permissions=["change"])
    def revoke(self, request, queryset):
        for token_id in queryset.filter(revoked_at__isnull=True).values_list("pk", flat=True):
            async_to_sync(token_revoke)(actor=request.user, token_id=token_id, via="admin")
