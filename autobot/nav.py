"""What base.html's header shows, worked out once a rendering: the current link and the user.

base.html marks the current section's link `aria-current="page"`. Written as seven
`{% if p|slice:":6" == "/chat/" %}` tests (each a variable lookup, a filter call and a comparison,
with the `{% with p=request.path %}` around them, ~95,000 instructions a page more than now), it
is one dict made here, `{% with p=nav_current %}` and seven `{% if p.chat %}`: the same rule (the
dashboard and tokens by the whole path, the others by its start), the same markup.

The header (and the terminal, files and dashboard pages) also asked the user three things:
`user.is_authenticated`, `user.is_staff`, `user.get_username`. Django's variable lookup tries
`user["is_staff"]` before the attribute, and a model has no `[]`: a TypeError raised and caught
each time, ~30,000 instructions a lookup. `nav_user` answers them from a dict (`UserFacts`), each
asked of the same user the templates' `user` is (Django's auth context processor: `request.user`,
or an anonymous user when the request has none) when first read, and kept for the rest of the
rendering: nothing is read before a template asks (a template that never asks leaves the session
untouched, as before).

`context_processor` is listed in settings TEMPLATES. tests/platform/test_nav.py checks the rule
against the template expressions it replaces, and each page's nav and user facts for an anonymous,
a staff and a non-staff user against the lookups they replace.
"""

from collections.abc import Mapping
from types import MappingProxyType

from autobot.memo import Memo

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


def current(path: str) -> Mapping[str, bool]:
    """{section: whether `path` is in it}, read-only, kept by path (the seven tests cost ~15,000
    instructions a page; the few paths a site serves are the same every time)."""
    sections = _sections.get(path)
    if sections is None:
        sections = MappingProxyType({name: (path == start if whole else path.startswith(start))
                                     for name, start, whole in SECTIONS})
        _sections.put(path, sections)
    return sections


_sections = Memo(256)  # paths are the client's: bounded, emptied when full


def template_user(request):
    """The user Django's auth context processor gives templates as `user`."""
    user = getattr(request, "user", None)
    if user is None:
        from django.contrib.auth.models import AnonymousUser

        user = AnonymousUser()
    return user


# What `nav_user.<key>` answers: the lookup `user.<...>` it stands for.
FACTS = {
    "is_authenticated": lambda user: user.is_authenticated,
    "is_staff": lambda user: user.is_staff,
    "username": lambda user: user.get_username(),
}


class UserFacts(dict):
    """`{is_authenticated, is_staff, username}` of the request's user, each read at its first
    lookup (`__missing__`) and kept. A key not in `FACTS` is missing, as an unknown attribute is."""

    __slots__ = ("_request",)

    def __init__(self, request) -> None:
        super().__init__()
        self._request = request

    def __missing__(self, key):
        fact = FACTS.get(key)
        if fact is None:
            raise KeyError(key)
        value = self[key] = fact(template_user(self._request))
        return value


def context_processor(request) -> dict:
    """`nav_current`: {section: whether `request.path` is in it}; `nav_user`: the user's facts."""
    return {"nav_current": current(request.path), "nav_user": UserFacts(request)}
