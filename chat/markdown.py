"""Markdown → safe HTML for chat replies: markdown-it-py renders, nh3 sanitizes.

Model output is untrusted (a prompt-injected answer can contain anything), so raw HTML in
the source is escaped by markdown-it and whatever comes out is sanitized again by nh3 with
a short allow-list. Links keep only http(s)/mailto and open with rel="noopener". Images
are dropped: a prompt-injected answer could otherwise leak data through an image URL that
the browser fetches on its own.
"""

from __future__ import annotations

import re

import nh3
from markdown_it import MarkdownIt

_md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable(
    ["table", "strikethrough"]
)

TAGS = {
    "p", "br", "hr", "strong", "em", "s", "del", "code", "pre", "blockquote",
    "ul", "ol", "li", "h1", "h2", "h3", "h4", "h5", "h6", "a",
    "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip
ATTRIBUTES = {
    "a": {"href", "title"},
    "ol": {"start"},
    "th": {"style"},
    "td": {"style"},
    "code": {"class"},
}
_LANGUAGE_CLASS = re.compile(r"^language-[\w+#.-]{1,32}$")


def _keep(tag: str, attr: str, value: str) -> str | None:
    # Only the language marker of fenced code may carry a class (used for the copy button
    # label and any client-side highlighting).
    if attr == "class":
        return value if tag == "code" and _LANGUAGE_CLASS.match(value) else None
    return value


def render(text: str) -> str:
    """Render untrusted Markdown to sanitized HTML."""
    return nh3.clean(
        _md.render(text or ""),
        tags=TAGS,
        attributes=ATTRIBUTES,
        attribute_filter=_keep,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
        set_tag_attribute_values={"a": {"target": "_blank"}},
        filter_style_properties={"text-align"},
        strip_comments=True,
    )
