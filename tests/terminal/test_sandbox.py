"""A RESTRICTED session of a non-staff user, in its real bubblewrap sandbox: real attempts to
reach the server's secrets, database, processes, port and other users' files all fail, and
ordinary work still succeeds. Each attack is one the ratings let through (so the sandbox, not
the rule table, is what stops it)."""

import asyncio
import os
from pathlib import Path

import pytest
from django.db import connection

from terminal.models import CommandRecord
from tests.terminal.conftest import agrant
from tests.terminal.sandbox_helpers import Term

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(90)]

CANARY = "autobot-canary-7f3a"


@pytest.fixture
def server_var(settings, tmp_path):
    """The server's var/ holding a secret key, as a deployment has it."""
    var = tmp_path / "var"
    var.mkdir()
    (var / "secret_key").write_text(f"{CANARY}-secret\n")
    (var / "secret_key").chmod(0o600)
    settings.VAR_DIR = var
    return var


@pytest.fixture
async def term(terminal_user, server_var):
    t = await Term.open(terminal_user)
    yield t


async def _not_blocked(term, command: str) -> None:
    """The rating let it run: whatever stopped it was the sandbox."""
    blocked = [r async for r in CommandRecord.objects.filter(session_id=term.session.pk, blocked=True)]
    assert not [r.command for r in blocked if command in r.command]


async def test_the_secret_key_file_is_not_there(term, server_var):
    out = await term.run(f"cat {server_var}/secret_key")
    assert CANARY not in out and "No such file" in out
    await _not_blocked(term, "secret_key")


async def test_the_database_is_not_there_so_the_user_cannot_make_themself_staff(term, terminal_user):
    # The red-team escalation: shell → sqlite3 on the server's database → is_staff.
    if connection.vendor != "sqlite":
        pytest.skip("the database is a file the shell could open only with SQLite")
    db = connection.settings_dict["NAME"]
    assert await asyncio.to_thread(os.path.isfile, db)
    # The ratings now refuse SQL that writes user accounts (HIGH); a read is allowed, and finds
    # no database: the sandbox, not the rating, is what keeps the file out of reach.
    out = await term.run(f"sqlite3 {db} \"select count(*) from auth_user\"; ls -l {db}")
    assert "No such file" in out or "unable to open" in out
    await _not_blocked(term, "sqlite3")
    line = f"sqlite3 {db} \"update auth_user set is_staff=1 where username='{terminal_user.username}'\""
    out = await term.run(line)
    assert "blocked" in out or "unable to open" in out
    await terminal_user.arefresh_from_db()
    assert not terminal_user.is_staff


async def test_another_users_area_is_not_there(term, colleague, grant_terminal, settings):
    other = Path(settings.FILES_ROOT) / colleague.username
    other.mkdir(parents=True, exist_ok=True)
    (other / "diary.txt").write_text(CANARY)
    out = await term.run(f"cat {other}/diary.txt; ls {settings.FILES_ROOT}")
    assert CANARY not in out and "No such file" in out
    assert colleague.username not in out.split("No such file")[-1]


async def test_the_servers_processes_and_environment_are_not_visible(term, monkeypatch):
    monkeypatch.setenv("AUTOBOT_CANARY_ENV", CANARY)
    out = await term.run(f"cat /proc/{os.getpid()}/environ; cat /proc/1/environ")
    assert CANARY not in out
    count = int((await term.run("ls /proc | grep -c '^[0-9]'")).strip().splitlines()[-1])
    assert count < 10  # bwrap's init, bash, the pipeline: not the host's process table
    assert "pytest" not in await term.run("ps -eo args 2>/dev/null || cat /proc/[0-9]*/cmdline")


async def _fetch_from_loopback(term) -> str:
    async def answer(reader, writer):
        writer.write(f"HTTP/1.0 200 OK\r\n\r\n{CANARY}".encode())
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        return await term.run(f"curl -sS -m 5 http://127.0.0.1:{port}/; echo rc=$?")
    finally:
        server.close()


async def test_the_servers_port_cannot_be_reached(term):
    out = await _fetch_from_loopback(term)
    assert CANARY not in out and "rc=0" not in out
    await _not_blocked(term, "curl")


