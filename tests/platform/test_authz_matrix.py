"""The authorisation matrix: user B (a normal account, with the terminal permission, so that only
ownership can refuse) against user A's objects, through every API operation, page and socket.

The tables below must name every operation of the OpenAPI document that selects an object (a path
parameter, or a query parameter naming a user, session or agent), every list operation, every
page URL with a parameter and every WebSocket route: a new one that is not listed fails
`test_every_*_is_in_the_table`. Each row creates A's object with the product's services, calls as
B (Bearer token, and browser session), and asserts the documented refusal with a
`{"detail", "code"}` body and that nothing of A's changed. Every operation without authentication
is on `PUBLIC`; an anonymous call to any other is a 401.
A staff member who is not a superuser and holds no permission is played too, where the docs say
staff are refused (approvals, other users' API tokens).
"""

from __future__ import annotations

import os
import re
import uuid
from dataclasses import dataclass, field

import pytest
from asgiref.sync import sync_to_async
from asgiref.testing import ApplicationCommunicator
from channels.testing import WebsocketCommunicator
from django.test import AsyncClient
from django.urls import URLPattern, URLResolver, get_resolver

from autobot.asgi import application
from tests.conftest import PASSWORD, BearerClient, asgi_response, make_token

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

MARK = "a-secret-7f3c"  # in every object of A's: no answer to B may contain it

# -- the OpenAPI document ---------------------------------------------------------------------

PUBLIC = {
    ("GET", "/api/health"): "load balancers and monitors probe it without an account",
}
# Query parameters that pick another user's object (or a user) rather than filter one's own.
OBJECT_QUERY_PARAMS = {"user", "owner", "session", "session_id", "agent", "agent_id", "token", "crawl", "entry"}


def _document() -> dict:
    from autobot.api import api

    return api.get_openapi_schema()


def _operations() -> list[tuple[str, str, dict]]:
    return [(method.upper(), path, op) for path, ops in _document()["paths"].items() for method, op in ops.items()]


def _selects_an_object(op: dict) -> bool:
    params = op.get("parameters", [])
    return any(p["in"] == "path" or (p["in"] == "query" and p["name"] in OBJECT_QUERY_PARAMS) for p in params)


def _is_list(op: dict) -> bool:
    if "parameters" not in op or not any(p["name"] == "limit" for p in op["parameters"]):
        return False
    return True


# -- A's world --------------------------------------------------------------------------------


@dataclass
class World:
    """User A's objects, made on demand with the product's services; B and a staff member
    (not superuser, no permissions) who play the attacker."""

    a: object
    b: object
    staff: object
    ids: dict = field(default_factory=dict)

    async def get(self, name: str):
        if name not in self.ids:
            self.ids[name] = await MAKERS[name](self)
        return self.ids[name]


async def _chat_session(w: World):
    from chat import services

    return str((await services.session_create(user=w.a, title=f"{MARK} plans")).id)


async def _chat_message(w: World):
    from chat.models import ChatMessage

    session = await w.get("chat_session")
    message = await ChatMessage.objects.acreate(session_id=session, role=ChatMessage.Role.USER,
                                                content=f"{MARK} question", correlation_id="turn-a")
    return message.pk


async def _approval(w: World):
    from chat.operator import approvals

    session, message = await w.get("chat_session"), await w.get("chat_message")
    approval = await approvals.approval_create(
        user=w.a, message_id=message, risk="HIGH", reasons=["dotfile"], correlation_id="turn-a",
        session_id=uuid.UUID(session), call_id="w", tool="files_write", command=f"write {MARK}",
        cwd="", arguments={"path": ".profile", "content": MARK})
    return str(approval.pk)


async def _terminal_session(w: World):
    from terminal import services

    session = await services.session_open(user=w.a, title=f"{MARK} shell")
    # One command of A's in its history and the audit.
    await services.command_run(user=w.a, command=f"echo {MARK}", level=session.security_level, cwd=None,
                               timeout=10, client_ip=None, session=session)
    return str(session.pk)


