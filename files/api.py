"""REST API for the files area, mounted at /api/files/. Thin: parse, call a service, format.

Every endpoint takes ``?user=<username>`` so staff can work in another user's area; for
anyone else another user's area is 404.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from urllib.parse import urlencode

from django.http import QueryDict
from django.utils.datastructures import MultiValueDict
from ninja import Query, Router, Status

from autobot.auth import BearerAuth, SessionAuth
from autobot.errors import AppError, BadRequest, errors
from autobot.http import client_ip
from files import services
from files.asgi import SCOPE_KEY, ClientDisconnected
from files.responses import file_response
from files.schemas import FileEntryOut, FileListOut, MkdirIn, MoveIn, PreviewOut, UploadOut

router = Router(tags=["files"])

AREA = Query(None, alias="user", description="staff only: another user's area (a username)")
BUFFERED_READ = 256 * 1024

_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["files"],
                    "properties": {
                        "path": {"type": "string", "description": "destination folder; send before the files"},
                        "overwrite": {"type": "boolean", "default": False},
                        "files": {"type": "array", "items": {"type": "string", "format": "binary"}},
                    },
                }
            }
        },
    }
}

_ERROR_JSON = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
_DOWNLOAD_RESPONSES = {
    "responses": {
        200: {"description": "The file, with its own Content-Type",
              "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}}},
        206: {"description": "The requested range (Range header)",
              "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}}},
        304: {"description": "Not modified (If-None-Match)"},
        416: {"description": "Range not satisfiable", "content": _ERROR_JSON},
    }
}
_PREVIEW_RESPONSES = {
    "responses": {
        200: {"description": "The preview; with raw=true, the image itself",
              "content": {"image/*": {"schema": {"type": "string", "format": "binary"}}}},
        206: {"description": "raw=true: the requested range", "content": {"image/*": {}}},
        304: {"description": "raw=true: not modified (If-None-Match)"},
        416: {"description": "raw=true: range not satisfiable", "content": _ERROR_JSON},
    }
}


@router.get("/", response={200: FileListOut, **errors(400, 403, 404)},
            summary="List a folder (folders first, then by name)")
async def entries_list(
    request,
    path: str = "",
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0),
    area: str | None = AREA,
):
    items, count, name = await services.entries_list(
        user=request.auth, path=path, area=area, limit=limit, offset=offset
    )
    return {"items": items, "count": count, "path": path, "area": name}


@router.delete("/", response={200: FileEntryOut, **errors(400, 403, 404, 409)},
               summary="Delete a file, or a folder (non-empty ones need recursive=true)")
async def entry_delete(request, path: str = Query(..., min_length=1, description="not the root"),
                       recursive: bool = False, area: str | None = AREA):
    return await services.entry_delete(
        user=request.auth, path=path, recursive=recursive, area=area, ip=client_ip(request)
    )


@router.post("/mkdir", response={201: FileEntryOut, **errors(400, 403, 404, 409)}, summary="Make a folder")
async def dir_make(request, payload: MkdirIn, area: str | None = AREA):
    entry = await services.dir_make(user=request.auth, path=payload.path, area=area, ip=client_ip(request))
    return Status(201, entry)


@router.post("/move", response={200: FileEntryOut, **errors(400, 403, 404, 409)},
             summary="Move or rename (dst is the full new path)")
async def entry_move(request, payload: MoveIn, area: str | None = AREA):
    return await services.entry_move(
        user=request.auth,
        src=payload.src,
        dst=payload.dst,
        overwrite=payload.overwrite,
        area=area,
        ip=client_ip(request),
    )


@router.get("/download", response={200: None, **errors(400, 403, 404)}, openapi_extra=_DOWNLOAD_RESPONSES,
            summary="Download a file (streams; honours Range, If-Range, If-None-Match)")
async def download(request, path: str = Query(..., min_length=1), area: str | None = AREA):
    opened = await services.file_download(user=request.auth, path=path, area=area)
    return file_response(request, opened, inline=False)


@router.get(
    "/preview",
    response={200: PreviewOut, **errors(400, 403, 404, 415)},
    openapi_extra=_PREVIEW_RESPONSES,
    summary="Preview: text (first 64 KiB, encoding detected), images (raw=true serves them inline), else metadata",
)
async def preview(request, path: str = Query(..., min_length=1), raw: bool = False, area: str | None = AREA):
    if raw:
        opened = await services.file_download(user=request.auth, path=path, area=area)
        if not opened.inline_safe:
            opened.close()
            raise AppError(
                "only PNG, JPEG, GIF, WebP, AVIF and BMP images are shown inline; download this file",
                code="not_previewable",
                status=415,
            )
        return file_response(request, opened, inline=True)
    result = await services.file_preview(user=request.auth, path=path, area=area)
    url = None
    if result.kind == "image":
        query = {"path": result.entry.path, "raw": "true", **({"user": area} if area else {})}
        url = f"{request.path}?{urlencode(query)}"
    return {**result.__dict__, "url": url}


async def _body(request) -> AsyncIterator[bytes]:
    """The request body in chunks: streamed from the socket when files.asgi is installed,
    otherwise from Django's already-buffered body (read in a thread)."""
    stream = getattr(request, "scope", {}).get(SCOPE_KEY)
    try:
        if stream is not None:
            async for chunk in stream.chunks():
                yield chunk
            return
        while chunk := await asyncio.to_thread(request.read, BUFFERED_READ):
            yield chunk
    except ClientDisconnected:
        raise BadRequest("the upload was interrupted before it finished", code="upload_aborted") from None


class UploadSessionAuth(SessionAuth):
    """Session auth for uploads, with CSRF taken from the X-CSRFToken header only.

    Django's CSRF check reads ``request.POST`` first, which would parse (and buffer) the whole
    multipart body before the view can stream it; an empty POST makes it fall back to the header.
    """

    # Must stay ``async``: ninja decides how to call an authenticator by inspecting
    # ``authenticate``. A plain ``def`` returning the parent's coroutine was run in a thread and its
    # (unawaited, truthy) coroutine taken as the user: every caller "authenticated" without the
    # session or CSRF ever being checked.
    async def authenticate(self, request, key):
        request._post, request._files = QueryDict(), MultiValueDict()
        return await super().authenticate(request, key)


@router.post(
    "/upload",
    auth=[BearerAuth(), UploadSessionAuth()],
    response={201: UploadOut, **errors(400, 403, 404, 409, 413, 503)},
    openapi_extra=_UPLOAD_BODY,
    summary="Upload files (multipart: path, overwrite, then files); streams to disk, all or nothing",
)
async def upload(
    request,
    path: str | None = Query(None, description="destination folder (else the 'path' form field)"),
    overwrite: bool | None = Query(None, description="replace existing files (else the 'overwrite' field)"),
    area: str | None = AREA,
):
    entries = await services.files_upload(
        user=request.auth,
        content_type=request.META.get("CONTENT_TYPE"),
        body=_body(request),
        path=path,
        overwrite=overwrite,
        area=area,
        ip=client_ip(request),
    )
    return Status(201, {"items": entries, "count": len(entries)})
