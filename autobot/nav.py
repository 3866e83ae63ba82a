"""What base.html's header shows, worked out once: the nav's links and the user's facts.

base.html's nav marks the current section's link `aria-current="page"` and shows staff the admin
link. Written in base.html, that was nine `{% if %}`s a page (each a variable lookup, a literal's
evaluation and a node list) around twenty text nodes, ~90,000 instructions for one of a handful of
texts; before that, seven `{% if p|slice:":6" == "/chat/" %}` tests. Now `nav.links` is
templates/nav.html (the same markup, the same rule: the dashboard and tokens by the whole path,
the others by its start, `current`) rendered once for each (compiled template, current section,
staff or not) and kept (`links`); a template loaded anew (autoreload, a test's own loader) is
rendered anew.

The header (and the terminal, files and dashboard pages) also asked the user three things:
`user.is_authenticated`, `user.is_staff`, `user.get_username`. Django's variable lookup tries
`user["is_staff"]` before the attribute (a TypeError raised and caught). `nav_user` answers them
from a dict (`UserFacts`), each asked of the same user the templates' `user` is (Django's auth
context processor: `request.user`, or an anonymous user when the request has none) when first
read, and kept for the rest of the rendering.

Nothing is read before a template asks (`UserFacts` and `Nav` fill themselves at the first lookup):
a template that never asks leaves the session untouched, as before.

`context_processor` is listed in settings TEMPLATES. tests/platform/test_nav.py checks the rule
against the template expressions it replaces, and every page template's bytes, for an anonymous, a
staff and a non-staff user on several paths, against base.html's markup before.
"""

from collections.abc import Mapping
from types import MappingProxyType

from django.template import Context, Engine
from django.utils.safestring import mark_safe

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
        if len(path) <= KEPT_PATH_LENGTH:  # a client's long, made-up paths are not kept
            _sections.put(path, sections)
    return sections


_sections = Memo(256)  # paths are the client's: bounded, emptied when full
KEPT_PATH_LENGTH = 200


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


NAV_TEMPLATE = "nav.html"
_links = Memo(64, settings=True)


def links(path: str, is_staff: bool) -> str:
    """templates/nav.html rendered for `path`'s section and a staff user or not (module docstring)."""
    template = Engine.get_default().get_template(NAV_TEMPLATE)
    sections = current(path)
    key = (template, tuple(sections.values()), bool(is_staff))
    text = _links.get(key)
    if text is None:
        # The file's last newline is base.html's (its line ends after `{{ nav.links }}`).
        text = mark_safe(template.render(Context({"current": sections, "is_staff": is_staff})).removesuffix("\n"))
        _links.put(key, text)
    return text


class Nav(dict):
    """`{links}`: `links()` for the request's path and user, made at its first lookup."""

    __slots__ = ("_request", "_user")

    def __init__(self, request, user: UserFacts) -> None:
        super().__init__()
        self._request, self._user = request, user

    def __missing__(self, key):
        if key != "links":
            raise KeyError(key)
        value = self[key] = links(self._request.path, self._user["is_staff"])
        return value


def context_processor(request) -> dict:
    """`nav`: the nav's markup (`nav.links`); `nav_user`: the user's facts."""
    user = UserFacts(request)
    return {"nav": Nav(request, user), "nav_user": user}
