"""The bus's envelope: a protocol message packed for the Channels layer and signed (pure).

Only server processes read and write envelopes (external agents speak JSON frames, see
protocol.py), so the envelope is built for speed rather than for other languages:

* the message and its routing fields are one msgpack array — a few hundred nanoseconds to
  pack or unpack, where JSON text cost microseconds, and bytes are cheap for the in-memory
  layer to copy and for channels-redis to pack;
* the HMAC-SHA256 (server key) covers exactly those bytes: signed once when sealed, checked
  once when opened, never re-encoded canonically;
* inside a verified envelope the message was validated where it entered the system (external
  frame, API body) or made by server code (``server_message``), so opening converts fields
  back to their types and does not run pydantic again.

Layout: the event is ``{"type": "agents.message", "sealed": <32-byte HMAC + body>}`` (one
value: the in-memory layer deep-copies every event key by key); the body is the msgpack
array ``[1, message, reply_to, origin, via, seq]``, or ``[1, message, reply_to, origin, via, seq,
deadline]`` for a request someone waits for (``deadline``: when the asker stops waiting, seconds
since the epoch; servers agree on the time, as the clock-skew check already assumes), and
``message`` is itself packed bytes
(``pack_message``), so an answer can be kept as one small immutable object (de-duplication
remembers answers for minutes) and re-sealed for a retry::

    [format, message_id (16 bytes), message_type name, priority 1-4, sender_id, recipient_id,
     capability, timestamp (µs since the epoch, UTC), correlation_id (16 bytes or nil),
     ttl_seconds, signature, action, data, context]

Message format 2 is the same with ``data`` and ``context`` as JSON text: the fallback for
values msgpack cannot hold (integers past 64 bits).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import msgpack
from pydantic_core import to_jsonable_python

from agents.protocol import (
    NAME_PATTERN,
    Header,
    Message,
    MessageType,
    Payload,
    Priority,
    ProtocolError,
    new_message_id,
    unchecked,
    uuid_from_int,
)

EVENT_TYPE = "agents.message"
ENVELOPE = 1
MAC_SIZE = hashlib.sha256().digest_size
FORMAT = 1
FORMAT_JSON_DATA = 2
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
PRIORITIES = {p.value: p for p in Priority}
FIELDS = 14
AGENT_ID = re.compile(NAME_PATTERN)


class _Packers(threading.local):
    """One reusable msgpack ``Packer`` of each kind per thread: ``msgpack.packb`` builds (and
    frees) a packer and its buffer on every call. Per thread because a packer is not safe to
    share while its ``default`` hook runs Python code; after a failed pack msgpack resets the
    packer, so the fallback paths below can use ``packb``."""

    def __init__(self) -> None:
        self.message = msgpack.Packer(default=to_jsonable_python)
        self.envelope = msgpack.Packer()


_PACKERS = _Packers()


class Delivery(NamedTuple):
    """What the envelope says besides the message: where answers go, until when the asker
    waits for one (None: nobody waits), and the fan-out sequence."""

    reply_to: str | None
    origin: str
    via: str | None
    seq: int | None
    deadline: float | None = None


def pack_message(message: Message, *, recipient_id: str | None = None) -> bytes:
    """The message as msgpack bytes (``recipient_id`` overrides the header's: the agent the bus
    picked for a capability)."""
    h, p = message.header, message.payload
    fields = [
        FORMAT, h.message_id.bytes, h.message_type.name, h.priority.value, h.sender_id,
        recipient_id or h.recipient_id, h.capability, (h.timestamp - EPOCH) // MICROSECOND,
        None if h.correlation_id is None else h.correlation_id.bytes, h.ttl_seconds, h.signature,
        p.action, p.data, p.context,
    ]
    try:
        return _PACKERS.message.pack(fields)
    except (OverflowError, ValueError, TypeError):
        fields[0] = FORMAT_JSON_DATA
        fields[12] = json.dumps(p.data, default=to_jsonable_python, ensure_ascii=False)
        fields[13] = json.dumps(p.context, default=to_jsonable_python, ensure_ascii=False)
        return msgpack.packb(fields, default=to_jsonable_python)


def pack_response(request: Message, *, sender_id: str, data: dict) -> bytes:
    """``pack_message(request.reply(sender_id=..., data=...))`` without building the RESPONSE
    model first: an in-process agent's answer only ever travels packed."""
    h = request.header
    recipient_id = h.sender_id if AGENT_ID.match(h.sender_id) else None
    fields = [
        FORMAT, new_message_id().bytes, "RESPONSE", h.priority.value, sender_id, recipient_id, None,
        time.time_ns() // 1000, h.message_id.bytes, None, None, request.payload.action, data, {},
    ]
    try:
        return _PACKERS.message.pack(fields)
    except (OverflowError, ValueError, TypeError):
        fields[0], fields[12] = FORMAT_JSON_DATA, json.dumps(data, default=to_jsonable_python, ensure_ascii=False)
        fields[13] = "{}"
        return msgpack.packb(fields, default=to_jsonable_python)


