"""Approvals: a tool call waiting for its owner's decision.

An approval is bound to a hash of (chat session, call, tool, command, folder, arguments): the
call that runs must be the one approved, every argument included (a door's client repeats the
call to run it, and a write's content or an agent's data are not in the command it shows).
It is single-use (approved → used when the call consumes it) and expires twice over: a pending
one when nobody decides it in OPERATOR_APPROVAL_SECONDS, an approved one when its call does not
run within OPERATOR_APPROVED_USE_SECONDS of the decision (the turn died, the door's client never
repeated the call): consent is for now, not for whenever. `expires` holds the deadline that
applies (approving moves it). Every decision and every end but use is one audit event: approved,
denied, expired (undecided, unused, or its turn gone) or withdrawn; and a call's record still
waiting on an approval that ended unused says so. Each change of state is one transaction with
its audit event and its call's record (all or nothing), run to its end even when the caller is
cancelled meanwhile (`run_to_end`). Only the session's owner decides, over REST or the chat socket; nothing
the model says or any tool returns can decide it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import uuid
from collections.abc import Callable
from datetime import timedelta

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from autobot import audit
from autobot.errors import Conflict, Forbidden, InvalidInput, NotFound
from autobot.supervise import run_to_end
from chat.models import Approval, ChatSession
from chat.operator import records

log = logging.getLogger("chat.operator.approvals")
Status = Approval.Status
DECISIONS = {"approve": Status.APPROVED, "deny": Status.DENIED}
UNUSED = "approved, but the call did not run in time"
UNDECIDED = "nobody decided it in time"
SELF_DECISION = ("this approval was asked for with the API token this request uses: the client that asks may not "
                 "decide. The owner decides it in AutoBot (the chat page, or a request with another token)")


def binding(*, session_id, call_id: str, tool: str, command: str, cwd: str, arguments: dict) -> str:
    canonical = json.dumps(arguments, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    parts = "\x00".join([str(session_id), call_id, tool, command, cwd, canonical])
    return hashlib.sha256(parts.encode()).hexdigest()


def approval_data(approval: Approval) -> dict:
    return {"id": str(approval.id), "call_id": approval.call_id, "tool": approval.tool,
            "command": approval.command, "cwd": approval.cwd, "risk": approval.risk,
            "reasons": approval.reasons, "status": approval.status, "expires": approval.expires.isoformat(),
            "message_id": approval.message_id, "reason": approval.reason}


async def approval_create(**fields) -> Approval:
    """A pending approval and its audit event, in one transaction (`approval_create_sync`)."""
    return await sync_to_async(approval_create_sync)(**fields)


def approval_create_sync(*, user, session_id, message_id: int, call_id: str, tool: str, command: str, cwd: str,
                         arguments: dict, risk: str, reasons: list[str], correlation_id: str,
                         approval_id: uuid.UUID | None = None, asked_with_token_id: int | None = None) -> Approval:
    """A pending approval (its id chosen by the caller when given: a record may name it first)
    and its audit event, both or neither. `asked_with_token_id`: the API token of the client that
    asked (a door's, or the one that posted the chat's question), which may not decide it."""
    with transaction.atomic():
        approval = Approval.objects.create(
            id=approval_id or uuid.uuid4(), asked_with_token_id=asked_with_token_id,
            session_id=session_id, message_id=message_id, call_id=call_id, tool=tool,
            command=command, cwd=cwd, risk=risk, reasons=reasons, correlation_id=correlation_id,
            binding=binding(session_id=session_id, call_id=call_id, tool=tool, command=command, cwd=cwd,
                            arguments=arguments),
            expires=timezone.now() + timedelta(seconds=settings.OPERATOR_APPROVAL_SECONDS),
        )
        audit.record_sync(actor=user, action="chat.approval_requested", target_type="chat_session",
                          target_id=str(session_id), correlation_id=correlation_id,
                          data={"approval_id": str(approval.id), "call_id": call_id, "tool": tool,
                                "command": command, "cwd": cwd, "risk": risk})
    return approval


async def _owned_session(user, session_id) -> ChatSession:
    # Only the owner decides, staff included: an approval is the owner's consent.
    try:
        return await ChatSession.objects.aget(pk=session_id, owner=user)
    except (ChatSession.DoesNotExist, ValueError, TypeError, ValidationError):
        raise NotFound(f"chat session {session_id} not found", code="chat_session_not_found") from None


async def approval_list(*, user, session_id) -> list[Approval]:
    """The session's pending approvals (expired ones are marked so on the way)."""
    session = await _owned_session(user, session_id)
    await approvals_expire_due(session_id=session.pk)
    return [a async for a in Approval.objects.filter(session=session, status=Status.PENDING).order_by("created")]


