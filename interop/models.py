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
