"""One error hierarchy. Services raise these; the API and consumers turn them into
`{"detail": ..., "code": ...}` with the class's status (or a 44xx WebSocket close code)."""

from ninja import Field, Schema

from autobot import redisconf


class AppError(Exception):
    status = 400
    code = "bad_request"
    fatal = False  # on a WebSocket: after the error frame, close with `close_code`

    def __init__(self, detail: str, *, code: str | None = None, status: int | None = None,
                 fatal: bool | None = None):
        super().__init__(detail)
        self.detail = detail
        if code:
            self.code = code
        if status:
            self.status = status
        if fatal is not None:
            self.fatal = fatal

    def to_dict(self) -> dict:
        return {"detail": self.detail, "code": self.code}

    @property
    def close_code(self) -> int:
        """WebSocket close code: 4000 + the HTTP status (4401, 4403, 4404 ...)."""
        return 4000 + self.status if 400 <= self.status < 500 else 1011


class BadRequest(AppError):
    status = 400
    code = "bad_request"


class Unauthorized(AppError):
    status = 401
    code = "unauthorized"


class Forbidden(AppError):
    status = 403
    code = "forbidden"


class NotFound(AppError):
    status = 404
    code = "not_found"


class Conflict(AppError):
    status = 409
    code = "conflict"


class LimitExceeded(AppError):
    status = 413
    code = "too_large"


class InvalidInput(AppError):
    status = 422
    code = "invalid_input"


class RateLimited(AppError):
    status = 429
    code = "rate_limited"


class Unavailable(AppError):
    status = 503
    code = "unavailable"


class RedisUnavailable(Unavailable):
    """Redis (the channel layer, or another use of it) did not answer: a moment's outage, not a
    bug; the client tries again (a page's socket reconnects)."""

    code = "redis_unavailable"

    def __init__(self, detail: str = "the server's Redis does not answer; try again in a moment", **kwargs):
        super().__init__(detail, **kwargs)


REDIS_FAULTS = redisconf.REDIS_FAULTS  # here too: the errors a client sees as redis_unavailable


class ShuttingDown(Unavailable):
    """The process is stopping: it takes no new long-running work (another worker, or this one
    restarted, will)."""

    code = "shutting_down"


class Timeout(AppError):
    status = 504
    code = "timeout"


class ErrorDetail(Schema):
    loc: list[str | int] = Field(description="where: 'body', 'query' or 'path', then the field names")
    msg: str
    type: str


class Error(Schema):
    """What every error response carries; declared once and referenced by every operation."""

    detail: str = Field(description="one readable sentence")
    code: str = Field(description="machine-readable, snake_case", examples=["not_found"])


class ValidationErrorOut(Error):
    errors: list[ErrorDetail] = Field(default_factory=list,
                                      description="one item per invalid value (when the request failed the schema)")


def errors(*statuses: int) -> dict[int, type[Schema]]:
    """The response declarations of the errors an operation may return beyond the ones every
    operation gets from its shape (see autobot/openapi.py): `response={200: X, **errors(409)}`."""
    return {status: ValidationErrorOut if status == 422 else Error for status in statuses}
