"""The tool registry: every tool the operator can call, by name (see chat/tools/base.py).

The chat's operator uses it today; MCP and A2A can serve the same registry (issue 17).
"""

from __future__ import annotations

from chat.tools import agents, files, knowledge, terminal
from chat.tools.base import RISKS, Rating, Tool, ToolContext, ToolResult, truncate

TOOLS: dict[str, Tool] = {t.name: t for module in (knowledge, files, terminal, agents) for t in module.TOOLS}


def get(name: str) -> Tool | None:
    return TOOLS.get(name)


def specs() -> list[dict]:
    return [tool.spec() for tool in TOOLS.values()]


__all__ = ["RISKS", "TOOLS", "Rating", "Tool", "ToolContext", "ToolResult", "get", "specs", "truncate"]
