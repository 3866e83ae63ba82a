"""A PID cgroup per sandboxed session: the process cap that holds even under root.

RLIMIT_NPROC is not enforced for uid 0, and a server running as root maps its shells to
uid 0 outside their user namespace; a cgroup's ``pids.max`` counts every process whoever
owns it. Best effort: when the server may not create cgroups (an unprivileged service
without delegation) there is none, and RLIMIT_NPROC — which does count for that user —
is the cap. Knows nothing of Django.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from pathlib import Path

log = logging.getLogger("terminal")

V1_ROOT = Path("/sys/fs/cgroup/pids")
V2_ROOT = Path("/sys/fs/cgroup")
REMOVE_SECONDS = 2.0  # how long remove() waits for the kernel to finish with the processes
_RETRY_SECONDS = 0.02


def _parent() -> Path | None:
    """Where this process may create child PID cgroups, if anywhere."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _id, controllers, path = line.split(":", 2)
        if "pids" in controllers.split(",") and (V1_ROOT / "cgroup.procs").exists():
            return V1_ROOT / path.lstrip("/")
    for line in lines:
        _id, controllers, path = line.split(":", 2)
        if controllers == "":  # cgroup v2: needs pids delegated to our children
            candidate = V2_ROOT / path.lstrip("/")
            with contextlib.suppress(OSError):
                if "pids" in (candidate / "cgroup.subtree_control").read_text().split():
                    return candidate
    return None


class PidsCgroup:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.procs = str(path / "cgroup.procs")

    @classmethod
    def create(cls, name: str, max_pids: int) -> PidsCgroup | None:
        """A new cgroup capped at ``max_pids`` processes, or None when we may not make one.
        Blocking (sysfs writes): call off the event loop."""
        parent = _parent()
        if parent is None or max_pids <= 0:
            return None
        path = parent / f"autobot-{name}"
        try:
            path.mkdir(exist_ok=True)
            (path / "pids.max").write_text(str(max_pids))
        except OSError:
            with contextlib.suppress(OSError):
                path.rmdir()
            return None
        return cls(path)

    def join(self) -> None:
        """Move the calling process in; runs in the forked child before exec (plain syscalls)."""
        fd = os.open(self.procs, os.O_WRONLY)
        try:
            os.write(fd, b"0")
        finally:
            os.close(fd)

    def remove(self, *, wait: float = REMOVE_SECONDS) -> None:
        """Kill whatever is left inside, then remove the folder. The kernel finishes tearing
        down a sandbox's processes after the shell is reaped, and the folder is busy until then:
        retried for up to ``wait`` seconds. Blocking (sleeps): off the event loop."""
        deadline = time.monotonic() + wait
        while True:
            _kill_all(self.path)
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError as exc:
                if time.monotonic() >= deadline:
                    log.warning("terminal: could not remove the cgroup %s: %s", self.path, exc)
                    return
                time.sleep(_RETRY_SECONDS)


def _pids(path: Path) -> set[int]:
    try:
        return {int(pid) for pid in (path / "cgroup.procs").read_text().split()}
    except (OSError, ValueError):
        return set()


def _kill_all(path: Path) -> None:
    """SIGKILL every process in the cgroup. A pid is pinned with a pidfd, then checked to be
    still inside, so a pid reused by an unrelated process in between is never signalled."""
    kill = path / "cgroup.kill"  # cgroup v2, Linux 5.14+: the kernel does it all
    if kill.exists():
        with contextlib.suppress(OSError):
            kill.write_text("1")
            return
    pidfds = {}
    for pid in _pids(path):
        with contextlib.suppress(OSError):
            pidfds[pid] = os.pidfd_open(pid)
    try:
        inside = _pids(path)
        for pid, fd in pidfds.items():
            if pid in inside:
                with contextlib.suppress(OSError):
                    signal.pidfd_send_signal(fd, signal.SIGKILL)
    finally:
        for fd in pidfds.values():
            os.close(fd)
