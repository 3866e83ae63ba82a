"""A session's cgroups: the process and memory caps of a sandbox that hold even under root.

RLIMIT_NPROC is not enforced for uid 0, and a server running as root maps its shells to
uid 0 outside their user namespace; a cgroup's ``pids.max`` counts every process whoever
owns it. The sandbox's private ``/tmp`` is a tmpfs, charged to the memory cgroup of whoever
writes it and beyond any per-process limit: ``memory.max`` (v2) or ``memory.limit_in_bytes``
(v1), with no swap to spill into, keeps one session from filling the host's RAM.

Each cgroup is made beside the server's own, in every hierarchy that holds a controller we
use: on cgroup v1 one folder per controller (``pids/…/autobot-<id>``,
``memory/…/autobot-<id>``), on v2 one folder for both. Best effort: a controller the server
may not use (an unprivileged service without delegation, a container without it) is left
out and logged once, and the session runs without that cap (RLIMIT_NPROC, which does count
for a non-root user, is then the process cap). A worker removes its sessions' cgroups when they
end; one killed first leaves them behind, and the next worker to start sweeps them (``sweep``).
Knows nothing of Django.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger("terminal")

MOUNTINFO = Path("/proc/self/mountinfo")
SELF_CGROUP = Path("/proc/self/cgroup")
REMOVE_SECONDS = 2.0  # how long remove() waits for the kernel to finish with the processes
# A session's cgroups younger than this are never swept: another worker on this host may be
# creating them right now (its shell joins them a few milliseconds after the folder is made).
SWEEP_MIN_AGE_SECONDS = 60.0
_RETRY_SECONDS = 0.02

_reported: set[str] = set()  # controllers already logged as unavailable


def _mounts() -> list[tuple[str, str, set[str]]]:
    """Every cgroup mount as (root inside the hierarchy, mount point, v1 controllers);
    a v2 mount has no controllers listed."""
    mounts = []
    with contextlib.suppress(OSError):
        for line in MOUNTINFO.read_text().splitlines():
            fields = line.split()
            sep = fields.index("-")
            fstype, options = fields[sep + 1], fields[sep + 3]
            if fstype == "cgroup":
                mounts.append((fields[3], _unescape(fields[4]), set(options.split(","))))
            elif fstype == "cgroup2":
                mounts.append((fields[3], _unescape(fields[4]), set()))
    return mounts


def _unescape(path: str) -> str:
    """mountinfo writes spaces, tabs and newlines in paths as octal escapes."""
    return path.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def _own_paths() -> tuple[dict[str, str], str | None]:
    """Our own cgroup: {v1 controller: path}, and the v2 path (None without v2)."""
    v1: dict[str, str] = {}
    v2 = None
    with contextlib.suppress(OSError):
        for line in SELF_CGROUP.read_text().splitlines():
            _id, controllers, path = line.split(":", 2)
            if controllers:
                for name in controllers.split(","):
                    v1[name] = path
            else:
                v2 = path
    return v1, v2


def _inside(mount_point: str, mount_root: str, path: str) -> Path:
    """Where ``path`` (relative to the hierarchy's root) is under a mount of ``mount_root``."""
    root = mount_root.rstrip("/")
    if root and (path == root or path.startswith(root + "/")):
        path = path[len(root):]
    return Path(mount_point) / path.lstrip("/")


def parent(controller: str) -> tuple[Path, int] | None:
    """Where this process may create child cgroups holding ``controller``, and the cgroup
    version there (1 or 2); None when nowhere. A v1 hierarchy that has it, else v2 when our
    own cgroup delegates it to its children."""
    v1_paths, v2_path = _own_paths()
    mounts = _mounts()
    for root, point, controllers in mounts:
        if controller in controllers and controller in v1_paths:
            candidate = _inside(point, root, v1_paths[controller])
            if (candidate / "cgroup.procs").exists():
                return candidate, 1
    if v2_path is None:
        return None
    for root, point, controllers in mounts:
        if controllers:
            continue
        candidate = _inside(point, root, v2_path)
        with contextlib.suppress(OSError):
            if controller in (candidate / "cgroup.subtree_control").read_text().split():
                return candidate, 2
    return None


def _memory_limits(version: int, limit: int) -> list[tuple[str, str, bool]]:
    """(file, value, required): the limit, and no swap to spill the session into."""
    if version == 2:
        return [("memory.max", str(limit), True), ("memory.swap.max", "0", False)]
    # memsw (memory + swap) must not be below the memory limit: written second.
    return [("memory.limit_in_bytes", str(limit), True), ("memory.memsw.limit_in_bytes", str(limit), False)]


def _limits(controller: str, version: int, value: int) -> list[tuple[str, str, bool]]:
    if controller == "pids":
        return [("pids.max", str(value), True)]
    return _memory_limits(version, value)


def _unavailable(controller: str, why: str) -> None:
    if controller in _reported:
        return
    _reported.add(controller)
    cap = "process cap (RLIMIT_NPROC still applies)" if controller == "pids" else "memory cap"
    log.warning("terminal sandboxes run without a %s cgroup, so without its %s: %s", controller, cap, why)


class SessionCgroup:
    """One sandbox's cgroups: a folder per v1 hierarchy, or one v2 folder."""

    def __init__(self, paths: Iterable[Path], limits: dict[str, int] | None = None) -> None:
        self.paths = list(paths)
        self.limits = dict(limits or {})  # controller -> what it was capped at

    @property
    def procs(self) -> tuple[str, ...]:
        """The ``cgroup.procs`` files the child writes itself into before exec."""
        return tuple(str(path / "cgroup.procs") for path in self.paths)

    @classmethod
    def create(cls, name: str, *, max_pids: int, memory_bytes: int = 0) -> SessionCgroup | None:
        """New cgroups capped at ``max_pids`` processes and ``memory_bytes`` of memory (0: no
        cap), or None when none could be made. Blocking (sysfs writes): call off the event loop."""
        made: dict[Path, dict[str, int]] = {}
        for controller, value in (("pids", max_pids), ("memory", memory_bytes)):
            if value <= 0:
                continue
            found = parent(controller)
            if found is None:
                _unavailable(controller, f"no {controller} controller this process may use (see /proc/self/cgroup)")
                continue
            where, version = found
            path = where / f"autobot-{name}"
            fresh = path not in made
            try:
                if fresh:
                    path.mkdir(exist_ok=True)
                for file, text, required in _limits(controller, version, value):
                    try:
                        (path / file).write_text(text)
                    except OSError:
                        if required or (path / file).exists():
                            raise
            except OSError as exc:
                if fresh:
                    with contextlib.suppress(OSError):
                        path.rmdir()
                _unavailable(controller, f"cannot set up {path}: {exc}")
                continue
            made.setdefault(path, {})[controller] = value
        if not made:
            return None
        return cls(made, {c: v for caps in made.values() for c, v in caps.items()})

    def oom_kills(self) -> int:
        """How many processes the kernel killed for going over the memory cap (blocking, sysfs)."""
        for path in self.paths:
            for name in ("memory.events", "memory.oom_control"):  # v2, v1
                with contextlib.suppress(OSError, ValueError):
                    for line in (path / name).read_text().splitlines():
                        key, _, value = line.partition(" ")
                        if key == "oom_kill":
                            return int(value)
        return 0

    def remove(self, *, wait: float = REMOVE_SECONDS) -> None:
        """Kill whatever is left inside, then remove the folders. The kernel finishes tearing
        down a sandbox's processes after the shell is reaped, and a folder is busy until then:
        retried for up to ``wait`` seconds. Blocking (sleeps): off the event loop."""
        deadline = time.monotonic() + wait
        for path in self.paths:
            while True:
                _kill_all(path)
                try:
                    path.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError as exc:
                    if time.monotonic() >= deadline:
                        log.warning("terminal: could not remove the cgroup %s: %s", path, exc)
                        break
                    time.sleep(_RETRY_SECONDS)


def sweep(roots: Iterable[Path] | None = None, *, min_age: float = SWEEP_MIN_AGE_SECONDS) -> int:
    """Remove the cgroups that sessions of a killed worker (SIGKILL, out of memory) left behind:
    the ``autobot-*`` folders under ``roots`` (default: where this process makes them) that hold
    no process and are older than ``min_age`` seconds. Returns how many were removed.

    Only ``rmdir``, which the kernel refuses for a cgroup with processes or child cgroups: a live
    session of another worker sharing these folders is never touched, and nothing is killed.
    Blocking (sysfs): off the event loop."""
    if roots is None:
        roots = {found[0] for controller in ("pids", "memory") if (found := parent(controller)) is not None}
    cutoff = time.time() - min_age
    swept = 0
    for root in roots:
        try:
            folders = list(root.glob("autobot-*"))
        except OSError:
            continue
        for path in folders:
            if not _abandoned(path, cutoff):
                continue
            try:
                path.rmdir()
            except OSError:  # a process or a child cgroup in it after all, or gone already
                continue
            swept += 1
    return swept


def _abandoned(path: Path, cutoff: float) -> bool:
    """Made before ``cutoff`` (its folder's time) and empty of processes, as far as we can read."""
    try:
        return path.is_dir() and path.stat().st_mtime < cutoff and not (path / "cgroup.procs").read_text().split()
    except OSError:
        return False


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
