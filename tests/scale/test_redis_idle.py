"""On Redis, sockets and bus readers survive silences longer than the layer's blocking read.

The regression: redis-py's default read timeout (5 s) equalled channels-redis's blocking read
(5 s), so every WebSocket closed 5 s after it opened and every bus reader died 5 s after its
last message. These tests stay silent past that, then expect everything to work.
"""

import asyncio

import pytest

from autobot.redisconf import LAYER_BLOCKING_READ_SECONDS
from chat.models import ChatSession
from tests.agents.test_consumers import answer_requests, api_request, connect_agent
from tests.conftest import use_redis_layer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis, pytest.mark.timeout(90)]

SILENCE = LAYER_BLOCKING_READ_SECONDS + 2


@pytest.fixture
async def redis_layer(settings):
    """The project's real Redis layer configuration (as settings builds it from REDIS_URL)."""
    from channels.layers import channel_layers

    from agents.services import bus_shutdown

    use_redis_layer(settings, "idle")
    yield
    await bus_shutdown()
    channel_layers.backends.clear()


async def test_a_layer_receive_outlasts_the_blocking_read(redis_layer):
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    channel = await layer.new_channel()
    with pytest.raises(TimeoutError):  # ours, not redis-py's: the read itself never failed
        await asyncio.wait_for(layer.receive(channel), timeout=SILENCE)
    await layer.send(channel, {"type": "after.silence"})
    assert (await layer.receive(channel))["type"] == "after.silence"


async def _terminal_after_silence(ws_connect, user):
    from terminal import services
    from tests.terminal.test_consumers import attach, frames_until, output_contains

    session = await services.session_open(user=user)
    comm, _ = await attach(ws_connect, user, session)
    await asyncio.sleep(SILENCE)
    await comm.send_json_to({"type": "input", "data": "echo still-here\r"})
    await frames_until(comm, output_contains("still-here"))
    await comm.disconnect()
    await services.session_close(user=user, session_id=session.pk)


async def _chat_after_silence(ws_connect, user, llm):
    session = await ChatSession.objects.acreate(owner=user)
    comm = await ws_connect(f"/ws/chat/{session.id}/", user=user)
    assert comm.connected
    await asyncio.sleep(SILENCE)
    await comm.send_json_to({"type": "message", "content": "after the silence", "use_knowledge": False})
    while (frame := await comm.receive_json_from(timeout=10))["type"] != "done":
        pass
    assert frame["message"]["content"] == "Echo: after the silence"
    await comm.disconnect()


async def _agent_after_silence(ws_connect, user, api_client):
    comm, _ = await connect_agent(ws_connect, user, agent_id="quiet")
    await asyncio.sleep(SILENCE)
    call = asyncio.create_task(api_request(api_client, user, "quiet", data={"n": 1}))
    await answer_requests(comm, "quiet")
    response = await call
    assert response.status_code == 200, response.content
    assert response.json()["payload"]["data"]["echo"] == {"n": 1}
    await comm.disconnect()


async def _builtin_after_silence(api_client, user):
    first = await api_request(api_client, user, "knowledge", action="search", data={"q": "anything"})
    assert first.status_code == 200, first.content
    await asyncio.sleep(10)  # longer than every timeout of the bus's readers
    second = await api_request(api_client, user, "knowledge", action="search", data={"q": "anything"})
    assert second.status_code == 200, second.content


async def test_sockets_and_readers_work_after_a_silence(redis_layer, ws_connect, terminal_user, api_client, llm):
    user = terminal_user
    # Side by side, so the whole test costs one silence.
    await asyncio.gather(
        _terminal_after_silence(ws_connect, user),
        _chat_after_silence(ws_connect, user, llm),
        _agent_after_silence(ws_connect, user, api_client),
        _builtin_after_silence(api_client, user),
    )


async def test_health_answers_while_a_socket_waits_on_the_layer(redis_layer, ws_connect, owner, llm):
    """channels-redis reads a process's own channels through one loop keyed by their prefix: the
    health check's round trip once used another prefix and timed out whenever a socket waited."""
    from django.test import AsyncClient

    session = await ChatSession.objects.acreate(owner=owner)
    comm = await ws_connect(f"/ws/chat/{session.id}/", user=owner)
    assert comm.connected
    await asyncio.sleep(0.5)  # the socket's receive is now the one waiting on Redis
    response = await AsyncClient().get("/api/health")
    assert response.status_code == 200, response.json()
    await comm.disconnect()
