"""A tool call's record: the dict the chat's turn and the doors (MCP, A2A) keep on a message's
`tool_calls` and show (the `tool_call` frame, the messages API, the trail, the export).

One shape and one set of moves for both: made `running`, marked `awaiting_approval`, settled
once. A record still open when its call is stopped is settled `cancelled`, saying why, so
no stopped call shows as still running or still waiting.
"""

from __future__ import annotations

from collections.abc import Callable

from asgiref.sync import sync_to_async
from django.db import transaction
from django.utils import timezone

from chat.models import ChatMessage

OPEN = frozenset({"running", "awaiting_approval"})
STOPPED = "stopped before it finished"


def record_new(*, call_id: str, name: str, arguments, risk: str | None = None,
               reasons: list[str] | tuple[str, ...] = ()) -> dict:
    return {"id": call_id, "name": name, "arguments": arguments, "status": "running",
            "started": timezone.now().isoformat(), "risk": risk, "reasons": list(reasons), "output": "",
            "ok": None, "exit_code": None, "data": {}}


def record_await(record: dict, approval_id) -> None:
    """Waiting for the owner to decide approval `approval_id` (a door's record names it before
    it exists: the approval needs the message first)."""
    record.update(status="awaiting_approval", approval_id=str(approval_id))


def record_start(record: dict) -> None:
    """Its approval used: the call runs now."""
    record["status"] = "running"


def record_settle(record: dict, *, status: str, ok: bool, output: str, exit_code: int | None = None) -> None:
    record.update(status=status, ok=ok, output=output, exit_code=exit_code)


def record_cancel(record: dict, reason: str = "") -> bool:
    """Settle an open record `cancelled` (its output says why); False when it had ended already."""
    if record.get("status") not in OPEN:
        return False
    record_settle(record, status="cancelled", ok=False, output=f"{STOPPED}: {reason}" if reason else STOPPED)
    return True


async def record_change(message_id: int, call_id: str, change: Callable[[dict], object]) -> None:
    """Apply `change` to the record `call_id` stored on message `message_id` (a door's: no turn
    holds it in memory to save it later; or a turn's, settled when its approval ends).

    Read and written under the row's lock, in one transaction: a turn saving the message's calls
    meanwhile (chat/generation.py writes its whole list) either lands first and is read here, or
    waits and overwrites this (the turn settles its own record), but never loses its newer
    records to an older list written back."""
    await sync_to_async(record_change_sync)(message_id, call_id, change)


def record_change_sync(message_id: int, call_id: str, change: Callable[[dict], object]) -> None:
    """`record_change`, in the caller's thread (and transaction, when it holds one)."""
    with transaction.atomic():  # SQLite: BEGIN IMMEDIATE (settings), the write lock from the read on
        message = ChatMessage.objects.select_for_update().filter(pk=message_id).only("tool_calls").first()
        if message is None:
            return
        calls = message.tool_calls or []
        for record in calls:
            if record.get("id") == call_id:
                change(record)
        ChatMessage.objects.filter(pk=message_id).update(tool_calls=calls)
