import ipaddress
import json
import re


def _valid_ip(value: str | None) -> str | None:
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


# JSON nesting deeper than this is refused before parsing: the parser (and pydantic after it)
# recurse once per level, and a 10,000-deep body would otherwise end in RecursionError.
MAX_JSON_DEPTH = 64
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_JSON_BRACKET = re.compile(rb"[\[\]{}]")


def json_too_deep(raw: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    if raw.count(b"[") + raw.count(b"{") <= limit:  # the common case costs two scans in C
        return False
    depth = 0
    for bracket in _JSON_BRACKET.findall(_JSON_STRING.sub(b"", raw)):
        depth += 1 if bracket in (b"[", b"{") else -1
        if depth > limit:
            return True
    return False


def json_loads(raw: bytes | str):
    """json.loads with the nesting bounded (ValueError past MAX_JSON_DEPTH)."""
    data = raw.encode() if isinstance(raw, str) else raw
    if json_too_deep(data):
        raise ValueError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    return json.loads(data)