async def approvals_expire_due(*, session_id=None, approval_id=None) -> None:
    """Mark expired what ran out of time (in one session, one approval, or everywhere): pending
    approvals nobody decided, and approved ones whose call never ran. Each is an audit event,
    once (whoever marks it first), and its call's record stops waiting (``_record_ended``)."""
    due = Approval.objects.filter(expires__lte=timezone.now(), status__in=(Status.PENDING, Status.APPROVED))
    if session_id is not None:
        due = due.filter(session_id=session_id)
    if approval_id is not None:
        due = due.filter(pk=approval_id)
    async for approval in due.select_related("session__owner"):
        # One transaction (a failure leaves the approval as it was, for the next sweep), run to
        # its end even when the caller is cancelled meanwhile.
        await run_to_end(sync_to_async(_expire)(approval))


async def approvals_sweep() -> None:
    """Every OPERATOR_EXPIRY_SWEEP_SECONDS, mark expired whatever ran out of time, in every session
    (each worker runs one, from its start-up: autobot/lifespan.py). Without it an approval nobody
    looked at again (a door's client gone, its owner away) stayed `pending` in the admin, its
    record waiting and its `chat.approval_expired` unwritten until a read. Two workers sweeping at
    once each mark a different approval or none: the marking is conditional."""
    while True:
        await asyncio.sleep(settings.OPERATOR_EXPIRY_SWEEP_SECONDS)
        try:
            await approvals_expire_due()
        except Exception:  # a database briefly down or locked: the next sweep tries again
            log.warning("marking expired approvals failed; the next sweep tries again", exc_info=True)


def _expire(approval: Approval) -> None:
    """Mark one due approval expired, with its audit event and its record's settle."""
    reason = UNUSED if approval.status == Status.APPROVED else UNDECIDED
    with transaction.atomic():
        # Conditional, as consuming and deciding are: a call that ran, or a decision made, in this
        # instant keeps its approval.
        if not Approval.objects.filter(pk=approval.pk, status=approval.status).update(status=Status.EXPIRED,
                                                                                      reason=reason):
            return
        approval.status, approval.reason = Status.EXPIRED, reason
        _audit_expired(approval)
        _record_ended(approval)


def _audit_expired(approval: Approval) -> None:
    """`chat.approval_expired`, for an approval just marked expired (with `session__owner`)."""
    audit.record_sync(actor=approval.session.owner, action="chat.approval_expired", target_type="chat_session",
                      target_id=str(approval.session_id), correlation_id=approval.correlation_id,
                      data={"approval_id": str(approval.pk), "call_id": approval.call_id, "tool": approval.tool,
                            "command": approval.command, "cwd": approval.cwd,
                            "decided_at": approval.decided_at.isoformat() if approval.decided_at else None,
                            "reason": approval.reason})


def _record_ended(approval: Approval) -> None:
    """The call's record, on the message that asked, says it was not approved, if it still waits
    on this approval. A door's call has no turn to settle it (its client may never come back); a
    turn's own record is settled the same way by the turn. In the caller's transaction."""
    why = f": {approval.reason}" if approval.reason else ""
    output = f"not approved ({approval.status}{why})"

    def settle(record: dict) -> None:
        if record.get("status") == "awaiting_approval" and record.get("approval_id") == str(approval.pk):
            records.record_settle(record, status="denied", ok=False, output=output)

    records.record_change_sync(approval.message_id, approval.call_id, settle)


async def approval_decide(*, user, session_id, approval_id, decision: str, reason: str = "",
                          client_ip: str | None = None) -> Approval:
    """Approve or deny a pending approval (409 once decided or expired). A door's client (MCP, A2A)
    may not decide what it asked for with the token it asked with (403 `approval_self_decision`):
    the owner's decision comes from the owner, not from the client holding their token."""
    if decision not in DECISIONS:
        raise InvalidInput("decision must be approve or deny", code="invalid_decision")
    session = await _owned_session(user, session_id)
    try:
        approval = await Approval.objects.aget(pk=approval_id, session=session)
    except (Approval.DoesNotExist, ValueError, TypeError, ValidationError):
        raise NotFound(f"approval {approval_id} not found", code="approval_not_found") from None
    if approval.asked_with_token_id is not None and approval.asked_with_token_id == getattr(user, "api_token_id", None):
        raise Forbidden(SELF_DECISION, code="approval_self_decision")
    # Run to its end even when the caller is cancelled (an API client gone, a socket closed): a
    # cancel landing while the decision is written would not say whether it won.
    if not await run_to_end(sync_to_async(_decide)(approval, user=user, decision=decision,
                                                   reason=(reason or "")[:500], client_ip=client_ip)):
        await approvals_expire_due(session_id=session.pk)
        await approval.arefresh_from_db()
        why = f": {approval.reason}" if approval.status == Status.EXPIRED and approval.reason else ""
        raise Conflict(f"approval {approval.pk} is already {approval.status}{why}", code="approval_closed")
    return approval


