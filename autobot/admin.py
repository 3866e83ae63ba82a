from asgiref.sync import async_to_sync
from django.contrib import admin, messages
from django.utils import timezone

from autobot import audit
from autobot.auth import new_raw_token
from autobot.models import ApiToken, AuditEvent

admin.site.site_header = "AutoBot administration"
admin.site.site_title = "AutoBot admin"


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


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("prefix", "user", "name", "created", "expires_at", "revoked_at", "last_used_at")
    list_filter = (("revoked_at", admin.EmptyFieldListFilter),)
    search_fields = ("user__username", "name", "prefix")
    fields = ("user", "name", "expires_at", "prefix", "created", "revoked_at", "last_used_at")
    readonly_fields = ("prefix", "created", "revoked_at", "last_used_at")
    actions = ["revoke"]

    def has_change_permission(self, request, obj=None):
        # A token is created or revoked, never edited.
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        raw = new_raw_token()
        obj.prefix, obj.token_hash = raw[:12], ApiToken.hash(raw)
        super().save_model(request, obj, form, change)
        async_to_sync(audit.record)(actor=request.user, action="auth.token_created", target_type="api_token",
                                    target_id=obj.pk, data={"user": obj.user.get_username(), "name": obj.name,
                                                            "expires_at": obj.expires_at, "via": "admin"})
        messages.warning(request, f"The new token is {raw} — copy it now, it will not be shown again.")

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request, queryset):
        for token in queryset.filter(revoked_at__isnull=True).select_related("user"):
            token.revoked_at = timezone.now()
            token.save(update_fields=["revoked_at"])
            async_to_sync(audit.record)(actor=request.user, action="auth.token_revoked", target_type="api_token",
                                        target_id=token.pk, data={"user": token.user.get_username(), "via": "admin"})


