"""/api/agents/: the registry, agent cards, sending messages and the message log."""

from typing import Literal
from uuid import UUID

from django.conf import settings
from django.http import HttpResponse
from ninja import Query, Router, Schema, Status
from ninja.errors import ValidationError
from pydantic import Field

from agents import services
from agents.schemas import (
    MESSAGE_IN_OPENAPI,
    AgentFailureOut,
    AgentListOut,
    AgentOut,
    MessageAcceptedOut,
    MessageLogListOut,
)
from autobot.errors import errors

router = Router(tags=["agents"])

MAX_ROW_ID = 2**63 - 1  # the largest id a row can have (a bigint): past it, 422 rather than an overflow


class Page(Schema):
    limit: int = Field(50, ge=1, le=200)
    offset: int = Field(0, ge=0)


class SendQuery(Schema):
    wait: bool = False
    timeout: float | None = Field(None, ge=0.1, description="seconds to wait (with wait=true), 0.1 at least")


class LogQuery(Page):
    message_type: Literal["REQUEST", "RESPONSE", "BROADCAST", "NOTIFICATION", "HEARTBEAT", "ERROR"] | None = None
    status: Literal["delivered", "answered", "failed", "timed_out", "rejected"] | None = None
    action: str | None = None
    agent: str | None = Field(None, description="sender or recipient agent id")
    correlation_id: UUID | None = None
    after: int | None = Field(
        None, ge=0, le=MAX_ROW_ID,
        description="a row `id`: only the rows written after it, oldest first (a cursor: page on with "
                    "the last `id` received until a page is short); `count` counts the rows after it")


@router.get("/", response=AgentListOut, summary="The agent registry")
async def agent_list(request, page: Query[Page]):
    agents = await services.agent_list(user=request.user)
    return {"items": agents[page.offset:page.offset + page.limit], "count": len(agents)}


@router.get("/messages", response=MessageLogListOut, summary="The message log",
            description="Newest first. With `after`, the rows written after that row, oldest first: a client "
                        "that was away reads what it missed by paging with the last `id` it got.")
async def message_list(request, filters: Query[LogQuery]):
    items, count = await services.message_list(user=request.user, **filters.dict())
    return {"items": items, "count": count}


@router.post(
    "/messages",
    response={200: dict, 202: MessageAcceptedOut, 502: AgentFailureOut, **errors(403, 404, 503, 504)},
    summary="Send a REQUEST, NOTIFICATION or BROADCAST (with ?wait=true, wait for the answer)",
    openapi_extra=MESSAGE_IN_OPENAPI,
)
async def message_send(request, query: Query[SendQuery]):
    if query.timeout is not None and query.timeout > settings.AGENTS_MAX_TIMEOUT:
        raise ValidationError([{"loc": ["query", "timeout"], "type": "less_than_equal",
                                "msg": f"timeout must be at most {settings.AGENTS_MAX_TIMEOUT:g} seconds"}])
    message = services.api_message(request.user, request.body)
    result = await services.message_send(
        user=request.user, message=message, wait=query.wait, wait_seconds=query.timeout
    )
    if result["status"] == "accepted":
        return Status(202, result)
    if result["status"] == "failed":
        data = result["message"]["payload"]["data"]
        return Status(502, {"detail": f"the agent answered with an error: {data.get('detail', 'unknown')}",
                     "code": str(data.get("code") or "agent_error"), "message": result["message"]})
    return Status(200, result["message"])


@router.get("/{agent_id}", response={200: AgentOut, **errors(404)}, summary="One agent")
async def agent_get(request, agent_id: str):
    return await services.agent_get(user=request.user, agent_id=agent_id)


# RFC 9745: the date the card was deprecated, as a structured-field Date (@ Unix seconds);
# RFC 8288 / RFC 5829: where clients go instead.
CARD_DEPRECATED_SINCE = "@1796515200"  # 2026-12-06
CARD_SUCCESSOR = '</.well-known/agent-card.json>; rel="successor-version"'


@router.get("/{agent_id}/card", response={200: dict, **errors(404)}, deprecated=True,
            summary="The agent's A2A-style card (deprecated: use /.well-known/agent-card.json)",
            description="Kept for existing clients. Standard A2A clients read the public card at "
                        "`/.well-known/agent-card.json` (every public bus agent is a skill there) or an "
                        "agent's own card at `/a2a/agents/{id}/agent-card.json`. Answers carry "
                        "`Deprecation` and `Link: rel=\"successor-version\"` headers.")
async def agent_card(request, agent_id: str, response: HttpResponse):
    card = await services.agent_card(user=request.user, agent_id=agent_id,
                                     base_url=f"{request.scheme}://{request.get_host()}")
    response["Deprecation"] = CARD_DEPRECATED_SINCE
    response["Link"] = CARD_SUCCESSOR
    return card
