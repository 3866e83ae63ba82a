"""Refuse request bodies over `MAX_REQUEST_BYTES` before Django (or the MCP and A2A SDKs, which
read a body whole into memory) reads them.

Django's ASGI handler reads the whole request body — to a temporary file past 2.5 MB — before any
middleware or view runs, authentication included. Without a cap anyone, signed in or not, could
make a worker write an endless body to disk. A body declared too large (`Content-Length`) is
refused at once; one that grows too large while it arrives (chunked) is cut off there, and the
client gets the same 413. Uploads to the files area do not come through here whole:
files/asgi.py streams them to their folder, under the area's quota.
"""

from __future__ import annotations

from autobot.http import refuse
from autobot.memo import request_settings
from files.asgi import SCOPE_KEY as STREAMED


def request_limit() -> int:
    # A document upload (multipart, with its form fields) must always fit.
    return max(request_settings.MAX_REQUEST_BYTES, request_settings.KNOWLEDGE_MAX_UPLOAD_BYTES + 1024 * 1024)


def _declared_length(scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _too_large(send, limit: int) -> None:
    await refuse(send, 413, f"the request body is over the limit of {limit} bytes", "too_large",
                 [(b"connection", b"close")])  # the rest of the body is never read


class BodyLimitMiddleware:
    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        # A files-area upload's body never reaches Django (files/asgi.py streams it, under the area's
        # own limits): its Content-Length is no business of this cap.
        if scope["type"] != "http" or STREAMED in scope:
            return await self.app(scope, receive, send)
        limit = request_limit()
        declared = _declared_length(scope)
        if declared is not None and declared > limit:
            return await _too_large(send, limit)
        received, over, started = 0, False, False

        async def capped_receive():
            nonlocal received, over
            if over:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    over = True  # Django sees a client that went away, and answers nothing
                    return {"type": "http.disconnect"}
            return message

        async def tracked_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, capped_receive, tracked_send)
        if over and not started:
            await _too_large(send, limit)
