"""Pagers that run commands."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from terminal.risk.model import Cmd, Hit, Risk
from terminal.risk.registry import register

if TYPE_CHECKING:
    from terminal.risk.walker import _Walker


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


register("less", family="pagers", check=_less,
         summary="`less +!CMD` judged as CMD; other start commands HIGH", benign={"less notes.txt": Risk.SAFE},
         harmful={"less '+!rm -rf /' notes.txt": Risk.DANGEROUS})
