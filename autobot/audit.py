"""The audit trail: one async function writes every event; rows form an HMAC hash chain.

Each row's hash covers its own fields and the previous row's hash, keyed by AUDIT_KEY, so
editing, deleting or inserting a row breaks the chain at that point (`manage.py verify_audit`),
and forging a consistent chain needs the key, not just database access.
"""

import hashlib
import hmac
import json
import math
from dataclasses import dataclass
from datetime import UTC

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from autobot import context
from autobot.compiled import CompiledInsert, CompiledQuery
from autobot.models import AuditEvent

GENESIS = "0" * 64
# Any constant works; it only has to be the same in every process that writes the chain.
_PG_LOCK_KEY = 0x4155444954  # "AUDIT"


def _stable(value):
    """JSON that every backend stores and gives back unchanged: PostgreSQL's jsonb rewrites
    exponent floats and -0.0 and refuses NUL characters, which would break the hash or the insert."""
    if isinstance(value, dict):
        return {_stable(str(k)): _stable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_stable(v) for v in value]
    if isinstance(value, float):
        if not math.isfinite(value) or "e" in repr(value):
            return repr(value)
        return 0.0 if value == 0 else value
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if value is None or isinstance(value, bool | int):
        return value
    return _stable(str(value))


def _canonical(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def compute_hash(*, prev_hash: str, created, actor_id, actor_name, action, target_type, target_id, data, ip,
                 correlation_id) -> str:
    body = _canonical({
        "prev_hash": prev_hash,
        "created": created.astimezone(UTC).isoformat(timespec="microseconds"),
        "actor": actor_id,
        "actor_name": actor_name,
        "action": action,
        "target_type": target_type,
        "target_id": target_id,
        "data": data,
        "ip": ip,
        "correlation_id": correlation_id,
    })
    return hmac.new(settings.AUDIT_KEY.encode(), body.encode(), hashlib.sha256).hexdigest()


def _row_hash(event: AuditEvent) -> str:
    return compute_hash(
        prev_hash=event.prev_hash, created=event.created, actor_id=event.actor_id,
        actor_name=event.actor_name, action=event.action, target_type=event.target_type,
        target_id=event.target_id, data=event.data, ip=event.ip, correlation_id=event.correlation_id,
    )


# The chain's last hash and the insert, compiled once (autobot/compiled.py): compiling them cost
# more than running them, inside every transaction that writes an event (docs/performance.md,
# eleventh round). The row written is the one `save(force_insert=True)` wrote.
_LAST_HASH = CompiledQuery(lambda: AuditEvent.objects.order_by("-id").values_list("hash"))
_INSERT = CompiledInsert(AuditEvent)


def _append(fields: dict) -> AuditEvent:
    with transaction.atomic():
        # Writers must take turns: each row needs the hash of the one before it. SQLite's
        # IMMEDIATE transactions already serialise writers; PostgreSQL needs a lock.
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_PG_LOCK_KEY])
        last = _LAST_HASH.rows({}, limit=1)
        event = AuditEvent(prev_hash=last[0][0] if last else GENESIS, created=timezone.now(), **fields)
        event.hash = _row_hash(event)
        _INSERT.insert(event)
        return event


def record_sync(*, actor, action: str, target_type: str = "", target_id: str = "", data: dict | None = None,
                ip: str | None = None, correlation_id: str | None = None) -> AuditEvent:
    """The synchronous form, for sync views and management commands."""
    is_user = actor is not None and getattr(actor, "is_authenticated", False)
    fields = {
        "actor_id": actor.pk if is_user else None,
        "actor_name": actor.get_username()[:150] if is_user else "",
        # Cut to the column sizes: PostgreSQL enforces them, and an audit write must not fail.
        "action": _stable(action)[:100],
        "target_type": _stable(target_type)[:50],
        "target_id": _stable(str(target_id or ""))[:100],
        "data": _stable(data or {}),
        "ip": ip or context.client_ip.get(),
        "correlation_id": correlation_id or context.correlation_id.get(),
    }
    return _append(fields)


async def record(*, actor, action: str, target_type: str = "", target_id: str = "", data: dict | None = None,
                 ip: str | None = None, correlation_id: str | None = None) -> AuditEvent:
    """Append one audit event. The only way audit rows are written."""
    return await sync_to_async(record_sync)(
        actor=actor, action=action, target_type=target_type, target_id=target_id, data=data, ip=ip,
        correlation_id=correlation_id or context.correlation_id.get(),
    )


@dataclass
class ChainReport:
    ok: bool
    checked: int
    first_bad_id: int | None = None
    problem: str = ""
    head: str = ""  # "<id>:<hash>" of the last row verified: keep it elsewhere to detect truncation


def verify() -> ChainReport:
    """Walk the chain in order and report the first row that does not fit."""
    prev_hash = GENESIS
    prev_id = None
    checked = 0
    for event in AuditEvent.objects.order_by("id").iterator(chunk_size=2000):
        if event.prev_hash != prev_hash:
            where = f"after row {prev_id}" if prev_id else "at the start of the chain"
            return ChainReport(False, checked, event.id,
                               f"row {event.id} does not follow the row before it ({where}): "
                               "a row was deleted or inserted")
        if not hmac.compare_digest(_row_hash(event), event.hash):
            return ChainReport(False, checked, event.id, f"row {event.id} was edited: its hash does not match")
        prev_hash, prev_id = event.hash, event.id
        checked += 1
    return ChainReport(True, checked, head=f"{prev_id}:{prev_hash}" if prev_id else "")


def head_present(head: str) -> bool:
    """Whether the row named by a head from an earlier `verify` ("<id>:<hash>") is still in the
    chain unchanged. A chain cut back past that row verifies as intact on its own; this catches it."""
    row_id, _, row_hash = head.partition(":")
    if not row_id.isdigit() or not row_hash:
        raise ValueError(f"{head!r} is not a head printed by verify_audit (<id>:<hash>)")
    stored = AuditEvent.objects.filter(pk=int(row_id)).values_list("hash", flat=True).first()
    return stored is not None and hmac.compare_digest(stored, row_hash)
