import uuid

from django.conf import settings
from django.db import models


class ChatSession(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_sessions")
    title = models.CharField(max_length=200, blank=True)  # generated from the first message
    # "<provider>/<model>" (see chat.llm.registry); blank means the configured default.
    model = models.CharField(max_length=200, blank=True)
    # The operator's tools: None follows the default (on unless the provider is offline).
    tools = models.BooleanField(null=True, blank=True)
    # The terminal session the operator types into (opened on its first command, reused after).
    operator_terminal = models.UUIDField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated"]
        indexes = [models.Index(fields=["owner", "-updated"])]

    def __str__(self) -> str:
        return self.title or f"chat {self.id}"


class ChatMessage(models.Model):
    class Role(models.TextChoices):
        USER = "user"
        ASSISTANT = "assistant"
        SYSTEM = "system"

    class Status(models.TextChoices):
        STREAMING = "streaming"
        COMPLETE = "complete"
        CANCELLED = "cancelled"
        FAILED = "failed"

    session = models.ForeignKey(ChatSession, on_delete=models.CASCADE, related_name="messages")
    role = models.CharField(max_length=16, choices=Role.choices)
    content = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.COMPLETE)
    citations = models.JSONField(default=list, blank=True)  # [{entry_id, title, source, snippet}]
    model = models.CharField(max_length=200, blank=True)
    use_knowledge = models.BooleanField(default=True)
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    first_token_ms = models.PositiveIntegerField(null=True, blank=True)
    total_ms = models.PositiveIntegerField(null=True, blank=True)
    error_code = models.CharField(max_length=64, blank=True)
    error = models.TextField(blank=True)
    # The server process generating a streaming answer: when it is known to be gone, the answer
    # is marked interrupted at once instead of after the read timeout (autobot/workers.py).
    worker = models.CharField(max_length=200, blank=True)
    # A Stop asked for while the answer streams, recorded where a Redis restart cannot lose it:
    # the generating worker reads it after rejoining its control group and between tokens.
    stop_requested = models.BooleanField(default=False)
    # The operator's calls in this answer, with their ratings and results (see chat/operator/).
    tool_calls = models.JSONField(default=list, blank=True)
    # One id per turn, carried into tool calls, command records, file changes and audit events.
    correlation_id = models.CharField(max_length=64, blank=True, db_index=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created", "id"]
        indexes = [models.Index(fields=["session", "created"]), models.Index(fields=["status"])]

    def __str__(self) -> str:
        return f"{self.role} message {self.pk} in {self.session_id}"

    @property
    def stats(self) -> dict:
        """How the answer was made (model, tokens, timings, error code): for the API and the audit."""
        return {"model": self.model, "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "first_token_ms": self.first_token_ms, "total_ms": self.total_ms, "error_code": self.error_code}


class OperatorPolicy(models.Model):
    """What the operator may do for one user without asking (staff edit it in the admin)."""

    class Action(models.TextChoices):
        RUN = "run"
        APPROVE = "approve"  # waits for the owner's approval
        REFUSE = "refuse"

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="operator_policy")
    safe = models.CharField(max_length=10, choices=Action.choices, default=Action.RUN)
    moderate = models.CharField(max_length=10, choices=Action.choices, default=Action.RUN)
    high = models.CharField(max_length=10, choices=Action.choices, default=Action.APPROVE)
    dangerous = models.CharField(max_length=10, choices=Action.choices, default=Action.REFUSE)
    # The level of the terminal the operator opens; only staff may choose a looser one.
    terminal_level = models.CharField(max_length=20, default="RESTRICTED")
    updated = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"operator policy of {self.user}"


class Approval(models.Model):
    """One tool call waiting for its owner: single-use, bound to what it approves, expiring."""

    class Status(models.TextChoices):
        PENDING = "pending"
        APPROVED = "approved"
        DENIED = "denied"
        EXPIRED = "expired"
        USED = "used"  # approved, then consumed by the call it was made for

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    session = models.ForeignKey(ChatSession, on_delete=models.CASCADE, related_name="approvals")
    message = models.ForeignKey(ChatMessage, on_delete=models.CASCADE, related_name="approvals")
    call_id = models.CharField(max_length=100)
    tool = models.CharField(max_length=64)
    command = models.TextField()  # the exact command, or what a write does
    cwd = models.CharField(max_length=1000, blank=True)
    risk = models.CharField(max_length=20)
    reasons = models.JSONField(default=list, blank=True)
    binding = models.CharField(max_length=64)  # sha256 of (chat session, call, tool, command, folder, arguments)
    correlation_id = models.CharField(max_length=64, blank=True, db_index=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    created = models.DateTimeField(auto_now_add=True)
    expires = models.DateTimeField()  # pending: decide by; approved: run by (OPERATOR_APPROVED_USE_SECONDS)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    reason = models.CharField(max_length=500, blank=True)
    # The API token of the MCP or A2A client that asked (none for the chat's own operator): that
    # client may not decide its own approval over REST or a socket; the owner decides it.
    asked_with_token = models.ForeignKey("autobot.ApiToken", null=True, blank=True, on_delete=models.SET_NULL,
                                         related_name="+")

    class Meta:
        ordering = ["created"]

    def __str__(self) -> str:
        return f"{self.tool} approval {self.id} ({self.status})"