async def _entry(w: World):
    from knowledge import services

    return (await services.entry_create(user=w.a, title=f"{MARK} note", content=f"{MARK} the vault code")).pk


async def _shared_entry(w: World):
    from knowledge import services

    return (await services.entry_create(user=w.a, title="shared note", content="for everyone", shared=True)).pk


async def _crawl(w: World):
    from knowledge.models import CrawlJob

    return (await CrawlJob.objects.acreate(owner=w.a, url=f"http://127.0.0.1:9/{MARK}",
                                           status=CrawlJob.Status.DONE)).pk


async def _token(w: World):
    from autobot.auth import token_create

    token, _raw = await token_create(actor=None, user=w.a, name=f"{MARK} laptop", via="test")
    return token.pk


async def _file(w: World):
    from files import services

    await services.file_write(user=w.a, path=f"{MARK}.txt", data=f"{MARK} contents".encode())
    return f"{MARK}.txt"


async def _agent_message(w: World):
    from agents import services

    body = f'{{"header": {{"message_type": "NOTIFICATION", "recipient_id": "{MARK}"}}, ' \
           f'"payload": {{"action": "{MARK}", "data": {{}}}}}}'
    return str((await services.message_log(services.api_message(w.a, body), user=w.a)).message_id)


MAKERS = {
    "chat_session": _chat_session, "chat_message": _chat_message, "approval": _approval,
    "terminal_session": _terminal_session, "entry": _entry, "shared_entry": _shared_entry, "crawl": _crawl,
    "token": _token, "file": _file, "agent_message": _agent_message,
}


def _snapshot_sync(a_pk: int, b_pk: int, area: str) -> dict:
    """Everything of A's a call could change, and what B is recorded as having done."""
    from autobot.models import ApiToken, AuditEvent
    from chat.models import Approval, ChatMessage, ChatSession
    from knowledge.models import CrawlJob, KnowledgeEntry
    from terminal.models import CommandRecord, TerminalSession

    files = []
    for root, dirs, names in os.walk(area):
        files += [os.path.relpath(os.path.join(root, n), area) for n in sorted(dirs + names)]
    return {
        "chat": list(ChatSession.objects.filter(owner_id=a_pk).values_list("id", "title", "model", "tools")),
        "messages": list(ChatMessage.objects.filter(session__owner_id=a_pk).values_list("id", "content", "status")),
        "approvals": list(Approval.objects.values_list("id", "status")),
        "terminal": list(TerminalSession.objects.filter(owner_id=a_pk).values_list("id", "title", "security_level",
                                                                                 "status")),
        "commands": CommandRecord.objects.count(),
        "entries": list(KnowledgeEntry.objects.filter(owner_id=a_pk).values_list("id", "title", "content", "shared")),
        "crawls": list(CrawlJob.objects.filter(owner_id=a_pk).values_list("id", "status")),
        "tokens": list(ApiToken.objects.filter(user_id=a_pk).values_list("id", "revoked_at")),
        "files": files,
        # What B did to something (an attempt refused is recorded too, with its error code).
        "b_acted": sorted(action for action, data in AuditEvent.objects.filter(actor_id=b_pk).values_list(
            "action", "data") if (data or {}).get("result", "ok") == "ok"),
    }


async def snapshot(w: World, actor) -> dict:
    from files.services import area_path

    return await sync_to_async(_snapshot_sync)(w.a.pk, actor.pk, str(area_path(w.a.get_username())))


# -- the table --------------------------------------------------------------------------------


@dataclass
class Row:
    needs: tuple[str, ...]  # the objects of A's the URL names
    url: str  # formatted with them
    body: dict | None = None  # JSON body (None: no body)
    status: int = 404
    code: str | None = None  # None: any code, but the body must have one


