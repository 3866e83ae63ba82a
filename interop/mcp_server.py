"""AutoBot as an MCP server: streamable HTTP at /mcp, with the official `mcp` SDK.

Tools are the operator's registry (chat/tools/), run through interop.calls, so the user's
operator policy, approvals and audit apply as in the chat. Resources are the user's knowledge
entries (`autobot://knowledge/{id}`) and text files (`autobot://files/{path}`).

Authentication is an AutoBot API token (`Authorization: Bearer abt_…`); every call acts as the
token's user. The SDK's session manager runs stateless (each POST stands alone), so any worker
can answer any request and nothing is lost when a worker restarts; it runs under the ASGI
lifespan (autobot/lifespan.py). Host and Origin are checked with Django's ALLOWED_HOSTS rules
(AUTOBOT_ALLOWED_HOSTS), which protects against DNS rebinding the same way the SDK's check would.
A client that leaves before its answer (the MCP way to cancel a call) stops the call (`_stop_if_gone`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from urllib.parse import quote, unquote

import mcp_types as types
from django.conf import settings
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.shared.exceptions import MCPError
from mcp_types.jsonrpc import INVALID_PARAMS

from autobot.auth import read_only, token_authenticate
from autobot.http import refuse
from chat import tools
from chat.tools.base import rate_safe
from interop import calls
from interop.http import allowed, header, on_lanes

log = logging.getLogger("interop.mcp")
PATH = "/mcp"
USER_KEY = "autobot.user"
KNOWLEDGE_URI = "autobot://knowledge/"
FILES_URI = "autobot://files/"
RESOURCE_LIMIT = 100
INSTRUCTIONS = (
    "AutoBot's knowledge base, files, agents and governed terminal, acting as the token's user. Risky calls "
    "(terminal_run, files_write) may return status pending_approval with an approval id: the user decides it in "
    "AutoBot; then repeat the same call with approval_id set."
)


def _user(ctx):
    return ctx.request.scope[USER_KEY]


def _client_ip(ctx) -> str | None:
    client = ctx.request.scope.get("client")
    return client[0] if client else None


def _input_schema(tool) -> dict:
    """The registry's schema, plus `approval_id` on tools whose calls can wait for approval."""
    schema = json.loads(json.dumps(tool.schema))
    if tool.rate is not rate_safe:
        schema.setdefault("properties", {})["approval_id"] = {
            "type": "string", "maxLength": 64,
            "description": "the id of an approved approval, to run a call that returned pending_approval"}
    return schema


@on_lanes
async def list_tools(ctx, params) -> types.ListToolsResult:
    found = await tools.tools_for(_user(ctx))  # with the external MCP servers' tools this user may use
    return types.ListToolsResult(tools=[types.Tool(name=t.name, description=t.description,
                                                   input_schema=_input_schema(t)) for t in found.values()])


@on_lanes
async def call_tool(ctx, params: types.CallToolRequestParams) -> types.CallToolResult:
    arguments = dict(params.arguments or {})
    approval_id = arguments.pop("approval_id", None)
    outcome = await calls.call(user=_user(ctx), door="mcp", name=params.name, arguments=arguments,
                               approval_id=str(approval_id) if approval_id else None, client_ip=_client_ip(ctx))
    # A pending approval is not an error: the call is parked, and the result says how to go on.
    return types.CallToolResult(content=[types.TextContent(text=outcome.output)],
                                structured_content=outcome.as_dict(),
                                is_error=outcome.status in ("failed", "refused"))


@on_lanes
async def list_resources(ctx, params) -> types.ListResourcesResult:
    from files import services as files
    from knowledge.services import entry_list

    user = _user(ctx)
    found: list[types.Resource] = []
    async for entry in (await entry_list(user=user)).order_by("-id")[:RESOURCE_LIMIT]:
        found.append(types.Resource(uri=f"{KNOWLEDGE_URI}{entry.pk}", name=entry.title or f"entry {entry.pk}",
                                    mime_type="text/markdown", description=f"knowledge entry {entry.pk}"))
    entries, _, _ = await files.entries_list(user=user, path="", limit=RESOURCE_LIMIT)
    for item in entries:
        if item.type == "file":
            found.append(types.Resource(uri=FILES_URI + quote(item.path), name=item.path, size=item.size,
                                        mime_type="text/plain"))
    return types.ListResourcesResult(resources=found)


async def list_templates(ctx, params) -> types.ListResourceTemplatesResult:
    return types.ListResourceTemplatesResult(resource_templates=[
        types.ResourceTemplate(uri_template=KNOWLEDGE_URI + "{entry_id}", name="knowledge entry",
                               mime_type="text/markdown"),
        types.ResourceTemplate(uri_template=FILES_URI + "{path}", name="file in your files area",
                               mime_type="text/plain"),
    ])


