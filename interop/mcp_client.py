"""AutoBot as an MCP client: the tools of the external MCP servers staff registered
(interop.models.ExternalMcpServer) become operator tools for the users and groups named there.

Each tool is named `mcp_<server>__<tool>` (sanitised; names that come out alike get a hash of
their real server and tool instead, see tool_names), rated by the server's `risk` (HIGH by
default, so the user's policy asks for approval call by call), run with the official `mcp`
client over streamable HTTP with the server's Authorization header, and audited with its
arguments and the result's size. The tool lists are fetched at most once a minute per server and
worker; a server that cannot be reached contributes no tools (and is logged), it does not break
the others.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import time

import h11  # noqa: F401  -- httpx2 imports it on the first connection: not on the event loop
import httpx2
from django.contrib.auth import get_user_model
from django.db import DEFAULT_DB_ALIAS
from django.db.models import Q
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from autobot import audit, lanes
from autobot.compiled import CompiledQuery, Param
from chat.tools.base import Rating, Tool, ToolContext, ToolResult
from interop.models import ExternalMcpServer

log = logging.getLogger("interop.mcp_client")

LIST_SECONDS = 60.0
TIMEOUT_SECONDS = 60.0
# One answer from an external server is read whole into memory (JSON) before anything cuts it
# to what the model is shown: more than this is refused while it arrives.
MAX_ANSWER_BYTES = 4 * 1024 * 1024
NAME_CHARS = 64  # the longest function name models accept
HASH_CHARS = 12  # the suffix that tells apart names sanitising made alike (48 bits: not found by trying)
_listed: dict[tuple[int, float], tuple[float, list[dict]]] = {}  # (server id, updated) → (when, tools)


class AnswerTooLarge(httpx2.StreamError):
    pass


class _Capped(httpx2.AsyncByteStream):
    def __init__(self, stream) -> None:
        self._stream = stream

    async def __aiter__(self):
        seen = 0
        async for chunk in self._stream:
            seen += len(chunk)
            if seen > MAX_ANSWER_BYTES:
                raise AnswerTooLarge(f"the external server's answer was larger than {MAX_ANSWER_BYTES} bytes")
            yield chunk

    async def aclose(self) -> None:
        await self._stream.aclose()


class _CappedTransport(httpx2.AsyncHTTPTransport):
    async def handle_async_request(self, request):
        response = await super().handle_async_request(request)
        response.stream = _Capped(response.stream)
        return response


def _http(headers: dict) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(headers=headers, timeout=TIMEOUT_SECONDS, transport=_CappedTransport())


async def _client(server: ExternalMcpServer) -> Client:
    headers = {"Authorization": server.auth_header} if server.auth_header else {}
    # Off the loop: a new client loads the system's CA certificates (and, the first time, imports).
    http = await asyncio.to_thread(_http, headers)
    return Client(streamable_http_client(server.url, http_client=http))


async def _remote_tools(server: ExternalMcpServer) -> list[dict]:
    key = (server.pk, server.updated.timestamp())
    cached = _listed.get(key)
    if cached and time.monotonic() - cached[0] < LIST_SECONDS:
        return cached[1]
    try:
        async with await _client(server) as client:
            listed = (await client.list_tools()).tools
    except Exception as exc:  # one unreachable server must not break the operator
        log.warning("external MCP server %s: cannot list its tools: %r", server.name, exc)
        return []
    found = [{"name": t.name, "description": t.description or "", "schema": t.input_schema} for t in listed]
    _listed[key] = (time.monotonic(), found)
    return found


def _plain_name(server: str, tool: str) -> str:
    # Function names models accept: letters, digits, _ and -, at most 64.
    return re.sub(r"[^A-Za-z0-9_-]", "_", f"mcp_{server.replace('-', '_')}__{tool}")[:NAME_CHARS]


def _hashed_name(server: str, tool: str) -> str:
    digest = hashlib.sha256(f"{server}\x00{tool}".encode()).hexdigest()[:HASH_CHARS]
    return f"{_plain_name(server, tool)[:NAME_CHARS - HASH_CHARS - 1]}_{digest}"


def tool_names(pairs: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """A unique operator name for each (server, tool) pair. Sanitising can make two alike (servers
    `a-b` and `a_b`, tools `x.y` and `x_y`, a cut at 64): then each of them is named with a hash of
    its real pair instead, so neither takes the other's name, whichever is listed first, and a
    tool alone keeps its plain name. Names still alike after that (a server crafting its names
    against another's hash) are given to none of them."""
    names = {pair: _plain_name(*pair) for pair in pairs}
    hashed: set[tuple[str, str]] = set()
    while True:
        holders: dict[str, list[tuple[str, str]]] = {}
        for pair, name in names.items():
            holders.setdefault(name, []).append(pair)
        clashing = [pair for group in holders.values() if len(group) > 1 for pair in group if pair not in hashed]
        if not clashing:
            break
        for pair in clashing:  # each pair is hashed once at most: the loop ends
            names[pair] = _hashed_name(*pair)
            hashed.add(pair)
    for name, group in holders.items():
        if len(group) > 1:
            log.warning("external MCP tools %s all come out as %s: none of them is offered", group, name)
            for pair in group:
                del names[pair]
    return names


def _tool(server: ExternalMcpServer, remote: dict, name: str) -> Tool:
    async def rate(user, args: dict, context: ToolContext) -> Rating:
        subject = f"{server.name}: {remote['name']} {json.dumps(args, ensure_ascii=False, sort_keys=True)}"
        return Rating(server.risk, (f"a tool of the external MCP server {server.name} ({server.url})",),
                      subject[:2000])

    async def run(user, args: dict, context: ToolContext) -> ToolResult:
        async with await _client(server) as client:
            try:
                result = await client.call_tool(remote["name"], args)
                ok = not result.is_error
                text = "\n".join(getattr(b, "text", "") for b in result.content if getattr(b, "text", None))
            except MCPError as exc:  # the server's error, or an answer refused (too large)
                ok, text = False, f"the external server {server.name} failed: {str(exc)[:500]}"
        await audit.record(actor=user, action="interop.external_tool_call", target_type="external_mcp_server",
                           target_id=server.name, correlation_id=context.correlation_id, ip=context.client_ip,
                           data={"tool": remote["name"], "arguments": args, "ok": ok, "result_chars": len(text)})
        return ToolResult(ok=ok, output=text, data={"external_server": server.name})

    schema = remote["schema"] if isinstance(remote["schema"], dict) else {"type": "object"}
    description = f"[{server.name}, external: {remote['name']}] {remote['description']}"[:1000]
    return Tool(name=name, description=description, schema=schema, run=run, rate=rate, checked=False)


_SERVER_COLUMNS = tuple(field.attname for field in ExternalMcpServer._meta.concrete_fields)


def _servers_query() -> CompiledQuery:
    """The enabled servers naming the user or one of their groups, by name; compiled once
    (autobot/compiled.py: compiling it cost more than running it, docs/performance.md, eleventh round)."""
    def build():
        user = Param("user", get_user_model()._meta.pk)
        return ExternalMcpServer.objects.filter(Q(users=user) | Q(groups__user=user), enabled=True).distinct() \
            .order_by("name").values_list(*_SERVER_COLUMNS)

    return CompiledQuery(build)


_SERVERS = _servers_query()


def _servers_for(user) -> list[ExternalMcpServer]:
    rows = _SERVERS.rows({"user": user.pk})
    return [ExternalMcpServer.from_db(DEFAULT_DB_ALIAS, _SERVER_COLUMNS, row) for row in rows]


async def tools_for(user) -> list[Tool]:
    """The external tools this user may use (chat.tools.PROVIDERS calls this)."""
    if user is None or not getattr(user, "is_authenticated", False):
        return []
    # One query, groups joined in (asked at every operator turn's start, before the first token).
    servers = await lanes.run(_servers_for, user)
    listed: dict[tuple[str, str], tuple[ExternalMcpServer, dict]] = {}
    for server in servers:
        for remote in await _remote_tools(server):
            listed.setdefault((server.name, remote["name"]), (server, remote))  # a name listed twice: once
    names = tool_names(list(listed))
    return [_tool(server, remote, names[pair]) for pair, (server, remote) in listed.items() if pair in names]
