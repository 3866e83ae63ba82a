"""Risk assessment of bash command lines. Pure: no I/O, no Django.

`assess(line)` parses the line as bash would (bashlex), walks every simple command in it —
through pipelines, lists, subshells, groups, loops, functions, `$(...)`, backticks, process
substitutions, wrappers such as `sudo`/`env`/`xargs`, and the strings given to `bash -c`/`eval` —
and rates each one with the rule table `RULES` (command name -> rule). The line's risk is the
highest risk found; every reason reads "<part>: <rule>".

Quoted arguments are data: only the command word of a simple command, and the strings a
wrapper is known to execute, are ever treated as commands.
"""

from __future__ import annotations

import codecs
import itertools
import posixpath
import re
import shlex
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from functools import lru_cache
from typing import NamedTuple

import bashlex
import bashlex.ast

MAX_LINE_CHARS = 64 * 1024
MAX_DEPTH = 8  # nested `bash -c "bash -c '...'"` levels before we give up (HIGH)
_PART_CHARS = 120  # how much of a command a reason quotes


class Risk(IntEnum):
    SAFE = 0
    MODERATE = 1
    HIGH = 2
    DANGEROUS = 3


class Trait(StrEnum):
    """What a command does that matters to the policy beyond its risk (see policy.py)."""

    NESTED_SHELL = "nested_shell"  # an interactive shell or REPL the command hook cannot see into
    SCRIPT_FILE = "script_file"  # runs code from a file, a pipe or a script (python x.py, source)
    INLINE_CODE = "inline_code"  # runs code given on the command line (python -c, perl -e)


@dataclass(frozen=True)
class CommandFact:
    """One simple command found in the line (wrappers already peeled off in `name`)."""

    text: str
    name: str
    risk: Risk
    traits: frozenset[Trait] = frozenset()


@dataclass(frozen=True)
class Assessment:
    risk: Risk
    reasons: tuple[str, ...]
    commands: tuple[str, ...]
    facts: tuple[CommandFact, ...] = ()
    parsed: bool = True  # False when bashlex could not parse the line (risk is then >= HIGH)

    @property
    def traits(self) -> frozenset[Trait]:
        return frozenset().union(*(f.traits for f in self.facts))

    def to_dict(self) -> dict:
        return {
            "risk": self.risk.name,
            "reasons": list(self.reasons),
            "commands": list(self.commands),
        }


class Hit(NamedTuple):
    risk: Risk
    why: str
    trait: Trait | None = None


@dataclass
class Cmd:
    """A simple command as the rules see it."""

    argv: list[str]
    text: str
    words: list = field(default_factory=list)  # bashlex word nodes aligned with argv, or []
    stdin: str | None = None  # None (terminal), "pipe", "file", "here"
    stdin_text: str | None = None  # here-string / heredoc body
    stdin_path: str | None = None  # `< path`
    top: bool = True  # runs in the monitored shell itself (not inside bash -c / a subshell string)
    # xargs and parallel give the command arguments from their input, which the rules never see:
    # appended (marker "") or replacing a marker such as `{}` inside its words.
    input_args: bool = False
    input_marker: str = ""

    @property
    def name(self) -> str:
        return canonical(self.argv[0]) if self.argv else ""

    @property
    def args(self) -> list[str]:
        return self.argv[1:]

    def sub(self, start: int, text: str | None = None) -> Cmd:
        """The command that starts at argv[start] (a wrapper's payload)."""
        return Cmd(
            argv=self.argv[start:],
            text=text if text is not None else " ".join(self.argv[start:]),
            words=self.words[start:] if self.words else [],
            stdin=self.stdin,
            stdin_text=self.stdin_text,
            stdin_path=self.stdin_path,
            top=self.top,
            input_args=self.input_args,
            input_marker=self.input_marker,
        )


# --------------------------------------------------------------------------- paths and names

_HARMLESS_DEVICES = re.compile(
    r"^/dev/(null|zero|full|random|urandom|stdin|stdout|stderr|tty\w*|pts/.*|fd/.*|shm/.*|console)$"
)
_NET_DEVICE = re.compile(r"^/dev/(tcp|udp)/")
_ROOT_LIKE = {"/", "~", "$HOME", "${HOME}", "/root", "/home"}
_SYSTEM_DIRS = {
    "/bin",
    "/boot",
    "/dev",
    "/etc",
    "/home",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/media",
    "/mnt",
    "/opt",
    "/proc",
    "/root",
    "/run",
    "/sbin",
    "/snap",
    "/srv",
    "/sys",
    "/usr",
    "/usr/bin",
    "/usr/include",
    "/usr/lib",
    "/usr/lib64",
    "/usr/libexec",
    "/usr/local",
    "/usr/sbin",
    "/usr/share",
    "/var",
    "/var/lib",
    "/var/log",
    "/var/mail",
    "/var/spool",
}
_SYSTEM_PREFIXES = ("/bin/", "/boot/", "/etc/", "/lib/", "/lib32/", "/lib64/", "/sbin/", "/usr/")
_PROTECTED_FILE = re.compile(r"^/etc/(passwd|shadow|group|gshadow|sudoers)(-)?$|^/etc/sudoers\.d(/|$)")
_SECRET = re.compile(
    r"\.ssh/?$|\.ssh/(id_[^/]*|[^/]*_key|[^/]*\.pem)$(?<!\.pub)"
    r"|/etc/(shadow|gshadow|sudoers)\b|/etc/ssh/ssh_host_[^/]*_key$"
    r"|\.aws/credentials|\.netrc$|\.pgpass$|\.git-credentials$|\.gnupg(/|$)|\.kube/config$"
    r"|\.docker/config\.json$|\.(pem|key|p12|pfx)$"
)
# The terminal's hook: a DEBUG trap calling functions named __autobot_*, variables AUTOBOT_* /
# __AUTOBOT_*, PROMPT_COMMAND, and its rc file (terminal/bin/autobot.bashrc).
_HOOK_NAME = re.compile(r"^(__autobot_|__AUTOBOT_|AUTOBOT_|PROMPT_COMMAND$)")
# Builtins the hook relies on: a function or alias with one of these names could hijack it.
_HOOK_BUILTINS = {
    "trap",
    "shopt",
    "set",
    "unset",
    "builtin",
    "command",
    "declare",
    "typeset",
    "local",
    "enable",
    "eval",
    "source",
    ".",
    "exec",
    "history",
    "read",
    "printf",
    "return",
    "export",
    "readonly",
    "alias",
    "unalias",
    "fc",
    "type",
}


def canonical(word: str) -> str:
    """`/usr/bin/python3.11` -> `python`, `mkfs.ext4` -> `mkfs`: the key into RULES."""
    name = word.rsplit("/", 1)[-1] if "/" in word.rstrip("/") else word
    if name.startswith("mkfs."):
        return "mkfs"
    m = re.fullmatch(r"(python|pypy|perl|ruby|php|lua|node)[\d.]*", name)
    return m.group(1) if m else name


def norm_path(p: str) -> tuple[str, bool]:
    """Normalise a path operand; the flag says it ended in `/*` (all of the directory's contents)."""
    p = re.sub(r"/{2,}", "/", p.strip())
    glob_all = p.endswith("/*") or p == "*"
    if p.endswith("/*"):
        p = p[:-2] or "/"
    while len(p) > 1 and (p.endswith("/") or p.endswith("/.")):
        p = p[:-2] if p.endswith("/.") else p[:-1]
    if p.startswith("/"):
        p = posixpath.normpath(p)
        p = "/" if p.startswith("//") else p
    return p, glob_all


def is_root_or_home(p: str) -> bool:
    return p in _ROOT_LIKE or bool(re.fullmatch(r"~\w[\w.-]*|/home/[^/$*]+", p))


def is_critical(p: str) -> bool:
    """`/`, a home directory, an account file or a top-level system directory."""
    return is_root_or_home(p) or p in _SYSTEM_DIRS or bool(_PROTECTED_FILE.match(p))


def is_device(p: str) -> bool:
    return p.startswith("/dev/") and not _HARMLESS_DEVICES.match(p) and not _NET_DEVICE.match(p)


def is_hook_file(path: str) -> bool:
    """The hook's rc file: named autobot-hook*/autobot*rc, or hook*/bashrc/rc in an autobot dir."""
    base = path.rsplit("/", 1)[-1].lower()
    if re.match(r"^\.?autobot[-_.]?(hook|rc|bashrc)", base):
        return True
    return "autobot" in path.lower() and bool(re.fullmatch(r"\.?(hook([-_.]\w+)?|(bash)?rc)", base))


def is_secret(arg: str) -> bool:
    return bool(_SECRET.search(arg))


def _dynamic(s: str) -> bool:
    return "$" in s or "`" in s


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _PART_CHARS else text[: _PART_CHARS - 1] + "…"


def split_options(
    args: list[str], values: str = "", long_values: Iterable[str] = (), numeric: bool = False
) -> tuple[set[str], list[str], int]:
    """Parse leading options like getopt: (option letters / long names, their values, index of
    the first operand). `values` are short options that take an argument."""
    opts: set[str] = set()
    vals: list[str] = []
    long_values = set(long_values)
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            return opts, vals, i + 1
        if a.startswith("--"):
            name, eq, val = a[2:].partition("=")
            opts.add(name)
            if name in long_values and not eq:
                i += 1
                vals.append(args[i] if i < len(args) else "")
            elif eq:
                vals.append(val)
        elif a.startswith("-") and len(a) > 1:
            if numeric and a[1:].isdigit():
                i += 1
                continue
            for j, ch in enumerate(a[1:], 1):
                opts.add(ch)
                if ch in values:
                    if j + 1 < len(a):
                        vals.append(a[j + 1 :])
                    else:
                        i += 1
                        vals.append(args[i] if i < len(args) else "")
                    break
        else:
            return opts, vals, i
        i += 1
    return opts, vals, i


def option_values(
    args: list[str], short: str = "", long: Iterable[str] = (), *, takes: str = "", attached_only: bool = False
) -> list[str]:
    """Values of the options `short`/`long` anywhere in args, GNU style (`-xV`, `-x V`, `--long=V`,
    `--long V`), not stopping at operands. `takes` are the program's other short options that take
    a value (so a value is not read as options). `attached_only`: the value is optional and only
    counts when attached (`-Ocmd`, `--opt=cmd`)."""
    found: list[str] = []
    long = set(long)
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            break
        if a.startswith("--"):
            name, eq, val = a[2:].partition("=")
            if name in long and (eq or not attached_only):
                if not eq:
                    i += 1
                    val = args[i] if i < len(args) else ""
                found.append(val)
        elif a.startswith("-") and len(a) > 1:
            for j, ch in enumerate(a[1:], 1):
                if ch in short or ch in takes:
                    val = a[j + 1 :]
                    if not val and not (ch in short and attached_only):
                        i += 1
                        val = args[i] if i < len(args) else ""
                    if ch in short and val:
                        found.append(val)
                    break
        i += 1
    return found


def _first_operand(args: list[str], values: str = "", long_values: Iterable[str] = ()) -> str:
    _, _, i = split_options(args, values, long_values)
    return args[i] if i < len(args) else ""


# --------------------------------------------------------------------------- rules
# A rule takes the command (and the walker, for rules that execute strings) and yields Hits.

Rule = Callable[[Cmd, "_Walker"], Iterable[Hit]]


def _rm(cmd: Cmd, _w: _Walker) -> Iterator[Hit]:
    opts, _, i = split_options(cmd.args)
    if "no-preserve-root" in opts:
        yield Hit(Risk.DANGEROUS, "deletion with --no-preserve-root")
        return
    recursive = bool(opts & {"r", "R", "recursive"})
    targets = [norm_path(a) for a in cmd.args[i:]]
    if any(is_hook_file(p) for p, _ in targets):
        yield Hit(Risk.DANGEROUS, "deletes the terminal's command hook file (tampering)")
    elif recursive and any(is_critical(p) or p in _SYSTEM_DIRS for p, _ in targets):
        yield Hit(Risk.DANGEROUS, "recursive deletion of the root, a home directory or a system path")
    elif recursive:
        yield Hit(Risk.HIGH, "recursive deletion")
    elif any(_PROTECTED_FILE.match(p) or (g and (p in _SYSTEM_DIRS or p == "/")) for p, g in targets):
        yield Hit(Risk.DANGEROUS, "deletes account files or the contents of a system directory")
    elif any(p.startswith(_SYSTEM_PREFIXES) for p, _ in targets):
        yield Hit(Risk.HIGH, "deletes a file in a system directory")
    else:
        yield Hit(Risk.MODERATE, "deletes files")


def _shred(cmd: Cmd, _w: _Walker) -> Iterator[Hit]:
    _, _, i = split_options(cmd.args, "nsx", ("iterations", "size", "random-source"))
    paths = [norm_path(a)[0] for a in cmd.args[i:]]
    if any(is_device(p) or is_critical(p) or p.startswith(_SYSTEM_PREFIXES) for p in paths):
        yield Hit(Risk.DANGEROUS, "irrecoverably overwrites a device or a system file")
    else:
        yield Hit(Risk.HIGH, "irrecoverably overwrites files")


_DISK_LISTING = {
    "fdisk": {"l", "list"},
    "sfdisk": {"l", "list", "d", "dump", "s", "show-size"},
    "parted": {"l", "list"},
    "gdisk": {"l"},
    "sgdisk": {"p", "print"},
}


def _disk_tool(cmd: Cmd, _w: _Walker) -> Iterator[Hit]:
    opts, _, _ = split_options(cmd.args, "bcCEgHiLmNOoSTtUu")
    if opts & (_DISK_LISTING.get(cmd.name, set()) | {"V", "version", "h", "help"}):
        return  # listing partitions or printing a version
    if cmd.name == "wipefs" and not opts & {"a", "all", "o", "offset"}:
        return  # without -a wipefs only lists signatures
    if cmd.name == "parted" and cmd.args[-1:] == ["print"]:
        return
    operands = [a for a in cmd.args if not a.startswith("-")]
    if any(is_device(norm_path(a)[0]) for a in operands):
        yield Hit(Risk.DANGEROUS, "formats, partitions or wipes a block device")
    elif any(_dynamic(a) for a in operands):
        yield Hit(Risk.HIGH, "formats, partitions or wipes a target chosen at run time")
    elif operands:
        yield Hit(Risk.MODERATE, "formats or partitions an image file")


def _dd(cmd: Cmd, _w: _Walker) -> Iterator[Hit]:
    for a in cmd.args:
        if a.startswith("of="):
            yield from _write_target(norm_path(a[3:])[0], "dd writes")


def _write_target(path: str, verb: str) -> Iterator[Hit]:
    """Rules for anything that writes to `path` (redirections, tee, dd of=, cp/mv destinations)."""
    if is_device(path) or path in {"/dev/mem", "/dev/kmem", "/dev/port"}:
        yield Hit(Risk.DANGEROUS, f"{verb} to a block device")
    elif _PROTECTED_FILE.match(path):
        yield Hit(Risk.DANGEROUS, f"{verb} to an account or sudoers file")
    elif is_hook_file(path):
        yield Hit(Risk.DANGEROUS, f"{verb} to the terminal's command hook file (tampering)")
    elif path == "/proc/sysrq-trigger":
        yield Hit(Risk.DANGEROUS, f"{verb} to the kernel's SysRq trigger")
    elif path.startswith(_SYSTEM_PREFIXES) or path.startswith(("/proc/sys/", "/sys/")):
        yield Hit(Risk.HIGH, f"{verb} to a system file")


def _tee(cmd: Cmd, _w: _Walker) -> Iterator[Hit]:
    _, _, i = split_options(cmd.args)
    for a in cmd.args[i:]:
        yield from _write_target(norm_path(a)[0], "tee writes")


def _copy_move(cmd: Cmd, _w: _Walker) -> Iterator[Hit]:
    _, vals, i = split_options(cmd.args, "tSZ", ("target-directory", "suffix", "backup"))
    operands = cmd.args[i:]
    # mv also removes its sources; cp/install/ln only write their destination
    target_dir = bool(vals) and cmd.name != "ln"
    sources, dests = (operands, vals) if target_dir else (operands[:-1], operands[-1:])
    if cmd.name == "mv" and any(is_critical(norm_path(a)[0]) or is_hook_file(a) for a in sources):
        yield Hit(Risk.DANGEROUS, "moves the root, a home directory, a system path or the hook file")
        return
    for a in dests:
        yield from _write_target(norm_path(a)[0], f"{cmd.name} writes")


def _truncate(cmd: Cmd, _w: _Walker) -> Iterator[Hit]:
    _, _, i = split_options(cmd.args, "rs", ("reference", "size"))
    for a in cmd.args[i:]:
        yield from _write_target(norm_path(a)[0], "truncate writes")


def _power(cmd: Cmd, _w: _Walker) -> Iterator[Hit]:
    if cmd.name == "shutdown" and {"-c", "--help"} & set(cmd.args):
        return
    if {"--help", "--version"} & set(cmd.args):
        return
    yield Hit(Risk.DANGEROUS, "shuts down or reboots the machine")


def _init(cmd: Cmd, _w: _Walker) -> Iterator[Hit]:
    level = _first_operand(cmd.args)
    if level in {"0", "6"}:
        yield Hit(Risk.DANGEROUS, "shuts down or reboots the machine")
    elif level:
        yield Hit(Risk.HIGH, "changes the runlevel")


_SYSTEMCTL_POWER = {"poweroff", "reboot", "halt", "kexec", "soft-reboot", "emergency", "rescue"}
_SYSTEMCTL_STOP = {"stop", "disable", "mask", "kill", "suspend", "hibernate", "hybrid-sleep", "isolate"}
_SYSTEMCTL_CHANGE = {
    "start",
    "restart",
    "try-restart",
    "reload",
    "reload-or-restart",
    "try-reload-or-restart",
    "enable",
    "reenable",
    "unmask",
    "daemon-reload",
    "edit",
    "set-property",
    "preset",
    "revert",
    "link",
    "set-default",
}


