"""agent_request: a REQUEST to a bus agent, by id or capability, sent as the user."""

from __future__ import annotations

import json

from django.conf import settings

from autobot.errors import InvalidInput
from chat.tools.base import Rating, Tool, ToolContext, ToolResult, schema

# Agents that run commands must be reached through terminal_run, whose calls are rated and
# approved one by one; a request to them here would skip that.
COMMAND_AGENTS = {"terminal", "shell"}


async def _rate(user, args: dict, context: ToolContext) -> Rating:
    target = args.get("agent_id") or f"capability {args.get('capability')}"
    return Rating("MODERATE", (f"sends a request to {target}",), f"{args['action']} → {target}")


async def _run(user, args: dict, context: ToolContext) -> ToolResult:
    from agents import services
    from agents.protocol import MessageType, ProtocolError, server_message

    agent_id, capability = args.get("agent_id"), args.get("capability")
    if bool(agent_id) == bool(capability):
        raise InvalidInput("give exactly one of agent_id or capability", code="invalid_arguments")
    if (agent_id or capability) in COMMAND_AGENTS:
        raise InvalidInput("commands go through terminal_run, not through an agent", code="use_terminal_run")
    try:
        message = server_message(MessageType.REQUEST, args["action"], args.get("data") or {},
                                 sender_id=f"user:{user.get_username()}", recipient_id=agent_id,
                                 capability=capability, context={"correlation_id": context.correlation_id})
    except ProtocolError as exc:
        raise InvalidInput(exc.detail, code=exc.code) from None
    answer = await services.message_send(user=user, message=message, wait=True,
                                         wait_seconds=min(60.0, settings.AGENTS_REQUEST_TIMEOUT))
    reply = answer.get("message") or {}
    data = {"message_id": str(message.header.message_id)}
    return ToolResult(ok=answer["status"] == "answered", output=json.dumps(reply.get("payload", {}),
                      ensure_ascii=False, default=str), data=data)


TOOLS = [
    Tool(
        name="agent_request",
        description="Ask an agent on AutoBot's bus to do something (by agent_id or by capability); returns its answer.",
        schema=schema({"agent_id": {"type": "string", "maxLength": 128}, "capability": {"type": "string",
                       "maxLength": 128}, "action": {"type": "string", "minLength": 1, "maxLength": 128},
                       "data": {"type": "object"}}, ("action",)),
        run=_run,
        rate=_rate,
    ),
]
