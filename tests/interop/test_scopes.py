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
