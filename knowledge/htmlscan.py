"""A linear pre-scan of HTML: would a spec-following tree builder (lexbor) take long on it?

The HTML tree-building algorithm is quadratic on some inputs, by design: opening a ``<div>``
looks down the stack of open elements for a ``<p>`` to close, so 100,000 nested ``<div>``s cost
5·10⁹ steps; a formatting element left open across paragraphs is cloned into every later one
(``<p><b id=1>…<b id=1000></p>`` then ``<p>x</p>`` × 20,000 is 20 million elements, 7 GB);
a ``<select>`` costs its options squared; a tag its attributes squared. `too_complex` follows the
markup once, with a simplified model of the tree builder, and names the first bound it crosses.

The model errs on the side of "too complex": it pops an element only where the real tree builder
surely pops it too (a matching end tag with nothing between that would stop the real one, or the
few start tags that close a ``<p>``, ``<li>``, ``<option>`` or table cell on top), so its stack is
never much shallower than the real one; pages that fool it into more depth than they have are
merely read as plain text (`knowledge.htmltext.plain_text`), which is linear whatever the markup.
"""

from __future__ import annotations

import re

# Nesting the model may reach. Browsers stop nesting at 512 (Chromium, WebKit); real pages rarely
# pass 100; at 1,000 the worst flood of a 5 MiB page parses in about five times a normal page's time.
MAX_DEPTH = 1_000
# Formatting elements re-opened by the tree builder (each costs one, plus one per 64 bytes of
# attributes it copies): a normal page has a handful.
MAX_REOPENED = 100_000
MAX_ATTRIBUTES = 256  # on one tag (lexbor checks each against the others)
MAX_OPTIONS = 1_000  # in one <select> (lexbor's cost grows with the square)

# --- the tokenizer's pieces and the element categories (the plain-text reader, knowledge/htmltext.py, uses them too)

