"""The terminal sandbox: one profile per security level, and the bubblewrap command line.

Every shell that is not a staff member's STANDARD host shell runs under bubblewrap
(``bwrap``): its own user, PID, IPC, UTS, cgroup and mount namespaces, no new privileges,
no user namespaces of its own (bubblewrap 0.8+: in one, it could lift its cgroup caps),
an unprivileged uid inside, the system read-only, a private ``/tmp``, and the user's files
area as ``$HOME`` — the only writable place, mounted at the same path as on the host so
folders mean the same thing on both sides. Nothing of the server is mounted: not its
``var/`` (database, secret key, recordings, other users' areas), not its source tree, not
its processes (a fresh ``/proc`` for the new PID namespace). The environment is the one the
caller builds (``command_env``), nothing inherited.

docs/security.md shows ``PROFILES`` as a table; a test keeps the two in step.
Knows nothing of Django except the settings it reads.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import resource
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from autobot.errors import Unavailable
from terminal.policy import Level

log = logging.getLogger("terminal")
RC_INSIDE = "/etc/autobot/autobot.bashrc"
# Read-only system folders (those that exist); /bin, /lib… are symlinks into /usr on
# merged-/usr systems and are recreated as such.
SYSTEM_DIRS = ("/usr",)
USR_LINKS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# /etc is built from these alone: no shadow, no ssh keys, no server configuration.
ETC_ENTRIES = (
    "alternatives", "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "nsswitch.conf",
    "host.conf", "hosts", "resolv.conf", "gai.conf", "ssl", "ca-certificates", "inputrc",
    "vim", "terminfo", "mime.types", "magic", "locale.alias", "gitconfig", "python3",
)
SANDBOX_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
INSTALL_HINT = "install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap) or set AUTOBOT_TERMINAL_BWRAP"


@dataclass(frozen=True)
class Profile:
    """What a shell at one level sees, may write, may reach and is limited to."""

    level: Level
    sandboxed: bool
    network: str  # "none" | "host" (the setting can open RESTRICTED to outbound)
    runs: str
    visible: str
    writable: str
    reachable: str
    limited: str


_SANDBOX = (
    "bubblewrap: own user, PID, IPC, UTS, cgroup and mount namespaces; an unprivileged uid inside "
    "(`AUTOBOT_TERMINAL_SANDBOX_UID`, 1000), no capabilities, no new privileges, no user namespaces of its own"
)
_SANDBOX_VISIBLE = "`/usr` (read-only), a minimal `/etc`, its own `/proc` and `/dev`, `$HOME`; its own processes only"
_SANDBOX_WRITABLE = "`$HOME` (the user's files area), a private `/tmp`"
_LIMITS = (
    "processes and memory per session (its `/tmp` included), address space, CPU time, file size, "
    "open files per process"
)

PROFILES: dict[Level, Profile] = {
    Level.RESTRICTED: Profile(
        Level.RESTRICTED, True, "none", _SANDBOX, _SANDBOX_VISIBLE, _SANDBOX_WRITABLE,
        "nothing: no network (`AUTOBOT_TERMINAL_SANDBOX_NETWORK=true`: the host's network)", _LIMITS,
    ),
    Level.ELEVATED: Profile(
        Level.ELEVATED, True, "host", _SANDBOX, _SANDBOX_VISIBLE, _SANDBOX_WRITABLE, "the host's network", _LIMITS,
    ),
    # Staff only: the host shell. Under root it still runs in a mount namespace without var/.
    Level.STANDARD: Profile(
        Level.STANDARD, False, "host", "staff only: a host shell as the server's OS user",
        "the host; under root, everything but the server's `var/`, recordings and files area",
        "what the server's OS user may write", "the host's network", "nothing",
    ),
}


def profile_table() -> str:
    """docs/security.md's table of the profiles (a test keeps the page in step)."""
    rows = ["| Level | Runs as | Visible | Writable | Reachable | Limited |", "|---|---|---|---|---|---|"]
    for level in (Level.RESTRICTED, Level.ELEVATED, Level.STANDARD):
        p = PROFILES[level]
        rows.append(f"| {level} | {p.runs} | {p.visible} | {p.writable} | {p.reachable} | {p.limited} |")
    return "\n".join(rows) + "\n"


def needs_sandbox(*, level: Level, is_staff: bool) -> bool:
    """Every shell but a staff member's STANDARD host shell."""
    return not (is_staff and level == Level.STANDARD)


def network_allowed(level: Level) -> bool:
    if level == Level.RESTRICTED:
        return settings.TERMINAL_SANDBOX_NETWORK
    return PROFILES[level].network == "host"


def running_as_root() -> bool:
    return os.geteuid() == 0


