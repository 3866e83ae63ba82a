"""Chat REST API (thin: parse, call one service, format). Mounted at /api/chat/."""

import asyncio
import json
import logging
from uuid import UUID

from django.http import HttpResponse, StreamingHttpResponse
from ninja import Query, Router, Schema
from ninja.responses import Status

from autobot.auth import token_reading
from autobot.compiled import ISO_DATETIME, CompiledQuery, Param, UUIDText
from autobot.errors import AppError, errors
from autobot.http import client_ip
from autobot.prefetch import Prefetch
from autobot.responses import unchecked
from chat import services
from chat.models import ChatSession
from chat.operator import services as operator
from chat.schemas import (
    CancelOut,
    ChatApprovalDecisionIn,
    ChatApprovalList,
    ChatApprovalOut,
    ChatMessageIn,
    ChatMessageList,
    ChatMessageOut,
    ChatSessionFilters,
    ChatSessionIn,
    ChatSessionList,
    ChatSessionOut,
    ChatSessionPatch,
    ChatTrailOut,
    ModelList,
)

log = logging.getLogger("chat.api")
router = Router(tags=["chat"])
ERRORS = errors(404, 409, 413, 422, 503)


_SESSION_FIELDS = services.SESSION_LIST_FIELDS  # the columns services.session_list_data reads


def _session_list_query(*, staff: bool, search: bool) -> CompiledQuery:
    """services.session_list's query (`_visible`: own sessions, all for staff; `?q=` in the
    title; newest first), compiled once per shape (autobot/compiled.py).
    tests/chat/test_session_list.py checks that both give the same rows."""
    def build():
        sessions = ChatSession.objects.all()
        if not staff:
            sessions = sessions.filter(owner_id=Param("user", ChatSession._meta.get_field("owner").target_field))
        if search:
            sessions = sessions.filter(title__icontains=Param("q", ChatSession._meta.get_field("title")))
        return sessions.order_by("-updated").values_list(*_SESSION_FIELDS)

    # The ids and dates as the text the response carries, read straight from the row.
    return CompiledQuery(build, text={"id": UUIDText, "operator_terminal": UUIDText,
                                      "created": ISO_DATETIME, "updated": ISO_DATETIME})


_SESSION_LISTS = {(staff, search): _session_list_query(staff=staff, search=search)
                  for staff in (False, True) for search in (False, True)}


def _session_page(user, *, q: str, limit: int, offset: int) -> tuple[list, int]:
    """The page of `user`'s list (sync: on a lane)."""
    q = q.strip()
    return _SESSION_LISTS[(user.is_staff, bool(q))].page({"user": user.pk, "q": q}, limit=limit, offset=offset)


SESSION_PAGE = Prefetch(_session_page, ChatSessionFilters)


@router.get("/sessions", response=ChatSessionList, auth=token_reading(SESSION_PAGE),
            summary="Your chat sessions, newest first; ?q= searches titles")
async def session_list(request, filters: Query[ChatSessionFilters]):
    # With a Bearer token the page was most likely read with the token check, in one lane job.
    rows, count = await SESSION_PAGE.page(request, request.user, **filters.model_dump())
    # Rendered without ninja re-validating each item against ChatSessionList, which stays the
    # documented schema (autobot/responses.py).
    return unchecked(request, {"items": services.session_list_data(rows), "count": count})


@router.post("/sessions", response={201: ChatSessionOut, **errors(422)}, summary="Start a chat session")
async def session_create(request, body: ChatSessionIn):
    session = await services.session_create(user=request.user, title=body.title, model=body.model)
    return Status(201, services.session_data(session))


@router.get("/sessions/{session_id}", response={200: ChatSessionOut, **errors(404)})
async def session_get(request, session_id: UUID):
    return services.session_data(await services.session_get(user=request.user, session_id=session_id))


@router.patch("/sessions/{session_id}", response={200: ChatSessionOut, **errors(404, 422)},
              summary="Rename a session, change its model, or switch its tools (the operator) on or off")
async def session_update(request, session_id: UUID, body: ChatSessionPatch):
    session = await services.session_update(user=request.user, session_id=session_id, title=body.title,
                                            model=body.model, tools=body.tools)
    return services.session_data(session)


@router.delete("/sessions/{session_id}", response={204: None, **errors(404)},
               summary="Delete a session (stops an answer in progress)")
async def session_delete(request, session_id: UUID):
    await services.session_delete(user=request.user, session_id=session_id)
    return Status(204, None)


@router.get("/sessions/{session_id}/messages", response={200: ChatMessageList, **errors(404)},
            description="Oldest first. `after` (a message id) lists only the messages newer than it, and "
                        "`count` counts those: a client catching up pages by the last id it got.")
async def message_list(request, session_id: UUID, limit: int = 100, offset: int = 0, after: int | None = None):
    items, count = await services.message_list(user=request.user, session_id=session_id, limit=limit,
                                               offset=offset, after=after)
    # Rendering each answer's Markdown takes milliseconds; a page of 200 must not stall the loop.
    data = await asyncio.to_thread(lambda: [services.message_data(m) for m in items])
    return {"items": data, "count": count}


class MessagePath(Schema):
    """The message POST's path parameter, for the token check's guess (autobot/prefetch.py)."""

    session_id: UUID


# The session a message is posted to is read in the token or session check's lane job, not in a
# job of its own after it (docs/performance.md, eleventh round).
MESSAGE_SESSION = Prefetch(services.session_read, MessagePath, methods=("POST",), path=True)


