"""An approval is consent for now: approved, its call must run within OPERATOR_APPROVED_USE_SECONDS
or the approval expires. The clock is moved only through the row (`expires` set in the past)."""

import asyncio
import contextlib
import os
import threading
from datetime import timedelta
from types import SimpleNamespace

import pytest
from asgiref.sync import sync_to_async
from django.db import DatabaseError, connection, transaction
from django.test import AsyncClient
from django.utils import timezone

from autobot.errors import Conflict
from autobot.models import AuditEvent
from chat.models import Approval, ChatMessage, ChatSession
from chat.operator import approvals, records
from chat.operator import services as operator
from interop import calls
from tests.chat.test_operator import area

pytestmark = pytest.mark.django_db(transaction=True)

WRITE = {"path": ".profile", "content": "export EDITOR=vim\n"}  # a dotfile: HIGH, waits for approval


async def _lapse(approval_id) -> None:
    """The approval's deadline passed (without waiting for it)."""
    await Approval.objects.filter(pk=approval_id).aupdate(expires=timezone.now() - timedelta(seconds=1))


async def _ask_through_the_door(user) -> dict:
    pending = await calls.call(user=user, door="mcp", name="files_write", arguments=dict(WRITE))
    assert pending.status == "pending_approval"
    return pending.approval


async def test_an_approved_call_runs_when_repeated_in_time(owner):
    approval = await _ask_through_the_door(owner)
    await operator.approval_decide(user=owner, session_id=approval["chat_session_id"], approval_id=approval["id"],
                                   decision="approve")
    ran = await calls.call(user=owner, door="mcp", name="files_write", arguments=dict(WRITE),
                           approval_id=approval["id"])
    assert ran.status == "done", ran.output
    assert (await Approval.objects.aget(pk=approval["id"])).status == Approval.Status.USED


async def test_a_door_client_that_comes_back_too_late_is_refused_and_nothing_runs(owner):
    approval = await _ask_through_the_door(owner)
    decided = await operator.approval_decide(user=owner, session_id=approval["chat_session_id"],
                                             approval_id=approval["id"], decision="approve")
    assert decided["status"] == "approved"
    await _lapse(approval["id"])

    late = await calls.call(user=owner, door="mcp", name="files_write", arguments=dict(WRITE),
                            approval_id=approval["id"])
    assert late.status == "refused"
    assert f"approval {approval['id']} is expired: approved, but the call did not run in time" == late.output
    assert not await asyncio.to_thread(os.path.exists, f"{await area(owner)}/.profile")
    assert (await Approval.objects.aget(pk=approval["id"])).status == Approval.Status.EXPIRED
    # Approving it again is no way round: it is closed, and says why.
    with pytest.raises(Conflict, match="already expired: approved, but the call did not run in time"):
        await operator.approval_decide(user=owner, session_id=approval["chat_session_id"],
                                       approval_id=approval["id"], decision="approve")
    event = await AuditEvent.objects.aget(action="chat.approval_expired")
    assert event.data["approval_id"] == approval["id"] and event.data["tool"] == "files_write"
    assert event.actor_name == owner.username and event.data["decided_at"]


async def _approved_for_a_dead_turn(owner) -> tuple[ChatSession, ChatMessage, Approval, str]:
    """A chat turn asked, the owner approved, and the turn's worker died before the call ran."""
    session = await ChatSession.objects.acreate(owner=owner, title="fix my shell", tools=True)
    message = await ChatMessage.objects.acreate(session=session, role=ChatMessage.Role.ASSISTANT,
                                                correlation_id="turn-1", content="")
    bound = {"session_id": session.pk, "call_id": "w", "tool": "files_write", "command": "write .profile",
             "cwd": "", "arguments": WRITE}
    approval = await approvals.approval_create(user=owner, message_id=message.pk, risk="HIGH", reasons=["dotfile"],
                                               correlation_id="turn-1", **bound)
    await approvals.approval_decide(user=owner, session_id=session.pk, approval_id=approval.pk, decision="approve")
    return session, message, approval, approvals.binding(**bound)


async def test_an_approval_left_behind_by_a_dead_turn_cannot_be_used_later(owner):
    _, _, approval, binding = await _approved_for_a_dead_turn(owner)
    await _lapse(approval.pk)
    # The exact call it was made for, repeated later, finds it closed.
    assert await approvals.approval_consume(approval.pk, expected_binding=binding) is False
    assert (await approvals.approval_state(approval.pk)).status == Approval.Status.EXPIRED
    assert await AuditEvent.objects.filter(action="chat.approval_expired").acount() == 1


