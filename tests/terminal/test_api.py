"""The consolidated REST API, through Django's async client with Bearer tokens."""

import asyncio

import pytest

from terminal import services
from terminal.services import live as registry

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]

HARMLESS_DANGER = "mkfs.ext4 /dev/autobot-test-none"
BASE = "/api/terminal"


@pytest.fixture
def client(api_client, terminal_user):
    return api_client(terminal_user)


async def create(client, **body):
    response = await client.post(f"{BASE}/sessions", body, content_type="application/json")
    assert response.status_code == 201, response.json()
    return response.json()


async def test_info_lists_levels_risks_and_endpoints(client):
    body = (await client.get(f"{BASE}/")).json()
    assert {level["name"] for level in body["levels"]} == {"STANDARD", "ELEVATED", "RESTRICTED"}
    assert body["risk_levels"] == ["SAFE", "MODERATE", "HIGH", "DANGEROUS"]
    assert "POST /api/terminal/sessions/{id}/execute" in body["endpoints"]
    assert body["your_max_level"] == "RESTRICTED"


async def test_security_levels(client):
    levels = (await client.get(f"{BASE}/security-levels")).json()
    restricted = next(level for level in levels if level["name"] == "RESTRICTED")
    assert restricted["blocks"] == ["HIGH", "DANGEROUS"]


async def test_assess_reports_risk_and_each_levels_verdict(client):
    body = (await client.post(f"{BASE}/assess", {"command": "rm -rf /"}, content_type="application/json")).json()
    assert body["risk"] == "DANGEROUS" and body["reasons"]
    assert body["verdicts"]["STANDARD"]["blocked"] is False and body["verdicts"]["STANDARD"]["warn"] is True
    assert body["verdicts"]["ELEVATED"]["blocked"] is True
    safe = (await client.post(f"{BASE}/assess", {"command": "echo test"}, content_type="application/json")).json()
    assert safe["risk"] == "SAFE"


async def test_open_list_get_rename_close(client):
    created = await create(client, title="mine")
    assert created["security_level"] == "RESTRICTED" and created["status"] == "running"
    assert created["websocket"] == f"/ws/terminal/{created['id']}/"
    listed = (await client.get(f"{BASE}/sessions?status=live")).json()
    assert listed["count"] == 1 and listed["items"][0]["id"] == created["id"]
    got = (await client.get(f"{BASE}/sessions/{created['id']}")).json()
    assert got["title"] == "mine"
    renamed = await client.patch(f"{BASE}/sessions/{created['id']}", {"title": "ours"}, content_type="application/json")
    assert renamed.json()["title"] == "ours"
    closed = (await client.delete(f"{BASE}/sessions/{created['id']}")).json()
    assert closed["status"] == "ended" and closed["end_reason"] == "closed"


async def test_non_staff_cannot_open_a_looser_level(client):
    response = await client.post(f"{BASE}/sessions", {"security_level": "STANDARD"}, content_type="application/json")
    assert response.status_code == 403 and response.json()["code"] == "level_not_allowed"


async def test_staff_may_loosen_and_users_may_only_tighten(api_client, staff, client):
    staff_client = api_client(staff)
    created = await create(staff_client, security_level="ELEVATED")
    loosened = await staff_client.patch(
        f"{BASE}/sessions/{created['id']}", {"security_level": "STANDARD"}, content_type="application/json"
    )
    assert loosened.json()["security_level"] == "STANDARD"
    mine = await create(client)
    looser = await client.patch(
        f"{BASE}/sessions/{mine['id']}", {"security_level": "ELEVATED"}, content_type="application/json"
    )
    assert looser.status_code == 403


async def test_a_level_change_reaches_the_live_shell(api_client, staff):
    staff_client = api_client(staff)
    created = await create(staff_client, security_level="STANDARD")
    live = registry.get(__import__("uuid").UUID(created["id"]))
    generation = live.generation
    await staff_client.patch(
        f"{BASE}/sessions/{created['id']}", {"security_level": "RESTRICTED"}, content_type="application/json"
    )
    assert live.level == "RESTRICTED" and live.generation == generation + 1