# ---- availability -------------------------------------------------------------------------


# No user namespaces inside: in one of its own (with a cgroup namespace) the sandbox's user could
# mount its cgroup hierarchy and, owning the files when the server runs as root, lift its caps.
NO_NESTED_USERNS = ("--unshare-user", "--disable-userns")  # bubblewrap 0.8+
# bwrap paths that started a sandbox -> whether they disable nested user namespaces: only success
# is remembered.
_working: dict[str, bool] = {}


def _probe(bwrap: str) -> str | None:
    """None when ``bwrap`` can start a sandbox here, else why not."""
    if bwrap in _working:
        return None
    if not (os.path.isfile(bwrap) and os.access(bwrap, os.X_OK)):
        return f"bubblewrap was not found at {bwrap}"
    why = None
    for confined in (True, False):
        argv = [bwrap, "--unshare-all", *(NO_NESTED_USERNS if confined else ()), "--die-with-parent",
                *_system_args(), "--", "/bin/true"]
        try:
            done = subprocess.run(argv, capture_output=True, timeout=10, check=False, env={})  # noqa: S603
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"bubblewrap at {bwrap} could not start: {exc}"
        if done.returncode == 0:
            if not confined:
                log.warning(
                    "terminal: bubblewrap at %s cannot disable user namespaces inside its sandboxes "
                    "(--disable-userns, bubblewrap 0.8+): on cgroup v1 a sandboxed user can lift its "
                    "session's process and memory caps; upgrade bubblewrap", bwrap,
                )
            _working[bwrap] = confined
            return None
        why = f"bubblewrap at {bwrap} cannot create a sandbox here: {done.stderr.decode(errors='replace').strip()}"
    return why


def problem() -> str | None:
    """Why sandboxes cannot start (None when they can). Blocks for a few ms until it works."""
    return _probe(settings.TERMINAL_BWRAP)


async def health_check() -> None:
    """For /api/health: raises 503 sandbox_unavailable when shells cannot be sandboxed.
    Once a bubblewrap has started a sandbox the answer is remembered (`_probe`) and given on
    the loop: a thread trip per probe only made the probe wait for a busy loop twice more."""
    if settings.TERMINAL_BWRAP not in _working:
        await asyncio.to_thread(require)


def require() -> None:
    """Raise 503 sandbox_unavailable unless sandboxes can start. Call off the event loop."""
    why = problem()
    if why:
        raise Unavailable(
            f"the terminal sandbox is unavailable ({why}); {INSTALL_HINT}. "
            "Restricted and elevated shells never run without it.",
            code="sandbox_unavailable",
        )


# ---- the command line ------------------------------------------------------------------------


@functools.cache
def _system_args() -> tuple[str, ...]:
    """The host's system folders and /etc entries, read-only. Looked up once per process: a
    session's start runs on the event loop, and a dozen stat calls there, each taking the GIL
    back from threads busy forking, held it over 100 ms when many sessions opened at once."""
    args: list[str] = []
    for folder in SYSTEM_DIRS:
        args += ["--ro-bind", folder, folder]
    for link in USR_LINKS:
        if os.path.islink(link):
            args += ["--symlink", os.readlink(link), link]
        elif os.path.isdir(link):
            args += ["--ro-bind", link, link]
    for name in ETC_ENTRIES:
        path = f"/etc/{name}"
        if os.path.exists(path):
            args += ["--ro-bind", path, path]
    return (*args, "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--dir", "/var/tmp")


def identity_files(*, username: str, home: str) -> dict[str, bytes]:
    """/etc/passwd and /etc/group naming only the shell's own user (and root, owner of /usr)."""
    uid = settings.TERMINAL_SANDBOX_UID
    name = "".join(ch for ch in username if ch.isalnum() or ch in "._-")[:32] or "user"
    root = "root:x:0:0:root:/nonexistent:/usr/sbin/nologin\n"
    return {
        "/etc/passwd": f"{root}{name}:x:{uid}:{uid}::{home}:/bin/bash\n".encode(),
        "/etc/group": f"root:x:0:\n{name}:x:{uid}:\n".encode(),
    }


def data_fds(files: dict[str, bytes]) -> tuple[list[str], list[int]]:
    """bwrap ``--ro-bind-data FD PATH`` arguments, each FD a pipe holding the file's bytes.

    The caller passes the fds to the child (``pass_fds``) and closes them once it is spawned.
    """
    args: list[str] = []
    fds: list[int] = []
    for path, data in files.items():
        read_end, write_end = os.pipe()
        try:
            os.write(write_end, data)  # a few hundred bytes: fits the pipe buffer, never blocks
        finally:
            os.close(write_end)
        fds.append(read_end)
        args += ["--ro-bind-data", str(read_end), path]
    return args, fds