async def test_a_lapsed_approval_shows_expired_in_the_trail_and_the_admin(owner, staff, api_client):
    session, message, approval, _ = await _approved_for_a_dead_turn(owner)
    await _lapse(approval.pk)

    trail = await api_client(owner).get(f"/api/chat/sessions/{session.pk}/messages/{message.pk}/trail")
    shown = [item for item in trail.json()["items"] if item["kind"] == "approval"]
    assert [(item["id"], item["status"]) for item in shown] == [(str(approval.pk), "expired")]
    assert "chat.approval_expired" in {item.get("action") for item in trail.json()["items"]}

    admin = AsyncClient()
    await admin.aforce_login(staff)
    expired = await admin.get("/admin/chat/approval/", {"status__exact": "expired"})
    approved = await admin.get("/admin/chat/approval/", {"status__exact": "approved"})
    assert "write .profile" in expired.content.decode()
    assert "write .profile" not in approved.content.decode()


async def test_an_approval_still_in_time_is_left_approved_by_the_sweep(owner, staff):
    _, _, approval, binding = await _approved_for_a_dead_turn(owner)
    admin = AsyncClient()
    await admin.aforce_login(staff)
    listed = await admin.get("/admin/chat/approval/", {"status__exact": "approved"})
    assert "write .profile" in listed.content.decode()
    assert await approvals.approval_consume(approval.pk, expected_binding=binding) is True
    assert not await AuditEvent.objects.filter(action="chat.approval_expired").aexists()


async def test_staff_without_the_view_permission_expire_nothing_through_the_admin(owner, django_user_model):
    _, _, approval, _ = await _approved_for_a_dead_turn(owner)
    await _lapse(approval.pk)
    clerk = await django_user_model.objects.acreate_user("clerk", password="pw", is_staff=True)
    admin = AsyncClient()
    await admin.aforce_login(clerk)
    assert (await admin.get("/admin/chat/approval/")).status_code == 403
    assert (await admin.get(f"/admin/chat/approval/{approval.pk}/change/")).status_code in (302, 403)
    await approval.arefresh_from_db()
    assert approval.status == Approval.Status.APPROVED  # the 403 changed nothing
    assert not await AuditEvent.objects.filter(action="chat.approval_expired").aexists()


async def _door_record(approval: dict) -> dict:
    message = await ChatMessage.objects.aget(session_id=approval["chat_session_id"],
                                             tool_calls__0__approval_id=approval["id"])
    return message.tool_calls[0]


async def test_a_door_call_nobody_decided_ends_once_audited_and_its_record_stops_waiting(owner, api_client):
    approval = await _ask_through_the_door(owner)
    assert (await _door_record(approval))["status"] == "awaiting_approval"
    await _lapse(approval["id"])

    # Read from two places at once (the approvals list, the messages list): one end, one event.
    client = api_client(owner)
    session = approval["chat_session_id"]
    await asyncio.gather(client.get(f"/api/chat/sessions/{session}/approvals"),
                         client.get(f"/api/chat/sessions/{session}/messages"))

    events = [e async for e in AuditEvent.objects.filter(action="chat.approval_expired")]
    assert [(e.data["approval_id"], e.data["reason"]) for e in events] == [(approval["id"], approvals.UNDECIDED)]
    record = await _door_record(approval)
    assert (record["status"], record["ok"]) == ("denied", False)
    assert record["output"] == f"not approved (expired: {approvals.UNDECIDED})"


async def test_a_denied_door_call_shows_denied_on_its_message(owner):
    approval = await _ask_through_the_door(owner)
    await operator.approval_decide(user=owner, session_id=approval["chat_session_id"], approval_id=approval["id"],
                                   decision="deny", reason="not that file")

    record = await _door_record(approval)
    assert (record["status"], record["output"]) == ("denied", "not approved (denied: not that file)")
    assert await AuditEvent.objects.filter(action="chat.approval_denied").acount() == 1


async def test_an_approved_door_call_never_repeated_shows_expired_on_its_message(owner):
    approval = await _ask_through_the_door(owner)
    await operator.approval_decide(user=owner, session_id=approval["chat_session_id"], approval_id=approval["id"],
                                   decision="approve")
    await _lapse(approval["id"])
    await approvals.approvals_expire_due()

    record = await _door_record(approval)
    assert record["status"] == "denied" and approvals.UNUSED in record["output"]


async def _turn_approval(owner, correlation_id: str) -> Approval:
    """A pending approval a chat turn made (its message stored first, as a turn's is)."""
    session = await ChatSession.objects.acreate(owner=owner, title="t", tools=True)
    message = await ChatMessage.objects.acreate(session=session, role=ChatMessage.Role.ASSISTANT,
                                                correlation_id=correlation_id, content="")
    return await approvals.approval_create(
        user=owner, session_id=session.pk, message_id=message.pk, call_id="c", tool="files_write",
        command="write .profile", cwd="", arguments=WRITE, risk="HIGH", reasons=[], correlation_id=correlation_id)