@on_lanes
async def read_resource(ctx, params: types.ReadResourceRequestParams) -> types.ReadResourceResult:
    uri = str(params.uri)
    if uri.startswith(KNOWLEDGE_URI) and uri[len(KNOWLEDGE_URI):].isdigit():
        name, arguments, mime = "knowledge_get", {"entry_id": int(uri[len(KNOWLEDGE_URI):])}, "text/markdown"
    elif uri.startswith(FILES_URI) and len(uri) > len(FILES_URI):
        name, arguments, mime = "files_read", {"path": unquote(uri[len(FILES_URI):])}, "text/plain"
    else:
        raise MCPError(INVALID_PARAMS, f"unknown resource {uri!r}; use {KNOWLEDGE_URI}{{id}} or {FILES_URI}{{path}}")
    # Reads are SAFE calls: they go through the same door (and audit) as the tools.
    outcome = await calls.call(user=_user(ctx), door="mcp", name=name, arguments=arguments,
                               client_ip=_client_ip(ctx))
    if not outcome.ok:
        raise MCPError(INVALID_PARAMS, outcome.output)
    return types.ReadResourceResult(contents=[types.TextResourceContents(uri=uri, text=outcome.output,
                                                                         mime_type=mime)])


server = Server("AutoBot", version=settings.VERSION, instructions=INSTRUCTIONS, on_list_tools=list_tools,
                on_call_tool=call_tool, on_list_resources=list_resources,
                on_list_resource_templates=list_templates, on_read_resource=read_resource)
# Our own Host/Origin check stands in front (interop/http.py), so the SDK's is off.
manager = StreamableHTTPSessionManager(server, stateless=True, json_response=True)


def is_mcp(scope) -> bool:
    return scope["type"] == "http" and scope["path"].rstrip("/") == PATH


async def mcp_app(scope, receive, send) -> None:
    """The /mcp endpoint: checks the host and the token, then hands over to the SDK."""
    if not allowed(scope):
        await refuse(send, 403, "this Host or Origin is not allowed (AUTOBOT_ALLOWED_HOSTS)", "host_not_allowed")
        return
    authorization = header(scope, b"authorization")
    raw = authorization[7:].strip() if authorization[:7].lower() == "bearer " else ""
    user = await token_authenticate(raw) if raw else None
    if user is None:
        detail = "the API token is invalid, expired or revoked" if raw else "send an API token: Authorization: Bearer"
        await refuse(send, 401, detail, "invalid_token" if raw else "not_authenticated",
                      [(b"www-authenticate", b'Bearer realm="AutoBot"')])
        return
    scopes = ["read"] if read_only(user) else ["read", "write"]
    token = AccessToken(token="-", client_id=f"autobot-user:{user.pk}", subject=str(user.pk), scopes=scopes)
    scope = {**scope, "user": AuthenticatedUser(token), USER_KEY: user, "path": PATH, "raw_path": PATH.encode()}
    await _stop_if_gone(manager.handle_request, scope, receive, send)


async def _stop_if_gone(app, scope, receive, send) -> None:
    """Run `app` (the SDK) for one request; if the client goes away before its answer is sent
    whole, cancel it, as Django cancels a view whose client left. That is how a client cancels a
    call: at 2026 streamable HTTP closing the request is the cancel (the official client does
    it), and a 2025 `notifications/cancelled` comes in a request of its own, which in stateless
    mode reaches nothing; nor can an answer whose request is gone be delivered later (no event
    store). The SDK does not listen for it in JSON-response mode, so a cancelled call ran on for
    nobody, and one asking for approval left the owner an approval nobody waits for. Cancelled,
    the call stops as an A2A task's does (interop.calls: a running line gets Ctrl-C, an approval
    it asked for is withdrawn). Once the body is read, nothing else reads the request, so
    `receive` then only says whether the client is still there."""
    body_read, answered = asyncio.Event(), False

    async def receive_body():
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            body_read.set()
        return message

    async def send_answer(message):
        nonlocal answered
        answered = answered or (message["type"] == "http.response.body" and not message.get("more_body", False))
        await send(message)

    async def gone() -> None:
        await body_read.wait()
        while (await receive())["type"] != "http.disconnect":
            pass

    job = asyncio.ensure_future(app(scope, receive_body, send_answer))
    watch = asyncio.ensure_future(gone())
    try:
        await asyncio.wait({job, watch}, return_when=asyncio.FIRST_COMPLETED)
        if not job.done() and not answered:
            job.cancel()
        await asyncio.wait({job})  # the call's clean-up (a withdrawal, its audit event) ends first
    finally:
        watch.cancel()
        if not job.done():  # this request itself cancelled (the server stopping)
            job.cancel()
    if job.cancelled():
        log.info("an MCP client left before its answer; its request was stopped")
        return
    job.result()
