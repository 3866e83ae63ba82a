"""Archivers that run commands."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from terminal.risk.model import Cmd, Hit, Risk
from terminal.risk.paths import has_option, option_values
from terminal.risk.registry import RUNS_UNSEEN, register
from terminal.risk.rules.files import contents_target
from terminal.risk.rules.options import _command_options

if TYPE_CHECKING:
    from terminal.risk.walker import _Walker


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
    extracts = any(a in {"-x", "--extract", "--get"} or re.fullmatch(r"-[A-Za-z]*x[A-Za-z]*", a) for a in args)
    if extracts:
        # without -C, the current folder: judged when the line says where that is (`cd ~ && tar xf a.tar`)
        places = option_values(args, "C", ("directory",), takes="bfFgHIKLNTVX") or ["."]
        hits = [hit for d in places for hit in contents_target(d, "tar extracts an archive")]
        yield from hits
        if not hits and {"-P", "--absolute-names"} & set(args):
            yield Hit(Risk.HIGH, "extracts an archive with absolute paths (can overwrite system files)")
    for value in option_values(args, "", ("checkpoint-action",)):
        action, _, command = value.partition("=")
        if action == "exec":
            yield from w.run_string(command, None, cmd)


def _zip(cmd: Cmd, w: _Walker) -> Iterator[Hit]:
    """zip -TT CMD (also --unzip-command) tests the archive by running CMD."""
    for n, a in enumerate(cmd.args):
        if a == "-TT" and n + 1 < len(cmd.args):
            yield from w.run_string(cmd.args[n + 1], None, cmd)
        elif a.startswith("-TT") and len(a) > 3:
            yield from w.run_string(a[3:], None, cmd)
    yield from _command_options(cmd, w)


def _unzip(cmd: Cmd, _w: _Walker) -> Iterator[Hit]:
    """`unzip a.zip -d DIR`: the archive's files land in DIR under names the line does not show."""
    if has_option(cmd.args, "lvtcpZ", takes="dPx"):  # lists, tests or prints: extracts nothing
        return
    for folder in option_values(cmd.args, "d", takes="P") or ["."]:  # `.`: judged when the line says where
        yield from contents_target(folder, "unzip extracts an archive")


register("tar", family="archives", check=_tar, input_args=RUNS_UNSEEN,
         summary="extracting into `/`, a system folder, a home, `.ssh` or a folder above start-up files (`-C ~`, "
                 "`-C ~/.config`), or with absolute names (`-P`) HIGH; `--checkpoint-action=exec=`"
                 ", `--to-command`, `-I`, `-F`, `--rsh-command`: judged as the command",
         benign={"tar czf out.tgz src": Risk.SAFE, "tar xf a.tar -C out": Risk.SAFE},
         harmful={"tar xf evil.tar -C /": Risk.HIGH, "tar -xf dots.tar -C ~": Risk.HIGH,
                  "tar -I 'mkfs.ext4 /dev/sda' -xf a.tar": Risk.DANGEROUS})
register("unzip", family="archives", check=_unzip,
         summary="`unzip -d DIR` into `/`, a system folder, a home, `.ssh` or a folder above start-up files HIGH",
         benign={"unzip x.zip -d /tmp/x": Risk.SAFE, "unzip x.zip": Risk.SAFE},
         harmful={"unzip x.zip -d ~": Risk.HIGH, "unzip -o keys.zip -d ~/.ssh": Risk.HIGH})
register("zip", family="archives", check=_zip,
         summary="`zip -TT CMD`/`--unzip-command` judged as CMD", benign={"zip -r out.zip src": Risk.SAFE},
         harmful={"zip out.zip f -T -TT 'rm -rf /'": Risk.DANGEROUS})
