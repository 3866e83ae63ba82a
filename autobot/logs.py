"""Secrets never reach the logs: a filter that redacts API tokens and credential-looking query
parameters from log records, attached to the server's access and error loggers.

Tokens belong in the Authorization header, and a token sent in a URL is refused, but uvicorn
logs every request line (and every WebSocket handshake) with its query string before any of
our code sees it; the filter rewrites the record's arguments before a handler formats them.
"""

import logging
import re

_SECRET_PARAM = re.compile(
    r"(?i)([?&;](?:token|access_token|api_key|apikey|key|auth|authorization|password|secret|sessionid)=)[^&;#\s\"']*"
)
_TOKEN = re.compile(r"abt_[A-Za-z0-9_\-]{8,}")
LOGGERS = ("uvicorn.access", "uvicorn.error", "django.request", "django.server", "autobot")


def redact(text: str) -> str:
    return _TOKEN.sub("abt_[redacted]", _SECRET_PARAM.sub(r"\1[redacted]", text))


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(arg) if isinstance(arg, str) else arg for arg in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: redact(v) if isinstance(v, str) else v for k, v in record.args.items()}
        return True


def install() -> None:
    """Attach the filter to the loggers that write request lines (idempotent)."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in logger.filters):
            logger.addFilter(RedactSecrets())
