"""A session's life at its edges: closed while its shell starts, a start that fails halfway, a
recording that cannot be written, and rows left behind by a server process that stopped."""

import asyncio
import os
import sys
import uuid
from pathlib import Path

import pytest

from terminal.models import TerminalSession
from terminal.recording import Recorder
from terminal.services import live as registry
from tests.terminal.sandbox_helpers import Term

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]

BASE = "/api/terminal"


@pytest.fixture
def client(api_client, terminal_user):
    return api_client(terminal_user)


def _processes_of(session_id) -> list[int]:
    """Processes on this machine started for the session (the shell, its sandbox), found as an
    administrator would: by the session id in their environment."""
    marker = f"AUTOBOT_SESSION_ID={session_id}".encode()
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/environ", "rb") as fh:
                if marker in fh.read().split(b"\0"):
                    found.append(int(entry.name))
        except OSError:  # gone meanwhile, or a kernel thread
            continue
    return found


async def _none_left(session_id) -> bool:
    """True once every process of the session has exited (a sandbox's inner processes die just
    after the outer one: waited for through pidfds, up to a bound that only a survivor reaches)."""
    from autobot.workers import wait_gone

    host = registry.HOST_ID.rpartition(":")[0]
    try:
        await asyncio.wait_for(asyncio.gather(*(wait_gone(f"{host}:{pid}") for pid in _processes_of(session_id))),
                               timeout=15)
    except TimeoutError:
        return False
    return not _processes_of(session_id)


async def _dead_worker() -> str:
    """The worker id of a server process on this host that has stopped."""
    gone = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
    await gone.wait()
    return f"{registry.HOST_ID.rpartition(':')[0]}:{gone.pid}"


# ---- closed while starting ------------------------------------------------------------------


async def test_closing_a_session_while_its_shell_starts_ends_it(client, terminal_user, monkeypatch):
    from terminal.services import sessions as sessions_module

    # The shell starts only once the close has come: on a busy machine, a start left to itself
    # could be over (the session live) before the close reached it.
    close_noted, spawn = asyncio.Event(), sessions_module._spawn

    async def spawn_after_the_close(*args, **kwargs):
        await close_noted.wait()
        return await spawn(*args, **kwargs)

    monkeypatch.setattr(sessions_module, "_spawn", spawn_after_the_close)
    opening = asyncio.ensure_future(client.post(f"{BASE}/sessions", {}, content_type="application/json"))
    row = None
    while row is None:  # the row exists from the start; the shell is not up yet
        assert not opening.done(), opening.result().content
        row = await TerminalSession.objects.filter(owner=terminal_user).afirst()
    start = registry.starting(row.pk)
    assert start is not None and not opening.done()  # its shell is starting

    closing = asyncio.ensure_future(client.delete(f"{BASE}/sessions/{row.pk}"))
    async with asyncio.timeout(30):
        while start.close_reason is None:  # noqa: ASYNC110 - the close sets no event of its own
            assert not closing.done(), closing.result().content
            await asyncio.sleep(0.01)
    close_noted.set()
    closed = await closing
    opened = await opening

    assert closed.status_code == 200, closed.content
    assert (closed.json()["status"], closed.json()["end_reason"]) == ("ended", "closed")
    assert opened.status_code == 201 and opened.json()["status"] == "ended"
    assert registry.get(row.pk) is None and await _none_left(row.pk)
    # Nothing of it comes back: it is not listed live, and a socket is told it has ended.
    live = (await client.get(f"{BASE}/sessions?status=live")).json()
    assert live["count"] == 0
    row = await TerminalSession.objects.aget(pk=row.pk)
    assert (row.status, row.end_reason) == ("ended", "closed")


# ---- a start that fails halfway -------------------------------------------------------------