def _rows() -> dict[tuple[str, str], Row]:
    chat = "/api/chat/sessions/{chat_session}"
    term = "/api/terminal/sessions/{terminal_session}"
    return {
        # platform
        ("DELETE", "/api/tokens/{token_id}"): Row(("token",), "/api/tokens/{token}", code="token_not_found"),
        # terminal
        ("GET", "/api/terminal/sessions/{session_id}"): Row(("terminal_session",), term, code="session_not_found"),
        ("PATCH", "/api/terminal/sessions/{session_id}"): Row(("terminal_session",), term,
                                                                {"title": "taken", "security_level": "RESTRICTED"},
                                                                code="session_not_found"),
        ("DELETE", "/api/terminal/sessions/{session_id}"): Row(("terminal_session",), term, code="session_not_found"),
        ("POST", "/api/terminal/sessions/{session_id}/execute"): Row(("terminal_session",), term + "/execute",
                                                                       {"command": "echo pwned"},
                                                                       code="session_not_found"),
        ("POST", "/api/terminal/sessions/{session_id}/input"): Row(("terminal_session",), term + "/input",
                                                                     {"text": "echo pwned\r"},
                                                                     code="session_not_found"),
        ("POST", "/api/terminal/sessions/{session_id}/signal"): Row(("terminal_session",), term + "/signal",
                                                                      {"signal": "SIGKILL"}, code="session_not_found"),
        ("GET", "/api/terminal/sessions/{session_id}/history"): Row(("terminal_session",), term + "/history",
                                                                      code="session_not_found"),
        ("GET", "/api/terminal/sessions/{session_id}/recording"): Row(("terminal_session",), term + "/recording",
                                                                        code="session_not_found"),
        ("GET", "/api/terminal/sessions"): Row((), "/api/terminal/sessions?owner=owner", status=200),
        ("GET", "/api/terminal/audit"): Row(("terminal_session",), "/api/terminal/audit?session={terminal_session}",
                                            code="session_not_found"),
        # knowledge
        ("GET", "/api/knowledge/entries"): Row((), "/api/knowledge/entries?owner=owner", status=200),
        ("GET", "/api/knowledge/entries/{entry_id}"): Row(("entry",), "/api/knowledge/entries/{entry}",
                                                          code="entry_not_found"),
        ("PATCH", "/api/knowledge/entries/{entry_id}"): Row(("entry",), "/api/knowledge/entries/{entry}",
                                                            {"title": "taken", "shared": True},
                                                            code="entry_not_found"),
        ("DELETE", "/api/knowledge/entries/{entry_id}"): Row(("entry",), "/api/knowledge/entries/{entry}",
                                                             code="entry_not_found"),
        ("GET", "/api/knowledge/crawls/{crawl_id}"): Row(("crawl",), "/api/knowledge/crawls/{crawl}",
                                                         code="crawl_not_found"),
        ("POST", "/api/knowledge/crawls/{crawl_id}/cancel"): Row(("crawl",), "/api/knowledge/crawls/{crawl}/cancel",
                                                                 code="crawl_not_found"),
        # chat
        ("GET", "/api/chat/sessions/{session_id}"): Row(("chat_session",), chat, code="chat_session_not_found"),
        ("PATCH", "/api/chat/sessions/{session_id}"): Row(("chat_session",), chat, {"title": "taken"},
                                                          code="chat_session_not_found"),
        ("DELETE", "/api/chat/sessions/{session_id}"): Row(("chat_session",), chat, code="chat_session_not_found"),
        ("GET", "/api/chat/sessions/{session_id}/messages"): Row(("chat_session",), chat + "/messages",
                                                                 code="chat_session_not_found"),
        ("POST", "/api/chat/sessions/{session_id}/messages"): Row(("chat_session",), chat + "/messages",
                                                                  {"content": "pwned"},
                                                                  code="chat_session_not_found"),
        ("POST", "/api/chat/sessions/{session_id}/cancel"): Row(("chat_session",), chat + "/cancel",
                                                                code="chat_session_not_found"),
        ("GET", "/api/chat/sessions/{session_id}/approvals"): Row(("approval",), chat + "/approvals",
                                                                  code="chat_session_not_found"),
        ("POST", "/api/chat/sessions/{session_id}/approvals/{approval_id}"): Row(
            ("approval",), chat + "/approvals/{approval}", {"decision": "approve"}, code="chat_session_not_found"),
        ("GET", "/api/chat/sessions/{session_id}/messages/{message_id}/trail"): Row(
            ("chat_message",), chat + "/messages/{chat_message}/trail", code="chat_session_not_found"),
        ("GET", "/api/chat/sessions/{session_id}/export"): Row(("chat_session",), chat + "/export?format=json",
                                                               code="chat_session_not_found"),
        # files: ?user= names another user's area
        ("GET", "/api/files/"): Row(("file",), "/api/files/?user=owner", code="area_not_found"),
        ("DELETE", "/api/files/"): Row(("file",), "/api/files/?user=owner&path={file}", code="area_not_found"),
        ("POST", "/api/files/mkdir"): Row(("file",), "/api/files/mkdir?user=owner", {"path": "pwned"},
                                          code="area_not_found"),
        ("POST", "/api/files/move"): Row(("file",), "/api/files/move?user=owner",
                                         {"src": "{file}", "dst": "moved.txt"}, code="area_not_found"),
        ("GET", "/api/files/download"): Row(("file",), "/api/files/download?user=owner&path={file}",
                                            code="area_not_found"),
        ("GET", "/api/files/preview"): Row(("file",), "/api/files/preview?user=owner&path={file}",
                                           code="area_not_found"),
        ("POST", "/api/files/upload"): Row(("file",), "/api/files/upload?user=owner&path=", "multipart",
                                           code="area_not_found"),
        # agents: the log's `agent` filter only narrows the caller's own rows
        ("GET", "/api/agents/messages"): Row(("agent_message",), f"/api/agents/messages?agent={MARK}", status=200),
    }


