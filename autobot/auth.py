"""Authentication: API tokens (Bearer) and Django sessions, for the API and for WebSockets."""

import hashlib
import inspect
import secrets
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import DEFAULT_DB_ALIAS, connections
from django.http import HttpRequest
from django.utils import timezone
from ninja.security import APIKeyCookie, HttpBearer
from ninja.utils import check_csrf

from autobot import audit, lanes
from autobot.dbread import read_one
from autobot.errors import AppError, Forbidden, InvalidInput, NotFound, Unauthorized
from autobot.models import ApiToken
from autobot.pages import attach_user

TOKEN_PREFIX = "abt_"


def new_raw_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


async def token_create(*, actor, user, name: str = "", expires_days: int | None = None,
                       expires_at: datetime | None = None, via: str = "api",
                       scope: str = ApiToken.Scope.FULL) -> tuple[ApiToken, str]:
    """Create a token for `user`; returns the row and the raw token, which is never stored.

    `actor` is None for the command line (the operator has shell access, not an account).
    The expiry is `expires_days` from now (0 = never) or the moment `expires_at` (the admin's
    form); with neither, the server default (AUTOBOT_API_TOKEN_DAYS, 0 = never)."""
    if actor is not None and actor.pk != user.pk:
        refusal = act_for_refusal(actor, user, may_add_tokens=await actor.ahas_perm("autobot.add_apitoken"))
        if refusal:
            raise Forbidden(refusal, code="forbidden")
    if expires_days is not None and expires_days < 0:
        raise InvalidInput("expires_days must be 0 (never) or more", code="invalid_expiry")
    if expires_days is not None and expires_at is not None:
        raise InvalidInput("give expires_days or expires_at, not both", code="invalid_expiry")
    if scope not in ApiToken.Scope.values:
        raise InvalidInput(f"scope must be one of {', '.join(ApiToken.Scope.values)}", code="invalid_scope")
    if expires_at is None:
        days = settings.API_TOKEN_DEFAULT_DAYS if expires_days is None else expires_days
        expires_at = timezone.now() + timedelta(days=days) if days else None
    raw = new_raw_token()
    token = await ApiToken.objects.acreate(
        user=user, name=name, prefix=raw[:12], token_hash=ApiToken.hash(raw), expires_at=expires_at,
        scope=scope,
    )
    await audit.record(actor=actor, action="auth.token_created", target_type="api_token", target_id=token.pk,
                       data={"user": user.get_username(), "name": name, "expires_at": token.expires_at,
                             "scope": scope, "via": via})
    return token, raw


NOT_FOR_OTHERS = "creating API tokens for other users needs staff status and the permission to add API tokens"


async def token_user(*, actor, username: str = ""):
    """The user a token `actor` asks for by `username` (none, or their own: `actor`) is for.
    Someone who may not mint tokens for others is refused before the name is looked up: an
    unknown name and a known one get the same 403, so the answer tells nobody which users exist.
    Who may mint for others (and sees the users in the admin) gets 404 for an unknown name."""
    if not username or username == actor.get_username():
        return actor
    if not (actor.is_staff and await actor.ahas_perm("autobot.add_apitoken")):
        raise Forbidden(NOT_FOR_OTHERS, code="forbidden")
    user = await get_user_model().objects.filter(username=username).afirst()
    if user is None:
        raise NotFound(f"user {username} not found", code="user_not_found")
    return user


def act_for_refusal(actor, user, *, may_add_tokens: bool) -> str | None:
    """Why `actor` may not create an API token for another `user`, or None. Such a token is that
    user's power in someone else's hands: only staff who may add tokens in the admin
    (`autobot.add_apitoken`, `may_add_tokens`) mint one, and only a superuser mints one for a
    superuser or another staff member (anyone else would gain powers they do not have)."""
    if not actor.is_staff or not may_add_tokens:
        return NOT_FOR_OTHERS
    if user.is_superuser and not actor.is_superuser:
        return "only a superuser may create an API token for a superuser"
    if user.is_staff and not actor.is_superuser:  # staff hold permissions the actor may not
        return "only a superuser may create an API token for another staff member"
    return None


async def token_revoke(*, actor, token_id: int, via: str = "api") -> ApiToken:
    token = await ApiToken.objects.select_related("user").filter(pk=token_id).afirst()
    # Another user's token: staff who may change tokens in the admin (not every staff member).
    if token is None or (token.user_id != actor.pk and not (
            actor.is_staff and await actor.ahas_perm("autobot.change_apitoken"))):
        raise NotFound(f"API token {token_id} not found", code="token_not_found")
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        await token.asave(update_fields=["revoked_at"])
        await audit.record(actor=actor, action="auth.token_revoked", target_type="api_token", target_id=token.pk,
                           data={"user": token.user.get_username(), "via": via})
    return token