def unpack_message(packed: bytes) -> Message:
    fields = msgpack.unpackb(packed, strict_map_key=False)
    if len(fields) != FIELDS or fields[0] not in (FORMAT, FORMAT_JSON_DATA):
        raise ValueError(f"unknown message format {fields[0]!r}")
    data, context = fields[12], fields[13]
    if fields[0] == FORMAT_JSON_DATA:
        data, context = json.loads(data), json.loads(context)
    correlation_id = fields[8]
    header = unchecked(Header, {
        "message_id": uuid_from_int(int.from_bytes(fields[1])), "message_type": MessageType[fields[2]],
        "priority": PRIORITIES[fields[3]], "sender_id": fields[4], "recipient_id": fields[5],
        "capability": fields[6], "timestamp": EPOCH + timedelta(microseconds=fields[7]),
        "correlation_id": None if correlation_id is None else uuid_from_int(int.from_bytes(correlation_id)),
        "ttl_seconds": fields[9], "signature": fields[10],
    })
    payload = unchecked(Payload, {"action": fields[11], "data": data, "context": context})
    return unchecked(Message, {"header": header, "payload": payload})


class Sealer:
    """Seals and opens envelopes with one server key (the HMAC key schedule is computed once)."""

    def __init__(self, key: bytes):
        mac = hmac.new(key, digestmod=hashlib.sha256)
        # With OpenSSL (always, in CPython builds we run) the ``hmac.HMAC`` wraps a C object
        # with the same copy/update/digest methods; using it directly skips a Python-level
        # copy of the wrapper on every seal and open (a third of the signing cost).
        self._mac = getattr(mac, "_hmac", None) or mac

    def sign(self, data: bytes) -> bytes:
        mac = self._mac.copy()
        mac.update(data)
        return mac.digest()

    def seal(self, message: Message | bytes, *, reply_to: str | None, origin: str,
             via: str | None = None, seq: int | None = None, deadline: float | None = None) -> dict:
        """The layer event for a message (or its ``pack_message`` bytes)."""
        if not isinstance(message, bytes):
            message = pack_message(message)
        fields = [ENVELOPE, message, reply_to, origin, via, seq]
        if deadline is not None:
            fields.append(deadline)
        body = _PACKERS.envelope.pack(fields)
        return {"type": EVENT_TYPE, "sealed": self.sign(body) + body}

    def open(self, event: dict) -> tuple[Message, Delivery]:
        """Verify an event and rebuild its message; ``ProtocolError`` when it is not ours."""
        sealed = event.get("sealed")
        if not isinstance(sealed, bytes) or not hmac.compare_digest(self.sign(sealed[MAC_SIZE:]), sealed[:MAC_SIZE]):
            raise ProtocolError("bus envelope signature does not match", code="signature_invalid")
        body = sealed[MAC_SIZE:]
        try:
            version, packed, *routing = msgpack.unpackb(body)
            if version != ENVELOPE:
                raise ValueError(f"unknown envelope version {version!r}")
            return unpack_message(packed), Delivery(*routing)
        except (ValueError, KeyError, IndexError, TypeError) as exc:  # signed by a server: a bug
            raise ProtocolError(f"bus envelope is malformed: {exc}", code="invalid_envelope") from None
