"""Files: deleting, overwriting, copying, permissions, find."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from terminal.risk.model import Cmd, Hit, Risk
from terminal.risk.paths import (
    _PROTECTED_FILE,
    _SYSTEM_DIRS,
    _SYSTEM_PREFIXES,
    has_option,
    is_critical,
    is_device,
    is_hook_file,
    is_root_or_home,
    norm_path,
    operands,
    option_values,
    receives_runs_later,
    remember_link,
    runs_later,
    split_options,
)
from terminal.risk.registry import WRITES_UNSEEN, register

if TYPE_CHECKING:
    from terminal.risk.walker import _Walker


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


def write_target(path: str, verb: str) -> Iterator[Hit]:
    """Rules for anything that writes to `path` (redirections, tee, dd of=, cp/mv destinations)."""
    later = runs_later(path)
    if is_device(path) or path in {"/dev/mem", "/dev/kmem", "/dev/port"}:
        yield Hit(Risk.DANGEROUS, f"{verb} to a block device")
    elif _PROTECTED_FILE.match(path):
        yield Hit(Risk.DANGEROUS, f"{verb} to an account or sudoers file")
    elif is_hook_file(path):
        yield Hit(Risk.DANGEROUS, f"{verb} to the terminal's command hook file (tampering)")
    elif path == "/proc/sysrq-trigger":
        yield Hit(Risk.DANGEROUS, f"{verb} to the kernel's SysRq trigger")
    elif later:  # what the next shell, login, ssh or git will run: HIGH, as files_write rates it
        yield Hit(Risk.HIGH, f"{verb} to {path}, {later}")
    elif path.startswith(_SYSTEM_PREFIXES) or path.startswith(("/proc/sys/", "/sys/", "/var/log/")):
        yield Hit(Risk.HIGH, f"{verb} to a system file")


def contents_target(folder: str, verb: str) -> Iterator[Hit]:
    """Rules for anything that fills `folder` with names the line does not show: a folder's contents
    copied (`cp -r dots/. ~`, `rsync -a dots/ ~/`), an archive extracted, a repository cloned."""
    path = norm_path(folder)[0]
    itself = list(write_target(path, verb))
    if itself:  # `~/.ssh`, `/dev/sda`: the folder alone says it
        yield from itself
    elif path == "/" or path in _SYSTEM_DIRS or path.startswith(_SYSTEM_PREFIXES):
        yield Hit(Risk.HIGH, f"{verb} into the root or a system folder ({path})")
    elif lands := receives_runs_later(path):
        yield Hit(Risk.HIGH, f"{verb} into {path}, {lands}")


def _tee(cmd: Cmd, _w: _Walker) -> Iterator[Hit]:
    _, _, i = split_options(cmd.args)
    for a in cmd.args[i:]:
        yield from write_target(norm_path(a)[0], "tee writes")


def _copy_move(cmd: Cmd, _w: _Walker) -> Iterator[Hit]:
    # `--backup[=CONTROL]` and `-Z` take no separate value; `-t DIR` names the destination folder
    opts, _, i = split_options(cmd.args, "tS", ("target-directory", "suffix"))
    operands = cmd.args[i:]
    folders = option_values(cmd.args, "t", ("target-directory",), takes="S")
    # mv also removes its sources; cp/install/ln only write their destination
    sources, dests = (operands, folders[-1:]) if folders else (operands[:-1], operands[-1:])
    if cmd.name == "mv" and any(is_critical(norm_path(a)[0]) or is_hook_file(a) for a in sources):
        yield Hit(Risk.DANGEROUS, "moves the root, a home directory, a system path or the hook file")
        return
    verb = f"{cmd.name} writes"
    recursive = cmd.name == "cp" and bool(opts & {"r", "R", "a", "recursive", "archive"})
    if recursive and dests and (opts & {"T", "no-target-directory"} or any(_is_contents(s) for s in sources)):
        yield from contents_target(dests[0], f"{cmd.name} copies a folder's contents")  # `cp -r dots/. ~`
    for a in dests:
        yield from _into(a, sources, bool(folders) or len(sources) > 1 or _is_folder(a), verb)
    if cmd.name == "ln" and len(sources) == 1 and dests and not folders:
        remember_link(sources[0], dests[0])


def _into(dest: str, sources: list[str], folder: bool, verb: str) -> Iterator[Hit]:
    """A write to `dest`, and when it is a folder to each source's name in it (`cp x/.bashrc ~`
    writes ~/.bashrc; `cp -r x/.ssh ~/` writes ~/.ssh)."""
    yield from write_target(norm_path(dest)[0], verb)
    if folder:
        for src in sources:
            name = posixpath.basename(src.rstrip("/"))
            if name not in ("", ".", ".."):
                yield from write_target(norm_path(posixpath.join(dest, name))[0], verb)


def _is_contents(source: str) -> bool:
    """A source whose contents, not itself, land in the destination: `dots/.`, `.`, `..`."""
    return posixpath.basename(source.rstrip("/")) in ("", ".", "..")


def _is_folder(path: str) -> bool:
    """A destination that is a folder whatever the file system holds: `dir/`, `.`, `..`, a home."""
    return path.endswith("/") or path in (".", "..") or is_root_or_home(norm_path(path)[0])


# rsync's and scp's options that take a value (so a value is not read as an operand).
_RSYNC_TAKES = "BefMT"
_RSYNC_LONG_TAKES = (
    "exclude", "include", "filter", "exclude-from", "include-from", "files-from", "rsh", "rsync-path", "temp-dir",
    "compare-dest", "copy-dest", "link-dest", "backup-dir", "suffix", "chmod", "chown", "usermap", "groupmap",
    "partial-dir", "log-file", "log-file-format", "out-format", "password-file", "bwlimit", "timeout",
    "contimeout", "port", "sockopts", "max-size", "min-size", "max-delete", "block-size", "modify-window",
    "compress-level", "compress-choice", "checksum-choice", "skip-compress", "iconv", "info", "debug", "protocol",
    "read-batch", "write-batch", "only-write-batch", "stop-after", "stop-at", "remote-option", "outbuf",
    "max-alloc",
)
_SCP_TAKES = "cDFiJlmoOPSX"
_REMOTE = re.compile(r"^([\w.@-]+:|rsync://)")


def _remote_copy(cmd: Cmd, _w: _Walker) -> Iterator[Hit]:
    """`rsync`/`scp SRC… DEST` to a local DEST: as cp. A recursive rsync of `dots/` (trailing
    slash) copies the folder's contents, not the folder."""
    rsync = cmd.name == "rsync"
    words = operands(cmd.args, *((_RSYNC_TAKES, _RSYNC_LONG_TAKES) if rsync else (_SCP_TAKES,)))
    if len(words) < 2 or _REMOTE.match(words[-1]):
        return
    sources, dest = [_REMOTE.sub("", s) for s in words[:-1]], words[-1]  # `host:dots/` -> `dots/`
    recursive = has_option(cmd.args, "ra", ("recursive", "archive"), takes=_RSYNC_TAKES) if rsync else (
        has_option(cmd.args, "r", takes=_SCP_TAKES))
    contents = [s for s in sources if _is_contents(s) or (rsync and s.endswith("/"))]
    if recursive and contents:
        yield from contents_target(dest, f"{cmd.name} copies a folder's contents")
    named = [s for s in sources if s not in contents]
    yield from _into(dest, named, len(sources) > 1 or _is_folder(dest), f"{cmd.name} writes")