async def test_a_pending_approval_whose_turn_ended_is_audited_once(owner):
    approval = await _turn_approval(owner, "turn-2")

    await approvals.approval_expire_now(approval.pk, reason="the turn ended")
    await approvals.approval_expire_now(approval.pk, reason="the turn ended")
    await _lapse(approval.pk)
    await approvals.approvals_expire_due()

    events = [e async for e in AuditEvent.objects.filter(action="chat.approval_expired")]
    assert [(e.data["approval_id"], e.data["reason"], e.correlation_id) for e in events] == [
        (str(approval.pk), "the turn ended", "turn-2")]


async def test_a_record_settled_while_the_turn_saves_keeps_the_turn_s_newer_records(owner):
    """A turn writes its message's whole list of calls; an approval ending settles one record on
    the same message meanwhile. The turn's write that lands first is read, not overwritten with
    the list as it was before it."""
    session = await ChatSession.objects.acreate(owner=owner, title="race")
    asked = {"id": "call-1", "name": "files_write", "status": "awaiting_approval", "approval_id": "a-1"}
    message = await ChatMessage.objects.acreate(session=session, role=ChatMessage.Role.ASSISTANT, content="",
                                                tool_calls=[asked])
    newer = {"id": "call-2", "name": "knowledge_search", "status": "done"}
    holding, release = threading.Event(), threading.Event()

    def turn_saves() -> None:  # the turn's save, holding the write lock a while
        with transaction.atomic():
            list(ChatMessage.objects.select_for_update().filter(pk=message.pk).values_list("pk"))
            ChatMessage.objects.filter(pk=message.pk).update(tool_calls=[asked, newer])
            holding.set()
            release.wait(10)
        connection.close()

    saving = asyncio.ensure_future(asyncio.to_thread(turn_saves))
    await asyncio.to_thread(holding.wait, 10)
    settling = asyncio.ensure_future(records.record_change(
        message.pk, "call-1", lambda record: records.record_settle(record, status="denied", ok=False, output="no")))
    await asyncio.sleep(0.3)  # the settle has read, or waits for the lock, while the turn holds it
    release.set()
    await saving
    await settling
    calls_now = (await ChatMessage.objects.aget(pk=message.pk)).tool_calls
    assert [call["id"] for call in calls_now] == ["call-1", "call-2"]
    assert calls_now[0]["status"] == "denied"


