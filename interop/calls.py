"""One tool call through a door (MCP, A2A): the chat operator's rules, without a model.

The call is checked and rated by the registry (chat.tools.prepare), then the user's operator
policy decides: run it, refuse it, or park it behind an approval. There is no turn to wait in
(an MCP client holds one HTTP request), so a call that needs approval returns at once with the
approval's id; the owner decides it in AutoBot (the door's chat session, REST or the page), and
the client repeats the same call with `approval_id` to run it. The approval is bound to the
call's exact tool and arguments (what runs is what was shown) and single-use, as in the chat.
Every outcome is an audit event `<door>.tool_call`, a call cancelled midway too. The call's
record on that message (chat.operator.records) settles however the call ends: done, failed,
or `cancelled` with the door's reason when its client stopped it (an A2A CancelTask, an MCP
client closing its request) while it ran or while its approval waited. A call stopped while
it asks withdraws the approval it asked for (`_cancelled`): nobody waits for that decision.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import uuid
from dataclasses import dataclass, field

from asgiref.sync import sync_to_async
from django.db import IntegrityError, transaction

from autobot import audit
from autobot.auth import read_only
from autobot.errors import AppError, Forbidden
from autobot.supervise import run_to_end
from chat import tools
from chat.models import Approval, ChatMessage, ChatSession, OperatorPolicy
from chat.operator import approvals, records
from chat.operator.policy import action_for, policy_get
from interop.models import DoorSession

# All a read-only token may call: the rest change files, run commands, or ask agents and external
# MCP servers to do things (an allowlist, so a new tool is not readable until said so).
READ_TOOLS = frozenset({"knowledge_search", "knowledge_get", "files_list", "files_read"})
log = logging.getLogger("interop.calls")
TITLES = {"mcp": "MCP client calls", "a2a": "A2A client calls"}
# Why a door's call stops midway: said on its record, its audit event, its approvals and the
# terminal's refusal of the rest of its line (not "the operator stopped this line").
STOP_REASONS = {"mcp": "the MCP client cancelled the call", "a2a": "the A2A task was cancelled"}


@dataclass
class Outcome:
    status: str  # done, failed, refused, pending_approval, cancelled
    ok: bool
    output: str
    exit_code: int | None = None
    risk: str | None = None
    approval: dict | None = None
    data: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"status": self.status, "ok": self.ok, "output": self.output, "exit_code": self.exit_code,
                "risk": self.risk, "approval": self.approval, **({"data": self.data} if self.data else {})}


async def door_session(user, door: str) -> ChatSession:
    """The user's chat session for this door, made on first use."""
    link = await DoorSession.objects.select_related("chat_session").filter(user=user, door=door).afirst()
    if link is not None:
        return link.chat_session
    session = await ChatSession.objects.acreate(owner=user, title=TITLES[door], tools=True)
    try:
        await DoorSession.objects.acreate(user=user, door=door, chat_session=session)
    except IntegrityError:  # another request made it first: use that one
        await session.adelete()
        link = await DoorSession.objects.select_related("chat_session").aget(user=user, door=door)
        return link.chat_session
    return session


async def call(*, user, door: str, name: str, arguments: dict | None, approval_id: str | None = None,
               client_ip: str | None = None, correlation_id: str = "") -> Outcome:
    correlation_id = correlation_id or uuid.uuid4().hex
    session = await door_session(user, door)
    context = tools.ToolContext(user=user, correlation_id=correlation_id, chat_session_id=str(session.pk),
                                call_id=f"{door}_{uuid.uuid4().hex[:12]}", client_ip=client_ip,
                                terminal_session_id=str(session.operator_terminal or "") or None,
                                remember_terminal=_remember(session), stop_reason=STOP_REASONS[door])
    asked = uuid.uuid4()  # the id of the approval this call may ask for, known here if it is cancelled
    try:
        outcome = await _call(user, door, name, arguments or {}, approval_id, context, session, asked)
    except asyncio.CancelledError:  # the client cancelled (A2A CancelTask, on any worker; MCP: it left)
        await run_to_end(_cancelled(user, door, name, approval_id, asked, session, context))
        raise
    await _audit(user, door, name, outcome, approval_id, session, correlation_id, client_ip)
    return outcome