_SETUID_MODE = re.compile(r"^0?[2-7][0-7]{3}$|(^|,)[ugoa]*[+=][rwxXt]*s")


def _install(cmd: Cmd, _w: _Walker) -> Iterator[Hit]:
    """`install -m MODE SRC… DEST`: as a write to DEST; a setuid/setgid mode makes a root program."""
    opts, _, i = split_options(cmd.args, "gmotSZ", ("group", "mode", "owner", "target-directory", "suffix"))
    modes = option_values(cmd.args, "m", ("mode",), takes="gotSZ")
    if any(_SETUID_MODE.search(m) for m in modes):
        yield Hit(Risk.HIGH, "installs a setuid/setgid program")
    operands = cmd.args[i:]
    folders = option_values(cmd.args, "t", ("target-directory",), takes="gmoSZ")
    if opts & {"d", "directory"}:  # every operand is a folder it makes
        for a in operands:
            yield from write_target(norm_path(a)[0], "install writes")
    elif folders:  # `install -t DIR SRC…`: each source's name in DIR
        yield from _into(folders[-1], operands, True, "install writes")
    elif operands:
        yield from _into(operands[-1], operands[:-1], len(operands) > 2 or _is_folder(operands[-1]),
                         "install writes")


def _truncate(cmd: Cmd, _w: _Walker) -> Iterator[Hit]:
    _, _, i = split_options(cmd.args, "rs", ("reference", "size"))
    for a in cmd.args[i:]:
        yield from write_target(norm_path(a)[0], "truncate writes")


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
                # `{}` is every file found: judge the command on the contents of each start path
                for start in starts or ["."]:
                    inner = [x.replace("{}", start.rstrip("/") + "/*") for x in args[n + 1 : end]]
                    yield from w.run_argv(inner, cmd)