EXEMPT = {
    ("GET", "/api/agents/{agent_id}"): "the agent registry is shown to every signed-in user (docs/agents.md, REST)",
    ("GET", "/api/agents/{agent_id}/card"): "the same registry entry as a card (deprecated)",
}
LISTS_EXEMPT = {
    ("GET", "/api/agents/"): "the agent registry is shown to every signed-in user (docs/agents.md, REST)",
}

ROWS = _rows()


def _fill(template, values: dict):
    if isinstance(template, dict):
        return {k: _fill(v, values) for k, v in template.items()}
    return template.format(**values) if isinstance(template, str) else template


async def _clients(user) -> dict[str, AsyncClient]:
    browser = AsyncClient()
    await browser.aforce_login(user)
    return {"token": BearerClient(await sync_to_async(make_token)(user)), "session": browser}


async def _call(client: AsyncClient, method: str, url: str, body):
    if body == "multipart":
        from django.core.files.uploadedfile import SimpleUploadedFile

        return await client.post(url, {"files": SimpleUploadedFile("pwned.txt", b"pwned")})
    kwargs = {"content_type": "application/json", "data": body} if body is not None else {}
    return await getattr(client, method.lower())(url, **kwargs)


def _assert_error(response, status: int, code: str | None, where: str) -> None:
    assert response.status_code == status, f"{where}: {response.status_code} {response.content[:300]!r}"
    body = response.json()
    assert isinstance(body.get("detail"), str) and body["detail"], where
    assert isinstance(body.get("code"), str) and body["code"], where
    if code:
        assert body["code"] == code, f"{where}: {body}"


@pytest.fixture
async def world(owner, stranger, django_user_model):
    from tests.terminal.conftest import agrant

    await agrant(owner)
    await agrant(stranger)  # B may use the terminal: only ownership can refuse B
    clerk = await django_user_model.objects.acreate_user("clerk", password=PASSWORD, is_staff=True)
    yield World(a=owner, b=stranger, staff=clerk)
    from terminal.services import sessions_shutdown

    await sessions_shutdown()


# -- the guard: every operation is in a table -------------------------------------------------


def test_every_operation_selecting_an_object_is_in_the_table():
    selecting = {(m, p) for m, p, op in _operations() if _selects_an_object(op)}
    missing = selecting - set(ROWS) - set(EXEMPT)
    assert not missing, f"operations that name an object but are not in the authz table: {sorted(missing)}"
    known = {(m, p) for m, p, _ in _operations()}
    assert not (set(ROWS) | set(EXEMPT)) - known, "rows for operations that no longer exist"


