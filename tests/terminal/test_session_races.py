"""Opening and closing sessions while other requests of the same user run (issue 11's soak).

Closing a session never fails the caller, whatever else is going on.

The soak found DELETEs that ended in a CancelledError (a 503, and nginx then took the workers out
of rotation): the relay's reader, closing a session for another worker, waited for the teardown
while the teardown waited for the reader, then cancelled it, and with it the teardown itself and
every DELETE waiting on it. These close real shells while their output flows, with sockets
attached, twice at once, and on Redis through the relay as another worker would.
"""

import asyncio
import os
import uuid

import pytest

from autobot.errors import AppError
from terminal.models import TerminalSession
from terminal.services import live as registry
from terminal.services import relay
from tests.conftest import use_redis_layer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

BASE = "/api/terminal"
FLOOD = "for i in $(seq 1 200000); do echo flow-$i; done\r"  # output that keeps coming


@pytest.fixture
def client(api_client, terminal_user):
    return api_client(terminal_user)


@pytest.fixture(autouse=True)
def _room_for_sessions(settings):
    settings.TERMINAL_MAX_SESSIONS_PER_USER = 50


async def _open_flowing(client, ws_connect, user) -> tuple[str, object]:
    """A session with a socket attached and output flowing through it."""
    response = await client.post(f"{BASE}/sessions", {}, content_type="application/json")
    assert response.status_code == 201, response.json()
    sid = response.json()["id"]
    comm = await ws_connect(f"/ws/terminal/{sid}/", user=user)
    assert comm.connected
    assert (await comm.receive_json_from(timeout=20))["type"] == "session"
    await comm.send_json_to({"type": "input", "data": FLOOD})
    for _ in range(200):  # until the flood is on its way
        frame = await comm.receive_json_from(timeout=20)
        if frame["type"] == "output" and "flow-" in frame["data"]:
            break
    return sid, comm


async def _nothing_left(sids: list[str], pids: list[int]) -> None:
    assert not [s for s in sids if registry.get(uuid.UUID(s)) is not None]
    rows = [row async for row in TerminalSession.objects.filter(pk__in=sids)]
    assert {(row.status, row.end_reason) for row in rows} == {("ended", "closed")}
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


async def _tasks_done(lives) -> None:
    await asyncio.sleep(0)  # the tasks cancelled last finish on the loop's next turns
    for _ in range(100):
        running = [t for live in lives for t in live.tasks if not t.done()]
        if not running:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"still running after the close: {running}")


async def test_closing_while_output_flows_and_sockets_are_attached(client, ws_connect, terminal_user):
    for _ in range(3):
        opened = await asyncio.gather(*(_open_flowing(client, ws_connect, terminal_user) for _ in range(4)))
        sids = [sid for sid, _ in opened]
        lives = [registry.get(uuid.UUID(sid)) for sid in sids]
        pids = [live.proc.pid for live in lives]
        # Every session closed twice at once (a DELETE and its retry), its socket leaving meanwhile.
        deletes = [client.delete(f"{BASE}/sessions/{sid}") for sid in sids for _ in range(2)]
        results = await asyncio.gather(*deletes, *(comm.disconnect() for _, comm in opened))
        responses = results[:len(deletes)]
        assert [r.status_code for r in responses] == [200] * len(deletes), [r.content for r in responses]
        assert {r.json()["status"] for r in responses} == {"ended"}
        await _nothing_left(sids, pids)
        await _tasks_done(lives)


@pytest.fixture
async def redis_layer(settings):
    """The Redis channel layer, as with several workers: each session's relay reader runs."""
    from channels.layers import channel_layers

    use_redis_layer(settings, "close")
    yield
    from terminal.services import sessions_shutdown

    await sessions_shutdown()
    channel_layers.backends.clear()


@pytest.mark.redis
async def test_a_close_relayed_from_another_worker_and_a_local_one_both_succeed(
    redis_layer, client, ws_connect, terminal_user
):
    for _ in range(3):
        opened = await asyncio.gather(*(_open_flowing(client, ws_connect, terminal_user) for _ in range(3)))
        sids = [sid for sid, _ in opened]
        lives = [registry.get(uuid.UUID(sid)) for sid in sids]
        assert all(any(t.get_name().endswith(" relay") for t in live.tasks) for live in lives)
        pids = [live.proc.pid for live in lives]
        sessions = [await TerminalSession.objects.aget(pk=sid) for sid in sids]
        # What a worker that does not run the PTY sends, alongside a DELETE here and the sockets
        # leaving. Answered, or session_ended once the local close got there first (which
        # session_close counts as closed); never left unanswered (session_unreachable).
        remote = [relay.call(session, "close") for session in sessions]
        deletes = [client.delete(f"{BASE}/sessions/{sid}") for sid in sids]
        results = await asyncio.gather(*remote, *deletes, *(comm.disconnect() for _, comm in opened),
                                       return_exceptions=True)
        for answer in results[:len(remote)]:
            assert answer is None or (isinstance(answer, AppError) and answer.code == "session_ended"), answer
        responses = results[len(remote):len(remote) + len(deletes)]
        assert [r.status_code for r in responses] == [200] * len(deletes), [r.content for r in responses]
        await _nothing_left(sids, pids)
        await _tasks_done(lives)


async def test_sessions_opened_at_once_by_one_user_all_stay_live(client):
    """Each open (and list) first ends the user's rows this process has lost; a row whose shell
    was still starting must not count as lost (the soak's sockets then got 4409 session_ended)."""
    opened = asyncio.Event()

    async def list_meanwhile():
        while not opened.is_set():
            assert (await client.get(f"{BASE}/sessions?status=live")).status_code == 200

    async def open_all():
        try:
            return await asyncio.gather(*(client.post(f"{BASE}/sessions", {}, content_type="application/json")
                                          for _ in range(8)))
        finally:
            opened.set()

    responses, *_ = await asyncio.gather(open_all(), *(list_meanwhile() for _ in range(4)))
    assert [r.status_code for r in responses] == [201] * 8, [r.content for r in responses]
    rows = [row async for row in TerminalSession.objects.filter(pk__in=[r.json()["id"] for r in responses])]
    assert {(row.status, row.end_reason) for row in rows} == {("running", "")}
