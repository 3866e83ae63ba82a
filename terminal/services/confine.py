"""How a shell is launched: in the level's sandbox, or (staff STANDARD) as a host shell.

One place decides it for interactive sessions, ``…/execute`` and the terminal agent alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.conf import settings

from terminal import sandbox
from terminal.cgroup import SessionCgroup
from terminal.cgroup import sweep as sweep_leftover_cgroups
from terminal.hook import RC_PATH
from terminal.policy import Level

log = logging.getLogger("terminal")

@dataclass
class Launch:
    """The argv to run and what the child needs; ``spawned()`` then ``release()`` after."""

    argv: list[str]
    sandboxed: bool
    rlimits: dict[int, tuple[int, int]]
    pass_fds: list[int] = field(default_factory=list)
    cgroup: SessionCgroup | None = None
    memory_exceeded: bool = False  # set by release(): the kernel killed a process over the memory cap

    @property
    def cgroup_procs(self) -> tuple[str, ...]:
        return self.cgroup.procs if self.cgroup else ()

    def spawned(self) -> None:
        """The child has its copies of the data pipes: close ours."""
        for fd in self.pass_fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self.pass_fds = []

    async def release(self) -> None:
        """After the shell has exited."""
        self.spawned()
        if self.cgroup is not None:
            await asyncio.to_thread(self._release_cgroup, self.cgroup)
            self.cgroup = None

    def _release_cgroup(self, cgroup: SessionCgroup) -> None:
        self.memory_exceeded = cgroup.oom_kills() > 0
        cgroup.remove()


async def cgroups_sweep() -> int:
    """At a worker's start: remove the sandbox cgroups that a killed worker's sessions left
    behind (terminal/cgroup.py, ``sweep``). Returns how many."""
    swept = await asyncio.to_thread(sweep_leftover_cgroups)
    if swept:
        log.info("terminal: removed %d cgroup(s) left behind by sessions of a stopped worker", swept)
    return swept


async def launch_check(*, user, level: Level) -> None:
    """Refuse early (503 sandbox_unavailable) when this shell would need bubblewrap and it
    cannot start: before any session row exists."""
    if sandbox.needs_sandbox(level=level, is_staff=user.is_staff) or sandbox.running_as_root():
        await asyncio.to_thread(sandbox.require)


async def operator_warnings() -> list[str]:
    """What staff should fix in how the server runs (the dashboard shows them)."""
    return await asyncio.to_thread(operator_warnings_sync)


def operator_warnings_sync() -> list[str]:
    """operator_warnings off the event loop (looking for bwrap reads the file system)."""
    warnings = []
    if sandbox.running_as_root():
        warnings.append(
            "The server runs as root: a staff STANDARD terminal is a root shell on this machine "
            "(it still cannot see the server's var/). Run AutoBot as a dedicated unprivileged OS user "
            "(docs/deployment.md, “The OS user”)."
        )
    why = sandbox.problem()
    if why:
        warnings.append(f"Terminal sandboxes cannot start ({why}): {sandbox.INSTALL_HINT}.")
    return warnings


def _shell(*, interactive: bool, command: str | None, rc_file: str) -> list[str]:
    if interactive:
        return ["bash", "--noprofile", "--rcfile", rc_file, "-i"]
    return ["bash", "--noprofile", "--norc", "-c", command or ""]


async def launch_for(
    *, user, level: Level, home: str, cwd: str | None = None, interactive: bool, command: str | None = None,
) -> Launch:
    """The launch of a shell for ``user`` at ``level``. 503 ``sandbox_unavailable`` when it
    needs the sandbox and bubblewrap cannot start one: never a silent host shell."""
    await launch_check(user=user, level=level)
    if not sandbox.needs_sandbox(level=level, is_staff=user.is_staff):
        shell = _shell(interactive=interactive, command=command, rc_file=str(RC_PATH))
        return Launch(argv=sandbox.host_argv(shell, home=home, cwd=cwd), sandboxed=False, rlimits={})
    data_args, fds = sandbox.data_fds(sandbox.identity_files(username=user.get_username(), home=home))
    shell = _shell(interactive=interactive, command=command, rc_file=sandbox.RC_INSIDE)
    argv = sandbox.sandbox_argv(
        shell, level=level, home=home, cwd=cwd, rc_file=str(RC_PATH) if interactive else None,
        data_args=data_args, new_session=not interactive,
    )
    cgroup = await asyncio.to_thread(
        SessionCgroup.create, uuid.uuid4().hex,
        max_pids=settings.TERMINAL_RLIMIT_PROCESSES, memory_bytes=settings.TERMINAL_MEMORY_MB * 1024 * 1024,
    )
    return Launch(argv=argv, sandboxed=True, rlimits=sandbox.rlimits(level), pass_fds=fds, cgroup=cgroup)


def all_fds(launch: Launch, extra: Sequence[int] = ()) -> list[int]:
    return [*extra, *launch.pass_fds]