async def _cancelled(user, door, name, approval_id, asked, session, context) -> None:
    """The audit event of a cancelled call; first, if it was asking for approval, the withdrawal
    of that approval. Stored all the same (the park runs to its end, `_ask`), it would wait for a
    decision nobody waits for, under an id the client never got, until it expired; and, once
    approved, a call naming it would run after all.

    The cancel's own withdrawal (A2A: RequestHandler.on_cancel_task) cannot be relied on for it:
    on the worker running the call, the SDK's cancel returns once the task is stored canceled,
    while the call may still be storing its approval, so that withdrawal can run first and find
    nothing. This one cannot come too early: every cancel of a call asking reaches it here (the
    SDK cancels the executor, another worker's cancel is seen by a2a_stream.run, an MCP client
    leaving by mcp_server), only after the park has ended; and a call cancelled after it
    returned had stored its approval before, where the cancel's withdrawal finds it."""
    if await Approval.objects.filter(pk=asked).aexists():
        await calls_withdraw(user=user, door=door, correlation_id=context.correlation_id)
        approval_id = str(asked)
    stopped = Outcome("cancelled", False, f"{records.STOPPED}: {context.stop_reason}",
                      data={"reason": context.stop_reason})
    await _audit(user, door, name, stopped, approval_id, session, context.correlation_id, context.client_ip)


async def _audit(user, door, name, outcome: Outcome, approval_id, session, correlation_id, client_ip) -> None:
    await audit.record(actor=user, action=f"{door}.tool_call", target_type="chat_session", target_id=str(session.pk),
                       correlation_id=correlation_id, ip=client_ip,
                       data={"tool": name, "status": outcome.status, "ok": outcome.ok, "risk": outcome.risk,
                             "approval_id": (outcome.approval or {}).get("id") or approval_id,
                             "output_chars": len(outcome.output), **outcome.data})


def _remember(session: ChatSession):
    async def remember(terminal_id: str) -> None:
        await ChatSession.objects.filter(pk=session.pk).aupdate(operator_terminal=terminal_id)

    return remember


async def _call(user, door, name, arguments, approval_id, context, session, asked: uuid.UUID) -> Outcome:
    if name not in READ_TOOLS and read_only(user):
        return Outcome("refused", False, f"refused: this API token is read-only and {name} changes things")
    try:
        prepared = await tools.prepare(user, name, arguments, context)
    except AppError as exc:
        return Outcome("failed", False, f"{exc.code}: {exc.detail}")
    tool, args, rating = prepared.tool, prepared.args, prepared.rating
    action = action_for(await policy_get(user=user), rating.risk)
    if action == OperatorPolicy.Action.REFUSE:
        return Outcome("refused", False, f"refused: your operator policy does not allow {rating.risk} calls",
                       risk=rating.risk)
    if action == OperatorPolicy.Action.APPROVE:
        if not approval_id:
            approval = await _ask(asked, user, session, context, tool.name, args, rating, door)
            return Outcome("pending_approval", False,
                           f"waiting for approval {approval['id']}: the owner decides it in AutoBot (chat session "
                           f"'{session.title}'); then call {tool.name} again with the same arguments and "
                           f"approval_id", risk=rating.risk, approval=approval)
        approval, refusal = await _use_approval(session, approval_id, tool.name, args, rating)
        if refusal:
            return Outcome("refused", False, refusal, risk=rating.risk)
        return await _run_approved(approval, user, door, tool, args, rating, context)
    return await _run(user, door, tool, args, rating, context)


async def _run_approved(approval: Approval, user, door, tool, args, rating, context) -> Outcome:
    """Run the call its approval (used now) let through. Its record, on the message that asked,
    shows it running, then its result; or `cancelled`, with why, when the run was stopped."""
    outcome = None
    change = functools.partial(records.record_change, approval.message_id, approval.call_id)
    try:
        await change(records.record_start)
        outcome = await _run(user, door, tool, args, rating, context)
        return outcome
    finally:
        await run_to_end(change(functools.partial(_settled, outcome=outcome, reason=context.stop_reason)))


def _settled(record: dict, *, outcome: Outcome | None, reason: str) -> None:
    if outcome is None:  # stopped midway
        records.record_cancel(record, reason)
        return
    status = {"done": "done", "refused": "denied"}.get(outcome.status, "failed")
    records.record_settle(record, status=status, ok=outcome.ok, output=outcome.output[:20_000],
                          exit_code=outcome.exit_code)


