"""The operator's entry points for REST and the chat socket: approvals, take-over, the trail."""

from __future__ import annotations

from autobot.errors import InvalidInput, NotFound
from autobot.supervise import run_to_end
from chat.generation import answers
from chat.models import ChatMessage
from chat.operator import approvals
from chat.operator.approvals import approval_data

CONTROLS = ("pause", "resume", "stop")


async def approval_list(*, user, session_id) -> list[dict]:
    return [approval_data(a) for a in await approvals.approval_list(user=user, session_id=session_id)]


async def approval_decide(*, user, session_id, approval_id, decision: str, reason: str = "",
                          client_ip: str | None = None) -> dict:
    """The owner's decision; the waiting turn hears of it wherever it runs (told even when the
    caller is cancelled once the decision is made: run_to_end)."""
    return await run_to_end(_decide_and_tell(user=user, session_id=session_id, approval_id=approval_id,
                                             decision=decision, reason=reason, client_ip=client_ip))


async def _decide_and_tell(**decision) -> dict:
    approval = await approvals.approval_decide(**decision)
    await answers.control(approval.session_id, "approval_decided", approval_id=str(approval.pk))
    return approval_data(approval)


async def operator_control(*, user, session_id, action: str) -> None:
    """Pause (the owner takes the terminal), resume, or stop (kill the running command, end the turn)."""
    from chat.services import generation_cancel, session_get

    if action not in CONTROLS:
        raise InvalidInput(f"unknown action {action!r}; use {', '.join(CONTROLS)}", code="unknown_type")
    session = await session_get(user=user, session_id=session_id)
    if session.owner_id != user.pk:
        raise NotFound(f"chat session {session_id} not found", code="chat_session_not_found")
    if action == "stop":
        await generation_cancel(user=user, session_id=session.pk)
    else:
        await answers.control(session.pk, action)


async def message_trail(*, user, session_id, message_id: int) -> dict:
    """Everything one turn did, in order: its messages, tool calls, approvals, terminal commands,
    agent messages and audit events, joined by the turn's correlation id."""
    from chat.services import session_get

    session = await session_get(user=user, session_id=session_id)
    message = await ChatMessage.objects.filter(session=session, pk=message_id).afirst()
    if message is None:
        raise NotFound(f"message {message_id} not found", code="message_not_found")
    cid = message.correlation_id
    if not cid:
        return {"correlation_id": "", "items": [], "count": 0}
    items = await trail_of(session, cid)
    return {"correlation_id": cid, "items": items, "count": len(items)}


async def trail_of(session, cid: str) -> list[dict]:
    """The turn's trail items, oldest first (no permission check: callers decide who may see it)."""
    await approvals.approvals_expire_due(session_id=session.pk)  # an approval past its time shows expired
    items = await _trail_items(session, cid)
    items.sort(key=lambda item: (item["at"], item["kind"]))
    return items


async def _trail_items(session, cid: str) -> list[dict]:
    from agents.models import AgentMessage
    from autobot.models import AuditEvent
    from chat.models import Approval
    from terminal.models import CommandRecord

    items: list[dict] = []
    agent_ids: list[str] = []
    async for m in ChatMessage.objects.filter(session=session, correlation_id=cid).order_by("created", "id"):
        items.append({"kind": "message", "at": m.created.isoformat(), "id": m.pk, "role": m.role,
                      "status": m.status, "text": m.content[:200]})
        for call in m.tool_calls or []:
            items.append({"kind": "tool_call", "at": call.get("started") or m.created.isoformat(), "id": call.get("id"),
                          "name": call.get("name"), "status": call.get("status"), "risk": call.get("risk"),
                          "data": call.get("data") or {}})
            if (call.get("data") or {}).get("message_id"):
                agent_ids.append(call["data"]["message_id"])
    async for a in Approval.objects.filter(session=session, correlation_id=cid):
        items.append({"kind": "approval", "at": a.created.isoformat(), "id": str(a.pk), "call_id": a.call_id,
                      "command": a.command, "risk": a.risk, "status": a.status})
    async for r in CommandRecord.objects.filter(correlation_id=cid, user_id=session.owner_id).order_by("started"):
        items.append({"kind": "command", "at": r.started.isoformat(), "id": r.pk, "command": r.command,
                      "actor": r.actor, "risk": r.risk, "blocked": r.blocked, "exit_code": r.exit_code,
                      "terminal_session_id": str(r.session_id) if r.session_id else None})
    async for row in AgentMessage.objects.filter(message_id__in=agent_ids):
        items.append({"kind": "agent_message", "at": row.created_at.isoformat(), "id": str(row.message_id),
                      "action": row.action, "recipient": row.recipient_id, "status": row.status})
    async for e in AuditEvent.objects.filter(correlation_id=cid).order_by("id"):
        items.append({"kind": "audit", "at": e.created.isoformat(), "id": e.pk, "action": e.action,
                      "actor": e.actor_name, "target": f"{e.target_type}:{e.target_id}"})
    return items
