"""The MCP server at /mcp, through the official `mcp` Python client against a real server."""

import asyncio
from pathlib import Path

import aiohttp
import httpx2
import pytest
from asgiref.sync import sync_to_async
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from autobot.models import AuditEvent
from terminal.models import CommandRecord
from tests.conftest import make_token
from tests.interop.conftest import HIGH_COMMAND
from tests.interop.test_a2a_cancel import finished, first_write
from tests.terminal.conftest import _grant

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

SLOW = "echo on > started.txt; sleep 20; echo slept-$((2+3))"  # a SAFE line that runs a while


def mcp_client(address: str, token: str | None) -> Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    http = httpx2.AsyncClient(headers=headers, timeout=60)
    return Client(streamable_http_client(f"http://{address}/mcp", http_client=http))


async def test_tools_resources_and_a_pending_approval(server, staff):
    owner = staff  # staff may have a STANDARD terminal, where an approved HIGH command may run
    from chat.models import OperatorPolicy
    from knowledge.services import entry_create

    await sync_to_async(_grant)(owner)
    await OperatorPolicy.objects.acreate(user=owner, terminal_level="STANDARD")
    await entry_create(user=owner, title="Backups", content="Backups run nightly at 02:00 with restic.")
    token = await sync_to_async(make_token)(owner)
    async with mcp_client(server.address, token) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert {"knowledge_search", "files_read", "files_write", "terminal_run"} <= names

        found = await client.call_tool("knowledge_search", {"query": "restic"})
        assert not found.is_error and "Backups" in found.content[0].text

        wrote = await client.call_tool("files_write", {"path": "hello.txt", "content": "hello from mcp\n"})
        assert not wrote.is_error, wrote.content[0].text
        read = await client.call_tool("files_read", {"path": "hello.txt"})
        assert read.content[0].text == "hello from mcp\n"

        resource = await client.read_resource("autobot://files/hello.txt")
        assert resource.contents[0].text == "hello from mcp\n"
        uris = [str(r.uri) for r in (await client.list_resources()).resources]
        entry_uri = next(uri for uri in uris if uri.startswith("autobot://knowledge/"))
        assert "restic" in (await client.read_resource(entry_uri)).contents[0].text

        pending = await client.call_tool("terminal_run", {"command": HIGH_COMMAND})
        state = pending.structured_content
        assert state["status"] == "pending_approval" and state["risk"] == "HIGH"
        approval = state["approval"]
        assert approval["command"] == HIGH_COMMAND and approval["status"] == "pending"

        # Asking again without the owner's decision runs nothing.
        early = await client.call_tool("terminal_run", {"command": HIGH_COMMAND, "approval_id": approval["id"]})
        assert early.is_error and "pending" in early.content[0].text

        # The owner approves it in AutoBot; the same call then runs, once.
        owners = await sync_to_async(make_token)(owner)  # the owner's own credentials, not the client's token
        async with aiohttp.ClientSession(f"http://{server.address}",
                                         headers={"Authorization": f"Bearer {owners}"}) as http:
            url = f"/api/chat/sessions/{approval['chat_session_id']}/approvals/{approval['id']}"
            async with http.post(url, json={"decision": "approve"}) as response:
                assert response.status == 200, await response.text()
        ran = await client.call_tool("terminal_run", {"command": HIGH_COMMAND, "approval_id": approval["id"]})
        assert not ran.is_error, ran.content[0].text
        assert ran.structured_content["exit_code"] == 0 and "1" in ran.content[0].text
        again = await client.call_tool("terminal_run", {"command": HIGH_COMMAND, "approval_id": approval["id"]})
        assert again.is_error and "used" in again.content[0].text

    actions = await sync_to_async(lambda: list(AuditEvent.objects.filter(action="mcp.tool_call")
                                               .values_list("data__tool", "data__status")))()
    assert ("terminal_run", "pending_approval") in actions and ("terminal_run", "done") in actions


async def test_dangerous_is_refused(server, owner):
    await sync_to_async(_grant)(owner)
    token = await sync_to_async(make_token)(owner)
    async with mcp_client(server.address, token) as client:
        refused = await client.call_tool("terminal_run", {"command": "mkfs.ext4 /dev/autobot-test-none"})
    assert refused.is_error and refused.structured_content["status"] == "refused"
    assert refused.structured_content["risk"] == "DANGEROUS"


async def test_no_token_or_a_wrong_one_is_401(server):
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    async with aiohttp.ClientSession(f"http://{server.address}") as http:
        for headers in ({}, {"Authorization": "Bearer abt_not-a-token"}):
            async with http.post("/mcp", json=body, headers=headers) as response:
                assert response.status == 401
                assert response.headers["WWW-Authenticate"].startswith("Bearer")
                assert (await response.json())["code"] in ("not_authenticated", "invalid_token")
        async with http.post("/mcp", json=body, headers={"Host": "evil.example"}) as response:
            assert response.status == 403


async def test_a_read_only_token_is_refused_writes_and_commands(server, owner):
    await sync_to_async(_grant)(owner)
    token = await sync_to_async(make_token)(owner, scope="read")
    async with mcp_client(server.address, token) as client:
        assert not (await client.call_tool("files_list", {})).is_error
        for name, arguments in (("files_write", {"path": "ro.txt", "content": "no"}),
                                ("terminal_run", {"command": "true"})):
            refused = await client.call_tool(name, arguments)
            assert refused.is_error and refused.structured_content["status"] == "refused"
            assert "read-only" in refused.content[0].text
        missing = await client.call_tool("files_read", {"path": "ro.txt"})
    assert missing.is_error and "does not exist" in missing.content[0].text


async def test_a_client_that_cancels_a_call_stops_it(server, owner):
    """The client gives up on a call (2026 streamable HTTP: it closes the call's request, which is
    the cancel): the call stops there, as an A2A task's does (the line gets Ctrl-C), and its audit
    event says why; it does not run on for nobody."""
    await sync_to_async(_grant)(owner)
    token = await sync_to_async(make_token)(owner)
    async with mcp_client(server.address, token) as client:
        calling = asyncio.ensure_future(client.call_tool("terminal_run", {"command": SLOW}))
        for _ in range(600):  # the hook records the line as bash starts it: 30 s at most
            record = await CommandRecord.objects.filter(command=SLOW).afirst()
            if record is not None:
                break
            await asyncio.sleep(0.05)
        assert record is not None and record.finished is None, "the shell never ran it"
        await first_write(Path(server.env["AUTOBOT_FILES_ROOT"]) / owner.get_username() / "started.txt")
        calling.cancel()
        with pytest.raises(asyncio.CancelledError):
            await calling
    for _ in range(600):  # the stop's grace (2 s), then the call's audit event: 30 s at most
        audited = await AuditEvent.objects.filter(action="mcp.tool_call", data__tool="terminal_run").afirst()
        if audited is not None:
            break
        await asyncio.sleep(0.05)
    assert audited is not None and audited.data["status"] == "cancelled", audited and audited.data
    assert audited.data["reason"] == "the MCP client cancelled the call"
    assert (await finished(record)).exit_code == 130  # interrupted (Ctrl-C), not run to its end
