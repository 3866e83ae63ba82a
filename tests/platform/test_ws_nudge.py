"""An open socket loses at once what its user lost: a revoked token, a sign-out, a deactivation,
a password change close it with 4401, a withdrawn permission (directly, or from the user's group)
or staff status with 4403, without waiting for the periodic check (set to an hour here, so only
the nudge through the channel layer can close it; autobot/revocation.py)."""

import pytest
import redis.asyncio as redis
from asgiref.sync import sync_to_async
from channels.layers import InMemoryChannelLayer, get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings
from django.contrib.auth.models import Group, Permission
from django.test import AsyncClient

from autobot.auth import token_revoke
from autobot.models import ApiToken
from autobot.revocation import user_group
from chat import services as chat
from terminal import services as terminal
from tests.conftest import make_token, use_redis_layer
from tests.platform.test_authz_matrix import _socket
from tests.terminal.conftest import agrant

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


@pytest.fixture(autouse=True)
def _no_periodic_check(settings, tmp_path_factory):
    settings.WS_REAUTH_SECONDS = 3600
    settings.TERMINAL_RECORDINGS_DIR = tmp_path_factory.mktemp("recordings")


@pytest.fixture(autouse=True)
async def _end_live_sessions():
    yield
    await terminal.sessions_shutdown()


async def _open(path: str, *, token: str | None = None, cookie: str | None = None) -> WebsocketCommunicator:
    comm, connected = await _socket(path, token=token, cookie=cookie)
    assert connected
    return comm


async def _closed(comm: WebsocketCommunicator) -> tuple[int, str]:
    """Frames until the close (a terminal keeps printing its prompt); its code and reason."""
    while True:
        message = await comm.receive_output(timeout=10)
        if message["type"] == "websocket.close":
            return message["code"], message.get("reason", "")


async def _revoke(owner, raw: str) -> None:
    token = await ApiToken.objects.aget(token_hash=ApiToken.hash(raw))
    await token_revoke(actor=owner, token_id=token.pk)


async def _chat_socket(owner, **credentials) -> WebsocketCommunicator:
    session = await chat.session_create(user=owner, title="mine")
    return await _open(f"/ws/chat/{session.pk}/", **credentials)


async def _signed_in_cookie(user) -> tuple[AsyncClient, str]:
    browser = AsyncClient()
    await browser.aforce_login(user)
    name = django_settings.SESSION_COOKIE_NAME
    return browser, f"{name}={browser.cookies[name].value}"


async def _terminal_permission() -> Permission:
    return await Permission.objects.aget(codename="use_terminal", content_type__app_label="terminal")


async def test_a_revoked_token_closes_its_socket_at_once(owner):
    raw = await sync_to_async(make_token)(owner)
    comm = await _chat_socket(owner, token=raw)
    await _revoke(owner, raw)
    assert await _closed(comm) == (4401, "auth")


async def test_the_admins_revoke_action_closes_the_socket_at_once(owner, staff):
    raw = await sync_to_async(make_token)(owner)
    comm = await _chat_socket(owner, token=raw)
    admin = AsyncClient()
    await admin.aforce_login(staff)
    token = await ApiToken.objects.aget(token_hash=ApiToken.hash(raw))
    response = await admin.post("/admin/autobot/apitoken/", {"action": "revoke", "_selected_action": [token.pk]})
    assert response.status_code == 302
    assert await _closed(comm) == (4401, "auth")


async def test_signing_out_closes_the_browsers_sockets_at_once(owner):
    browser, cookie = await _signed_in_cookie(owner)
    comm = await _chat_socket(owner, cookie=cookie)
    await browser.alogout()
    assert await _closed(comm) == (4401, "auth")


async def test_the_sign_out_page_closes_the_browsers_sockets_at_once(owner):
    browser, cookie = await _signed_in_cookie(owner)
    comm = await _chat_socket(owner, cookie=cookie)
    response = await browser.post("/accounts/logout/")
    assert response.status_code == 302
    assert await _closed(comm) == (4401, "auth")


async def test_a_deactivated_user_is_closed_out_at_once(owner):
    comm = await _chat_socket(owner, token=await sync_to_async(make_token)(owner))
    owner.is_active = False
    await owner.asave(update_fields=["is_active"])
    assert await _closed(comm) == (4401, "auth")


async def test_a_password_change_closes_the_sessions_sockets_at_once(owner):
    _browser, cookie = await _signed_in_cookie(owner)
    comm = await _chat_socket(owner, cookie=cookie)
    owner.set_password("another-horse-battery-staple")
    await owner.asave()
    assert await _closed(comm) == (4401, "auth")


async def test_a_withdrawn_terminal_permission_closes_the_terminal_4403(owner):
    await agrant(owner)
    session = await terminal.session_open(user=owner, title="mine")
    comm = await _open(f"/ws/terminal/{session.pk}/", token=await sync_to_async(make_token)(owner))
    await sync_to_async(owner.user_permissions.remove)(await _terminal_permission())
    assert await _closed(comm) == (4403, "forbidden")


async def test_a_permission_taken_from_a_group_closes_its_members_terminals(owner):
    group = await Group.objects.acreate(name="operators")
    await sync_to_async(group.permissions.add)(await _terminal_permission())
    await sync_to_async(owner.groups.add)(group)
    session = await terminal.session_open(user=owner, title="mine")
    comm = await _open(f"/ws/terminal/{session.pk}/", token=await sync_to_async(make_token)(owner))
    await sync_to_async(group.permissions.clear)()
    assert await _closed(comm) == (4403, "forbidden")