register("rm", "unlink", family="files", check=_rm, input_args=Hit(Risk.HIGH, "deletes files named by its input"),
         summary="`rm -r` of the root, a home or a system directory, `--no-preserve-root`, account files: DANGEROUS; "
                 "other recursive deletion or files in system directories: HIGH; plain deletion: MODERATE",
         benign={"rm notes.txt": Risk.MODERATE}, harmful={"rm -rf build": Risk.HIGH, "rm -rf /": Risk.DANGEROUS})
register("shred", family="files", check=_shred,
         input_args=Hit(Risk.DANGEROUS, "irrecoverably overwrites files or devices named by its input"),
         summary="irrecoverable overwriting: of a device or system file DANGEROUS, of other files HIGH",
         benign={"shred --help": Risk.HIGH}, harmful={"shred /dev/sda": Risk.DANGEROUS})
register("truncate", family="files", check=_truncate, input_args=WRITES_UNSEEN,
         summary="truncating a file: as a write to it (system files HIGH, devices DANGEROUS); logs under /var/log HIGH",
         benign={"truncate -s0 out.txt": Risk.SAFE}, harmful={"truncate -s0 /etc/passwd": Risk.DANGEROUS})
register("tee", family="files", check=_tee, input_args=WRITES_UNSEEN,
         summary="`tee FILE`: as a write to FILE",
         benign={"ls | tee out.txt": Risk.SAFE},
         harmful={"echo x | tee -a .profile": Risk.HIGH, "echo x | tee /dev/sda": Risk.DANGEROUS})
register("cp", "mv", "ln", family="files", check=_copy_move, input_args=WRITES_UNSEEN,
         summary="copies, moves and links: as a write to the destination (into a folder: to each source's name "
                 "there); a folder's contents copied (`cp -r dots/. ~`, `cp -rT dots ~`) into a home, `.ssh`, a "
                 "folder above start-up files (`~/.config`, `.git`) or a system folder HIGH; moving the root, a "
                 "home or a system path DANGEROUS",
         benign={"cp a.txt b.txt": Risk.SAFE, "cp ~/.bashrc /tmp/bashrc.bak": Risk.SAFE, "cp -r src ~/": Risk.SAFE},
         harmful={"cp k ~/.ssh/authorized_keys": Risk.HIGH, "cp dots/.bashrc ~": Risk.HIGH,
                  "cp -r dots/. ~": Risk.HIGH, "cp image.iso /dev/sda": Risk.DANGEROUS})
register("rsync", "scp", family="files", check=_remote_copy,
         summary="copies to a local folder: as `cp`; `rsync -a dots/ DEST` (a folder's contents) into a home, "
                 "`.ssh` or a folder above start-up files (`~/.config`, `.git`) HIGH",
         benign={"rsync -a src/ backup/": Risk.SAFE, "scp host:notes.txt .": Risk.SAFE},
         harmful={"rsync -a dots/ ~/": Risk.HIGH, "scp host:.bashrc ~": Risk.HIGH})
register("install", family="files", check=_install, input_args=WRITES_UNSEEN,
         summary="`install`: as a write to the destination (`-t DIR`: each source's name there); a setuid/setgid "
                 "mode (`-m 4755`) HIGH",
         benign={"install -m 755 run.sh bin/run": Risk.SAFE, "install -t ~ run.sh": Risk.SAFE},
         harmful={"install -m 4755 x ./x": Risk.HIGH, "install -t ~ dots/.profile": Risk.HIGH,
                  "install x /dev/sda": Risk.DANGEROUS})
register("find", family="files", check=_find,
         input_args=Hit(Risk.HIGH, "find with arguments from its input can delete files or run commands"),
         summary="`find -delete` under the root/home/system paths DANGEROUS, elsewhere HIGH; `-exec`/`-execdir`/"
                 "`-ok`/`-okdir CMD` judged as CMD",
         benign={"find . -name '*.py'": Risk.SAFE},
         harmful={"find . -delete": Risk.HIGH, "find / -type f -exec rm -f {} +": Risk.DANGEROUS})
register("chmod", "chown", "chgrp", family="files", check=_chmod_chown,
         input_args=Hit(Risk.HIGH, "changes the owner or mode of files named by its input"),
         summary="recursive on root/home/system paths or on account files DANGEROUS; world-writable, setuid, "
                 "system directories HIGH",
         benign={"chmod +x run.sh": Risk.SAFE}, harmful={"chmod 4755 x": Risk.HIGH, "chmod -R 777 /": Risk.DANGEROUS})