def _systemctl(cmd: Cmd, _w: _Walker) -> Iterator[Hit]:
    _, _, i = split_options(
        cmd.args, "tpHMsno", ("type", "property", "host", "machine", "signal", "state", "lines", "output", "root")
    )
    verb = cmd.args[i] if i < len(cmd.args) else ""
    units = cmd.args[i + 1 :]
    if verb in _SYSTEMCTL_POWER or (
        verb == "isolate"
        and any(u.split(".")[0] in _SYSTEMCTL_POWER | {"poweroff", "runlevel0", "runlevel6"} for u in units)
    ):
        yield Hit(Risk.DANGEROUS, "shuts down, reboots or isolates the machine")
    elif verb in _SYSTEMCTL_STOP:
        yield Hit(Risk.HIGH, f"service control: {verb}")
    elif verb in _SYSTEMCTL_CHANGE:
        yield Hit(Risk.MODERATE, f"service control: {verb}")


def _service(cmd: Cmd, _w: _Walker) -> Iterator[Hit]:
    if len(cmd.args) < 2:
        return
    action = cmd.args[1]
    if action == "stop":
        yield Hit(Risk.HIGH, "service control: stop")
    elif action in {"start", "restart", "reload", "force-reload", "try-restart"}:
        yield Hit(Risk.MODERATE, f"service control: {action}")


def _is_world_writable(mode: str) -> bool:
    if re.fullmatch(r"0?[0-7]?[0-7]{2}[2367]", mode):
        return True
    m = re.fullmatch(r"([ugoa]*)[+=]([rwxXst]*)", mode)
    return bool(m and "w" in m.group(2) and (not m.group(1) or set(m.group(1)) & {"a", "o"}))


def _chmod_chown(cmd: Cmd, _w: _Walker) -> Iterator[Hit]:
    args = cmd.args
    opts: set[str] = set()
    operands: list[str] = []
    for a in args:  # chmod modes such as -x look like options; only these letters are options
        if re.fullmatch(r"-[RcfvhHLP]+", a) or a.startswith("--"):
            opts.update(a[2:].split("=")[0:1] if a.startswith("--") else a[1:])
        else:
            operands.append(a)
    has_reference = any(o.startswith("reference") for o in opts)
    mode = "" if has_reference else (operands[0] if operands else "")
    paths = [norm_path(a)[0] for a in (operands if has_reference else operands[1:])]
    recursive = bool(opts & {"R", "recursive"})
    if recursive and any(is_critical(p) or p in _SYSTEM_DIRS for p in paths):
        yield Hit(Risk.DANGEROUS, f"recursive {cmd.name} of the root, a home directory or a system path")
    elif any(_PROTECTED_FILE.match(p) for p in paths):
        yield Hit(Risk.DANGEROUS, f"{cmd.name} of an account or sudoers file")
    elif recursive and cmd.name == "chmod" and _is_world_writable(mode):
        yield Hit(Risk.HIGH, "recursive chmod making files world-writable")
    elif any(p in _SYSTEM_DIRS or is_root_or_home(p) for p in paths):
        yield Hit(Risk.HIGH, f"{cmd.name} of a system directory")
    elif cmd.name == "chmod" and re.fullmatch(r"[ugoa]*\+s|0?[2-7][0-7]{3}", mode):
        yield Hit(Risk.HIGH, "sets the setuid/setgid bit")


def _kill(cmd: Cmd, _w: _Walker) -> Iterator[Hit]:
    args = cmd.args
    if not args or args[0] in {"-l", "-L"}:
        return
    i = 0
    if args[0] in {"-s", "-n"}:
        i = 2
    elif args[0].startswith("-") and args[0] != "--":
        i = 1
    if i < len(args) and args[i] == "--":
        i += 1
    pids = args[i:]
    if "-1" in pids:
        yield Hit(Risk.DANGEROUS, "signals every process (kill -1)")
    elif "1" in pids:
        yield Hit(Risk.HIGH, "signals init (PID 1)")


def _pkill(cmd: Cmd, _w: _Walker) -> Iterator[Hit]:
    if cmd.name == "killall5":
        yield Hit(Risk.DANGEROUS, "signals every process (killall5)")
        return
    args = cmd.args
    users = {v for a, v in zip(args, args[1:], strict=False) if a in {"-u", "-U", "--euid", "--uid", "--user"}}
    users |= {a[2:] for a in args if re.match(r"^-[uU]\w", a)} | {
        a.split("=", 1)[1] for a in args if re.match(r"^--(e?uid|user)=", a)
    }
    if users & {"root", "0"}:
        yield Hit(Risk.DANGEROUS, "kills every process of root")
    else:
        yield Hit(Risk.MODERATE, "kills processes by name")


_DOWNLOADERS = {
    "curl",
    "wget",
    "fetch",
    "aria2c",
    "http",
    "https",
    "xh",
    "lwp-request",
    "GET",
    "nc",
    "ncat",
    "netcat",
    "socat",
    "telnet",
    "ftp",
    "tftp",
}
_NET_SENDERS = _DOWNLOADERS | {"ssh", "openssl", "mail", "mailx", "sendmail", "mutt", "smbclient"}
_COPIERS = {"scp", "rsync", "sftp"}
_IDENTITY_OPTS = {"-i", "-F", "-o", "-e", "-J", "--rsh", "-S"}


def _curl_wget(cmd: Cmd, _w: _Walker) -> Iterator[Hit]:
    args = cmd.args
    for n, a in enumerate(args):
        prev = args[n - 1] if n else ""
        uploaded = (
            a.startswith("@")
            or "=@" in a
            or "=<" in a
            or prev in {"-T", "--upload-file", "--post-file", "--body-file"}
            or a.startswith(("--post-file=", "--body-file=", "--upload-file="))
        )
        if uploaded and is_secret(a):
            yield Hit(Risk.DANGEROUS, "sends a secret file (keys, passwords) over the network")
            return


def _copier(cmd: Cmd, _w: _Walker) -> Iterator[Hit]:
    args = cmd.args
    remote = any(re.match(r"^[\w.@-]+:", a) for a in args)
    for n, a in enumerate(args):
        if n and args[n - 1] in _IDENTITY_OPTS:
            continue
        if remote and is_secret(a) and not re.match(r"^[\w.@-]+:", a):
            yield Hit(Risk.DANGEROUS, "copies a secret file (keys, passwords) to another host")
            return


def _iptables(cmd: Cmd, _w: _Walker) -> Iterator[Hit]:
    args = cmd.args
    if cmd.name.endswith("-restore"):
        yield Hit(Risk.HIGH, "replaces the firewall rules")
        return
    for n, a in enumerate(args):
        if a in {"-P", "--policy"} and n + 2 < len(args) and args[n + 2].upper() in {"DROP", "REJECT"}:
            yield Hit(Risk.DANGEROUS, "sets a DROP firewall policy (can lock everyone out)")
            return
    opts, _, _ = split_options([a for a in args if a.startswith("-")])
    if opts & {"F", "flush", "X", "delete-chain", "P", "policy"}:
        yield Hit(Risk.HIGH, "flushes the firewall or changes its policy")
    elif opts & {"A", "I", "D", "R", "N", "E", "append", "insert", "delete", "replace"}:
        yield Hit(Risk.MODERATE, "changes the firewall rules")


def _nft(cmd: Cmd, _w: _Walker) -> Iterator[Hit]:
    words = [a for a in cmd.args if not a.startswith("-")]
    verb = words[0] if words else ""
    if verb in {"flush", "delete", "destroy"}:
        yield Hit(Risk.HIGH, "flushes or deletes firewall rules")
    elif verb in {"add", "insert", "replace", "create"} or "-f" in cmd.args:
        yield Hit(Risk.MODERATE, "changes the firewall rules")


def _ufw(cmd: Cmd, _w: _Walker) -> Iterator[Hit]:
    verb = _first_operand(cmd.args)
    if verb in {"disable", "reset"}:
        yield Hit(Risk.HIGH, f"firewall {verb}")
    elif verb and verb not in {"status", "show", "version", "app"}:
        yield Hit(Risk.MODERATE, "changes the firewall rules")


def _crontab(cmd: Cmd, _w: _Walker) -> Iterator[Hit]:
    opts, _, i = split_options(cmd.args, "u")
    if "r" in opts:
        yield Hit(Risk.HIGH, "removes the crontab")
    elif "e" in opts or i < len(cmd.args):
        yield Hit(Risk.MODERATE, "replaces or edits the crontab")


# name -> (verbs that install or upgrade, verbs that remove)
_PACKAGE_VERBS: dict[str, tuple[set[str], set[str]]] = {
    "apt": (
        {"install", "reinstall", "upgrade", "full-upgrade", "dist-upgrade", "build-dep"},
        {"remove", "purge", "autoremove", "autopurge"},
    ),
    "yum": (
        {"install", "in", "reinstall", "update", "upgrade", "up", "localinstall", "groupinstall", "dup", "distro-sync"},
        {"remove", "rm", "erase", "autoremove", "groupremove"},
    ),
    "apk": ({"add", "upgrade", "fix"}, {"del"}),
    "brew": ({"install", "reinstall", "upgrade", "tap"}, {"uninstall", "remove", "rm", "untap"}),
    "snap": ({"install", "refresh"}, {"remove"}),
    "pip": ({"install", "download"}, {"uninstall"}),
    "npm": (
        {"install", "i", "add", "ci", "update", "upgrade", "up", "link"},
        {"uninstall", "remove", "rm", "un", "r", "unlink"},
    ),
    "gem": ({"install", "update"}, {"uninstall"}),
    "cargo": ({"install"}, {"uninstall"}),
    "go": ({"install", "get"}, set()),
    "conda": ({"install", "update", "create", "upgrade"}, {"remove", "uninstall"}),
}
_PACKAGE_ALIASES = {
    "apt-get": "apt",
    "aptitude": "apt",
    "dnf": "yum",
    "microdnf": "yum",
    "zypper": "yum",
    "flatpak": "snap",
    "pip3": "pip",
    "pipx": "pip",
    "yarn": "npm",
    "pnpm": "npm",
    "mamba": "conda",
}


def _package_manager(cmd: Cmd, w: _Walker) -> Iterator[Hit]:
    family = _PACKAGE_ALIASES.get(cmd.name, cmd.name)
    installs, removes = _PACKAGE_VERBS[family]
    verb = _first_operand(cmd.args, "otcC")
    if verb in removes:
        yield Hit(Risk.HIGH, "removes packages")
    elif verb in installs:
        yield Hit(Risk.MODERATE, "installs or upgrades packages")
    if family == "apt":
        yield from _apt_options(cmd, w)


# apt configuration keys whose values apt or dpkg run as shell commands.
_APT_COMMAND_KEY = re.compile(r"(?i)(pre|post)-invoke(-success)?(::|$)|pre-install-pkgs(::|$)"
                              r"|::proxy-?auto-?detect$|^dpkg::tools::|^apt::update::.*invoke")
# Keys that name programs apt runs, or where its configuration and helpers come from.
_APT_CODE_KEY = re.compile(r"(?i)^(dir(::(etc|bin)(::.*)?)?|dpkg::path|apt::key::gpgvcommand|apt::(solver|planner)"
                           r"|dir::(bin|etc|lib|libexec)::.*)$")


def _apt_options(cmd: Cmd, w: _Walker) -> Iterator[Hit]:
    """`apt-get -o APT::Update::Pre-Invoke::=CMD` runs CMD; `-c FILE` reads a configuration that can."""
    for value in option_values(cmd.args, "o", ("option",), takes="tcaP"):
        key, _, command = value.partition("=")
        key = re.sub(r"(?i)^binary::[^:]+::", "", key.strip())
        if _APT_COMMAND_KEY.search(key) and command.strip():
            yield from w.run_string(command, None, cmd)
        elif _APT_CODE_KEY.match(key):
            yield Hit(Risk.HIGH, f"apt option {key} points apt at programs or configuration that cannot be assessed",
                      Trait.SCRIPT_FILE)
    if option_values(cmd.args, "c", ("config-file",), takes="otaP"):
        yield Hit(Risk.HIGH, "reads apt configuration from a file, which can name commands apt runs", Trait.SCRIPT_FILE)


def _less(cmd: Cmd, w: _Walker) -> Iterator[Hit]:
    """less runs `+CMD` (and `++CMD`) at start; `+!CMD` and `+|mCMD` run shell commands."""
    yield from _less_command_options([a for a in cmd.args if a.startswith("+")], cmd, w)


def _less_command_options(values: Iterable[str], cmd: Cmd, w: _Walker) -> Iterator[Hit]:
    for value in values:
        command = value.lstrip("+").strip()
        shell = re.match(r"^(?:!|\|.)(.*)$", command, re.S) if command[:1] in {"!", "|"} else None
        if command.startswith("|"):
            shell = re.match(r"^\|.(.*)$", command, re.S)
        if shell and shell.group(1).strip():
            yield from w.run_string(shell.group(1).lstrip("!"), None, cmd)
        elif shell or command[:1] in {"!", "|", "v", "s", "o", "O"}:
            yield Hit(Risk.HIGH, f"less runs the command {command!r} at start, which can start programs or write files")


def _package_by_option(cmd: Cmd, _w: _Walker) -> Iterator[Hit]:
    """dpkg, rpm and pacman choose the operation with an option, not a verb."""
    flags = [a for a in cmd.args if a.startswith("-")]
    removes = {"dpkg": r"^-(r|P)$|^--(remove|purge)$", "rpm": r"^-e\w*$|^--erase$", "pacman": r"^-R\w*$|^--remove$"}
    installs = {
        "dpkg": r"^-i$|^--(install|unpack)$",
        "rpm": r"^-[iUF]\w*$|^--(install|upgrade|freshen)$",
        "pacman": r"^-[SU]\w*$|^--(sync|upgrade)$",
    }
    if any(re.match(removes[cmd.name], f) for f in flags):
        yield Hit(Risk.HIGH, "removes packages")
    elif any(re.match(installs[cmd.name], f) for f in flags):
        yield Hit(Risk.MODERATE, "installs or upgrades packages")


def _git(cmd: Cmd, w: _Walker) -> Iterator[Hit]:
    _, _, i = split_options(cmd.args, "Cc", ("git-dir", "work-tree", "namespace", "exec-path", "config-env"))
    verb, rest = (cmd.args[i], cmd.args[i + 1 :]) if i < len(cmd.args) else ("", [])
    yield from _git_commands(cmd, w, cmd.args[:i], verb, rest)
    if not verb:
        return
    if verb == "push" and (
        {"-f", "--force", "--mirror", "--force-if-includes"} & set(rest)
        or any(a.startswith("--force-with-lease") or (a.startswith("+") and len(a) > 1) for a in rest)
        or any(re.fullmatch(r"-[a-zA-Z]*f[a-zA-Z]*", a) for a in rest)
    ):
        yield Hit(Risk.HIGH, "force push (rewrites remote history)")
    elif verb == "reset" and "--hard" in rest:
        yield Hit(Risk.MODERATE, "discards uncommitted changes (git reset --hard)")
    elif verb == "clean" and ("force" in split_options(rest, "e")[0] or "f" in split_options(rest, "e")[0]):
        yield Hit(Risk.MODERATE, "deletes untracked files (git clean -f)")


def _history(cmd: Cmd, _w: _Walker) -> Iterator[Hit]:
    opts, _, _ = split_options(cmd.args, "d")
    if opts & {"c", "d"}:
        yield Hit(Risk.MODERATE, "clears the shell history")


# ---- programs that run a command named in an option or argument
# Each string is judged as the command line it is (`tar -I 'mkfs.ext4 /dev/sda'` is DANGEROUS).


@dataclass(frozen=True)
class CommandOption:
    """Options of a program whose value is a command it runs."""

    short: str = ""
    long: tuple[str, ...] = ()
    takes: str = ""  # the program's other short options that take a value
    attached_only: bool = False  # the value is optional: only `-Xcmd` / `--opt=cmd` name one


_COMMAND_OPTIONS: dict[str, CommandOption] = {
    "tar": CommandOption(
        "IF",
        ("to-command", "use-compress-program", "info-script", "new-volume-script", "rsh-command", "rmt-command"),
        takes="bCfgHKLNTVX",
    ),
    "rsync": CommandOption("e", ("rsh",), takes="BfMT"),
    "scp": CommandOption("S", takes="cDFiJlmoOPX"),
    "sftp": CommandOption("SD", takes="BbcFiJlopRs"),
    "script": CommandOption("c", ("command",), takes="IOBTmEo"),
    "split": CommandOption("", ("filter",), takes="abCln"),
    "sort": CommandOption("", ("compress-program",), takes="kotST"),
    "man": CommandOption("P", ("pager",), takes="CMmSsLpRe"),
    "tcpdump": CommandOption("z", takes="ABcCDEFGiIjmMrsTVwWy"),
    "flock": CommandOption("c", ("command",), takes="wE"),
    "runuser": CommandOption("c", ("command", "session-command"), takes="gGuw"),
    "parallel": CommandOption("", ("ssh", "compress-program", "decompress-program")),
    "dpkg": CommandOption("", ("pre-invoke", "post-invoke", "status-logger"), takes="ORD"),
    "zip": CommandOption("", ("unzip-command",), takes="bnPtxi"),
    "mysql": CommandOption("", ("pager",), attached_only=True),
    "mariadb": CommandOption("", ("pager",), attached_only=True),
}


def _command_options(cmd: Cmd, w: _Walker) -> Iterator[Hit]:
    spec = _COMMAND_OPTIONS[cmd.name]
    for value in option_values(cmd.args, spec.short, spec.long, takes=spec.takes, attached_only=spec.attached_only):
        yield from w.run_string(value, None, cmd)


def _tar(cmd: Cmd, w: _Walker) -> Iterator[Hit]:
    args = cmd.args
    if args and re.fullmatch(r"[A-Za-z]+", args[0]):  # old style `tar xIf prog a.tar`: values follow in order
        expanded, rest = [], iter(args[1:])
        for ch in args[0]:
            expanded.append("-" + ch)
            if ch in "bCfFgHIKLNTVX":
                expanded.append(next(rest, ""))
        args = expanded + list(rest)
        cmd = Cmd(argv=[cmd.argv[0], *args], text=cmd.text, top=cmd.top)
    yield from _command_options(cmd, w)
    for value in option_values(args, "", ("checkpoint-action",)):
        action, _, command = value.partition("=")
        if action == "exec":
            yield from w.run_string(command, None, cmd)


