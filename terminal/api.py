"""The consolidated terminal API, mounted at /api/terminal/. Thin: parse, call a service, format."""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

from django.conf import settings
from django.http import FileResponse
from ninja import Query, Router, Status
from pydantic import BeforeValidator

from autobot.errors import errors
from autobot.http import API_PREFIX, client_ip
from autobot.pagination import paginate
from autobot.schemas import IsoDateTime
from terminal import services
from terminal.policy import Level, describe_levels, max_level_for
from terminal.risk import Risk
from terminal.schemas import (
    AssessIn,
    AssessOut,
    CommandList,
    CommandOut,
    ExecuteIn,
    ExecuteOut,
    InfoOut,
    InputIn,
    LevelOut,
    SignalIn,
    SignalOut,
    TerminalSessionIn,
    TerminalSessionList,
    TerminalSessionOut,
    TerminalSessionPatch,
)

router = Router(tags=["terminal"])
RiskName = Annotated[Literal["SAFE", "MODERATE", "HIGH", "DANGEROUS"], BeforeValidator(str.upper)]

VERSION = "1.0"
ENDPOINTS = [
    "GET /api/terminal/",
    "GET /api/terminal/security-levels",
    "POST /api/terminal/assess",
    "GET /api/terminal/sessions",
    "POST /api/terminal/sessions",
    "GET /api/terminal/sessions/{id}",
    "PATCH /api/terminal/sessions/{id}",
    "DELETE /api/terminal/sessions/{id}",
    "POST /api/terminal/sessions/{id}/execute",
    "POST /api/terminal/sessions/{id}/input",
    "POST /api/terminal/sessions/{id}/signal",
    "GET /api/terminal/sessions/{id}/history",
    "GET /api/terminal/sessions/{id}/recording",
    "GET /api/terminal/audit",
    "WS /ws/terminal/{id}/",
]
LIMIT = Query(50, ge=1, le=200)
OFFSET = Query(0, ge=0)


def _session_out(session) -> dict:
    return {
        **services.session_info(session),
        "websocket": f"/ws/terminal/{session.pk}/",
        "recording": f"{API_PREFIX}terminal/sessions/{session.pk}/recording",
    }


def _command_out(record) -> dict:
    return {
        "id": record.pk,
        "session_id": str(record.session_id) if record.session_id else None,
        "user": record.user.get_username(),
        "source": record.source,
        "security_level": record.security_level,
        "command": record.command,
        "risk": record.risk,
        "reasons": record.reasons,
        "blocked": record.blocked,
        "warned": record.warned,
        "exit_code": record.exit_code,
        "cwd": record.cwd,
        "started": record.started,
        "finished": record.finished,
        "client_ip": record.client_ip,
        "actor": record.actor,
        "correlation_id": record.correlation_id,
    }


@router.get("/", response=InfoOut, summary="What this API offers: version, levels, risks, endpoints")
async def info(request):
    return {
        "version": VERSION,
        "levels": describe_levels(),
        "risk_levels": [risk.name for risk in Risk],
        "default_level": Level.RESTRICTED.value,
        "your_max_level": max_level_for(request.auth.is_staff).value,
        "limits": {
            "max_sessions_per_user": settings.TERMINAL_MAX_SESSIONS_PER_USER,
            "reconnect_seconds": settings.TERMINAL_RECONNECT_SECONDS,
            "idle_seconds": settings.TERMINAL_IDLE_SECONDS,
            "max_frame_bytes": settings.TERMINAL_MAX_FRAME_BYTES,
            "execute_timeout_seconds": settings.TERMINAL_EXECUTE_TIMEOUT,
            "execute_max_output_bytes": settings.TERMINAL_EXECUTE_MAX_OUTPUT,
        },
        "endpoints": ENDPOINTS,
        "websocket": "/ws/terminal/{id}/ (JSON text frames: input, resize, ping → session, output, blocked, "
        "exit, pong, error)",
    }


@router.get("/security-levels", response=list[LevelOut], summary="The security levels and what each blocks")
async def security_levels(request):
    return describe_levels()


@router.post("/assess", response={200: AssessOut, **errors(403, 413)},
             summary="Assess a command line without running it")
async def assess(request, body: AssessIn):
    return await services.command_assess(user=request.auth, command=body.command, level=body.security_level)


@router.get("/sessions", response={200: TerminalSessionList, **errors(403)},
            summary="Your terminal sessions (staff: everyone's)")
async def session_list(
    request,
    status: Literal["live", "running", "detached", "ended"] | None = Query(None, description="live: not ended"),
    owner: str | None = Query(None, description="staff only: a username"),
    limit: int = LIMIT,
    offset: int = OFFSET,
):
    sessions = await services.session_list(user=request.auth, status=status, owner=owner)
    items, count = await paginate(sessions, limit=limit, offset=offset)
    return {"items": [_session_out(s) for s in items], "count": count}


@router.post("/sessions", response={201: TerminalSessionOut, **errors(403, 429, 503)},
             summary="Open a session (a new bash on a PTY)")
