"""Streaming file responses: conditional GET, Range (single and multiple), safe headers."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

from django.http import HttpResponse, JsonResponse, StreamingHttpResponse

from files.ranges import (
    SAFE_HEADERS,
    RangeNotSatisfiable,
    content_disposition,
    http_date,
    not_modified,
    parse_range,
    range_applies,
)
from files.storage import Download


def _headers(download: Download, *, inline: bool) -> dict[str, str]:
    return {
        "ETag": download.etag,
        "Last-Modified": http_date(download.modified),
        "Accept-Ranges": "bytes",
        # Only safe image types are ever inline; everything else is a download.
        "Content-Disposition": content_disposition(download.name, inline=inline and download.inline_safe),
        "Cache-Control": "private, no-cache",
        **SAFE_HEADERS,
    }


async def _closing(download: Download, pieces: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    try:
        async for piece in pieces:
            yield piece
    finally:
        download.close()


async def _multipart(download: Download, ranges, boundary: str, heads: list[bytes]) -> AsyncIterator[bytes]:
    for (start, end), head in zip(ranges, heads, strict=True):
        yield head
        async for chunk in download.chunks(start, end):
            yield chunk
    yield f"\r\n--{boundary}--\r\n".encode()


def file_response(request, download: Download, *, inline: bool = False) -> HttpResponse | StreamingHttpResponse:
    """Serve an open file, taking ownership of it (it is closed when the response is done)."""
    try:
        return _file_response(request, download, inline=inline)
    except BaseException:
        download.close()  # a bad header must not leak the descriptor
        raise


def _file_response(request, download: Download, *, inline: bool) -> HttpResponse | StreamingHttpResponse:
    headers = _headers(download, inline=inline)
    meta = request.META
    if not_modified(
        if_none_match=meta.get("HTTP_IF_NONE_MATCH"),
        if_modified_since=meta.get("HTTP_IF_MODIFIED_SINCE"),
        etag=download.etag,
        modified=download.modified,
    ):
        download.close()
        return HttpResponse(status=304, headers={k: v for k, v in headers.items() if k in ("ETag", "Last-Modified")})
    ranges = None
    if range_applies(if_range=meta.get("HTTP_IF_RANGE"), etag=download.etag, modified=download.modified):
        try:
            ranges = parse_range(meta.get("HTTP_RANGE"), download.size)
        except RangeNotSatisfiable:
            download.close()
            return JsonResponse(
                {"detail": f"the range is outside the file's {download.size} bytes", "code": "range_not_satisfiable"},
                status=416,
                headers={"Content-Range": f"bytes */{download.size}", **SAFE_HEADERS},
            )
    if ranges is None:
        response = StreamingHttpResponse(
            _closing(download, download.chunks()), content_type=download.content_type, headers=headers
        )
        response["Content-Length"] = str(download.size)
        return response
    if len(ranges) == 1:
        start, end = ranges[0]
        response = StreamingHttpResponse(
            _closing(download, download.chunks(start, end)),
            status=206,
            content_type=download.content_type,
            headers={**headers, "Content-Range": f"bytes {start}-{end}/{download.size}"},
        )
        response["Content-Length"] = str(end - start + 1)
        return response
    boundary = secrets.token_hex(16)
    heads = [
        (
            f"\r\n--{boundary}\r\nContent-Type: {download.content_type}\r\n"
            f"Content-Range: bytes {start}-{end}/{download.size}\r\n\r\n"
        ).encode()
        for start, end in ranges
    ]
    length = sum(len(h) for h in heads) + sum(e - s + 1 for s, e in ranges) + len(f"\r\n--{boundary}--\r\n")
    response = StreamingHttpResponse(
        _closing(download, _multipart(download, ranges, boundary, heads)),
        status=206,
        content_type=f"multipart/byteranges; boundary={boundary}",
        headers=headers,
    )
    response["Content-Length"] = str(length)
    return response
