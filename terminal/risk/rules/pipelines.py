"""Rules about a pipeline as a whole: code piped into a shell or interpreter, secrets piped to the network."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from terminal.risk.model import Cmd, Hit, Risk, Trait
from terminal.risk.paths import is_secret, split_options
from terminal.risk.rules.network import _DOWNLOADERS, _IDENTITY_OPTS, _NET_SENDERS, is_decoder
from terminal.risk.rules.parallel import _parallel_command
from terminal.risk.rules.shells import _INTERPRETERS, _SHELLS

if TYPE_CHECKING:
    from terminal.risk.walker import _Walker


def pipeline_hits(cmd: Cmd, upstream: list[Cmd], w: _Walker) -> Iterator[Hit]:
    reads_code = _reads_code_from_stdin(cmd)
    if not reads_code and cmd.name not in _NET_SENDERS:
        return  # most commands: nothing to compare with what comes before (keeps long pipelines linear)
    names = {c.name for c in upstream}
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