@router.post(
    "/sessions/{session_id}/messages",
    response={201: ChatMessageOut, **ERRORS}, auth=token_reading(MESSAGE_SESSION),
    summary="Send a message; answers with the complete reply, or streams it as SSE",
    description=(
        "With `Accept: text/event-stream` the reply streams as server-sent events whose data are the "
        "WebSocket messages: `token` (`{type, data, message_id, offset}`); with tools on, `tool_call` "
        "(`{call}`), `approval` (`{approval}`) and `tool_result` (`{call_id, ok, output, exit_code}`); "
        "then `error` if it failed, then `done` (`{type, message}`). Otherwise the response is the "
        "finished reply; a provider failure is a 503 with code `llm_unavailable`."
    ),
)
async def message_post(request, session_id: UUID, body: ChatMessageIn):
    session = services.session_found(await MESSAGE_SESSION.page(request, request.user, session_id=session_id),
                                     session_id)
    args = {"user": request.user, "session_id": session_id, "content": body.content,
            "use_knowledge": body.use_knowledge, "model": body.model, "client_ip": client_ip(request),
            "regenerate": body.regenerate, "session": session}
    if "text/event-stream" in request.headers.get("Accept", ""):
        # Refusals (404, 409, 413, 422, 503) are decided before the response starts; the
        # question is stored while the response headers go out.
        starting = await services.message_post_streaming(**args)
        response = StreamingHttpResponse(_sse(starting), content_type="text/event-stream")
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"  # let nginx pass tokens through as they come
        return response
    return Status(201, await services.reply_wait(await services.message_post(**args)))


@router.post("/sessions/{session_id}/cancel", response={200: CancelOut, **errors(404)},
             summary="Stop the answer being generated in this session",
             description="The partial answer is kept, with status `cancelled`; listeners (WebSocket, SSE) get "
                         "their `done` event as usual.")
async def generation_cancel(request, session_id: UUID):
    return {"cancelled": await services.generation_cancel(user=request.user, session_id=session_id)}


@router.get("/sessions/{session_id}/approvals", response={200: ChatApprovalList, **errors(404)},
            summary="The operator's calls waiting for your approval in this session")
async def approval_list(request, session_id: UUID):
    items = await operator.approval_list(user=request.user, session_id=session_id)
    return {"items": items, "count": len(items)}


@router.post("/sessions/{session_id}/approvals/{approval_id}",
             response={200: ChatApprovalOut, **errors(403, 404, 409, 422)},
             summary="Approve or deny an operator call (409 when already decided or expired)",
             description="403 `approval_self_decision`: the approval was asked for by an MCP or A2A client with "
                         "the API token this request uses; the owner decides it with other credentials.")
async def approval_decide(request, session_id: UUID, approval_id: UUID, body: ChatApprovalDecisionIn):
    return await operator.approval_decide(user=request.user, session_id=session_id, approval_id=approval_id,
                                          decision=body.decision, reason=body.reason, client_ip=client_ip(request))


@router.get("/sessions/{session_id}/messages/{message_id}/trail", response={200: ChatTrailOut, **errors(404)},
            summary="Everything the message's turn did: tool calls, approvals, commands, agent messages, audit events")
async def message_trail(request, session_id: UUID, message_id: int):
    return await operator.message_trail(user=request.user, session_id=session_id, message_id=message_id)


def _sse_block(event: dict) -> str:
    return f"event: {event['type']}\ndata: {json.dumps(event)}\n\n"


async def _sse(starting: asyncio.Task):
    """Relay the generation's events; leaving early (client gone) leaves the generation running."""
    try:
        posted = await services.message_started(starting)  # a client leaving must not cancel the start
    except AppError as exc:  # refused while storing (another worker is answering), or shutting down
        yield _sse_block({"type": "error", "detail": exc.detail, "code": exc.code})
        return
    except Exception:
        log.exception("chat message could not be started")
        yield _sse_block({"type": "error", "detail": "internal error: it has been logged", "code": "internal_error"})
        return
    events = posted.events
    try:
        while True:
            # Every event already queued goes out in one chunk (one write to the socket) rather than
            # one each: under load, tokens that piled up while the loop was busy leave together.
            # The bytes and their order are the same as one block per event. Yielded as bytes
            # (JSON is ASCII here): the response then has no charset to look up per chunk.
            batch = [wire_event(await events.get())]
            while batch[-1]["type"] != "done" and not events.empty():
                batch.append(wire_event(events.get_nowait()))
            yield "".join(map(_sse_block, batch)).encode()
            if batch[-1]["type"] == "done":
                return
    finally:
        posted.answer.unsubscribe(posted.events)


def wire_event(event: dict) -> dict:
    """A channel-layer event (`chat.token` …) as the client sees it (`token` …)."""
    kind = event["type"].removeprefix("chat.")
    return {"type": kind, **{k: v for k, v in event.items() if k != "type"}}


@router.get("/sessions/{session_id}/export", response={200: None, **errors(404, 422)},
            summary="Download a session as Markdown (format=md) or JSON (format=json)")
async def session_export(request, session_id: UUID, format: str = Query("md", pattern="^(md|json)$")):  # noqa: A002
    name, content_type, body = await services.session_export(user=request.user, session_id=session_id, fmt=format)
    response = HttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@router.get("/models", response=ModelList, summary="Models of every configured provider")
async def model_list(request):
    return await services.models_list()
