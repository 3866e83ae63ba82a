import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


class TerminalSession(models.Model):
    """One shell. The process lives in the server process named by ``host``/``pid``."""

    class Status(models.TextChoices):
        RUNNING = "running"
        DETACHED = "detached"  # no socket attached; alive until the reconnect grace ends
        ENDED = "ended"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="terminal_sessions")
    title = models.CharField(max_length=200, blank=True)
    security_level = models.CharField(max_length=20, default="RESTRICTED")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.RUNNING, db_index=True)
    cwd = models.CharField(max_length=1000, blank=True)
    cols = models.PositiveIntegerField(default=80)
    rows = models.PositiveIntegerField(default=24)
    created = models.DateTimeField(default=timezone.now, db_index=True)
    ended = models.DateTimeField(null=True, blank=True)
    exit_code = models.IntegerField(null=True, blank=True)
    end_reason = models.CharField(max_length=50, blank=True)
    recording_path = models.CharField(max_length=1000, blank=True)
    pid = models.IntegerField(null=True, blank=True)
    host = models.CharField(max_length=255, blank=True, help_text="hostname:pid of the server process that owns it")
    client_ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]
        permissions = [("use_terminal", "Can open and use web terminal sessions")]

    def __str__(self) -> str:
        return self.title or f"terminal {self.id}"

    @property
    def is_live(self) -> bool:
        return self.status != self.Status.ENDED


class CommandRecord(models.Model):
    """One assessed command line: interactive (from the shell hook) or run through the API."""

    class Source(models.TextChoices):
        INTERACTIVE = "interactive"
        EXECUTE = "execute"

    session = models.ForeignKey(
        TerminalSession, null=True, blank=True, on_delete=models.CASCADE, related_name="commands"
    )
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="terminal_commands")
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.INTERACTIVE)
    security_level = models.CharField(max_length=20)
    command = models.TextField()
    risk = models.CharField(max_length=20, db_index=True)
    reasons = models.JSONField(default=list, blank=True)
    blocked = models.BooleanField(default=False, db_index=True)
    warned = models.BooleanField(default=False)
    exit_code = models.IntegerField(null=True, blank=True)
    cwd = models.CharField(max_length=1000, blank=True)
    started = models.DateTimeField(default=timezone.now, db_index=True)
    finished = models.DateTimeField(null=True, blank=True)
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    # "operator" when the chat's operator typed it (blank: the user); its chat turn's id.
    actor = models.CharField(max_length=20, blank=True, db_index=True)
    correlation_id = models.CharField(max_length=64, blank=True, db_index=True)

    class Meta:
        ordering = ["-started", "-id"]

    def __str__(self) -> str:
        verdict = "blocked" if self.blocked else "allowed"
        return f"{self.command[:60]} ({self.risk}, {verdict})"
