from datetime import timedelta

import pytest
from django.core.management import call_command
from django.test import AsyncClient
from django.utils import timezone

from autobot.models import ApiToken, AuditEvent
from tests.conftest import BearerClient

pytestmark = pytest.mark.django_db(transaction=True)


def test_create_api_token_command_prints_a_working_token_last(owner, capsys):
    call_command("create_api_token", "owner", "--name", "ci")
    out = capsys.readouterr().out.strip().splitlines()
    raw = out[-1]
    assert raw.startswith("abt_")
    token = ApiToken.objects.get(user=owner)
    assert token.token_hash == ApiToken.hash(raw) and raw not in token.token_hash  # only the hash is stored
    assert AuditEvent.objects.filter(action="auth.token_created", target_id=str(token.pk)).exists()


def test_create_api_token_for_unknown_user_fails(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="no user named"):
        call_command("create_api_token", "nobody")


async def test_revoked_token_stops_working(api_client, owner):
    client = api_client(owner)
    assert (await client.get("/api/me")).status_code == 200
    listing = (await client.get("/api/tokens")).json()
    token_id = listing["items"][0]["id"]
    response = await client.delete(f"/api/tokens/{token_id}")
    assert response.status_code == 200 and response.json()["revoked_at"]
    response = await client.get("/api/me")
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"
    assert await AuditEvent.objects.filter(action="auth.token_revoked").aexists()


async def test_expired_token_is_refused(owner, token_for):
    from asgiref.sync import sync_to_async

    raw = await sync_to_async(token_for)(owner, expires_at=timezone.now() - timedelta(seconds=1))
    response = await BearerClient(raw).get("/api/me")
    assert response.status_code == 401


async def test_cannot_revoke_someone_elses_token(api_client, owner, stranger, token_for):
    from asgiref.sync import sync_to_async

    await sync_to_async(token_for)(owner)
    token = await ApiToken.objects.filter(user=owner).afirst()
    response = await api_client(stranger).delete(f"/api/tokens/{token.pk}")
    assert response.status_code == 404
    assert response.json()["code"] == "token_not_found"


async def test_token_created_over_api_is_shown_once(owner):
    client = AsyncClient()
    await client.aforce_login(owner)
    created = (await client.post("/api/tokens", {"name": "laptop", "expires_days": 30},
                                 content_type="application/json")).json()
    assert created["token"].startswith("abt_")
    listing = (await client.get("/api/tokens")).json()
    assert all("token" not in item for item in listing["items"])
    new = BearerClient(created['token'])
    assert (await new.get("/api/me")).status_code == 200


def test_staff_creates_a_token_in_the_admin_and_sees_it_once(client, staff, owner):
    import re

    client.force_login(staff)
    response = client.post("/admin/autobot/apitoken/add/", {"user": owner.pk, "name": "from admin"}, follow=True)
    assert response.status_code == 200
    page = response.content.decode()
    raw = re.search(r"abt_[A-Za-z0-9_-]{20,}", page).group(0)
    token = ApiToken.objects.get(user=owner)
    assert token.token_hash == ApiToken.hash(raw)
    listing = client.get("/admin/autobot/apitoken/").content.decode()
    assert raw not in listing
    client.post("/admin/autobot/apitoken/", {"action": "revoke", "_selected_action": [token.pk]})
    token.refresh_from_db()
    assert token.revoked_at is not None


def test_the_admin_creates_and_revokes_tokens_as_the_api_does_audited_and_with_the_default_lifetime(
        client, staff, owner, settings):
    settings.API_TOKEN_DEFAULT_DAYS = 30
    client.force_login(staff)
    client.post("/admin/autobot/apitoken/add/", {"user": owner.pk, "name": "audited"})
    token = ApiToken.objects.get(user=owner)
    assert timedelta(days=29) < token.expires_at - timezone.now() <= timedelta(days=30)
    client.post("/admin/autobot/apitoken/", {"action": "revoke", "_selected_action": [token.pk]})
    events = AuditEvent.objects.filter(target_type="api_token", target_id=str(token.pk)).order_by("pk")
    assert [(event.action, event.actor_id, event.data["via"]) for event in events] == [
        ("auth.token_created", staff.pk, "admin"), ("auth.token_revoked", staff.pk, "admin")]


async def test_a_token_cannot_mint_more_tokens(api_client, owner):
    response = await api_client(owner).post("/api/tokens", {"name": "escape"}, content_type="application/json")
    assert response.status_code == 403
    assert response.json()["code"] == "session_required"
    assert "browser session" in response.json()["detail"]
    assert await ApiToken.objects.filter(name="escape").acount() == 0


def test_negative_expiry_is_refused_by_the_command(owner):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="0 \\(never\\) or more"):
        call_command("create_api_token", "owner", "--expires-days", "-3")


def _clerk(django_user_model, *perms):
    """A staff member who is not a superuser, holding only `perms` (codenames of ApiToken's)."""
    from django.contrib.auth.models import Permission

    clerk = django_user_model.objects.create_user("clerk", password="pw", is_staff=True)
    clerk.user_permissions.add(*Permission.objects.filter(content_type__app_label="autobot", codename__in=perms))
    return clerk


