"""Pure HTTP helpers for serving files: Range, conditional requests, Content-Disposition.

No I/O and no Django, so the rules are easy to test on their own.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from urllib.parse import quote

# More ranges than this in one request is a resource-exhaustion trick, not a download
# manager: serve the whole file instead (RFC 9110 §14.2 allows ignoring Range).
MAX_RANGES = 16
# ASCII digits only (str.isdigit() also accepts "²" and other digits int() rejects), and no
# more of them than any real offset needs (int() refuses over 4300 digits with a ValueError).
_DIGITS = re.compile(r"[0-9]{0,19}")


class RangeNotSatisfiable(Exception):
    """Every requested range lies beyond the end of the representation (→ 416)."""


def parse_range(header: str | None, size: int) -> list[tuple[int, int]] | None:
    """Parse a ``Range`` header into sorted, merged, inclusive ``(start, end)`` pairs.

    Returns ``None`` when the whole file should be served (no header, a unit other than
    bytes, a syntax error, too many ranges, or ranges covering everything), and raises
    ``RangeNotSatisfiable`` when the header is valid but no range overlaps the file.
    """
    if not header:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or not spec.strip():
        return None
    wanted: list[tuple[int, int]] = []
    pieces = [p.strip() for p in spec.split(",")]
    if len(pieces) > MAX_RANGES or not any(pieces):  # `bytes=,` names no range: a syntax error
        return None
    for piece in pieces:
        if not piece:
            continue
        first, dash, last = piece.partition("-")
        first, last = first.strip(), last.strip()
        if not dash or not _DIGITS.fullmatch(first) or not _DIGITS.fullmatch(last):
            return None
        if first == "":
            if last == "":
                return None
            suffix = int(last)
            if suffix == 0:
                continue
            wanted.append((max(size - suffix, 0), size - 1))
            continue
        start = int(first)
        if last and int(last) < start:
            return None
        end = int(last) if last else size - 1
        if start >= size:
            continue
        wanted.append((start, min(end, size - 1)))
    if not wanted:
        raise RangeNotSatisfiable()
    merged = _merge(sorted(wanted))
    if merged == [(0, size - 1)]:
        return None
    return merged


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out = [ranges[0]]
    for start, end in ranges[1:]:
        last_start, last_end = out[-1]
        if start <= last_end + 1:
            out[-1] = (last_start, max(last_end, end))
        else:
            out.append((start, end))
    return out


def make_etag(*, size: int, mtime_ns: int, inode: int) -> str:
    """A strong validator: changes whenever the file is replaced or rewritten."""
    return f'"{inode:x}-{size:x}-{mtime_ns:x}"'


def http_date(moment: datetime) -> str:
    return format_datetime(moment.astimezone(UTC), usegmt=True)


def _parse_http_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed is None:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _etag_listed(header: str, etag: str) -> bool:
    if header.strip() == "*":
        return True
    weak_free = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == weak_free for tag in header.split(","))


def not_modified(
    *,
    if_none_match: str | None,
    if_modified_since: str | None,
    etag: str,
    modified: datetime,
) -> bool:
    """True when a GET can be answered with 304 (RFC 9110 §13.2.2 precedence)."""
    if if_none_match:
        return _etag_listed(if_none_match, etag)
    since = _parse_http_date(if_modified_since)
    return since is not None and modified.replace(microsecond=0) <= since


def range_applies(*, if_range: str | None, etag: str, modified: datetime) -> bool:
    """``If-Range``: honour Range only if the client's copy is still current."""
    if not if_range:
        return True
    if_range = if_range.strip()
    if if_range.startswith(('"', "W/")):
        # Weak validators never match for If-Range.
        return not if_range.startswith("W/") and if_range == etag
    since = _parse_http_date(if_range)
    return since is not None and modified.replace(microsecond=0) == since


def content_disposition(filename: str, *, inline: bool = False) -> str:
    """RFC 6266: an ASCII fallback ``filename`` plus the exact UTF-8 ``filename*``."""
    kind = "inline" if inline else "attachment"
    fallback = "".join(c if 0x20 <= ord(c) < 0x7F and c not in '"\\%' else "_" for c in filename) or "download"
    encoded = quote(filename, safe="")
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"


# Types a browser may render inline from the user's files without running script.
# Never text/html, image/svg+xml, JavaScript, XML or PDF (PDF viewers run script too).
INLINE_SAFE_TYPES = frozenset(
    {
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "image/avif",
        "image/bmp",
    }
)

# Sent with every byte served from a user's area.
SAFE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; img-src 'self'; sandbox",
    "Cross-Origin-Resource-Policy": "same-origin",
}