SPACE = "\t\n\f\r "  # the HTML tokenizer's whitespace
# Possessive quantifiers throughout: no backtracking, so one pass over the text whatever it holds.
# A comment (abrupt endings and an unterminated one included), or a doctype or bogus comment.
_COMMENT = r"<!--(?:-?>|.*?--!?>|.*)|<[!?][^>]*+>?"
_TAG_NAME = rf"[a-zA-Z][^{SPACE}/>]*+"
# One attribute as the tokenizer splits them: a name, then maybe `=` and a value (quoted or not).
_ATTRIBUTE = rf"[^{SPACE}/>][^{SPACE}/>=]*+(?:[{SPACE}]*+=[{SPACE}]*+(?:\"[^\"]*+\"|'[^']*+'|[^{SPACE}>]*+))?+"
_ATTRIBUTES = rf"(?:[{SPACE}/]++|{_ATTRIBUTE})*+"  # everything between a tag's name and its `>`
ATTRIBUTE = re.compile(_ATTRIBUTE)
# One token: a comment or doctype; or a tag (groups: `/` of an end tag, name, attributes, `>`).
TOKEN = re.compile(rf"{_COMMENT}|<(/?)({_TAG_NAME})({_ATTRIBUTES})(>?)", re.DOTALL)
# Elements whose content is text up to their end tag (in HTML, not inside <svg> or <math>).
RAW_TEXT = {"script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes"}
RAW_END = {name: re.compile(rf"</{name}[{SPACE}/>]", re.IGNORECASE) for name in RAW_TEXT}
_VOID = {
    "area", "base", "basefont", "bgsound", "br", "col", "embed", "frame", "hr", "image", "img", "input", "keygen",
    "link", "meta", "param", "source", "track", "wbr",
}  # fmt: skip
_IGNORED = {"html", "head", "body"}  # merged into the ones the tree builder made, never nested
# The spec's "special" elements: an end tag for an ordinary element stops at them.
SPECIAL = {
    "address", "applet", "area", "article", "aside", "base", "basefont", "bgsound", "blockquote", "body", "br",
    "button", "caption", "center", "col", "colgroup", "dd", "details", "dir", "div", "dl", "dt", "embed",
    "fieldset", "figcaption", "figure", "footer", "form", "frame", "frameset", "h1", "h2", "h3", "h4", "h5", "h6",
    "head", "header", "hgroup", "hr", "html", "iframe", "img", "input", "keygen", "li", "link", "listing", "main",
    "marquee", "menu", "meta", "nav", "noembed", "noframes", "noscript", "object", "ol", "p", "param", "plaintext",
    "pre", "script", "search", "section", "select", "source", "style", "summary", "table", "tbody", "td",
    "template", "textarea", "tfoot", "th", "thead", "title", "tr", "track", "ul", "wbr", "xmp", "mi", "mo", "mn",
    "ms", "mtext", "annotation-xml", "foreignobject", "desc",
}  # fmt: skip
# Elements that end a "has an element in scope" search (and so the end tags that use it).
_SCOPE = {
    "applet", "caption", "html", "table", "td", "th", "marquee", "object", "template", "mi", "mo", "mn", "ms",
    "mtext", "annotation-xml", "foreignobject", "desc", "title",
}  # fmt: skip
_TABLE_SCOPE = {"html", "table", "template"}
FORMATTING = {"a", "b", "big", "code", "em", "font", "i", "nobr", "s", "small", "strike", "strong", "tt", "u"}
_MARKERS = {"applet", "object", "marquee", "template", "td", "th", "caption"}
# Start tags that close an open <p> on top (the spec closes one "in button scope").
_CLOSES_P = {
    "address", "article", "aside", "blockquote", "center", "details", "dialog", "dir", "div", "dl", "fieldset",
    "figcaption", "figure", "footer", "header", "hgroup", "main", "menu", "nav", "ol", "p", "search", "section",
    "summary", "ul", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "listing", "form", "table", "hr", "xmp", "li",
    "dd", "dt", "plaintext",
}  # fmt: skip
_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
_TABLE_PARTS = {"tr", "tbody", "thead", "tfoot", "table"}
_SCOPE_EXTRA = {"li": ("list",), "p": ("button",)}  # list-item scope, button scope
_CELLS = {"td", "th", "tr", "tbody", "thead", "tfoot"}
# Start tags before which the tree builder does not open closed formatting elements again.
_NO_REOPEN = _CLOSES_P | _CELLS | _VOID - {"area", "br", "embed", "img", "image", "input", "keygen", "wbr"} | {
    "table", "caption", "col", "colgroup", "iframe", "noembed", "textarea", "template", "frameset", "frame",
}
FOREIGN_ROOTS = {"svg", "math"}
INTEGRATION_POINTS = {"foreignobject", "desc", "title", "mi", "mo", "mn", "ms", "mtext", "annotation-xml"}
# Start tags that leave <svg>/<math> content for HTML (font only with color, face or size).
BREAKOUT = {
    "b", "big", "blockquote", "body", "br", "center", "code", "dd", "div", "dl", "dt", "em", "embed", "h1", "h2",
    "h3", "h4", "h5", "h6", "head", "hr", "i", "img", "li", "listing", "menu", "meta", "nobr", "ol", "p", "pre",
    "ruby", "s", "small", "span", "strong", "strike", "sub", "sup", "table", "tt", "u", "ul", "var",
}  # fmt: skip
FONT_BREAKOUT = re.compile(r"(?:^|[\t\n\f\r /])(?:color|face|size)[\t\n\f\r ]*(?:=|/|>|$)", re.IGNORECASE)


class TooComplex(Exception):
    pass


def _kinds_of(name: str, foreign: bool) -> tuple[str, ...]:
    kinds = []
    if name in SPECIAL:
        kinds.append("special")
        if name not in ("address", "div", "p"):
            kinds.append("item")  # where the search for an open <li>, <dd> or <dt> stops
    if name in FORMATTING:
        kinds.append("formatting")
    if name in _SCOPE:
        kinds.append("scope")
    if name in _TABLE_SCOPE:
        kinds.append("table")
    if name in ("ol", "ul"):
        kinds.append("list")
    if name == "button":
        kinds.append("button")
    if name in FOREIGN_ROOTS:
        kinds.append("root")
    elif foreign and name in INTEGRATION_POINTS:
        kinds.append("ip")
    return tuple(kinds)


