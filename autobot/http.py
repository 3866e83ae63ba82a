import functools
import ipaddress
import json
import re

from pydantic_core import PydanticSerializationError, to_json

# Where the REST API is mounted (autobot/urls.py): middleware, the lanes and the upload stream tell
# its requests by it.
API_PREFIX = "/api/"


@functools.lru_cache(maxsize=1024)
def _valid_ip(value: str | None) -> str | None:
    """The address in its normal form, or None. Remembered: every request asks it for its peer
    (~2.6 µs with `ipaddress`), and peers are few; bounded, as a client picks its own IPv6 address."""
    if not value:
        return None
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def client_ip(request) -> str | None:
    """The peer address. X-Forwarded-For is not trusted: put a proxy's real-IP module in front
    and set REMOTE_ADDR there if you need the original client."""
    return _valid_ip(request.META.get("REMOTE_ADDR"))


def scope_ip(scope) -> str | None:
    client = scope.get("client")
    return _valid_ip(client[0]) if client else None


async def refuse(send, status: int, detail: str, code: str, headers: list | None = None) -> None:
    """Answer a raw ASGI request, before Django sees it, with the API's error body: {"detail", "code"}."""
    body = json.dumps({"detail": detail, "code": code}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


# JSON nesting deeper than this is refused before parsing: the parser (and pydantic after it)
# recurse once per level, and a 10,000-deep body would otherwise end in RecursionError.
MAX_JSON_DEPTH = 64
_BRACKETS = bytes.maketrans(b"{}", b"[]")  # objects and arrays nest alike
_NOT_BRACKETS = bytes(c for c in range(256) if c not in b"[]{}")


@functools.lru_cache(maxsize=4)
def _nesting(limit: int) -> re.Pattern:
    """Balanced brackets at most `limit` deep: `(?:\\[(?:\\[ … \\])*+\\])*+`. Possessive, so a
    match never backtracks: one pass over the text, in C, whatever the text."""
    pattern = b""
    for _ in range(limit):
        pattern = rb"(?:\[" + pattern + rb"\])*+"
    return re.compile(pattern)


def _outside_strings(raw: bytes) -> bytes:
    """`raw` without its JSON strings, as the parser reads them: escaped backslashes and quotes
    first, then every other piece between quotes is inside a string (an unterminated one runs to
    the end, as it does for the parser). Linear, in C."""
    if b'"' not in raw:
        return raw
    if b"\\" in raw:
        raw = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    return b"".join(raw.split(b'"')[::2])


def json_too_deep(raw: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether the value the parser would read first nests more than `limit` arrays and objects
    deep (brackets inside strings don't count). Only that value: the parser stops after it
    ("Extra data") or at its first fault, so nothing past it is ever parsed.

    Done in C, a few linear passes (bench/json_depth.py): the common case is two counts; else the
    strings are cut out, the brackets kept, and one possessive regex matches the first value."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    brackets = _outside_strings(raw).translate(_BRACKETS, _NOT_BRACKETS)
    unclosed = brackets.count(b"[") - brackets.count(b"]")
    if unclosed > limit:
        return True
    if not brackets.startswith(b"["):
        return False  # a stray closing bracket comes first: the parser stops there at the latest
    # Closing what is left open changes no depth, and makes the first value end somewhere.
    closed = brackets + b"]" * unclosed if unclosed > 0 else brackets
    return _nesting(limit).match(closed).end() == 0


def json_loads(raw: bytes | str):
    """json.loads with the nesting bounded (ValueError past MAX_JSON_DEPTH)."""
    data = raw.encode() if isinstance(raw, str) else raw
    encoding = json.detect_encoding(data)
    if encoding not in ("utf-8", "utf-8-sig"):
        # The parser reads such bytes as UTF-16 or UTF-32, where one character can hold the byte of
        # a quote or bracket ("Ģ" is 22 01 in UTF-16-LE): measure and parse the text it reads.
        data = data.decode(encoding, "surrogatepass").encode()
    if json_too_deep(data):
        raise ValueError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    return json.loads(data)


def json_string(text: str) -> str:
    """The JSON literal of ``text``, character for character what ``json.dumps(text,
    ensure_ascii=False)`` writes (quotes, backslashes and control characters escaped, the rest
    as is), but from pydantic_core's encoder: ~40 µs for 64 KiB against ~95 µs (0.2 against
    1.5 µs for a keystroke's echo). For the terminal's output, which a flooding program sends
    as 64 KiB a frame and a recording line each, on the event loop. Text it refuses (a lone
    surrogate, which JSON from a client can carry) goes json's way."""
    try:
        return to_json(text).decode()
    except PydanticSerializationError:
        return json.dumps(text, ensure_ascii=False)
