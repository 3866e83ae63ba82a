"""The operator over the chat socket and REST: frames, approvals, take-over, reload, access."""

import asyncio
import json

import pytest

from chat import services
from chat.operator import services as operator
from chat.operator.policy import policy_set
from tests.chat.test_operator import area, call, run_turn

pytestmark = pytest.mark.django_db(transaction=True)

MODEL = "fakeai/fake-large"
WRITE = {"path": ".profile", "content": "export EDITOR=vim\n"}


async def frame_of(comm, kind, wait=20):
    while True:
        frame = await comm.receive_json_from(timeout=wait)
        if frame["type"] == kind:
            return frame


async def test_the_owner_approves_over_the_socket_and_sees_calls_and_results(ws_connect, owner, llm):
    llm.script = [{"tool_calls": [call("files_write", WRITE, "w")]}, {"text": "Written."}]
    session = await services.session_create(user=owner, model=MODEL)
    comm = await ws_connect(f"/ws/chat/{session.id}/", user=owner)
    await comm.send_json_to({"type": "message", "content": "set my editor"})

    waiting = await frame_of(comm, "tool_call")
    assert waiting["call"]["status"] == "awaiting_approval" and waiting["call"]["risk"] == "HIGH"
    assert waiting["call"]["arguments"] == WRITE
    approval = (await frame_of(comm, "approval"))["approval"]
    assert set(approval) == {"id", "call_id", "command", "cwd", "risk", "reasons", "expires"}
    # The question came over a socket opened with an API token: whoever holds that token (a
    # client program, an agent) may not approve what the model asked for in its turn.
    await comm.send_json_to({"type": "approve", "approval_id": approval["id"]})
    assert (await frame_of(comm, "error"))["code"] == "approval_self_decision"
    owners = await ws_connect(f"/ws/chat/{session.id}/", user=owner)  # the owner, with another credential
    await owners.send_json_to({"type": "approve", "approval_id": approval["id"]})
    result = await frame_of(comm, "tool_result")
    assert result["ok"] is True and "+export EDITOR=vim" in result["output"]  # the unified diff
    done = await frame_of(comm, "done")
    assert done["message"]["tool_calls"][0]["status"] == "done"
    await owners.send_json_to({"type": "approve", "approval_id": approval["id"]})
    again = await frame_of(owners, "error")
    assert again["code"] == "approval_closed"
    await comm.disconnect()
    await owners.disconnect()
    root = await area(owner)
    assert await asyncio.to_thread(lambda: open(f"{root}/.profile").read()) == WRITE["content"]


async def test_a_reload_while_waiting_shows_the_call_and_its_approval_again(ws_connect, owner, llm):
    llm.script = [{"tool_calls": [call("files_list", {}, "ls"), call("files_write", WRITE, "w")]},
                  {"text": "Written."}]
    session = await services.session_create(user=owner, model=MODEL)
    comm = await ws_connect(f"/ws/chat/{session.id}/", user=owner)
    await comm.send_json_to({"type": "message", "content": "set my editor"})
    approval = (await frame_of(comm, "approval"))["approval"]
    await comm.disconnect()

    again = await ws_connect(f"/ws/chat/{session.id}/", user=owner)
    listed = await frame_of(again, "tool_call")
    assert listed["call"]["id"] == "ls" and listed["call"]["status"] == "done"
    assert (await frame_of(again, "tool_result"))["call_id"] == "ls"  # the finished call's result too
    replayed_call = await frame_of(again, "tool_call")
    assert replayed_call["call"]["status"] == "awaiting_approval"
    assert (await frame_of(again, "approval"))["approval"]["id"] == approval["id"]
    await again.send_json_to({"type": "deny", "approval_id": approval["id"], "reason": "not now"})
    done = await frame_of(again, "done")
    assert done["message"]["tool_calls"][1]["status"] == "denied"
    await again.disconnect()


