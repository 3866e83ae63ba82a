"""Paths, command names and option parsing shared by the rules."""

from __future__ import annotations

import fnmatch
import posixpath
import re
from collections.abc import Iterable
from contextvars import ContextVar

_PART_CHARS = 120  # how much of a command a reason quotes


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
# Builtins the hook calls only as `builtin NAME` (a function or alias cannot hijack those), which
# `enable -n` could still take from it: kill and exit end a line the operator stopped.
_HOOK_ENABLED = _HOOK_BUILTINS | {"kill", "exit"}


def canonical(word: str) -> str:
    """`/usr/bin/python3.11` -> `python`, `mkfs.ext4` -> `mkfs`: the key into RULES."""
    name = word.rsplit("/", 1)[-1] if "/" in word.rstrip("/") else word
    if name.startswith("mkfs."):
        return "mkfs"
    m = re.fullmatch(r"(python|pypy|perl|ruby|php|lua|node)[\d.]*", name)
    return m.group(1) if m else name


# The directory the line's commands run in, when the line says (`cd /dev; mkfs.ext4 sda`), or the
# caller knows; None: unknown, and relative paths are judged as they are written.
CWD: ContextVar[str | None] = ContextVar("CWD", default=None)
# Symbolic links made earlier on the line (`ln -s /dev/sda d; mkfs.ext4 d`): link -> target.
LINKS: ContextVar[dict[str, str] | None] = ContextVar("LINKS", default=None)


def _follow_links(p: str) -> str:
    links = LINKS.get()
    for _ in range(8):  # a chain of links, not a loop
        hit = next((k for k in links or () if p == k or p.startswith(k.rstrip("/") + "/")), None)
        if hit is None:
            return p
        p = links[hit] + p[len(hit) :]
    return p


def norm_path(p: str) -> tuple[str, bool]:
    """Normalise a path operand; the flag says it ended in `/*` (all of the directory's contents)."""
    p = re.sub(r"/{2,}", "/", p.strip())
    cwd = CWD.get()
    if cwd and p and not p.startswith(("/", "~", "$", "-")):
        p = posixpath.join(cwd, p)
    glob_all = p.endswith("/*") or p == "*"
    if p.endswith("/*"):
        p = p[:-2] or "/"
    while len(p) > 1 and (p.endswith("/") or p.endswith("/.")):
        p = p[:-2] if p.endswith("/.") else p[:-1]
    if p.startswith("/"):
        p = posixpath.normpath(p)
        p = "/" if p.startswith("//") else p
    return _follow_links(p), glob_all


def remember_link(target: str, name: str) -> None:
    """`ln -s TARGET NAME`: later paths through NAME are judged as TARGET."""
    links = LINKS.get()
    if links is not None and target and name and not re.search(r"[$`*?]", target + name):
        links[norm_path(name)[0]] = norm_path(target)[0]


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


# Files whose contents programs run later, as (names, what it is, why writing it matters). A name
# with a slash is consecutive folders anywhere in the path (`.git/hooks`); a name ending in `/` is
# a folder, anything under it counts. They are matched in any folder: the cwd is rarely known, and
# the terminal's home is the user's files area, not a path under /home.
_RUN_LATER: tuple[tuple[frozenset[str], str, str], ...] = (
    # .bash_completion: bash-completion sources it in every interactive shell.
    (frozenset({".bashrc", ".bash_profile", ".bash_login", ".bash_logout", ".bash_aliases", ".profile", ".zshrc",
                ".zshenv", ".zprofile", ".zlogin", ".zlogout", ".kshrc", ".mkshrc", ".cshrc", ".tcshrc", ".login",
                ".logout", ".inputrc", ".pam_environment", ".bashrc.d/", ".config/fish/", ".bash_completion",
                ".bash_completion.d/"}),
     "a shell start-up file", "writing it changes what every new shell runs"),
    (frozenset({".ssh/"}), "in the SSH folder", "writing there can add a login key or make ssh run commands"),
    (frozenset({".gitconfig", ".git/config", ".git/hooks/", ".config/git/"}),
     "git's settings or hooks", "git runs the commands they name"),
    (frozenset({".config/autostart/", ".config/systemd/", ".config/environment.d/", ".xprofile", ".xinitrc",
                ".xsession", ".xsessionrc"}),
     "a login or autostart file", "it starts programs at every login"),
    (frozenset({".vimrc", ".gvimrc", ".exrc", ".vim/", ".config/nvim/", ".gdbinit"}),
     "an editor's or debugger's start-up file", "it can run commands when the program starts"),
    # Settings that decide where code is fetched from, whom it is trusted from, or what runs around
    # an install: .npmrc (registry, `script-shell`, `node-options`), .yarnrc/.yarnrc.yml (`yarnPath`
    # runs a JS file in place of yarn), pip.conf (`index-url`, `trusted-host`), .cargo/config(.toml)
    # (`target.*.runner`, aliases), .curlrc/.wgetrc (proxy, certificate checks, output files), and
    # .netrc (logins curl, git, ftp send to the hosts it names; ftp also runs its `macdef init`).
    # Not here: .pypirc (the upload credentials it holds are its writer's own; nothing runs it).
    (frozenset({".npmrc", ".yarnrc", ".yarnrc.yml", ".pip/pip.conf", ".config/pip/pip.conf", ".cargo/config",
                ".cargo/config.toml", ".curlrc", ".wgetrc", ".netrc"}),
     "a download or package tool's settings",
     "it decides which servers code is fetched from and trusted, where logins go, or what runs at an install"),
)
_CRONTABS = re.compile(r"^/var/spool/cron(/|$)")
_GLOB_CHARS = re.compile(r"[*?\[]")


