"""RequestContextMiddleware (autobot/middleware.py): every response names its request id, and the
audit events a request writes carry that id and the caller's address."""

import re

import pytest
from django.test import AsyncClient

from autobot.models import AuditEvent

pytestmark = pytest.mark.django_db(transaction=True)


async def test_each_response_names_a_fresh_request_id():
    client = AsyncClient()
    first = (await client.get("/api/health"))["X-Request-ID"]
    second = (await client.get("/api/health"))["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", first) and re.fullmatch(r"[0-9a-f]{32}", second)
    assert first != second


async def test_a_well_formed_incoming_request_id_is_kept_and_any_other_replaced():
    client = AsyncClient()
    kept = await client.get("/api/health", headers={"X-Request-ID": "trace-42.a_b"})
    assert kept["X-Request-ID"] == "trace-42.a_b"
    replaced = await client.get("/api/health", headers={"X-Request-ID": "bad id; <script>"})
    assert re.fullmatch(r"[0-9a-f]{32}", replaced["X-Request-ID"])


class _ClientAt(AsyncClient):
    """AsyncClient whose requests come from `address` (the ASGI scope's peer)."""

    def __init__(self, address: str) -> None:
        super().__init__()
        self.address = address

    def _base_scope(self, **request):
        return {**super()._base_scope(**request), "client": [self.address, 50000]}


async def test_an_audit_event_carries_the_request_id_and_the_client_address(owner):
    client = _ClientAt("10.1.2.3")
    await client.aforce_login(owner)  # tokens are made from a browser session
    for _ in range(2):  # the second asks the remembered address
        response = await client.post("/api/tokens", {"name": "ci"}, content_type="application/json")
        assert response.status_code == 201
        event = await AuditEvent.objects.filter(action="auth.token_created").alatest("id")
        assert event.correlation_id == response["X-Request-ID"]
        assert event.ip == "10.1.2.3"


def test_peer_addresses_are_normalised_and_anything_else_is_none_also_when_asked_again():
    from autobot.http import scope_ip

    for _ in range(2):  # the second time from memory
        assert scope_ip({"client": ("0:0:0:0:0:0:0:1", 1)}) == "::1"
        assert scope_ip({"client": (" 10.0.0.7 ", 1)}) == "10.0.0.7"
        assert scope_ip({"client": ("not-an-address", 1)}) is None
        assert scope_ip({"client": None}) is None
