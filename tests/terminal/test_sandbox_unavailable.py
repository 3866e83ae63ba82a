"""Without bubblewrap, shells that need the sandbox are refused — never run bare — and
/api/health says so."""

import pytest
from django.test import AsyncClient

from terminal.models import TerminalSession
from tests.terminal.conftest import agrant

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]

BASE = "/api/terminal"


@pytest.fixture
def no_bwrap(settings):
    settings.TERMINAL_BWRAP = "/nonexistent/bwrap"


async def test_opening_a_restricted_session_is_refused_with_how_to_install(api_client, terminal_user, no_bwrap):
    response = await api_client(terminal_user).post(f"{BASE}/sessions", {}, content_type="application/json")
    assert response.status_code == 503
    body = response.json()
    assert body["code"] == "sandbox_unavailable"
    assert "apt-get install bubblewrap" in body["detail"] and "/nonexistent/bwrap" in body["detail"]
    assert not await TerminalSession.objects.filter(owner=terminal_user).aexists()


async def test_execute_is_refused_and_nothing_runs(api_client, terminal_user, settings, tmp_path):
    client = api_client(terminal_user)
    created = (await client.post(f"{BASE}/sessions", {}, content_type="application/json")).json()
    settings.TERMINAL_BWRAP = "/nonexistent/bwrap"  # gone since the session started
    probe = tmp_path / "ran"
    url = f"{BASE}/sessions/{created['id']}/execute"
    response = await client.post(url, {"command": f"touch {probe}"}, content_type="application/json")
    assert response.status_code == 503 and response.json()["code"] == "sandbox_unavailable"
    assert not probe.exists()


async def test_the_terminal_agents_command_run_is_refused(terminal_user, no_bwrap):
    from autobot.errors import Unavailable
    from terminal.services import command_run

    with pytest.raises(Unavailable) as caught:
        await command_run(user=terminal_user, command="echo hi")
    assert caught.value.code == "sandbox_unavailable"


async def test_staff_elevated_is_refused_too(api_client, staff, no_bwrap):
    await agrant(staff)
    body = {"security_level": "ELEVATED"}
    response = await api_client(staff).post(f"{BASE}/sessions", body, content_type="application/json")
    assert response.status_code == 503 and response.json()["code"] == "sandbox_unavailable"


async def test_health_reports_the_missing_sandbox(no_bwrap):
    response = await AsyncClient().get("/api/health")
    assert response.status_code == 503
    assert response.json()["checks"]["terminal_sandbox"] == {"status": "fail", "error": "sandbox_unavailable"}


async def test_health_reports_a_working_sandbox():
    response = await AsyncClient().get("/api/health")
    assert response.json()["checks"]["terminal_sandbox"]["status"] == "ok"


async def test_a_bubblewrap_without_disable_userns_still_runs_shells_and_says_what_it_misses(
        terminal_user, settings, tmp_path, caplog):
    """Before 0.8 bubblewrap has no --disable-userns: sessions still start, without it, and the
    server logs that a sandboxed user could then lift their cgroup caps."""
    old = tmp_path / "bwrap"
    old.write_text('#!/bin/sh\nfor arg; do [ "$arg" = --disable-userns ] && '
                   '{ echo "bwrap: Unknown option --disable-userns" >&2; exit 1; }; done\n'
                   f'exec {settings.TERMINAL_BWRAP} "$@"\n')
    old.chmod(0o755)
    settings.TERMINAL_BWRAP = str(old)
    from terminal.services import command_run

    result = await command_run(user=terminal_user, command="echo sandboxed")
    assert (result["exit_code"], result["output"].strip()) == (0, "sandboxed")
    assert "cannot disable user namespaces" in caplog.text and str(old) in caplog.text