_SSH_COMMAND_KEYS = {"proxycommand", "localcommand", "knownhostscommand"}


def _ssh(cmd: Cmd, w: _Walker) -> Iterator[Hit]:
    """ssh/scp/sftp `-o ProxyCommand=CMD` (also LocalCommand, KnownHostsCommand) run CMD locally."""
    for value in option_values(cmd.args, "o", takes="BbcDEeFIiJLlmOpPQRSWwX"):
        m = re.match(r"\s*(\w+)\s*(?:=|\s)\s*(.*)$", value, re.S)
        if m and m.group(1).lower() in _SSH_COMMAND_KEYS and m.group(2).strip():
            yield from w.run_string(m.group(2).strip(), None, cmd)
    if cmd.name in _COMMAND_OPTIONS:
        yield from _command_options(cmd, w)


def _sed(cmd: Cmd, w: _Walker) -> Iterator[Hit]:
    """GNU sed: the `e` command and the `s///e` flag run shell commands; `w` writes files."""
    args, scripts, files, in_place, script_file, n = cmd.args, [], [], False, False, 0
    sandbox = "--sandbox" in args
    while n < len(args):
        a = args[n]
        if a in {"-e", "--expression", "-f", "--file", "-l", "--line-length"} and n + 1 < len(args):
            scripts += [args[n + 1]] if a in {"-e", "--expression"} else []
            script_file = script_file or a in {"-f", "--file"}
            n += 2
            continue
        if a.startswith(("--expression=", "--file=")):
            scripts += [a.split("=", 1)[1]] if a.startswith("--expression=") else []
            script_file = script_file or a.startswith("--file=")
        elif a.startswith("--in-place") or re.match(r"^-[nrsuzE]*i", a):
            in_place = True
        elif re.match(r"^-[nrsuzE]*[ef]", a):  # -ne SCRIPT, -nf FILE, -es/x/y/
            letters = re.match(r"^-[nrsuzE]*([ef])(.*)", a)
            value = letters.group(2) or (args[n + 1] if n + 1 < len(args) else "")
            n += 0 if letters.group(2) else 1
            if letters.group(1) == "e":
                scripts.append(value)
            else:
                script_file = True
        elif not a.startswith("-") or a == "-":
            files.append(a)
        n += 1
    if not scripts and not script_file and files:
        scripts, files = files[:1], files[1:]
    if script_file:
        yield Hit(Risk.MODERATE, "runs a sed script file (which can run shell commands)", Trait.SCRIPT_FILE)
    if in_place:
        for f in files:
            yield from _write_target(norm_path(f)[0], "sed -i edits")
    if sandbox:
        return
    for script in scripts:
        for letter, value in _sed_commands(script):
            if letter == "e" and value:
                yield from w.run_string(value, None, cmd)
            elif letter in {"e", "s///e"}:
                yield Hit(Risk.HIGH, f"sed {letter} runs text from its input as a shell command")
            elif letter in {"w", "W", "s///w"} and value:
                yield from _write_target(norm_path(value)[0], "sed writes")


def _sed_commands(script: str) -> Iterator[tuple[str, str]]:
    """(command, argument) for each command of a sed script, e.g. ("e", "date"), ("s///e", "").
    Lenient: skips what it does not understand."""
    i, n = 0, len(script)

    def delimited(i: int, delim: str) -> int:  # index just past the closing delimiter
        while i < n and script[i] != delim:
            i += 2 if script[i] == "\\" else 1
        return i + 1

    def to_eol(i: int) -> tuple[str, int]:
        end = script.find("\n", i)
        end = n if end < 0 else end
        return script[i:end].strip(), end

    while i < n:
        ch = script[i]
        if ch in " \t\n;{}!,0123456789$~+":
            i += 1
        elif ch == "/":
            i = delimited(i + 1, "/")
        elif ch == "\\" and i + 1 < n:
            i = delimited(i + 2, script[i + 1])
        elif ch == "#":
            i = to_eol(i)[1]
        elif ch in "aic":
            i = to_eol(i + 1)[1]
        elif ch in "eFrRwW" or (ch in "bT:t"):
            value, end = to_eol(i + 1)
            if ch in "bTt:":  # a label ends at ; as well
                semi = script.find(";", i + 1)
                end = end if semi < 0 else min(end, semi)
                value = ""
            yield ch, value
            i = end
        elif ch in "sy" and i + 1 < n:
            delim = script[i + 1]
            end = delimited(delimited(i + 2, delim), delim)
            flags = re.match(r"[^;\n}]*", script[end:]).group(0)
            if ch == "s" and "e" in re.sub(r"w.*", "", flags):
                yield "s///e", ""
            if ch == "s" and "w" in flags:
                yield "s///w", flags.split("w", 1)[1].strip()
            i = end + len(flags)
        else:
            i += 1


_GIT_COMMAND_KEY = re.compile(
    r"^(core\.(pager|sshcommand|editor|askpass|fsmonitor|gitproxy)|pager\..+|sequence\.editor|diff\.external"
    r"|diff\..+\.(command|textconv)|merge\..+\.driver|filter\..+\.(clean|smudge|process)|credential(\..+)?\.helper"
    r"|gpg(\..+)?\.program|uploadpack\.packobjectshook|(merge|diff)tool\..+\.cmd|man\..+\.cmd|web\.browser"
    r"|browser\..+\.cmd|remote\..+\.(uploadpack|receivepack)|sendemail\.(sendmailcmd|tocmd|cccmd)|alias\..+)$"
)
# Keys that point git at code elsewhere (hooks, other config files, the ext:: transport).
_GIT_CODE_KEY = re.compile(r"^(core\.hookspath|include\.path|includeif\..+\.path|protocol\..*allow)$")
# Subcommand options whose value is a command git runs.
_GIT_COMMAND_SUBOPTIONS: dict[str, CommandOption] = {
    "grep": CommandOption("O", ("open-files-in-pager",), attached_only=True),
    "difftool": CommandOption("x", ("extcmd",)),
    "rebase": CommandOption("x", ("exec",), takes="sSX"),
    "fetch": CommandOption("", ("upload-pack",)),
    "pull": CommandOption("", ("upload-pack",)),
    "clone": CommandOption("u", ("upload-pack",), takes="obc"),
    "ls-remote": CommandOption("", ("upload-pack",)),
    "push": CommandOption("", ("receive-pack", "exec"), takes="o"),
    "archive": CommandOption("", ("exec",), takes="o"),
    "send-email": CommandOption("", ("sendmail-cmd", "to-cmd", "cc-cmd", "header-cmd")),
    "filter-branch": CommandOption(
        "",
        ("setup", "env-filter", "tree-filter", "index-filter", "parent-filter", "msg-filter", "commit-filter"),
    ),
}


def _git_config_value(key: str, value: str, cmd: Cmd, w: _Walker) -> Iterator[Hit]:
    """A config value git will run as a command (now with -c, later with `git config`)."""
    key = key.lower()
    if _GIT_CODE_KEY.match(key):
        yield Hit(Risk.HIGH, f"git {key} points git at code that cannot be assessed")
    elif not _GIT_COMMAND_KEY.match(key) or not value.strip():
        return
    elif key.startswith("alias."):
        if value.startswith("!"):  # a shell alias; others are git subcommands
            yield from w.run_string(value[1:], None, cmd)
    elif key.endswith(".helper") and not value.startswith("!") and "/" not in value:
        return  # `store`, `cache --timeout=60`: git runs its own git-credential-<name>
    elif key == "core.gitproxy":
        yield from w.run_string(value.split(" for ")[0].lstrip("!"), None, cmd)
    else:
        yield from w.run_string(value.lstrip("!"), None, cmd)


def _git_commands(cmd: Cmd, w: _Walker, globals_: list[str], verb: str, rest: list[str]) -> Iterator[Hit]:
    """Config given with -c/--config-env and subcommands that run a command named on the line."""
    for setting in option_values(globals_, "c", takes="C"):
        key, _, value = setting.partition("=")
        yield from _git_config_value(key, value, cmd, w)
    for setting in option_values(globals_, "", ("config-env",)):
        key = setting.split("=", 1)[0].lower()
        if _GIT_COMMAND_KEY.match(key) or _GIT_CODE_KEY.match(key):
            yield Hit(Risk.HIGH, f"git {key} is taken from an environment variable, so it cannot be assessed")
    if option_values(globals_, "", ("exec-path",), attached_only=True):
        yield Hit(Risk.HIGH, "git --exec-path runs git subcommands from another directory")
    if verb in _GIT_COMMAND_SUBOPTIONS:
        spec = _GIT_COMMAND_SUBOPTIONS[verb]
        for value in option_values(rest, spec.short, spec.long, takes=spec.takes, attached_only=spec.attached_only):
            yield from w.run_string(value, None, cmd)
    elif verb == "config":
        _, _, i = split_options(rest, "f", ("file", "blob", "type", "default", "comment", "value"))
        operands = rest[i:]
        operands = operands[1:] if operands[:1] in (["set"], ["--add"]) else operands
        if len(operands) >= 2:
            yield from _git_config_value(operands[0], operands[1], cmd, w)
    elif verb == "bisect" and rest[:1] == ["run"] and len(rest) > 1:
        yield from w.run_argv(rest[1:], cmd)
    elif verb == "submodule" and "foreach" in rest:
        tail = [a for a in rest[rest.index("foreach") + 1 :] if a not in {"--recursive", "-q", "--quiet"}]
        if tail:
            yield from w.run_string(" ".join(tail), None, cmd)


def _at(cmd: Cmd, w: _Walker) -> Iterator[Hit]:
    """at/batch read the commands to schedule from stdin (or -f FILE); atd runs them later."""
    opts, _, _ = split_options(cmd.args, "qfMmt")
    if opts & {"l", "c", "d", "r", "V", "h", "help", "version"}:
        return  # list, show or remove jobs
    if "f" in opts:
        yield Hit(Risk.HIGH, "schedules the commands of a file, which cannot be assessed")
        return
    yield Hit(Risk.HIGH, "schedules commands read from its input, which cannot be assessed")
    if cmd.stdin == "here" and cmd.stdin_text is not None:
        yield from w.run_string(cmd.stdin_text, None, cmd)


def _script(cmd: Cmd, w: _Walker) -> Iterator[Hit]:
    opts, _, _ = split_options(cmd.args, "IOBTmEo", ("log-in", "log-out", "log-io", "log-timing", "echo"))
    if opts & {"c", "command", "V", "version", "h", "help"}:
        yield from _command_options(cmd, w)
        return
    yield Hit(Risk.HIGH, "starts a shell the command hook cannot see into", Trait.NESTED_SHELL)


def _make(cmd: Cmd, _w: _Walker) -> Iterator[Hit]:
    opts, _, _ = split_options(cmd.args, "CEfIjlowW", ("file", "makefile", "eval", "directory", "include-dir"))
    if opts & {"E", "eval"}:
        yield Hit(Risk.MODERATE, "runs make code given on the command line", Trait.INLINE_CODE)
    elif opts & {"f", "file", "makefile"}:
        yield Hit(Risk.MODERATE, "runs the recipes of a makefile", Trait.SCRIPT_FILE)


def _bind(cmd: Cmd, w: _Walker) -> Iterator[Hit]:
    """`bind -x 'KEYSEQ: COMMAND'` runs COMMAND whenever the key is pressed."""
    for spec in option_values(cmd.args, "x", takes="mfqur"):
        m = re.match(r'\s*("(?:[^"\\]|\\.)*"|[^:]*)\s*:\s*(.*)$', spec, re.S)
        command = m.group(2).strip() if m else ""
        if len(command) > 1 and command[0] == command[-1] and command[0] in "\"'":
            command = command[1:-1]
        if not m:
            yield Hit(Risk.HIGH, "binds a key to a command that cannot be assessed")
        elif command:
            yield from w.run_string(command, None, cmd)


def _complete(cmd: Cmd, w: _Walker) -> Iterator[Hit]:
    """complete/compgen -C CMD and -F FUNC run code when completing; -W words are expanded then."""
    takes = "oAGWXPSCF"
    for value in option_values(cmd.args, "CF", takes=takes):
        yield from w.run_string(value, None, cmd)
    for words in option_values(cmd.args, "W", takes=takes):
        if "$" in words or "`" in words:
            yield from w.run_string(f"echo {words}", None, cmd)


def _newgrp(cmd: Cmd, _w: _Walker) -> Iterator[Hit]:
    yield Hit(Risk.HIGH, "starts a shell with another group", Trait.NESTED_SHELL)


def _sg(cmd: Cmd, w: _Walker) -> Iterator[Hit]:
    """`sg GROUP [-c] COMMAND` runs COMMAND with /bin/sh -c; without one it starts a shell."""
    args = [a for a in cmd.args if a != "-"]
    rest = [a for a in args[1:] if a != "-c"]
    if rest:
        yield from w.run_string(" ".join(rest), None, cmd)
    elif args:
        yield Hit(Risk.HIGH, "starts a shell with another group", Trait.NESTED_SHELL)


_PARALLEL_SEPARATORS = {":::", "::::", ":::+", "::::+"}


_PARALLEL_VALUE_OPTIONS = tuple(
    "arg-file colsep delimiter jobs joblog results tmpdir workdir wd sshlogin sshloginfile timeout delay retries"
    " halt env replace max-args max-lines block memfree load nice tagstring header basefile return transfer-file"
    " ssh compress-program decompress-program shebang eof max-chars termseq limit".split()
)


def _parallel_command(args: list[str]) -> tuple[list[str], int]:
    """(the command words of a GNU parallel line, index of its first ::: / :::: separator)."""
    sep = next((k for k, a in enumerate(args) if a in _PARALLEL_SEPARATORS), len(args))
    _, _, i = split_options(args[:sep], "aCdEIjlLnNPsSW", _PARALLEL_VALUE_OPTIONS)
    return args[i:sep], sep


def _parallel(cmd: Cmd, w: _Walker) -> Iterator[Hit]:
    """GNU parallel runs `COMMAND ARG` through a shell for each input argument; with no command,
    each argument is itself a command."""
    yield from _command_options(cmd, w)
    args = cmd.args
    command, sep = _parallel_command(args)
    if command:
        text = " ".join(command)
        yield from w.run_string(text, None, cmd, input_marker="{" if "{" in text else "")
    elif args[sep : sep + 1] == [":::"]:
        for a in args[sep + 1 :]:
            if a not in _PARALLEL_SEPARATORS:
                yield from w.run_string(a, None, cmd)
    elif cmd.stdin == "here" and cmd.stdin_text is not None:
        yield from w.run_string(cmd.stdin_text, None, cmd)
    elif cmd.stdin != "pipe":  # a pipe is judged with the rest of the pipeline
        yield Hit(Risk.HIGH, "runs commands read from its input, which cannot be assessed")


def _socat(cmd: Cmd, w: _Walker) -> Iterator[Hit]:
    """socat EXEC:/SYSTEM: addresses run a command."""
    for a in cmd.args:
        kind, _, rest = a.partition(":")
        if kind.upper() in {"EXEC", "SYSTEM"} and rest:
            yield from w.run_string(rest.split(",")[0].strip("\"'"), None, cmd)


# ---- tampering with the terminal's command hook


def _trap(cmd: Cmd, w: _Walker) -> Iterator[Hit]:
    if cmd.args[:1] in (["-p"], ["-l"]) or not cmd.args:
        return
    args = cmd.args[1:] if cmd.args[0] == "--" else cmd.args
    signals = {re.sub(r"^SIG", "", a.upper()) for a in args}
    if "DEBUG" in signals:
        yield Hit(Risk.DANGEROUS, "replaces or removes the DEBUG trap that runs the terminal's command hook")
    elif len(args) > 1 and args[0] not in {"-", ""}:  # the action runs later, when the signal comes
        yield from w.run_string(args[0], None, cmd)


def _mapfile(cmd: Cmd, w: _Walker) -> Iterator[Hit]:
    # mapfile/readarray -C CALLBACK: bash runs the callback as a command string.
    args, i = cmd.args, 0
    while i < len(args) and args[i].startswith("-") and args[i] not in ("-", "--"):
        a = args[i]
        for j, ch in enumerate(a[1:], 1):
            if ch in "dnOsucC":
                value = a[j + 1 :]
                if not value:
                    i += 1
                    value = args[i] if i < len(args) else ""
                if ch == "C":
                    yield from w.run_string(value, None, cmd)
                break
        i += 1


def _shopt(cmd: Cmd, _w: _Walker) -> Iterator[Hit]:
    opts, _, i = split_options(cmd.args)
    if "u" in opts and {"extdebug", "functrace"} & set(cmd.args[i:]):
        yield Hit(Risk.DANGEROUS, "turns off extdebug/functrace that the terminal's command hook needs")


def _set(cmd: Cmd, _w: _Walker) -> Iterator[Hit]:
    args = cmd.args
    for n, a in enumerate(args):
        if a.startswith("+") and "T" in a and a != "+o" or (a == "+o" and args[n + 1 : n + 2] == ["functrace"]):
            yield Hit(Risk.DANGEROUS, "turns off functrace that the terminal's command hook needs")
            return
        if a == "+o" and args[n + 1 : n + 2] == ["history"]:
            yield Hit(Risk.MODERATE, "turns off the shell history")


def _unset(cmd: Cmd, _w: _Walker) -> Iterator[Hit]:
    _, _, i = split_options(cmd.args)
    if any(_HOOK_NAME.match(a) for a in cmd.args[i:]):
        yield Hit(Risk.DANGEROUS, "unsets the terminal's command hook")


def _declare(cmd: Cmd, w: _Walker) -> Iterator[Hit]:
    opts, _, i = split_options(cmd.args)
    operands = cmd.args[i:]
    printing = bool(opts) and opts <= {"p", "f", "F"} and not any("=" in a for a in operands)
    if not printing and any(_HOOK_NAME.match(_base_name(a.split("=")[0])) for a in operands):
        yield Hit(Risk.DANGEROUS, f"{cmd.name} changes the terminal's command hook variables or functions")
    elif "n" in opts and cmd.name in {"declare", "typeset", "local"}:
        yield from _namerefs(cmd.name, operands)
    elif not printing:
        yield from _assignments(cmd, w, operands, 1 + i)


