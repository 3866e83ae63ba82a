"""The dashboard's figures (read in one query, autobot/views.py) are the ones each app's services
give; its latest events are the user's own (all for staff), newest first, with the columns shown;
its health card is /api/health's report, kept a few seconds. `autobot.pages.has_perm` answers as
`User.has_perm` does, in one query."""

import html
import re

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from autobot import audit, views
from autobot.asgi import application
from autobot.errors import Forbidden
from autobot.models import ApiToken, AuditEvent
from autobot.pages import has_perm
from chat import services as chat
from chat.models import ChatSession
from knowledge import services as knowledge
from knowledge.models import KnowledgeEntry
from terminal import services as terminal
from terminal.models import TerminalSession
from terminal.services import live as registry
from tests.conftest import asgi_get, make_token
from tests.platform.test_pages import _session_for

pytestmark = pytest.mark.django_db(transaction=True)


def _permission() -> Permission:
    return Permission.objects.get(codename="use_terminal", content_type__app_label="terminal")


def _grant(user) -> None:
    user.user_permissions.add(_permission())


def _entry(owner, title, *, shared=False) -> KnowledgeEntry:
    return KnowledgeEntry.objects.create(owner=owner, title=title, content=title, shared=shared, content_hash=title)


def _seed(owner, stranger, staff) -> None:
    for user, chats in ((owner, 2), (stranger, 3), (staff, 1)):
        for n in range(chats):
            ChatSession.objects.create(owner=user, title=f"{user.username} {n}")
    _entry(owner, "mine")
    _entry(stranger, "theirs, shared", shared=True)
    _entry(stranger, "theirs, private")
    make_token(owner)
    make_token(owner)
    make_token(owner, revoked_at="2026-01-01T00:00:00Z")
    make_token(stranger)
    TerminalSession.objects.create(owner=stranger, title="ended", status="ended")
    for n in range(17):
        audit.record_sync(actor=owner if n % 2 else stranger, action=f"test.event{n}", target_type="thing",
                          target_id=str(n))


def _counts(page: str) -> dict[str, int]:
    table = re.search(r'<table class="kv" id="counts">(.*?)</table>', page, re.S).group(1)
    rows = re.findall(r"<th>(?:<a [^>]*>)?([^<]+)(?:</a>)?</th><td>(\d+)</td>", table)
    return {name: int(value) for name, value in rows}


def _expected(user) -> dict[str, int]:
    """What the services (and the models, for tokens, events and users) say."""
    from django.contrib.auth.models import User

    user = User.objects.get(pk=user.pk)  # as on a request: no permissions remembered from before
    expected = {"chat sessions": async_to_sync(chat.session_list)(user=user, limit=1)[1],
                "knowledge entries": async_to_sync(knowledge.stats)(user=user)["entries"]}
    try:
        live = async_to_sync(terminal.session_list)(user=user, status="live")
        expected["live terminal sessions"] = live.count()
    except Forbidden:  # no terminal permission: not counted
        pass
    expected["api tokens"] = ApiToken.objects.filter(user=user, revoked_at__isnull=True).count()
    events = AuditEvent.objects.all() if user.is_staff else AuditEvent.objects.filter(actor_id=user.pk)
    expected["audit events"] = events.count()
    if user.is_staff:
        expected["users"] = User.objects.count()
    return expected


def _dashboard(user) -> str:
    client = Client()
    client.force_login(user)
    response = client.get("/")
    assert response.status_code == 200
    return response.content.decode()


def test_the_counts_are_the_services_figures_for_each_kind_of_user(owner, stranger, staff):
    _seed(owner, stranger, staff)
    # Without the terminal permission there is no terminal count.
    counts = _counts(_dashboard(owner))
    assert "live terminal sessions" not in counts and "users" not in counts
    assert counts == _expected(owner)
    assert counts["chat sessions"] == 2 and counts["knowledge entries"] == 2 and counts["api tokens"] == 2
    # With it, directly or through a group, the user's own live sessions are counted.
    _grant(owner)
    TerminalSession.objects.create(owner=owner, title="live", status="running", host="another-host:1")
    counts = _counts(_dashboard(owner))
    assert counts == _expected(owner)
    assert counts["live terminal sessions"] == 1
    owner.user_permissions.clear()
    group = Group.objects.create(name="shell users")
    group.permissions.add(_permission())
    stranger.groups.add(group)
    assert "live terminal sessions" not in _counts(_dashboard(owner))
    assert _counts(_dashboard(stranger)) == _expected(stranger)
    # Staff: everything, and the users.
    counts = _counts(_dashboard(staff))
    assert counts == _expected(staff)
    assert counts["chat sessions"] == 6 and counts["knowledge entries"] == 3 and counts["users"] == 3


