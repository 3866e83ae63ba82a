from asgiref.sync import async_to_sync
from django.contrib import admin
from django.db import transaction

from agents.models import Agent, AgentMessage
from agents.services import CREDENTIAL_FIELDS, agent_sockets_close


def close_sockets_on_commit(agent_ids) -> None:
    """Once the change is committed (a socket that reconnects at once must read the new row)."""
    for agent_id in list(agent_ids):
        transaction.on_commit(lambda agent_id=agent_id: async_to_sync(agent_sockets_close)(agent_id=agent_id))


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "kind", "owner", "status", "last_heartbeat", "in_flight", "version")
    list_filter = ("kind", "status")
    search_fields = ("id", "name", "owner__username")
    readonly_fields = ("status", "last_heartbeat", "in_flight", "last_assigned_at", "connection", "created_at",
                       "updated_at")
    fields = ("id", "name", "description", "kind", "owner", "capabilities", "shared", "version", "secret",
              *readonly_fields)

    # A connected agent keeps the secret, owner and kind it was checked against at connect: when
    # staff change one (or delete the agent), its sockets are closed so it connects again.
    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if change and set(CREDENTIAL_FIELDS) & set(form.changed_data):
            close_sockets_on_commit([obj.pk])

    def delete_model(self, request, obj):
        agent_id = obj.pk
        super().delete_model(request, obj)
        close_sockets_on_commit([agent_id])

    def delete_queryset(self, request, queryset):
        agent_ids = list(queryset.values_list("pk", flat=True))
        super().delete_queryset(request, queryset)
        close_sockets_on_commit(agent_ids)


@admin.register(AgentMessage)
class AgentMessageAdmin(admin.ModelAdmin):
    """The message log is written by the bus only: read-only here, with search and filters."""

    list_display = ("created_at", "message_type", "action", "sender_id", "recipient_id", "capability", "status",
                    "latency_ms", "size")
    list_filter = ("message_type", "status", "priority")
    search_fields = ("message_id", "correlation_id", "sender_id", "recipient_id", "action")
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
