"""Per-request context (correlation id, client IP) carried through async code by contextvars."""

import contextvars

correlation_id: contextvars.ContextVar[str] = contextvars.ContextVar("correlation_id", default="")
client_ip: contextvars.ContextVar[str | None] = contextvars.ContextVar("client_ip", default=None)