class _Model:
    """The tree builder's stack of open elements and list of active formatting elements, as far
    as they decide its cost. Every step is O(1) amortised: each name and each kind of element
    (special, scope boundary, ...) keeps the stack positions where it stands."""

    def __init__(self) -> None:
        self.stack: list[str] = []
        self.keys: list[tuple | None] = []  # per stack position: its formatting key, if any
        self.where: dict[str, list[int]] = {}
        self.kinds: dict[str, list[int]] = {
            k: [] for k in ("special", "item", "scope", "table", "list", "button", "root", "ip", "formatting")
        }
        self.kinds_of: dict[tuple[str, bool], tuple[str, ...]] = {}
        # Active formatting elements, one level per marker (<td>, <object> ...): open ones (key ->
        # stack position) and closed ones, which the tree builder opens again before text.
        self.open: list[dict[tuple, int]] = [{}]
        self.closed: list[dict[tuple, None]] = [{}]
        self.reopened = 0
        self.options = 0

    def foreign(self) -> bool:
        roots, ips = self.kinds["root"], self.kinds["ip"]
        return bool(roots) and (not ips or roots[-1] > ips[-1])

    def push(self, name: str, key: tuple | None = None) -> None:
        position = len(self.stack)
        if position >= MAX_DEPTH:
            raise TooComplex(f"elements nested more than {MAX_DEPTH:,} deep")
        foreign = self.foreign()
        kinds = self.kinds_of.get((name, foreign))
        if kinds is None:
            kinds = self.kinds_of[name, foreign] = _kinds_of(name, foreign)
        self.stack.append(name)
        self.keys.append(key)
        self.where.setdefault(name, []).append(position)
        for kind in kinds:
            self.kinds[kind].append(position)
        if name in _MARKERS:
            self.open.append({})
            self.closed.append({})
        if key is not None:
            self.open[-1][key] = position

    def pop_to(self, position: int) -> None:
        """Pop every element from the top down to ``position``, inclusive."""
        stack, keys, kinds = self.stack, self.keys, self.kinds.values()
        while len(stack) > position:
            name, key = stack.pop(), keys.pop()
            top = len(stack)
            self.where[name].pop()
            for positions in kinds:
                if positions and positions[-1] == top:
                    positions.pop()
            if name in _MARKERS and len(self.open) > 1:
                self.open.pop()
                self.closed.pop()
            elif key is not None and self.open[-1].get(key) == top:
                del self.open[-1][key]
                self.closed[-1][key] = None

    def last(self, name: str) -> int:
        positions = self.where.get(name)
        return positions[-1] if positions else -1

    def limit(self, *kinds: str) -> int:
        return max((self.kinds[k][-1] for k in kinds if self.kinds[k]), default=-1)

    def pop_if_top(self, *names: str) -> None:
        if self.stack and self.stack[-1] in names:
            self.pop_to(len(self.stack) - 1)

    def end(self, position: int) -> None:
        """An element's own end tag pops it: the tree builder forgets it as a formatting element."""
        key = self.keys[position]
        self.pop_to(position)
        if key is not None:
            self.closed[-1].pop(key, None)

    def closes(self, position: int, stop: int) -> None:
        """The tree builder pops down to ``position`` unless an element above ``stop`` blocks it.

        Where this stack (a little deeper than the real one) shows a block, the real one may not
        have it: the formatting elements above ``position`` are then counted as closed all the
        same, so the cost of opening them again is never missed.
        """
        if position > stop:
            self.pop_to(position)
            return
        formatting, keys, level = self.kinds["formatting"], self.keys, self.open[-1]
        for at in reversed(formatting):
            if at <= position:
                break
            key = keys[at]
            if key is not None and level.get(key) == at:
                del level[key]
                self.closed[-1][key] = None

    def reopen(self) -> None:
        """Before text (and inline start tags) the tree builder opens closed formatting elements again."""
        closed = self.closed[-1]
        if not closed:
            return
        for key in list(closed):
            self.reopened += 1 + len(key[1]) // 64
            if self.reopened > MAX_REOPENED:
                raise TooComplex("formatting elements opened again too many times")
            del closed[key]
            self.push(key[0], key)

    def forget(self, name: str) -> None:
        """An end tag for a closed formatting element drops it from the list."""
        closed = self.closed[-1]
        for key in reversed(closed):
            if key[0] == name:
                del closed[key]
                return


def too_complex(html: str) -> str | None:
    """Why the tree builder could take long on ``html`` (a sentence), or None. Linear time.

    Most pages are tidy enough for `_tidy` to clear them (one ``findall`` and a tight loop); the
    rest are followed with the whole model.
    """
    if _tidy(html):
        return None
    try:
        _follow(html)
    except TooComplex as exc:
        return str(exc)
    return None


