"""The one NinjaAPI: mounts each app's router under /api/<app>/ and maps every error to
{"detail": ..., "code": ...}."""

import hashlib
import inspect
import logging

from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.http import Http404, UnreadablePostError
from django.http.multipartparser import MultiPartParserError
from django.urls import URLPattern, include, path
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, AuthorizationError, HttpError, ValidationError
from ninja.parser import Parser

from autobot.auth import api_auth
from autobot.errors import REDIS_FAULTS, AppError, BadRequest, RedisUnavailable
from autobot.http import json_loads
from autobot.openapi import AutoBotOpenAPISchema
from autobot.platform_api import router as platform_router
from autobot.renderers import FastJSONRenderer
from autobot.responses import fast_headers, new_response

log = logging.getLogger("autobot.api")


class ObjectParser(Parser):
    """JSON bodies are objects (a list, number, string or null is refused, not coerced into the
    schema) and their nesting is bounded before parsing."""

    def parse_body(self, request):
        try:
            data = json_loads(request.body)
        except ValueError as exc:
            raise BadRequest(f"cannot parse the request body: {exc}", code="bad_request") from None
        if not isinstance(data, dict):
            raise BadRequest("the request body must be a JSON object", code="bad_request")
        return data


class AutoBotAPI(NinjaAPI):
    # Its responses are copies of one made once, whose headers answer the middleware's checks
    # without raising (autobot/responses.py `new_response`).
    def create_response(self, request, data, *, status=None, temporal_response=None):
        """ninja's, but for a response made by `new_response` (tests/platform/test_responses.py
        fails when ninja's changes)."""
        if temporal_response is not None:
            return fast_headers(super().create_response(request, data, temporal_response=temporal_response))
        assert status
        content = self.renderer.render(request, data, response_status=status)
        return new_response(content, self.get_content_type(), status)

    def create_temporal_response(self, request):
        return new_response(b"", self.get_content_type())

    def get_openapi_schema(self, *, path_prefix=None, path_params=None):
        if path_prefix is None:
            path_prefix = self.get_root_path(path_params or {})
        return AutoBotOpenAPISchema(self, path_prefix)


# The sha256 of the sources of ninja's `NinjaAPI.create_response` and `create_temporal_response`,
# which `AutoBotAPI`'s restate.
NINJA_CREATE_RESPONSE_SHA256 = "2c3af207b7dfe705d6d694eb3c26fe2bddbeca47a0eb23c50cae98dab245cfc7"


def ninja_create_response_sha256() -> str:
    sources = inspect.getsource(NinjaAPI.create_response) + inspect.getsource(NinjaAPI.create_temporal_response)
    return hashlib.sha256(sources.encode()).hexdigest()


api = AutoBotAPI(
    title="AutoBot API",
    version="1",
    description=(
        "Self-hosted AI operations assistant. Authenticate with a session (browser, CSRF on unsafe "
        "methods) or `Authorization: Bearer <token>` (create one with `manage.py create_api_token USER` "
        "or in the admin). A read-only token (`scope: read`) is refused every unsafe method with "
        "`403 read_only_token`. Errors are `{\"detail\": ..., \"code\": ...}`; lists are `{items, count}` "
        "with `?limit=&offset=`."
    ),
    auth=api_auth,
    urls_namespace="api",
    docs_url="/docs",
    openapi_url="/openapi.json",
    parser=ObjectParser(),
    renderer=FastJSONRenderer(),
)


def _error(request, status: int, detail: str, code: str, **extra):
    return api.create_response(request, {"detail": detail, "code": code, **extra}, status=status)


@api.exception_handler(AppError)
def on_app_error(request, exc: AppError):
    return _error(request, exc.status, exc.detail, exc.code)


@api.exception_handler(ValidationError)
def on_validation_error(request, exc: ValidationError):
    errors = [{k: v for k, v in err.items() if k in ("loc", "msg", "type")} for err in exc.errors]
    first = errors[0] if errors else {}
    where = ".".join(str(part) for part in first.get("loc", [])[1:]) or "request"
    detail = f"invalid {where}: {first.get('msg', 'bad value')}"
    return _error(request, 422, detail, "validation_error", errors=errors)


@api.exception_handler(AuthenticationError)
def on_auth_error(request, exc):
    return _error(request, 401, "authentication required: log in or send Authorization: Bearer <token>",
                  "not_authenticated")


