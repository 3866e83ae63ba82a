"""Stream upload bodies past Django's request buffering.

Django's ASGI handler reads the *whole* request body into a spooled temporary file (writing it
from the event loop) before any view runs, so a 1 GB upload would first land in /tmp. For
``POST /api/files/upload`` this middleware hands Django an empty body and puts the real
``receive`` channel in the scope instead; the upload view then pulls the body chunk by chunk
and writes it straight to the destination folder. Everything else about the request —
session, CSRF, token auth, middleware, error mapping — is Django's as usual.

``autobot/asgi.py`` wraps the HTTP app in it. Without it uploads would still work (the view
reads Django's buffered body in a thread).
Note: daphne (Twisted) buffers request bodies itself before calling the app; uvicorn streams.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from autobot.http import API_PREFIX

UPLOAD_PATH = f"{API_PREFIX}files/upload"
SCOPE_KEY = "autobot.files.body"


class ClientDisconnected(Exception):
    """The client went away before the body was complete."""


class BodyStream:
    """The real request body, readable once, plus a stand-in ``receive`` for Django."""

    def __init__(self, receive) -> None:
        self._receive = receive
        self._never = asyncio.Event()
        self._handed_empty_body = False
        self.consumed = False

    async def django_receive(self) -> dict:
        if not self._handed_empty_body:
            self._handed_empty_body = True
            return {"type": "http.request", "body": b"", "more_body": False}
        # Django listens for a disconnect while the view runs. The upload view sees a disconnect
        # itself (ClientDisconnected) and cleans up before answering; letting Django cancel it
        # instead would interrupt that cleanup. So this never reports one; Django cancels this
        # wait when the response is done.
        await self._never.wait()
        return {"type": "http.disconnect"}

    async def chunks(self) -> AsyncIterator[bytes]:
        if self.consumed:
            raise RuntimeError("the request body has already been read")
        self.consumed = True
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnected("the client disconnected during the upload")
            data = message.get("body", b"")
            if data:
                yield data
            if not message.get("more_body", False):
                return


class StreamingUploadMiddleware:
    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if (scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != UPLOAD_PATH
                or SCOPE_KEY in scope):  # already wrapped further out
            return await self.app(scope, receive, send)
        stream = BodyStream(receive)
        await self.app({**scope, SCOPE_KEY: stream}, stream.django_receive, send)


def streaming_application():
    """The project's ASGI application; autobot/asgi.py already wraps HTTP in this middleware."""
    from autobot.asgi import application

    return application
