"""sed: commands and writes inside its script."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from terminal.risk.model import Cmd, Hit, Risk, Trait
from terminal.risk.paths import norm_path
from terminal.risk.registry import WRITES_UNSEEN, register
from terminal.risk.rules.files import write_target

if TYPE_CHECKING:
    from terminal.risk.walker import _Walker


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
            yield from write_target(norm_path(f)[0], "sed -i writes")
    if sandbox:
        return
    for script in scripts:
        for letter, value in _sed_commands(script):
            if letter == "e" and value:
                yield from w.run_string(value, None, cmd)
            elif letter in {"e", "s///e"}:
                yield Hit(Risk.HIGH, f"sed {letter} runs text from its input as a shell command")
            elif letter in {"w", "W", "s///w"} and value:
                yield from write_target(norm_path(value)[0], "sed writes")


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


register("sed", "gsed", family="sed", check=_sed, input_args=WRITES_UNSEEN,
         summary="`e CMD` judged as CMD; `s///e` HIGH; `w FILE`/`-i` as writes; `-f FILE` MODERATE",
         benign={"sed -n 1p notes.txt": Risk.SAFE}, harmful={"sed '1e rm -rf /' notes.txt": Risk.DANGEROUS})
