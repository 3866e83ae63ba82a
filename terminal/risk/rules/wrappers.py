"""Wrappers: commands that run the command that follows them (sudo, nice, xargs, env…)."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from terminal.risk.model import Cmd, Hit, Risk, Trait
from terminal.risk.paths import canonical, option_values, split_options
from terminal.risk.registry import register
from terminal.risk.rules.expansions import EXEC_STDIN
from terminal.risk.rules.options import _COMMAND_OPTIONS, CommandOption, _command_options
from terminal.risk.rules.shells import _SHELLS
from terminal.risk.rules.variables import _assignments

if TYPE_CHECKING:
    from terminal.risk.registry import RuleSpec
    from terminal.risk.walker import _Walker


def _after_options(values: str = "", long_values: Iterable[str] = (), numeric: bool = False, skip: int = 0):
    def find(argv: list[str]) -> int | None:
        _, _, i = split_options(argv[1:], values, long_values, numeric)
        i += 1 + skip
        return i if i < len(argv) else None

    return find


def _env_start(argv: list[str]) -> int | None:
    _, _, i = split_options(argv[1:], "uCS", ("unset", "chdir", "split-string"))
    i += 1
    while i < len(argv) and re.match(r"^[A-Za-z_]\w*=", argv[i]):
        i += 1
    return i if i < len(argv) else None


def _runuser_start(argv: list[str]) -> int | None:
    """`runuser -u USER CMD...` runs argv; `runuser USER`/`-c STRING` are like su (see _wrapper_alone)."""
    opts, _, i = split_options(argv[1:], "cgGuw", ("command", "session-command", "user", "group", "supp-group"))
    if opts & {"c", "command", "session-command"} or not opts & {"u", "user"}:
        return None
    return i + 1 if i + 1 < len(argv) else None


def _schedtool_start(argv: list[str]) -> int | None:
    """`schedtool [options] -e CMD...` (without -e it changes existing processes)."""
    return argv.index("-e") + 1 if "-e" in argv[:-1] else None


def _setarch_start(argv: list[str]) -> int | None:
    """`setarch ARCH [options] CMD...`; linux32/linux64 have no ARCH."""
    first = 1 if argv[0].endswith(("linux32", "linux64")) else 2
    if first == 2 and (len(argv) < 2 or argv[1].startswith("-")):
        return None
    _, _, i = split_options(argv[first:])
    return first + i if first + i < len(argv) else None


def _ip_start(argv: list[str]) -> int | None:
    """`ip netns exec NAME CMD...`, `ip vrf exec NAME CMD...`."""
    words = [a for a in argv[1:] if not a.startswith("-")]
    if len(words) > 3 and words[0] in {"netns", "vrf"} and words[1] == "exec":
        return argv.index(words[3], argv.index(words[2]) + 1)
    return None


def _command_start(argv: list[str]) -> int | None:
    opts, _, i = split_options(argv[1:])
    return None if opts & {"v", "V"} or i + 1 >= len(argv) else i + 1


_SUDO_VALUES = (
    "CDghpRrtTUu",
    ("user", "group", "host", "prompt", "role", "type", "close-from", "chdir", "chroot", "other-user",
     "command-timeout"),
)


def _sudo_start(argv: list[str]) -> int | None:
    """sudo's command follows its options and any NAME=value settings (see wrapper_hits)."""
    i = _after_options(*_SUDO_VALUES)(argv)
    while i is not None and i < len(argv) and re.match(r"^[A-Za-z_]\w*=", argv[i]):
        i += 1
    return i if i is not None and i < len(argv) else None


def _env_split_string(text: str) -> str:
    """`env -S` text as a shell would read it: `\\_` is a space there."""
    return re.sub(r"\\(.)", lambda m: " " if m.group(1) == "_" else m.group(0), text)


# Wrappers with options that set the environment of the command they run (NAME=value).
_WRAPPER_SETENV: dict[str, CommandOption] = {
    "systemd-run": CommandOption("E", ("setenv",), takes="HMupsd"),
    "run0": CommandOption("", ("setenv",), takes="ugD"),
    "firejail": CommandOption("", ("env",)),
}