@api.exception_handler(AuthorizationError)
def on_authz_error(request, exc):
    return _error(request, 403, "you are not allowed to do this", "forbidden")


@api.exception_handler(Http404)
def on_not_found(request, exc):
    return _error(request, 404, str(exc) or "not found", "not_found")


@api.exception_handler(RequestDataTooBig)
def on_too_big(request, exc):
    return _error(request, 413, "the request body is too large", "too_large")


@api.exception_handler(TooManyFieldsSent)
def on_too_many_fields(request, exc):
    return _error(request, 400, "the request has too many fields", "bad_request")


_HTTP_CODES = {400: "bad_request", 401: "not_authenticated", 403: "forbidden", 404: "not_found",
               405: "method_not_allowed", 413: "too_large", 429: "rate_limited"}


@api.exception_handler(MultiPartParserError)
@api.exception_handler(UnreadablePostError)
@api.exception_handler(TooManyFilesSent)
def on_bad_multipart(request, exc):
    return _error(request, 400, f"cannot parse the multipart body: {exc}", "bad_request")


@api.exception_handler(HttpError)
def on_http_error(request, exc: HttpError):
    if isinstance(exc.__cause__, AppError):  # ninja wraps our parser's refusal in its own 400
        return on_app_error(request, exc.__cause__)
    return _error(request, exc.status_code, str(exc), _HTTP_CODES.get(exc.status_code, "http_error"))


@api.exception_handler(Exception)
def on_unexpected(request, exc):
    if isinstance(exc, REDIS_FAULTS):  # an outage, not a bug: 503, and no stack in the log
        log.warning("%s %s: Redis did not answer (%r)", request.method, request.path, exc)
        return on_app_error(request, RedisUnavailable())
    log.exception("unhandled error on %s %s", request.method, request.path)
    return _error(request, 500, "internal error: it has been logged", "internal_error")


# Each app's URL names carry the app ("chat_session_list"): ninja names a URL after its handler,
# and two apps' handlers of the same name would otherwise share one and reverse by mount order.
api.add_router("/", platform_router, url_name_prefix="platform")


def _mount_app_routers():
    import importlib

    for app in ("terminal", "knowledge", "chat", "files", "agents"):
        module = importlib.import_module(f"{app}.api")
        api.add_router(f"/{app}/", module.router, url_name_prefix=app)


_mount_app_routers()


def grouped_urls(patterns: list[URLPattern]) -> list:
    """Ninja's URL patterns (one flat list, ~60 of them, each tried in order by Django's
    resolver: `/api/chat/sessions` was the 40th) grouped by their first path segment, one
    `include()` per app: a request is matched against a dozen prefixes and then its app's
    patterns only (docs/performance.md, target 1).

    Nothing else changes: the same routes (the resolver joins a group's prefix and its patterns'
    routes back into the flat route, `request.resolver_match.route`, as before), names and
    namespace (the groups have none of their own) and views, so `reverse()` and the OpenAPI
    document are as they were. The groups keep the flat list's order: apps share operation
    names (`session_list` is terminal's and chat's), and for a shared name `reverse()` gives the
    last pattern in order, so putting chat first would change what it gives. Patterns with one
    segment (`health`) stay as they are. Grouping can only change which pattern matches if a
    pattern's first segment is not literal (a converter could match another app's prefix);
    then the list is returned as it is."""
    routes = [str(pattern.pattern) for pattern in patterns]
    if any(route.startswith("<") for route in routes):
        return list(patterns)
    groups: dict[str, list[URLPattern]] = {}  # in the order of their first pattern
    for pattern, route in zip(patterns, routes, strict=True):
        prefix, slash, rest = route.partition("/")
        if slash:
            pattern = path(rest, pattern.callback, pattern.default_args, pattern.name)
        groups.setdefault(f"{prefix}/" if slash else route, []).append(pattern)
    result = []
    for key, members in groups.items():
        if key.endswith("/"):
            result.append(path(key, include(members)))
        else:
            result.extend(members)
    return result


def urls() -> tuple:
    """`api.urls` for `include()`, its patterns grouped by app (`grouped_urls`)."""
    patterns, app_name, namespace = api.urls
    return (grouped_urls(patterns), app_name), namespace
