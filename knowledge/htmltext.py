"""The text of an HTML page without building a tree: for pages `knowledge.htmlscan` finds too
complex for the tree builder. Linear time whatever the markup; the words all come through, the
structure does not."""

from __future__ import annotations

import html as htmllib
from dataclasses import dataclass, field

from knowledge.htmlscan import (
    ATTRIBUTE,
    BREAKOUT,
    FONT_BREAKOUT,
    FOREIGN_ROOTS,
    FORMATTING,
    INTEGRATION_POINTS,
    RAW_END,
    RAW_TEXT,
    SPACE,
    SPECIAL,
    TOKEN,
    self_closing,
)

_BLOCK_BREAKS = SPECIAL | {"br", "tr", "td", "th", "li", "option"}
_HIDDEN = {"script", "style"}  # inside <svg> or <math> too, where their content is markup, not raw text


@dataclass
class PlainText:
    title: str = ""
    text: str = ""
    links: list[str] = field(default_factory=list)
    robots: str = ""


class _Foreign:
    """Where the reader is in SVG and MathML: the open roots, their integration points (whose
    content is HTML again) and the <script>s and <style>s inside them (whose content is hidden).
    Only these are kept, so every step is O(1) amortised."""

    def __init__(self) -> None:
        self.stack: list[str] = []
        self.count: dict[str, int] = {}
        self.hidden = 0

    def inside(self) -> bool:
        """Whether the markup here is SVG or MathML (not HTML: outside, or in an integration point)."""
        return bool(self.stack) and self.stack[-1] not in INTEGRATION_POINTS

    def push(self, name: str) -> None:
        self.stack.append(name)
        self.count[name] = self.count.get(name, 0) + 1
        self.hidden += name in _HIDDEN

    def pop(self) -> None:
        name = self.stack.pop()
        self.count[name] -= 1
        self.hidden -= name in _HIDDEN

    def start(self, name: str, attributes: str) -> bool:
        """A start tag; True if it was SVG or MathML content, which the reader handles no further."""
        inside = self.inside()
        if inside and (name in BREAKOUT or (name == "font" and FONT_BREAKOUT.search(attributes))):
            while self.inside():  # an HTML element: the tree builder leaves the SVG or MathML for it
                self.pop()
            inside = False
        if name in FOREIGN_ROOTS or inside:
            if not self_closing(attributes) and (name in FOREIGN_ROOTS or name in INTEGRATION_POINTS
                                                 or name in _HIDDEN):
                self.push(name)
            return True
        return False

    def end(self, name: str) -> None:
        if name in ("p", "br") and self.inside():
            while self.inside():
                self.pop()
        elif self.count.get(name):
            while self.stack[-1] != name:
                self.pop()
            self.pop()


def plain_text(html: str) -> PlainText:
    """The text of ``html``: tags become spaces or line breaks, scripts, styles and comments go,
    entities are decoded."""
    out = PlainText()
    parts: list[str] = []
    search = TOKEN.search
    foreign = _Foreign()
    position, end, noscript = 0, len(html), 0
    while position < end:
        match = search(html, position)
        stop = match.start() if match else end
        if stop > position and not noscript and not foreign.hidden:
            parts.append(htmllib.unescape(html[position:stop]))
        if match is None or (match.group(2) and not match.group(4)):
            break
        position = match.end()
        name = (match.group(2) or "").lower()
        if not name:
            continue
        attributes = match.group(3)
        if match.group(1):
            foreign.end(name)
            if name == "noscript" and noscript:
                noscript -= 1
        else:
            # SVG and MathML have no raw text: a <script> there holds markup, a <script/> nothing.
            if not foreign.start(name, attributes):
                if name in RAW_TEXT:
                    position = _raw_text(out, parts, html, name, position, hidden=bool(noscript or foreign.hidden))
                elif name == "noscript":
                    noscript += 1
            _read_attributes(out, name, attributes)
        if name in _BLOCK_BREAKS:
            parts.append("\n\n")
        elif name not in FORMATTING:
            parts.append(" ")
    out.text = "".join(parts)
    return out


def _read_attributes(out: PlainText, name: str, attributes: str) -> None:
    """A link's address (unless rel=nofollow), a robots meta tag's directives."""
    if name == "a":
        link = _attributes(attributes)
        href = htmllib.unescape(link.get("href", "")).strip()
        if href and "nofollow" not in link.get("rel", "").lower():
            out.links.append(href)
    elif name == "meta":
        meta = _attributes(attributes)
        if meta.get("name", "").lower() == "robots":
            out.robots += " " + meta.get("content", "").lower()


def _raw_text(out: PlainText, parts: list[str], html: str, name: str, start: int, *, hidden: bool) -> int:
    """An HTML element whose content is text up to its end tag: the page's title, a text area's
    words, or nothing (scripts, styles …). Where its end tag starts."""
    closing = RAW_END[name].search(html, start)
    stop = closing.start() if closing else len(html)
    if name == "title" and not out.title:
        out.title = " ".join(htmllib.unescape(html[start:stop]).split())
    elif name == "textarea" and not hidden:
        parts.append(htmllib.unescape(html[start:stop]))
    return stop


def _attributes(text: str) -> dict[str, str]:
    """A tag's attributes as the tokenizer reads them (names in lower case, the first of a name
    kept), values as written (entities not decoded)."""
    found: dict[str, str] = {}
    for match in ATTRIBUTE.finditer(text):
        item = match.group()
        equals = item.find("=", 1)  # a name may start with "=", never hold one after that
        name = (item if equals < 0 else item[:equals]).rstrip(SPACE).lower()
        value = "" if equals < 0 else item[equals + 1:].lstrip(SPACE)
        if value[:1] in ("'", '"'):
            value = value[1:-1] if len(value) > 1 and value[-1] == value[0] else value[1:]
        found.setdefault(name, value)
    return found
