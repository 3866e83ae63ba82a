"""An MCP client asks for a call and never comes back, and nobody looks at the approval: the
server marks it expired by itself (each worker's timer, autobot/lifespan.py), audits the expiry
and settles the call's record, so the admin and the trail tell the truth without a read."""

import time

import pytest
from asgiref.sync import sync_to_async

from autobot.models import AuditEvent
from chat.models import Approval, ChatMessage
from tests.conftest import app_server, make_token
from tests.interop.test_mcp import mcp_client

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


@pytest.fixture
def quick_server(tmp_path):
    env = {"AUTOBOT_FILES_ROOT": str(tmp_path / "files"), "AUTOBOT_OPERATOR_APPROVAL_SECONDS": "1",
           "AUTOBOT_OPERATOR_EXPIRY_SWEEP_SECONDS": "0.2"}
    server = app_server(tmp_path / "var", env=env).start()
    yield server
    server.stop()
    log = server.log_path.read_text(errors="replace")  # the timer stops with the worker, cleanly
    assert "Traceback" not in log and "shutdown: stopping" not in log and "did not finish" not in log, log


async def test_an_approval_nobody_decides_is_expired_audited_and_settled_without_a_read(quick_server, owner):
    token = await sync_to_async(make_token)(owner)
    async with mcp_client(quick_server.address, token) as client:
        pending = await client.call_tool("files_write", {"path": ".profile", "content": "umask 022\n"})
    approval_id = pending.structured_content["approval"]["id"]
    assert pending.structured_content["status"] == "pending_approval"

    # Nothing reads the approval from here on (no list, no decision, no admin): only the timer.
    # Its record is settled last (after the marking and the audit event): wait for that.
    approval = await Approval.objects.aget(pk=approval_id)
    deadline = time.monotonic() + 20
    while (record := (await ChatMessage.objects.aget(pk=approval.message_id)).tool_calls[0])["status"] != "denied":
        assert record["status"] == "awaiting_approval"
        assert time.monotonic() < deadline, "the approval's record was never settled"
        await sync_to_async(time.sleep)(0.2)

    await approval.arefresh_from_db()
    assert approval.status == Approval.Status.EXPIRED and approval.reason == "nobody decided it in time"
    expired = [e async for e in AuditEvent.objects.filter(action="chat.approval_expired")]
    assert [e.data["approval_id"] for e in expired] == [approval_id]
    assert record["output"] == "not approved (expired: nobody decided it in time)"
