"""The terminal WebSocket through the full ASGI app, with real shells behind it."""

import asyncio
import json
from pathlib import Path

import pytest

from terminal import services
from terminal.models import CommandRecord, TerminalSession
from terminal.services import live as registry

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]

HARMLESS_DANGER = "mkfs.ext4 /dev/autobot-test-none"


async def open_session(user, **kw):
    return await services.session_open(user=user, **kw)


async def frames_until(comm, predicate, *, limit=2000):
    """Receive frames until one satisfies predicate; return (that frame, all output text before it)."""
    output = ""
    for _ in range(limit):
        frame = await comm.receive_json_from(timeout=20)
        if predicate(frame, output):
            return frame, output
        if frame["type"] == "output":
            output += frame["data"]
    raise AssertionError(f"no matching frame; output so far: {output[-500:]!r}")


def output_contains(text):
    return lambda frame, seen: frame["type"] == "output" and text in seen + frame["data"]


async def attach(ws_connect, user, session):
    comm = await ws_connect(f"/ws/terminal/{session.pk}/", user=user)
    assert comm.connected
    hello = await comm.receive_json_from(timeout=10)
    assert hello["type"] == "session"
    return comm, hello


async def test_it_runs_a_command_and_streams_its_output(ws_connect, terminal_user):
    session = await open_session(terminal_user)
    comm, hello = await attach(ws_connect, terminal_user, session)
    assert hello["security_level"] == "RESTRICTED" and hello["id"] == str(session.pk)
    await comm.send_json_to({"type": "input", "data": "echo hel''lo\r"})
    await frames_until(comm, output_contains("hello"))
    await comm.disconnect()


async def test_a_dangerous_command_is_blocked_and_audited(ws_connect, terminal_user):
    session = await open_session(terminal_user)
    comm, _ = await attach(ws_connect, terminal_user, session)
    await comm.send_json_to({"type": "input", "data": f"{HARMLESS_DANGER}\r"})
    frame, _ = await frames_until(comm, lambda f, _: f["type"] == "blocked")
    assert frame["command"] == HARMLESS_DANGER and frame["risk"] == "DANGEROUS" and frame["reasons"]
    await frames_until(comm, output_contains("autobot: blocked: DANGEROUS at RESTRICTED"))
    record = await CommandRecord.objects.aget(session=session, command=HARMLESS_DANGER)
    assert record.blocked and record.risk == "DANGEROUS" and record.security_level == "RESTRICTED"
    from autobot.models import AuditEvent

    assert await AuditEvent.objects.filter(action="terminal.command_blocked", target_id=str(session.pk)).aexists()
    await comm.disconnect()


async def test_exit_codes_reach_the_command_record(ws_connect, terminal_user):
    session = await open_session(terminal_user)
    comm, _ = await attach(ws_connect, terminal_user, session)
    await comm.send_json_to({"type": "input", "data": "(exit 7)\r"})
    await comm.send_json_to({"type": "input", "data": "echo do''ne\r"})
    await frames_until(comm, output_contains("done"))
    record = await CommandRecord.objects.aget(session=session, command="(exit 7)")
    assert record.exit_code == 7 and not record.blocked
    await comm.disconnect()


async def test_reconnecting_replays_recent_output(ws_connect, terminal_user):
    session = await open_session(terminal_user)
    comm, _ = await attach(ws_connect, terminal_user, session)
    await comm.send_json_to({"type": "input", "data": "echo before-$((20+1))\r"})
    await frames_until(comm, output_contains("before-21"))
    await comm.disconnect()
    again, hello = await attach(ws_connect, terminal_user, session)
    assert hello["status"] == "running"
    await frames_until(again, output_contains("before-21"))
    await again.send_json_to({"type": "input", "data": "echo after-$((20+2))\r"})
    await frames_until(again, output_contains("after-22"))
    await again.disconnect()


async def test_two_tabs_on_one_session_both_see_output(ws_connect, terminal_user):
    session = await open_session(terminal_user)
    one, _ = await attach(ws_connect, terminal_user, session)
    two, _ = await attach(ws_connect, terminal_user, session)
    await one.send_json_to({"type": "input", "data": "echo tabs-$((3*3))\r"})
    await frames_until(one, output_contains("tabs-9"))
    await frames_until(two, output_contains("tabs-9"))
    await one.disconnect()
    await two.send_json_to({"type": "input", "data": "echo still-$((4*4))\r"})
    await frames_until(two, output_contains("still-16"))
    await two.disconnect()


