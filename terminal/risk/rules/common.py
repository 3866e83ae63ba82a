"""Commands without a rule of their own: a short allow-list of harmless ones is SAFE; anything
else is at least MODERATE, because a table can never list everything a program can do."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator
from typing import TYPE_CHECKING

from terminal.risk.model import Cmd, Hit, Risk, Trait
from terminal.risk.registry import RULES, register

if TYPE_CHECKING:
    from terminal.risk.walker import _Walker


# Programs and builtins that only read, print or change the shell's own state. Keep it short:
# a command here is trusted with any arguments.
HARMLESS = (
    # files and text, read-only
    "ls", "ll", "dir", "cat", "tac", "nl", "head", "tail", "more", "wc", "grep", "egrep", "fgrep", "rg", "ag",
    "cut", "tr", "uniq", "comm", "diff", "cmp", "paste", "join", "fold", "fmt", "column", "expand", "unexpand",
    "od", "hexdump", "strings", "file", "stat", "du", "df", "tree", "realpath", "readlink", "basename", "dirname",
    "md5sum", "sha1sum", "sha256sum", "sha512sum", "cksum", "b2sum", "jq", "yq", "base64", "rev", "look",
    "zcat", "zgrep", "zless", "bzcat", "xzcat",
    # making things in the working area
    "mkdir", "touch", "mktemp",
    # printing and shell state
    "echo", "pwd", "dirs", "true", "false", ":", "test", "[", "sleep", "seq", "yes",
    "date", "cal", "clear", "tput", "stty", "printenv", "type", "which", "whereis", "whatis", "apropos", "help",
    "info", "exit", "logout", "return", "shift", "wait", "jobs", "fg", "bg", "disown", "umask", "ulimit",
    "times", "caller", "dirs", "suspend", "tty", "locale", "getconf", "nproc", "arch",
    # who and what is running
    "whoami", "id", "groups", "who", "w", "users", "last", "uptime", "uname", "hostname", "ps", "pgrep", "top",
    "htop", "free", "vmstat", "iostat", "lscpu", "lsblk", "lsmod", "lsusb", "lspci", "ss", "netstat", "lsof",
    # network look-ups
    "ping", "ping6", "dig", "nslookup", "host", "traceroute", "tracepath", "whois",
    # everyday development work
    "diff3", "patch", "gzip", "gunzip", "bzip2", "bunzip2", "xz", "unxz", "zstd", "cmake", "ninja",
    "gcc", "g++", "cc", "clang", "go", "rustc", "javac", "java", "pytest", "ruff", "black", "mypy", "tox",
    "nano", "code", "ed",
)


def _harmless(cmd: Cmd, _w: object) -> Iterator[Hit]:
    return iter(())


register(*HARMLESS, family="common", check=_harmless, tags={"allowed"},
         summary="harmless commands (`ls`, `cat`, `echo`, `pwd`, `cd`, `grep`, …): SAFE, judged only by their "
                 "redirections and substitutions",
         benign={"ls -la": Risk.SAFE, "cat notes.txt | grep x": Risk.SAFE, "grep PATH ~/.bashrc": Risk.SAFE},
         harmful={"echo x >> ~/.bashrc": Risk.HIGH, "echo x > /dev/sda": Risk.DANGEROUS})


def _cd(cmd: Cmd, w: _Walker) -> Iterator[Hit]:
    """`cd DIR`/`pushd DIR`: later relative paths on the line are judged under DIR."""
    operands = [a for a in cmd.args if not a.startswith("-") or a == "-"]
    if cmd.name == "cd" and not operands:
        operands = ["~"]  # `cd` alone goes home
    w.change_directory(operands[0] if operands and cmd.name != "popd" else None)
    return iter(())


register("cd", "pushd", "popd", family="common", check=_cd,
         summary="changing directory: SAFE; later relative paths on the line are judged under it",
         benign={"cd /tmp && ls": Risk.SAFE},
         harmful={"cd .ssh && cat k >> authorized_keys": Risk.HIGH, "cd /dev && mkfs.ext4 sda": Risk.DANGEROUS})

# Names a pattern in the command word may stand for, besides the registered ones.
_MKFS_TYPES = ("ext2", "ext3", "ext4", "xfs", "btrfs", "vfat", "fat", "msdos", "ntfs", "exfat", "f2fs", "minix")
_GLOB_LIMIT = 16


def glob_command(cmd: Cmd, w: _Walker) -> Iterator[Hit]:
    """`/usr/sbin/mkf?.ext4`, `/bin/r[m]`: bash expands the pattern against the file system, which a
    pure rating cannot see. Refuse it (HIGH), and judge it as every known command it could match."""
    yield Hit(Risk.HIGH, "the command name is a pattern the shell expands at run time, so it cannot be judged")
    pattern = cmd.argv[0].rsplit("/", 1)[-1]
    known = set(RULES) | {f"mkfs.{t}" for t in _MKFS_TYPES}
    for name in sorted(n for n in known if fnmatch.fnmatchcase(n, pattern))[:_GLOB_LIMIT]:
        yield from w.run_argv([name, *cmd.args], cmd)


def unknown_command(cmd: Cmd) -> Iterator[Hit]:
    raw = cmd.argv[0]
    if "/" in raw and not raw.startswith(("/bin/", "/usr/", "/sbin/", "/opt/")):
        yield Hit(Risk.MODERATE, "runs a program or script from a file", Trait.SCRIPT_FILE)
    else:
        yield Hit(Risk.MODERATE, "a command the rules do not know, so it is not rated SAFE")
