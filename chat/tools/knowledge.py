"""knowledge_search and knowledge_get: the user's knowledge base, as the user sees it."""

from __future__ import annotations

import json

from chat.tools.base import Tool, ToolContext, ToolResult, schema


async def _search(user, args: dict, context: ToolContext) -> ToolResult:
    from knowledge.services import entry_search

    hits = await entry_search(user=user, q=args["query"], limit=args.get("limit", 5))
    items = [{"entry_id": h["entry_id"], "title": h["title"], "source": h["source"], "snippet": h["snippet"]}
             for h in hits]
    return ToolResult(ok=True, output=json.dumps({"results": items, "count": len(items)}, ensure_ascii=False))


async def _get(user, args: dict, context: ToolContext) -> ToolResult:
    from knowledge.services import entry_get

    entry = await entry_get(user=user, entry_id=args["entry_id"])
    text = f"# {entry.title}\n\nsource: {entry.source or '-'}\n\n{entry.content}"
    return ToolResult(ok=True, output=text, data={"entry_id": entry.pk})


TOOLS = [
    Tool(
        name="knowledge_search",
        description="Search the user's knowledge base; returns the best matching entries with a snippet each.",
        schema=schema({"query": {"type": "string", "minLength": 1, "maxLength": 500},
                       "limit": {"type": "integer", "minimum": 1, "maximum": 20}}, ("query",)),
        run=_search,
    ),
    Tool(
        name="knowledge_get",
        description="Read one knowledge base entry in full, by the entry_id knowledge_search returned.",
        schema=schema({"entry_id": {"type": "integer", "minimum": 1}}, ("entry_id",)),
        run=_get,
    ),
]
