from django.conf import settings
from django.db import models


class DoorSession(models.Model):
    """The chat session that holds a user's calls through one door (MCP, A2A): their approvals
    show there, so the owner decides them in AutoBot like the chat's, and the door's terminal
    (ChatSession.operator_terminal) is reused across calls."""

    class Door(models.TextChoices):
        MCP = "mcp"
        A2A = "a2a"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    door = models.CharField(max_length=8, choices=Door.choices)
    chat_session = models.OneToOneField("chat.ChatSession", on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "door"], name="interop_one_session_per_door")]


class ExternalMcpServer(models.Model):
    """An MCP server staff registered: its tools become operator tools for the users and groups
    named here, rated `risk` (HIGH by default: approved one by one) and audited."""

    class Risk(models.TextChoices):
        SAFE = "SAFE"
        MODERATE = "MODERATE"
        HIGH = "HIGH"

    name = models.SlugField(max_length=40, unique=True, help_text="Tools are named mcp_<name>__<tool>.")
    url = models.URLField(max_length=500, help_text="The server's streamable HTTP endpoint, e.g. https://host/mcp")
    auth_header = models.CharField(max_length=500, blank=True,
                                   help_text="Sent as the Authorization header, e.g. 'Bearer …' (kept secret)")
    risk = models.CharField(max_length=10, choices=Risk.choices, default=Risk.HIGH,
                            help_text="How every call to its tools is rated (the user's operator policy applies)")
    enabled = models.BooleanField(default=True)
    users = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+")
    groups = models.ManyToManyField("auth.Group", blank=True, related_name="+")
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "external MCP server"

    def __str__(self) -> str:
        return self.name


class A2aTask(models.Model):
    """An A2A task as the SDK last saved it (the protobuf `Task`, serialized), so GetTask,
    CancelTask, follow-up messages and subscriptions work on whichever worker receives them.
    `version` counts its writes (the SDK's compare-and-swap); `worker` wrote it last and `beat`
    is when that worker last said it still runs it (interop/a2a_stream.py)."""

    id = models.CharField(max_length=64, primary_key=True)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    context_id = models.CharField(max_length=64, db_index=True)
    state = models.PositiveSmallIntegerField()  # a2a TaskState number
    data = models.BinaryField()
    version = models.PositiveIntegerField(default=0)
    worker = models.CharField(max_length=200, blank=True)
    beat = models.DateTimeField(null=True, blank=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["owner", "-updated"])]
