"""Turn uploaded or fetched bytes into Markdown-ish text for chunking.

Pure: no Django, no I/O. Supports plain text, Markdown, HTML (main content
via selectolax, headings kept as ``#`` lines) and PDF (pypdf). Anything it
cannot read raises `ExtractionError` with a sentence naming the problem; the
services turn that into a 422.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from urllib.parse import urljoin

from charset_normalizer import from_bytes
from selectolax.lexbor import LexborHTMLParser as HTMLParser
from selectolax.lexbor import LexborNode as Node

from knowledge.htmlscan import too_complex
from knowledge.htmltext import plain_text

FORMATS = ("text", "markdown", "html", "pdf")

_EXTENSIONS = {
    ".txt": "text", ".text": "text", ".log": "text", ".rst": "text", ".csv": "text",
    ".md": "markdown", ".markdown": "markdown", ".mdown": "markdown",
    ".html": "html", ".htm": "html", ".xhtml": "html",
    ".pdf": "pdf",
}  # fmt: skip
_CONTENT_TYPES = {
    "text/plain": "text",
    "text/markdown": "markdown",
    "text/x-markdown": "markdown",
    "text/html": "html",
    "application/xhtml+xml": "html",
    "application/pdf": "pdf",
}
# Page furniture that is never the main text.
_NOISE = "script, style, noscript, template, svg, canvas, iframe, nav, header, footer, aside, form, button"
_BLOCKS = {"p", "li", "pre", "blockquote", "dt", "dd", "figcaption", "caption", "tr", "address"}
_INLINE = {
    "a", "abbr", "b", "bdi", "bdo", "cite", "code", "data", "dfn", "em", "i", "kbd", "mark", "q", "s",
    "samp", "small", "span", "strong", "sub", "sup", "time", "u", "var", "del", "ins",
}  # fmt: skip
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_MD_TITLE = re.compile(r"^#[ \t]+(.+?)[ \t#]*$", re.MULTILINE)
_SPACES = re.compile(r"[ \t\u00a0]+")
# Elements nested deeper than this are read as plain text, one line each: the walk recurses, and a
# page of 100,000 nested <div>s must not reach Python's recursion limit (a 500 on upload).
_MAX_DEPTH = 100


class ExtractionError(ValueError):
    """The input could not be turned into text; the message says why."""


@dataclass
class Extracted:
    title: str
    text: str
    format: str
    links: list[str] = field(default_factory=list)
    canonical: str | None = None
    noindex: bool = False
    nofollow: bool = False


def detect_format(*, filename: str | None = None, content_type: str | None = None, data: bytes = b"") -> str:
    """Pick a format from the content type, then the file name, then the bytes."""
    mime = (content_type or "").split(";")[0].strip().lower()
    if mime in _CONTENT_TYPES:
        return _CONTENT_TYPES[mime]
    if filename:
        suffix = PurePosixPath(filename.lower()).suffix
        if suffix in _EXTENSIONS:
            return _EXTENSIONS[suffix]
    head = data[:1024].lstrip().lower()
    if head.startswith(b"%pdf-"):
        return "pdf"
    if head.startswith((b"<!doctype html", b"<html")):
        return "html"
    if filename and PurePosixPath(filename).suffix:
        raise ExtractionError(
            f"unsupported file type {PurePosixPath(filename).suffix!r}: use text, Markdown, HTML or PDF"
        )
    return "text"


def extract(
    data: bytes, *, filename: str | None = None, content_type: str | None = None, url: str | None = None,
    pdf_max_operations: int | None = None,
) -> Extracted:
    """Extract title and text from ``data``; raises `ExtractionError`."""
    if not data or not data.strip():
        raise ExtractionError("the document is empty")
    fmt = detect_format(filename=filename, content_type=content_type, data=data)
    fallback_title = PurePosixPath(filename).stem if filename else (url or "Untitled")
    if fmt == "pdf":
        result = extract_pdf(data, max_operations=pdf_max_operations or PDF_MAX_OPERATIONS)
    elif fmt == "html":
        result = extract_html(decode_text(data, content_type=content_type), base_url=url)
    else:
        text = normalise_text(decode_text(data, content_type=content_type))
        title = ""
        if fmt == "markdown":
            match = _MD_TITLE.search(text)
            title = match.group(1).strip() if match else ""
        result = Extracted(title=title, text=text, format=fmt)
    if not result.text.strip():
        raise ExtractionError(f"the {fmt} document contains no readable text")
    # A blank or placeholder title ("Untitled", as many PDF writers store) gives way to the file name.
    title = (result.title or "").strip()
    if title.lower() in {"", "untitled", "untitled document"}:
        title = fallback_title
    result.title = title.strip()[:300]
    return result


def decode_text(data: bytes, *, content_type: str | None = None) -> str:
    """Decode bytes as text, refusing binary data."""
    if b"\x00" in data[:8192]:
        raise ExtractionError("the file looks binary, not text (it contains NUL bytes)")
    charset = _charset(content_type)
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="replace")
    for encoding in filter(None, (charset, "utf-8")):
        try:
            return data.decode(encoding)
        except (UnicodeDecodeError, LookupError):
            continue
    best = from_bytes(data[:65536]).best()
    if best is None:
        raise ExtractionError("the file is not text in any known character encoding")
    return data.decode(best.encoding, errors="replace")


def normalise_text(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    lines = [line.rstrip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def extract_html(html: str, *, base_url: str | None = None) -> Extracted:
    """Main text of an HTML page with headings as ``#`` lines, plus its links.

    Markup on which lexbor's tree builder would run for minutes (see `knowledge.htmlscan`) is
    read as plain text instead: the words all come through, the structure does not.
    """
    if too_complex(html):
        return _extract_plain(html, base_url=base_url)
    tree = HTMLParser(html)
    title_node = tree.css_first("title")
    title = _clean(title_node.text()) if title_node else ""
    robots = " ".join((n.attributes.get("content") or "").lower() for n in tree.css('meta[name="robots"]'))
    canonical_node = tree.css_first('link[rel="canonical"]')
    canonical = canonical_node.attributes.get("href") if canonical_node else None
    links = _links(tree, base_url)
    for node in tree.css(_NOISE):
        node.decompose()
    root = tree.css_first("main") or tree.css_first("article") or tree.css_first('[role="main"]') or tree.body
    lines: list[str] = []
    if root is not None:
        _walk(root, lines)
    if not title:
        first_h1 = tree.css_first("h1")
        title = _clean(first_h1.text()) if first_h1 else ""
    return Extracted(
        title=title,
        text=normalise_text("\n\n".join(lines)),
        format="html",
        links=links,
        canonical=urljoin(base_url, canonical) if canonical and base_url else canonical,
        noindex="noindex" in robots or "none" in robots,
        nofollow="nofollow" in robots or "none" in robots,
    )


def _extract_plain(html: str, *, base_url: str | None) -> Extracted:
    page = plain_text(html)
    links = [urljoin(base_url, href) if base_url else href for href in page.links]
    links = [link for link in links if not link.startswith(("#", "javascript:", "mailto:", "tel:", "data:"))]
    return Extracted(
        title=_clean(page.title),
        text=normalise_text(_SPACES.sub(" ", page.text)),
        format="html",
        links=links,
        noindex="noindex" in page.robots or "none" in page.robots,
        nofollow="nofollow" in page.robots or "none" in page.robots,
    )


def _links(tree: HTMLParser, base_url: str | None) -> list[str]:
    base_node = tree.css_first("base[href]")
    base = urljoin(base_url or "", base_node.attributes.get("href") or "") if base_node else base_url
    links = []
    for anchor in tree.css("a[href]"):
        if "nofollow" in (anchor.attributes.get("rel") or "").lower():
            continue
        href = (anchor.attributes.get("href") or "").strip()
        if href and not href.startswith(("#", "javascript:", "mailto:", "tel:", "data:")):
            links.append(urljoin(base, href) if base else href)
    return links


def _walk(node: Node, lines: list[str], depth: int = 0) -> None:
    """Emit one line per heading or text block, in document order.

    Inline children (text, links, emphasis, code) are gathered into one run so
    ``<div>Run <code>make</code> now</div>`` stays one sentence; a block child
    ends the run. One pass, linear in the size of the tree.
    """
    run: list[str] = []

    def flush() -> None:
        text = _clean("".join(run))  # text nodes carry their own spaces
        if text:
            lines.append(text)
        run.clear()

    child = node.child
    while child is not None:
        tag = child.tag
        if tag == "-text":
            run.append(child.text_content or "")
        elif tag in _INLINE:
            run.append(child.text(separator="") or "")
        elif depth >= _MAX_DEPTH and tag != "-comment":
            flush()
            text = _clean(child.text(separator=" "))
            if text:
                lines.append(text)
        elif tag in _HEADINGS:
            flush()
            text = _inner_text(child, depth)
            if text:
                lines.append(f"{'#' * _HEADINGS[tag]} {text}")
        elif tag == "pre":
            flush()
            text = (child.text(deep=True) or "").strip("\n")
            if text.strip():
                lines.append(text)
        elif tag in _BLOCKS:
            flush()
            text = _inner_text(child, depth)
            if text:
                lines.append(f"- {text}" if tag == "li" else text)
        elif tag == "br":
            run.append(" ")
        elif tag != "-comment":
            flush()
            _walk(child, lines, depth + 1)
        child = child.next
    flush()


def _inner_text(node: Node, depth: int) -> str:
    """A block's text on one line; nested blocks (a <p> in an <li>) join with a space."""
    inner: list[str] = []
    _walk(node, inner, depth + 1)
    return _clean(" ".join(inner))