async def test_the_session_ends_after_the_reconnect_grace(ws_connect, terminal_user, settings):
    settings.TERMINAL_RECONNECT_SECONDS = 0.1
    session = await open_session(terminal_user)
    comm, _ = await attach(ws_connect, terminal_user, session)
    await comm.disconnect()
    live = registry.get(session.pk)
    await live.ended.wait()
    await session.arefresh_from_db()
    assert session.status == "ended" and session.end_reason == "detached"


async def test_an_idle_session_ends(ws_connect, terminal_user, settings):
    settings.TERMINAL_IDLE_SECONDS = 0.3
    session = await open_session(terminal_user)
    comm, _ = await attach(ws_connect, terminal_user, session)
    live = registry.get(session.pk)
    await frames_until(comm, lambda f, _: f["type"] == "exit")
    await live.ended.wait()
    await session.arefresh_from_db()
    assert session.end_reason == "idle"
    await comm.disconnect()


async def test_a_shell_that_exits_by_itself_sends_exit(ws_connect, terminal_user):
    session = await open_session(terminal_user)
    comm, _ = await attach(ws_connect, terminal_user, session)
    live = registry.get(session.pk)
    await comm.send_json_to({"type": "input", "data": "exit 3\r"})
    frame, _ = await frames_until(comm, lambda f, _: f["type"] == "exit")
    assert frame["code"] == 3
    closed = await comm.receive_output(timeout=10)
    assert closed["type"] == "websocket.close"
    await live.ended.wait()
    await session.arefresh_from_db()
    assert session.status == "ended" and session.exit_code == 3 and session.end_reason == "exited"


# ---- access ------------------------------------------------------------------------------------


async def close_code(comm) -> int:
    message = await comm.receive_output(timeout=10)
    while message["type"] != "websocket.close":
        message = await comm.receive_output(timeout=10)
    return message["code"]


async def test_anonymous_is_closed_4401(ws_connect, terminal_user):
    session = await open_session(terminal_user)
    comm = await ws_connect(f"/ws/terminal/{session.pk}/", user=None)
    assert await close_code(comm) == 4401


async def test_wrong_origin_is_closed_4403(ws_connect, terminal_user):
    session = await open_session(terminal_user)
    comm = await ws_connect(f"/ws/terminal/{session.pk}/", user=terminal_user, origin="http://evil.example")
    assert await close_code(comm) == 4403


async def test_someone_elses_session_is_closed_4404(ws_connect, terminal_user, colleague, grant_terminal):
    grant_terminal(colleague)
    session = await open_session(terminal_user)
    comm = await ws_connect(f"/ws/terminal/{session.pk}/", user=colleague)
    error = await comm.receive_json_from(timeout=10)
    assert error["code"] == "session_not_found"
    assert await close_code(comm) == 4404


async def test_a_user_without_the_permission_is_closed_4403(ws_connect, terminal_user, stranger):
    session = await open_session(terminal_user)
    comm = await ws_connect(f"/ws/terminal/{session.pk}/", user=stranger)
    assert await close_code(comm) == 4403


async def test_staff_may_attach_to_any_session(ws_connect, terminal_user, staff):
    session = await open_session(terminal_user)
    comm, hello = await attach(ws_connect, staff, session)
    assert hello["owner"] == "owner"
    await comm.disconnect()


async def test_an_unknown_session_is_closed_4404(ws_connect, terminal_user):
    comm = await ws_connect("/ws/terminal/00000000-0000-0000-0000-000000000000/", user=terminal_user)
    assert await close_code(comm) == 4404


# ---- bad input ---------------------------------------------------------------------------------


@pytest.fixture
async def attached(ws_connect, terminal_user):
    session = await open_session(terminal_user)
    comm, _ = await attach(ws_connect, terminal_user, session)
    yield comm, session
    await comm.disconnect()


async def next_error(comm):
    frame, _ = await frames_until(comm, lambda f, _: f["type"] == "error")
    return frame


async def still_works(comm):
    await comm.send_json_to({"type": "ping"})
    await frames_until(comm, lambda f, _: f["type"] == "pong")


async def test_malformed_json_gets_an_error_and_the_socket_stays(attached):
    comm, _ = attached
    await comm.send_to(text_data="{not json")
    assert (await next_error(comm))["code"] == "invalid_json"
    await comm.send_to(text_data="[1, 2]")
    assert (await next_error(comm))["code"] == "invalid_frame"
    await still_works(comm)