WRAPPERS: dict[str, Callable[[list[str]], int | None]] = {
    "sudo": _sudo_start,
    "doas": _after_options("uC"),
    "pkexec": _after_options("", ("user",)),
    "env": _env_start,
    "nice": _after_options("n", ("adjustment",), numeric=True),
    "nohup": _after_options(),
    "setsid": _after_options(),
    "time": _after_options("fo", ("format", "output")),
    "command": _command_start,
    "builtin": _after_options(),
    "exec": _after_options("a"),
    "stdbuf": _after_options("ioe", ("input", "output", "error")),
    "timeout": _after_options("sk", ("signal", "kill-after"), skip=1),
    "xargs": _after_options(
        "adEILnPs",
        (
            "arg-file",
            "delimiter",
            "eof",
            "replace",
            "max-lines",
            "max-args",
            "max-procs",
            "max-chars",
            "process-slot-var",
        ),
    ),
    "ionice": _after_options("cnpPu", ("class", "classdata", "pid", "pgid", "uid")),
    "chrt": _after_options("T", skip=1),
    "taskset": _after_options("", skip=1),
    "strace": _after_options("abeEIoOpPsSuUX"),
    "ltrace": _after_options("aeEnopsSuwx"),
    "unbuffer": _after_options(),
    "chronic": _after_options(),
    "catchsegv": _after_options(),
    "torsocks": _after_options(),
    "proxychains": _after_options("f"),
    "proxychains4": _after_options("f"),
    "runuser": _runuser_start,
    "busybox": _after_options(),
    "chroot": _after_options("", ("userspec", "groups"), skip=1),
    "flock": _after_options("wEn", ("timeout", "conflict-exit-code"), skip=1),
    "unshare": _after_options(
        "RwSGl", ("root", "wd", "setuid", "setgid", "propagation", "setgroups", "monotonic", "boottime")
    ),
    "nsenter": _after_options("tSGW", ("target", "setuid", "setgid", "wdns")),
    "setpriv": _after_options(
        "",
        (
            "ruid",
            "euid",
            "rgid",
            "egid",
            "reuid",
            "regid",
            "groups",
            "inh-caps",
            "ambient-caps",
            "bounding-set",
            "securebits",
            "pdeathsig",
            "selinux-label",
            "apparmor-profile",
            "landlock-access",
            "landlock-rule",
        ),
    ),
    "prlimit": _after_options("po", ("pid", "output")),
    "valgrind": _after_options(),
    "faketime": _after_options("p", ("date-prog",), skip=1),
    "fakeroot": _after_options("lisb", ("lib", "faked")),
    "systemd-run": _after_options(
        "HMupEs",
        (
            "host",
            "machine",
            "unit",
            "property",
            "description",
            "slice",
            "service-type",
            "uid",
            "gid",
            "nice",
            "working-directory",
            "setenv",
            "path-property",
            "socket-property",
            "timer-property",
            "on-active",
            "on-boot",
            "on-startup",
            "on-unit-active",
            "on-unit-inactive",
            "on-calendar",
        ),
    ),
    "run0": _after_options(
        "ugD",
        (
            "user",
            "group",
            "nice",
            "chdir",
            "setenv",
            "property",
            "description",
            "slice",
            "machine",
            "unit",
            "background",
        ),
    ),
    "firejail": _after_options(),
    "numactl": _after_options("iNmCpPw", ("interleave", "cpunodebind", "membind", "physcpubind", "preferred")),
    "cpulimit": _after_options("lpe", ("limit", "pid", "exe")),
    "schedtool": _schedtool_start,
    "dbus-launch": _after_options(),
    "dbus-run-session": _after_options("", ("config-file", "dbus-daemon")),
    "xvfb-run": _after_options(
        "efnpsw", ("error-file", "auth-file", "server-num", "xauth-protocol", "server-args", "wait")
    ),
    "ssh-agent": _after_options("aEOPt"),
    "setarch": _setarch_start,
    "linux32": _setarch_start,
    "linux64": _setarch_start,
    "eatmydata": _after_options(),
    "nocache": _after_options(),
    "cgexec": _after_options("g"),
    "systemd-inhibit": _after_options("", ("what", "who", "why", "mode")),
    "sshpass": _after_options("fdpe"),
    "rlwrap": _after_options("aAcCDfFgHlopPqsStw"),
    "torify": _after_options(),
    "ip": _ip_start,
    "gdbserver": _after_options("", ("wrapper", "debug-file", "debug-format"), skip=1),
}


_ROOT_SHELL_WRAPPERS = {"sudo", "doas", "pkexec"}