def _decide(approval: Approval, *, user, decision: str, reason: str, client_ip: str | None) -> bool:
    """The decision, if the approval is still pending and in time (False otherwise), with its
    audit event and a denied call's record settle: one transaction, all or nothing."""
    now = timezone.now()
    # An approved call has OPERATOR_APPROVED_USE_SECONDS from now to run; a denial keeps its date.
    use_by = {}
    if decision == "approve":
        use_by["expires"] = now + timedelta(seconds=settings.OPERATOR_APPROVED_USE_SECONDS)
    with transaction.atomic():
        # One conditional UPDATE: two decisions racing cannot both win.
        if not Approval.objects.filter(pk=approval.pk, status=Status.PENDING, expires__gt=now).update(
                status=DECISIONS[decision], decided_by=user, decided_at=now, reason=reason, **use_by):
            return False
        approval.refresh_from_db()
        audit.record_sync(actor=user, action=f"chat.approval_{'approved' if decision == 'approve' else 'denied'}",
                          target_type="chat_session", target_id=str(approval.session_id), ip=client_ip,
                          correlation_id=approval.correlation_id,
                          data={"approval_id": str(approval.pk), "call_id": approval.call_id,
                                "command": approval.command, "cwd": approval.cwd, "risk": approval.risk,
                                "reason": reason})
        if approval.status == Status.DENIED:
            _record_ended(approval)
    return True


async def approval_consume(approval_id, *, expected_binding: str) -> bool:
    """Use an approved approval once, for the call it was made for, before it expires. False otherwise."""
    used = await Approval.objects.filter(pk=approval_id, status=Status.APPROVED, binding=expected_binding,
                                         expires__gt=timezone.now()).aupdate(status=Status.USED)
    return used == 1


async def approval_state(approval_id) -> Approval:
    """The approval as it stands, marked expired first if its time ran out."""
    approval = await Approval.objects.aget(pk=approval_id)
    if approval.status in (Status.PENDING, Status.APPROVED) and approval.expires <= timezone.now():
        await approvals_expire_due(approval_id=approval.pk)
        await approval.arefresh_from_db()
    return approval


async def approval_expire_now(approval_id, *, reason: str) -> None:
    """The turn that waited is gone (stopped, timed out): nobody can approve it any more. An
    audit event when it was still pending (the turn settles its call's record itself); it follows
    the expiry even when the caller is cancelled meanwhile (run_to_end)."""
    await run_to_end(sync_to_async(_expire_now)(approval_id, reason[:500]))


def _expire_now(approval_id, reason: str) -> None:
    with transaction.atomic():
        if not Approval.objects.filter(pk=approval_id, status=Status.PENDING).update(status=Status.EXPIRED,
                                                                                     reason=reason):
            return
        _audit_expired(Approval.objects.select_related("session__owner").get(pk=approval_id))


async def approvals_withdraw(*, owner, correlation_id: str, reason: str,
                             settle: Callable[[dict], object] | None = None) -> list[Approval]:
    """Expire the owner's open approvals of one correlation (an A2A task, a turn): what asked for
    them was stopped, so nobody may approve them any more, and one approved but not yet used may
    not run later either (a new message naming it would otherwise run the call). `settle`, when
    given, is applied to each expired approval's call record (a door's: no turn holds it). Returns
    those it expired. One transaction with its audit event and the settles, run to its end even
    when the caller is cancelled (run_to_end)."""
    if not correlation_id:
        return []
    return await run_to_end(sync_to_async(_withdraw)(owner, correlation_id, reason[:500], settle))


def _withdraw(owner, correlation_id: str, reason: str, settle: Callable[[dict], object] | None) -> list[Approval]:
    open_ = (Status.PENDING, Status.APPROVED)
    with transaction.atomic():
        found = Approval.objects.filter(correlation_id=correlation_id, session__owner=owner, status__in=open_)
        withdrawn = []
        for approval in found.only("pk", "session_id", "message_id", "call_id"):
            # Conditional, as consuming is: a call that used its approval in this instant keeps it used.
            if Approval.objects.filter(pk=approval.pk, status__in=open_).update(status=Status.EXPIRED, reason=reason):
                withdrawn.append(approval)
                if settle is not None:
                    records.record_change_sync(approval.message_id, approval.call_id, settle)
        if withdrawn:
            audit.record_sync(actor=owner, action="chat.approval_withdrawn", target_type="chat_session",
                              target_id=str(withdrawn[0].session_id), correlation_id=correlation_id,
                              data={"approval_ids": [str(a.pk) for a in withdrawn], "reason": reason})
    return withdrawn