async def test_leaving_a_group_that_granted_the_terminal_closes_it(owner):
    group = await Group.objects.acreate(name="operators")
    await sync_to_async(group.permissions.add)(await _terminal_permission())
    await sync_to_async(owner.groups.add)(group)
    session = await terminal.session_open(user=owner, title="mine")
    comm = await _open(f"/ws/terminal/{session.pk}/", token=await sync_to_async(make_token)(owner))
    await sync_to_async(group.user_set.remove)(owner)
    assert await _closed(comm) == (4403, "forbidden")


async def test_staff_status_taken_closes_a_socket_on_someone_elses_chat(owner, colleague):
    colleague.is_staff = True
    await colleague.asave(update_fields=["is_staff"])
    session = await chat.session_create(user=owner, title="theirs")
    comm = await _open(f"/ws/chat/{session.pk}/", token=await sync_to_async(make_token)(colleague))
    colleague.is_staff = False
    await colleague.asave(update_fields=["is_staff"])
    assert await _closed(comm) == (4403, "forbidden")


async def test_staff_status_taken_closes_the_staff_agents_feed(colleague):
    colleague.is_staff = True
    await colleague.asave(update_fields=["is_staff"])
    comm = await _open("/ws/agents/feed/", token=await sync_to_async(make_token)(colleague))
    colleague.is_staff = False
    await colleague.asave(update_fields=["is_staff"])
    assert await _closed(comm) == (4403, "forbidden")


async def test_staff_status_taken_closes_the_progress_of_someone_elses_crawl(owner, colleague):
    from knowledge.models import CrawlJob

    colleague.is_staff = True
    await colleague.asave(update_fields=["is_staff"])
    job = await CrawlJob.objects.acreate(owner=owner, url="http://127.0.0.1:9/", status=CrawlJob.Status.DONE)
    theirs = await _open(f"/ws/knowledge/crawls/{job.pk}/", token=await sync_to_async(make_token)(colleague))
    assert (await theirs.receive_json_from(timeout=5))["type"] == "progress"
    mine = await _open(f"/ws/knowledge/crawls/{job.pk}/", token=await sync_to_async(make_token)(owner))
    assert (await mine.receive_json_from(timeout=5))["type"] == "progress"
    colleague.is_staff = False
    await colleague.asave(update_fields=["is_staff"])
    assert await _closed(theirs) == (4403, "forbidden")
    await mine.send_json_to({"type": "ping"})  # the owner's own socket stays
    assert (await mine.receive_json_from(timeout=5))["type"] == "pong"
    await mine.disconnect()


async def test_a_closed_socket_leaves_its_users_group(owner):
    comm = await _chat_socket(owner, token=await sync_to_async(make_token)(owner))
    layer = get_channel_layer()
    assert layer.groups.get(user_group(owner.pk))
    await comm.disconnect()
    assert not layer.groups.get(user_group(owner.pk))


class _NoAuthGroups(InMemoryChannelLayer):
    """A layer that fails to join the users' groups, as Redis going away at that moment would."""

    async def group_add(self, group, channel):
        if group.startswith("auth.user."):
            raise ConnectionError("the layer is away")
        await super().group_add(group, channel)


async def test_a_layer_error_at_join_does_not_refuse_the_socket(owner, settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": f"{__name__}._NoAuthGroups"}}  # channels resets its layers
    settings.WS_REAUTH_SECONDS = 0.05  # no nudge can reach the socket: the periodic check covers it
    await agrant(owner)
    session = await terminal.session_open(user=owner, title="mine")
    raw = await sync_to_async(make_token)(owner)
    comm = await _open(f"/ws/terminal/{session.pk}/", token=raw)
    await comm.send_json_to({"type": "ping"})
    while (await comm.receive_json_from(timeout=10))["type"] != "pong":
        pass  # the session frame, the prompt
    await _revoke(owner, raw)
    assert await _closed(comm) == (4401, "auth")


@pytest.mark.redis
async def test_a_revocation_reaches_the_socket_over_redis(owner, settings):
    use_redis_layer(settings, "nudge")
    # channels-redis keeps a group as a sorted set of its channels: the socket joins, and leaves.
    key = f"{settings.CHANNEL_LAYERS['default']['CONFIG']['prefix']}:group:{user_group(owner.pk)}"
    raw = await sync_to_async(make_token)(owner)
    async with redis.Redis.from_url(settings.REDIS_URL) as client:
        comm = await _chat_socket(owner, token=raw)
        assert await client.zcard(key) == 1
        await _revoke(owner, raw)
        assert await _closed(comm) == (4401, "auth")
        await comm.wait(timeout=10)
        assert await client.zcard(key) == 0


@pytest.mark.redis
async def test_a_withdrawn_permission_reaches_the_terminal_over_redis(owner, settings):
    use_redis_layer(settings, "nudge")
    await agrant(owner)
    session = await terminal.session_open(user=owner, title="mine")
    comm = await _open(f"/ws/terminal/{session.pk}/", token=await sync_to_async(make_token)(owner))
    await sync_to_async(owner.user_permissions.remove)(await _terminal_permission())
    assert await _closed(comm) == (4403, "forbidden")