def test_every_list_operation_is_in_the_table():
    lists = {(m, p) for m, p, op in _operations() if m == "GET" and _is_list(op)}
    missing = lists - set(LIST_ROWS) - set(LISTS_EXEMPT)
    assert not missing, f"list operations not checked for other users' rows: {sorted(missing)}"


def test_every_operation_without_authentication_is_on_the_public_list():
    open_ops = {(m, p) for m, p, op in _operations() if not op.get("security")}
    assert open_ops == set(PUBLIC)


# -- anonymous --------------------------------------------------------------------------------


def _sample_url(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


@pytest.mark.parametrize(("method", "path"), [(m, p) for m, p, _ in _operations() if (m, p) not in PUBLIC])
async def test_an_anonymous_call_is_401(method, path):
    body = "multipart" if path == "/api/files/upload" else ({} if method in ("POST", "PATCH", "PUT") else None)
    response = await _call(AsyncClient(), method, _sample_url(path), body)
    _assert_error(response, 401, "not_authenticated", f"{method} {path}")


@pytest.mark.parametrize("path", ["/mcp", "/a2a"])
async def test_an_anonymous_call_to_a_door_is_401(path):
    # The doors live in front of Django (autobot/asgi.py): called through the whole application.
    scope = {"type": "http", "http_version": "1.1", "method": "POST", "scheme": "http", "path": path,
             "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(b"host", b"testserver"), (b"content-type", b"application/json"),
                         (b"accept", b"application/json, text/event-stream")],
             "client": ("127.0.0.1", 50000), "server": ("testserver", 80)}
    comm = ApplicationCommunicator(application, scope)
    await comm.send_input({"type": "http.request", "body": b"{}", "more_body": False})
    start, _ = await asgi_response(comm)
    assert start["status"] == 401


# -- B against A's objects --------------------------------------------------------------------


@pytest.mark.parametrize("key", sorted(ROWS), ids=lambda k: f"{k[0]} {k[1]}")
async def test_another_user_is_refused_and_nothing_changes(world, key):
    method, path = key
    row = ROWS[key]
    for name in row.needs:
        await world.get(name)
    values = dict(world.ids)  # with what they were made from (an approval's chat session)
    url, body = _fill(row.url, values), _fill(row.body, values)
    before = await snapshot(world, world.b)
    for how, client in (await _clients(world.b)).items():
        response = await _call(client, method, url, body)
        where = f"B by {how}: {method} {url}"
        if row.status == 200:
            assert response.status_code == 200, f"{where}: {response.status_code}"
            assert MARK not in response.content.decode(), f"{where} shows A's rows"
        else:
            _assert_error(response, row.status, row.code, where)
            assert MARK not in response.content.decode(), where
    assert await snapshot(world, world.b) == before


# -- lists ------------------------------------------------------------------------------------

LIST_ROWS = {  # the list, and the objects of A's that must not appear in it
    ("GET", "/api/tokens"): (("token",), "/api/tokens"),
    ("GET", "/api/terminal/sessions"): (("terminal_session",), "/api/terminal/sessions"),
    ("GET", "/api/terminal/audit"): (("terminal_session",), "/api/terminal/audit"),
    ("GET", "/api/knowledge/entries"): (("entry",), "/api/knowledge/entries"),
    ("GET", "/api/knowledge/search"): (("entry",), "/api/knowledge/search?q=vault"),
    ("GET", "/api/knowledge/crawls"): (("crawl",), "/api/knowledge/crawls"),
    ("GET", "/api/chat/sessions"): (("chat_session",), f"/api/chat/sessions?q={MARK}"),
    ("GET", "/api/files/"): (("file",), "/api/files/"),
    ("GET", "/api/agents/messages"): (("agent_message",), "/api/agents/messages"),
    # Lists inside one of A's objects: B gets the object's 404 (ROWS).
    ("GET", "/api/chat/sessions/{session_id}/messages"): None,
    ("GET", "/api/terminal/sessions/{session_id}/history"): None,
}


