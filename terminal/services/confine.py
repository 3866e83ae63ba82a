"""How a shell is launched: in the level's sandbox, or (staff STANDARD) as a host shell.

One place decides it for interactive sessions, ``…/execute`` and the terminal agent alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.conf import settings

from terminal import sandbox
from terminal.cgroup import PidsCgroup
from terminal.hook import RC_PATH
from terminal.policy import Level


@dataclass
class Launch:
    """The argv to run and what the child needs; ``spawned()`` then ``release()`` after."""

    argv: list[str]
    sandboxed: bool
    rlimits: dict[int, tuple[int, int]]
    pass_fds: list[int] = field(default_factory=list)
    cgroup: PidsCgroup | None = None

    @property
    def cgroup_procs(self) -> str | None:
        return self.cgroup.procs if self.cgroup else None

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
            await asyncio.to_thread(self.cgroup.remove)
            self.cgroup = None


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
    cgroup = await asyncio.to_thread(PidsCgroup.create, uuid.uuid4().hex, settings.TERMINAL_RLIMIT_PROCESSES)
    return Launch(argv=argv, sandboxed=True, rlimits=sandbox.rlimits(level), pass_fds=fds, cgroup=cgroup)


def all_fds(launch: Launch, extra: Sequence[int] = ()) -> list[int]:
    return [*extra, *launch.pass_fds]
