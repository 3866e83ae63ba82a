"""Watching and joining are visible: staff watch read-only, the owner sees them, joining to
type is explicit, audited, marked in the recording and attributed to the joiner."""

import asyncio
import json
from pathlib import Path

import pytest

from autobot.models import AuditEvent
from terminal import services
from terminal.models import CommandRecord
from tests.terminal.conftest import agrant
from tests.terminal.test_consumers import attach, frames_until, output_contains

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


def frame_type(kind):
    return lambda frame, _seen: frame["type"] == kind


@pytest.fixture
async def owned(ws_connect, terminal_user):
    session = await services.session_open(user=terminal_user)
    comm, hello = await attach(ws_connect, terminal_user, session)
    yield session, comm, hello
    await comm.disconnect()


@pytest.fixture
async def boss(staff):
    return await agrant(staff)


async def actions(session) -> list[tuple[str, str]]:
    events = AuditEvent.objects.filter(target_id=str(session.pk), action__startswith="terminal.session_")
    return [(e.action, e.actor_name) async for e in events.order_by("id")]


async def test_staff_watch_read_only_and_the_owner_sees_them(ws_connect, owned, boss):
    session, owner_ws, hello = owned
    assert hello["role"] == "owner" and hello["watchers"] == []
    watcher, info = await attach(ws_connect, boss, session)
    assert info["role"] == "observer"
    frame, _ = await frames_until(owner_ws, frame_type("watchers"))
    assert [(w["user"], w["role"]) for w in frame["watchers"]] == [("staffer", "observer")]
    # Typing is refused while watching, and nothing reaches the shell.
    await watcher.send_json_to({"type": "input", "data": "echo from-wa''tcher\r"})
    error, _ = await frames_until(watcher, frame_type("error"))
    assert error["code"] == "observer_read_only"
    # The watcher sees the owner's work.
    await owner_ws.send_json_to({"type": "input", "data": "echo by-ow''ner\r"})
    await frames_until(watcher, output_contains("by-owner"))
    assert not await CommandRecord.objects.filter(command__contains="from-wa").aexists()
    await watcher.disconnect()
    frame, _ = await frames_until(owner_ws, frame_type("watchers"))
    assert frame["watchers"] == []
    assert await actions(session) == [
        ("terminal.session_open", "owner"), ("terminal.session_watch", "staffer"),
        ("terminal.session_unwatch", "staffer"),
    ]


async def test_joining_is_explicit_audited_marked_and_attributed(ws_connect, owned, boss, terminal_user):
    session, owner_ws, _ = owned
    joiner, _ = await attach(ws_connect, boss, session)
    await joiner.send_json_to({"type": "join"})
    notice, _ = await frames_until(owner_ws, lambda f, _: f["type"] == "notice" and "joined" in f["detail"])
    assert notice["detail"] == "staffer joined the session and may type"
    await frames_until(owner_ws, lambda f, _: f["type"] == "watchers" and f["watchers"][0]["role"] == "joined")
    await joiner.send_json_to({"type": "input", "data": "echo by-jo''iner\r"})
    await frames_until(owner_ws, output_contains("by-joiner"))
    await owner_ws.send_json_to({"type": "input", "data": "echo by-ow''ner\r"})
    await frames_until(joiner, output_contains("by-owner"))
    await joiner.send_json_to({"type": "leave"})
    await frames_until(owner_ws, lambda f, _: f["type"] == "watchers" and f["watchers"][0]["role"] == "observer")
    await joiner.disconnect()

    rows = CommandRecord.objects.filter(session_id=session.pk).select_related("user").order_by("id")
    by = {r.command: r.user.username async for r in rows}
    assert by == {"echo by-jo''iner": "staffer", "echo by-ow''ner": "owner"}
    assert await actions(session) == [
        ("terminal.session_open", "owner"), ("terminal.session_watch", "staffer"),
        ("terminal.session_join", "staffer"), ("terminal.session_leave", "staffer"),
        ("terminal.session_unwatch", "staffer"),
    ]
    await owner_ws.disconnect()
    await services.session_close(user=terminal_user, session_id=session.pk)
    text = await asyncio.to_thread(Path(session.recording_path).read_text)
    events = [json.loads(line) for line in text.splitlines()[1:]]
    markers = [data for _t, code, data in events if code == "m"]
    assert markers == ["staffer is watching", "staffer joined the session and may type", "staffer left the session"]


async def test_joining_with_the_mode_parameter_and_leaving_by_disconnecting(ws_connect, owned, boss):
    session, owner_ws, _ = owned
    comm = await ws_connect(f"/ws/terminal/{session.pk}/?mode=join", user=boss)
    hello = await comm.receive_json_from(timeout=10)
    assert hello["type"] == "session" and hello["role"] == "joined"
    await comm.disconnect()
    await frames_until(owner_ws, lambda f, _: f["type"] == "watchers" and f["watchers"] == [])
    assert ("terminal.session_leave", "staffer") in await actions(session)


async def test_staff_input_through_the_api_is_an_audited_join(api_client, owned, boss):
    session, owner_ws, _ = owned
    url = f"/api/terminal/sessions/{session.pk}/input"
    response = await api_client(boss).post(url, {"text": "echo via-a''pi\r"}, content_type="application/json")
    assert response.status_code == 204
    await frames_until(owner_ws, output_contains("via-api"))
    assert ("terminal.session_join", "staffer") in await actions(session)
    record = await CommandRecord.objects.select_related("user").aget(session_id=session.pk, command="echo via-a''pi")
    assert record.user.username == "staffer"


async def test_the_owner_cannot_join_their_own_session(owned):
    _session, owner_ws, _ = owned
    await owner_ws.send_json_to({"type": "join"})
    error, _ = await frames_until(owner_ws, frame_type("error"))
    assert error["code"] == "own_session"


async def test_non_staff_never_see_another_users_session(ws_connect, owned, colleague, grant_terminal):
    session, _, _ = owned
    user = await agrant(colleague)
    comm = await ws_connect(f"/ws/terminal/{session.pk}/?mode=join", user=user)
    error = await comm.receive_json_from(timeout=10)
    assert error["code"] == "session_not_found"
    await comm.disconnect()
