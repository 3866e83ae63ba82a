"""Sockets and readers that hold groups on the channel layer, across restarts and outages of its
Redis (autobot/layerwatch.py).

A restart that empties Redis loses every group membership. One quicker than redis-py's retry
raised nothing in any reader: before the watch, a chat page stayed open and deaf (the next
answer's tokens went to a group it was no longer in), an agent got no more broadcasts, and a
socket no longer heard that its token was revoked. An outage that empties nothing loses what was
sent meanwhile, and most receivers never see an error either (channels-redis lets one receiver of
a process wait on Redis at a time). A longer outage failed a socket's own receive, and the socket
died without an error frame; an answer streaming meanwhile failed with internal_error.

What a user notices now: the page's socket closes with a reason (close 1011) and the page
reconnects and gets its answers; an answer written while Redis is away is finished and stored.

"Emptied" below is what a restart of a Redis that keeps nothing on disk does to the server's
connections and data (every connection dropped, every key gone), without the time a restart
takes: a quick restart, deterministically."""

import asyncio
import json
import logging
import os
import signal

import pytest
import redis
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.db import connection
from django.test import AsyncClient

from agents import services as agent_services
from agents.bus import BROADCAST_GROUP, AgentEndpoint, Bus
from agents.models import Agent
from autobot import layerwatch, supervise
from autobot.revocation import user_group
from autobot.testbed import RedisServer
from chat.models import ChatMessage
from terminal import services as terminal
from tests.agents.test_bus import FAST, KEY
from tests.agents.test_consumers import connect_agent, expect_error
from tests.chat.test_consumers import make_session, receive_until_done, tokens_text
from tests.conftest import make_token
from tests.pglock import table_locked
from tests.platform.test_ws_nudge import _closed, _open, _revoke

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis, pytest.mark.timeout(90)]

WATCH_SECONDS = 0.2
# Either way the socket ends with a reason and the page reconnects: layer_restarted when the
# watch found it first, redis_unavailable when the socket's own receive failed first.
LAYER_CODES = {"layer_restarted", "redis_unavailable"}


@pytest.fixture(autouse=True)
def quick_watch(settings):
    settings.LAYER_WATCH_SECONDS = WATCH_SECONDS


@pytest.fixture
async def kept_redis(settings, tmp_path):
    """A Redis of the test's own that keeps everything on disk: a restart loses nothing stored."""
    from channels.layers import channel_layers

    from autobot.redisconf import channel_layer_config

    server = await asyncio.to_thread(RedisServer(data_dir=str(tmp_path)).start)
    settings.REDIS_URL = server.url
    settings.CHANNEL_LAYERS = {"default": channel_layer_config(server.url, prefix="kept")}
    channel_layers.backends.clear()
    yield server
    await layerwatch.stop()
    await asyncio.to_thread(server.stop)
    channel_layers.backends.clear()


def empty(server: RedisServer) -> None:
    """What a quick restart of a Redis that keeps nothing does: every key gone, every
    connection dropped (redis-py's retry reconnects them at once)."""
    client = redis.Redis.from_url(server.url)
    try:
        client.flushall()
        client.client_kill_filter(_type="normal", skipme=True)
    finally:
        client.close()


async def emptied(server: RedisServer) -> None:
    """Empty the layer's Redis once the watch has read it, and wait until the watch has found out."""
    await layerwatch.ready()
    seen = layerwatch.epoch()
    await asyncio.to_thread(empty, server)
    await asyncio.wait_for(layerwatch.restarted_since(seen), 10)


async def joined(group: str) -> None:
    """Until ``group`` has a member again."""
    layer = get_channel_layer()
    key = f"{layer.prefix}:group:{group}"
    async with asyncio.timeout(10):
        while not await layer.connection(0).zcard(key):  # noqa: ASYNC110 - polling Redis, no event to wait on
            await asyncio.sleep(0.05)


async def closed_with(comm, codes: set[str], within: float = 15) -> str:
    """The socket's next frames are an error with one of ``codes``, then close 1011 (a fault on
    the server side: the page reconnects). Returns the code."""
    async with asyncio.timeout(within):
        frame = await comm.receive_json_from(timeout=within)
        assert frame["type"] == "error" and frame["code"] in codes, frame
        assert (await comm.receive_output(timeout=within))["code"] == 1011
    return frame["code"]