def test_a_live_session_whose_process_is_gone_ends_and_is_not_counted(owner, stranger, staff):
    _grant(owner)
    host = registry.HOST_ID.rpartition(":")[0]
    orphan = TerminalSession.objects.create(owner=owner, title="orphan", status="running", host=f"{host}:999999999")
    assert _counts(_dashboard(owner))["live terminal sessions"] == 0
    orphan.refresh_from_db()
    assert orphan.status == "ended" and orphan.end_reason == "server_gone"


async def test_through_the_server_too_the_stale_pass_runs_on_a_lane(owner):
    await sync_to_async(_grant)(owner)
    host = registry.HOST_ID.rpartition(":")[0]
    orphan = await TerminalSession.objects.acreate(owner=owner, title="orphan", status="running",
                                                   host=f"{host}:999999999")
    cookie = f"sessionid={await sync_to_async(_session_for)(owner)}"
    assert await asgi_get(application, "/", (b"cookie", cookie.encode())) == 200
    await orphan.arefresh_from_db()
    assert orphan.status == "ended"


def test_the_latest_events_are_the_users_own_newest_first_with_their_columns(owner, stranger, staff):
    _seed(owner, stranger, staff)
    AuditEvent.objects.filter(action="test.event15").update(ip="192.0.2.7")
    page = _dashboard(owner)
    shown = re.findall(r"<code>(test\.event\d+)</code>", page)
    assert shown == [f"test.event{n}" for n in (15, 13, 11, 9, 7, 5, 3, 1)]
    newest = AuditEvent.objects.get(action="test.event15")
    assert f'<time datetime="{newest.created.isoformat()}">' in page
    assert "<td>owner</td>" in page and "thing #15" in page and "192.0.2.7" in page
    staff_page = _dashboard(staff)
    shown = re.findall(r"<code>(test\.event\d+)</code>", staff_page)
    assert shown == [f"test.event{n}" for n in range(16, 1, -1)]  # the latest 15 of everyone's


def test_no_events_says_so(owner):
    assert "No events yet." in _dashboard(owner)


def test_the_health_card_is_a_report_kept_a_few_seconds(owner, monkeypatch):
    views._health_kept = None
    page = _dashboard(owner)
    kept = views._health_kept
    assert kept is not None and kept[2]["status"] == "ok"
    assert html.escape(kept[2]["version"]) in page and "database" in page
    _dashboard(owner)
    assert views._health_kept is kept  # within the window: the same report
    monkeypatch.setattr(views, "HEALTH_MAX_AGE", 0.0)
    _dashboard(owner)
    assert views._health_kept is not kept  # past it: a fresh one


def test_anonymous_visitors_are_sent_to_sign_in(monkeypatch):
    monkeypatch.setattr(views, "_health_kept", None)
    response = Client().get("/")
    assert response.status_code == 302 and response["Location"] == "/accounts/login/?next=/"
    assert views._health_kept is None  # no health check (database, Redis, sandbox) for them

    response = Client(headers={"cookie": "sessionid=forged"}).get("/?tab=1")  # a cookie, but no session
    assert response.status_code == 302 and response["Location"] == "/accounts/login/?next=/%3Ftab%3D1"


def test_has_perm_answers_as_django_does_in_one_query(owner, stranger, staff, django_user_model):
    def fresh(user):
        return django_user_model.objects.get(pk=user.pk)

    perm = "terminal.use_terminal"
    group = Group.objects.create(name="shell users")
    group.permissions.add(_permission())
    stranger.groups.add(group)
    _grant(staff)
    superuser = django_user_model.objects.create_user("root", is_superuser=True)
    inactive = django_user_model.objects.create_user("gone", is_active=False)
    _grant(inactive)
    for user in (owner, stranger, staff, superuser, inactive):
        user = fresh(user)
        with CaptureQueriesContext(connection) as queries:
            mine = has_perm(user, perm)
            assert has_perm(user, perm) == mine  # asked again: remembered on the user object
        assert len(queries) <= 1
        assert mine == fresh(user).has_perm(perm), user.username
        assert has_perm(user, "terminal.no_such_permission") == fresh(user).has_perm("terminal.no_such_permission")
    assert [has_perm(fresh(u), perm) for u in (owner, stranger, staff, superuser, inactive)] == [
        False, True, True, True, False]


def test_the_terminal_page_follows_the_permission_through_a_group_too(owner):
    client = Client()
    client.force_login(owner)
    assert client.get("/terminal/").status_code == 403
    group = Group.objects.create(name="shell users")
    group.permissions.add(_permission())
    owner.groups.add(group)
    assert client.get("/terminal/").status_code == 200
    owner.groups.clear()
    assert client.get("/terminal/").status_code == 403  # the next request sees it taken away