def test_staff_with_the_permission_mint_tokens_for_users_but_not_for_a_superuser(client, owner, staff,
                                                                                  django_user_model):
    clerk = _clerk(django_user_model, "add_apitoken", "view_apitoken")
    client.force_login(clerk)
    refused = client.post("/admin/autobot/apitoken/add/", {"user": staff.pk, "name": "root's"})
    assert refused.status_code == 200  # the form again, with the reason
    assert "only a superuser may create an API token for a superuser" in refused.content.decode()
    client.post("/admin/autobot/apitoken/add/", {"user": owner.pk, "name": "owner's"})
    assert list(ApiToken.objects.values_list("user__username", flat=True)) == ["owner"]


async def test_staff_with_the_permissions_mint_and_revoke_other_users_tokens_over_the_api(owner, staff,
                                                                                          django_user_model):
    from asgiref.sync import sync_to_async

    clerk = await sync_to_async(_clerk)(django_user_model, "add_apitoken", "change_apitoken")
    browser = AsyncClient()
    await browser.aforce_login(clerk)
    made = await browser.post("/api/tokens", {"username": "owner"}, content_type="application/json")
    assert made.status_code == 201
    assert (await BearerClient(made.json()["token"]).get("/api/me")).json()["username"] == "owner"
    for_root = await browser.post("/api/tokens", {"username": staff.username}, content_type="application/json")
    assert for_root.status_code == 403 and "superuser" in for_root.json()["detail"]
    # Nor for another staff member, who may hold what the clerk does not (the terminal, say).
    await sync_to_async(django_user_model.objects.create_user)("ops", password="pw", is_staff=True)
    for_staff = await browser.post("/api/tokens", {"username": "ops"}, content_type="application/json")
    assert for_staff.status_code == 403 and "another staff member" in for_staff.json()["detail"]
    assert not await ApiToken.objects.filter(user__username="ops").aexists()
    revoked = await browser.delete(f"/api/tokens/{made.json()['id']}")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]



def test_staff_without_the_change_permission_cannot_revoke_in_the_admin(client, owner, django_user_model):
    from tests.conftest import make_token

    make_token(owner)
    token = ApiToken.objects.get(user=owner)
    client.force_login(_clerk(django_user_model, "view_apitoken"))
    client.post("/admin/autobot/apitoken/", {"action": "revoke", "_selected_action": [token.pk]})
    token.refresh_from_db()
    assert token.revoked_at is None


async def _mint_for(actor, username: str):
    browser = AsyncClient()
    await browser.aforce_login(actor)
    return await browser.post("/api/tokens", {"username": username}, content_type="application/json")


@pytest.mark.parametrize("staff_member", [False, True], ids=["user", "staff without the permission"])
async def test_minting_for_another_user_without_the_permission_does_not_tell_whether_the_user_exists(
        owner, colleague, django_user_model, staff_member):
    from asgiref.sync import sync_to_async

    actor = await sync_to_async(_clerk)(django_user_model, "view_apitoken") if staff_member else owner
    known = await _mint_for(actor, colleague.username)
    unknown = await _mint_for(actor, "nobody-by-this-name")
    assert (known.status_code, unknown.status_code) == (403, 403)
    assert known.json() == unknown.json() and known.json()["code"] == "forbidden"
    assert not await ApiToken.objects.filter(user=colleague).aexists()


async def test_staff_who_may_mint_for_others_are_told_a_user_does_not_exist(django_user_model):
    from asgiref.sync import sync_to_async

    clerk = await sync_to_async(_clerk)(django_user_model, "add_apitoken")
    unknown = await _mint_for(clerk, "nobody-by-this-name")
    assert unknown.status_code == 404 and unknown.json()["code"] == "user_not_found"


def test_the_bearer_call_it_restates_is_ninja_s_current_one():
    from autobot.auth import NINJA_BEARER_CALL_SHA256, ninja_bearer_call_sha256

    assert ninja_bearer_call_sha256() == NINJA_BEARER_CALL_SHA256, (
        "ninja's HttpBearer.__call__ changed: bring autobot/auth.py's BearerAuth.__call__ in line with it, "
        "then update NINJA_BEARER_CALL_SHA256")


@pytest.mark.parametrize("header", [
    None, "", "Bearer abt_x", "bearer abt_x", "BEARER abt_x", "Bearer  abt_x", "Bearer abt_x y", "Bearer",
    "Bearer ", "Basic abc", "Token abt_x", "Bearerabt_x",
])
def test_the_bearer_header_is_read_as_ninja_reads_it(header):
    from django.http import HttpHeaders
    from django.test import RequestFactory
    from ninja.security import HttpBearer

    from autobot.auth import BearerAuth

    class Seen(BearerAuth):  # what reaches `authenticate`
        def authenticate(self, request, token):
            return ("token", token)

    class Ninja(HttpBearer):
        def authenticate(self, request, token):
            return ("token", token)

    def request():
        return RequestFactory().get("/", **({} if header is None else {"HTTP_AUTHORIZATION": header}))

    assert Seen()(request()) == Ninja()(request())
    made = request()  # a hand-made request's own headers (ninja's test client's way) are asked
    made.headers = HttpHeaders({} if header is None else {"HTTP_Authorization": header})
    assert Seen()(made) == Ninja()(request())


def test_a_bearer_auth_on_another_header_reads_that_header():
    from django.test import RequestFactory

    from autobot.auth import BearerAuth

    class Seen(BearerAuth):
        header = "X-Api-Key"

        def authenticate(self, request, token):
            return ("token", token)

    both = RequestFactory().get("/", HTTP_AUTHORIZATION="Bearer from-authorization", HTTP_X_API_KEY="Bearer from-key")
    assert Seen()(both) == ("token", "from-key")