async def test_a_shell_whose_recording_cannot_start_is_not_left_running(client, terminal_user, settings,
                                                                        tmp_path):
    term = await Term.open(terminal_user)
    assert _processes_of(term.session.pk)  # the scan finds a running session's shell
    (tmp_path / "a-file").write_text("not a folder")
    settings.TERMINAL_RECORDINGS_DIR = tmp_path / "a-file" / "recordings"  # its folder cannot be made

    response = await client.post(f"{BASE}/sessions", {}, content_type="application/json")

    assert response.status_code == 503, response.content
    assert response.json() == {"detail": "the shell could not be started", "code": "spawn_failed"}
    failed = await TerminalSession.objects.exclude(pk=term.session.pk).aget()
    assert (failed.status, failed.end_reason) == ("ended", "spawn_failed")
    assert registry.get(failed.pk) is None and await _none_left(failed.pk)
    listed = (await client.get(f"{BASE}/sessions?status=live")).json()
    assert [item["id"] for item in listed["items"]] == [str(term.session.pk)]  # the other one lives on


# ---- a recording that cannot be written -----------------------------------------------------


async def test_a_recorder_whose_file_cannot_be_written_never_holds_up_the_session(tmp_path, caplog):
    target = tmp_path / "taken.cast"
    target.mkdir()  # a folder where the file should be: the writer stops at once
    recorder = Recorder(target, cols=80, rows=24)
    await recorder.start()

    for n in range(1000):  # far more than the queue holds
        await recorder.output(f"line {n}\r\n")
    await recorder.close()

    assert isinstance(recorder.failed, IsADirectoryError)
    assert f"recording {target} stopped" in caplog.text


async def test_a_session_whose_recording_fails_keeps_working_and_closes(client, terminal_user, settings, caplog):
    settings.TERMINAL_RECORDINGS_DIR = Path("/proc/self/fdinfo")  # exists, and takes no new file
    term = await Term.open(terminal_user)

    # Far more output events than the recorder's queue holds, then a marker.
    output = await term.run("seq 1 3000; echo seq-d''one")
    assert "seq-done" in output

    response = await client.delete(f"{BASE}/sessions/{term.session.pk}")
    assert response.status_code == 200 and response.json()["status"] == "ended"
    assert "the rest of the session is not recorded" in caplog.text
    recording = await client.get(f"{BASE}/sessions/{term.session.pk}/recording")
    assert recording.status_code == 404 and recording.json()["code"] == "recording_not_found"


# ---- rows of a stopped server process -------------------------------------------------------


async def test_staff_listing_sessions_end_every_users_lost_rows(api_client, grant_terminal, staff, colleague,
                                                                stranger):
    colleague, stranger = grant_terminal(colleague), grant_terminal(stranger)
    lost = await TerminalSession.objects.acreate(owner=colleague, title="lost", host=await _dead_worker())

    # A user lists their own: someone else's row is none of theirs to end.
    assert (await api_client(stranger).get(f"{BASE}/sessions")).json()["count"] == 0
    assert (await TerminalSession.objects.aget(pk=lost.pk)).status == "running"

    listed = (await api_client(staff).get(f"{BASE}/sessions")).json()

    assert [(s["id"], s["status"], s["end_reason"]) for s in listed["items"]] == [
        (str(lost.pk), "ended", "server_gone")]


def test_the_admin_session_list_shows_lost_rows_ended(client_factory_admin):
    client, lost = client_factory_admin
    page = client.get("/admin/terminal/terminalsession/")
    assert page.status_code == 200
    row = TerminalSession.objects.get(pk=lost.pk)
    assert (row.status, row.end_reason) == ("ended", "server_gone")


def test_staff_without_the_view_permission_change_nothing_by_opening_the_admin_list(client_factory_admin,
                                                                                   django_user_model):
    from django.test import Client

    from tests.conftest import PASSWORD

    _, lost = client_factory_admin
    clerk = django_user_model.objects.create_user("clerk", password=PASSWORD, is_staff=True)
    client = Client()
    assert client.login(username=clerk.username, password=PASSWORD)

    assert client.get("/admin/terminal/terminalsession/").status_code == 403
    assert client.get(f"/admin/terminal/terminalsession/{lost.pk}/change/").status_code == 403
    assert TerminalSession.objects.get(pk=lost.pk).status == "running"


@pytest.fixture
def client_factory_admin(staff, colleague):
    from django.test import Client

    from tests.conftest import PASSWORD

    worker = asyncio.run(_dead_worker())
    lost = TerminalSession.objects.create(owner=colleague, title="lost", host=worker, id=uuid.uuid4())
    client = Client()
    assert client.login(username=staff.username, password=PASSWORD)
    return client, lost
