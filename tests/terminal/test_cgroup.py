"""Each sandboxed session's cgroups (terminal/cgroup.py), with real shells in real sandboxes:
nothing of them is left once sessions end, and the memory cap stops a session that fills its
private /tmp before it fills the host's RAM."""

import asyncio
import re
import threading
from pathlib import Path

import pytest

from terminal import child as child_module
from terminal import services
from terminal.models import TerminalSession
from terminal.services import confine
from tests.terminal.sandbox_helpers import _ANSI, Term

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

FILL_TMP = "head -c 200M /dev/zero > /tmp/big; echo rc=$?; ls -l /tmp/big"


@pytest.fixture(autouse=True)
def _room_for_sessions(settings):
    settings.TERMINAL_MAX_SESSIONS_PER_USER = 50


def _need_memory_cgroup(launch) -> None:
    if launch.cgroup is None or "memory" not in launch.cgroup.limits:
        pytest.skip("no usable memory cgroup controller here (cgroup v1 memory, or v2 memory delegated to us)")


async def test_closed_sessions_leave_no_cgroup_folders(terminal_user):
    paths = []
    for _round in range(4):
        terms = await asyncio.gather(*(Term.open(terminal_user) for _ in range(5)))
        for term in terms:
            term.type("sleep 300 &\r")  # still running when the session closes
            assert term.live.launch.cgroup is not None, "the sandbox got no cgroup"
            paths += term.live.launch.cgroup.paths
        await asyncio.gather(*(services.session_close(user=terminal_user, session_id=t.session.pk) for t in terms))
    assert [p for p in paths if p.exists()] == []


async def test_commands_run_through_execute_leave_no_cgroup_folders(terminal_user, monkeypatch):
    made = []
    create = confine.SessionCgroup.create

    def create_and_note(*args, **kwargs):  # the real cgroups, noted down
        cgroup = create(*args, **kwargs)
        made.append(cgroup)
        return cgroup

    monkeypatch.setattr(confine.SessionCgroup, "create", create_and_note)
    results = await asyncio.gather(*(
        services.command_run(user=terminal_user, command="sleep 30 & echo started") for _ in range(8)
    ))
    assert [r["output"].strip() for r in results] == ["started"] * 8
    assert len(made) == 8 and None not in made, "the sandboxes got no cgroup"
    assert [p for cgroup in made for p in cgroup.paths if p.exists()] == []


async def test_a_command_cancelled_while_it_starts_leaves_no_process_or_cgroup(terminal_user, monkeypatch):
    """The start runs in a thread (a fork with a preexec_fn would hold the event loop): a caller
    that gives up meanwhile still gets the child ended and its cgroup removed."""
    made, entered, go_on = [], threading.Event(), threading.Event()
    create, popen = confine.SessionCgroup.create, child_module.Popen

    def create_and_note(*args, **kwargs):
        made.append(create(*args, **kwargs))
        return made[-1]

    def slow_popen(*args, **kwargs):  # the real start, once the caller has given up
        entered.set()
        go_on.wait(30)
        return popen(*args, **kwargs)

    monkeypatch.setattr(confine.SessionCgroup, "create", create_and_note)
    monkeypatch.setattr(child_module, "Popen", slow_popen)
    running = asyncio.create_task(services.command_run(user=terminal_user, command="sleep 3037"))
    await asyncio.to_thread(entered.wait, 30)
    running.cancel()
    go_on.set()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert len(made) == 1 and made[0] is not None
    assert [p for p in made[0].paths if p.exists()] == []
    assert not await asyncio.to_thread(_running, b"sleep\x003037\x00")


def _running(cmdline: bytes) -> list[Path]:
    found = []
    for path in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if path.read_bytes() == cmdline:
                found.append(path)
        except OSError:
            pass
    return found


async def test_filling_tmp_past_the_memory_cap_ends_the_session_not_the_host(terminal_user, settings):
    settings.TERMINAL_MEMORY_MB = 64
    term = await Term.open(terminal_user)
    _need_memory_cgroup(term.live.launch)
    term.type(f"{FILL_TMP}\r")
    seen = ""
    while (chunk := await term.sub.read()) is not None and not re.search(r"rc=\d+[\s\S]*@autobot:", seen):
        seen += chunk
    if chunk is None:  # the kernel killed the sandbox's programs: the shell has ended, and says why
        await term.live.ended.wait()
        row = await TerminalSession.objects.aget(pk=term.session.pk)
        assert (row.status, row.end_reason) == ("ended", "memory_limit")
    else:  # or the write was stopped and the shell lives on, with far less than 200 MB written
        assert "No space left" in seen or "Killed" in seen, seen
        size = re.search(r"\s(\d+) \w{3} +\d+ [\d:]+ /tmp/big", seen)
        assert size is None or int(size.group(1)) <= 64 * 1024 * 1024
    # The host carries on: a new session works.
    other = await Term.open(terminal_user)
    assert (await other.run("echo still-here")).strip() == "still-here"


async def test_a_command_run_through_execute_is_held_to_the_memory_cap(terminal_user, settings):
    settings.TERMINAL_MEMORY_MB = 64
    result = await services.command_run(user=terminal_user, command="head -c 200M /dev/zero > /tmp/big && echo wrote")
    assert result["exit_code"] != 0 and "wrote" not in result["output"]


async def test_without_the_setting_the_same_write_succeeds(terminal_user, settings):
    settings.TERMINAL_MEMORY_MB = 0
    result = await services.command_run(user=terminal_user, command="head -c 100M /dev/zero > /tmp/big && echo wrote")
    assert (result["exit_code"], result["output"].strip()) == (0, "wrote")


# A script the user saved in their files area: run as `sh lift.sh`, the hook sees only that line.
# In a user and cgroup namespace of its own, the sandbox's user could mount its cgroup hierarchy
# (rooted at the session's cgroup) and, as the files' owner when the server runs as root, raise
# its own caps. Each attempt prints what it got; the test then reads the caps from the host.
LIFT_CAPS = """\
for controller in pids memory; do
  unshare -UrmC sh -c "mkdir -p /tmp/cg-$controller && mount -t cgroup -o $controller none /tmp/cg-$controller \\
    || mount -t cgroup2 none /tmp/cg-$controller && echo mounted-$controller
    for file in pids.max memory.memsw.limit_in_bytes memory.limit_in_bytes memory.max memory.swap.max; do
      [ -e /tmp/cg-$controller/\\$file ] && { echo max || echo -1; } 2>/dev/null > /tmp/cg-$controller/\\$file \\
        && echo raised-\\$file
    done" 2>&1
done
echo lift-done
"""


def _caps(cgroup) -> dict[str, str]:
    files = ("pids.max", "memory.limit_in_bytes", "memory.max")
    return {f: (p / f).read_text().strip() for p in cgroup.paths for f in files if (p / f).exists()}


async def test_a_sandboxed_shell_cannot_lift_its_own_caps(terminal_user, settings):
    settings.TERMINAL_MEMORY_MB = 64
    term = await Term.open(terminal_user)
    if term.live.launch.cgroup is None:
        pytest.skip("no usable cgroup controller here")
    before = _caps(term.live.launch.cgroup)
    home = (await term.run("echo $HOME")).strip()
    with open(f"{home}/lift.sh", "w") as fh:  # noqa: ASYNC230 - a few bytes, in a test
        fh.write(LIFT_CAPS)
    said = _ANSI.sub("", await term.run("sh lift.sh"))
    assert "lift-done" in said
    assert "raised-" not in said, said
    assert _caps(term.live.launch.cgroup) == before