# A tidy page: every end tag closes the element on top (past ones whose end tag may be left out),
# and no start tag closes anything but the element on top. The tree builder then pops exactly
# what the markup says, never closes a formatting element behind its back (so never opens one
# again), and its stack is the one counted here.
_FAST = re.compile(
    rf"{_COMMENT}"
    rf"|<(?:({'|'.join(sorted(RAW_TEXT))})(?=[{SPACE}/>])({_ATTRIBUTES})>(.*?)(?=</(?:\1)[{SPACE}/>]|\Z)"
    rf"|(/?)({_TAG_NAME})({_ATTRIBUTES})(>?))",
    re.DOTALL | re.IGNORECASE,
)
_ENDS_LEFT_OUT = {"p", "li", "dd", "dt", "option", "optgroup", "rb", "rp", "rt", "rtc"}
_TABLE_ENDS_LEFT_OUT = _ENDS_LEFT_OUT | {"td", "th", "tr", "tbody", "thead", "tfoot", "caption", "colgroup"}
_CELL_CONTEXT = {"td": ("tr", "tbody", "thead", "tfoot", "table"), "th": ("tr", "tbody", "thead", "tfoot", "table"),
                 "tr": ("tbody", "thead", "tfoot", "table"), "tbody": ("table",), "thead": ("table",),
                 "tfoot": ("table",), "caption": ("table",), "colgroup": ("table",)}  # fmt: skip
_ITEMS = {"li": ("li",), "dd": ("dd", "dt"), "dt": ("dd", "dt")}  # an item closes an open one of these
_POPS_OWN = {"a", "nobr", "button"}  # start tags that close an open one of their own kind
_FORM_FIELDS = {"select", "input", "textarea", "keygen"}  # close an open <select>


def _tidy(html: str) -> bool:
    stack: list[str] = []
    count: dict[str, int] = {}
    options = 0
    for raw, raw_attributes, raw_text, slash, name, attributes, closed in _FAST.findall(html):
        if raw:
            name, attributes, slash = raw.lower(), raw_attributes, ""
            if count.get("svg") or count.get("math"):
                if "<" in raw_text or name not in ("title", "style"):
                    return False  # markup, not text, inside SVG or MathML
            else:
                if name == "xmp" and count.get("p"):
                    return False
                continue  # never pushed: its end tag comes next and matches nothing
        elif not name:
            continue
        elif not closed:
            return True  # the file ends inside a tag: the rest is dropped
        else:
            name = name.lower()
        if len(attributes) > 2 * MAX_ATTRIBUTES and len(ATTRIBUTE.findall(attributes)) > MAX_ATTRIBUTES:
            return False
        if slash:
            if not count.get(name) or name in _IGNORED:
                continue  # nothing to close: ignored
            passable = _TABLE_ENDS_LEFT_OUT if name in _TABLE_PARTS else _ENDS_LEFT_OUT if name in SPECIAL else ()
            while stack[-1] != name:
                if stack[-1] not in passable:
                    return False
                count[stack.pop()] -= 1
            count[stack.pop()] -= 1
            continue
        if name in _IGNORED:
            continue
        if count.get("svg") or count.get("math"):
            if name in BREAKOUT or name == "font":
                return False
            if self_closing(attributes):
                continue
        top = stack[-1] if stack else ""
        if name in _CLOSES_P and count.get("p"):
            if top != "p":
                return False
            count[stack.pop()] -= 1
            top = stack[-1] if stack else ""
        if name in _ITEMS:
            # The tree builder closes an open item of the kind, looking down past <div> and <p>.
            if top in _ITEMS[name]:
                count[stack.pop()] -= 1
            elif any(count.get(item) for item in _ITEMS[name]) and (top not in SPECIAL or top == "div"):
                return False
        elif name in _HEADINGS or name == "option" or name == "optgroup":
            if top in _HEADINGS if name in _HEADINGS else top == "option":
                count[stack.pop()] -= 1
        elif name in _CELL_CONTEXT and count.get("table"):
            while top in _TABLE_ENDS_LEFT_OUT and top not in _CELL_CONTEXT[name]:
                count[stack.pop()] -= 1
                top = stack[-1] if stack else ""
            if top not in _CELL_CONTEXT[name]:
                return False
        elif name in _POPS_OWN and count.get(name):
            if top != name:
                return False
            count[stack.pop()] -= 1
        elif (name in _FORM_FIELDS and count.get("select")) or name == "frameset":
            return False
        elif name == "table" and top in ("table", "tbody", "thead", "tfoot", "tr"):
            return False
        if name == "select":
            options = 0
        elif name == "option":
            options += 1
            if options > MAX_OPTIONS:
                return False
        if name not in _VOID:
            if len(stack) >= MAX_DEPTH:
                return False
            stack.append(name)
            count[name] = count.get(name, 0) + 1
    return True