async def asks_and_gets(ws_connect, user, sid: str, question: str) -> None:
    """The page asks and is shown the answer. Its end (done) carries the whole answer, which the
    page shows: a token lost in channels-redis just after a restart (seen once, under load) is
    not what this checks."""
    comm = await ws_connect(f"/ws/chat/{sid}/", user=user)
    await comm.send_json_to({"type": "message", "content": question})
    frames = await receive_until_done(comm)
    assert [f["type"] for f in frames if f["type"] != "token"] == ["done"], frames
    assert frames[-1]["message"]["content"] == f"Echo: {question}"
    await comm.disconnect()


async def test_a_chat_page_whose_redis_is_emptied_reconnects_and_gets_its_answers(own_redis, ws_connect, owner,
                                                                                  llm):
    sid = await make_session(owner)
    comm = await ws_connect(f"/ws/chat/{sid}/", user=owner)
    await comm.send_json_to({"type": "message", "content": "before"})
    assert tokens_text(await receive_until_done(comm)) == "Echo: before"

    await emptied(own_redis)

    assert await closed_with(comm, {"layer_restarted"}) == "layer_restarted"
    await asks_and_gets(ws_connect, owner, sid, "after")  # the page reconnects


async def test_a_chat_page_across_a_real_restart_reconnects_and_gets_its_answers(own_redis, ws_connect, owner, llm):
    sid = await make_session(owner)
    comm = await ws_connect(f"/ws/chat/{sid}/", user=owner)
    await layerwatch.ready()
    seen = layerwatch.epoch()
    await asyncio.to_thread(own_redis.restart)

    await closed_with(comm, LAYER_CODES)
    await asyncio.wait_for(layerwatch.restarted_since(seen), 10)
    await asks_and_gets(ws_connect, owner, sid, "after")


async def test_a_chat_socket_whose_redis_stays_away_closes_with_a_reason(own_redis, ws_connect, owner, llm):
    sid = await make_session(owner)
    comm = await ws_connect(f"/ws/chat/{sid}/", user=owner)
    await layerwatch.ready()
    await asyncio.to_thread(own_redis.stop)

    await closed_with(comm, {"redis_unavailable"})

    seen = layerwatch.epoch()
    await asyncio.to_thread(own_redis.start)
    # A page that reconnects before the watch has noticed the restart is closed once more
    # (layer_restarted) and reconnects again; this one waits until it has.
    await asyncio.wait_for(layerwatch.restarted_since(seen), 10)
    await asks_and_gets(ws_connect, owner, sid, "back again")


async def test_every_chat_page_closes_after_an_outage_of_a_redis_that_kept_everything(kept_redis, ws_connect,
                                                                                       owner, llm):
    """Nothing was lost from Redis, but what was sent while it was away was: each page must
    catch up. Before, only the few sockets whose own receive happened to fail were told."""
    sid = await make_session(owner)
    pages = [await ws_connect(f"/ws/chat/{sid}/", user=owner) for _ in range(6)]
    await layerwatch.ready()
    await asyncio.to_thread(kept_redis.stop)
    await asyncio.sleep(1)
    await asyncio.to_thread(kept_redis.start)

    for comm in pages:
        await closed_with(comm, LAYER_CODES)
        await comm.disconnect()


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
    await comm.disconnect()


async def test_a_broadcast_reaches_an_agent_after_its_redis_is_emptied(own_redis):
    bus = await Bus(get_channel_layer(), KEY, config=FAST, sender_id="tester").start()
    got = asyncio.Event()

    async def handle(message):
        got.set()

    endpoint = await AgentEndpoint(bus, "listener", handle).start()
    try:
        await emptied(own_redis)
        await joined(BROADCAST_GROUP)  # the endpoint joins again

        await bus.broadcast("hello", {"n": 1})
        await asyncio.wait_for(got.wait(), 5)
    finally:
        await endpoint.stop()
        await bus.close()


async def test_an_agent_whose_redis_was_emptied_is_still_closed_when_its_credentials_change(
        own_redis, ws_connect, owner):
    comm, _ = await connect_agent(ws_connect, owner)
    await emptied(own_redis)
    await joined(agent_services.agent_sockets_group("echo"))

    await agent_services.agent_sockets_close(agent_id="echo")  # what the admin's change sends

    await expect_error(comm, "credentials_changed")
    assert (await comm.receive_output())["code"] == 4401
    await comm.disconnect()