async def test_the_per_user_cap(client, settings):
    settings.TERMINAL_MAX_SESSIONS_PER_USER = 2
    await create(client)
    await create(client)
    response = await client.post(f"{BASE}/sessions", {}, content_type="application/json")
    assert response.status_code == 429 and response.json()["code"] == "session_limit"


async def test_execute_runs_a_safe_command(client):
    created = await create(client)
    body = (
        await client.post(
            f"{BASE}/sessions/{created['id']}/execute",
            {"command": "echo exec-$((6*7)); exit 4"},
            content_type="application/json",
        )
    ).json()
    assert body["output"].strip() == "exec-42" and body["exit_code"] == 4 and body["blocked"] is False
    assert body["risk"] == "SAFE" and body["duration_ms"] >= 0


async def test_execute_blocks_without_running(client, terminal_user):
    created = await create(client)
    body = (
        await client.post(
            f"{BASE}/sessions/{created['id']}/execute", {"command": HARMLESS_DANGER}, content_type="application/json"
        )
    ).json()
    assert body["blocked"] is True and body["exit_code"] is None and body["output"] == ""
    assert body["risk"] == "DANGEROUS"


async def test_execute_times_out_and_kills_the_group(client):
    created = await create(client)
    body = (
        await client.post(
            f"{BASE}/sessions/{created['id']}/execute",
            {"command": "echo started; sleep 30 & wait", "timeout": 0.5},
            content_type="application/json",
        )
    ).json()
    assert body["timed_out"] is True and body["exit_code"] is None and "started" in body["output"]


async def test_execute_caps_output(client, settings):
    settings.TERMINAL_EXECUTE_MAX_OUTPUT = 2048
    created = await create(client)
    body = (
        await client.post(
            f"{BASE}/sessions/{created['id']}/execute",
            {"command": "head -c 100000 /dev/zero | tr '\\0' a"},
            content_type="application/json",
        )
    ).json()
    assert len(body["output"]) == 2048 and body["truncated"] is True


async def test_execute_refuses_a_folder_outside_the_files_area(client):
    created = await create(client)
    response = await client.post(
        f"{BASE}/sessions/{created['id']}/execute", {"command": "pwd", "cwd": "/etc"}, content_type="application/json"
    )
    assert response.status_code == 403 and response.json()["code"] == "cwd_forbidden"


async def test_input_and_signal(client):
    created = await create(client)
    sid = created["id"]
    live = registry.get(__import__("uuid").UUID(sid))
    sub = live.proc.subscribe()
    response = await client.post(
        f"{BASE}/sessions/{sid}/input",
        {"text": "sh -c 'echo sle''eping; exec sleep 30'\r"},
        content_type="application/json",
    )
    assert response.status_code == 204
    seen = ""
    while "sleeping" not in seen:
        seen += await sub.read()
    body = (
        await client.post(f"{BASE}/sessions/{sid}/signal", {"signal": "SIGINT"}, content_type="application/json")
    ).json()
    assert body["signal"] == "SIGINT" and body["process_group"]
    bad = await client.post(f"{BASE}/sessions/{sid}/signal", {"signal": "SIGSEGV"}, content_type="application/json")
    assert bad.status_code == 422
    sub.close()


async def test_a_signal_with_the_shell_idle_at_its_prompt_leaves_the_shell_running(client):
    sid = (await create(client))["id"]
    live = registry.get(__import__("uuid").UUID(sid))
    sub = live.proc.subscribe()
    await client.post(f"{BASE}/sessions/{sid}/input", {"text": "echo rea''dy\r"}, content_type="application/json")
    seen = ""
    while "ready" not in seen:
        seen += await sub.read()
    for name in ("SIGKILL", "SIGSTOP"):
        body = (await client.post(f"{BASE}/sessions/{sid}/signal", {"signal": name},
                                  content_type="application/json")).json()
        assert body == {"signal": name, "process_group": None, "program": None}
    await client.post(f"{BASE}/sessions/{sid}/input", {"text": "echo sti''ll-here\r"}, content_type="application/json")
    while "still-here" not in seen:
        chunk = await asyncio.wait_for(sub.read(), 10)
        assert chunk is not None, "the shell ended"
        seen += chunk
    assert (await client.get(f"{BASE}/sessions/{sid}")).json()["status"] == "running"
    sub.close()