def _namerefs(builtin: str, operands: list[str]) -> Iterator[Hit]:
    """`declare -n ref=GIT_PAGER`: later assignments to ref set GIT_PAGER, out of the rules' sight."""
    for operand in operands:
        name, eq, target = operand.partition("=")
        target = _base_name(target)
        if _HOOK_NAME.match(target):
            yield Hit(Risk.DANGEROUS, f"{builtin} -n makes {name} another name for {target}, a variable of the "
                      "terminal's command hook")
        elif not eq:
            yield Hit(Risk.HIGH, f"{builtin} -n {name} without a target takes its target from the next assignment, "
                      "which cannot be assessed")
        elif _dynamic(target) or _names_code(target):
            yield Hit(Risk.HIGH, f"{builtin} -n makes {name} another name for {target}, so what is later assigned "
                      "to it cannot be assessed")


# ---- variables that name commands or code: programs act on them later, out of the line's sight

# Programs run these values through a shell (git runs `$GIT_PAGER` with `sh -c`).
_COMMAND_VARS = {
    "PAGER", "MANPAGER", "GIT_PAGER", "SYSTEMD_PAGER", "PSQL_PAGER", "BAT_PAGER", "DELTA_PAGER", "GH_PAGER",
    "AWS_PAGER", "EDITOR", "VISUAL", "GIT_EDITOR", "GIT_SEQUENCE_EDITOR", "SUDO_EDITOR", "SYSTEMD_EDITOR", "FCEDIT",
    "GH_EDITOR", "KUBE_EDITOR", "SVN_EDITOR", "HGEDITOR", "PSQL_EDITOR", "LESSEDIT", "GIT_SSH_COMMAND", "RSYNC_RSH",
    "RSYNC_CONNECT_PROG", "CVS_RSH", "SVN_SSH", "BROWSER", "GH_BROWSER", "GIT_EXTERNAL_DIFF", "LESSOPEN", "LESSCLOSE",
}
# Programs run the program these values name (as one word, without a shell).
_PROGRAM_VARS = {"GIT_SSH", "GIT_ASKPASS", "SSH_ASKPASS", "SUDO_ASKPASS", "GIT_PROXY_COMMAND"}
# Every program started (or every shell, git or apt) loads code from what these name.
_LOADER_VARS = {"LD_PRELOAD", "LD_AUDIT", "LD_LIBRARY_PATH", "BASH_ENV", "ENV", "GCONV_PATH", "GIT_EXEC_PATH",
                "GIT_TEMPLATE_DIR", "GIT_CONFIG", "GIT_CONFIG_GLOBAL", "GIT_CONFIG_SYSTEM", "APT_CONFIG"}