def _clean(text: str | None) -> str:
    return _SPACES.sub(" ", (text or "").replace("\n", " ")).strip()


# Reading a PDF's text means running its drawing instructions, and a small file can hold a great
# many: one compressed stream shared by thousands of pages, or a form drawn thousands of times,
# costs hours of CPU for a few kilobytes. So reading stops after this many instructions (about
# 1.5 s of work per 100,000 here; a page of text has a few hundred), each page counting as
# ``_PAGE_COST`` of them, so a document of countless empty pages stops as well.
PDF_MAX_OPERATIONS = 1_000_000
_PAGE_COST = 100


class _TooComplex(Exception):
    pass


class _Budget:
    """pypdf's ``visitor_operand_before``: called once per instruction it runs, forms included."""

    def __init__(self, limit: int) -> None:
        self.left = limit

    def spend(self, cost: int = 1) -> None:
        self.left -= cost
        if self.left < 0:
            raise _TooComplex

    def __call__(self, *_operation) -> None:
        self.spend()


def extract_pdf(data: bytes, *, max_operations: int = PDF_MAX_OPERATIONS, max_chars: int | None = None) -> Extracted:
    """Text of the pages of a PDF, one paragraph block per page.

    Stops after ``max_operations`` drawing instructions (an `ExtractionError`), or, with
    ``max_chars``, once that much text has been read (a preview needs no more).
    """
    from pypdf import PdfReader

    budget = _Budget(max_operations)
    pages: list[str] = []
    chars = 0
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise ExtractionError("the PDF is encrypted; upload an unprotected copy")
        for page in reader.pages:
            budget.spend(_PAGE_COST)
            pages.append(page.extract_text(visitor_operand_before=budget) or "")
            chars += len(pages[-1])
            if max_chars is not None and chars >= max_chars:
                break
        metadata = reader.metadata
        title = (metadata.title or "") if metadata else ""
    except ExtractionError:
        raise
    except _TooComplex:
        raise ExtractionError(
            f"the PDF is too complex to read (more than {max_operations:,} drawing instructions)"
        ) from None
    except Exception as exc:  # noqa: BLE001 - hostile input can make a parser raise anything (its limits, recursion …)
        raise ExtractionError(f"the PDF could not be parsed ({exc.__class__.__name__}: {exc})") from exc
    text = normalise_text("\n\n".join(p.strip() for p in pages if p.strip()))
    if not text:
        raise ExtractionError("the PDF contains no extractable text (is it a scanned image?)")
    return Extracted(title=str(title), text=text, format="pdf")


def _charset(content_type: str | None) -> str | None:
    match = re.search(r"charset=([\w.:-]+)", content_type or "", re.IGNORECASE)
    return match.group(1).strip("\"'") if match else None
