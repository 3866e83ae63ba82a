"""Tampering with the terminal's command hook (builtins, traps, shell options)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from terminal.risk.model import Cmd, Hit, Risk
from terminal.risk.paths import _HOOK_NAME, _dynamic, option_values, split_options
from terminal.risk.registry import RUNS_UNSEEN, register
from terminal.risk.rules.variables import _assignments, _base_name, _names_code

if TYPE_CHECKING:
    from terminal.risk.walker import _Walker


def _history(cmd: Cmd, _w: _Walker) -> Iterator[Hit]:
    opts, _, _ = split_options(cmd.args, "d")
    if opts & {"c", "d"}:
        yield Hit(Risk.MODERATE, "clears the shell history")


def _bind(cmd: Cmd, w: _Walker) -> Iterator[Hit]:
    """`bind -x 'KEYSEQ: COMMAND'` runs COMMAND whenever the key is pressed; any other binding
    (`bind '"Z": accept-line'`, a macro, `-f FILE`) can turn typed text into other lines."""
    commands = option_values(cmd.args, "x", takes="mfqur")
    skip = {*commands, *option_values(cmd.args, "m", takes="fqurx"), *option_values(cmd.args, "q", takes="mfurx"),
            *option_values(cmd.args, "u", takes="mfqrx"), *option_values(cmd.args, "r", takes="mfqux")}
    if option_values(cmd.args, "f", takes="mqurx") or any(
            ":" in a and not a.startswith("-") and a not in skip for a in cmd.args):
        yield Hit(Risk.HIGH, "changes key bindings, which can turn what is typed into other lines or commands")
    for spec in commands:
        m = re.match(r'\s*("(?:[^"\\]|\\.)*"|[^:]*)\s*:\s*(.*)$', spec, re.S)
        command = m.group(2).strip() if m else ""
        if len(command) > 1 and command[0] == command[-1] and command[0] in "\"'":
            command = command[1:-1]
        if not m:
            yield Hit(Risk.HIGH, "binds a key to a command that cannot be assessed")
        elif command:
            yield from w.run_string(command, None, cmd)


def _complete(cmd: Cmd, w: _Walker) -> Iterator[Hit]:
    """complete/compgen -C CMD and -F FUNC run code when completing; -W words are expanded then."""
    takes = "oAGWXPSCF"
    for value in option_values(cmd.args, "C", takes=takes):
        yield from w.run_string(value, None, cmd)
    for value in option_values(cmd.args, "F", takes=takes):
        # a function defined elsewhere (judged where it is defined), unless it is not a plain name
        if not re.fullmatch(r"[\w:.-]+", value) or _HOOK_NAME.match(value):
            yield from w.run_string(value, None, cmd)
    for words in option_values(cmd.args, "W", takes=takes):
        if "$" in words or "`" in words:
            yield from w.run_string(f"echo {words}", None, cmd)


def _trap(cmd: Cmd, w: _Walker) -> Iterator[Hit]:
    if cmd.args[:1] in (["-p"], ["-l"]) or not cmd.args:
        return
    args = cmd.args[1:] if cmd.args[0] == "--" else cmd.args
    signals = {re.sub(r"^SIG", "", a.upper()) for a in args}
    if "DEBUG" in signals:
        yield Hit(Risk.DANGEROUS, "replaces or removes the DEBUG trap that runs the terminal's command hook")
    elif len(args) > 1 and args[0] not in {"-", ""}:  # the action runs later, when the signal comes
        # Inside a trap's action bash tells the hook the command it interrupted, not the one it
        # runs (BASH_COMMAND), so none of the action's commands is rated when it runs.
        yield Hit(Risk.DANGEROUS, "sets a trap whose commands would run unchecked: the terminal's command hook "
                  "cannot see the commands of a trap's action")
        yield from w.run_string(args[0], None, cmd)


def _mapfile(cmd: Cmd, w: _Walker) -> Iterator[Hit]:
    # mapfile/readarray -C CALLBACK: bash runs the callback as a command string.
    args, i = cmd.args, 0
    while i < len(args) and args[i].startswith("-") and args[i] not in ("-", "--"):
        a = args[i]
        for j, ch in enumerate(a[1:], 1):
            if ch in "dnOsucC":
                value = a[j + 1 :]
                if not value:
                    i += 1
                    value = args[i] if i < len(args) else ""
                if ch == "C":
                    yield from w.run_string(value, None, cmd)
                break
        i += 1


def _shopt(cmd: Cmd, _w: _Walker) -> Iterator[Hit]:
    opts, _, i = split_options(cmd.args)
    if "u" in opts and {"extdebug", "functrace"} & set(cmd.args[i:]):
        yield Hit(Risk.DANGEROUS, "turns off extdebug/functrace that the terminal's command hook needs")


def _set(cmd: Cmd, _w: _Walker) -> Iterator[Hit]:
    args = cmd.args
    if not args:  # `set` alone prints every variable
        yield LISTS_SECRET
        return
    for n, a in enumerate(args):
        if a in {"-", "--"} or a[:1] not in {"-", "+"} and args[n - 1 : n] != ["-o"]:
            break  # the positional parameters begin
        if (a.startswith("-") and a != "-o" and "x" in a[1:]) or (a == "-o" and args[n + 1 : n + 2] == ["xtrace"]):
            yield XTRACE
            break
    for n, a in enumerate(args):
        if a.startswith("+") and "T" in a and a != "+o" or (a == "+o" and args[n + 1 : n + 2] == ["functrace"]):
            yield Hit(Risk.DANGEROUS, "turns off functrace that the terminal's command hook needs")
            return
        if a == "+o" and args[n + 1 : n + 2] == ["history"]:
            yield Hit(Risk.MODERATE, "turns off the shell history")


def _unset(cmd: Cmd, _w: _Walker) -> Iterator[Hit]:
    _, _, i = split_options(cmd.args)
    if any(_HOOK_NAME.match(a) for a in cmd.args[i:]):
        yield Hit(Risk.DANGEROUS, "unsets the terminal's command hook")


# With no names these print every variable (of a kind) with its value: the hook's secret and its
# cache of allowed commands (readonly, an associative array) among them.
_LISTERS = {"declare", "typeset", "readonly"}
# The hook's own commands are traced too, the secret in their arguments (`ok[$cmd]=SECRET`).
XTRACE = Hit(Risk.DANGEROUS, "traces every command the shell runs, the terminal's command hook's included, "
             "which prints its secret")
LISTS_SECRET = Hit(Risk.DANGEROUS,
                   "prints every variable with its value, the terminal's command hook secret among them")


def _lists_secret(name: str, opts: set, operands: list[str]) -> bool:
    """Whether the line lists variables with their values, the secret (read-only) or the cache (an
    associative array) among them: no names, and no attribute that leaves both out (`declare -x`,
    `-i`, `-a` list only exported, integer, indexed ones). `+x` lists those *without* x: all but."""
    plus = {letter for operand in operands if operand.startswith("+") for letter in operand[1:]}
    if name not in _LISTERS or any(not operand.startswith("+") for operand in operands) or (opts | plus) & {"f", "F"}:
        return False
    filters = set(opts) - {"p", "g"}
    if plus or not filters:
        return True
    return not filters & {"a", "A"} if name == "readonly" else bool(filters & {"r", "A"})


def _declare(cmd: Cmd, w: _Walker) -> Iterator[Hit]:
    opts, _, i = split_options(cmd.args)
    operands = cmd.args[i:]
    if _lists_secret(cmd.name, opts, operands):  # `declare -p`, `readonly`, `typeset -A`, `declare +x`
        yield LISTS_SECRET
        return
    printing = bool(opts) and opts <= {"p", "f", "F"} and not any("=" in a for a in operands)
    if printing and not opts & {"f", "F"} and any(_dynamic(a) for a in operands):  # as `${!v}` (expansions.py)
        yield Hit(Risk.HIGH, f"{cmd.name} -p prints a variable named at run time, which cannot be assessed")
    elif not printing and any(_HOOK_NAME.match(_base_name(a.split("=")[0])) for a in operands):
        yield Hit(Risk.DANGEROUS, f"{cmd.name} changes the terminal's command hook variables or functions")
    elif "n" in opts and cmd.name in {"declare", "typeset", "local"}:
        yield from _namerefs(cmd.name, operands)
    elif not printing:
        yield from _assignments(cmd, w, operands, 1 + i)


def _namerefs(builtin: str, operands: list[str]) -> Iterator[Hit]:
    """`declare -n ref=GIT_PAGER`: later assignments to ref set GIT_PAGER, out of the rules' sight."""
    for operand in operands:
        name, eq, target = operand.partition("=")
        target = _base_name(target)
        if _HOOK_NAME.match(target):
            yield Hit(Risk.DANGEROUS, f"{builtin} -n makes {name} another name for {target}, a variable of the "
                      "terminal's command hook")
        elif not eq:
            yield Hit(Risk.HIGH, f"{builtin} -n {name} without a target takes its target from the next assignment, "
                      "which cannot be assessed")
        elif _dynamic(target) or _names_code(target):
            yield Hit(Risk.HIGH, f"{builtin} -n makes {name} another name for {target}, so what is later assigned "
                      "to it cannot be assessed")