def _may_be(part: str, name: str) -> bool:
    """`part` names `name`, or is a pattern the shell expands to it (`.ss?`, `.b*rc`; a pattern
    must start with a dot to match a hidden name)."""
    if part == name:
        return True
    return part.startswith(".") and bool(_GLOB_CHARS.search(part)) and fnmatch.fnmatchcase(name, part)


def _names(parts: list[str], name: str) -> bool:
    folder = name.endswith("/")
    wanted = name.rstrip("/").split("/")
    last = len(parts) - len(wanted)
    for start in range(last + 1) if folder else (last,):
        if start >= 0 and all(_may_be(p, w) for p, w in zip(parts[start:], wanted, strict=False)):
            return True
    return False


def runs_later(path: str) -> str | None:
    """What `path` is when programs run what it says (`~/.bashrc`, `.ssh/authorized_keys`, a
    crontab): "a shell start-up file: writing it changes what every new shell runs"; else None."""
    if _CRONTABS.match(path):
        return "a crontab: cron runs the commands in it"
    parts = [p for p in path.split("/") if p not in ("", ".")]
    for names, what, why in _RUN_LATER:
        if any(_names(parts, name) for name in names):
            return f"{what}: {why}"
    return None


def receives_runs_later(folder: str) -> str | None:
    """What `folder` is when whatever lands in it, under names the line does not show (a folder's
    contents copied, an archive extracted, a repository cloned), may be what programs run later: a
    home (`.bashrc`, `.ssh/`), such a folder itself (`~/.ssh`) or one above such files (`~/.config`,
    `.git`); else None."""
    if is_root_or_home(folder):
        return "a home folder: shell start-up files, `.ssh/` and other files programs run later live there"
    inside = runs_later(folder)
    if inside:
        return inside
    parts = [p for p in folder.split("/") if p not in ("", ".")]
    for names, what, why in _RUN_LATER:
        for name in names:
            wanted = name.rstrip("/").split("/")[:-1]  # the folders above the file or folder
            if any(_tail_is(parts, wanted[:n]) for n in range(1, len(wanted) + 1)):
                return f"a folder that holds {what}: {why}"
    return None


def _tail_is(parts: list[str], wanted: list[str]) -> bool:
    return len(parts) >= len(wanted) and all(_may_be(p, w) for p, w in zip(parts[-len(wanted):], wanted, strict=True))


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


def has_option(args: list[str], short: str = "", long: Iterable[str] = (), *, takes: str = "") -> bool:
    """Whether any of the flags `short`/`long` is given anywhere in args, GNU style (`-sO`, `--long`),
    not stopping at operands. `takes` are the program's short options that take a value (so `-oO`
    is `-o` with the value `O`, and the next word after `-o` is a value)."""
    long = set(long)
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            return False
        if a.startswith("--"):
            if a[2:].partition("=")[0] in long:
                return True
        elif a.startswith("-") and len(a) > 1:
            for j, ch in enumerate(a[1:], 1):
                if ch in short:
                    return True
                if ch in takes:
                    if j + 1 == len(a):  # `-o VALUE`: skip the value
                        i += 1
                    break
        i += 1
    return False


def operands(args: list[str], takes: str = "", long_takes: Iterable[str] = ()) -> list[str]:
    """The operands anywhere in args, GNU style (options may follow them): words that are neither
    options nor the values of `takes`/`long_takes` options; everything after `--`."""
    long_takes = set(long_takes)
    found: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            return found + args[i + 1 :]
        if a.startswith("--"):
            name, eq, _ = a[2:].partition("=")
            if name in long_takes and not eq:  # `--exclude VALUE`: skip the value
                i += 1
        elif a.startswith("-") and len(a) > 1:
            for j, ch in enumerate(a[1:], 1):
                if ch in takes:
                    if j + 1 == len(a):
                        i += 1
                    break
        else:
            found.append(a)
        i += 1
    return found


def _first_operand(args: list[str], values: str = "", long_values: Iterable[str] = ()) -> str:
    _, _, i = split_options(args, values, long_values)
    return args[i] if i < len(args) else ""