@pytest.mark.parametrize("key", sorted(k for k, v in LIST_ROWS.items() if v), ids=lambda k: k[1])
async def test_a_list_shows_another_user_none_of_their_rows(world, key):
    needs, url = LIST_ROWS[key]
    for name in needs:
        await world.get(name)
    for how, client in (await _clients(world.b)).items():
        response = await client.get(url)
        assert response.status_code == 200, (how, response.content[:300])
        assert MARK not in response.content.decode(), f"B by {how} sees A's rows in {url}"
        assert response.json().get("count", 0) == 0 or key == ("GET", "/api/tokens"), (how, response.json())


async def test_search_and_stats_show_another_user_nothing_of_theirs(world):
    await world.get("entry")
    for how, client in (await _clients(world.b)).items():
        found = await client.get("/api/knowledge/search", {"q": MARK})
        assert found.status_code == 200 and found.json()["items"] == [], how
        stats = await client.get("/api/knowledge/stats")
        assert stats.status_code == 200 and MARK not in stats.content.decode()


async def test_a_shared_entry_is_readable_but_only_its_owner_changes_it(world):
    entry = await world.get("shared_entry")
    before = await snapshot(world, world.b)
    for how, client in (await _clients(world.b)).items():
        assert (await client.get(f"/api/knowledge/entries/{entry}")).status_code == 200, how
        patched = await _call(client, "PATCH", f"/api/knowledge/entries/{entry}", {"title": "taken"})
        _assert_error(patched, 403, None, f"B by {how}: PATCH shared entry")
        deleted = await _call(client, "DELETE", f"/api/knowledge/entries/{entry}", None)
        _assert_error(deleted, 403, None, f"B by {how}: DELETE shared entry")
    assert await snapshot(world, world.b) == before


# -- a staff member who is not a superuser and holds no permission ----------------------------


async def test_staff_cannot_decide_another_users_approval(world):
    session, approval = await world.get("chat_session"), await world.get("approval")
    before = await snapshot(world, world.staff)
    for how, client in (await _clients(world.staff)).items():
        response = await _call(client, "POST", f"/api/chat/sessions/{session}/approvals/{approval}",
                               {"decision": "approve"})
        _assert_error(response, 404, None, f"staff by {how}")
    assert await snapshot(world, world.staff) == before


async def test_staff_without_the_permission_cannot_revoke_another_users_token(world):
    token = await world.get("token")
    before = await snapshot(world, world.staff)
    for how, client in (await _clients(world.staff)).items():
        response = await client.delete(f"/api/tokens/{token}")
        _assert_error(response, 404, "token_not_found", f"staff by {how}")
    assert await snapshot(world, world.staff) == before


async def test_staff_without_the_permission_cannot_mint_a_token_for_another_user(world, django_user_model):
    root = await django_user_model.objects.acreate_superuser("root", password=PASSWORD)
    browser = (await _clients(world.staff))["session"]
    for target in (world.a, root):
        response = await _call(browser, "POST", "/api/tokens", {"username": target.get_username()})
        _assert_error(response, 403, "forbidden", f"staff minting for {target}")
    from autobot.models import ApiToken

    assert not await ApiToken.objects.filter(user__in=[world.a, root]).aexists()


# -- pages ------------------------------------------------------------------------------------

PAGES = {
    "terminal/sessions/<str:session_id>/replay/": (("terminal_session",),
                                                   "/terminal/sessions/{terminal_session}/replay/"),
    "knowledge/entries/<int:entry_id>/html": (("entry",), "/knowledge/entries/{entry}/html"),
}


def _page_routes(patterns=None, prefix: str = "") -> list[str]:
    routes = []
    for pattern in patterns if patterns is not None else get_resolver().url_patterns:
        route = prefix + str(pattern.pattern)
        if route.startswith(("api/", "^api/", "admin/")):
            continue
        if isinstance(pattern, URLResolver):
            routes += _page_routes(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern) and "<" in route:
            routes.append(route)
    return routes


