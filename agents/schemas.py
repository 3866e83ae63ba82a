from datetime import datetime
from uuid import UUID

from ninja import Field, Schema

from agents.protocol import NAME_PATTERN
from autobot.errors import Error


class AgentOut(Schema):
    id: str
    name: str
    description: str
    kind: str
    capabilities: list[str]
    version: str
    status: str
    last_heartbeat: datetime | None
    in_flight: int
    owner: str | None


class AgentListOut(Schema):
    items: list[AgentOut]
    count: int


class MessageLogOut(Schema):
    id: int
    message_id: UUID
    message_type: str
    priority: int
    sender_id: str
    recipient_id: str | None
    capability: str | None
    correlation_id: UUID | None
    action: str
    size: int
    status: str
    latency_ms: float | None
    error: str
    created_at: datetime
    answered_at: datetime | None


class MessageLogListOut(Schema):
    items: list[MessageLogOut]
    count: int


class AgentFailureOut(Error):
    message: dict = Field(description="the ERROR message the agent answered with")


class MessageAcceptedOut(Schema):
    status: str
    message_id: UUID


# The request body is parsed by agents.protocol (tolerant enum spellings, clear errors), so it
# is documented here rather than declared as a ninja schema.
MESSAGE_IN_OPENAPI = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["header", "payload"],
                    "properties": {
                        "header": {
                            "type": "object",
                            "required": ["message_type"],
                            "properties": {
                                "message_type": {"type": "string", "enum": ["REQUEST", "NOTIFICATION", "BROADCAST"]},
                                "priority": {"type": "string", "enum": ["LOW", "NORMAL", "HIGH", "URGENT"]},
                                "recipient_id": {"type": ["string", "null"], "pattern": NAME_PATTERN},
                                "capability": {"type": ["string", "null"], "pattern": NAME_PATTERN},
                                "ttl_seconds": {"type": ["integer", "null"], "minimum": 1, "maximum": 86400},
                            },
                        },
                        "payload": {
                            "type": "object",
                            "required": ["action"],
                            "properties": {
                                "action": {"type": "string"},
                                "data": {"type": "object"},
                                "context": {"type": "object"},
                            },
                        },
                    },
                    "example": {
                        "header": {"message_type": "REQUEST", "recipient_id": "knowledge", "priority": "HIGH"},
                        "payload": {"action": "search", "data": {"q": "backup"}},
                    },
                }
            }
        },
    }
}