register("history", family="hook", check=_history, summary="`history -c`/`-d` MODERATE",
         benign={"history": Risk.SAFE}, harmful={"history -c": Risk.MODERATE})
register("bind", family="hook", check=_bind, input_args=RUNS_UNSEEN,
         summary="`bind -x 'KEY: CMD'` judged as CMD; other bindings and `-f` HIGH",
         benign={"bind -l": Risk.SAFE}, harmful={"bind -x '\"\\C-t\": rm -rf /'": Risk.DANGEROUS})
register("complete", "compgen", family="hook", check=_complete, input_args=RUNS_UNSEEN,
         summary="`complete -C CMD`, `-F FUNC` of the hook, `-W '$(…)'` judged as the command",
         benign={"complete -p": Risk.SAFE}, harmful={"complete -C 'rm -rf /' ls": Risk.DANGEROUS})
register("trap", family="hook", check=_trap, input_args=RUNS_UNSEEN,
         summary="setting any trap action DANGEROUS (the hook cannot see its commands); resetting or ignoring allowed",
         benign={"trap - INT": Risk.SAFE}, harmful={"trap 'echo bye' EXIT": Risk.DANGEROUS})
register("mapfile", "readarray", family="hook", check=_mapfile, input_args=RUNS_UNSEEN,
         summary="`mapfile -C CALLBACK` judged as the callback", benign={"mapfile lines < notes.txt": Risk.SAFE},
         harmful={"mapfile -C 'rm -rf /' -c 1 x < notes.txt": Risk.DANGEROUS})
