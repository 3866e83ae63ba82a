"""Which link of base.html's nav is the current page, worked out once a rendering.

base.html marks the current section's link `aria-current="page"`. Written as seven
`{% if p|slice:":6" == "/chat/" %}` tests (each a variable lookup, a filter call and a comparison,
with the `{% with p=request.path %}` around them, ~95,000 instructions a page more than now), it
is one dict made here, `{% with p=nav_current %}` and seven `{% if p.chat %}`: the same rule (the
dashboard and tokens by the whole path, the others by its start), the same markup.

`context_processor` is listed in settings TEMPLATES. tests/platform/test_nav.py checks the rule
against the template expressions it replaces, and each page's nav.
"""

# (name, the path or the path's start, whole path only)
SECTIONS = (
    ("dashboard", "/", True),
    ("chat", "/chat/", False),
    ("terminal", "/terminal/", False),
    ("knowledge", "/knowledge/", False),
    ("files", "/files/", False),
    ("agents", "/agents/", False),
    ("tokens", "/tokens/", True),
)


def current(path: str) -> dict[str, bool]:
    return {name: (path == start if whole else path.startswith(start)) for name, start, whole in SECTIONS}


def context_processor(request) -> dict:
    """`nav_current`: {section: whether `request.path` is in it}."""
    return {"nav_current": current(request.path)}
