"""An open WebSocket holds only while its credentials do: a token revoked or expired, a session
signed out or a user deactivated closes it with 4401 at the next check (AUTOBOT_WS_REAUTH_SECONDS,
made short here), and what the client sends afterwards reaches nothing."""

from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings
from django.test import AsyncClient
from django.utils import timezone

from autobot.auth import token_revoke
from autobot.models import ApiToken
from chat import services as chat
from terminal import services as terminal
from terminal.models import CommandRecord
from tests.conftest import make_token
from tests.platform.test_authz_matrix import _socket
from tests.terminal.conftest import agrant
from tests.terminal.test_consumers import frames_until, output_contains

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


@pytest.fixture(autouse=True)
def _quick_checks(settings, tmp_path_factory):
    settings.WS_REAUTH_SECONDS = 0.05
    settings.TERMINAL_RECORDINGS_DIR = tmp_path_factory.mktemp("recordings")


@pytest.fixture(autouse=True)
async def _end_live_sessions():
    yield
    await terminal.sessions_shutdown()


async def _open(path: str, *, token: str | None = None, cookie: str | None = None) -> WebsocketCommunicator:
    comm, connected = await _socket(path, token=token, cookie=cookie)
    assert connected
    return comm


async def _close_code(comm: WebsocketCommunicator) -> int:
    """Frames until the close (a terminal keeps printing its prompt); the close's code."""
    while True:
        message = await comm.receive_output(timeout=10)
        if message["type"] == "websocket.close":
            return message["code"]


async def _pong(comm: WebsocketCommunicator) -> bool:
    await comm.send_json_to({"type": "ping"})
    while True:
        frame = await comm.receive_json_from(timeout=10)
        if frame["type"] == "pong":
            return True


async def _token_row(raw: str) -> ApiToken:
    return await ApiToken.objects.aget(token_hash=ApiToken.hash(raw))


async def test_a_revoked_token_closes_its_terminal_and_typing_reaches_nothing(owner):
    await agrant(owner)
    session = await terminal.session_open(user=owner, title="mine")
    revoked = await sync_to_async(make_token)(owner)
    kept = await sync_to_async(make_token)(owner)
    doomed = await _open(f"/ws/terminal/{session.pk}/", token=revoked)
    control = await _open(f"/ws/terminal/{session.pk}/", token=kept)

    await token_revoke(actor=owner, token_id=(await _token_row(revoked)).pk)

    assert await _close_code(doomed) == 4401
    await doomed.send_json_to({"type": "input", "data": "echo after-revoke\r"})
    await doomed.wait(timeout=10)  # its app has ended: whatever it did with that frame is done
    assert await _pong(control)  # the other token's socket was checked too, and holds
    # The same shell, typed into by the socket still allowed: bash runs lines in the order they
    # reach its terminal, and a line is recorded before it runs, so once this marker's output
    # is back a line the closed socket had passed on would have its record too.
    await control.send_json_to({"type": "input", "data": "echo mar''ker\r"})
    await frames_until(control, output_contains("marker"))
    assert await CommandRecord.objects.filter(session_id=session.pk, command="echo mar''ker").aexists()
    assert not await CommandRecord.objects.filter(command__contains="after-revoke").aexists()
    await control.disconnect()


async def test_an_expired_token_closes_its_socket(owner):
    session = await chat.session_create(user=owner, title="mine")
    raw = await sync_to_async(make_token)(owner)
    comm = await _open(f"/ws/chat/{session.pk}/", token=raw)
    await ApiToken.objects.filter(user=owner).aupdate(expires_at=timezone.now() - timedelta(seconds=1))
    assert await _close_code(comm) == 4401


async def test_a_deactivated_user_is_closed_out(owner):
    session = await chat.session_create(user=owner, title="mine")
    comm = await _open(f"/ws/chat/{session.pk}/", token=await sync_to_async(make_token)(owner))
    owner.is_active = False
    await owner.asave(update_fields=["is_active"])
    assert await _close_code(comm) == 4401


async def test_signing_out_closes_the_browsers_sockets(owner):
    session = await chat.session_create(user=owner, title="mine")
    browser = AsyncClient()
    await browser.aforce_login(owner)
    cookie = f"{django_settings.SESSION_COOKIE_NAME}={browser.cookies[django_settings.SESSION_COOKIE_NAME].value}"
    comm = await _open(f"/ws/chat/{session.pk}/", cookie=cookie)
    await browser.alogout()
    assert await _close_code(comm) == 4401


async def test_a_password_change_closes_the_sessions_sockets(owner):
    session = await chat.session_create(user=owner, title="mine")
    browser = AsyncClient()
    await browser.aforce_login(owner)
    cookie = f"{django_settings.SESSION_COOKIE_NAME}={browser.cookies[django_settings.SESSION_COOKIE_NAME].value}"
    comm = await _open(f"/ws/chat/{session.pk}/", cookie=cookie)
    owner.set_password("another-horse-battery-staple")
    await owner.asave()
    assert await _close_code(comm) == 4401
