import pytest
from channels.testing import WebsocketCommunicator
from django.urls import re_path

from autobot.ws import WebSocketGate

pytestmark = pytest.mark.django_db(transaction=True)


async def _closed_with(comm) -> int:
    message = await comm.receive_output(timeout=5)
    assert message["type"] == "websocket.close"
    return message["code"]


async def test_bad_origin_closes_4403(ws_connect, owner):
    comm = await ws_connect("/ws/anything/", user=owner, origin="https://evil.example")
    assert await _closed_with(comm) == 4403
    await comm.disconnect()


async def test_anonymous_closes_4401(ws_connect):
    comm = await ws_connect("/ws/anything/", user=None, origin="http://testserver")
    assert await _closed_with(comm) == 4401
    await comm.disconnect()


async def test_anonymous_without_origin_closes_4401(ws_connect):
    # No credentials at all: the answer is "authenticate" (docs/security.md), Origin or not.
    comm = await ws_connect("/ws/anything/", user=None, origin=None)
    assert await _closed_with(comm) == 4401
    await comm.disconnect()


async def test_session_cookie_without_origin_closes_4403(owner, client):
    # A cookie rides along with any request: without an Origin to check it is not accepted.
    from asgiref.sync import sync_to_async
    from django.conf import settings

    from autobot.asgi import application

    await sync_to_async(client.force_login)(owner)
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    comm = WebsocketCommunicator(application, "/ws/chat/x/",
                                 headers=[(b"host", b"testserver"), (b"cookie", cookie.encode())])
    await comm.connect()
    assert await _closed_with(comm) == 4403
    await comm.disconnect()


@pytest.mark.parametrize("path", ["/ws/anything/", "/ws/", "/nowhere", "/ws/terminal/"])
async def test_unknown_path_with_a_valid_token_closes_4404(ws_connect, owner, path):
    comm = await ws_connect(path, user=owner)
    assert await _closed_with(comm) == 4404
    await comm.disconnect()


def _whoami_app():
    from channels.generic.websocket import AsyncJsonWebsocketConsumer
    from channels.routing import URLRouter
    from channels.sessions import SessionMiddlewareStack

    class Whoami(AsyncJsonWebsocketConsumer):
        async def connect(self):
            await self.accept()
            await self.send_json({"user": self.scope["user"].get_username()})

    return SessionMiddlewareStack(WebSocketGate(URLRouter([re_path(r"^ws/whoami/$", Whoami.as_asgi())])))


async def test_token_user_reaches_the_app(owner):
    from asgiref.sync import sync_to_async

    from tests.conftest import _make_token

    raw = await sync_to_async(_make_token)(owner)
    comm = WebsocketCommunicator(_whoami_app(), "/ws/whoami/", headers=[
        (b"origin", b"http://testserver"), (b"host", b"testserver"), (b"authorization", f"Bearer {raw}".encode())])
    connected, _ = await comm.connect()
    assert connected
    assert await comm.receive_json_from() == {"user": "owner"}
    await comm.disconnect()


@pytest.mark.parametrize("origin", ["http://testserver:3000", "http://localhost", "https://testserver.evil.example",
                                    "null", "file://testserver"])
async def test_cross_origin_including_another_port_closes_4403(ws_connect, owner, origin):
    comm = await ws_connect("/ws/anything/", user=owner, origin=origin)
    assert await _closed_with(comm) == 4403
    await comm.disconnect()


async def test_session_cookie_authenticates_a_same_origin_socket(owner, client):
    from asgiref.sync import sync_to_async
    from django.conf import settings

    await sync_to_async(client.force_login)(owner)
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    headers = [(b"host", b"testserver"), (b"cookie", cookie.encode())]
    comm = WebsocketCommunicator(_whoami_app(), "/ws/whoami/", headers=[(b"origin", b"http://testserver"), *headers])
    connected, _ = await comm.connect()
    assert connected
    assert await comm.receive_json_from() == {"user": "owner"}
    await comm.disconnect()
    # The same cookie from a page on another port of the same host is refused.
    comm = WebsocketCommunicator(_whoami_app(), "/ws/whoami/", headers=[(b"origin", b"http://testserver:8080"),
                                                                         *headers])
    await comm.connect()
    assert await _closed_with(comm) == 4403
    await comm.disconnect()
