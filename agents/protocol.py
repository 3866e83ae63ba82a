"""The agent message protocol (pure: pydantic only, no Django, no Channels).

Wire format (one JSON object per message)::

    {"header": {"message_id", "message_type", "priority", "sender_id", "recipient_id",
                "capability", "timestamp", "correlation_id", "ttl_seconds", "signature"},
     "payload": {"action", "data", "context"}}

Serialisation always writes canonical upper-case enum names and ISO-8601 UTC timestamps.
Parsing is tolerant of the spellings clients really send (``"broadcast"``,
``"MessageType.BROADCAST"``, ``"MessagePriority.NORMAL"``, priority ``1``-``4``) and strict
about everything else: every problem becomes a ``ProtocolError`` naming the field.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
import uuid
from collections import OrderedDict
from datetime import UTC, datetime, timedelta
from enum import Enum, IntEnum, StrEnum
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    field_validator,
    model_validator,
)

from agents import signing
from autobot.http import json_loads

DEFAULT_MAX_PAYLOAD_BYTES = 256 * 1024
DEFAULT_MAX_SKEW_SECONDS = 300
# Agent ids and capabilities become parts of Channels group names (ASCII letters, digits,
# ``-_.``, under 100 characters), so they are held to that alphabet.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
SENDER_PATTERN = r"^\w[\w.:@+-]{0,159}$"  # agent ids, or user:<username> for people
_NAME_RE = re.compile(NAME_PATTERN)
_SENDER_RE = re.compile(SENDER_PATTERN)


class MessageType(StrEnum):
    REQUEST = "REQUEST"
    RESPONSE = "RESPONSE"
    BROADCAST = "BROADCAST"
    NOTIFICATION = "NOTIFICATION"
    HEARTBEAT = "HEARTBEAT"
    ERROR = "ERROR"


class Priority(IntEnum):
    LOW = 1
    NORMAL = 2
    HIGH = 3
    URGENT = 4


class ProtocolError(ValueError):
    """A message that cannot be accepted; ``code`` is machine-readable, ``field`` where known."""

    def __init__(self, detail: str, *, code: str = "invalid_message", field: str | None = None):
        super().__init__(detail)
        self.detail = detail
        self.code = code
        self.field = field


def _enum_parser(enum_cls: type[Enum], field: str, prefixes: tuple[str, ...]):
    accepted = ", ".join(m.name for m in enum_cls)

    def parse(value: Any) -> Enum:
        if isinstance(value, enum_cls):
            return value
        name = None
        if isinstance(value, str):
            name = value.strip()
            for prefix in prefixes:
                if name.startswith(prefix):
                    name = name[len(prefix) :]
                    break
            name = name.upper()
        if enum_cls is Priority:
            # bool is an int in Python; True must not mean LOW.
            if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 4:
                return Priority(value)
            if name in {"1", "2", "3", "4"}:
                return Priority(int(name))
        if name and name in enum_cls.__members__:
            return enum_cls[name]
        extra = " (or 1-4)" if enum_cls is Priority else ""
        raise ValueError(f"{field} must be one of {accepted}{extra}, got {value!r}")

    return parse


def _utc_iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


MessageTypeField = Annotated[
    MessageType,
    BeforeValidator(
        _enum_parser(MessageType, "message_type", ("MessageType.", "MESSAGETYPE."))
    ),
    PlainSerializer(lambda v: v.name, return_type=str),
]
PriorityField = Annotated[
    Priority,
    BeforeValidator(
        _enum_parser(
            Priority,
            "priority",
            ("MessagePriority.", "Priority.", "MESSAGEPRIORITY.", "PRIORITY."),
        )
    ),
    PlainSerializer(lambda v: v.name, return_type=str),
]
Timestamp = Annotated[datetime, PlainSerializer(_utc_iso, return_type=str)]
UuidStr = Annotated[uuid.UUID, PlainSerializer(str, return_type=str)]


class Header(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    message_id: UuidStr = Field(default_factory=uuid.uuid4)
    message_type: MessageTypeField
    priority: PriorityField = Priority.NORMAL
    sender_id: str = Field(pattern=SENDER_PATTERN)
    recipient_id: str | None = Field(default=None, pattern=NAME_PATTERN)
    capability: str | None = Field(default=None, pattern=NAME_PATTERN)
    timestamp: Timestamp = Field(default_factory=lambda: datetime.now(UTC))
    correlation_id: UuidStr | None = None
    ttl_seconds: int | None = Field(default=None, gt=0, le=86400, strict=True)
    signature: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{64}$")

    @field_validator("timestamp")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("timestamp must include a timezone, e.g. 2026-01-01T12:00:00Z")
        return value.astimezone(UTC)

    @model_validator(mode="after")
    def _routing(self) -> Header:
        kind = self.message_type
        if kind is MessageType.REQUEST and not (self.recipient_id or self.capability):
            raise ValueError("a REQUEST needs a recipient_id or a capability")
        if kind in (MessageType.RESPONSE, MessageType.ERROR) and self.correlation_id is None:
            raise ValueError(f"a {kind.name} needs a correlation_id")
        return self


class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    action: str = Field(min_length=1, max_length=128)
    data: dict[str, Any] = Field(default_factory=dict)
    context: dict[str, Any] = Field(default_factory=dict)


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    header: Header
    payload: Payload

    @property
    def id(self) -> uuid.UUID:
        return self.header.message_id

    def to_wire(self) -> dict:
        return self.model_dump(mode="json")

    def to_json(self) -> str:
        return json.dumps(self.to_wire(), separators=(",", ":"), ensure_ascii=False)

    def replace_header(self, **changes: Any) -> Message:
        """A copy with header fields changed, re-validated."""
        wire = self.to_wire()
        wire["header"].update(
            {k: (str(v) if isinstance(v, uuid.UUID) else v) for k, v in changes.items()}
        )
        return parse_message(wire, max_payload_bytes=None)

    def signed(self, secret: str | bytes) -> Message:
        return self.replace_header(signature=signing.wire_signature(self.to_wire(), secret))

    def reply(
        self, *, sender_id: str, data: dict | None = None, action: str | None = None
    ) -> Message:
        return server_message(
            MessageType.RESPONSE,
            action or self.payload.action,
            data,
            priority=self.header.priority,
            sender_id=sender_id,
            recipient_id=_agent_id_or_none(self.header.sender_id),
            correlation_id=self.header.message_id,
        )

    def error_reply(self, *, sender_id: str, code: str, detail: str) -> Message:
        return error_message(
            sender_id=sender_id,
            correlation_id=self.header.message_id,
            code=code,
            detail=detail,
            recipient_id=_agent_id_or_none(self.header.sender_id),
        )


def build_message(
    message_type: MessageType, action: str, data: dict | None = None, *, context: dict | None = None, **header: Any
) -> Message:
    """A validated message from keyword fields (one validation pass for the whole tree)."""
    return Message.model_validate(
        {
            "header": {"message_type": message_type, **header},
            "payload": {"action": action, "data": data or {}, "context": context or {}},
        }
    )


def _agent_id_or_none(sender_id: str) -> str | None:
    return sender_id if _NAME_RE.match(sender_id) else None


# --- server-made and server-verified messages, without pydantic -----------------------------
#
# Pydantic validation is for what comes from outside (frames from external agents, API bodies:
# ``parse_message``). Messages the server makes itself are checked by the plain code below,
# and messages inside a verified bus envelope (envelope.py) were validated where they entered
# the system, so they are only converted back to their types. This is the bus's per-hop path.


_ids = threading.local()
_VERSION_4_MASK = ~((0xF000 << 64) | (0xC000 << 48))
_VERSION_4_BITS = (0x4000 << 64) | (0x8000 << 48)


def uuid_from_int(value: int) -> uuid.UUID:
    """``uuid.UUID(int=value)`` without its argument checks (value is a 128-bit int we made)."""
    made = _new_uuid(uuid.UUID)
    _set_uuid_int(made, value)  # the slot descriptors: UUID forbids plain attribute setting
    _set_uuid_safe(made, _UNKNOWN_SAFETY)
    return made


_new_uuid = object.__new__
_set_uuid_int = uuid.UUID.__dict__["int"].__set__
_set_uuid_safe = uuid.UUID.__dict__["is_safe"].__set__
_UNKNOWN_SAFETY = uuid.SafeUUID.unknown


def new_message_id() -> uuid.UUID:
    """A random (version 4) UUID, like ``uuid.uuid4`` but drawing ``os.urandom`` 4 KiB at a
    time per thread: one system call per 256 ids instead of one each."""
    pool = getattr(_ids, "pool", None)
    if pool is None or pool[1] >= len(pool[0]):
        pool = _ids.pool = [os.urandom(4096), 0]
    data, offset = pool
    pool[1] = offset + 16
    value = int.from_bytes(data[offset:offset + 16])
    return uuid_from_int(value & _VERSION_4_MASK | _VERSION_4_BITS)


def unchecked(cls: type[BaseModel], values: dict) -> Any:
    """A model instance from complete, already-checked field values, without validators.

    What ``model_construct`` does, minus its per-field default handling (every field is
    given), which is most of its cost. Tests check the result equals a validated parse, so a
    pydantic change that breaks this is caught.
    """
    obj = _new_object(cls)
    _set_attribute(obj, "__dict__", values)
    # The slot descriptors themselves: no attribute lookup through the class hierarchy.
    _set_fields_set(obj, set(values))
    _set_extra(obj, None)
    _set_private(obj, None)
    return obj


_new_object, _set_attribute = object.__new__, object.__setattr__
_set_fields_set = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__


def _check_name(value: str | None, field: str, pattern: re.Pattern) -> None:
    if value is not None and not (isinstance(value, str) and pattern.match(value)):
        raise ProtocolError(f"header.{field}: {value!r} is not a valid id", field=f"header.{field}")


def server_message(
    message_type: MessageType,
    action: str,
    data: dict | None = None,
    *,
    sender_id: str,
    recipient_id: str | None = None,
    capability: str | None = None,
    priority: Priority = Priority.NORMAL,
    correlation_id: uuid.UUID | str | None = None,
    ttl_seconds: int | None = None,
    context: dict | None = None,
) -> Message:
    """A message made by the server, checked by plain code: the same rules as the pydantic
    models (ids, action, routing, TTL), at a fraction of the cost. ``ProtocolError`` if not."""
    if type(message_type) is not MessageType:  # the enum call costs more than the check
        message_type = MessageType(message_type)
    if type(priority) is not Priority:
        priority = Priority(priority)
    _check_name(sender_id or "", "sender_id", _SENDER_RE)
    _check_name(recipient_id, "recipient_id", _NAME_RE)
    _check_name(capability, "capability", _NAME_RE)
    if not isinstance(action, str) or not 1 <= len(action) <= 128:
        raise ProtocolError("payload.action must be 1-128 characters", field="payload.action")
    data, context = data or {}, context or {}
    if not isinstance(data, dict) or not isinstance(context, dict):
        raise ProtocolError("payload.data and payload.context must be objects", field="payload")
    if ttl_seconds is not None and not (
        type(ttl_seconds) is int and 0 < ttl_seconds <= 86400  # noqa: E721 - bool is not a TTL
    ):
        raise ProtocolError("header.ttl_seconds must be an integer from 1 to 86400", field="header.ttl_seconds")
    if isinstance(correlation_id, str):
        correlation_id = uuid.UUID(correlation_id)
    if message_type is MessageType.REQUEST and not (recipient_id or capability):
        raise ProtocolError("a REQUEST needs a recipient_id or a capability", field="header")
    if message_type in (MessageType.RESPONSE, MessageType.ERROR) and correlation_id is None:
        raise ProtocolError(f"a {message_type.name} needs a correlation_id", field="header")
    header = unchecked(Header, {
        "message_id": new_message_id(), "message_type": message_type, "priority": priority,
        "sender_id": sender_id, "recipient_id": recipient_id, "capability": capability,
        "timestamp": datetime.now(UTC), "correlation_id": correlation_id, "ttl_seconds": ttl_seconds,
        "signature": None,
    })
    payload = unchecked(Payload, {"action": action, "data": data, "context": context})
    return unchecked(Message, {"header": header, "payload": payload})


def error_message(
    *,
    sender_id: str,
    code: str,
    detail: str,
    correlation_id: uuid.UUID | str | None = None,
    recipient_id: str | None = None,
) -> Message:
    """An ERROR message; without a correlation id (the bad frame had none) a fresh one is used."""
    return build_message(
        MessageType.ERROR,
        "error",
        {"code": code, "detail": detail},
        sender_id=sender_id,
        recipient_id=recipient_id,
        correlation_id=correlation_id or uuid.uuid4(),
    )


def _describe(error: ValidationError) -> tuple[str, str | None]:
    first = error.errors()[0]
    field = ".".join(str(p) for p in first["loc"]) or None
    text = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        text = "unknown field"
    elif first["type"] == "missing":
        text = "field required"
    more = len(error.errors()) - 1
    suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    return (f"{field}: {text}{suffix}" if field else f"{text}{suffix}"), field


def payload_size(payload: Any) -> int:
    return len(signing.canonical_json(payload))


def parse_message(
    raw: str | bytes | dict, *, max_payload_bytes: int | None = DEFAULT_MAX_PAYLOAD_BYTES
) -> Message:
    """Parse a wire message (JSON text or a decoded dict), or raise ``ProtocolError``."""
    if isinstance(raw, (str, bytes, bytearray)):
        try:
            raw = json_loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ProtocolError(f"malformed JSON: {exc}", code="invalid_json") from None
    if not isinstance(raw, dict):
        raise ProtocolError("a message must be a JSON object with header and payload")
    if max_payload_bytes is not None and isinstance(raw.get("payload"), dict):
        try:
            size = payload_size(raw["payload"])
        except (TypeError, ValueError):
            raise ProtocolError("payload is not JSON-encodable", field="payload") from None
        if size > max_payload_bytes:
            raise ProtocolError(
                f"payload is {size} bytes, over the {max_payload_bytes}-byte limit",
                code="too_large",
                field="payload",
            )
    try:
        return Message.model_validate(raw)
    except ValidationError as exc:
        detail, field = _describe(exc)
        raise ProtocolError(detail, field=field) from None


def verify_signature(raw: dict, secret: str | bytes) -> None:
    """Check the HMAC of a wire dict as received; raises ``ProtocolError`` if absent or wrong.

    The signature covers the JSON the sender produced (minus the signature key), so a client
    in another language only has to reproduce canonical JSON of what it sends.
    """
    header = raw.get("header") if isinstance(raw, dict) else None
    if not isinstance(header, dict) or not header.get("signature"):
        raise ProtocolError("message is not signed", code="signature_missing", field="signature")
    if not signing.verify_wire(raw, secret):
        raise ProtocolError("signature does not match", code="signature_invalid", field="signature")


def check_fresh(
    message: Message,
    *,
    now: datetime | None = None,
    max_skew_seconds: float = DEFAULT_MAX_SKEW_SECONDS,
) -> None:
    """Reject a message whose TTL has passed or whose clock is too far from ours."""
    now = now or datetime.now(UTC)
    sent = message.header.timestamp
    if abs((now - sent).total_seconds()) > max_skew_seconds:
        raise ProtocolError(
            f"timestamp is more than {max_skew_seconds:g}s from server time",
            code="clock_skew",
            field="header.timestamp",
        )
    ttl = message.header.ttl_seconds
    if ttl is not None and now > sent + timedelta(seconds=ttl):
        raise ProtocolError(
            f"message expired ({ttl}s time to live)", code="expired", field="header.ttl_seconds"
        )


REPLAYED_DETAIL = "message_id was already received (replay)"


class ReplayWindow:
    """Remembers message ids for ``window_seconds`` (at most ``max_entries``) to drop replays.

    Bounded both ways: old ids age out and the oldest are evicted when full, so a flood cannot
    grow memory. Paired with the clock-skew check, an id older than the window is rejected
    as stale before it could be replayed.
    """

    def __init__(self, window_seconds: float = 600, max_entries: int = 100_000):
        self.window_seconds = window_seconds
        self.max_entries = max_entries
        self._seen: OrderedDict[str, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def _expire(self, now: float) -> None:
        horizon = now - self.window_seconds
        while self._seen:
            oldest, seen_at = next(iter(self._seen.items()))
            if seen_at >= horizon and len(self._seen) <= self.max_entries:
                break
            self._seen.pop(oldest)

    def seen(self, message_id: uuid.UUID | str, *, now: float | None = None) -> bool:
        """True when the id was already seen in the window; records it otherwise."""
        now = time.monotonic() if now is None else now
        self._expire(now)
        key = str(message_id)
        if key in self._seen:
            return True
        self._seen[key] = now
        self._expire(now)
        return False

    def check(self, message: Message, *, now: float | None = None) -> None:
        if self.seen(message.header.message_id, now=now):
            raise ProtocolError(
                REPLAYED_DETAIL,
                code="replayed",
                field="header.message_id",
            )