async def test_a_credential_change_that_reached_no_socket_is_found_when_the_layer_comes_back(
        own_redis, ws_connect, owner):
    """The change's message went to a group the restart had emptied (here: it was never sent):
    the socket reads the row again when the watch finds the restart."""
    comm, _ = await connect_agent(ws_connect, owner)
    await layerwatch.ready()
    seen = layerwatch.epoch()
    await asyncio.to_thread(empty, own_redis)
    await Agent.objects.filter(pk="echo").aupdate(secret="s3cret")

    await asyncio.wait_for(layerwatch.restarted_since(seen), 10)
    await expect_error(comm, "credentials_changed")
    assert (await comm.receive_output())["code"] == 4401
    await comm.disconnect()


async def test_an_agent_that_leaves_while_redis_is_away_is_offline_and_its_reader_stops(own_redis, ws_connect,
                                                                                        owner):
    comm, _ = await connect_agent(ws_connect, owner)
    await asyncio.to_thread(own_redis.stop)
    await expect_error(comm, "redis_unavailable")
    assert (await comm.receive_output(timeout=15))["code"] == 1011

    await comm.disconnect()  # the agent's side of the close: its clean-up runs, Redis or not

    assert (await Agent.objects.aget(pk="echo")).status == Agent.Status.OFFLINE
    assert not [r for r in supervise.readers() if r.name == "agent-echo-socket-inbox"]
    await asyncio.to_thread(own_redis.start)


async def test_a_token_revoked_after_redis_is_emptied_still_closes_its_socket_at_once(
        own_redis, terminal_user, settings):
    settings.WS_REAUTH_SECONDS = 3600  # only the nudge over the layer can close it in time
    session = await terminal.session_open(user=terminal_user)
    raw = await sync_to_async(make_token)(terminal_user)
    comm = await _open(f"/ws/terminal/{session.pk}/", token=raw)

    await emptied(own_redis)
    await joined(user_group(terminal_user.pk))  # the socket's place in its user's group
    await _revoke(terminal_user, raw)

    assert await _closed(comm) == (4401, "auth")
    await terminal.sessions_shutdown()


async def test_a_request_that_needs_redis_while_it_is_away_is_503_not_500(own_redis, owner, api_client):
    from tests.agents.test_consumers import api_request

    await asyncio.to_thread(own_redis.stop)
    response = await api_request(api_client, owner, "knowledge", action="search", data={"q": "x"})
    assert response.status_code == 503, response.content
    assert response.json()["code"] == "redis_unavailable"
    await asyncio.to_thread(own_redis.start)


async def health_when(predicate, within: float = 20) -> tuple[int, dict]:
    """GET /api/health until its body satisfies ``predicate``: the status and the body."""
    async with asyncio.timeout(within):
        while True:
            response = await AsyncClient().get("/api/health")
            if predicate(response.json()):
                return response.status_code, response.json()
            await asyncio.sleep(WATCH_SECONDS)  # the watch's next round


def watch_state(state: str):
    return lambda body: body["layer_watch"]["state"] == state


async def test_health_shows_the_layer_watch_failing_while_redis_is_away_then_ok_with_a_higher_epoch(own_redis):
    await layerwatch.ready()  # started, as a worker's start-up does (health starts none)
    status, body = await health_when(watch_state("ok"))
    assert status == 200
    before = body["layer_watch"]["epoch"]
    assert body["layer_watch"]["failures"] == 0

    await asyncio.to_thread(own_redis.stop)
    status, body = await health_when(lambda body: watch_state("failing")(body) and body["layer_watch"]["failures"])
    watch = body["layer_watch"]
    assert watch["failures"] >= 1 and watch["epoch"] == before
    assert isinstance(watch["seconds_since_success"], float)  # the last success, before the outage
    # The status code is the round trip's: it fails too, as Redis does not answer.
    assert status == 503 and body["checks"]["channel_layer"]["status"] == "fail"

    await asyncio.to_thread(own_redis.start)  # same port, empty
    status, body = await health_when(lambda body: watch_state("ok")(body) and body["status"] == "ok")
    assert status == 200
    assert body["layer_watch"]["epoch"] > before and body["layer_watch"]["failures"] == 0
    # Nothing about where Redis is (its URL would carry a password when it has one).
    text = json.dumps(body)
    assert own_redis.url not in text and "redis://" not in text and str(own_redis.port) not in text



