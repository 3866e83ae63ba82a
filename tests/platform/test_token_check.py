"""The Bearer token check's hot path (autobot/auth.py): a hand-written query and a throttled
last_used_at. Each correctness point it must keep, seen from the API as a client would."""

from datetime import timedelta

import pytest
from django.utils import timezone

from autobot import auth
from autobot.models import ApiToken
from tests.conftest import BearerClient

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _forget_touches():
    auth._touched.clear()
    yield
    auth._touched.clear()


async def _token(owner, token_for, **fields) -> tuple[str, ApiToken]:
    from asgiref.sync import sync_to_async

    raw = await sync_to_async(token_for)(owner, **fields)
    return raw, await ApiToken.objects.aget(token_hash=ApiToken.hash(raw))


async def test_a_token_that_expires_is_refused_from_the_next_request(owner, token_for):
    raw, token = await _token(owner, token_for, expires_at=timezone.now() + timedelta(hours=1))
    client = BearerClient(raw)
    assert (await client.get("/api/me")).status_code == 200
    await ApiToken.objects.filter(pk=token.pk).aupdate(expires_at=timezone.now() - timedelta(seconds=1))
    response = await client.get("/api/me")
    assert response.status_code == 401 and response.json()["code"] == "invalid_token"


async def test_a_revoked_token_is_refused_from_the_next_request(owner, token_for):
    raw, token = await _token(owner, token_for)
    client = BearerClient(raw)
    assert (await client.get("/api/chat/sessions")).status_code == 200
    await ApiToken.objects.filter(pk=token.pk).aupdate(revoked_at=timezone.now())
    assert (await client.get("/api/chat/sessions")).status_code == 401


async def test_a_deactivated_user_is_refused_from_the_next_request(owner, token_for):
    raw, _token_row = await _token(owner, token_for)
    client = BearerClient(raw)
    assert (await client.get("/api/me")).status_code == 200
    owner.is_active = False
    await owner.asave(update_fields=["is_active"])
    assert (await client.get("/api/me")).status_code == 401


async def test_a_user_made_staff_is_staff_from_the_next_request(owner, token_for):
    raw, _token_row = await _token(owner, token_for)
    client = BearerClient(raw)
    assert (await client.get("/api/me")).json()["is_staff"] is False
    owner.is_staff = True
    await owner.asave(update_fields=["is_staff"])
    assert (await client.get("/api/me")).json()["is_staff"] is True


async def test_an_unknown_or_malformed_token_is_refused(owner, token_for):
    await _token(owner, token_for)
    for raw in ("abt_" + "x" * 43, "not-a-token", "abt_" + "y" * 300):
        response = await BearerClient(raw).get("/api/me")
        assert response.status_code == 401 and response.json()["code"] == "invalid_token"


async def test_last_used_is_set_on_first_use_and_advances_once_stale(owner, token_for):
    raw, token = await _token(owner, token_for)
    assert token.last_used_at is None
    client = BearerClient(raw)
    assert (await client.get("/api/me")).status_code == 200
    await token.arefresh_from_db()
    first = token.last_used_at
    assert first is not None

    # Within the minute: a read stays a read.
    assert (await client.get("/api/me")).status_code == 200
    await token.arefresh_from_db()
    assert token.last_used_at == first

    # Older than a minute (as if the last request was two minutes ago): written again.
    two_minutes_ago = timezone.now() - timedelta(minutes=2)
    await ApiToken.objects.filter(pk=token.pk).aupdate(last_used_at=two_minutes_ago)
    auth._touched.clear()  # this process's note of its own last write, also a minute old by then
    assert (await client.get("/api/me")).status_code == 200
    await token.arefresh_from_db()
    assert token.last_used_at > two_minutes_ago + timedelta(minutes=1)


async def test_the_list_endpoints_show_only_what_the_token_owner_may_see(owner, stranger, staff, token_for):
    from chat.models import ChatSession
    from knowledge import services as knowledge

    await ChatSession.objects.acreate(owner=owner, title="mine")
    await knowledge.entry_create(user=owner, title="private", content="owner's private note")
    await knowledge.entry_create(user=owner, title="shared", content="a note for everyone", shared=True)
    owner_client = BearerClient(await _token_raw(owner, token_for))
    stranger_client = BearerClient(await _token_raw(stranger, token_for))
    staff_client = BearerClient(await _token_raw(staff, token_for))

    assert [s["title"] for s in (await owner_client.get("/api/chat/sessions")).json()["items"]] == ["mine"]
    assert (await stranger_client.get("/api/chat/sessions")).json() == {"items": [], "count": 0}
    assert (await staff_client.get("/api/chat/sessions")).json()["count"] == 1

    def titles(response):
        return sorted(e["title"] for e in response.json()["items"])

    assert titles(await owner_client.get("/api/knowledge/entries")) == ["private", "shared"]
    assert titles(await stranger_client.get("/api/knowledge/entries")) == ["shared"]
    assert titles(await staff_client.get("/api/knowledge/entries")) == ["private", "shared"]


async def _token_raw(user, token_for) -> str:
    from asgiref.sync import sync_to_async

    return await sync_to_async(token_for)(user)
