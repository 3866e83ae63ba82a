from django.conf import settings
from django.db import models

from agents.protocol import Priority


class Agent(models.Model):
    """A bus participant: a built-in running in the server, or an external process."""

    class Kind(models.TextChoices):
        BUILTIN = "builtin"
        EXTERNAL = "external"

    class Status(models.TextChoices):
        ONLINE = "online"
        OFFLINE = "offline"

    id = models.CharField(primary_key=True, max_length=64)
    name = models.CharField(max_length=200, blank=True)
    description = models.TextField(blank=True)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.EXTERNAL)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="agents"
    )
    capabilities = models.JSONField(default=list, blank=True)
    # Capability-addressed requests reach a user's external agent only from its owner, unless staff
    # share it (built-ins serve everyone).
    shared = models.BooleanField(
        default=False, help_text="Staff: let every user's capability requests reach this agent, not only its owner's."
    )
    version = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OFFLINE, db_index=True)
    last_heartbeat = models.DateTimeField(null=True, blank=True)
    in_flight = models.IntegerField(default=0)
    last_assigned_at = models.DateTimeField(null=True, blank=True)  # round robin among equals
    # The WebSocket connection (consumer channel) currently speaking for an external agent.
    connection = models.CharField(max_length=200, blank=True)
    # Shared HMAC secret for signed frames; empty = this agent does not sign.
    secret = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.id} ({self.kind}, {self.status})"


class AgentMessage(models.Model):
    """The message log: one row per message that entered the bus from a user or an agent."""

    class Status(models.TextChoices):
        DELIVERED = "delivered"
        ANSWERED = "answered"
        FAILED = "failed"  # the agent answered with an ERROR
        TIMED_OUT = "timed_out"
        REJECTED = "rejected"  # refused before delivery (no live agent, full inbox, bad frame)

    message_id = models.UUIDField(unique=True)
    message_type = models.CharField(max_length=16, db_index=True)
    priority = models.PositiveSmallIntegerField(default=Priority.NORMAL)
    sender_id = models.CharField(max_length=160, db_index=True)
    recipient_id = models.CharField(max_length=64, blank=True, db_index=True)
    capability = models.CharField(max_length=64, blank=True)
    correlation_id = models.UUIDField(null=True, blank=True)
    action = models.CharField(max_length=128, db_index=True)
    size = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=16, choices=Status.choices, db_index=True)
    latency_ms = models.FloatField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="agent_messages"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    answered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.message_type} {self.action} {self.sender_id}→{self.recipient_id or self.capability or '*'}"


class MessageClaim(models.Model):
    """Who took a request: one row per message id, whichever agent, process or connection took it.

    A built-in runs in every server process (a retried request may reach another process); a
    capability request may be retried on another agent after its first went offline; an external
    agent may reconnect with a fresh socket. The first to claim the id handles it, the others drop
    it: a request runs at most once.

    A request handed to an external agent's socket also keeps where its answer goes and until
    when one is taken (the asker's deadline): the agent may answer on a later connection, on this
    worker or another, but only that agent, only once (``answered_at``) and only in time."""

    message_id = models.UUIDField(primary_key=True)
    agent_id = models.CharField(max_length=64)
    claimed_at = models.DateTimeField(auto_now_add=True, db_index=True)
    reply_to = models.CharField(max_length=200, blank=True)  # the asker's reply channel
    answer_by = models.DateTimeField(null=True, blank=True)  # None: no answer is taken through a socket
    answered_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.agent_id} {self.message_id}"
