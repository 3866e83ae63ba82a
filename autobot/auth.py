"""Authentication: API tokens (Bearer) and Django sessions, for the API and for WebSockets."""

import secrets
import time
import unicodedata
from datetime import datetime, timedelta

from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone
from ninja.security import APIKeyCookie, HttpBearer
from ninja.utils import check_csrf

from autobot import audit
from autobot.errors import AppError, Forbidden, InvalidInput, NotFound, Unauthorized
from autobot.models import ApiToken

TOKEN_PREFIX = "abt_"


def lockout_key(username: str) -> str:
    """The name failed sign-ins count against: normalised as the sign-in form normalises it (NFKC,
    so full-width 'ｅｖｅ' is 'eve'), then case-folded and trimmed, so no spelling of a locked-out
    name gets fresh attempts."""
    return unicodedata.normalize("NFKC", username or "").strip().casefold()[:150]


def new_raw_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


async def token_create(*, actor, user, name: str = "", expires_days: int | None = None,
                       expires_at: datetime | None = None, via: str = "api") -> tuple[ApiToken, str]:
    """Create a token for `user`; returns the row and the raw token, which is never stored.

    `actor` is None for the command line (the operator has shell access, not an account).
    The expiry is `expires_days` from now (0 = never) or the moment `expires_at` (the admin's
    form); with neither, the server default (AUTOBOT_API_TOKEN_DAYS, 0 = never)."""
    if actor is not None and actor.pk != user.pk and not actor.is_staff:
        raise Forbidden("only staff can create tokens for other users", code="forbidden")
    if expires_days is not None and expires_days < 0:
        raise InvalidInput("expires_days must be 0 (never) or more", code="invalid_expiry")
    if expires_days is not None and expires_at is not None:
        raise InvalidInput("give expires_days or expires_at, not both", code="invalid_expiry")
    if expires_at is None:
        days = settings.API_TOKEN_DEFAULT_DAYS if expires_days is None else expires_days
        expires_at = timezone.now() + timedelta(days=days) if days else None
    raw = new_raw_token()
    token = await ApiToken.objects.acreate(
        user=user, name=name, prefix=raw[:12], token_hash=ApiToken.hash(raw), expires_at=expires_at,
    )
    await audit.record(actor=actor, action="auth.token_created", target_type="api_token", target_id=token.pk,
                       data={"user": user.get_username(), "name": name, "expires_at": token.expires_at,
                             "via": via})
    return token, raw


async def token_revoke(*, actor, token_id: int, via: str = "api") -> ApiToken:
    token = await ApiToken.objects.select_related("user").filter(pk=token_id).afirst()
    if token is None or (token.user_id != actor.pk and not actor.is_staff):
        raise NotFound(f"API token {token_id} not found", code="token_not_found")
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        await token.asave(update_fields=["revoked_at"])
        await audit.record(actor=actor, action="auth.token_revoked", target_type="api_token", target_id=token.pk,
                           data={"user": token.user.get_username(), "via": via})
    return token


async def token_authenticate(raw: str):
    """The active user a raw token belongs to, or None."""
    if not raw or not raw.startswith(TOKEN_PREFIX) or len(raw) > 200:
        return None
    token = await ApiToken.objects.select_related("user").filter(token_hash=ApiToken.hash(raw)).afirst()
    if token is None or not token.is_active or not token.user.is_active:
        return None
    now = timezone.now()
    # Write last_used at most once a minute: a busy client should not turn reads into writes.
    # The in-process note also covers a burst of requests that all read the old value before the
    # first write lands, which would otherwise queue that many writers on the database lock.
    stale = token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1)
    if stale and time.monotonic() - _touched.get(token.pk, -60.0) > 60:
        _touched[token.pk] = time.monotonic()
        if len(_touched) > 10_000:
            _touched.clear()
        await ApiToken.objects.filter(pk=token.pk).aupdate(last_used_at=now)
    return token.user


_touched: dict[int, float] = {}  # token id → when this process last wrote its last_used_at


def token_authenticate_sync(raw: str):
    from asgiref.sync import async_to_sync

    return async_to_sync(token_authenticate)(raw)


class BearerAuth(HttpBearer):
    """`Authorization: Bearer <token>`. A token that is present but wrong is a 401, not a fall-through."""

    async def authenticate(self, request: HttpRequest, token: str):
        user = await token_authenticate(token.strip())
        if user is None:
            raise Unauthorized("the API token is invalid, expired or revoked", code="invalid_token")
        request.user = user
        return user


class SessionAuth(APIKeyCookie):
    """The browser's Django session. CSRF is checked on unsafe methods, but only once we know the
    caller is logged in, so an anonymous call gets 401 rather than a confusing CSRF 403."""

    param_name = settings.SESSION_COOKIE_NAME

    def __init__(self):
        super().__init__(csrf=False)

    async def authenticate(self, request: HttpRequest, key):
        if not key:
            return None
        user = await request.auser()
        if not user.is_authenticated:
            return None
        # Handlers read request.user; left lazy, it would query the database synchronously.
        request.user = user
        if not getattr(request, "_ninja_csrf_exempt", False) and check_csrf(request) is not None:
            raise Forbidden("CSRF check failed: send the X-CSRFToken header with the csrftoken cookie",
                            code="csrf_failed")
        return user


api_auth = [BearerAuth(), SessionAuth()]

__all__ = ["AppError", "BearerAuth", "SessionAuth", "api_auth", "token_authenticate", "token_create", "token_revoke"]