def _follow(html: str) -> None:
    model = _Model()
    search = TOKEN.search
    position, end = 0, len(html)
    while position < end:
        match = search(html, position)
        if match is None:
            model.reopen()  # text to the end
            return
        if match.start() > position:
            model.reopen()  # text
        position = match.end()
        name = match.group(2)
        if name is None:
            continue  # comment, doctype
        if not match.group(4):
            return  # a tag the file ends inside: the tokenizer drops it and everything after
        name = name.lower()
        attributes = match.group(3)
        if len(attributes) > 2 * MAX_ATTRIBUTES and len(ATTRIBUTE.findall(attributes)) > MAX_ATTRIBUTES:
            raise TooComplex(f"a tag with more than {MAX_ATTRIBUTES} attributes")
        if match.group(1):
            _end_tag(model, name)
        elif name in RAW_TEXT and not model.foreign():
            # Never pushed: its content is text, and its end tag the next token.
            if name == "xmp":
                model.pop_if_top("p")
            closing = RAW_END[name].search(html, position)
            position = closing.start() if closing else end
        else:
            _start_tag(model, name, attributes)


def self_closing(attributes: str) -> bool:
    """``<path d="…"/>``, not ``<a href=x/>`` (there the slash belongs to the value)."""
    if not attributes.endswith("/"):
        return False
    ends = [match.end() for match in ATTRIBUTE.finditer(attributes)]
    return not ends or ends[-1] < len(attributes)


def _start_tag(model: _Model, name: str, attributes: str) -> None:
    if name in _IGNORED:
        return
    if model.foreign():
        if name in BREAKOUT or (name == "font" and FONT_BREAKOUT.search(attributes)):
            model.pop_to(model.kinds["root"][-1])
        elif self_closing(attributes):
            return  # closed at once in SVG and MathML
    if name in _CLOSES_P and model.last("p") >= 0:
        model.closes(model.last("p"), model.limit("scope", "button"))
    if name in _ITEMS:
        item = max(map(model.last, _ITEMS[name]))
        if item >= 0:
            model.closes(item, model.limit("item"))
    elif name in _HEADINGS:
        model.pop_if_top(*_HEADINGS)
    elif name in ("option", "optgroup"):
        model.pop_if_top("option")
    elif name in _CELLS:
        cell = max(model.last("td"), model.last("th"))
        if cell >= 0:
            model.closes(cell, model.limit("table"))
        if name not in ("td", "th"):
            model.pop_if_top("tr")
            if name != "tr":
                model.pop_if_top("tbody", "thead", "tfoot")
    elif name == "table":
        model.pop_if_top("table")
    elif name in ("a", "nobr", "button"):
        own = model.last(name)
        if own >= 0:
            stop = model.limit("scope") if name == "button" else model.limit("special")
            if own > stop and name != "button":
                model.end(own)
            else:
                model.closes(own, stop)
        model.forget(name)
    if name == "select":
        model.options = 0
    elif name == "option":
        model.options += 1
        if model.options > MAX_OPTIONS:
            raise TooComplex(f"a <select> with more than {MAX_OPTIONS:,} options")
    if name not in _NO_REOPEN:
        model.reopen()
    if name not in _VOID:
        model.push(name, (name, attributes) if name in FORMATTING and not model.foreign() else None)


def _end_tag(model: _Model, name: str) -> None:
    if name in _IGNORED:
        return
    if name in ("p", "br") and model.foreign():
        model.pop_to(model.kinds["root"][-1])
    target = max(map(model.last, _HEADINGS)) if name in _HEADINGS else model.last(name)
    if target < 0:
        if name in FORMATTING:
            model.forget(name)
        return
    if name in _TABLE_PARTS:
        model.pop_if_top("td", "th")
        stop = model.limit("table")
    elif name in SPECIAL:
        stop = model.limit("scope", *_SCOPE_EXTRA.get(name, ()))
    else:  # an ordinary or formatting element: the tree builder stops at any special one
        stop = model.limit("special")
    if target > stop:
        model.end(target)
    else:
        model.closes(target, stop)
