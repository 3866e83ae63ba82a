"""Processes by pid, for the terminal's children (Linux: pidfds, /proc). Knows nothing of Django.

- ``watch_exit``: a pidfd (Linux 5.3+) becomes readable when the child exits, so the loop
  learns of it with no polling, no thread parked for the child's life and no SIGCHLD handler
  shared with the rest of the process.
- ``kill_tree``: SIGKILL a process's descendants but those to spare (a stopped line's background
  jobs, not the shell that ran them).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable

# A tree that keeps forking while it is killed is walked again, at most this many times (the
# session's cgroup caps how many processes it can have).
KILL_ROUNDS = 8


def watch_exit(pid: int, on_exit: Callable[[], None]) -> None:
    """Call ``on_exit`` on the running loop once the child ``pid`` has exited. The child must be
    ours and not reaped yet, so its pid cannot have been reused."""
    loop = asyncio.get_running_loop()
    pidfd = os.pidfd_open(pid)

    def exited() -> None:
        loop.remove_reader(pidfd)
        os.close(pidfd)
        on_exit()

    loop.add_reader(pidfd, exited)


def children(pid: int) -> list[int]:
    """The live children of ``pid`` (of all its threads); [] when it is gone."""
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{task}/children", encoding="ascii") as fh:
                found += [int(child) for child in fh.read().split()]
    return found


def descendants(root: int) -> set[int]:
    """Every process under ``root`` (not ``root`` itself)."""
    found: set[int] = set()
    todo = children(root)
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo += children(pid)
    return found


def _alive_in_group(pid: int) -> int | None:
    """The process group of a live ``pid``; None when it is gone or dead (a zombie: killed, not
    reaped yet by its parent)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as fh:
            fields = fh.read().rpartition(")")[2].split()  # after the name, which may hold anything
    except OSError:
        return None
    return None if fields[0] in ("Z", "X") else int(fields[2])


def kill_tree(root: int, *, spare: set[int], spare_group: int | None = None) -> int:
    """SIGKILL every descendant of ``root`` except the pids in ``spare`` and the members of the
    process group ``spare_group``; returns how many were signalled. A pid is pinned with a pidfd,
    then checked to be still under ``root``, so a pid reused meanwhile by an unrelated process is
    never signalled. Walked again while new ones appear (a job forking as it dies)."""
    killed = 0
    for _ in range(KILL_ROUNDS):
        groups = {pid: _alive_in_group(pid) for pid in descendants(root) - spare}
        targets = {pid for pid, group in groups.items() if group is not None and group != spare_group}
        if not targets:
            break
        pidfds = {}
        for pid in targets:
            with contextlib.suppress(OSError):
                pidfds[pid] = os.pidfd_open(pid)
        try:
            still = descendants(root)
            for pid, fd in pidfds.items():
                if pid in still:
                    with contextlib.suppress(OSError):
                        signal.pidfd_send_signal(fd, signal.SIGKILL)
                        killed += 1
        finally:
            for fd in pidfds.values():
                os.close(fd)
    return killed