register("shopt", family="hook", check=_shopt, input_args=RUNS_UNSEEN, summary="`shopt -u extdebug` DANGEROUS",
         benign={"shopt -s globstar": Risk.SAFE}, harmful={"shopt -u extdebug": Risk.DANGEROUS})
register("set", family="hook", check=_set, input_args=RUNS_UNSEEN,
         summary="`set +T`/`+o functrace`, `set` alone and `set -x` (both print the hook's secret) DANGEROUS; "
                 "`set +o history` MODERATE",
         benign={"set -e": Risk.SAFE, "set -euo pipefail": Risk.SAFE},
         harmful={"set +T": Risk.DANGEROUS, "set": Risk.DANGEROUS, "set -x": Risk.DANGEROUS})
register("unset", family="hook", check=_unset, input_args=RUNS_UNSEEN,
         summary="unsetting the hook's functions or variables DANGEROUS", benign={"unset FOO": Risk.SAFE},
         harmful={"unset -f __autobot_hook": Risk.DANGEROUS})
register("declare", "typeset", "local", "export", "readonly", family="hook", check=_declare, input_args=RUNS_UNSEEN,
         summary="declaring the hook's variables, or listing every variable (`declare -p`, `readonly`: the "
                 "hook's secret among them) DANGEROUS; variables programs run judged as their values",
         benign={"export FOO=1": Risk.SAFE, "declare -p PATH": Risk.SAFE, "declare -F": Risk.SAFE,
                 "declare -x": Risk.SAFE},
         harmful={"export PROMPT_COMMAND=x": Risk.DANGEROUS, 'declare -p "$v"': Risk.HIGH,
                  "declare -p": Risk.DANGEROUS, "readonly": Risk.DANGEROUS, "declare +x": Risk.DANGEROUS})