@contextlib.asynccontextmanager
async def cancelled_as_it_lands(statement: str = 'UPDATE "chat_approval"'):
    """Cancels `hook.task` the moment the first SQL statement starting with `statement` has run
    (committed: autocommit), before the task hears its result: a caller cancelled once its state
    change has won (an API client gone, a socket closed). A Django execute wrapper on the
    connection of asgiref's thread, which runs the ORM's async calls; the cancel is queued on the
    loop before the statement's result is, so it lands while the task still awaits that result,
    every time. `hook.landed` says it did."""
    loop = asyncio.get_running_loop()
    hook = SimpleNamespace(task=None, landed=False)

    def wrapper(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if not hook.landed and sql.startswith(statement):
            hook.landed = True
            loop.call_soon_threadsafe(hook.task.cancel)
        return result

    await sync_to_async(lambda: connection.execute_wrappers.append(wrapper))()
    try:
        yield hook
    finally:
        await sync_to_async(lambda: connection.execute_wrappers.remove(wrapper))()


async def run_cancelled_as_it_lands(work, statement: str = 'UPDATE "chat_approval"') -> None:
    """Run `work` as its own task, cancelled as `statement` lands (by default, its approval's
    UPDATE); it ends cancelled."""
    async with cancelled_as_it_lands(statement) as hook:
        hook.task = asyncio.ensure_future(work)
        with pytest.raises(asyncio.CancelledError):
            await hook.task
    assert hook.landed


async def _denied_and_settled(approval: dict) -> None:
    assert (await Approval.objects.aget(pk=approval["id"])).status == Approval.Status.DENIED
    event = await AuditEvent.objects.aget(action="chat.approval_denied")
    assert (event.data["approval_id"], event.data["reason"]) == (approval["id"], "not that file")
    record = await _door_record(approval)
    assert (record["status"], record["output"]) == ("denied", "not approved (denied: not that file)")


async def test_a_denial_whose_api_client_is_gone_as_it_lands_is_audited_and_settles_its_record(owner, api_client):
    approval = await _ask_through_the_door(owner)
    url = f"/api/chat/sessions/{approval['chat_session_id']}/approvals/{approval['id']}"

    # The request's task cancelled, as Django cancels a view whose client disconnected.
    await run_cancelled_as_it_lands(api_client(owner).post(url, {"decision": "deny", "reason": "not that file"},
                                                           content_type="application/json"))

    await _denied_and_settled(approval)


async def test_a_denial_whose_socket_is_closed_as_it_lands_is_audited_and_settles_its_record(owner, ws_connect):
    approval = await _ask_through_the_door(owner)
    comm = await ws_connect(f"/ws/chat/{approval['chat_session_id']}/", user=owner)

    # The socket's application cancelled while it handles the frame (the server closing it); no
    # disconnect after: the application has ended.
    async with cancelled_as_it_lands() as hook:
        hook.task = comm.future
        await comm.send_json_to({"type": "deny", "approval_id": approval["id"], "reason": "not that file"})
        with pytest.raises(asyncio.CancelledError):
            await comm.future
    assert hook.landed

    await _denied_and_settled(approval)


async def test_an_expiry_whose_caller_is_cancelled_as_it_lands_is_audited_and_settles_its_record(owner):
    approval = await _ask_through_the_door(owner)
    await _lapse(approval["id"])

    # The approvals list marks what ran out of time on the way (the REST list of the owner).
    await run_cancelled_as_it_lands(approvals.approval_list(user=owner, session_id=approval["chat_session_id"]))

    assert (await Approval.objects.aget(pk=approval["id"])).status == Approval.Status.EXPIRED
    event = await AuditEvent.objects.aget(action="chat.approval_expired")
    assert (event.data["approval_id"], event.data["reason"]) == (approval["id"], approvals.UNDECIDED)
    record = await _door_record(approval)
    assert record["status"] == "denied" and approvals.UNDECIDED in record["output"]


async def test_a_turn_s_approval_expired_by_a_caller_cancelled_as_it_lands_is_audited(owner):
    approval = await _turn_approval(owner, "turn-3")

    await run_cancelled_as_it_lands(approvals.approval_expire_now(approval.pk, reason="the turn ended"))

    event = await AuditEvent.objects.aget(action="chat.approval_expired")
    assert (event.data["approval_id"], event.data["reason"]) == (str(approval.pk), "the turn ended")


@contextlib.asynccontextmanager
async def failing(statement: str):
    """The first SQL statement starting with `statement` fails, as a full disk or a broken
    database would make it (a Django execute wrapper on the connection that runs the ORM's async
    calls here, as in `cancelled_as_it_lands`)."""
    hook = SimpleNamespace(failed=False)

    def wrapper(execute, sql, params, many, context):
        if not hook.failed and sql.startswith(statement):
            hook.failed = True
            raise DatabaseError("injected: the write failed")
        return execute(sql, params, many, context)

    await sync_to_async(lambda: connection.execute_wrappers.append(wrapper))()
    try:
        yield hook
    finally:
        await sync_to_async(lambda: connection.execute_wrappers.remove(wrapper))()
    assert hook.failed


async def test_a_decision_whose_audit_event_cannot_be_written_changes_nothing(owner):
    # The decision, its audit event and its record's settle are one transaction: with the audit
    # lost, the approval is still pending (not denied unaudited), and can be decided again.
    approval = await _ask_through_the_door(owner)
    async with failing('INSERT INTO "autobot_auditevent"'):
        with pytest.raises(DatabaseError):
            await operator.approval_decide(user=owner, session_id=approval["chat_session_id"],
                                           approval_id=approval["id"], decision="deny", reason="not that file")

    assert (await Approval.objects.aget(pk=approval["id"])).status == Approval.Status.PENDING
    assert not await AuditEvent.objects.filter(action="chat.approval_denied").aexists()
    assert (await _door_record(approval))["status"] == "awaiting_approval"
    await operator.approval_decide(user=owner, session_id=approval["chat_session_id"], approval_id=approval["id"],
                                   decision="deny", reason="not that file")
    await _denied_and_settled(approval)


async def test_an_expiry_whose_record_cannot_be_settled_is_left_for_the_next_sweep(owner):
    approval = await _ask_through_the_door(owner)
    await _lapse(approval["id"])
    async with failing('UPDATE "chat_chatmessage"'):
        with pytest.raises(DatabaseError):
            await approvals.approvals_expire_due()

    assert (await Approval.objects.aget(pk=approval["id"])).status == Approval.Status.PENDING
    assert not await AuditEvent.objects.filter(action="chat.approval_expired").aexists()
    await approvals.approvals_expire_due()  # the next sweep
    assert (await Approval.objects.aget(pk=approval["id"])).status == Approval.Status.EXPIRED
    assert (await _door_record(approval))["status"] == "denied"


async def test_a_door_s_approval_that_cannot_be_stored_leaves_no_message_waiting_on_it(owner):
    async with failing('INSERT INTO "chat_approval"'):
        with pytest.raises(DatabaseError):
            await calls.call(user=owner, door="a2a", name="files_write", arguments=dict(WRITE),
                             correlation_id="a2a-broken")
    assert not await ChatMessage.objects.filter(correlation_id="a2a-broken").aexists()
    assert not await Approval.objects.filter(correlation_id="a2a-broken").aexists()