async def test_the_network_setting_opens_restricted_sandboxes_to_the_host_network(terminal_user, settings):
    settings.TERMINAL_SANDBOX_NETWORK = True
    term = await Term.open(terminal_user)
    assert CANARY in await _fetch_from_loopback(term)


async def test_nothing_outside_home_is_writable(term, server_var, settings):
    home = term.live.proc.cwd()
    out = await term.run(
        f"touch /usr/autobot-probe /autobot-probe /etc/autobot-probe {server_var}/autobot-probe; "
        f"touch {settings.FILES_ROOT}/autobot-probe; echo done"
    )
    # (Tests keep the files root under /tmp, which in the sandbox is a private tmpfs.)
    assert out.count("touch: cannot touch") >= 4, out
    probes = (server_var, Path("/usr"), Path(settings.FILES_ROOT))
    for probe in (folder / "autobot-probe" for folder in probes):
        assert not await asyncio.to_thread(probe.exists)
    await term.run("echo kept > inside.txt")
    assert (Path(home) / "inside.txt").read_text() == "kept\n"


async def test_symlinks_in_the_files_area_lead_nowhere(term, server_var):
    home = Path(term.live.proc.cwd())
    (home / "key").symlink_to(server_var / "secret_key")
    (home / "root").symlink_to("/")
    server_root = f"/proc/{os.getpid()}/root"
    out = await term.run(f"cat key; cat root{server_var}/secret_key; ln -s {server_root} r2; cat r2/etc/shadow")
    assert CANARY not in out and "root:" not in out
    listing = (await term.run("ls root/")).split()
    assert "usr" in listing and not {"boot", "srv", "root", "work"} & set(listing)  # the sandbox's /, not the host's


async def test_forking_without_limit_hits_the_process_limit(terminal_user, server_var, settings):
    settings.TERMINAL_RLIMIT_PROCESSES = 16
    term = await Term.open(terminal_user)
    # Bounded: 40 sleepers; the limit stops it at 16 processes.
    term.type("for i in $(seq 40); do sleep 30 & done\r")
    await term.until("Resource temporarily unavailable")
    term.live.proc.signal_foreground(2)


async def test_ordinary_work_still_works(term):
    out = await term.run("printf 'hello world\\n' > notes.txt && ex -s -c '%s/world/sandbox/' -c wq notes.txt")
    out = await term.run("cat notes.txt")
    assert "hello sandbox" in out
    out = await term.run("python3 --version")
    assert "Python 3" in out
    out = await term.run(
        "git init -q proj && cd proj && echo x > f && git add f && "
        "git -c user.name=me -c user.email=me@example.org commit -qm first && git log --oneline | wc -l"
    )
    assert out.strip().splitlines()[-1].strip() == "1"
    assert term.live.proc.cwd().endswith("/proj")
    out = await term.run("id -u; whoami; echo $HOME; touch /tmp/t && echo tmp-ok")
    lines = out.splitlines()
    assert lines[0] == "1000" and lines[0] != str(os.getuid()) and "tmp-ok" in out
    status = await term.run("grep -E '^(CapEff|CapBnd|NoNewPrivs)' /proc/self/status")
    assert "NoNewPrivs:\t1" in status and "CapEff:\t0000000000000000" in status
    assert "CapBnd:\t0000000000000000" in status


async def test_tampering_with_the_hook_is_still_blocked(term):
    await term.run("trap - DEBUG")
    out = await term.run("trap -p DEBUG")
    assert "__autobot_hook" in out
    records = CommandRecord.objects.filter(session_id=term.session.pk, command="trap - DEBUG", blocked=True)
    assert await records.aexists()


async def test_staff_standard_is_a_host_shell_and_elevated_is_sandboxed(staff, server_var):
    await agrant(staff)
    host = await Term.open(staff, security_level="STANDARD")
    assert "No such file" not in await host.run("ls /work >/dev/null && echo host-ok")
    # Under root the host shell still does not see the server's var/.
    if os.geteuid() == 0:
        assert CANARY not in await host.run(f"cat {server_var}/secret_key")
    boxed = await Term.open(staff, security_level="ELEVATED")
    assert CANARY not in await boxed.run(f"cat {server_var}/secret_key")
    assert "No such file" in await boxed.run("ls /work")