async def token_authenticate(raw: str):
    """The active user a raw token belongs to, or None. The user carries the token's scope as
    `api_token_scope` ("full" or "read"; see `read_only`) and its id as `api_token_id`."""
    if not raw or not raw.startswith(TOKEN_PREFIX) or len(raw) > 200:
        return None
    return await lanes.run(_token_user, ApiToken.hash(raw))


TOUCH_SECONDS = 60  # last_used_at is written at most this often per token


def _token_user_and_read(token_hash: str, prefetch, values: dict | None):
    """The token check and, for a user it lets in, the operation's read (autobot/prefetch.py):
    one lane job."""
    user = _token_user(token_hash)
    return user, (None if user is None else prefetch.run_with(user, values))


def _token_user(token_hash: str):
    """The token check, on one lane trip: one hand-written query, and the occasional write.

    Every request reads the database, so a revoked or expired token, or a deactivated user,
    is refused from the next request on, on every worker. The query is the ORM's
    `select_related("user").filter(token_hash=...)` written out once (see `_TokenQuery`):
    compiling that queryset cost ~20 times what SQLite takes to run it."""
    connection = connections[DEFAULT_DB_ALIAS]
    query = _token_query(connection)
    now = timezone.now()
    adapt = connection.ops.adapt_datetimefield_value
    # In the order of the placeholders: the touch threshold, the hash, the expiry check's now.
    row = read_one(connection, query.sql, [adapt(now - timedelta(seconds=TOUCH_SECONDS)), token_hash, adapt(now)])
    if row is None:
        return None
    token_id, stale, scope, *values = row
    user = query.user(values, connection)
    user.api_token_scope = scope
    user.api_token_id = token_id  # a door's approval remembers it (chat.operator.approvals)
    if not user.is_active:
        return None
    # Write last_used at most once a minute: a busy client should not turn reads into writes.
    # The in-process note also covers a burst of requests that all read the old value before the
    # first write lands, which would otherwise queue that many writers on the database lock.
    if stale and time.monotonic() - _touched.get(token_id, -TOUCH_SECONDS) > TOUCH_SECONDS:
        _touched[token_id] = time.monotonic()
        if len(_touched) > 10_000:
            _touched.clear()
        ApiToken.objects.filter(pk=token_id).update(last_used_at=now)
    return user


_touched: dict[int, float] = {}  # token id → when this process last wrote its last_used_at


class _TokenQuery:
    """The token check's SQL and the user model's converters, built once per connection from the
    models' metadata (table and column names, the backend's quoting and value converters), so it
    follows the models as the ORM would. Selects the token id, whether last_used_at is older than
    TOUCH_SECONDS, the token's scope and the owner's row, for an unrevoked, unexpired token with that hash."""

    def __init__(self, connection) -> None:
        qn = connection.ops.quote_name
        user_model = get_user_model()
        token, user = ApiToken._meta, user_model._meta
        self.model = user_model
        self.fields = list(user.concrete_fields)
        self.attnames = [field.attname for field in self.fields]
        self.converters = []
        for index, field in enumerate(self.fields):
            col = field.get_col("u")
            functions = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
            if functions:
                self.converters.append((index, col, functions))

        def t(name: str) -> str:
            return "t." + qn(token.get_field(name).column)

        columns = ", ".join("u." + qn(field.column) for field in self.fields)
        self.sql = (
            f"SELECT {t('id')}, CASE WHEN {t('last_used_at')} IS NULL OR {t('last_used_at')} < %s THEN 1 ELSE 0 END, "
            f"{t('scope')}, {columns} FROM {qn(token.db_table)} t INNER JOIN {qn(user.db_table)} u "
            f"ON u.{qn(user.pk.column)} = {t('user')} "
            f"WHERE {t('token_hash')} = %s AND {t('revoked_at')} IS NULL AND ({t('expires_at')} IS NULL "
            f"OR {t('expires_at')} > %s)"
        )

    def user(self, values: list, connection):
        for index, col, functions in self.converters:
            for convert in functions:
                values[index] = convert(values[index], col, connection)
        return self.model.from_db(connection.alias, self.attnames, values)


_token_queries: dict[tuple, _TokenQuery] = {}


def _token_query(connection) -> _TokenQuery:
    key = (connection.alias, connection.vendor, settings.AUTH_USER_MODEL)
    if key not in _token_queries:
        _token_queries[key] = _TokenQuery(connection)
    return _token_queries[key]


def read_only(user) -> bool:
    """Whether the caller came with a read-only API token."""
    return getattr(user, "api_token_scope", "") == ApiToken.Scope.READ


SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


# The sha256 of the source of ninja's `HttpBearer.__call__`, which `BearerAuth.__call__` restates.
NINJA_BEARER_CALL_SHA256 = "cedd01475abc58630fd48fe454b2e261a2e6d86561e612d964584b2074c4c774"


def ninja_bearer_call_sha256() -> str:
    return hashlib.sha256(inspect.getsource(HttpBearer.__call__).encode()).hexdigest()


