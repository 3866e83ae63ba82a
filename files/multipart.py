"""An incremental multipart/form-data parser over an async stream of byte chunks.

Django's parser needs the whole body received first; this one yields parts as bytes arrive,
so an upload can go straight to disk with bounded memory. No Django imports.

    async for event in parse(chunks, boundary):
        PartStart(name, filename, headers) → PartData(bytes)* → PartEnd()
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import unquote

MAX_HEADER_BYTES = 16 * 1024
MAX_PARTS = 1000


class MultipartError(Exception):
    """The body is not well-formed multipart/form-data."""


@dataclass(frozen=True)
class PartStart:
    name: str
    filename: str | None
    content_type: str | None


@dataclass(frozen=True)
class PartData:
    data: bytes


@dataclass(frozen=True)
class PartEnd:
    pass


_PARAM = re.compile(r';\s*([A-Za-z0-9_.*-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')


def parse_options(value: str) -> tuple[str, dict[str, str]]:
    """``'form-data; name="a"; filename*=UTF-8''x'`` → ``("form-data", {...})``.

    ``filename*`` (RFC 5987/2231) wins over ``filename`` when both are present.
    """
    main, _, rest = value.partition(";")
    params: dict[str, str] = {}
    for key, raw in _PARAM.findall(";" + rest):
        key = key.lower()
        raw = raw.strip()
        if raw.startswith('"') and raw.endswith('"') and len(raw) >= 2:
            # Browsers never backslash-escape here (they send %22 for a quote), so only undo
            # \" and keep every other backslash: a name like "..\\x" must reach validation.
            raw = raw[1:-1].replace('\\"', '"')
        if key.endswith("*"):
            charset, _, encoded = raw.partition("'")
            _lang, _, encoded = encoded.partition("'")
            try:
                raw = unquote(encoded, encoding=charset or "utf-8", errors="strict")
            except (LookupError, UnicodeDecodeError):
                raise MultipartError(f"cannot decode the {key} parameter") from None
            key = key[:-1]
            params[key] = raw
        else:
            params.setdefault(key, raw)
    return main.strip().lower(), params


def boundary_from(content_type: str | None) -> bytes:
    kind, params = parse_options(content_type or "")
    boundary = params.get("boundary", "")
    if kind != "multipart/form-data" or not boundary or len(boundary) > 200:
        raise MultipartError("expected a multipart/form-data body with a boundary")
    return boundary.encode("latin-1")


def _headers(block: bytes) -> PartStart:
    try:
        text = block.decode("utf-8")
    except UnicodeDecodeError:
        raise MultipartError("part headers must be UTF-8") from None
    headers: dict[str, str] = {}
    for line in text.split("\r\n"):
        if not line:
            continue
        key, colon, value = line.partition(":")
        if not colon:
            raise MultipartError("malformed part header")
        headers[key.strip().lower()] = value.strip()
    kind, params = parse_options(headers.get("content-disposition", ""))
    if kind != "form-data" or "name" not in params:
        raise MultipartError("each part needs Content-Disposition: form-data with a name")
    return PartStart(
        name=params["name"],
        filename=params.get("filename"),
        content_type=headers.get("content-type"),
    )


async def parse(chunks: AsyncIterator[bytes], boundary: bytes) -> AsyncIterator[object]:
    """Yield ``PartStart``/``PartData``/``PartEnd`` events; raise ``MultipartError``."""
    delimiter = b"\r\n--" + boundary
    buf = bytearray(b"\r\n")  # lets the first boundary match the same pattern as the rest
    state = "preamble"
    parts = 0
    async for chunk in chunks:
        buf += chunk
        while True:
            if state == "preamble":
                at = buf.find(delimiter)
                if at < 0:
                    # Keep only a possible partial delimiter.
                    del buf[: max(0, len(buf) - len(delimiter))]
                    break
                del buf[: at + len(delimiter)]
                state = "after_boundary"
            if state == "after_boundary":
                if len(buf) < 2:
                    break
                if buf[:2] == b"--":
                    return  # closing boundary; any epilogue is ignored
                if buf[:2] != b"\r\n":
                    raise MultipartError("malformed boundary line")
                del buf[:2]
                state = "headers"
            if state == "headers":
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    if len(buf) > MAX_HEADER_BYTES:
                        raise MultipartError("part headers are too large")
                    break
                parts += 1
                if parts > MAX_PARTS:
                    raise MultipartError("too many parts")
                yield _headers(bytes(buf[:end]))
                del buf[: end + 4]
                state = "body"
            if state == "body":
                at = buf.find(delimiter)
                if at < 0:
                    # Everything except a possible partial delimiter at the end is data.
                    safe = len(buf) - len(delimiter) + 1
                    if safe > 0:
                        yield PartData(bytes(buf[:safe]))
                        del buf[:safe]
                    break
                if at:
                    yield PartData(bytes(buf[:at]))
                yield PartEnd()
                del buf[: at + len(delimiter)]
                state = "after_boundary"
    raise MultipartError("the body ended before the closing boundary")
