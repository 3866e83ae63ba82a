"""Built-in agents: ordinary bus participants running inside the server process.

Each acts as the user who sent the request (resolved from the server-stamped ``sender_id``),
calls another app's service, and answers with its result. The other apps are imported lazily:
when a service is missing the agent answers with an ERROR rather than failing to start.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model

from agents.bus import AgentEndpoint, Bus, HandlerError
from agents.models import Agent
from agents.protocol import Message
from autobot.errors import AppError


@dataclass(frozen=True)
class BuiltinSpec:
    agent_id: str
    name: str
    description: str
    capabilities: tuple[str, ...]
    actions: dict[str, str]  # action -> what data it takes


SPECS = {
    "knowledge": BuiltinSpec(
        "knowledge", "Knowledge base", "Searches the knowledge base as the requesting user.",
        ("knowledge", "search"), {"search": '{"q": str, "limit": int, "category": str, "tag": str}'},
    ),
    "terminal": BuiltinSpec(
        "terminal", "Terminal", "Runs one command under the RESTRICTED policy, audited as the requesting user.",
        ("terminal", "shell"), {"run": '{"command": str, "cwd": str, "timeout": float}'},
    ),
    "chat": BuiltinSpec(
        "chat", "Chat", "One-shot completion through the configured chat provider.",
        ("chat", "completion"), {"complete": '{"prompt": str, "model": str, "use_knowledge": bool}'},
    ),
}


def _service(module: str, name: str):
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        raise HandlerError(f"{module}.{name} is not available on this server", code="service_unavailable") from None


async def requesting_user(message: Message):
    """The user a request acts for: ``user:<username>``, or the owner of the sending agent."""
    sender = message.header.sender_id
    users = get_user_model().objects
    if sender.startswith("user:"):
        user = await users.filter(username=sender[5:], is_active=True).afirst()
    else:
        agent = await Agent.objects.select_related("owner").filter(pk=sender).afirst()
        user = agent.owner if agent and agent.owner and agent.owner.is_active else None
    if user is None:
        raise HandlerError(f"no user to act for ({sender})", code="forbidden")
    return user


def _text(data: dict, key: str, *, required: bool = True) -> str | None:
    value = data.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise HandlerError(f"data.{key} must be a non-empty string", code="invalid_input")
    return value


async def _call(func, **kwargs) -> Any:
    try:
        return await func(**kwargs)
    except AppError as exc:
        raise HandlerError(exc.detail, code=exc.code) from None


async def knowledge_handler(message: Message) -> dict:
    if message.payload.action not in ("search", "query"):
        raise HandlerError(f"unknown action {message.payload.action!r}; use 'search'", code="unknown_action")
    data = message.payload.data
    limit = data.get("limit", 10)
    if not isinstance(limit, int) or isinstance(limit, bool):
        raise HandlerError("data.limit must be an integer", code="invalid_input")
    search = _service("knowledge.services", "entry_search")
    results = await _call(
        search, user=await requesting_user(message), q=_text(data, "q"), limit=limit,
        category=data.get("category"), tag=data.get("tag"),
    )
    return {"results": results, "count": len(results)}


async def terminal_handler(message: Message) -> dict:
    if message.payload.action not in ("run", "execute"):
        raise HandlerError(f"unknown action {message.payload.action!r}; use 'run'", code="unknown_action")
    data = message.payload.data
    timeout = data.get("timeout")
    if timeout is not None and (not isinstance(timeout, (int, float)) or isinstance(timeout, bool)):
        raise HandlerError("data.timeout must be a number", code="invalid_input")
    run = _service("terminal.services", "command_run")
    return await _call(
        run, user=await requesting_user(message), command=_text(data, "command"), level="RESTRICTED",
        cwd=_text(data, "cwd", required=False), timeout=timeout,
    )


async def chat_handler(message: Message) -> dict:
    if message.payload.action not in ("complete", "chat", "ask"):
        raise HandlerError(f"unknown action {message.payload.action!r}; use 'complete'", code="unknown_action")
    data = message.payload.data
    complete = _service("chat.services", "completion_oneshot")
    return await _call(
        complete, user=await requesting_user(message), prompt=_text(data, "prompt"),
        model=_text(data, "model", required=False), use_knowledge=bool(data.get("use_knowledge", True)),
    )


HANDLERS = {"knowledge": knowledge_handler, "terminal": terminal_handler, "chat": chat_handler}


async def builtin_start(bus: Bus, names: list[str]) -> list[AgentEndpoint]:
    """Register and start the named built-ins on this process's bus."""
    endpoints = []
    for name in names:
        spec = SPECS.get(name)
        if spec is None:
            continue
        await Agent.objects.aupdate_or_create(
            pk=spec.agent_id,
            defaults={
                "name": spec.name, "description": spec.description, "kind": Agent.Kind.BUILTIN,
                "capabilities": list(spec.capabilities), "version": "builtin", "owner": None,
            },
        )
        endpoint = AgentEndpoint(bus, spec.agent_id, HANDLERS[name], capabilities=spec.capabilities, concurrency=4)
        endpoints.append(await endpoint.start())
    return endpoints
