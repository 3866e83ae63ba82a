"""Signals to processes."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from terminal.risk.model import Cmd, Hit, Risk
from terminal.risk.registry import register

if TYPE_CHECKING:
    from terminal.risk.walker import _Walker


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


register("kill", family="processes", check=_kill, input_args=Hit(Risk.HIGH, "signals processes named by its input"),
         summary="a signal to -1 DANGEROUS, to PID 1 HIGH", benign={"kill 12345": Risk.SAFE},
         harmful={"kill 1": Risk.HIGH, "kill -9 -1": Risk.DANGEROUS})
register("pkill", "killall", "killall5", family="processes", check=_pkill,
         input_args=Hit(Risk.HIGH, "signals processes named by its input"),
         summary="`killall5`, `pkill -u root` DANGEROUS; by name MODERATE", benign={"pkill myscript": Risk.MODERATE},
         harmful={"pkill -u root": Risk.DANGEROUS})
