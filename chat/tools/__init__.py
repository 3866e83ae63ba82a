"""The tool registry: every tool the operator can call, by name (see chat/tools/base.py).

The chat's operator uses it today; MCP and A2A can serve the same registry (issue 17).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from autobot.errors import InvalidInput
from chat.tools import agents, files, knowledge, terminal
from chat.tools.base import RISKS, Rating, Tool, ToolContext, ToolResult, truncate

TOOLS: dict[str, Tool] = {t.name: t for module in (knowledge, files, terminal, agents) for t in module.TOOLS}


# Other apps add tools per user: each provider is `async (user) -> list[Tool]` (interop adds the
# tools of the external MCP servers staff registered). A provider's tool never replaces a built-in.
PROVIDERS: list = []


def get(name: str) -> Tool | None:
    return TOOLS.get(name)


def specs() -> list[dict]:
    return [tool.spec() for tool in TOOLS.values()]


async def tools_for(user) -> dict[str, Tool]:
    """The built-in tools and those the providers give this user."""
    found = dict(TOOLS)
    for provider in PROVIDERS:
        for tool in await provider(user):
            found.setdefault(tool.name, tool)
    return found


async def specs_for(user) -> list[dict]:
    return [tool.spec() for tool in (await tools_for(user)).values()]


@dataclass(frozen=True)
class Prepared:
    tool: Tool
    args: dict
    rating: Rating


async def prepare(user, name: str, arguments: Any, context: ToolContext) -> Prepared:
    """A call checked and rated, not run: the tool, its arguments (JSON text or an object,
    checked against the schema) and its rating. Every door (the chat, MCP, A2A) starts here;
    InvalidInput says what is wrong in a sentence the caller (a model) can act on."""
    tool = TOOLS.get(name)
    if tool is None and PROVIDERS:
        tool = (await tools_for(user)).get(name)
    if tool is None:
        raise InvalidInput(f"unknown tool {name!r}; use one of {', '.join(TOOLS)}", code="unknown_tool")
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments or "{}")
        except ValueError as exc:
            raise InvalidInput(f"the arguments are not valid JSON ({exc}); call the tool again with a JSON object",
                               code="malformed_arguments") from None
    args = tool.validate(arguments)
    return Prepared(tool=tool, args=args, rating=await tool.rate(user, args, context))


__all__ = ["PROVIDERS", "RISKS", "TOOLS", "Prepared", "Rating", "Tool", "ToolContext", "ToolResult", "get", "prepare",
           "specs", "specs_for", "tools_for", "truncate"]
