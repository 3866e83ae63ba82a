"""AutoBot's MCP client: an external MCP server (a real one, written with the same SDK and run
on loopback by the test) registered by staff gives its tools to the users named, rated as staff
said (HIGH by default), run through the operator's rules and audited."""

import socket
import threading
import time

import pytest
import uvicorn
from mcp.server.mcpserver import MCPServer

from autobot.models import AuditEvent
from chat import tools
from interop import calls
from interop.models import ExternalMcpServer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]

SECRET = "Bearer external-secret"


def _external_app():
    server = MCPServer("weather")

    @server.tool()
    def forecast(city: str) -> str:
        """Tomorrow's weather for a city."""
        return f"sunny in {city}"

    app = server.streamable_http_app(json_response=True, stateless_http=True)

    async def guarded(scope, receive, send):  # the header AutoBot must send
        if scope["type"] == "http" and dict(scope["headers"]).get(b"authorization", b"").decode() != SECRET:
            await send({"type": "http.response.start", "status": 401, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        await app(scope, receive, send)

    return guarded


@pytest.fixture(scope="module")
def external_url():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(_external_app(), log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/mcp"
    server.should_exit = True
    thread.join(10)


async def test_an_external_tool_is_offered_to_the_users_named_rated_high_and_approved(external_url, owner, stranger):
    server = await ExternalMcpServer.objects.acreate(name="weather", url=external_url, auth_header=SECRET)
    await server.users.aadd(owner)
    name = "mcp_weather__forecast"

    assert name in await tools.tools_for(owner)
    assert name not in await tools.tools_for(stranger)
    assert name in {spec["function"]["name"] for spec in await tools.specs_for(owner)}

    pending = await calls.call(user=owner, door="mcp", name=name, arguments={"city": "Oslo"})
    assert pending.status == "pending_approval" and pending.risk == "HIGH"
    refused = await calls.call(user=stranger, door="mcp", name=name, arguments={"city": "Oslo"})
    assert refused.status == "failed" and "unknown tool" in refused.output


async def test_a_tool_staff_marked_moderate_runs_and_is_audited(external_url, owner):
    server = await ExternalMcpServer.objects.acreate(name="weather", url=external_url, auth_header=SECRET,
                                                     risk=ExternalMcpServer.Risk.MODERATE)
    await server.users.aadd(owner)
    ran = await calls.call(user=owner, door="mcp", name="mcp_weather__forecast", arguments={"city": "Oslo"})
    assert ran.ok and ran.output == "sunny in Oslo"
    event = await AuditEvent.objects.aget(action="interop.external_tool_call")
    assert event.data["arguments"] == {"city": "Oslo"} and event.data["result_chars"] == len("sunny in Oslo")


async def test_an_unreachable_server_gives_no_tools(owner):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
    server = await ExternalMcpServer.objects.acreate(name="gone", url=f"http://127.0.0.1:{sock.getsockname()[1]}/mcp")
    await server.users.aadd(owner)
    found = await tools.tools_for(owner)
    sock.close()
    assert "knowledge_search" in found and not any(n.startswith("mcp_gone__") for n in found)
