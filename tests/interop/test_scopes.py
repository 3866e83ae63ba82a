"""Read-only API tokens: created over the API, shown in the list, refused every change over REST."""

import pytest
from django.test import AsyncClient

from autobot.models import ApiToken, AuditEvent
from tests.conftest import BearerClient

pytestmark = pytest.mark.django_db(transaction=True)


async def test_a_read_only_token_reads_and_is_refused_writes_and_commands(owner):
    browser = AsyncClient()
    await browser.aforce_login(owner)
    created = (await browser.post("/api/tokens", {"name": "dashboard", "scope": "read"},
                                  content_type="application/json")).json()
    assert created["scope"] == "read"
    listing = (await browser.get("/api/tokens")).json()
    assert [item["scope"] for item in listing["items"]] == ["read"]
    assert (await ApiToken.objects.aget(user=owner)).scope == "read"
    event = await AuditEvent.objects.aget(action="auth.token_created")
    assert event.data["scope"] == "read"

    token = BearerClient(created["token"])
    assert (await token.get("/api/me")).status_code == 200
    assert (await token.get("/api/files/")).status_code == 200
    for method, path, body in (("post", "/api/files/mkdir", {"path": "new"}),
                               ("post", "/api/terminal/sessions", {})):
        response = await getattr(token, method)(path, body, content_type="application/json")
        assert response.status_code == 403, (path, response.content)
        assert response.json()["code"] == "read_only_token"


async def test_an_unknown_scope_is_a_422(owner):
    browser = AsyncClient()
    await browser.aforce_login(owner)
    response = await browser.post("/api/tokens", {"name": "x", "scope": "admin"}, content_type="application/json")
    assert response.status_code == 422
    assert await ApiToken.objects.acount() == 0


async def test_a_read_only_token_opens_no_socket(owner):
    from asgiref.sync import sync_to_async
    from channels.testing import WebsocketCommunicator

    from tests.conftest import _make_token
    from tests.platform.test_websocket_gate import _whoami_app

    raw = await sync_to_async(_make_token)(owner, scope="read")
    comm = WebsocketCommunicator(_whoami_app(), "/ws/whoami/", headers=[
        (b"host", b"testserver"), (b"authorization", f"Bearer {raw}".encode())])
    await comm.connect()  # the gate accepts, then closes with a code the page can read
    closed = await comm.receive_output(timeout=5)
    assert closed["type"] == "websocket.close" and closed["code"] == 4403
    await comm.disconnect()