async def test_pause_holds_the_next_call_until_resume(ws_connect, owner, llm):
    llm.script = [{"tool_calls": [call("files_list", {}, "a")]}, {"text": "Listed."}]
    llm.pause_after = 0  # the model's first words wait: the owner pauses before any call arrives
    llm.tokens = None
    llm.script[0]["text"] = "Looking."
    session = await services.session_create(user=owner, model=MODEL)
    comm = await ws_connect(f"/ws/chat/{session.id}/", user=owner)
    await comm.send_json_to({"type": "message", "content": "list"})
    await llm.requested.wait()
    await comm.send_json_to({"type": "pause"})
    assert (await frame_of(comm, "operator"))["paused"] is True
    llm.resume.set()
    await frame_of(comm, "token")
    assert await comm.receive_nothing(timeout=0.3)  # paused: the call has not started
    await comm.send_json_to({"type": "resume"})
    result = await frame_of(comm, "tool_result")
    assert result["ok"] is True
    await frame_of(comm, "done")
    await comm.disconnect()


async def test_strangers_cannot_see_or_decide_approvals_and_staff_cannot_decide_for_the_owner(
        owner, stranger, staff, llm, api_client):
    llm.script = [{"tool_calls": [call("files_write", WRITE, "w")]}, {"text": "Written."}]
    session = await services.session_create(user=owner, model=MODEL)
    ids = []

    async def others_try(approval):
        ids.append(approval["id"])
        for other in (stranger, staff):
            client = api_client(other)
            assert (await client.get(f"/api/chat/sessions/{session.id}/approvals")).status_code == 404
            decided = await client.post(f"/api/chat/sessions/{session.id}/approvals/{approval['id']}",
                                        {"decision": "approve"}, content_type="application/json")
            assert decided.status_code == 404
        bad = await api_client(owner).post(f"/api/chat/sessions/{session.id}/approvals/{approval['id']}",
                                           {"decision": "maybe"}, content_type="application/json")
        assert bad.status_code == 422
        await api_client(owner).post(f"/api/chat/sessions/{session.id}/approvals/{approval['id']}",
                                     {"decision": "deny"}, content_type="application/json")

    reply, _ = await run_turn(owner, session, "set my editor", on_approval=others_try)
    assert reply["tool_calls"][0]["status"] == "denied"
    trail = await api_client(stranger).get(f"/api/chat/sessions/{session.id}/messages/{reply['id']}/trail")
    assert trail.status_code == 404


async def test_expired_approvals_are_refused_with_409(owner, llm, api_client, settings):
    settings.OPERATOR_APPROVAL_SECONDS = 1
    llm.script = [{"tool_calls": [call("files_write", WRITE, "w")]}, {"text": "Gave up."}]
    session = await services.session_create(user=owner, model=MODEL)
    reply, events = await run_turn(owner, session, "set my editor")
    approval = next(e["approval"] for e in events if e["type"] == "chat.approval")
    assert reply["tool_calls"][0]["status"] == "denied" and "expired" in reply["tool_calls"][0]["output"]
    late = await api_client(owner).post(f"/api/chat/sessions/{session.id}/approvals/{approval['id']}",
                                        {"decision": "approve"}, content_type="application/json")
    assert late.status_code == 409 and late.json()["code"] == "approval_closed"


async def test_dangerous_is_refused_and_staff_grant_only_what_they_may(owner, staff, colleague, llm):
    from autobot.errors import Forbidden

    llm.script = [{"tool_calls": [call("terminal_run", {"command": "mkfs.ext4 /dev/autobot-test-none"}, "d")]},
                  {"text": "Refused."}]
    session = await services.session_create(user=owner, model=MODEL)
    reply, events = await run_turn(owner, session, "format it")
    assert reply["tool_calls"][0]["status"] == "denied" and reply["tool_calls"][0]["risk"] == "DANGEROUS"
    assert not [e for e in events if e["type"] == "chat.approval"]
    with pytest.raises(Forbidden):
        await policy_set(user=staff, target=owner, dangerous="run")
    with pytest.raises(Forbidden):
        await policy_set(user=colleague, target=owner, high="run")
    with pytest.raises(Forbidden):
        await policy_set(user=staff, target=owner, terminal_level="STANDARD")  # owner is not staff