async def calls_withdraw(*, user, door: str, correlation_id: str) -> None:
    """The client stopped what it asked (an A2A task cancelled): nobody may approve its calls any
    more, and the records of those that waited settle `cancelled`, in the withdrawal's own
    transaction (approvals_withdraw: all or nothing, to its end even when the caller is cancelled)."""
    reason = STOP_REASONS[door]
    await approvals.approvals_withdraw(owner=user, correlation_id=correlation_id, reason=reason,
                                       settle=functools.partial(records.record_cancel, reason=reason))


async def _run(user, door, tool, args, rating, context) -> Outcome:
    try:
        result = await tool.run(user, args, context)
    except Forbidden as exc:
        return Outcome("refused", False, f"{exc.code}: {exc.detail}", risk=rating.risk)
    except AppError as exc:
        return Outcome("failed", False, f"{exc.code}: {exc.detail}", risk=rating.risk)
    except Exception:  # an external server down, a bug: the caller gets a result, the log the stack
        log.exception("%s tool %s failed", door, tool.name)
        return Outcome("failed", False, "the tool failed with an internal error", risk=rating.risk)
    return Outcome("done" if result.ok else "failed", result.ok,
                   tools.truncate(result.output or "", 60_000), exit_code=result.exit_code, risk=rating.risk,
                   data=result.data)


async def _ask(approval_id: uuid.UUID, user, session, context, tool: str, args: dict, rating, door: str) -> dict:
    # To its end even when the caller is cancelled (run_to_end): the message showing the call and
    # the approval its record waits on are stored together or not at all (and a cancelled call
    # then withdraws the approval: `_cancelled`).
    approval = await run_to_end(sync_to_async(_park)(approval_id, user, session, context, tool, args, rating, door))
    return approvals.approval_data(approval) | {"chat_session_id": str(session.pk)}


def _park(approval_id: uuid.UUID, user, session, context, tool: str, args: dict, rating, door: str) -> Approval:
    """The message showing the call, then the approval it waits on, in one transaction. The record
    names its approval from the start (its id is chosen by the call; the approval needs the
    message first), so the message's calls are never written again from the copy held here: that
    would undo a withdrawal or an end of the approval that settled the record meanwhile (under
    the row's lock, records.record_change)."""
    # The call is stored on the message as the chat stores its calls, arguments and all: the
    # subject ("write 13 bytes to .profile") does not say what the owner would be approving.
    call = records.record_new(call_id=context.call_id, name=tool, arguments=args, risk=rating.risk,
                              reasons=rating.reasons)
    records.record_await(call, approval_id)
    with transaction.atomic():
        message = ChatMessage.objects.create(
            session=session, role=ChatMessage.Role.ASSISTANT, correlation_id=context.correlation_id,
            content=f"An {door.upper()} client asks to run {tool}: {rating.subject}", tool_calls=[call])
        return approvals.approval_create_sync(
            approval_id=approval_id, user=user, session_id=session.pk, message_id=message.pk,
            call_id=context.call_id, asked_with_token_id=getattr(user, "api_token_id", None), tool=tool,
            command=rating.subject, cwd=rating.cwd, arguments=args, risk=rating.risk, reasons=list(rating.reasons),
            correlation_id=context.correlation_id)


async def _use_approval(session, approval_id: str, tool: str, args: dict, rating) -> tuple[Approval | None, str]:
    """(the approval, "") when it is for this very call and is consumed now; else (…, why not)."""
    approval = None
    with contextlib.suppress(Exception):  # a malformed id is just "not found"
        approval = await Approval.objects.filter(pk=approval_id, session=session).afirst()
    if approval is None:
        return None, f"approval {approval_id} not found"
    state = await approvals.approval_state(approval.pk)
    if state.status != Approval.Status.APPROVED:
        why = f": {state.reason}" if state.reason else ""
        return approval, f"approval {approval_id} is {state.status}{why}"
    # Every argument counts: a write's content or an agent's data are not in the subject shown.
    expected = approvals.binding(session_id=session.pk, call_id=approval.call_id, tool=tool, command=rating.subject,
                                 cwd=rating.cwd, arguments=args)
    if not await approvals.approval_consume(approval.pk, expected_binding=expected):
        return approval, "the approval does not match this call (different command, folder or content)"
    return approval, ""
