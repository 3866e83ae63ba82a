"""Cgroups left behind by a killed worker's sessions are swept at the next start
(terminal/cgroup.py ``sweep``), with real cgroups under a folder of this test's own beside the
server's: only empty ``autobot-*`` cgroups older than the margin go; one with a process in it
(another live worker's session) or made a moment ago stays."""

import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from terminal import cgroup


@pytest.fixture
def root():
    """A cgroup folder of this test's own where the server would make its sessions' cgroups
    (not named autobot-*: a sweep elsewhere never looks at it); removed afterwards."""
    found = cgroup.parent("pids")
    if found is None:
        pytest.skip("no usable pids cgroup controller here")
    path = found[0] / f"sweeptest-{uuid.uuid4().hex[:12]}"
    try:
        path.mkdir()
    except OSError as exc:
        pytest.skip(f"cannot make cgroups here: {exc}")
    yield path
    for child in path.iterdir():
        if child.is_dir():
            child.rmdir()
    path.rmdir()


def made(root, name, *, age: float = 0.0):
    path = root / name
    path.mkdir()
    if age:
        then = time.time() - age
        os.utime(path, (then, then))
    return path


@pytest.fixture
def program():
    """A harmless process of the test's own, killed afterwards."""
    proc = subprocess.Popen(["sleep", "60"])
    yield proc
    proc.kill()
    proc.wait()


def test_only_empty_autobot_cgroups_past_the_margin_are_swept(root, program):
    margin = cgroup.SWEEP_MIN_AGE_SECONDS
    abandoned = [made(root, f"autobot-{n}", age=margin * 2) for n in range(3)]
    busy = made(root, "autobot-busy", age=margin * 2)
    (busy / "cgroup.procs").write_text(str(program.pid))  # another worker's live session
    fresh = made(root, "autobot-fresh")  # being set up by another worker right now
    other = made(root, "someone-else", age=margin * 2)

    assert cgroup.sweep([root]) == 3

    assert [p for p in abandoned if p.exists()] == []
    assert busy.exists() and fresh.exists() and other.exists()
    assert (busy / "cgroup.procs").read_text().split() == [str(program.pid)]
    assert program.poll() is None  # nothing was killed


def test_a_cgroup_the_kernel_will_not_remove_is_left_without_error(root):
    parent = made(root, "autobot-nested")
    made(parent, "child")  # a cgroup with a child cgroup: rmdir is refused (EBUSY)
    then = time.time() - cgroup.SWEEP_MIN_AGE_SECONDS * 2
    os.utime(parent, (then, then))

    assert cgroup.sweep([root]) == 0
    assert parent.exists()
    (parent / "child").rmdir()


def test_nothing_to_sweep_where_there_is_no_folder():
    assert cgroup.sweep([Path("/nonexistent/autobot-test-none")]) == 0
