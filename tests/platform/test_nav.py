"""base.html's nav marks the current section's link (autobot/nav.py): the rule the template spelled
with `slice` before, and on a real page."""

from pathlib import Path

import pytest
from django.template import Context, Engine

from autobot import nav

# base.html's rule before autobot/nav.py, as it was written there.
BEFORE = ('{% with p=path %}{% if p == "/" %}dashboard {% endif %}{% if p|slice:":6" == "/chat/" %}chat {% endif %}'
          '{% if p|slice:":10" == "/terminal/" %}terminal {% endif %}{% if p|slice:":11" == "/knowledge/" %}knowledge '
          '{% endif %}{% if p|slice:":7" == "/files/" %}files {% endif %}{% if p|slice:":8" == "/agents/" %}agents '
          '{% endif %}{% if p == "/tokens/" %}tokens {% endif %}{% endwith %}')

PATHS = ["/", "", "/chat/", "/chat/12", "/chat", "/chatx/", "/terminal/", "/terminal/replay/3", "/knowledge/",
         "/knowledge/entries/1/html", "/files/", "/files/a/b", "/agents/", "/agents/x", "/tokens/", "/tokens/x",
         "/admin/", "/accounts/login/", "/CHAT/", "//chat/"]


@pytest.mark.parametrize("path", PATHS)
def test_the_current_section_follows_the_rule_the_template_had(path):
    before = Engine().from_string(BEFORE).render(Context({"path": path})).split()
    assert [name for name, is_current in nav.current(path).items() if is_current] == before


@pytest.mark.django_db
def test_a_page_marks_its_own_link_and_no_other(client, owner):
    client.force_login(owner)
    for path, link in (("/chat/", '<a href="/chat/" aria-current="page">Chat</a>'),
                       ("/knowledge/", '<a href="/knowledge/" aria-current="page">Knowledge</a>'),
                       ("/", '<a href="/" aria-current="page">Dashboard</a>')):
        html = client.get(path).content.decode()
        assert link in html and html.count('aria-current="page"') == 1


# ---- `nav.links` and `nav_user`, in place of base.html's nav markup and `user.<lookup>`s ------

# base.html's nav as it was before templates/nav.html (with `nav_current`, now `nav.current`).
OLD_NAV = """  <nav class="nav">
    {% with p=nav_current %}
    <a href="/" {% if p.dashboard %}aria-current="page"{% endif %}>Dashboard</a>
    <a href="/chat/" {% if p.chat %}aria-current="page"{% endif %}>Chat</a>
    <a href="/terminal/" {% if p.terminal %}aria-current="page"{% endif %}>Terminal</a>
    <a href="/knowledge/" {% if p.knowledge %}aria-current="page"{% endif %}>Knowledge</a>
    <a href="/files/" {% if p.files %}aria-current="page"{% endif %}>Files</a>
    <a href="/agents/" {% if p.agents %}aria-current="page"{% endif %}>Agents</a>
    <a href="/tokens/" {% if p.tokens %}aria-current="page"{% endif %}>Tokens</a>
    {% if user.is_staff %}<a href="/admin/">Admin</a>{% endif %}
    <a href="/api/docs" target="_blank" rel="noopener">API</a>
    {% endwith %}
  </nav>
"""

# The lookups each template said before `nav_user`, and what it says now.
LOOKUPS = (("user.is_authenticated", "nav_user.is_authenticated"), ("user.is_staff", "nav_user.is_staff"),
           ("user.get_username", "nav_user.username"))
TEMPLATES = ("base.html", "chat/index.html", "knowledge/index.html", "files/index.html", "terminal/index.html",
             "autobot/dashboard.html", "autobot/tokens.html", "agents/index.html", "registration/login.html")
USERS = ("anonymous", "owner", "staff")


def _sources(*, before: bool) -> dict[str, str]:
    from django.conf import settings

    sources = {}
    for path in sorted(Path(settings.BASE_DIR, "templates").rglob("*.html")):
        text = path.read_text()
        if before:
            text = text.replace("  {{ nav.links }}\n", OLD_NAV)
            for old, new in LOOKUPS:
                text = text.replace(new, old)
        sources[path.relative_to(Path(settings.BASE_DIR, "templates")).as_posix()] = text
    return sources