async def test_password_input_is_not_recorded(client, settings):
    settings.TERMINAL_RECORD_INPUT = True
    created = await create(client)
    sid = created["id"]
    await client.post(f"{BASE}/sessions/{sid}/input", {"text": "echo visible-input\r"}, content_type="application/json")
    await client.post(
        f"{BASE}/sessions/{sid}/input", {"text": "hunter2-secret", "is_password": True}, content_type="application/json"
    )
    live = registry.get(__import__("uuid").UUID(sid))
    await client.delete(f"{BASE}/sessions/{sid}")
    await live.ended.wait()
    text = (await client.get(f"{BASE}/sessions/{sid}/recording")).getvalue().decode()
    assert "visible-input" in text
    assert '"i", "hunter2-secret"' not in text


async def test_history_and_audit_filters(client, api_client, staff):
    created = await create(client)
    sid = created["id"]
    for command in ("echo one", HARMLESS_DANGER):
        await client.post(f"{BASE}/sessions/{sid}/execute", {"command": command}, content_type="application/json")
    history = (await client.get(f"{BASE}/sessions/{sid}/history")).json()
    assert history["count"] == 2 and history["items"][0]["command"] == HARMLESS_DANGER
    blocked = (await client.get(f"{BASE}/audit?blocked=true")).json()
    assert [r["command"] for r in blocked["items"]] == [HARMLESS_DANGER]
    dangerous = (await client.get(f"{BASE}/audit?risk=dangerous&session={sid}")).json()
    assert dangerous["count"] == 1
    assert (await client.get(f"{BASE}/audit?user=staffer")).status_code == 403
    assert (await client.get(f"{BASE}/audit?risk=SPICY")).status_code == 422
    everyone = (await api_client(staff).get(f"{BASE}/audit?user=owner")).json()
    assert everyone["count"] == 2
    future = (await client.get(f"{BASE}/audit?since=2999-01-01T00:00:00Z")).json()
    assert future["count"] == 0


async def test_recording_downloads_as_asciicast(client):
    created = await create(client)
    response = await client.get(f"{BASE}/sessions/{created['id']}/recording")
    assert response.status_code == 200 and response["Content-Type"] == "application/x-asciicast"
    content = response.getvalue()
    assert b'"version": 2' in content.split(b"\n")[0]


# ---- access --------------------------------------------------------------------------------


async def test_anonymous_gets_401(api_client):
    assert (await api_client(None).get(f"{BASE}/sessions")).status_code == 401


async def test_a_user_without_the_permission_gets_403(api_client, stranger):
    response = await api_client(stranger).post(f"{BASE}/sessions", {}, content_type="application/json")
    assert response.status_code == 403 and response.json()["code"] == "terminal_forbidden"


async def test_someone_elses_session_is_404_everywhere(client, api_client, colleague, grant_terminal):
    created = await create(client)
    sid = created["id"]
    other = api_client(grant_terminal(colleague))
    assert (await other.get(f"{BASE}/sessions")).json()["count"] == 0
    for method, path, body in [
        ("get", f"/sessions/{sid}", None),
        ("patch", f"/sessions/{sid}", {"title": "x"}),
        ("delete", f"/sessions/{sid}", None),
        ("post", f"/sessions/{sid}/execute", {"command": "id"}),
        ("post", f"/sessions/{sid}/input", {"text": "id\r"}),
        ("post", f"/sessions/{sid}/signal", {"signal": "SIGINT"}),
        ("get", f"/sessions/{sid}/history", None),
        ("get", f"/sessions/{sid}/recording", None),
        ("get", f"/audit?session={sid}", None),
    ]:
        kwargs = {"content_type": "application/json"} if body is not None else {}
        response = await getattr(other, method)(f"{BASE}{path}", *([body] if body is not None else []), **kwargs)
        assert response.status_code == 404, (method, path, response.status_code)
        assert response.json()["code"] == "session_not_found"