# Wrappers that start a shell when given no command.
_SHELL_WHEN_ALONE = {"unshare", "nsenter", "fakeroot", "firejail", "run0", "runuser", "setarch", "linux32", "linux64"}


# Wrappers whose payload gets arguments from their input.
_INPUT_ARG_WRAPPERS = {"xargs"}


def _start(argv: list[str]) -> int | None:
    return WRAPPERS[canonical(argv[0])](argv)


def _settings(args: list[str]) -> list[str]:
    return list(itertools.takewhile(lambda a: re.match(r"^[A-Za-z_]\w*=", a), args))


def _wrapper_check(cmd: Cmd, w: _Walker) -> Iterator[Hit]:
    """Wrappers that run a string rather than argv, or set the environment of what they run."""
    if cmd.name == "env":
        for value in option_values(cmd.args, "S", ("split-string",), takes="uC"):
            yield from w.run_string(_env_split_string(value), None, cmd)
        _, _, i = split_options(cmd.args, "uCS", ("unset", "chdir", "split-string"))
        yield from _assignments(cmd, w, _settings(cmd.args[i:]), 1 + i)
    elif cmd.name == "sudo":  # `sudo NAME=value cmd` sets NAME for cmd
        start = _after_options(*_SUDO_VALUES)(cmd.argv) or len(cmd.argv)
        yield from _assignments(cmd, w, _settings(cmd.argv[start:]), start)
    elif cmd.name in _WRAPPER_SETENV:
        spec = _WRAPPER_SETENV[cmd.name]
        settings = option_values(cmd.args, spec.short, spec.long, takes=spec.takes)
        yield from _assignments(Cmd(argv=["", *settings], text=cmd.text), w, settings, 1)
    if cmd.name in _COMMAND_OPTIONS:  # flock -c, runuser -c
        yield from _command_options(cmd, w)


def _tail_text(cmd: Cmd, start: int) -> str:
    """The source text of a wrapper's payload (quotes kept), or its words joined."""
    if cmd.words and start < len(cmd.words) and cmd.text:
        offset = cmd.words[start].pos[0] - cmd.words[0].pos[0]
        if 0 <= offset < len(cmd.text):
            return cmd.text[offset:]
    return " ".join(cmd.argv[start:])


def peel(cmd: Cmd, start: int, spec: RuleSpec | None = None) -> Cmd:
    """The command a wrapper runs; under xargs it gets arguments from the input."""
    inner = cmd.sub(start, text=_tail_text(cmd, start))
    if spec is not None and "input_args" in spec.tags:
        replace = option_values(cmd.args[: start - 1], "I", ("replace",), takes="adELnPs")
        replace += ["{}" for a in cmd.args[: start - 1] if a == "-i" or a == "--replace"]
        replace += [a[2:] for a in cmd.args[: start - 1] if a.startswith("-i") and len(a) > 2]
        inner.input_args, inner.input_marker = True, (replace[0] if replace else "")
    return inner


def _wrapper_alone(cmd: Cmd, _w: _Walker) -> Iterator[Hit]:
    """A wrapper with nothing to wrap: `sudo -i`, `sudo -s`, `doas -s`, `chroot /x`."""
    opts, _, _ = split_options(cmd.args, "CDghpRrtTUu")
    if cmd.input_args and not (cmd.name in _COMMAND_OPTIONS and _has_command_option(cmd)):
        yield Hit(Risk.HIGH, "runs a command named by its input, which cannot be judged")
    elif cmd.name in _SHELL_WHEN_ALONE and not _has_command_option(cmd) and not opts & {"h", "help", "V", "version"}:
        yield Hit(Risk.HIGH, f"{cmd.name} starts a shell the command hook cannot see into", Trait.NESTED_SHELL)
    elif cmd.name == "systemd-run" and opts & {"S", "shell"}:
        yield Hit(Risk.HIGH, "systemd-run starts a shell the command hook cannot see into", Trait.NESTED_SHELL)
    elif cmd.name in _ROOT_SHELL_WRAPPERS and opts & {"i", "s", "login", "shell"}:
        yield Hit(Risk.HIGH, "privilege escalation: opens a root shell", Trait.NESTED_SHELL)
    elif cmd.name == "chroot" and cmd.args:
        yield Hit(Risk.HIGH, "starts a shell in a chroot", Trait.NESTED_SHELL)
    elif cmd.name == "sudo" and opts & {"e", "edit"}:
        yield Hit(Risk.MODERATE, "edits files as root")


