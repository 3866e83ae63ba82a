"""Commands without a rule of their own."""

from __future__ import annotations

from collections.abc import Iterator

from terminal.risk.model import Cmd, Hit, Risk, Trait


def unknown_command(cmd: Cmd) -> Iterator[Hit]:
    raw = cmd.argv[0]
    if "/" in raw and not raw.startswith(("/bin/", "/usr/", "/sbin/", "/opt/")):
        yield Hit(Risk.MODERATE, "runs a program or script from a file", Trait.SCRIPT_FILE)
