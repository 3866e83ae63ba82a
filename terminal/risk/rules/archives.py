"""Archivers that run commands."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from terminal.risk.model import Cmd, Hit, Risk
from terminal.risk.paths import _SYSTEM_PREFIXES, is_critical, norm_path, option_values
from terminal.risk.registry import RUNS_UNSEEN, register
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
        places = [norm_path(d)[0] for d in option_values(args, "C", ("directory",), takes="bfFgHIKLNTVX")]
        if any(is_critical(p) or p.startswith(_SYSTEM_PREFIXES) for p in places):
            yield Hit(Risk.HIGH, "extracts an archive over the root or a system directory")
        elif {"-P", "--absolute-names"} & set(args):
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


register("tar", family="archives", check=_tar, input_args=RUNS_UNSEEN,
         summary="extracting over `/` or a system directory (`-C /`, `-P`) HIGH; `--checkpoint-action=exec=`"
                 ", `--to-command`, `-I`, `-F`, `--rsh-command`: judged as the command",
         benign={"tar czf out.tgz src": Risk.SAFE, "tar xf a.tar -C out": Risk.SAFE},
         harmful={"tar xf evil.tar -C /": Risk.HIGH, "tar -I 'mkfs.ext4 /dev/sda' -xf a.tar": Risk.DANGEROUS})
register("zip", family="archives", check=_zip,
         summary="`zip -TT CMD`/`--unzip-command` judged as CMD", benign={"zip -r out.zip src": Risk.SAFE},
         harmful={"zip out.zip f -T -TT 'rm -rf /'": Risk.DANGEROUS})