def _exec_alone(cmd: Cmd, w: _Walker) -> Iterator[Hit]:
    """`exec` without a command keeps its redirections in the shell: on descriptor 0 (`exec <f`,
    `exec 0<&3`, `exec 0>&3`, `exec <<<…`) the shell reads its next lines from there, not from the
    terminal. Other descriptors (`exec 3<&0`, `exec >log`) leave its input alone."""
    yield from _wrapper_alone(cmd, w)
    if any(r.fd == 0 for r in cmd.redirects):
        yield EXEC_STDIN


def _has_command_option(cmd: Cmd) -> bool:
    spec = _COMMAND_OPTIONS.get(cmd.name)
    return bool(spec and option_values(cmd.args, spec.short, spec.long, takes=spec.takes))




def replace_shell_hit(name: str) -> Hit:
    """`exec CMD` typed in the monitored shell replaces it: the hook is gone."""
    if name in _SHELLS:
        why = "exec replaces the monitored shell with another shell (escapes the command hook)"
        return Hit(Risk.DANGEROUS, why, Trait.NESTED_SHELL)
    return Hit(Risk.HIGH, "exec replaces the monitored shell (escapes the command hook)", Trait.NESTED_SHELL)


_PRIVILEGE = ("sudo", "doas", "pkexec", "run0", "runuser")
_ISOLATION = ("unshare", "nsenter", "fakeroot", "firejail", "setarch", "linux32", "linux64", "chroot", "systemd-run",
              "setpriv", "cgexec", "ip")
_PLAIN = tuple(sorted(set(WRAPPERS) - set(_PRIVILEGE) - set(_ISOLATION) - {"xargs", "exec", "env"}))

register(*_PRIVILEGE, family="wrappers", check=_wrapper_check, alone=_wrapper_alone, start=_start,
         summary="run the command that follows as another user: judged as that command; alone (`sudo -i`, "
                 "`sudo -s`, `runuser USER`) they open a shell",
         benign={"sudo ls /root": Risk.SAFE}, harmful={"sudo -i": Risk.HIGH, "sudo rm -rf /": Risk.DANGEROUS})
register(*_ISOLATION, family="wrappers", check=_wrapper_check, alone=_wrapper_alone, start=_start,
         summary="run the command that follows in other namespaces or a chroot; alone they start a shell",
         benign={"unshare -r ls": Risk.SAFE}, harmful={"unshare -r": Risk.HIGH, "chroot /mnt mkfs.ext4 /dev/sda":
                                                        Risk.DANGEROUS})
register(*_PLAIN, family="wrappers", check=_wrapper_check, alone=_wrapper_alone, start=_start,
         summary="run the command that follows (`nice`, `nohup`, `timeout`, `flock`, `busybox`, …): judged as it",
         benign={"nohup ls": Risk.SAFE, "timeout 5 make": Risk.SAFE},
         harmful={"timeout 5 rm -rf /": Risk.DANGEROUS, "flock /tmp/l -c 'mkfs.ext4 /dev/sda'": Risk.DANGEROUS})
register("env", family="wrappers", check=_wrapper_check, alone=_wrapper_alone, start=_start,
         summary="`env NAME=… CMD` and `env -S STRING`: judged as the command and the variables it sets",
         benign={"env FOO=1 ls": Risk.SAFE}, harmful={"env -S 'rm -rf /'": Risk.DANGEROUS})
register("exec", family="wrappers", check=_wrapper_check, alone=_exec_alone, start=_start,
         tags={"replaces_shell"},
         summary="`exec CMD` replaces the monitored shell, escaping the command hook; `exec` redirecting "
                 "descriptor 0 (`exec <f`, `exec 0<&3`) makes the shell read its lines from elsewhere",
         benign={"exec >/tmp/log": Risk.SAFE, "exec 3<&0": Risk.SAFE},
         harmful={"exec ls": Risk.HIGH, "exec bash": Risk.DANGEROUS, "exec <steps.sh": Risk.HIGH})
register("xargs", family="wrappers", check=_wrapper_check, alone=_wrapper_alone, start=_start,
         tags={"input_args"},
         summary="`xargs CMD`: CMD gets arguments the rules never see and is judged by what it can do with any",
         benign={"xargs grep foo": Risk.SAFE}, harmful={"xargs rm": Risk.HIGH, "xargs mkfs.ext4": Risk.DANGEROUS})