async def session_open(request, body: TerminalSessionIn):
    session = await services.session_open(
        user=request.auth,
        title=body.title,
        security_level=body.security_level,
        cols=body.cols,
        rows=body.rows,
        client_ip=client_ip(request),
    )
    return Status(201, _session_out(session))


@router.get("/sessions/{session_id}", response={200: TerminalSessionOut, **errors(403)}, summary="One session")
async def session_get(request, session_id: str):
    return _session_out(await services.session_get(user=request.auth, session_id=session_id))


@router.patch("/sessions/{session_id}", response={200: TerminalSessionOut, **errors(403, 409, 503)},
              summary="Rename, or change the security level")
async def session_update(request, session_id: str, body: TerminalSessionPatch):
    session = await services.session_update(
        user=request.auth,
        session_id=session_id,
        title=body.title,
        security_level=body.security_level,
        client_ip=client_ip(request),
    )
    return _session_out(session)


@router.delete(
    "/sessions/{session_id}",
    response={200: TerminalSessionOut, **errors(403, 409, 503)},
    summary="End a session (its shell is hung up); the session and its history stay",
    description=(
        "Ends the session: its shell is hung up and the answer is the session with status `ended`. "
        "Nothing is deleted: the session, its command history and its recording stay readable at the "
        "same URLs (they are the audit trail). Ending an ended session answers it again, unchanged. "
        "409 `session_lost`: the server process running it stopped (the session is marked ended)."
    ),
)
async def session_close(request, session_id: str):
    session = await services.session_close(user=request.auth, session_id=session_id, client_ip=client_ip(request))
    return _session_out(session)


@router.post(
    "/sessions/{session_id}/execute",
    response={200: ExecuteOut, **errors(403, 413, 503)},
    summary="Run one command non-interactively with the session's level and folder",
)
async def session_execute(request, session_id: str, body: ExecuteIn):
    session = await services.session_get(user=request.auth, session_id=session_id)
    return await services.command_run(
        user=request.auth,
        command=body.command,
        level=session.security_level,
        cwd=body.cwd,
        timeout=body.timeout,
        client_ip=client_ip(request),
        session=session,
    )


@router.post("/sessions/{session_id}/input", response={204: None, **errors(403, 409, 413, 429, 503)},
             summary="Type into the session")
async def session_input(request, session_id: str, body: InputIn):
    await services.session_input(
        user=request.auth, session_id=session_id, text=body.text, is_password=body.is_password,
        client_ip=client_ip(request),
    )
    return Status(204, None)


@router.post(
    "/sessions/{session_id}/signal", response={200: SignalOut, **errors(403, 409, 503)},
    summary="Signal the session's foreground process group",
    description=("Sends the signal to the program running in the foreground (what Ctrl-C does for SIGINT). "
                 "With the shell idle at its prompt nothing is signalled: `process_group` and `program` are "
                 "null, and the shell goes on (end the session with DELETE)."),
)
async def session_signal(request, session_id: str, body: SignalIn):
    return await services.session_signal(
        user=request.auth, session_id=session_id, signal_name=body.signal, client_ip=client_ip(request)
    )


@router.get("/sessions/{session_id}/history", response={200: CommandList, **errors(403)},
            summary="The session's commands, newest first")
async def session_history(request, session_id: str, limit: int = LIMIT, offset: int = OFFSET):
    records = await services.session_history(user=request.auth, session_id=session_id)
    items, count = await paginate(records.select_related("user"), limit=limit, offset=offset)
    return {"items": [_command_out(r) for r in items], "count": count}


@router.get(
    "/sessions/{session_id}/recording",
    response={200: None, **errors(403)},
    summary="The session's asciicast v2 recording",
    openapi_extra={
        "responses": {200: {"description": "asciicast v2 (JSON lines)", "content": {"application/x-asciicast": {}}}}
    },
)
async def session_recording(request, session_id: str, download: bool = False):
    path = await services.session_recording(user=request.auth, session_id=session_id)
    handle = await asyncio.to_thread(open, path, "rb")
    return FileResponse(
        handle, content_type="application/x-asciicast", as_attachment=download, filename=f"terminal-{session_id}.cast"
    )


@router.get("/audit", response={200: CommandList, **errors(403, 404)},
            summary="Command records: every verdict, filterable")
async def audit(
    request,
    user: str | None = Query(None, description="staff only: a username"),
    session: str | None = Query(None, description="a session id"),
    risk: RiskName | None = Query(None, description="any case"),
    blocked: bool | None = None,
    since: IsoDateTime | None = Query(None, description="ISO 8601, e.g. 2024-05-01T12:00:00Z"),
    until: IsoDateTime | None = Query(None, description="ISO 8601"),
    limit: int = LIMIT,
    offset: int = OFFSET,
):
    session_id = None
    if session:
        session_id = (await services.session_get(user=request.auth, session_id=session)).pk
    records = await services.command_audit(
        user=request.auth, username=user, session_id=session_id, risk=risk, blocked=blocked, since=since, until=until
    )
    items, count = await paginate(records, limit=limit, offset=offset)
    return {"items": [_command_out(r) for r in items], "count": count}


__all__ = ["CommandOut", "router"]
