"""base.html's nav marks the current section's link (autobot/nav.py): the rule the template spelled
with `slice` before, and on a real page."""

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
