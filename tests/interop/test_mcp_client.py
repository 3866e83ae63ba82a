"""AutoBot's MCP client: an external MCP server (a real one, written with the same SDK and run
on loopback by the test) registered by staff gives its tools to the users named, rated as staff
said (HIGH by default), run through the operator's rules and audited."""

import socket
import threading
import time

import pytest
import uvicorn
from django.contrib.auth.models import Group
from mcp.server.mcpserver import MCPServer

from autobot.models import AuditEvent
from chat import tools
from chat.operator import services as operator
from interop import calls, mcp_client
from interop.models import ExternalMcpServer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]

SECRET = "Bearer external-secret"


def _external_app():
    server = MCPServer("weather")

    @server.tool()
    def forecast(city: str) -> str:
        """Tomorrow's weather for a city."""
        return f"sunny in {city}"

    # Two tools whose names come out alike once sanitised into operator names.
    @server.tool(name="sky.check")
    def sky_dot() -> str:
        """The sky, by the dotted tool."""
        return "checked by sky.check"

    @server.tool(name="sky_check")
    def sky_underscore() -> str:
        """The sky, by the underscored tool."""
        return "checked by sky_check"

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


async def test_an_external_tool_is_offered_to_the_members_of_the_groups_named(external_url, owner, stranger):
    group = await Group.objects.acreate(name="weather-watchers")
    await owner.groups.aadd(group)
    server = await ExternalMcpServer.objects.acreate(name="weather", url=external_url, auth_header=SECRET)
    await server.groups.aadd(group)

    assert "mcp_weather__forecast" in await tools.tools_for(owner)
    assert "mcp_weather__forecast" not in await tools.tools_for(stranger)
    await server.users.aadd(owner)  # named by name too: still one server, one tool
    assert [spec["function"]["name"] for spec in await tools.specs_for(owner)].count("mcp_weather__forecast") == 1
    await ExternalMcpServer.objects.filter(pk=server.pk).aupdate(enabled=False)
    assert "mcp_weather__forecast" not in await tools.tools_for(owner)


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


async def test_tools_whose_names_sanitise_alike_are_both_offered_and_each_reaches_its_own(external_url, owner):
    server = await ExternalMcpServer.objects.acreate(name="weather", url=external_url, auth_header=SECRET,
                                                     risk=ExternalMcpServer.Risk.MODERATE)
    await server.users.aadd(owner)
    offered = await tools.tools_for(owner)
    sky = {name: tool for name, tool in offered.items() if name.startswith("mcp_weather__sky_check")}
    assert len(sky) == 2 and "mcp_weather__sky_check" not in sky  # neither takes the plain name
    assert "mcp_weather__forecast" in offered  # a name nothing clashes with stays as it was
    assert set(await tools.tools_for(owner)) == set(offered)  # the same names each time

    for name, tool in sky.items():
        real = "sky.check" if "external: sky.check]" in tool.description else "sky_check"
        ran = await calls.call(user=owner, door="mcp", name=name, arguments={})
        assert ran.ok and ran.output == f"checked by {real}"


async def test_servers_whose_names_sanitise_alike_both_keep_their_tools_and_approvals_name_the_real_one(
        external_url, owner):
    for name in ("sky-watch", "sky_watch"):
        server = await ExternalMcpServer.objects.acreate(name=name, url=external_url, auth_header=SECRET)
        await server.users.aadd(owner)
    offered = [name for name in await tools.tools_for(owner) if name.startswith("mcp_sky_watch__forecast")]
    assert len(offered) == 2

    reached = {}
    for name in offered:
        pending = await calls.call(user=owner, door="mcp", name=name, arguments={"city": "Oslo"})
        approval = pending.approval
        await operator.approval_decide(user=owner, session_id=approval["chat_session_id"], approval_id=approval["id"],
                                       decision="approve")
        ran = await calls.call(user=owner, door="mcp", name=name, arguments={"city": "Oslo"},
                               approval_id=approval["id"])
        assert ran.ok and ran.output == "sunny in Oslo"
        reached[approval["command"].split(":")[0]] = ran.data["external_server"]
    # Each approval named the server its call then went to, and each server was called once.
    assert reached == {"sky-watch": "sky-watch", "sky_watch": "sky_watch"}


def test_every_name_is_unique_and_short_enough_whatever_the_servers_publish():
    long_tool = "t" * 80
    pairs = [("a", "b__c"), ("a__b", "c"), ("s", long_tool), ("s", long_tool + "u"), ("w", "x.y"), ("w", "x_y")]
    # A tool crafted to be named like another's hashed name does not take it either.
    pairs.append(("w", mcp_client.tool_names(pairs)[("w", "x.y")].removeprefix("mcp_w__")))
    names = mcp_client.tool_names(pairs)
    assert set(names) == set(pairs) and len(set(names.values())) == len(pairs)
    assert all(len(name) <= 64 and name.startswith("mcp_") for name in names.values())
    assert mcp_client.tool_names([("w", "x.y")]) == {("w", "x.y"): "mcp_w__x_y"}  # alone: the plain name