def _engine(sources: dict[str, str]) -> Engine:
    """The site's engine (its context processors and builtins), reading `sources`."""
    from django.template import engines

    site = engines.all()[0].engine
    return Engine(loaders=[("django.template.loaders.locmem.Loader", sources)],
                  context_processors=site.context_processors, builtins=site.builtins[len(Engine.default_builtins):])


def _request(rf, who, users, path):
    from django.contrib.auth.models import AnonymousUser

    request = rf.get(path)
    request.session = {}
    request.user = AnonymousUser() if who == "anonymous" else users[who]
    return request


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/", "/chat/", "/knowledge/x", "/tokens/", "/admin/"])
@pytest.mark.parametrize("who", USERS)
@pytest.mark.parametrize("name", TEMPLATES)
def test_each_template_renders_the_bytes_the_nav_markup_and_user_lookups_rendered(rf, owner, staff, who, name, path):
    """Each template rendered with `nav.links` and `nav_user` equals the same template with
    base.html's nav markup and the `user.<lookup>`s they replaced, for an anonymous, a non-staff
    and a staff user, on each section's path and others (the kept markup included: each case
    renders twice)."""
    from django.template import RequestContext

    before = _sources(before=True)
    assert OLD_NAV in before["base.html"] and not any(new in before[name] for _, new in LOOKUPS)
    users = {"owner": owner, "staff": staff}
    context = {"csrf_token": "T" * 64, "can_use": True, "area": "", "nav_current": nav.current(path),
               "levels": [{"name": "RESTRICTED", "description": "r"}, {"name": "STANDARD", "description": "s"}]}
    rendered = []
    for engine in (_engine(before), _engine(_sources(before=False)), _engine(_sources(before=False))):
        page_context = RequestContext(_request(rf, who, users, path))
        page_context.update(context)  # above the processors' (as `render` does): a fixed token
        rendered.append(engine.get_template(name).render(page_context))
    assert rendered[0] == rendered[1] == rendered[2]


def test_user_facts_are_read_once_and_only_when_asked(rf):
    """Nothing is read of the request's user until a template asks; each fact is read once."""
    reads = []

    class User:
        is_staff = True

        @property
        def is_authenticated(self):
            reads.append("is_authenticated")
            return True

        def get_username(self):
            reads.append("get_username")
            return "ada"

    request = rf.get("/chat/")
    request.user = User()
    facts = nav.context_processor(request)["nav_user"]
    assert reads == []
    assert facts["is_authenticated"] and facts["is_authenticated"] and facts["username"] == "ada"
    assert facts["is_staff"] is True and reads == ["is_authenticated", "get_username"]
    with pytest.raises(KeyError):
        facts["password"]


def test_a_request_without_a_user_is_anonymous_as_for_django(rf):
    facts = nav.context_processor(rf.get("/"))["nav_user"]
    assert (facts["is_authenticated"], facts["is_staff"], facts["username"]) == (False, False, "")


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["owner", "staff"])
def test_each_page_shows_the_signed_in_user_and_admin_to_staff_only(client, owner, staff, who):
    user = {"owner": owner, "staff": staff}[who]
    client.force_login(user)
    for path in ("/", "/chat/", "/knowledge/", "/files/", "/terminal/", "/agents/", "/tokens/"):
        html = client.get(path).content.decode()
        assert f'<span class="who">{user.get_username()}</span>' in html, path
        assert ('<a href="/admin/">Admin</a>' in html) is (who == "staff"), path
        assert '<header class="topbar">' in html and 'action="/accounts/logout/"' in html, path
    if who == "staff":  # (the owner, without the terminal permission, is told so instead)
        terminal = client.get("/terminal/").content.decode()
        assert 'data-staff="1"' in terminal and f'data-user="{user.get_username()}"' in terminal
    assert ('id="area-form"' in client.get("/files/").content.decode()) is (who == "staff")


@pytest.mark.django_db
def test_an_anonymous_visitor_gets_no_header(client):
    html = client.get("/accounts/login/").content.decode()
    assert client.get("/accounts/login/").status_code == 200
    assert '<header class="topbar">' not in html and 'class="who"' not in html and "/admin/" not in html


def test_a_long_made_up_path_is_answered_but_not_kept():
    path = "/chat/" + "x" * 5000
    assert nav.current(path)["chat"]
    assert path not in nav._sections
