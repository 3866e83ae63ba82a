from django.contrib import admin

from agents.models import Agent, AgentMessage


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "kind", "owner", "status", "last_heartbeat", "in_flight", "version")
    list_filter = ("kind", "status")
    search_fields = ("id", "name", "owner__username")
    readonly_fields = ("status", "last_heartbeat", "in_flight", "last_assigned_at", "connection", "created_at",
                       "updated_at")
    fields = ("id", "name", "description", "kind", "owner", "capabilities", "shared", "version", "secret",
              *readonly_fields)


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