def sandbox_argv(
    command: Sequence[str], *, level: Level, home: str, cwd: str | None = None, rc_file: str | None = None,
    data_args: Sequence[str] = (), new_session: bool = False,
) -> list[str]:
    """bwrap's argv running ``command`` in the level's sandbox with ``home`` as $HOME.

    ``rc_file`` (the hook's rc file) is mounted read-only at RC_INSIDE. ``new_session``
    detaches from the terminal (TIOCSTI); interactive shells keep their PTY as the
    controlling terminal, where pushing input only ever reaches the user's own hooked shell.
    """
    uid = str(settings.TERMINAL_SANDBOX_UID)
    args = [
        settings.TERMINAL_BWRAP, "--unshare-all", *_nested_userns_off(), "--die-with-parent",
        "--uid", uid, "--gid", uid, "--cap-drop", "ALL", "--hostname", "autobot", *_system_args(), *data_args,
        "--bind", home, home, "--setenv", "HOME", home, "--setenv", "PATH", SANDBOX_PATH, "--chdir", cwd or home,
    ]
    if network_allowed(level):
        args.append("--share-net")
    if rc_file:
        args += ["--ro-bind", rc_file, RC_INSIDE]
    if new_session:
        args.append("--new-session")
    # Last: the sandbox's own root (where bwrap made the mount points) becomes read-only too.
    return [*args, "--remount-ro", "/", "--", *_with_process_cap(command)]


def _nested_userns_off() -> tuple[str, ...]:
    """NO_NESTED_USERNS unless the probe found this bubblewrap too old for it."""
    return NO_NESTED_USERNS if _working.get(settings.TERMINAL_BWRAP, True) else ()


def _with_process_cap(command: Sequence[str]) -> list[str]:
    """Set RLIMIT_NPROC inside the sandbox's user namespace, not before it: set outside, the
    kernel would also count every process of the server's OS user against it (the limit is
    checked at each user-namespace level); inside, it counts the sandbox's own processes."""
    cap = settings.TERMINAL_RLIMIT_PROCESSES
    if not cap:
        return list(command)
    return ["/bin/bash", "--noprofile", "--norc", "-c", 'ulimit -S -H -u "$0" && exec "$@"', str(cap), *command]


def hidden_paths() -> list[str]:
    """The server's own folders, which a host shell under root must not see."""
    paths = {Path(settings.VAR_DIR), Path(settings.TERMINAL_RECORDINGS_DIR), Path(settings.FILES_ROOT)}
    db = settings.DATABASES["default"]
    if "sqlite" in db["ENGINE"]:
        paths.add(Path(db["NAME"]).parent)
    return sorted({str(p) for p in paths if p.is_absolute()})


def host_argv(command: Sequence[str], *, home: str, cwd: str | None = None) -> list[str]:
    """A staff STANDARD host shell. Under root: the host, minus the server's var/ (and its
    recordings, files and database folders), with a PID namespace of its own so the server's
    /proc/<pid>/root cannot lead back. Otherwise the plain command."""
    if not running_as_root():
        return list(command)
    args = [settings.TERMINAL_BWRAP, "--die-with-parent", "--unshare-pid", "--dev-bind", "/", "/",
            "--proc", "/proc"]
    for path in hidden_paths():
        if os.path.isdir(path):
            args += ["--tmpfs", path]
    args += ["--bind", home, home, "--chdir", cwd or home]
    return [*args, "--", *command]


def rlimits(level: Level) -> dict[int, tuple[int, int]]:
    """Per-process caps for sandboxed shells (0 in a setting = no cap), set before bwrap. The
    process cap is set inside (``_with_process_cap``) and, under root — where RLIMIT_NPROC does
    not bind uid 0 — by the session's PID cgroup."""
    if not PROFILES[level].sandboxed:
        return {}
    wanted = {
        resource.RLIMIT_CPU: settings.TERMINAL_RLIMIT_CPU_SECONDS,
        resource.RLIMIT_AS: settings.TERMINAL_RLIMIT_MEMORY_BYTES,
        resource.RLIMIT_FSIZE: settings.TERMINAL_RLIMIT_FILE_BYTES,
        resource.RLIMIT_NOFILE: settings.TERMINAL_RLIMIT_NOFILE,
        resource.RLIMIT_CORE: 0,
    }
    limits = {}
    for res, value in wanted.items():
        if value or res == resource.RLIMIT_CORE:
            _soft, hard = resource.getrlimit(res)
            cap = value if hard == resource.RLIM_INFINITY else min(value, hard)
            limits[res] = (cap, cap)
    return limits