async def test_unknown_frame_types_are_refused(attached):
    comm, _ = attached
    await comm.send_json_to({"type": "launch-missiles"})
    assert (await next_error(comm))["code"] == "unknown_type"
    await comm.send_json_to({"type": "input", "data": 42})
    assert (await next_error(comm))["code"] == "invalid_input"
    await still_works(comm)


async def test_huge_input_frames_are_rejected(attached, settings):
    comm, _ = attached
    await comm.send_to(text_data=json.dumps({"type": "input", "data": "x" * (settings.TERMINAL_MAX_FRAME_BYTES + 1)}))
    assert (await next_error(comm))["code"] == "frame_too_large"
    await still_works(comm)


async def test_binary_frames_are_rejected(attached):
    comm, _ = attached
    await comm.send_to(bytes_data=b"\x00\x01binary")
    assert (await next_error(comm))["code"] == "binary_frame"
    await still_works(comm)


@pytest.mark.parametrize("cols,rows", [(0, 24), (100000, 24), (80, 0), ("80", 24), (None, None), (True, 24)])
async def test_bad_resizes_are_refused(attached, cols, rows):
    comm, _ = attached
    await comm.send_json_to({"type": "resize", "cols": cols, "rows": rows})
    assert (await next_error(comm))["code"] == "invalid_size"
    await still_works(comm)


async def test_a_good_resize_reaches_the_program(attached):
    comm, _ = attached
    await comm.send_json_to({"type": "resize", "cols": 132, "rows": 43})
    await comm.send_json_to({"type": "input", "data": "stty size\r"})
    await frames_until(comm, output_contains("43 132"))


async def test_invalid_utf8_from_a_program_is_replaced(attached):
    comm, _ = attached
    await comm.send_json_to({"type": "input", "data": "printf 'bad-\\xff-bytes\\n'\r"})
    await frames_until(comm, output_contains("bad-\ufffd-bytes"))


async def test_a_flooding_program_does_not_stop_the_socket(attached):
    comm, _ = attached
    await comm.send_json_to({"type": "input", "data": "yes flood-line\r"})
    await frames_until(comm, output_contains("flood-line\r\nflood-line\r\nflood-line"))
    await comm.send_json_to({"type": "ping"})
    await frames_until(comm, lambda f, _: f["type"] == "pong")  # answered mid-flood
    await comm.send_json_to({"type": "input", "data": "\x03"})  # Ctrl-C stops it
    await comm.send_json_to({"type": "input", "data": "echo calm-$((1+2))\r"})
    await frames_until(comm, output_contains("calm-3"), limit=100000)


async def test_output_is_recorded_as_asciicast(ws_connect, terminal_user):
    session = await open_session(terminal_user)
    comm, _ = await attach(ws_connect, terminal_user, session)
    await comm.send_json_to({"type": "resize", "cols": 100, "rows": 30})
    await comm.send_json_to({"type": "input", "data": "echo cast-$((5*5))\r"})
    await frames_until(comm, output_contains("cast-25"))
    live = registry.get(session.pk)
    await comm.send_json_to({"type": "input", "data": "exit\r"})
    await frames_until(comm, lambda f, _: f["type"] == "exit")
    await comm.disconnect()
    await live.ended.wait()
    session = await TerminalSession.objects.aget(pk=session.pk)
    lines = (await asyncio.to_thread(Path(session.recording_path).read_text)).splitlines()
    header = json.loads(lines[0])
    assert header["version"] == 2 and header["width"] == 80
    events = [json.loads(line) for line in lines[1:]]
    assert any(e[1] == "o" and "cast-25" in e[2] for e in events)
    assert [100, 30] == [int(x) for x in next(e[2] for e in events if e[1] == "r").split("x")]
    assert not any(e[1] == "i" for e in events)  # input is not recorded by default


async def test_a_stricter_level_applies_to_the_next_line(ws_connect, staff):
    session = await open_session(staff, security_level="STANDARD")
    comm, hello = await attach(ws_connect, staff, session)
    assert hello["security_level"] == "STANDARD"
    await comm.send_json_to({"type": "input", "data": "echo loose-$((1+1))\r"})
    await frames_until(comm, output_contains("loose-2"))
    await services.session_update(user=staff, session_id=session.pk, security_level="RESTRICTED")
    frame, _ = await frames_until(comm, lambda f, _: f["type"] == "session")
    assert frame["security_level"] == "RESTRICTED"
    await comm.send_json_to({"type": "input", "data": f"{HARMLESS_DANGER}\r"})
    blocked, _ = await frames_until(comm, lambda f, _: f["type"] == "blocked")
    assert blocked["security_level"] == "RESTRICTED"
    await comm.disconnect()