async def test_export_includes_the_calls(owner, llm, api_client):
    llm.script = [{"tool_calls": [call("files_list", {}, "a")]}, {"text": "Listed."}]
    session = await services.session_create(user=owner, model=MODEL)
    await run_turn(owner, session, "list")
    client = api_client(owner)
    as_json = json.loads((await client.get(f"/api/chat/sessions/{session.id}/export?format=json")).content)
    assert as_json["messages"][1]["tool_calls"][0]["name"] == "files_list"
    as_md = (await client.get(f"/api/chat/sessions/{session.id}/export?format=md")).content.decode()
    assert "Tool `files_list` (done, SAFE)" in as_md


async def test_sse_carries_the_same_operator_events(owner, llm, api_client):
    llm.script = [{"tool_calls": [call("files_list", {}, "a")]}, {"text": "Listed."}]
    session = await services.session_create(user=owner, model=MODEL)
    response = await api_client(owner).post(f"/api/chat/sessions/{session.id}/messages", {"content": "list"},
                                            content_type="application/json", headers={"Accept": "text/event-stream"})
    body = b"".join([chunk async for chunk in response.streaming_content]).decode()
    blocks = [block.split("\n", 1) for block in body.strip().split("\n\n")]
    names = [head.removeprefix("event: ") for head, _ in blocks]
    assert names.index("tool_call") < names.index("tool_result") < names.index("done")
    result = json.loads(blocks[names.index("tool_result")][1].removeprefix("data: "))
    assert result["call_id"] == "a" and result["ok"] is True and result["exit_code"] is None


async def test_staff_grant_within_their_rights_and_a_consumed_approval_needs_its_binding(owner, llm,
                                                                                         django_user_model):
    from autobot.errors import Forbidden
    from chat.operator import approvals
    from tests.conftest import _call_sync

    lead = await asyncio.to_thread(_call_sync, django_user_model.objects.create_user, username="lead",
                                   password="x", is_staff=True)
    stricter = await policy_set(user=lead, target=owner, moderate="approve")
    assert stricter.moderate == "approve"
    with pytest.raises(Forbidden):
        await policy_set(user=lead, target=owner, high="run")  # only superusers loosen HIGH

    llm.script = [{"tool_calls": [call("files_write", WRITE, "w")]}, {"text": "?"}]
    session = await services.session_create(user=owner, model=MODEL)

    async def approve_then_try_another_binding(approval):
        await operator.approval_decide(user=owner, session_id=session.id, approval_id=approval["id"],
                                       decision="approve")
        other = approvals.binding(session_id=session.id, call_id="w", tool="files_write",
                                  command="write 1 bytes to .bashrc", cwd="", arguments={"path": ".bashrc"})
        assert await approvals.approval_consume(approval["id"], expected_binding=other) is False

    reply, _ = await run_turn(owner, session, "set it", on_approval=approve_then_try_another_binding)
    assert reply["tool_calls"][0]["status"] == "done"  # the real binding still matched, once


async def test_staff_posting_in_someone_elses_chat_get_no_tools(owner, staff, llm):
    session = await services.session_create(user=owner, model=MODEL)
    posted = await services.message_post(user=staff, session_id=session.id, content="hello")
    await services.reply_wait(posted)
    assert "tools" not in llm.requests[-1]


async def test_the_admin_refuses_a_policy_beyond_what_can_be_granted(owner, staff):
    from django.test import AsyncClient

    from chat.models import OperatorPolicy

    admin = AsyncClient()
    await admin.aforce_login(staff)
    form = {"user": owner.pk, "safe": "run", "moderate": "run", "high": "approve", "dangerous": "run",
            "terminal_level": "RESTRICTED"}
    refused = await admin.post("/admin/chat/operatorpolicy/add/", form)
    assert refused.status_code == 200 and "never run without asking" in refused.content.decode()
    assert not await OperatorPolicy.objects.aexists()
    saved = await admin.post("/admin/chat/operatorpolicy/add/", {**form, "dangerous": "refuse", "moderate": "approve"})
    assert saved.status_code == 302
    assert (await OperatorPolicy.objects.aget(user=owner)).moderate == "approve"