# Interpreters (and make) load code from what these name (running them on files is already a trait).
_INTERPRETER_VARS = {"PYTHONSTARTUP", "PYTHONPATH", "PYTHONHOME", "PERL5OPT", "PERL5LIB", "PERLLIB", "RUBYOPT",
                     "RUBYLIB", "NODE_OPTIONS", "NODE_PATH", "LUA_INIT", "LUA_INIT_5_1", "LUA_INIT_5_2", "LUA_INIT_5_3",
                     "LUA_INIT_5_4", "JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "JDK_JAVA_OPTIONS", "MAKEFLAGS", "MAKEFILES"}
# Options a program reads from the environment as if they were on its command line.
_OPTION_VARS = {"MANOPT": "man", "TAR_OPTIONS": "tar", "LESS": "less", "SYSTEMD_LESS": "less"}
# bash itself expands these (prompts, the mail message) each time, running any $(...) in them.
_PROMPT_VARS = {"PS0", "PS1", "PS2", "PS3", "PS4", "MAILPATH"}
_GIT_CONFIG_ENV = re.compile(r"^GIT_CONFIG_(KEY|VALUE)_\d+$")


def _base_name(name: str) -> str:
    """`PAGER[0]` -> `PAGER`, `GIT_PAGER+` -> `GIT_PAGER`."""
    return name.split("[", 1)[0].rstrip("+")


def _names_code(name: str) -> bool:
    """A variable whose value names a command or code that programs (or bash) run."""
    return (name in _COMMAND_VARS | _PROGRAM_VARS | _LOADER_VARS | _INTERPRETER_VARS | _OPTION_VARS.keys()
            | _PROMPT_VARS | {"PATH", "GIT_CONFIG_PARAMETERS", "BASH_CMDS", "BASH_ALIASES"}
            or bool(_GIT_CONFIG_ENV.match(name)))


def _assignment_hits(name: str, value: str, word, cmd: Cmd, w: _Walker) -> Iterator[Hit]:
    """Setting `name` to `value` (`NAME=v cmd`, `export NAME=v`, `env NAME=v cmd`): the risk of
    what programs will later run or load because of it. Pagers, editors and the like are judged
    by the command they name, so `GIT_PAGER=cat git log` stays SAFE."""
    if name == "GIT_CONFIG_PARAMETERS":
        yield from _git_config_parameters(value, cmd, w)
    elif name in _COMMAND_VARS:
        if value.strip():
            text = value.lstrip("-|").replace("%s", "FILE") if name.startswith("LESS") else value
            yield from w.run_string(text, word, cmd)
    elif name in _PROGRAM_VARS and value.strip():
        yield from w.run_argv([value], cmd)
    elif name in _LOADER_VARS and value not in {"", "/dev/null"}:
        yield Hit(Risk.HIGH, f"{name} makes programs load code from a file, which cannot be assessed",
                  Trait.SCRIPT_FILE)
    elif name in _INTERPRETER_VARS and value:
        yield Hit(Risk.MODERATE, f"{name} makes interpreters load code from elsewhere", Trait.SCRIPT_FILE)
    elif name in _OPTION_VARS and value.strip():
        yield from _option_variable(_OPTION_VARS[name], value, cmd, w)
    elif name in _PROMPT_VARS and re.search(r"\$\(|`|\$\{", value):
        yield from w.run_string('echo "' + value.replace("\\", "\\\\").replace('"', '\\"') + '"', None, cmd)
    elif name in {"BASH_CMDS", "BASH_ALIASES"}:
        yield Hit(Risk.HIGH, f"{name} changes which program or alias a command name runs")
        compound = re.fullmatch(r"\$\(: (.*)\)", value, re.S)  # NAME=(...), as _rewrite leaves it
        for element in _split_words(compound.group(1)) if compound else []:
            key, eq, element_value = element.partition("=")
            if eq and key.startswith("["):
                yield from _element_hits(name, element_value, None, cmd, w)
    elif name == "PATH" and not all(_system_path_entry(entry) for entry in _path_entries(value)):
        yield Hit(Risk.MODERATE, "makes commands be found in a folder of ordinary files, so a plain name can run "
                  "a program or script from it", Trait.SCRIPT_FILE)
    elif _GIT_CONFIG_ENV.match(name):
        yield Hit(Risk.HIGH, f"{name} sets git configuration, which can name commands git runs")
        if name.startswith("GIT_CONFIG_VALUE_") and value.strip():
            yield from w.run_string(value.lstrip("!"), word, cmd)


def _split_words(text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError:
        return text.split()


def _option_variable(program: str, value: str, cmd: Cmd, w: _Walker) -> Iterator[Hit]:
    """MANOPT, TAR_OPTIONS, LESS: options the program takes from the environment."""
    if program == "less":
        yield from _less_command_options([value.strip()] if value.lstrip().startswith("+") else
                                         re.findall(r"(?:^|\s)(\+.*?)(?=\$|$)", value), cmd, w)
        return
    yield from w.run_argv([program, *_split_words(value)], cmd)


def _path_entries(value: str) -> list[str]:
    """PATH's folders, with `${PATH:+$PATH:}`-style idioms read as `$PATH`."""
    value = re.sub(r"\$\{PATH:\+(:?)\$\{?PATH\}?(:?)\}", r"\1$PATH\2", value)
    return value.split(":")


def _system_path_entry(entry: str) -> bool:
    """A PATH entry that adds no folder of ordinary files (an empty entry means the current one)."""
    if entry in {"$PATH", "${PATH}"}:
        return True
    if not entry.startswith("/"):
        return False
    entry = posixpath.normpath(entry)
    return entry in {"/bin", "/sbin", "/usr", "/opt", "/snap/bin"} or entry.startswith(
        ("/bin/", "/usr/", "/sbin/", "/opt/"))


def _git_config_parameters(value: str, cmd: Cmd, w: _Walker) -> Iterator[Hit]:
    """git's own format is `'key'='value' ...`; bashlex has already dropped those inner quotes, so
    entries are split where a new `key=` begins."""
    yield Hit(Risk.HIGH, "GIT_CONFIG_PARAMETERS sets git configuration, which can name commands git runs")
    for entry in re.split(r"\s+(?=['\"]?[A-Za-z][\w.-]*['\"]?=)", value.strip()):
        key, _, config_value = entry.partition("=")
        yield from _git_config_value(key.strip("'\""), config_value.strip("'\""), cmd, w)


def _variables_from_input(names: Iterable[str]) -> Iterator[Hit]:
    """`read NAME`, `printf -v NAME`, `mapfile NAME`, `for NAME; do`: the value is unknown when the
    line is judged."""
    for name in names:
        base = _base_name(name)
        if _HOOK_NAME.match(base):
            yield Hit(Risk.DANGEROUS, f"sets {name}, a variable of the terminal's command hook")
        elif _names_code(base):
            yield Hit(Risk.HIGH, f"sets {name}, which names a command or code that programs run, to a value "
                      "that cannot be assessed")
        elif _dynamic(name):
            yield Hit(Risk.HIGH, f"sets the variable {name}, whose name is computed at run time")


def _read(cmd: Cmd, _w: _Walker) -> Iterator[Hit]:
    _, _, i = split_options(cmd.args, "adinNptu")
    array = option_values(cmd.args, "a", takes="dinNptu")
    yield from _variables_from_input([*cmd.args[i:], *array])


def _printf(cmd: Cmd, _w: _Walker) -> Iterator[Hit]:
    first = cmd.args[:1]
    if first == ["-v"]:
        yield from _variables_from_input(cmd.args[1:2])
    elif first and first[0].startswith("-v") and len(first[0]) > 2:
        yield from _variables_from_input([first[0][2:]])


def _mapfile_variable(cmd: Cmd, _w: _Walker) -> Iterator[Hit]:
    """mapfile/readarray fill the array named by their first operand (MAPFILE without one)."""
    _, _, i = split_options(cmd.args, "dnOsucC")
    yield from _variables_from_input(cmd.args[i : i + 1])


def _getopts(cmd: Cmd, _w: _Walker) -> Iterator[Hit]:
    yield from _variables_from_input(cmd.args[1:2])


def _assignments(cmd: Cmd, w: _Walker, operands: list[str], first: int) -> Iterator[Hit]:
    """`_assignment_hits` for the NAME=value operands of export/declare/env (argv from `first`)."""
    for n, operand in enumerate(operands):
        name, eq, value = operand.partition("=")
        if not eq:
            continue
        word = cmd.words[first + n] if len(cmd.words) > first + n else None
        if _dynamic(name) or (word is not None and _has_expansion(word) and _dynamic(
                w.text_of(word).partition("=")[0])):
            yield Hit(Risk.HIGH, f"sets a variable whose name is computed at run time ({name}), so what it "
                      "sets cannot be assessed")
        elif "[" in name:
            yield from _element_hits(_base_name(name), value, word, cmd, w)
        else:
            yield from _assignment_hits(name.rstrip("+"), value, word, cmd, w)


def _element_hits(name: str, value: str, word, cmd: Cmd, w: _Walker) -> Iterator[Hit]:
    """`NAME[KEY]=value`: arrays are never exported, but bash's own tables are arrays."""
    if _HOOK_NAME.match(name):
        yield Hit(Risk.DANGEROUS, f"assigns {name}, a variable of the terminal's command hook")
    elif name == "BASH_ALIASES" and value.strip():
        yield from w.run_string(value, None, cmd)
    elif name == "BASH_CMDS":
        yield from _hashed_program(value, cmd, w)


def _hashed_program(path: str, cmd: Cmd, w: _Walker) -> Iterator[Hit]:
    """`hash -p PATH NAME` / `BASH_CMDS[NAME]=PATH`: NAME now runs PATH with whatever arguments
    later lines give it, so PATH is judged like a command given arguments from input."""
    yield Hit(Risk.HIGH, f"makes a command name run {path or 'another program'}, so later commands with that "
              "name are not what they seem")
    if path.strip():
        yield from w.run_cmd(Cmd(argv=[path], text=path, top=False, input_args=True))


def _hash(cmd: Cmd, w: _Walker) -> Iterator[Hit]:
    for path in option_values(cmd.args, "p", takes="t"):
        yield from _hashed_program(path, cmd, w)


def _let(cmd: Cmd, _w: _Walker) -> Iterator[Hit]:
    if any(re.search(r"\b(__autobot_|__AUTOBOT_|AUTOBOT_)", a) for a in cmd.args):
        yield Hit(Risk.DANGEROUS, "arithmetic on the terminal's command hook variables")


def _alias(cmd: Cmd, w: _Walker) -> Iterator[Hit]:
    for a in cmd.args:
        name, eq, value = a.partition("=")
        if eq and (_HOOK_NAME.match(name) or name in _HOOK_BUILTINS):
            yield Hit(Risk.DANGEROUS, f"aliases {name}, which the terminal's command hook relies on")
            return
        if eq and value.strip():  # the alias runs later as this text: judge it now
            yield from w.run_string(value, None, cmd)


def _enable(cmd: Cmd, _w: _Walker) -> Iterator[Hit]:
    opts, _, i = split_options(cmd.args, "f")
    if "f" in opts:
        yield Hit(Risk.HIGH, "loads a builtin from a shared object")
    elif "n" in opts and set(cmd.args[i:]) & _HOOK_BUILTINS:
        yield Hit(Risk.DANGEROUS, "disables a builtin the terminal's command hook relies on")
    elif "n" in opts:
        yield Hit(Risk.MODERATE, "disables shell builtins")


# ---- editors and debuggers told what to do on the command line

_VIMS = {"vim", "vi", "nvim", "ex", "view", "vimdiff", "gvim", "rvim", "evim", "gview", "vimx"}
# Ex commands that run programs or code: `:sh`, `:terminal`, the language bindings, `system()`,
# sourcing files, `:make`/`:grep` (which run 'makeprg'/'grepprg').
_VIM_RUNS = re.compile(
    r"^(sh(ell)?|py(thon)?3?|pyx|pythonx|lua|luado|luafile|perl|perldo|rub(y)?|rubydo|mz(scheme)?|tcl"
    r"|tcldo|so(urce)?|runtime|make|lmake|grep|lgrep|call|cex(pr)?|lex(pr)?|cgetexpr|lgetexpr|redir|wviminfo|wshada"
    r"|mksession|mkvimrc|mkview|mkexrc)\b|\b(system|systemlist|jobstart|job_start|term_start|termopen|libcall"
    r"|libcallnr|feedkeys|execute|win_execute|luaeval|py3eval|pyeval|pyxeval|perleval|rubyeval)\s*\("
)
# Ex command prefixes: (full name, shortest abbreviation). Each is followed by another Ex command.
_EX_MODIFIERS = {
    "silent": 3, "unsilent": 3, "keepalt": 5, "keepjumps": 5, "keepmarks": 3, "keeppatterns": 5, "lockmarks": 3,
    "noautocmd": 3, "noswapfile": 3, "verbose": 4, "sandbox": 3, "vertical": 4, "horizontal": 3, "leftabove": 5,
    "aboveleft": 3, "rightbelow": 6, "belowright": 3, "topleft": 2, "botright": 2, "tab": 3, "hide": 3,
    "confirm": 4, "browse": 3, "legacy": 3, "vim9cmd": 4, "windo": 5, "bufdo": 5, "argdo": 5, "tabdo": 5,
    "cdo": 3, "ldo": 3, "cfdo": 4, "lfdo": 4, "filter": 4,
}
# Commands that define what runs later (autocommands, user commands, mappings): the rest is code.
_EX_DEFINES = re.compile(r"^(au(tocmd)?|com(mand)?|[nvxsoilct]?(nore)?m(ap)?|[nvxsoilct]?no(remap)?|"
                         r"[nvxsoilct]?map|map|noremap|ab(breviate)?|[ic]?(nore)?ab(brev)?|fu(nction)?|def)!?$")
# Options whose value is a program Vim runs.
_VIM_PROGRAM_OPTIONS = {"shell", "sh", "makeprg", "mp", "grepprg", "gp", "keywordprg", "kp", "equalprg", "ep",
                        "formatprg", "fp", "shellpipe", "sp", "shellredir", "srr"}
_EX_RANGE = re.compile(r"^(?:[%.$]|\d+|'.|/(?:[^/\\\n]|\\.)*/?|\?(?:[^?\\\n]|\\.)*\??|[-+]\d*|[,;]|\s)*")
_STRING_LITERAL = re.compile(r"'((?:[^']|'')*)'|\"((?:[^\"\\]|\\.)*)\"")


def _ex_abbrev(word: str, table: dict[str, int]) -> str | None:
    return next((full for full, least in table.items() if len(word) >= least and full.startswith(word)), None)


def _vim_operands(args: list[str]) -> list[str]:
    """The files Vim is given (what `%` names in a shell command)."""
    _, _, i = split_options([a for a in args if not a.startswith("+")], "cSsTuUwWiqtr", ("cmd",))
    return [a for a in args if not a.startswith("+")][i:]


def _vim(cmd: Cmd, w: _Walker) -> Iterator[Hit]:
    """vim -c CMD / --cmd CMD / +CMD run Ex commands at start-up; -S FILE sources a script; in Ex
    mode (`-e`, `-es`, `ex`) -s is silent, elsewhere `-s FILE` types the file's keys."""
    ex_mode = cmd.name == "ex" or any(re.fullmatch(r"-[A-Za-z]*[eE][A-Za-z]*", a) for a in cmd.args)
    takes = "iTuUwWrt" + ("" if ex_mode else "s")
    commands = option_values(cmd.args, "c", ("cmd",), takes=takes)
    commands += [a[1:] for a in cmd.args if a.startswith("+") and len(a) > 1 and not a[1:].isdigit()
                 and not a.startswith("+/")]
    files = _vim_operands(cmd.args)
    for text in commands:
        yield from _ex_commands(text, cmd, w, files)
    remote = [a for a in cmd.args if a.startswith("--remote")]
    for value in option_values(cmd.args, "", ("remote-send", "remote-expr"), takes=takes):
        yield from _vim_code(value, cmd, w, files)
    if remote:
        yield Hit(Risk.HIGH, "sends keys or commands to another running Vim, which can run anything", Trait.INLINE_CODE)
    if option_values(cmd.args, "S", takes="ciTuUwWrt") or "-S" in cmd.args or (
            not ex_mode and option_values(cmd.args, "s", takes="ciTuUwWrt")):
        yield Hit(Risk.MODERATE, "runs Vim commands from a script file", Trait.SCRIPT_FILE)
    if cmd.name == "nvim" and option_values(cmd.args, "l", takes="ciTuUwWrs"):
        yield Hit(Risk.MODERATE, "runs a Lua script file", Trait.SCRIPT_FILE)


def _ex_commands(text: str, cmd: Cmd, w: _Walker, files: list[str]) -> Iterator[Hit]:
    """Each Ex command in a -c string, one after another (`|` separates them, except after `!`,
    `:normal`, `:global` and definitions, which take the rest of the line)."""
    for _ in range(64):
        text = _EX_RANGE.sub("", text.lstrip(" \t:"), count=1).lstrip(" \t:")
        if not text:
            return
        if text.startswith("!"):  # `:!cmd`, `:{range}!filter`
            yield from _vim_shell(text[1:], cmd, w, files)
            return
        m = re.match(r"([A-Za-z]+\d*)(!?)\s*", text)
        word, rest = (m.group(1), text[m.end():]) if m else ("", text)
        modifier = _ex_abbrev(word, _EX_MODIFIERS) if word else None
        global_ = re.match(r"^(g(?:l(?:o(?:b(?:al?)?)?)?)?|v(?:g(?:l(?:o(?:b(?:al?)?)?)?)?)?)!?\s*([^\w\s\\\"|])", text)
        if global_:  # `:g/pattern/cmd`: skip the pattern, the rest is the command
            delim, i = global_.group(2), global_.end()
            while i < len(text) and text[i] != delim:
                i += 2 if text[i] == "\\" else 1
            text = text[i + 1 :] or "p"
        elif modifier == "filter":
            text = re.sub(r"^(/(?:[^/\\]|\\.)*/|\S+)\s*", "", rest, count=1)
        elif modifier:
            text = rest
        elif re.fullmatch(r"r(e(ad?)?)?", word) and (m.group(2) or rest.startswith("!")):  # `:r !cmd`, `:r!cmd`
            yield from _vim_shell(rest if m.group(2) else rest[1:], cmd, w, files)
            return
        elif re.fullmatch(r"w(r(i(te?)?)?)?", word) and not m.group(2) and rest.startswith("!"):  # `:w !cmd`
            yield from _vim_shell(rest[1:], cmd, w, files)
            return
        elif re.fullmatch(r"ter(m(i(n(al?)?)?)?)?", word):
            command = re.sub(r"^(\+\+\w+(=\S*)?\s*)*", "", rest)
            yield Hit(Risk.HIGH, "runs :terminal, which starts a program the command hook cannot see into",
                      Trait.NESTED_SHELL)
            if command.strip():
                yield from _vim_shell(command, cmd, w, files)
            return
        elif re.fullmatch(r"norm(al?)?", word):
            yield from _vim_keys(rest, cmd, w, files)
            return
        elif _EX_DEFINES.match(word + m.group(2) if m else ""):
            if rest.strip():
                yield Hit(Risk.HIGH, f"defines Vim commands to run later ({word}), which can start programs",
                          Trait.INLINE_CODE)
                yield from _bang_commands(rest, cmd, w, files)
                yield from _vim_code(rest, cmd, w, files)
            return
        else:
            head, bar, text = _ex_split(text)
            yield from _ex_single(word, head, cmd, w, files)
            if not bar:
                return


def _ex_split(text: str) -> tuple[str, str, str]:
    """(the first command, the `|`, the rest), skipping quoted strings."""
    i, quote = 0, ""
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'" and i and text[i - 1] in " =(,.":
            quote = ch
        elif ch == "|":
            return text[:i], "|", text[i + 1 :]
        i += 1
    return text, "", ""


def _ex_single(word: str, text: str, cmd: Cmd, w: _Walker, files: list[str]) -> Iterator[Hit]:
    """One Ex command that is not a shell escape or a prefix."""
    if re.fullmatch(r"se(t(l(o(c(al?)?)?)?|g(l(o(b(al?)?)?)?)?)?)?", word):
        for option, value in re.findall(r"(\w+)\s*[+^-]?[=:]((?:[^\s\\]|\\.)*)", text):
            if option in _VIM_PROGRAM_OPTIONS and value:
                yield from _vim_shell(re.sub(r"\\(.)", r"\1", value), cmd, w, files)
    option = re.match(r"^let\s+&(?:[lg]:)?(\w+)\s*[.+-]?=\s*(.*)$", text, re.S)
    if option and option.group(1) in _VIM_PROGRAM_OPTIONS:
        yield Hit(Risk.HIGH, f"sets the Vim option {option.group(1)}, a program Vim runs", Trait.INLINE_CODE)
        for literal in _STRING_LITERAL.finditer(option.group(2)):
            yield from _vim_shell(literal.group(1) or literal.group(2) or "", cmd, w, files)
    for backtick in re.findall(r"`([^`=][^`]*)`", text):  # `:e `cmd``: file names from a command
        yield from w.run_string(backtick, None, cmd)
    if _VIM_RUNS.search(text) or re.fullmatch(r"exe(c(u(te?)?)?)?", word):
        yield Hit(Risk.HIGH, f"runs the Vim command {text.strip()!r}, which can start programs or run code",
                  Trait.INLINE_CODE)
        yield from _vim_code(text, cmd, w, files)


def _vim_code(text: str, cmd: Cmd, w: _Walker, files: list[str]) -> Iterator[Hit]:
    """Commands spelled out in string literals: `system('CMD')`, `:exe "!CMD"`."""
    literals = [(m.group(1) or "").replace("''", "'") if m.group(1) is not None else
                re.sub(r"\\(.)", r"\1", m.group(2) or "") for m in _STRING_LITERAL.finditer(text)]
    for call in re.finditer(r"\b(system|systemlist|jobstart|job_start|term_start|termopen|os\.execute"
                            r"|io\.popen|os\.system|os\.popen)\s*\(\s*"
                            r"('(?:[^']|'')*'|\"(?:[^\"\\]|\\.)*\")", text):
        yield from _vim_shell(_ansi_c_dequote(call.group(2)) if call.group(2)[0] == "'" else
                              re.sub(r"\\(.)", r"\1", call.group(2)[1:-1]), cmd, w, files)
    if re.match(r"\s*(exe(c(u(te?)?)?)?|norm(al?)?|feedkeys|call\s+feedkeys)\b", text) and literals:
        yield from _ex_commands("".join(literals), cmd, w, files)
    yield from _bang_commands(text, cmd, w, files)


def _vim_keys(keys: str, cmd: Cmd, w: _Walker, files: list[str]) -> Iterator[Hit]:
    """`:normal KEYS` types KEYS: harmless motions, unless they reach the command line, a filter,
    a macro, 'keywordprg' or an expression register."""
    if not re.search(r"[:!@QK]|<[CcSsAaMm]-|[\x00-\x1f]|gQ|=", keys):
        return
    yield Hit(Risk.HIGH, f"types the Vim keys {keys.strip()!r}, which can start programs or run code",
              Trait.INLINE_CODE)
    for command in re.findall(r":([^\r\n\x0d]*?)(?:<[Cc][Rr]>|<[Ee]nter>|<[Rr]eturn>|\^M|\r|\n|$)", keys):
        yield from _ex_commands(command, cmd, w, files)
    yield from _bang_commands(keys, cmd, w, files)


def _bang_commands(text: str, cmd: Cmd, w: _Walker, files: list[str]) -> Iterator[Hit]:
    """Every `!CMD` in text (keys, mappings, autocommands) judged as a shell command."""
    for m in re.finditer(r"(?<![\w!=~])!+(?![=~])([^\r\n]*?)(?=<[Cc][Rr]>|<[Ee]nter>|\^M|\\r|\\n|[\r\n]|$)", text):
        command = m.group(1).strip().rstrip("\"')")
        if command:
            yield from _vim_shell(command, cmd, w, files)


def _vim_shell(command: str, cmd: Cmd, w: _Walker, files: list[str]) -> Iterator[Hit]:
    """A shell command Vim runs: `%` and `#` stand for the file being edited, `!` for the last command."""
    command = command.lstrip("!")
    if not command.strip():
        yield Hit(Risk.HIGH, "runs a Vim shell command that cannot be assessed", Trait.INLINE_CODE)
        return
    if files:
        command = re.sub(r"(?<!\\)[%#](<|\d+)?(:[a-zA-Z~.]|:s[^:]*)*", shlex.quote(files[0]).replace("\\", r"\\"),
                         command)
    yield from w.run_string(command, None, cmd)


# gdb commands that run code: the language bindings, sourcing files, calling functions in the program.
_GDB_RUNS = re.compile(
    r"^(python|py|pi|python-interactive|guile|gu|guile-repl|gr|source|call|print|p|inspect|compile|expression"
    r"|jit-reader-load|def(i(ne?)?)?|doc(u(m(e(nt?)?)?)?)?|ali(as?)?|eval)\b"
)
_GDB_VALUES = ("ex", "eval-command", "iex", "init-eval-command", "command", "init-command", "ix", "pid", "core",
               "directory", "cd", "symbols", "exec", "se", "tty", "data-directory")


def _gdb(cmd: Cmd, w: _Walker) -> Iterator[Hit]:
    """gdb runs `shell CMD`/`!CMD`/`pipe`/`make` given with -ex, scripts with -x, its program with
    `run` (or `--args`), and can attach to a process."""
    # gdb takes its long options with one dash or two: `-ex`, `--ex`, `-eval-command=...`.
    args = ["-" + a if re.match(r"^-[a-z][a-z-]+", a) else a for a in cmd.args]
    program: list[str] = []
    if "--args" in args:
        rest = args[args.index("--args") + 1 :]
        program = rest[split_options(rest, "xpcdseblD", _GDB_VALUES)[2] :]
    else:
        operands = args[split_options(args, "xpcdseblD", _GDB_VALUES)[2] :]
        program = operands[:1]
    run: str | None = "" if "--args" in args else None
    for text in option_values(args, "", ("ex", "eval-command", "iex", "init-eval-command"), takes="xpcdseblD"):
        for hit_or_run in _gdb_command(text, cmd, w):
            if isinstance(hit_or_run, Hit):
                yield hit_or_run
            elif hit_or_run[0] == "file":
                program = [hit_or_run[1], *program[1:]]
            else:
                run = hit_or_run[1]
    if run is not None and program:
        if run.strip():  # gdb starts the program through a shell: `run ARGS` is shell text
            yield from w.run_string(f"{shlex.quote(program[0])} {run}", None, cmd)
        else:
            yield from w.run_argv(program, cmd)
    if option_values(args, "x", ("command", "init-command", "ix"), takes="pcd"):
        yield Hit(Risk.MODERATE, "runs gdb commands from a script file", Trait.SCRIPT_FILE)
    if option_values(args, "p", ("pid",), takes="xcd"):
        yield Hit(Risk.HIGH, "attaches a debugger to a running process, which can then run any code inside it")


def _gdb_command(text: str, cmd: Cmd, w: _Walker):
    """Hits for one gdb command, and ("run", ARGS) / ("file", PROGRAM) for what it starts."""
    text = text.strip()
    with_ = re.match(r"^w(i(th?)?)?\s+.*?\s--\s*(.*)$", text, re.S)
    if with_:  # `with SETTING -- COMMAND`
        yield from _gdb_command(with_.group(3), cmd, w)
        return
    m = re.match(r"^(!|\||[A-Za-z][\w-]*)\s*(.*)$", text, re.S)
    word, rest = (m.group(1), m.group(2)) if m else ("", text)
    if word == "!" or (len(word) >= 3 and "shell".startswith(word)):
        yield from w.run_string(rest, None, cmd) if rest.strip() else iter(
            [Hit(Risk.HIGH, "gdb shell starts an interactive shell", Trait.NESTED_SHELL)])
    elif word in {"|", "pipe"}:
        delim = re.match(r"^-d\s+(\S+)\s*(.*)$", rest, re.S)
        sep, body = (delim.group(1), delim.group(2)) if delim else ("|", rest)
        yield Hit(Risk.HIGH, "gdb pipe sends output to a shell command", Trait.INLINE_CODE)
        if sep in body:
            yield from w.run_string(body.split(sep, 1)[1], None, cmd)
    elif len(word) >= 3 and "make".startswith(word):
        yield from w.run_string(f"make {rest}", None, cmd)
    elif word in {"r", "run", "start", "starti"}:
        yield ("run", rest)
    elif word in {"file", "exec-file"} and rest.strip():
        yield ("file", rest.strip())
    elif _GDB_RUNS.match(text) or re.match(r"^(output|printf|dprintf|set|x|display|echo)\b.*\w\s*\(", text, re.S):
        yield Hit(Risk.HIGH, f"runs the gdb command {text!r}, which can run code", Trait.INLINE_CODE)
        if word == "eval":
            literal = _STRING_LITERAL.search(rest)
            if literal:
                yield from _gdb_command(re.sub(r"\\(.)", r"\1", literal.group(2) or literal.group(1) or ""), cmd, w)
    for call in re.finditer(r"\b(system|popen|execl\w*|execv\w*)\s*\(\s*\"((?:[^\"\\]|\\.)*)\"", text):
        yield from w.run_string(re.sub(r"\\(.)", r"\1", call.group(2)), None, cmd)


def _lldb(cmd: Cmd, w: _Walker) -> Iterator[Hit]:
    """lldb -o/-O/-k COMMAND: `platform shell CMD` runs CMD, `script` runs Python; -s FILE sources."""
    values = option_values(cmd.args, "oOkK", ("one-line", "one-line-before-file", "one-line-on-crash"),
                           takes="sSfcpna")
    for text in values:
        shell = re.match(r"^\s*pla?(t(f(o(rm?)?)?)?)?\s+sh(e(ll?)?)?\s+(?:-\S+\s+)*(?P<command>.*)$", text, re.S)
        if shell and shell.group("command").strip():
            yield from w.run_string(shell.group("command"), None, cmd)
        elif re.match(r"^\s*(scr(i(pt?)?)?|co(m(m(a(nd?)?)?)?)?\s+(scr|so)|expr?|p|po|call)\b", text):
            yield Hit(Risk.HIGH, f"runs the lldb command {text!r}, which can run code", Trait.INLINE_CODE)
    if option_values(cmd.args, "sS", ("source", "source-before-file", "source-on-crash"), takes="oOkKfcpna"):
        yield Hit(Risk.MODERATE, "runs lldb commands from a script file", Trait.SCRIPT_FILE)


# ---- database clients given statements that run shell commands

# mysql/mariadb `system CMD` / `\! CMD`; psql `\! CMD`, `\o |CMD`, `\g |CMD`, `\copy … program 'CMD'`;
# sqlite3 `.shell CMD`, `.system CMD`, `.output |CMD`, `.once |CMD`.
_CLIENT_SHELL = re.compile(r"(?:^|[;\n])\s*(?:system|\\!|\.(?:shell|system))[ \t]+(?P<command>[^;\n]*)", re.I)
_CLIENT_PIPE = re.compile(r"(?:\\[og]|\.(?:output|once))\s*\|\s*(?P<command>[^;\n]*)")
_CLIENT_PROGRAM = re.compile(r"\bprogram\s+'(?P<command>(?:[^']|'')*)'", re.I)


def _client_statements(statements: Iterable[str], cmd: Cmd, w: _Walker) -> Iterator[Hit]:
    for text in statements:
        for pattern in (_CLIENT_SHELL, _CLIENT_PIPE, _CLIENT_PROGRAM):
            for m in pattern.finditer(text):
                command = m.group("command").strip().replace("''", "'")
                if command:
                    yield from w.run_string(command, None, cmd)


def _mysql(cmd: Cmd, w: _Walker) -> Iterator[Hit]:
    yield from _client_statements(option_values(cmd.args, "e", ("execute",), takes="uhPpSDA"), cmd, w)
    yield from _command_options(cmd, w)  # --pager=CMD


def _psql(cmd: Cmd, w: _Walker) -> Iterator[Hit]:
    yield from _client_statements(option_values(cmd.args, "c", ("command",), takes="dfhLopPTUvFRU"), cmd, w)


def _sqlite3(cmd: Cmd, w: _Walker) -> Iterator[Hit]:
    """sqlite3 [OPTIONS] DB [SQL...]: the SQL operands and -cmd values are dot commands or SQL."""
    values = option_values([("-" + a if re.match(r"^-[a-z]{2,}", a) else a) for a in cmd.args], "",
                           ("cmd", "init"))
    operands = [a for a in cmd.args if not a.startswith("-")][1:]
    yield from _client_statements([*values, *operands], cmd, w)


def _zip(cmd: Cmd, w: _Walker) -> Iterator[Hit]:
    """zip -TT CMD (also --unzip-command) tests the archive by running CMD."""
    for n, a in enumerate(cmd.args):
        if a == "-TT" and n + 1 < len(cmd.args):
            yield from w.run_string(cmd.args[n + 1], None, cmd)
        elif a.startswith("-TT") and len(a) > 3:
            yield from w.run_string(a[3:], None, cmd)
    yield from _command_options(cmd, w)


# ---- shells and interpreters

_SHELLS = {"bash", "sh", "zsh", "dash", "ksh", "mksh", "ash", "fish", "csh", "tcsh", "rbash", "yash"}


def _shell(cmd: Cmd, w: _Walker) -> Iterator[Hit]:
    opts, _, i = split_options(cmd.args, "oO", ("rcfile", "init-file"))
    if opts & {"version", "help"}:
        return
    operands, words = cmd.args[i:], cmd.words[1 + i :] if cmd.words else []
    if "c" in opts:
        if operands:
            yield from w.run_string(operands[0], words[0] if words else None, cmd)
        return
    if operands and operands[0] not in {"-", "/dev/stdin"} and "s" not in opts:
        yield from _script_operand(words[0] if words else None, w)
        return
    yield from _stdin_code(cmd, w, shell=True)


def _script_operand(word, w: _Walker) -> Iterator[Hit]:
    names = w.substitution_names(word)
    if names & _DOWNLOADERS:
        yield Hit(Risk.DANGEROUS, "runs a script downloaded from the network")
    elif names & _DECODERS:
        yield Hit(Risk.DANGEROUS, "runs a decoded (obfuscated) script")
    else:
        yield Hit(Risk.MODERATE, "runs a script file", Trait.SCRIPT_FILE)


def _stdin_code(cmd: Cmd, w: _Walker, *, shell: bool) -> Iterator[Hit]:
    """A shell or interpreter that reads its program from stdin."""
    if cmd.stdin == "here" and cmd.stdin_text is not None:
        if shell:
            yield from w.run_string(cmd.stdin_text, None, cmd)
        else:
            yield Hit(Risk.MODERATE, "runs inline code from a here-document", Trait.INLINE_CODE)
    elif cmd.stdin == "file":
        yield Hit(Risk.MODERATE, "runs a script file", Trait.SCRIPT_FILE)
    elif cmd.stdin == "pipe":
        pass  # judged with the rest of the pipeline (see _Walker.pipeline)
    elif shell:
        yield Hit(Risk.HIGH, "starts an interactive shell that escapes the command hook", Trait.NESTED_SHELL)
    else:
        yield Hit(Risk.MODERATE, "starts an interactive interpreter that escapes the command hook", Trait.NESTED_SHELL)


@dataclass(frozen=True)
class Interpreter:
    lang: str
    inline: frozenset[str]  # options whose value is code
    values: str = ""  # short options taking a value
    info: frozenset[str] = frozenset({"V", "v", "version", "h", "help"})


_INTERPRETERS = {
    "python": Interpreter("Python", frozenset({"c"}), "WXQ", frozenset({"V", "version", "h", "help"})),
    "pypy": Interpreter("Python", frozenset({"c"}), "WXQ", frozenset({"V", "version", "h", "help"})),
    "perl": Interpreter("Perl", frozenset({"e", "E"}), "IMmx"),
    "ruby": Interpreter("Ruby", frozenset({"e"}), "Ir"),
    "node": Interpreter("JavaScript", frozenset({"e", "eval", "p", "print"}), "r"),
    "nodejs": Interpreter("JavaScript", frozenset({"e", "eval", "p", "print"}), "r"),
    "php": Interpreter("PHP", frozenset({"r"}), "cdz"),
    "lua": Interpreter("Lua", frozenset({"e"}), "l"),
    "Rscript": Interpreter("R", frozenset({"e"})),
    "osascript": Interpreter("AppleScript", frozenset({"e"})),
    "pwsh": Interpreter("PowerShell", frozenset({"c", "Command", "command"})),
    "tclsh": Interpreter("Tcl", frozenset()),
    "julia": Interpreter("Julia", frozenset({"e"})),
    "irb": Interpreter("Ruby", frozenset()),
    "ipython": Interpreter("Python", frozenset({"c"})),
}


def _interpreter(cmd: Cmd, w: _Walker) -> Iterator[Hit]:
    spec = _INTERPRETERS[cmd.name]
    args = cmd.args
    for n, a in enumerate(args):
        if not a.startswith("-") or a in {"-", "--"}:
            break
        key = a.lstrip("-")
        if key in spec.info and n == 0:
            return
        if key == "m" or a.startswith("-m") and spec.lang == "Python":
            module = a[2:] or (args[n + 1] if n + 1 < len(args) else "")
            if module == "pip":
                yield from _package_manager(Cmd(argv=["pip", *args[n + 2 :]], text=cmd.text), w)
            else:
                yield Hit(Risk.MODERATE, f"runs the {spec.lang} module {module}", Trait.SCRIPT_FILE)
            return
        if key in spec.inline or (not a.startswith("--") and _cluster_has(a[1:], spec)):
            yield Hit(Risk.MODERATE, f"runs inline {spec.lang} code", Trait.INLINE_CODE)
            return
    _, _, i = split_options(args, spec.values)
    if i < len(args) and args[i] not in {"-", "/dev/stdin"}:
        yield from _script_operand(cmd.words[1 + i] if cmd.words else None, w)
    else:
        yield from _stdin_code(cmd, w, shell=False)


def _cluster_has(letters: str, spec: Interpreter) -> bool:
    """Does a short-option cluster such as -ne contain an inline-code option?"""
    for ch in letters:
        if ch in spec.inline:
            return True
        if ch in spec.values:
            return False
    return False


def _source(cmd: Cmd, w: _Walker) -> Iterator[Hit]:
    if not cmd.args:
        return
    yield from _script_operand(cmd.words[1] if cmd.words else None, w)


def _awk(cmd: Cmd, _w: _Walker) -> Iterator[Hit]:
    opts, vals, i = split_options(cmd.args, "fvFW", ("file", "assign", "field-separator"))
    if "f" in opts or "file" in opts:
        yield Hit(Risk.MODERATE, "runs an awk program file", Trait.SCRIPT_FILE)
    elif i < len(cmd.args) and re.search(r"system\s*\(|\|\s*getline|\|\s*\"|print[^;}]*\|", cmd.args[i]):
        yield Hit(Risk.MODERATE, "awk program runs shell commands", Trait.INLINE_CODE)


def _eval(cmd: Cmd, w: _Walker) -> Iterator[Hit]:
    if cmd.args:
        yield from w.run_string(" ".join(cmd.args), cmd.words[1:] if cmd.words else None, cmd)


def _multiplexer(cmd: Cmd, _w: _Walker) -> Iterator[Hit]:
    first = _first_operand(cmd.args, "SLfrtcsx")
    if set(cmd.args) & {"-ls", "-list", "ls", "list-sessions", "-v", "-V"} or first in {
        "ls",
        "list-sessions",
        "kill-server",
        "kill-session",
    }:
        return
    yield Hit(Risk.HIGH, "starts shells the command hook cannot see into", Trait.NESTED_SHELL)


def _su(cmd: Cmd, w: _Walker) -> Iterator[Hit]:
    _, vals, _ = split_options(
        cmd.args, "cgGsw", ("command", "group", "supp-group", "shell", "whitelist-environment", "session-command")
    )
    for n, a in enumerate(cmd.args):
        if a in {"-c", "--command", "--session-command"} and n + 1 < len(cmd.args):
            word = cmd.words[n + 2] if cmd.words else None
            yield from w.run_string(cmd.args[n + 1], word, cmd)
            return
        if a.startswith("--command="):
            yield from w.run_string(a.split("=", 1)[1], None, cmd)
            return
    yield Hit(Risk.HIGH, "privilege escalation: opens a shell as another user", Trait.NESTED_SHELL)


def _network_reverse_shell(cmd: Cmd, _w: _Walker) -> Iterator[Hit]:
    if cmd.name in {"nc", "ncat", "netcat"} and ({"-e", "-c", "--exec", "--sh-exec"} & set(cmd.args)):
        yield Hit(Risk.DANGEROUS, "binds a shell to a network connection")


def _find(cmd: Cmd, w: _Walker) -> Iterator[Hit]:
    args = cmd.args
    starts = []
    for a in args:
        if a.startswith(("-", "(", "!")):
            break
        starts.append(norm_path(a)[0])
    if "-delete" in args:
        if any(is_critical(p) or p in _SYSTEM_DIRS for p in starts):
            yield Hit(Risk.DANGEROUS, "find -delete under the root, a home directory or a system path")
        else:
            yield Hit(Risk.HIGH, "find -delete removes every matching file")
    for n, a in enumerate(args):
        if a in {"-exec", "-execdir", "-ok", "-okdir"}:
            end = next((k for k in range(n + 1, len(args)) if args[k] in {";", "+"}), len(args))
            if end > n + 1:
                yield from w.run_argv(args[n + 1 : end], cmd)


# A decoder in front of a shell is how obfuscated payloads get run.
_DECODERS = {
    "base64",
    "base32",
    "basenc",
    "xxd",
    "uudecode",
    "openssl",
    "gunzip",
    "zcat",
    "bzcat",
    "xzcat",
    "unxz",
    "bunzip2",
    "zstdcat",
    "rev",
    "gzip",
    "bzip2",
    "xz",
    "zstd",
}


def is_decoder(cmd: Cmd) -> bool:
    name, args = cmd.name, set(cmd.args)
    if name in {"base64", "base32", "basenc", "gzip", "bzip2", "xz", "zstd"}:
        return bool(args & {"-d", "--decode", "-D", "--decompress"})
    if name == "xxd":
        return any(re.fullmatch(r"-\w*r\w*", a) for a in args)
    if name == "openssl":
        return "-d" in args
    return name in _DECODERS


def _all(*rules: Rule) -> Rule:
    """One rule that applies several (rsync copies secrets and runs a remote shell command)."""

    def rule(cmd: Cmd, w: _Walker) -> Iterator[Hit]:
        for each in rules:
            yield from each(cmd, w)

    return rule


# ---- arguments the rules never see
# xargs and parallel hand a command arguments from their input at run time. A command is then
# judged by what its kind of command can do with any arguments at all; commands without an
# entry (echo, grep, wc, gzip ...) are judged on their visible arguments alone.

_WRITES_UNSEEN = Hit(Risk.HIGH, "writes, moves or deletes files named by its input")
_CONTROLS_UNSEEN = Hit(Risk.HIGH, "changes services, the firewall or cron as its input says")
_RUNS_UNSEEN = Hit(Risk.HIGH, "with arguments from its input it can run any command or change the command hook")
_INPUT_ARGS_RISK: dict[Rule, Hit] = {
    _disk_tool: Hit(Risk.DANGEROUS, "formats, partitions or wipes a device named by its input"),
    _dd: Hit(Risk.DANGEROUS, "dd with operands from its input can overwrite a device"),
    _shred: Hit(Risk.DANGEROUS, "irrecoverably overwrites files or devices named by its input"),
    _init: Hit(Risk.DANGEROUS, "changes the runlevel (possibly to shut down) as its input says"),
    _rm: Hit(Risk.HIGH, "deletes files named by its input"),
    _find: Hit(Risk.HIGH, "find with arguments from its input can delete files or run commands"),
    _copy_move: _WRITES_UNSEEN,
    _tee: _WRITES_UNSEEN,
    _truncate: _WRITES_UNSEEN,
    _sed: _WRITES_UNSEEN,
    _chmod_chown: Hit(Risk.HIGH, "changes the owner or mode of files named by its input"),
    _kill: Hit(Risk.HIGH, "signals processes named by its input"),
    _pkill: Hit(Risk.HIGH, "signals processes named by its input"),
    _systemctl: _CONTROLS_UNSEEN,
    _service: _CONTROLS_UNSEEN,
    _iptables: _CONTROLS_UNSEEN,
    _nft: _CONTROLS_UNSEEN,
    _ufw: _CONTROLS_UNSEEN,
    _crontab: _CONTROLS_UNSEEN,
    _package_manager: Hit(Risk.MODERATE, "installs or removes packages named by its input"),
    _package_by_option: Hit(Risk.MODERATE, "installs or removes packages named by its input"),
    _eval: _RUNS_UNSEEN,
    _su: _RUNS_UNSEEN,
    _sg: _RUNS_UNSEEN,
    _trap: _RUNS_UNSEEN,
    _git: _RUNS_UNSEEN,
    _tar: _RUNS_UNSEEN,
    _ssh: _RUNS_UNSEEN,
    _command_options: _RUNS_UNSEEN,
    _script: _RUNS_UNSEEN,
    _bind: _RUNS_UNSEEN,
    _complete: _RUNS_UNSEEN,
    _mapfile: _RUNS_UNSEEN,
    _parallel: _RUNS_UNSEEN,
    _socat: _RUNS_UNSEEN,
    _at: _RUNS_UNSEEN,
    _set: _RUNS_UNSEEN,
    _shopt: _RUNS_UNSEEN,
    _unset: _RUNS_UNSEEN,
    _declare: _RUNS_UNSEEN,
    _alias: _RUNS_UNSEEN,
    _enable: _RUNS_UNSEEN,
    _make: Hit(Risk.MODERATE, "make with arguments from its input can run any makefile", Trait.SCRIPT_FILE),
    _interpreter: Hit(Risk.MODERATE, "runs a script or code named by its input", Trait.SCRIPT_FILE),
    _source: Hit(Risk.MODERATE, "runs a script named by its input", Trait.SCRIPT_FILE),
    _awk: Hit(Risk.MODERATE, "runs an awk program named by its input", Trait.INLINE_CODE),
}


def _input_args_hits(cmd: Cmd, rule: Rule | None) -> Iterator[Hit]:
    if cmd.input_marker and cmd.input_marker in cmd.argv[0]:
        yield Hit(Risk.HIGH, "the command name comes from its input, so it cannot be judged")
    elif rule is _shell:
        # Appended words are positional parameters of a known `-c STRING` or script; without one,
        # or with the marker inside the string, the input is the code.
        _, _, i = split_options(cmd.args, "oO", ("rcfile", "init-file"))
        operands = cmd.args[i:]
        if not operands or (cmd.input_marker and cmd.input_marker in operands[0]):
            yield Hit(Risk.HIGH, "runs a command string or script named by its input")
    elif rule in _INPUT_ARGS_RISK:
        yield _INPUT_ARGS_RISK[rule]


RULES: dict[str, Rule] = {
    # deletion and overwriting
    "rm": _rm,
    "unlink": _rm,
    "shred": _shred,
    "truncate": _truncate,
    "tee": _tee,
    "cp": _copy_move,
    "mv": _copy_move,
    "install": _copy_move,
    "ln": _copy_move,
    "find": _find,
    # disks
    "dd": _dd,
    "mkfs": _disk_tool,
    "mke2fs": _disk_tool,
    "mkswap": _disk_tool,
    "fdisk": _disk_tool,
    "sfdisk": _disk_tool,
    "cfdisk": _disk_tool,
    "gdisk": _disk_tool,
    "sgdisk": _disk_tool,
    "parted": _disk_tool,
    "wipefs": _disk_tool,
    "blkdiscard": _disk_tool,
    "mkdosfs": _disk_tool,
    "mkntfs": _disk_tool,
    # power and services
    "shutdown": _power,
    "reboot": _power,
    "halt": _power,
    "poweroff": _power,
    "init": _init,
    "telinit": _init,
    "systemctl": _systemctl,
    "service": _service,
    # permissions and processes
    "chmod": _chmod_chown,
    "chown": _chmod_chown,
    "chgrp": _chmod_chown,
    "kill": _kill,
    "pkill": _pkill,
    "killall": _pkill,
    "killall5": _pkill,
    # network
    "curl": _curl_wget,
    "wget": _curl_wget,
    "scp": _all(_copier, _ssh),
    "rsync": _all(_copier, _command_options),
    "sftp": _all(_copier, _ssh),
    "nc": _network_reverse_shell,
    "ncat": _network_reverse_shell,
    "netcat": _network_reverse_shell,
    "socat": _socat,
    "telnet": _network_reverse_shell,
    "ssh": _ssh,
    # firewall, cron, history
    "iptables": _iptables,
    "ip6tables": _iptables,
    "iptables-legacy": _iptables,
    "iptables-nft": _iptables,
    "iptables-restore": _iptables,
    "ip6tables-restore": _iptables,
    "nft": _nft,
    "ufw": _ufw,
    "crontab": _crontab,
    "history": _history,
    # packages
    **{name: _package_manager for name in [*_PACKAGE_VERBS, *_PACKAGE_ALIASES]},
    "dpkg": _all(_package_by_option, _command_options),
    **{name: _apt_options for name in ["apt-cache", "apt-mark", "apt-cdrom", "apt-config", "apt-helper",
                                       "apt-ftparchive", "apt-key"]},
    "less": _less,
    "mysql": _mysql,
    "mariadb": _mysql,
    "psql": _psql,
    "sqlite3": _sqlite3,
    **{name: _vim for name in _VIMS},
    "gdb": _gdb,
    "lldb": _lldb,
    "zip": _zip,
    "rpm": _package_by_option,
    "pacman": _package_by_option,
    "git": _git,
    # programs that run a command named in an option or argument
    "tar": _tar,
    "sed": _sed,
    "gsed": _sed,
    "script": _script,
    "split": _command_options,
    "sort": _command_options,
    "man": _command_options,
    "tcpdump": _command_options,
    "parallel": _parallel,
    "sg": _sg,
    "newgrp": _newgrp,
    "at": _at,
    "batch": _at,
    "make": _make,
    "gmake": _make,
    "bind": _bind,
    "complete": _complete,
    "compgen": _complete,
    # the command hook
    "trap": _trap,
    "mapfile": _all(_mapfile, _mapfile_variable),
    "readarray": _all(_mapfile, _mapfile_variable),
    "read": _read,
    "printf": _printf,
    "getopts": _getopts,
    "hash": _hash,
    "let": _let,
    "shopt": _shopt,
    "set": _set,
    "unset": _unset,
    "declare": _declare,
    "typeset": _declare,
    "local": _declare,
    "export": _declare,
    "readonly": _declare,
    "alias": _alias,
    "enable": _enable,
    # shells, interpreters, code in strings
    **{name: _shell for name in _SHELLS},
    **{name: _interpreter for name in _INTERPRETERS},
    "source": _source,
    ".": _source,
    "eval": _eval,
    "awk": _awk,
    "gawk": _awk,
    "mawk": _awk,
    "nawk": _awk,
    "su": _su,
    "tmux": _multiplexer,
    "screen": _multiplexer,
    "byobu": _multiplexer,
}


# --------------------------------------------------------------------------- wrappers
# A wrapper runs another command: each function returns the index in argv where it starts
# (None: nothing to run). `watch`, `env -S`, `flock -c` run strings and are handled in _Walker.


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


# --------------------------------------------------------------------------- the walker


@dataclass
class _Finding:
    risk: Risk
    part: str
    why: str


class _Walker:
    """Walks bashlex trees, collecting findings, the commands seen and their facts."""

    def __init__(self) -> None:
        self.findings: list[_Finding] = []
        self.commands: list[str] = []
        self.facts: list[CommandFact] = []
        self.depth = 0
        self.source = ""
        self.quoted_heredocs: set[str] = set()
        self.input_marker: str | None = None  # set while walking a string that xargs/parallel complete

    # ---- entry points

    def line(self, text: str) -> bool:
        """Assess a whole line; False when it could not be parsed."""
        return self.walk_text(text, top=True, quoted_heredocs=self.quoted_heredocs)

    def walk_text(self, text: str, *, top: bool, quoted_heredocs: set[str] | None = None) -> bool:
        parsed = _parse(text, set() if quoted_heredocs is None else quoted_heredocs)
        if parsed is None:
            return False
        trees, source = parsed
        saved, self.source = self.source, source
        try:
            for tree in trees:
                self.node(tree, top)
        finally:
            self.source = saved
        return True

    def run_string(self, text: str, word, cmd: Cmd, input_marker: str | None = None) -> Iterator[Hit]:
        """A string that a shell will parse and run (bash -c, eval, su -c, watch). `input_marker`:
        its commands get arguments from input at run time (see Cmd.input_args)."""
        alternative = _default_words(text)
        if alternative != text:  # `${X:-mkfs.ext4 /dev/sda}` runs the default when X is unset
            yield from self.run_string(alternative, None, cmd, input_marker)
        words = word if isinstance(word, list) else [word]
        names = set().union(*(self.substitution_names(x) for x in words))
        if names & _DOWNLOADERS:
            yield Hit(Risk.DANGEROUS, "runs code downloaded from the network")
            return
        if names & _DECODERS:
            yield Hit(Risk.DANGEROUS, "runs decoded (obfuscated) code")
            return
        if names or (_has_expansion(word) and re.fullmatch(r"\s*(\$\w+|\$\{[^}]*\}|\$[@*])\s*", text)):
            yield Hit(Risk.HIGH, "runs a command string built at run time, which cannot be assessed")
            return
        if self.depth >= MAX_DEPTH:
            yield Hit(Risk.HIGH, "commands nested too deeply to assess")
            return
        self.depth += 1
        saved, self.input_marker = self.input_marker, input_marker if input_marker is not None else self.input_marker
        try:
            parsed = self.walk_text(text, top=False)
        finally:
            self.depth -= 1
            self.input_marker = saved
        if not parsed:
            yield Hit(Risk.HIGH, "runs a command string that cannot be parsed")

    def run_argv(self, argv: list[str], parent: Cmd) -> Iterator[Hit]:
        """A command given as words (find -exec); findings are recorded directly."""
        yield from self.run_cmd(Cmd(argv=list(argv), text=" ".join(argv), top=False))

    def run_cmd(self, cmd: Cmd) -> Iterator[Hit]:
        if self.depth >= MAX_DEPTH:
            yield Hit(Risk.HIGH, "commands nested too deeply to assess")
            return
        self.depth += 1
        try:
            self.simple(cmd)
        finally:
            self.depth -= 1

    # ---- tree walking

    def node(self, n, top: bool = True) -> None:
        kind = n.kind
        if kind == "command":
            self.command_node(n, top)
        elif kind == "pipeline":
            self.pipeline(n, top)
        elif kind in {"list", "if", "for", "while", "until"}:
            if kind == "for":
                self.loop_variable(n, top)
            for part in n.parts:
                self.node(part, top)
        elif kind == "compound":
            for part in n.list:
                self.node(part, top)
            for r in getattr(n, "redirects", []) or []:
                self.redirect(r, None, self.text_of(n))
        elif kind == "function":
            self.function(n, top)
        elif kind in {"word", "assignment"}:
            for part in getattr(n, "parts", []) or []:
                self.node(part, top)
            self.parameter_substitutions(n, top)
            self.parameter_assignments(n, top)
        elif kind in {"commandsubstitution", "processsubstitution"}:
            self.node(n.command, top)

    def loop_variable(self, n, top: bool) -> None:
        """`for NAME in WORDS` (and `select`) assigns NAME each word in turn; without `in`, the
        positional parameters."""
        parts = n.parts
        if len(parts) < 2 or parts[1].kind != "word":
            return
        name, text = parts[1].word, self.text_of(n).split("\n", 1)[0]
        context = Cmd(argv=[], text=text, top=top)
        if len(parts) < 3 or getattr(parts[2], "word", "") != "in":
            self.record(_variables_from_input([name]), text, name)
            return
        for part in parts[3:]:
            if part.kind != "word":
                break
            value = self.word_value(part)
            if _HOOK_NAME.match(name):
                self.add(Risk.DANGEROUS, text, "assigns a variable of the terminal's command hook")
                return
            self.record(_assignment_hits(name, value, part, context, self), text, name)

    def parameter_assignments(self, word, top: bool) -> None:
        """`${NAME:=word}` and `${NAME=word}` assign NAME when it is empty or unset."""
        for part in getattr(word, "parts", []) or []:
            m = part.kind == "parameter" and re.match(r"^([A-Za-z_]\w*)(\[[^\]]*\])?:?=(.*)$", part.value, re.S)
            if not m:
                continue
            name, value, text = m.group(1), _ansi_c_dequote(m.group(3)), self.text_of(word)
            if _HOOK_NAME.match(name):
                self.add(Risk.DANGEROUS, text, "assigns a variable of the terminal's command hook")
            elif not m.group(2):
                self.record(_assignment_hits(name, value, None, Cmd(argv=[], text=text, top=top), self), text, name)

    def parameter_substitutions(self, word, top: bool) -> None:
        """bashlex keeps `$(...)` and backticks inside `${x:-...}`, `${x/a/...}`, `${a[...]}` as
        plain text; bash runs them. Find and walk them (those bashlex did see are skipped)."""
        params = [p for p in getattr(word, "parts", []) or [] if p.kind == "parameter"]
        if not any("$(" in p.value or "`" in p.value or "<(" in p.value or ">(" in p.value for p in params):
            return
        seen = {p.pos[0] for p in word.parts if p.kind in {"commandsubstitution", "processsubstitution"}}
        text = self.text_of(word)
        found = _substitutions(text)
        if found is None:
            self.add(Risk.HIGH, text, "parameter expansion with substitutions that cannot be parsed")
            return
        for offset, body in found:
            if word.pos[0] + offset in seen:
                continue
            if self.depth >= MAX_DEPTH:
                self.add(Risk.HIGH, text, "commands nested too deeply to assess")
                return
            self.depth += 1
            try:
                if not self.walk_text(body, top=top):
                    self.add(Risk.HIGH, text, "parameter expansion with substitutions that cannot be parsed")
            finally:
                self.depth -= 1

    def text_of(self, n) -> str:
        return self.source[n.pos[0] : n.pos[1]]

    def command_node(self, n, top: bool, stdin: str | None = None) -> Cmd | None:
        words, argv = [], []
        redirects = []
        for part in n.parts:
            if part.kind == "assignment":
                name = part.word.split("=", 1)[0].split("[", 1)[0].rstrip("+")
                if _HOOK_NAME.match(name):
                    self.add(Risk.DANGEROUS, part.word, "assigns a variable of the terminal's command hook")
                else:
                    value = self.word_value(part).partition("=")[2]
                    context = Cmd(argv=[], text=part.word, top=top)
                    self.record(_assignment_hits(name, value, part, context, self), part.word, name)
                self.node(part, top)
            elif part.kind == "word" and not words and _ELEMENT_ASSIGNMENT.match(part.word):
                # `NAME[KEY]=value`: bashlex takes it for a command word; bash assigns an element
                name, _, value = part.word.partition("=")
                context = Cmd(argv=[], text=part.word, top=top)
                self.record(_element_hits(_base_name(name), value, part, context, self), part.word, name)
                self.node(part, top)
            elif part.kind == "word":
                expanded = brace_expand(self.text_of(part)) if "{" in part.word else None
                if expanded is None:
                    words.append(part)
                    argv.append(self.word_value(part))
                else:  # `{mkfs.ext4,/dev/sda}` is two words to bash
                    if len(expanded) > _BRACE_LIMIT:
                        self.add(Risk.HIGH, self.text_of(part), "brace expansion too large to assess")
                        expanded = expanded[:_BRACE_LIMIT]
                    words.extend([part] * len(expanded))
                    argv.extend(_ansi_c_dequote(x) for x in expanded)
                self.node(part, top)
            elif part.kind == "redirect":
                redirects.append(part)
        if not words:
            for r in redirects:
                self.redirect(r, None, self.text_of(n))
            return None
        cmd = Cmd(argv=argv, text=self.source[words[0].pos[0] : n.pos[1]], words=words, stdin=stdin, top=top)
        for r in redirects:
            self.redirect(r, cmd, cmd.text)
        self.simple(cmd)
        return cmd

    def word_value(self, w) -> str:
        raw = self.source[w.pos[0] : w.pos[1]]
        # bashlex mangles ANSI-C quoting, and keeps the quotes of `"NAME"='value'`: dequote ourselves
        if "$'" in raw or (("'" in raw or '"' in raw) and "$(" not in raw and "`" not in raw):
            return _ansi_c_dequote(raw)
        return getattr(w, "word", "") or ""

    def redirect(self, r, cmd: Cmd | None, part: str) -> None:
        out = r.output
        if hasattr(out, "kind") and out.kind == "word":
            self.node(out)
            target = self.word_value(out)
        else:
            return
        rtype = r.type
        if rtype in {">", ">>", ">|", "&>", "&>>", "<>", ">&"}:
            path = norm_path(target)[0]
            for hit in _write_target(path, "redirects output"):
                self.add(hit.risk, part, hit.why)
        if _NET_DEVICE.match(target):
            if cmd is not None and cmd.name in _SHELLS:
                self.add(Risk.DANGEROUS, part, "connects a shell to the network (reverse shell)")
            else:
                self.add(Risk.HIGH, part, "opens a network connection through /dev/tcp or /dev/udp")
        if cmd is None:
            return
        if rtype == "<":
            cmd.stdin, cmd.stdin_path = "file", target
            if _NET_DEVICE.match(target):
                cmd.stdin = "pipe"
        elif rtype == "<<<":
            cmd.stdin, cmd.stdin_text = "here", target
        elif rtype in {"<<", "<<-"} and getattr(r, "heredoc", None) is not None:
            body = r.heredoc.value.rsplit("\n", 1)[0] if "\n" in r.heredoc.value else ""
            cmd.stdin, cmd.stdin_text = "here", body
            if target not in self.quoted_heredocs and ("$(" in body or "`" in body or "${" in body):
                self.heredoc_substitutions(body, part)

    def heredoc_substitutions(self, body: str, part: str) -> None:
        """An unquoted heredoc expands $(...) and backticks: those commands run."""
        quoted = '"' + body.replace('"', '\\"') + '"'
        if not self.walk_text("echo " + quoted, top=True):
            self.add(Risk.HIGH, part, "here-document with substitutions that cannot be parsed")

    def function(self, n, top: bool) -> None:
        name = next((p.word for p in n.parts if p.kind == "word"), "")
        body = next((p for p in n.parts if p.kind == "compound"), None)
        text = self.text_of(n)
        if body is None:
            return
        if _HOOK_NAME.match(name) or name in _HOOK_BUILTINS:
            self.add(Risk.DANGEROUS, text, f"redefines {name}, which the terminal's command hook relies on")
        if _self_calls_in_background(body, name):
            self.add(Risk.DANGEROUS, text, "fork bomb: a function that pipes or backgrounds itself")
        self.node(body, top)  # the body runs when the function is called: judge it now

    def pipeline(self, n, top: bool) -> None:
        cmds: list[Cmd] = []
        position = 0
        for part in n.parts:
            if part.kind == "command":
                cmd = self.command_node(part, top, stdin="pipe" if position else None)
                if cmd is not None:
                    cmds.append(self.effective(cmd))
                position += 1
            elif part.kind not in {"pipe", "reservedword"}:
                self.node(part, top)
                position += 1
        for k, cmd in enumerate(cmds[1:], 1):
            upstream = cmds[:k]
            for hit in _pipeline_hits(cmd, upstream, self):
                self.add(hit.risk, self.text_of(n), hit.why)
                if hit.trait:  # let the policy see e.g. `cat x.sh | bash` as running a script
                    self.facts.append(CommandFact(self.text_of(n), cmd.name, hit.risk, frozenset({hit.trait})))

    # ---- simple commands

    @staticmethod
    def effective(cmd: Cmd) -> Cmd:
        """Peel wrappers off: `sudo env X=1 nice rm -rf /` -> `rm -rf /`."""
        for _ in range(16):
            start = WRAPPERS[cmd.name](cmd.argv) if cmd.name in WRAPPERS else None
            if start is None:
                return cmd
            cmd = _peel(cmd, start)
        return cmd

    def simple(self, cmd: Cmd) -> None:
        hits: list[tuple[Hit, str]] = []  # each with the text of the command it is about
        marker = self.input_marker
        if marker is not None and not cmd.input_args and (not marker or any(marker in a for a in cmd.argv)):
            cmd.input_args, cmd.input_marker = True, marker
        inner = cmd
        via: list[str] = []
        for _ in range(16):
            if inner.name not in WRAPPERS:
                break
            hits.extend((h, inner.text) for h in self.wrapper_hits(inner))
            start = WRAPPERS[inner.name](inner.argv)
            if start is None:
                hits.extend((h, inner.text) for h in _wrapper_alone(inner))
                break
            via.append(inner.name)
            inner = _peel(inner, start)
        name = inner.name
        if "exec" in via and cmd.top and self.depth == 0 and name not in WRAPPERS:
            if name in _SHELLS:
                why = "exec replaces the monitored shell with another shell (escapes the command hook)"
                hits.append((Hit(Risk.DANGEROUS, why, Trait.NESTED_SHELL), cmd.text))
            else:
                why = "exec replaces the monitored shell (escapes the command hook)"
                hits.append((Hit(Risk.HIGH, why, Trait.NESTED_SHELL), cmd.text))
        if inner.argv and name not in WRAPPERS:
            hits.extend((h, inner.text) for h in self.rule_hits(inner))
            if inner.input_args:
                hits.extend((h, inner.text) for h in _input_args_hits(inner, RULES.get(name)))
        for hit, text in hits:
            if hit.risk > Risk.SAFE:
                self.add(hit.risk, text, hit.why)
        self.commands.append(cmd.text)
        risk = max((h.risk for h, _ in hits), default=Risk.SAFE)
        traits = frozenset(h.trait for h, _ in hits if h.trait)
        self.facts.append(CommandFact(text=cmd.text, name=name, risk=risk, traits=traits))

    def wrapper_hits(self, cmd: Cmd) -> Iterator[Hit]:
        """Wrappers that run a string rather than argv, or set the environment of what they run."""
        if cmd.name == "watch":
            return
        if cmd.name == "env":
            for value in option_values(cmd.args, "S", ("split-string",), takes="uC"):
                yield from self.run_string(_env_split_string(value), None, cmd)
            _, _, i = split_options(cmd.args, "uCS", ("unset", "chdir", "split-string"))
            settings = list(itertools.takewhile(lambda a: re.match(r"^[A-Za-z_]\w*=", a), cmd.args[i:]))
            yield from _assignments(cmd, self, settings, 1 + i)
        elif cmd.name == "sudo":  # `sudo NAME=value cmd` sets NAME for cmd
            start = _after_options(*_SUDO_VALUES)(cmd.argv) or len(cmd.argv)
            settings = list(itertools.takewhile(lambda a: re.match(r"^[A-Za-z_]\w*=", a), cmd.argv[start:]))
            yield from _assignments(cmd, self, settings, start)
        elif cmd.name in _WRAPPER_SETENV:
            spec = _WRAPPER_SETENV[cmd.name]
            settings = option_values(cmd.args, spec.short, spec.long, takes=spec.takes)
            yield from _assignments(Cmd(argv=["", *settings], text=cmd.text), self, settings, 1)
        if cmd.name in _COMMAND_OPTIONS:  # flock -c, runuser -c
            yield from _command_options(cmd, self)

    def rule_hits(self, cmd: Cmd) -> list[Hit]:
        name = cmd.name
        raw = cmd.argv[0]
        first = cmd.words[0] if cmd.words else None
        if first is not None and _has_expansion(first) and "$'" not in self.text_of(first):
            if self.substitution_names(first):
                return [Hit(Risk.HIGH, "the command name is computed by a command substitution")]
            alternative = _default_words(cmd.text)
            defaults = list(self.run_string(alternative, None, cmd)) if alternative != cmd.text else []
            return [Hit(Risk.HIGH, "the command name is computed at run time, so it cannot be judged"), *defaults]
        if name in _NET_SENDERS and cmd.stdin_path and is_secret(cmd.stdin_path):
            return [Hit(Risk.DANGEROUS, "sends a secret file (keys, passwords) over the network")]
        if name == "watch":
            _, _, i = split_options(cmd.args, "n", ("interval",))
            rest = cmd.args[i:]
            return list(self.run_string(" ".join(rest), None, cmd)) if rest else []
        rule = RULES.get(name)
        hits = list(rule(cmd, self)) if rule else []
        if not rule and "/" in raw and not raw.startswith(("/bin/", "/usr/", "/sbin/", "/opt/")):
            hits.append(Hit(Risk.MODERATE, "runs a program or script from a file", Trait.SCRIPT_FILE))
        return hits

    def substitution_names(self, word) -> set[str]:
        """Command names (wrappers peeled, decoders recognised) inside a word's $(...)/<(...)."""
        names: set[str] = set()
        if word is None:
            return names
        stack = list(getattr(word, "parts", []) or [])
        while stack:
            n = stack.pop()
            if n.kind == "command":
                words = [p for p in n.parts if p.kind == "word"]
                if words:
                    cmd = self.effective(Cmd(argv=[getattr(w, "word", "") for w in words], text=""))
                    names.add(cmd.name)
                    if cmd.name in _DECODERS and not is_decoder(cmd):
                        names.discard(cmd.name)
                        names.add(cmd.name + "?")
            for attr in ("parts", "list"):
                stack.extend(getattr(n, attr, []) or [])
            if getattr(n, "command", None) is not None:
                stack.append(n.command)
        return names

    def add(self, risk: Risk, part: str, why: str) -> None:
        self.findings.append(_Finding(risk, _short(part), why))

    def record(self, hits: Iterable[Hit], part: str, name: str) -> None:
        """Hits about something that is not a command (an assignment), with their traits."""
        hits = list(hits)
        for hit in hits:
            if hit.risk > Risk.SAFE:
                self.add(hit.risk, part, hit.why)
        traits = frozenset(h.trait for h in hits if h.trait)
        if traits:
            risk = max(h.risk for h in hits)
            self.facts.append(CommandFact(text=part, name=name, risk=risk, traits=traits))


def _default_words(text: str) -> str:
    """The text with each `${NAME:-word}` (also `-`, `=`, `:=`, `+`, `:+`) replaced by its word:
    what runs when NAME is unset (or set, for `+`)."""
    return re.sub(r"\$\{[A-Za-z_]\w*:?[-=+]([^{}$`]*)\}", lambda m: m.group(1), text)


def _tail_text(cmd: Cmd, start: int) -> str:
    """The source text of a wrapper's payload (quotes kept), or its words joined."""
    if cmd.words and start < len(cmd.words) and cmd.text:
        offset = cmd.words[start].pos[0] - cmd.words[0].pos[0]
        if 0 <= offset < len(cmd.text):
            return cmd.text[offset:]
    return " ".join(cmd.argv[start:])


def _peel(cmd: Cmd, start: int) -> Cmd:
    """The command a wrapper runs; under xargs it gets arguments from the input."""
    inner = cmd.sub(start, text=_tail_text(cmd, start))
    if cmd.name in _INPUT_ARG_WRAPPERS:
        replace = option_values(cmd.args[: start - 1], "I", ("replace",), takes="adELnPs")
        replace += ["{}" for a in cmd.args[: start - 1] if a == "-i" or a == "--replace"]
        replace += [a[2:] for a in cmd.args[: start - 1] if a.startswith("-i") and len(a) > 2]
        inner.input_args, inner.input_marker = True, (replace[0] if replace else "")
    return inner


def _wrapper_alone(cmd: Cmd) -> Iterator[Hit]:
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


def _has_command_option(cmd: Cmd) -> bool:
    spec = _COMMAND_OPTIONS.get(cmd.name)
    return bool(spec and option_values(cmd.args, spec.short, spec.long, takes=spec.takes))


def _substitutions(text: str) -> list[tuple[int, str]] | None:
    """(offset, body) of each `$(...)`, `<(...)`, `>(...)` and backtick substitution in a word's
    text, outermost only; None when they are unbalanced. Single-quoted text is skipped."""
    found: list[tuple[int, str]] = []
    i, n, in_double = 0, len(text), False
    while i < n:
        ch = text[i]
        if ch == "\\":
            i += 2
        elif ch == "'" and not in_double:
            end = text.find("'", i + 1)
            i = n if end < 0 else end + 1
        elif ch == '"':
            in_double = not in_double
            i += 1
        elif text.startswith(("$(", "<(", ">("), i):
            depth, j = 1, i + 2
            while j < n and depth:
                c = text[j]
                if c == "\\":
                    j += 1
                elif c == "'":
                    end = text.find("'", j + 1)
                    j = n if end < 0 else end
                elif c == "(":
                    depth += 1
                elif c == ")":
                    depth -= 1
                j += 1
            if depth:
                return None
            found.append((i, text[i + 2 : j - 1]))
            i = j
        elif ch == "`":
            end = i + 1
            while end < n and text[end] != "`":
                end += 2 if text[end] == "\\" else 1
            if end >= n:
                return None
            found.append((i, text[i + 1 : end]))
            i = end + 1
        else:
            i += 1
    return found


def _pipeline_hits(cmd: Cmd, upstream: list[Cmd], w: _Walker) -> Iterator[Hit]:
    names = {c.name for c in upstream}
    reads_code = _reads_code_from_stdin(cmd)
    if reads_code:
        if names & _DOWNLOADERS:
            yield Hit(Risk.DANGEROUS, "pipes a download into a shell or interpreter")
        elif any(is_decoder(c) for c in upstream):
            yield Hit(Risk.DANGEROUS, "pipes decoded (obfuscated) data into a shell or interpreter")
        elif reads_code == "shell" and len(upstream) == 1 and upstream[0].name == "echo":
            src = upstream[0]
            text = " ".join(a for a in src.args if not re.fullmatch(r"-[neE]+", a))
            yield from w.run_string(text, src.words[1:] if src.words else None, src)
        else:
            trait = Trait.SCRIPT_FILE
            yield Hit(Risk.MODERATE, "runs commands read from a pipe", trait)
    if cmd.name in _NET_SENDERS and any(_reads_secret(c) for c in upstream):
        yield Hit(Risk.DANGEROUS, "sends a secret file (keys, passwords) over the network")


def _reads_code_from_stdin(cmd: Cmd) -> str | None:
    if cmd.name in _SHELLS:
        opts, _, i = split_options(cmd.args, "oO", ("rcfile", "init-file"))
        operands = cmd.args[i:]
        if "c" not in opts and (not operands or "s" in opts or operands[0] in {"-", "/dev/stdin"}):
            return "shell"
    if cmd.name in _INTERPRETERS:
        _, _, i = split_options(cmd.args, _INTERPRETERS[cmd.name].values)
        inline = any(a.lstrip("-") in _INTERPRETERS[cmd.name].inline for a in cmd.args[:i])
        if not inline and (i >= len(cmd.args) or cmd.args[i] in {"-", "/dev/stdin"}):
            return "interpreter"
    if cmd.name in {"source", "."} and cmd.args[:1] in (["/dev/stdin"], ["-"]):
        return "shell"
    if cmd.name in {"at", "batch"} and not split_options(cmd.args, "qfMmt")[0] & {"f", "l", "c", "d", "r"}:
        return "shell"
    if cmd.name == "parallel" and _parallel_command(cmd.args) == ([], len(cmd.args)):
        return "shell"
    return None


def _reads_secret(cmd: Cmd) -> bool:
    args = cmd.args
    return any(is_secret(a) for n, a in enumerate(args) if not (n and args[n - 1] in _IDENTITY_OPTS)) or bool(
        cmd.stdin_path and is_secret(cmd.stdin_path)
    )


def _self_calls_in_background(body, name: str) -> bool:
    """Does the function body call itself inside a pipeline or with `&`?"""
    stack = [(body, False)]
    while stack:
        n, risky = stack.pop()
        if n.kind == "command":
            first = next((p for p in n.parts if p.kind == "word"), None)
            if first is not None and first.word == name and risky:
                return True
            continue
        if n.kind == "pipeline":
            risky = True
        parts = list(getattr(n, "parts", []) or []) + list(getattr(n, "list", []) or [])
        background = any(p.kind == "operator" and p.op == "&" for p in parts)
        stack.extend((p, risky or background) for p in parts)
    return False


def _has_expansion(word) -> bool:
    if word is None:
        return False
    if isinstance(word, list):
        return any(_has_expansion(w) for w in word)
    return any(
        p.kind in {"parameter", "commandsubstitution", "processsubstitution"} for p in getattr(word, "parts", []) or []
    )


_BRACE_LIMIT = 256
_ELEMENT_ASSIGNMENT = re.compile(r"^[A-Za-z_]\w*\[[^\]]*\]\+?=", re.S)
_SEQUENCE = re.compile(r"^(-?\d+|[A-Za-z])\.\.(-?\d+|[A-Za-z])(?:\.\.(-?\d+))?$")


def _skip_quoted(text: str, i: int) -> int:
    """Index just past the quoted part, escape or `${...}`/`$(...)` starting at text[i], or i."""
    ch = text[i]
    if ch == "\\":
        return i + 2
    if ch == "'" or text.startswith("$'", i):
        start = i + (2 if ch == "$" else 1)
        j = start
        while j < len(text) and text[j] != "'":
            j += 2 if text[j] == "\\" and ch == "$" else 1
        return j + 1
    if ch == '"':
        j = i + 1
        while j < len(text) and text[j] != '"':
            j += 2 if text[j] == "\\" else 1
        return j + 1
    if text.startswith(("${", "$("), i):
        close = "}" if text[i + 1] == "{" else ")"
        depth, j = 1, i + 2
        while j < len(text) and depth:
            if text[j] in "\\'\"":
                j = _skip_quoted(text, j)
                continue
            depth += (text[j] == text[i + 1]) - (text[j] == close)
            j += 1
        return j
    return i


def _brace_group(text: str) -> tuple[int, int, list[str]] | None:
    """(start, end, alternatives) of the first brace expansion in a word's source text."""
    i = 0
    while i < len(text):
        skipped = _skip_quoted(text, i)
        if skipped != i:
            i = skipped
            continue
        if text[i] != "{":
            i += 1
            continue
        depth, j, commas = 1, i + 1, []
        while j < len(text) and depth:
            skipped = _skip_quoted(text, j)
            if skipped != j:
                j = skipped
                continue
            if text[j] == "{":
                depth += 1
            elif text[j] == "}":
                depth -= 1
            elif text[j] == "," and depth == 1:
                commas.append(j)
            j += 1
        if depth == 0:
            body = text[i + 1 : j - 1]
            if commas:
                cuts = [i, *commas, j - 1]
                return i, j, [text[a + 1 : b] for a, b in itertools.pairwise(cuts)]
            seq = _SEQUENCE.match(body)
            if seq:
                return i, j, _sequence(*seq.groups())
        i += 1
    return None


def _sequence(first: str, last: str, step: str | None) -> list[str]:
    inc = abs(int(step or 1)) or 1
    if first.lstrip("-").isdigit() and last.lstrip("-").isdigit():
        a, b = int(first), int(last)
        return [str(n) for n in range(a, b + (1 if b >= a else -1), inc if b >= a else -inc)][: _BRACE_LIMIT + 1]
    if first.isalpha() and last.isalpha():
        a, b = ord(first), ord(last)
        return [chr(n) for n in range(a, b + (1 if b >= a else -1), inc if b >= a else -inc)]
    return []


def brace_expand(text: str) -> list[str] | None:
    """bash's brace expansion of a word's source text (quotes kept, so quoted braces stay
    literal): `{mkfs.ext4,/dev/sda}` -> two words. None when the word has none."""
    group = _brace_group(text)
    if group is None:
        return None
    start, end, alternatives = group
    out: list[str] = []
    for alt in alternatives:
        for word in brace_expand(text[:start] + alt + text[end:]) or [text[:start] + alt + text[end:]]:
            out.append(word)
            if len(out) > _BRACE_LIMIT:
                return out
    return out


def _ansi_c_dequote(raw: str) -> str:
    """Quote removal for a word's source text, as bash does it (`$'\\x41'`, `'a'"b"`, `\\c`)."""
    out, i, in_double = [], 0, False
    while i < len(raw):
        ch = raw[i]
        if in_double:
            if ch == '"':
                in_double = False
            elif ch == "\\" and i + 1 < len(raw) and raw[i + 1] in '$`"\\\n':
                out.append(raw[i + 1])
                i += 1
            else:
                out.append(ch)
            i += 1
        elif raw.startswith("$'", i):
            end = i + 2
            while end < len(raw) and raw[end] != "'":
                end += 2 if raw[end] == "\\" else 1
            body = raw[i + 2 : end]
            try:
                out.append(codecs.decode(body.encode("latin-1", "backslashreplace"), "unicode_escape"))
            except (UnicodeDecodeError, ValueError):
                out.append(body)
            i = end + 1
        elif ch == "'":
            end = raw.find("'", i + 1)
            end = len(raw) if end < 0 else end
            out.append(raw[i + 1 : end])
            i = end + 1
        elif ch == '"':
            in_double = True
            i += 1
        elif ch == "\\" and i + 1 < len(raw):
            out.append(raw[i + 1])
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


# --------------------------------------------------------------------------- parsing

_PARSE_ERRORS = (
    bashlex.errors.ParsingError,
    NotImplementedError,
    AttributeError,
    IndexError,
    TypeError,
    ValueError,
    KeyError,
    AssertionError,
    RecursionError,
)


def _parse(text: str, quoted_heredocs: set[str]) -> tuple[list, str] | None:
    """(bashlex trees, the text they index into), retrying once with rewrites of constructs
    bashlex does not implement; None when the line cannot be parsed."""
    try:
        return bashlex.parse(text), text
    except _PARSE_ERRORS:
        pass
    rewritten = _rewrite(text, quoted_heredocs)
    if rewritten == text:
        return None
    try:
        return bashlex.parse(rewritten), rewritten
    except _PARSE_ERRORS:
        return None


_CMD_START = r"(^|[;&|({}!\n]|\b(?:then|do|else|elif)\b)(\s*)"


def _rewrite(text: str, quoted_heredocs: set[str]) -> str:
    """Neutral rewrites for syntax bashlex lacks. Only expansion-free conditionals and arithmetic
    are replaced (they run nothing); anything containing $(...) or backticks is left to fail."""

    def heredoc(m: re.Match) -> str:
        quoted_heredocs.add(m.group(3))
        return f"<<{m.group(1)}{m.group(3)}"

    text = re.sub(r"<<(-?)\s*(['\"])([^'\"\s]+)\2", heredoc, text)
    text = re.sub(_CMD_START + r"time(\s+-p)?\s+", r"\1\2", text)
    text = re.sub(_CMD_START + r"coproc\s+", r"\1\2", text)
    text = re.sub(r"\bselect(\s+\w+\s+in\b)", r"for\1", text)
    text = re.sub(r"\$\(\(([^`]*?)\)\)", lambda m: _unless_substitution(m, "0"), text)
    text = re.sub(r"\bfor\s*\(\(([^`]*?)\)\)", lambda m: _unless_substitution(m, "for _ in 0"), text)
    text = re.sub(r"\[\[(.*?)\]\]", lambda m: _unless_substitution(m, "true"), text)
    text = re.sub(r"(^|[\s;&|(])([A-Za-z_]\w*(?:\[[^\]]*\])?\+?=)\(", r"\1\2$(: ", text)
    return text


# What a rewrite must not hide: commands it runs and the hook's variables (left to fail), and
# `${NAME:=value}`, which assigns (kept, as the argument of `:`).
_REWRITE_KEEPS = re.compile(r"\$\(|`|__autobot_|__AUTOBOT_|AUTOBOT_")
_PARAMETER_ASSIGNMENT = re.compile(r"\$\{[A-Za-z_]\w*(?:\[[^\]]*\])?:?=[^{}]*\}")


def _unless_substitution(m: re.Match, replacement: str) -> str:
    if _REWRITE_KEEPS.search(m.group(1)):
        return m.group(0)
    assignments = _PARAMETER_ASSIGNMENT.findall(m.group(1))
    return ": " + " ".join(f'"{a}"' for a in assignments) if assignments else replacement


def _fallback(text: str, walker: _Walker) -> None:
    """For a line bashlex cannot parse: split it roughly and judge each piece by the rules, so a
    dangerous command next to unparseable syntax still comes out DANGEROUS."""
    for segment in re.split(r"[;&|\n()`{}]+|\$\(|\bthen\b|\bdo\b|\belse\b", text)[:200]:
        segment = segment.strip()
        if not segment:
            continue
        try:
            argv = shlex.split(segment)
        except ValueError:
            argv = segment.split()
        argv = [a for a in argv if not re.match(r"^[A-Za-z_]\w*=", a)] or argv
        if argv:
            walker.simple(Cmd(argv=argv, text=segment, top=True))


# --------------------------------------------------------------------------- public entry


def assess(command_line: str) -> Assessment:
    """Rate a bash command line. Never raises."""
    if not isinstance(command_line, str):
        command_line = str(command_line)
    if not command_line.strip():
        return Assessment(Risk.SAFE, (), ())
    if len(command_line) > MAX_LINE_CHARS:
        reason = f"{_short(command_line)}: too long to assess ({len(command_line)} characters)"
        return Assessment(Risk.HIGH, (reason,), (), parsed=False)
    return _assess_cached(command_line)


@lru_cache(maxsize=1024)  # bounded; Assessment is immutable so sharing results is safe
def _assess_cached(line: str) -> Assessment:
    walker = _Walker()
    try:
        parsed = walker.line(line)
    except Exception:  # noqa: BLE001 - a bug here must not let a command through unassessed
        parsed = False
    if not parsed:
        walker = _Walker()
        walker.source = line
        try:
            _fallback(line, walker)
        except Exception:  # noqa: BLE001 - the fallback must never take the terminal down
            walker.findings.clear()
        walker.add(Risk.HIGH, line, "cannot be parsed, so it cannot be fully assessed")
    if _HOOK_ARITHMETIC.search(line):
        walker.add(Risk.DANGEROUS, line, "arithmetic on the terminal's command hook variables")
    return _result(walker, parsed)


# `(( __autobot_ok[x]=1 ))`, `$[...]`: arithmetic can assign the hook's variables.
_HOOK_ARITHMETIC = re.compile(r"(\(\(|\$\[)[^;&|\n]*?(__autobot_|__AUTOBOT_|AUTOBOT_)")


def _result(walker: _Walker, parsed: bool) -> Assessment:
    findings = sorted(walker.findings, key=lambda f: -f.risk)  # stable: keeps line order per risk
    reasons: list[str] = []
    for f in findings:
        reason = f"{f.part}: {f.why}"
        if reason not in reasons:
            reasons.append(reason)
    risk = max((f.risk for f in findings), default=Risk.SAFE)
    return Assessment(
        risk=risk,
        reasons=tuple(reasons),
        commands=tuple(walker.commands),
        facts=tuple(walker.facts),
        parsed=parsed,
    )