async def test_a_malformed_session_id_is_404(client):
    response = await client.get(f"{BASE}/sessions/not-a-uuid")
    assert response.status_code == 404


async def test_command_run_contract_for_other_apps(terminal_user):
    result = await services.command_run(user=terminal_user, command="echo from-agent")
    assert set(result) >= {"exit_code", "output", "risk", "reasons", "blocked", "duration_ms"}
    assert result["output"].strip() == "from-agent" and result["exit_code"] == 0
    blocked = await services.command_run(user=terminal_user, command=HARMLESS_DANGER, level="RESTRICTED")
    assert blocked["blocked"] is True


async def test_command_run_caps_non_staff_at_restricted(terminal_user):
    from autobot.errors import Forbidden

    with pytest.raises(Forbidden):
        await services.command_run(user=terminal_user, command="echo hi", level="STANDARD")


async def test_restricted_sessions_get_resource_limits(client):
    created = await create(client)
    live = registry.get(__import__("uuid").UUID(created["id"]))
    sub = live.proc.subscribe()
    live.proc.write("ulimit -n -c\r")
    seen = ""
    while "core file size" not in seen or "open files" not in seen:
        seen += await asyncio.wait_for(sub.read(), 10)
    assert "256" in seen
    sub.close()


async def test_a_session_of_another_process_says_where_it_lives(client, terminal_user):
    from terminal.models import TerminalSession

    row = await TerminalSession.objects.acreate(owner=terminal_user, title="elsewhere", host="other-host:1")
    response = await client.post(f"{BASE}/sessions/{row.pk}/input", {"text": "id\r"}, content_type="application/json")
    assert response.status_code == 503 and response.json()["code"] == "session_elsewhere"


async def test_rows_left_by_a_dead_process_are_marked_ended(client, terminal_user):
    from terminal.models import TerminalSession

    host = registry.HOST_ID.rpartition(":")[0]
    row = await TerminalSession.objects.acreate(owner=terminal_user, title="orphan", host=f"{host}:999999999")
    listed = (await client.get(f"{BASE}/sessions")).json()
    assert next(s for s in listed["items"] if s["id"] == str(row.pk))["status"] == "ended"
    assert await services.sessions_reconcile() == 0


async def test_a_write_to_a_shell_start_up_file_is_blocked_or_warned_never_silent(client, terminal_user, api_client,
                                                                                   staff):
    from django.conf import settings as django_settings

    from terminal.models import CommandRecord

    line = "echo 'echo started-$((6*7))' >> ~/.bashrc"
    mine = await create(client)  # RESTRICTED, like every non-staff session: HIGH is blocked
    blocked = (await client.post(f"{BASE}/sessions/{mine['id']}/execute", {"command": line},
                                 content_type="application/json")).json()
    assert blocked["blocked"] is True and blocked["risk"] == "HIGH" and blocked["exit_code"] is None
    assert any("~/.bashrc, a shell start-up file" in r for r in blocked["reasons"])
    owner_area = django_settings.FILES_ROOT / terminal_user.get_username()
    assert await asyncio.to_thread(owner_area.is_dir) and not await asyncio.to_thread((owner_area / ".bashrc").exists)

    staff_client = api_client(staff)
    elevated = await create(staff_client, security_level="ELEVATED")  # sandboxed; HIGH runs with a warning
    warned = (await staff_client.post(f"{BASE}/sessions/{elevated['id']}/execute", {"command": line},
                                      content_type="application/json")).json()
    assert warned["blocked"] is False and warned["risk"] == "HIGH" and warned["exit_code"] == 0
    assert warned["reason"].startswith("HIGH: ") and "~/.bashrc" in warned["reason"]
    record = await CommandRecord.objects.aget(pk=warned["record_id"])
    assert record.warned and not record.blocked
    staff_rc = django_settings.FILES_ROOT / staff.get_username() / ".bashrc"
    assert "echo started-$((6*7))" in await asyncio.to_thread(staff_rc.read_text)  # in the sandbox's home