def test_every_page_with_a_parameter_is_in_the_table():
    assert set(_page_routes()) == set(PAGES)


@pytest.mark.parametrize("route", sorted(PAGES))
async def test_another_users_object_is_404_on_its_page(world, route):
    needs, template = PAGES[route]
    for name in needs:
        await world.get(name)
    url = template.format(**world.ids)
    browser = (await _clients(world.b))["session"]
    response = await browser.get(url)
    assert response.status_code == 404
    assert MARK not in response.content.decode()


# -- sockets ----------------------------------------------------------------------------------

SOCKETS = {
    r"^ws/terminal/(?P<session_id>[0-9a-fA-F-]{1,64})/$": ("terminal_session", "/ws/terminal/{}/", 4404),
    r"^ws/chat/(?P<session_id>[0-9a-f-]+)/$": ("chat_session", "/ws/chat/{}/", 4404),
    r"^ws/knowledge/crawls/(?P<crawl_id>[0-9]+)/$": ("crawl", "/ws/knowledge/crawls/{}/", 4404),
    r"^ws/agents/$": ("agent", "/ws/agents/?agent_id={}", 4403),
    r"^ws/agents/feed/$": ("agent_message", "/ws/agents/feed/", None),  # a feed of the caller's own
}


def test_every_socket_route_is_in_the_table():
    from autobot.ws import collect_websocket_urlpatterns

    assert {str(p.pattern) for p in collect_websocket_urlpatterns()} == set(SOCKETS)


async def _socket(path: str, *, token: str | None, origin: str | None = "http://testserver", cookie=None):
    headers = [(b"host", b"testserver")]
    if origin:
        headers.append((b"origin", origin.encode()))
    if token:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    if cookie:
        headers.append((b"cookie", cookie.encode()))
    comm = WebsocketCommunicator(application, path, headers=headers)
    connected, _ = await comm.connect(timeout=10)
    return comm, connected


async def _closed_with(comm) -> tuple[int, list]:
    frames = []
    while True:
        out = await comm.receive_output(timeout=10)
        if out["type"] == "websocket.close":
            return out.get("code"), frames
        frames.append(out)


async def _agent_of_a(w: World) -> str:
    from agents.models import Agent

    await Agent.objects.acreate(id="a-agent", name="A's agent", owner=w.a, kind=Agent.Kind.EXTERNAL)
    return "a-agent"


MAKERS["agent"] = _agent_of_a


@pytest.mark.parametrize("route", sorted(SOCKETS))
async def test_a_socket_refuses_anonymous_foreign_origin_and_another_users_object(world, route):
    name, template, close = SOCKETS[route]
    path = template.format(await world.get(name))
    b_token = await sync_to_async(make_token)(world.b)

    comm, _ = await _socket(path, token=None)
    assert (await _closed_with(comm))[0] == 4401, "anonymous"
    comm, _ = await _socket(path, token=b_token, origin="https://evil.example")
    assert (await _closed_with(comm))[0] == 4403, "foreign Origin"

    browser = AsyncClient()
    await browser.aforce_login(world.b)
    cookie = f"sessionid={browser.cookies['sessionid'].value}"
    comm, _ = await _socket(path, token=None, origin="https://evil.example", cookie=cookie)
    assert (await _closed_with(comm))[0] == 4403, "foreign Origin with B's session cookie"

    for how, creds in (("token", {"token": b_token}), ("session", {"token": None, "cookie": cookie})):
        comm, _ = await _socket(path, **creds)
        if close is None:  # the feed: open, the registry first, then nothing of A's messages
            assert (await comm.receive_json_from(timeout=10))["type"] == "agents"
            await _agent_message(world)
            assert await comm.receive_nothing(timeout=0.5)
            await comm.disconnect()
            continue
        code, frames = await _closed_with(comm)
        assert code == close, f"B by {how} on {path}: {code} {frames}"
        assert all(MARK not in str(f) for f in frames)
