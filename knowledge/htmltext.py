"""The text of an HTML page without building a tree: for pages `knowledge.htmlscan` finds too
complex for the tree builder. Linear time whatever the markup; the words all come through, the
structure does not."""

from __future__ import annotations

import html as htmllib
import re
from dataclasses import dataclass, field

from knowledge.htmlscan import FORMATTING, RAW_END, RAW_TEXT, SPECIAL, TOKEN

_BLOCK_BREAKS = SPECIAL | {"br", "tr", "td", "th", "li", "option"}
_NOT_TEXT = RAW_TEXT - {"textarea", "title"} | {"noscript"}
_HREF = re.compile(r"""(?:^|[\t\n\f\r /])href[\t\n\f\r ]*=[\t\n\f\r ]*("[^"]*"|'[^']*'|[^\t\n\f\r >]*)""", re.I)
_REL = re.compile(r"""(?:^|[\t\n\f\r /])rel[\t\n\f\r ]*=[\t\n\f\r ]*("[^"]*"|'[^']*'|[^\t\n\f\r >]*)""", re.I)
_NAME = re.compile(r"""(?:^|[\t\n\f\r /])name[\t\n\f\r ]*=[\t\n\f\r ]*("[^"]*"|'[^']*'|[^\t\n\f\r >]*)""", re.I)
_CONTENT = re.compile(r"""(?:^|[\t\n\f\r /])content[\t\n\f\r ]*=[\t\n\f\r ]*("[^"]*"|'[^']*'|[^\t\n\f\r >]*)""", re.I)


@dataclass
class PlainText:
    title: str = ""
    text: str = ""
    links: list[str] = field(default_factory=list)
    robots: str = ""


def plain_text(html: str) -> PlainText:
    """The text of ``html`` without building a tree: tags become spaces or line breaks, scripts,
    styles and comments go, entities are decoded. Linear time, whatever the markup."""
    out = PlainText()
    parts: list[str] = []
    search = TOKEN.search
    position, end, skipping = 0, len(html), 0
    while position < end:
        match = search(html, position)
        stop = match.start() if match else end
        if stop > position and not skipping:
            parts.append(htmllib.unescape(html[position:stop]))
        if match is None or (match.group(2) and not match.group(4)):
            break
        position = match.end()
        name = (match.group(2) or "").lower()
        if not name:
            continue
        attributes = match.group(3)
        if match.group(1):
            if name in _NOT_TEXT and skipping:
                skipping -= 1
        elif name in RAW_TEXT:
            closing = RAW_END[name].search(html, position)
            inner_end = closing.start() if closing else end
            if name == "title" and not out.title:
                out.title = " ".join(htmllib.unescape(html[position:inner_end]).split())
            elif name == "textarea" and not skipping:
                parts.append(htmllib.unescape(html[position:inner_end]))
            position = inner_end
        elif name in _NOT_TEXT:
            skipping += 1
        elif name == "a":
            _link(out, attributes)
        elif name == "meta" and _value(_NAME, attributes).lower() == "robots":
            out.robots += " " + _value(_CONTENT, attributes).lower()
        if name in _BLOCK_BREAKS:
            parts.append("\n\n")
        elif name not in FORMATTING:
            parts.append(" ")
    out.text = "".join(parts)
    return out


def _link(out: PlainText, attributes: str) -> None:
    if "nofollow" in _value(_REL, attributes).lower():
        return
    href = htmllib.unescape(_value(_HREF, attributes)).strip()
    if href:
        out.links.append(href)


def _value(pattern: re.Pattern, attributes: str) -> str:
    match = pattern.search(attributes)
    return match.group(1).strip("\"'") if match else ""