def token_authenticate_sync(raw: str):
    from asgiref.sync import async_to_sync

    return async_to_sync(token_authenticate)(raw)


class BearerAuth(HttpBearer):
    """`Authorization: Bearer <token>`. A token that is present but wrong is a 401, not a fall-through.

    With `prefetch` (an operation's `autobot.prefetch.Prefetch`: a GET list's page, the chat
    message POST's session), a token that lets the caller in also has the operation's read done
    in the same lane job (see that module)."""

    def __init__(self, prefetch=None) -> None:
        super().__init__()
        self.prefetch = prefetch

    def __call__(self, request: HttpRequest):
        """ninja's `HttpBearer.__call__`, but the header is read from `request.META` (as
        `request.headers` reads it), not from `request.headers`, which is built from every META
        entry the first time it is read (~2 % of a list call's instructions on the event loop) for
        this one header. A request whose `headers` was already set or read (a test's hand-made
        request), or a header of another scheme (ninja logs it under DEBUG), goes ninja's way.
        `tests/platform/test_tokens.py` fails when ninja's changes."""
        if "headers" in request.__dict__ or self.header != "Authorization":
            return super().__call__(request)
        value = request.META.get("HTTP_AUTHORIZATION")
        if not value:
            return None
        scheme, _, token = value.partition(" ")  # ninja: parts = split(" "), " ".join(parts[1:])
        if scheme.lower() != self.openapi_scheme:
            return super().__call__(request)
        return self.authenticate(request, token)

    async def authenticate(self, request: HttpRequest, token: str):
        raw = token.strip()
        read = None
        if self.prefetch is None or request.method not in self.prefetch.methods:
            user = await token_authenticate(raw)
        else:
            user, read = await self._authenticate_and_read(request, raw)
        if user is None:
            raise Unauthorized("the API token is invalid, expired or revoked", code="invalid_token")
        if read_only(user) and request.method not in SAFE_METHODS:
            # Read-only means it for every route: no command, no write, no change of any kind.
            raise Forbidden("this API token is read-only", code="read_only_token")
        request.user = user
        if read is not None:  # kept only once the caller is let in (as SessionAuth, after CSRF)
            self.prefetch.keep(request, user, *read)
        return user

    async def _authenticate_and_read(self, request: HttpRequest, raw: str):
        """(the token's user or None, (values, what was read) or None)."""
        if not raw or not raw.startswith(TOKEN_PREFIX) or len(raw) > 200:
            return None, None
        values = self.prefetch.guess(request)
        user, result = await lanes.run(_token_user_and_read, ApiToken.hash(raw), self.prefetch, values)
        return user, (None if user is None else (values, result))


class SessionAuth(APIKeyCookie):
    """The browser's Django session. CSRF is checked on unsafe methods, but only once we know the
    caller is logged in, so an anonymous call gets 401 rather than a confusing CSRF 403.

    The session's user is read in one lane job (`autobot.sessions.session_user`: Django's
    `get_user` steps with the rows read by SQL compiled once), and with `prefetch` a GET list
    operation's page is read in that same job, as `BearerAuth` does (autobot/prefetch.py)."""

    param_name = settings.SESSION_COOKIE_NAME

    def __init__(self, prefetch=None):
        super().__init__(csrf=False)
        self.prefetch = prefetch

    async def authenticate(self, request: HttpRequest, key):
        if not key:
            return None
        prefetch = self.prefetch if self.prefetch is not None and request.method in self.prefetch.methods else None
        values = None if prefetch is None else prefetch.guess(request)
        user, result = await lanes.run(_session_user_and_read, request, prefetch, values)
        if not user.is_authenticated:
            return None
        # Handlers read request.user; left lazy, it would query the database synchronously.
        request.user = user
        if not getattr(request, "_ninja_csrf_exempt", False) and check_csrf(request) is not None:
            raise Forbidden("CSRF check failed: send the X-CSRFToken header with the csrftoken cookie",
                            code="csrf_failed")
        if prefetch is not None:
            prefetch.keep(request, user, values, result)
        return user


def _session_user_and_read(request: HttpRequest, prefetch, values: dict | None):
    """The session's user (kept for `request.user` and `request.auser()`, as pages keep it) and,
    for a signed-in user, the operation's read: one lane job."""
    attach_user(request)
    user = request._cached_user
    return user, (prefetch.run_with(user, values) if prefetch is not None and user.is_authenticated else None)


api_auth = [BearerAuth(), SessionAuth()]


def token_reading(prefetch) -> list:
    """`api_auth` for an operation whose read (a GET list's page, the chat message POST's session)
    a call does in the same lane job as its token or session check (`autobot.prefetch.Prefetch`).
    The same classes, so the OpenAPI document is the same."""
    return [BearerAuth(prefetch), SessionAuth(prefetch)]

__all__ = ["AppError", "BearerAuth", "SessionAuth", "api_auth", "read_only", "token_authenticate", "token_create",
           "token_reading", "token_revoke"]