async def test_a_watch_whose_first_round_never_ends_reports_failing_not_starting(own_redis):
    """A Redis that accepts and never answers (SIGSTOP) from the start: the first round waits out
    the socket timeout, so no round has failed yet; four rounds' time later the watch says failing."""
    os.kill(own_redis.proc.pid, signal.SIGSTOP)
    try:
        layerwatch.epoch()  # starts this loop's watch, as a socket's first use does
        assert layerwatch.report()["state"] == "starting"
        await asyncio.sleep((layerwatch.FAILURES_TO_WARN + 1) * layerwatch._seconds() + 0.5)
        report = layerwatch.report()
        assert report["state"] == "failing" and report["seconds_since_success"] is None
    finally:
        os.kill(own_redis.proc.pid, signal.SIGCONT)

# --- an external agent's socket whose row cannot be read again after a restart (PostgreSQL)


def _waiting_query(pattern: str) -> int | None:
    """The backend whose query (LIKE ``pattern``) waits on a lock, if one does. On a thread of its
    own (asyncio.to_thread): the ORM's thread may be the one waiting."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE %s",
                           [pattern])
            row = cursor.fetchone()
        return row[0] if row else None
    finally:
        connection.close()


def _terminate(pid: int) -> None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    finally:
        connection.close()


async def cut_off(pattern: str) -> None:
    """Terminate the database connection of the query (LIKE ``pattern``) while it waits on the
    lock: to the server, the database went away in the middle of that step (as a restart or a
    failover does)."""
    async with asyncio.timeout(10):
        while (pid := await asyncio.to_thread(_waiting_query, pattern)) is None:  # noqa: ASYNC110 - no event
            await asyncio.sleep(0.05)
    await asyncio.to_thread(_terminate, pid)


CREDENTIAL_READ = """%SELECT %"agents_agent"."secret"%'echo'%"""
OFFLINE_WRITE = """%UPDATE "agents_agent" SET "status" = 'offline'%'echo'%"""


@pytest.mark.postgres
async def test_an_agent_socket_whose_row_cannot_be_read_after_a_restart_closes_cleanly(own_redis, ws_connect,
                                                                                     owner, caplog):
    """The database fails while the socket reads its row again (did its credentials change while
    the layer's messages were lost?): it cannot know, so it closes as other sockets do after a
    restart, and says why; the agent reconnects and is checked afresh. Its inbox reader stops with
    it (a request taken by a closing socket would be lost) and its clean-up runs."""
    comm, _ = await connect_agent(ws_connect, owner)
    await layerwatch.ready()
    seen = layerwatch.epoch()
    async with table_locked("agents_agent", "ACCESS EXCLUSIVE"):
        await asyncio.to_thread(empty, own_redis)
        await asyncio.wait_for(layerwatch.restarted_since(seen), 10)
        await cut_off(CREDENTIAL_READ)

    await expect_error(comm, "layer_restarted")
    assert (await comm.receive_output(timeout=10))["code"] == 1011
    assert any(r.name == "agents.consumers" and r.levelno == logging.WARNING and r.exc_info
               and "echo" in r.getMessage() for r in caplog.records)
    assert not [r for r in supervise.readers() if r.name == "agent-echo-socket-inbox"]

    await comm.disconnect()  # raises if the consumer ended in an exception
    assert (await Agent.objects.aget(pk="echo")).status == Agent.Status.OFFLINE
    again, _ = await connect_agent(ws_connect, owner)  # the agent's reconnection works
    await again.disconnect()


@pytest.mark.postgres
async def test_an_agent_socket_whose_departure_cannot_be_recorded_still_ends_cleanly(own_redis, ws_connect, owner,
                                                                                    caplog):
    """The database fails as the socket records that the agent left: the clean-up says so in the
    log and ends; the socket's end is not an unhandled exception. (Missed heartbeats mark the agent
    offline later: agents_sweep.)"""
    comm, _ = await connect_agent(ws_connect, owner)
    async with table_locked("agents_agent", "ACCESS EXCLUSIVE"):
        leaving = asyncio.ensure_future(comm.disconnect())
        await cut_off(OFFLINE_WRITE)
    await leaving  # raises if the consumer ended in an exception
    assert any(r.name == "agents.consumers" and r.levelno == logging.WARNING and r.exc_info
               and "echo" in r.getMessage() for r in caplog.records)
    assert not [r for r in supervise.readers() if r.name == "agent-echo-socket-inbox"]
