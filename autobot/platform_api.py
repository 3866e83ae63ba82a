"""Platform endpoints: health, the current user, and the caller's API tokens."""

from datetime import datetime
from typing import Literal

from ninja import Field, Router, Schema
from ninja.responses import Status

from autobot import auth
from autobot.auth import BearerAuth, SessionAuth
from autobot.errors import Forbidden, errors
from autobot.health import health_report
from autobot.models import ApiToken
from autobot.pagination import paginate
from autobot.schemas import JsonInt, StrictSchema

router = Router(tags=["platform"])


class LayerWatchOut(Schema):
    state: Literal["ok", "failing", "starting", "not_running"] = Field(
        description="ok: the last round reached the layer's Redis; failing: the last `failures` rounds did not "
                    "(or none has for four rounds' time, since the watch started if none ever has); starting: no round "
                    "has ended yet; not_running: the "
                    "in-memory layer (one process, nothing to watch), or no watch started in this process yet")
    failures: int = Field(description="rounds failed in a row")
    seconds_since_success: float | None = Field(
        None, description="since the last round that reached Redis (absent before the first)")
    epoch: int = Field(description="times this process found the layer's Redis had lost its state or been away")


class HealthOut(Schema):
    status: str = Field(examples=["ok"])
    checks: dict = Field(examples=[{"database": {"status": "ok", "ms": 0.4},
                                    "channel_layer": {"status": "ok", "ms": 0.2}}])
    version: str
    layer_watch: LayerWatchOut = Field(
        description="This process's watch of the channel layer's Redis (autobot/layerwatch.py). Informative: "
                    "the status code follows `checks.channel_layer`, the round trip made now")
    detail: str | None = None
    code: str | None = None


@router.get("/health", auth=None, response={200: HealthOut, 503: HealthOut}, exclude_none=True,
            summary="Health of the server and its dependencies (200, or 503 naming what failed)")
async def health(request):
    return Status(*await health_report())


class MeOut(Schema):
    id: int
    username: str
    is_staff: bool
    permissions: list[str]


@router.get("/me", response=MeOut, summary="The authenticated user")
async def me(request):
    user = request.auth
    perms = sorted(await user.aget_all_permissions()) if hasattr(user, "aget_all_permissions") else []
    return {"id": user.pk, "username": user.get_username(), "is_staff": user.is_staff, "permissions": perms}


class TokenIn(StrictSchema):
    name: str = Field("", max_length=100, pattern=r"^[^\x00-\x1f\x7f]*$")
    expires_days: JsonInt | None = Field(None, ge=0, le=3650,
                                     description="days until it expires; 0: never; null: the server default")
    username: str | None = Field(None, description="create the token for this user: needs staff status and "
                                                   "the permission to add API tokens (403 otherwise, for an "
                                                   "unknown name too; 404 for an unknown name to those who may)")
    scope: Literal["full", "read"] = Field("full", description="read: a read-only token (no commands, no writes)")


class TokenOut(Schema):
    id: int
    name: str
    prefix: str
    scope: str = Field(description="full, or read (read-only)")
    created: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


class TokenCreatedOut(TokenOut):
    token: str = Field(description="The raw token. Shown only in this response; store it now.")


class TokenPage(Schema):
    items: list[TokenOut]
    count: int


@router.get("/tokens", response=TokenPage, summary="Your API tokens (never the raw values)")
async def tokens_list(request, limit: int = 50, offset: int = 0):
    items, count = await paginate(ApiToken.objects.filter(user=request.auth), limit=limit, offset=offset)
    return {"items": items, "count": count}


@router.post("/tokens", response={201: TokenCreatedOut, **errors(403, 404)}, auth=[BearerAuth(), SessionAuth()],
             summary="Create an API token (shown once; needs a browser session, not a token)",
             description="Called with a Bearer token this answers 403 `session_required`: create tokens "
                         "on the Tokens page (/tokens/) or in the admin.")
async def tokens_create(request, body: TokenIn):
    # Only a logged-in session can mint tokens: a leaked token must not be able to create
    # replacements that outlive its revocation. A token holder is told so, not just "401".
    if request.headers.get("Authorization", "").lower().startswith("bearer "):
        raise Forbidden(
            "API tokens are created from a signed-in browser session (the Tokens page, /tokens/, or the admin), "
            "not with a token: a leaked token must not be able to mint replacements that outlive its revocation",
            code="session_required",
        )
    user_for = await auth.token_user(actor=request.auth, username=body.username or "")
    token, raw = await auth.token_create(actor=request.auth, user=user_for, name=body.name,
                                        expires_days=body.expires_days, scope=body.scope)
    token.token = raw
    return Status(201, token)


@router.delete("/tokens/{token_id}", response=TokenOut, summary="Revoke an API token")
async def tokens_revoke(request, token_id: int):
    return await auth.token_revoke(actor=request.auth, token_id=token_id)
