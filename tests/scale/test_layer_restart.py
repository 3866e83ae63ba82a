"""Sockets and readers that hold groups on the channel layer, across a restart of its Redis.

Redis keeps nothing on disk here: a restart empties it, and every group membership is gone. A
restart quicker than redis-py's retry (a fraction of a second) went unnoticed by the readers, so
before autobot/layerwatch.py a chat page stayed open and deaf: the next answer's tokens went to a
group it was no longer in. A longer outage failed the socket's own receive, and the socket died
without an error frame; an answer streaming meanwhile failed with internal_error.

What a user notices now: the page's socket closes with a reason (1011) and the page reconnects and
gets its answers; an answer being written while Redis is away is finished and stored."""

import asyncio

import pytest
from asgiref.sync import sync_to_async

from agents import services as agent_services
from agents.bus import AgentEndpoint, Bus
from autobot import layerwatch
from autobot.revocation import user_group
from chat.models import ChatMessage
from terminal import services as terminal
from tests.agents.test_bus import FAST, KEY
from tests.agents.test_consumers import connect_agent, expect_error
from tests.chat.test_consumers import make_session, receive_until_done, tokens_text
from tests.conftest import make_token
from tests.platform.test_ws_nudge import _closed, _open, _revoke

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis, pytest.mark.timeout(90)]

WATCH_SECONDS = 0.2


@pytest.fixture(autouse=True)
def quick_watch(settings):
    settings.LAYER_WATCH_SECONDS = WATCH_SECONDS


async def closed_with(comm, code: str, within: float = 15) -> None:
    """The socket's next frames are an error with ``code``, then close 1011
    (a fault on the server side: the page reconnects)."""
    async with asyncio.timeout(within):
        frame = await comm.receive_json_from(timeout=within)
        assert frame["type"] == "error" and frame["code"] == code, frame
        assert (await comm.receive_output(timeout=within))["code"] == 1011


async def asks_and_gets(ws_connect, user, sid: str, question: str) -> None:
    comm = await ws_connect(f"/ws/chat/{sid}/", user=user)
    await comm.send_json_to({"type": "message", "content": question})
    assert tokens_text(await receive_until_done(comm)) == f"Echo: {question}"
    await comm.disconnect()


async def test_a_chat_page_whose_redis_restarts_reconnects_and_gets_its_answers(own_redis, ws_connect, owner, llm):
    sid = await make_session(owner)
    comm = await ws_connect(f"/ws/chat/{sid}/", user=owner)
    await comm.send_json_to({"type": "message", "content": "before"})
    assert tokens_text(await receive_until_done(comm)) == "Echo: before"
    await asyncio.sleep(3 * WATCH_SECONDS)  # the watch has read the layer's state once

    await asyncio.to_thread(own_redis.restart)  # quick: redis-py's retry hides it from the reads

    await closed_with(comm, "layer_restarted")
    await asks_and_gets(ws_connect, owner, sid, "after")  # the page reconnects


async def test_a_chat_socket_whose_redis_stays_away_closes_with_a_reason(own_redis, ws_connect, owner, llm):
    sid = await make_session(owner)
    comm = await ws_connect(f"/ws/chat/{sid}/", user=owner)
    await asyncio.to_thread(own_redis.stop)

    await closed_with(comm, "redis_unavailable")

    seen = layerwatch.epoch()
    await asyncio.to_thread(own_redis.start)
    # A page that reconnects before the watch has noticed the restart is closed once more
    # (layer_restarted) and reconnects again; this one waits until it has.
    await asyncio.wait_for(layerwatch.restarted_since(seen), 10)
    await asks_and_gets(ws_connect, owner, sid, "back again")


async def test_an_answer_written_while_redis_is_away_is_finished_and_stored(own_redis, ws_connect, owner, llm):
    llm.pause_after = 1
    sid = await make_session(owner)
    comm = await ws_connect(f"/ws/chat/{sid}/", user=owner)
    await comm.send_json_to({"type": "message", "content": "one two three"})
    first = await comm.receive_json_from(timeout=10)
    assert first["type"] == "token"

    await asyncio.to_thread(own_redis.stop)
    llm.resume.set()

    async def stored() -> ChatMessage:
        while True:
            message = await ChatMessage.objects.aget(pk=first["message_id"])
            if message.status != ChatMessage.Status.STREAMING:
                return message
            await asyncio.sleep(0.1)

    async with asyncio.timeout(20):
        message = await stored()
    assert (message.status, message.content) == (ChatMessage.Status.COMPLETE, "Echo: one two three")
    await asyncio.to_thread(own_redis.start)


async def test_a_broadcast_reaches_an_agent_after_a_quick_redis_restart(own_redis):
    from channels.layers import get_channel_layer

    bus = await Bus(get_channel_layer(), KEY, config=FAST, sender_id="tester").start()
    got = asyncio.Event()

    async def handle(message):
        got.set()

    endpoint = await AgentEndpoint(bus, "listener", handle).start()
    try:
        await asyncio.sleep(3 * WATCH_SECONDS)
        await asyncio.to_thread(own_redis.restart)
        await asyncio.sleep(5 * WATCH_SECONDS)  # the watch finds the restart; the endpoint joins again

        await bus.broadcast("hello", {"n": 1})
        await asyncio.wait_for(got.wait(), 5)
    finally:
        await endpoint.stop()
        await bus.close()


async def test_an_agent_whose_redis_restarted_is_still_closed_when_its_credentials_change(
        own_redis, ws_connect, owner):
    comm, _ = await connect_agent(ws_connect, owner)
    await asyncio.sleep(3 * WATCH_SECONDS)
    await asyncio.to_thread(own_redis.restart)
    await asyncio.sleep(5 * WATCH_SECONDS)

    await agent_services.agent_sockets_close(agent_id="echo")  # what the admin's change sends

    await expect_error(comm, "credentials_changed")
    assert (await comm.receive_output())["code"] == 4401


async def test_a_request_that_needs_redis_while_it_is_away_is_503_not_500(own_redis, owner, api_client):
    from tests.agents.test_consumers import api_request

    await asyncio.to_thread(own_redis.stop)
    response = await api_request(api_client, owner, "knowledge", action="search", data={"q": "x"})
    assert response.status_code == 503, response.content
    assert response.json()["code"] == "redis_unavailable"
    await asyncio.to_thread(own_redis.start)


async def test_a_token_revoked_after_a_quick_redis_restart_still_closes_its_socket_at_once(
        own_redis, terminal_user, settings):
    from channels.layers import get_channel_layer

    settings.WS_REAUTH_SECONDS = 3600  # only the nudge over the layer can close it in time
    session = await terminal.session_open(user=terminal_user)
    raw = await sync_to_async(make_token)(terminal_user)
    comm = await _open(f"/ws/terminal/{session.pk}/", token=raw)
    await asyncio.sleep(3 * WATCH_SECONDS)
    seen = layerwatch.epoch()
    await asyncio.to_thread(own_redis.restart)
    await asyncio.wait_for(layerwatch.restarted_since(seen), 10)

    # The socket joins its user's group again (it was gone with the restart).
    layer = get_channel_layer()
    key = f"{layer.prefix}:group:{user_group(terminal_user.pk)}"
    async with asyncio.timeout(10):
        while not await layer.connection(0).zcard(key):  # noqa: ASYNC110 - polling Redis, no event to wait on
            await asyncio.sleep(0.05)
    await _revoke(terminal_user, raw)

    assert await _closed(comm) == (4401, "auth")
    await terminal.sessions_shutdown()
