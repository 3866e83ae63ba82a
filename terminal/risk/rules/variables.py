"""Variables that programs later run as commands or load code from."""

from __future__ import annotations

import posixpath
import re
import shlex
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from terminal.risk.expand import _skip_quoted
from terminal.risk.model import Cmd, Hit, Risk, Trait
from terminal.risk.paths import _HOOK_BUILTINS, _HOOK_ENABLED, _HOOK_NAME, _dynamic, option_values, split_options
from terminal.risk.registry import RUNS_UNSEEN, register
from terminal.risk.rules.git import _git_config_value
from terminal.risk.rules.hookvars import arithmetic_hits, stored_name_hits
from terminal.risk.rules.pagers import _less_command_options
from terminal.risk.walkhelpers import _has_expansion

if TYPE_CHECKING:
    from terminal.risk.walker import _Walker


# Programs run these values through a shell (git runs `$GIT_PAGER` with `sh -c`).
_COMMAND_VARS = {
    "PAGER", "MANPAGER", "GIT_PAGER", "SYSTEMD_PAGER", "PSQL_PAGER", "BAT_PAGER", "DELTA_PAGER", "GH_PAGER",
    "AWS_PAGER", "EDITOR", "VISUAL", "GIT_EDITOR", "GIT_SEQUENCE_EDITOR", "SUDO_EDITOR", "SYSTEMD_EDITOR", "FCEDIT",
    "GH_EDITOR", "KUBE_EDITOR", "SVN_EDITOR", "HGEDITOR", "PSQL_EDITOR", "LESSEDIT", "GIT_SSH_COMMAND", "RSYNC_RSH",
    "RSYNC_CONNECT_PROG", "CVS_RSH", "SVN_SSH", "BROWSER", "GH_BROWSER", "GIT_EXTERNAL_DIFF", "LESSOPEN", "LESSCLOSE",
}


# Programs run the program these values name (as one word, without a shell).
_PROGRAM_VARS = {"GIT_SSH", "GIT_ASKPASS", "SSH_ASKPASS", "SUDO_ASKPASS", "GIT_PROXY_COMMAND"}


# Every program started (or every shell, git or apt) loads code from what these name.
_LOADER_VARS = {"LD_PRELOAD", "LD_AUDIT", "LD_LIBRARY_PATH", "BASH_ENV", "ENV", "GCONV_PATH", "GIT_EXEC_PATH",
                "GIT_TEMPLATE_DIR", "GIT_CONFIG", "GIT_CONFIG_GLOBAL", "GIT_CONFIG_SYSTEM", "APT_CONFIG"}


# Interpreters (and make) load code from what these name (running them on files is already a trait).
_INTERPRETER_VARS = {"PYTHONSTARTUP", "PYTHONPATH", "PYTHONHOME", "PERL5OPT", "PERL5LIB", "PERLLIB", "RUBYOPT",
                     "RUBYLIB", "NODE_OPTIONS", "NODE_PATH", "LUA_INIT", "LUA_INIT_5_1", "LUA_INIT_5_2", "LUA_INIT_5_3",
                     "LUA_INIT_5_4", "JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "JDK_JAVA_OPTIONS", "MAKEFLAGS", "MAKEFILES"}


# Options a program reads from the environment as if they were on its command line.
_OPTION_VARS = {"MANOPT": "man", "TAR_OPTIONS": "tar", "LESS": "less", "SYSTEMD_LESS": "less"}


# bash itself expands these (prompts, the mail message) each time, running any $(...) in them.
_PROMPT_VARS = {"PS0", "PS1", "PS2", "PS3", "PS4", "MAILPATH"}


_GIT_CONFIG_ENV = re.compile(r"^GIT_CONFIG_(KEY|VALUE)_\d+$")


def _base_name(name: str) -> str:
    """`PAGER[0]` -> `PAGER`, `GIT_PAGER+` -> `GIT_PAGER`."""
    return name.split("[", 1)[0].rstrip("+")


def _names_code(name: str) -> bool:
    """A variable whose value names a command or code that programs (or bash) run."""
    return (name in _COMMAND_VARS | _PROGRAM_VARS | _LOADER_VARS | _INTERPRETER_VARS | _OPTION_VARS.keys()
            | _PROMPT_VARS | {"PATH", "GIT_CONFIG_PARAMETERS", "BASH_CMDS", "BASH_ALIASES"}
            or bool(_GIT_CONFIG_ENV.match(name)))


def _assignment_hits(name: str, value: str, word, cmd: Cmd, w: _Walker) -> Iterator[Hit]:
    """Setting `name` to `value` (`NAME=v cmd`, `export NAME=v`, `env NAME=v cmd`): the risk of
    what programs will later run or load because of it. Pagers, editors and the like are judged
    by the command they name, so `GIT_PAGER=cat git log` stays SAFE."""
    yield from stored_name_hits(value)
    if name == "GIT_CONFIG_PARAMETERS":
        yield from _git_config_parameters(value, cmd, w)
    elif name in _COMMAND_VARS:
        if value.strip():
            text = value.lstrip("-|").replace("%s", "FILE") if name.startswith("LESS") else value
            yield from w.run_string(text, word, cmd)
    elif name in _PROGRAM_VARS and value.strip():
        yield from w.run_argv([value], cmd)
    elif name in _LOADER_VARS and value not in {"", "/dev/null"}:
        yield Hit(Risk.HIGH, f"{name} makes programs load code from a file, which cannot be assessed",
                  Trait.LOADS_CODE)
    elif name in _INTERPRETER_VARS and value:
        yield Hit(Risk.MODERATE, f"{name} makes interpreters load code from elsewhere", Trait.LOADS_CODE)
    elif name in _OPTION_VARS and value.strip():
        yield from _option_variable(_OPTION_VARS[name], value, cmd, w)
    elif name in _PROMPT_VARS and re.search(r"\$|`", value):  # `$__autobot_secret` too (rules/hookvars.py)
        if word is not None and _from_another_variable(w.text_of(word), name):
            yield PROMPT_FROM_VARIABLE
        yield from w.run_string('echo "' + value.replace("\\", "\\\\").replace('"', '\\"') + '"', None, cmd)
    elif name in {"BASH_CMDS", "BASH_ALIASES"}:
        yield Hit(Risk.HIGH, f"{name} changes which program or alias a command name runs")
        compound = re.fullmatch(r"\$\(: (.*)\)", value, re.S)  # NAME=(...), as _rewrite leaves it
        for element in _split_words(compound.group(1)) if compound else []:
            key, eq, element_value = element.partition("=")
            if eq and key.startswith("["):
                yield from _element_hits(name, element_value, None, cmd, w)
    elif name == "PATH" and not all(_system_path_entry(entry) for entry in _path_entries(value)):
        yield Hit(Risk.MODERATE, "makes commands be found in a folder of ordinary files, so a plain name can run "
                  "a program or script from it", Trait.LOADS_CODE)
    elif _GIT_CONFIG_ENV.match(name):
        yield Hit(Risk.HIGH, f"{name} sets git configuration, which can name commands git runs")
        if name.startswith("GIT_CONFIG_VALUE_") and value.strip():
            yield from w.run_string(value.lstrip("!"), word, cmd)


PROMPT_FROM_VARIABLE = Hit(Risk.HIGH, "sets a prompt string to another variable's value, which bash expands again "
                           "each time it shows the prompt: text the line does not show (the hook's secret, say)")
_EXPANDED_NAME = re.compile(r"\$\{?([A-Za-z_]\w*)")


def _from_another_variable(source: str, name: str) -> bool:
    """`PS1=$y`, `PS1="${y}> "`: the value is another variable's, expanded as it is assigned (not
    inside single quotes, where `$y` stays text and the prompt expands it once). `PS1="$PS1 …"`
    keeps what the prompt was."""
    i, n, double = 0, len(source), False
    while i < n:
        ch = source[i]
        if ch == "\\":
            i += 2
        elif ch == '"':
            double = not double
            i += 1
        elif not double and (ch == "'" or source.startswith("$'", i)):
            i = _skip_quoted(source, i)
        elif ch == "$" and (m := _EXPANDED_NAME.match(source, i)) and m.group(1) != name:
            return True
        else:
            i += 1
    return False


def _split_words(text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError:
        return text.split()


def _option_variable(program: str, value: str, cmd: Cmd, w: _Walker) -> Iterator[Hit]:
    """MANOPT, TAR_OPTIONS, LESS: options the program takes from the environment."""
    if program == "less":
        yield from _less_command_options([value.strip()] if value.lstrip().startswith("+") else
                                         re.findall(r"(?:^|\s)(\+.*?)(?=\$|$)", value), cmd, w)
        return
    yield from w.run_argv([program, *_split_words(value)], cmd)


def _path_entries(value: str) -> list[str]:
    """PATH's folders, with `${PATH:+$PATH:}`-style idioms read as `$PATH`."""
    value = re.sub(r"\$\{PATH:\+(:?)\$\{?PATH\}?(:?)\}", r"\1$PATH\2", value)
    return value.split(":")


def _system_path_entry(entry: str) -> bool:
    """A PATH entry that adds no folder of ordinary files (an empty entry means the current one)."""
    if entry in {"$PATH", "${PATH}"}:
        return True
    if not entry.startswith("/"):
        return False
    entry = posixpath.normpath(entry)
    return entry in {"/bin", "/sbin", "/usr", "/opt", "/snap/bin"} or entry.startswith(
        ("/bin/", "/usr/", "/sbin/", "/opt/"))


def _git_config_parameters(value: str, cmd: Cmd, w: _Walker) -> Iterator[Hit]:
    """git's own format is `'key'='value' ...`; bashlex has already dropped those inner quotes, so
    entries are split where a new `key=` begins."""
    yield Hit(Risk.HIGH, "GIT_CONFIG_PARAMETERS sets git configuration, which can name commands git runs")
    for entry in re.split(r"\s+(?=['\"]?[A-Za-z][\w.-]*['\"]?=)", value.strip()):
        key, _, config_value = entry.partition("=")
        yield from _git_config_value(key.strip("'\""), config_value.strip("'\""), cmd, w)


def _variables_from_input(names: Iterable[str]) -> Iterator[Hit]:
    """`read NAME`, `printf -v NAME`, `mapfile NAME`, `for NAME; do`: the value is unknown when the
    line is judged."""
    for name in names:
        base = _base_name(name)
        if _HOOK_NAME.match(base):
            yield Hit(Risk.DANGEROUS, f"sets {name}, a variable of the terminal's command hook")
        elif _names_code(base):
            yield Hit(Risk.HIGH, f"sets {name}, which names a command or code that programs run, to a value "
                      "that cannot be assessed")
        elif _dynamic(name):
            yield Hit(Risk.HIGH, f"sets the variable {name}, whose name is computed at run time")


def _read(cmd: Cmd, _w: _Walker) -> Iterator[Hit]:
    _, _, i = split_options(cmd.args, "adinNptu")
    array = option_values(cmd.args, "a", takes="dinNptu")
    yield from _variables_from_input([*cmd.args[i:], *array])


def _printf(cmd: Cmd, _w: _Walker) -> Iterator[Hit]:
    first = cmd.args[:1]
    if first == ["-v"]:
        yield from _variables_from_input(cmd.args[1:2])
    elif first and first[0].startswith("-v") and len(first[0]) > 2:
        yield from _variables_from_input([first[0][2:]])


def _mapfile_variable(cmd: Cmd, _w: _Walker) -> Iterator[Hit]:
    """mapfile/readarray fill the array named by their first operand (MAPFILE without one)."""
    _, _, i = split_options(cmd.args, "dnOsucC")
    yield from _variables_from_input(cmd.args[i : i + 1])


def _getopts(cmd: Cmd, _w: _Walker) -> Iterator[Hit]:
    yield from _variables_from_input(cmd.args[1:2])


def _assignments(cmd: Cmd, w: _Walker, operands: list[str], first: int) -> Iterator[Hit]:
    """`_assignment_hits` for the NAME=value operands of export/declare/env (argv from `first`)."""
    for n, operand in enumerate(operands):
        name, eq, value = operand.partition("=")
        if not eq:
            continue
        word = cmd.words[first + n] if len(cmd.words) > first + n else None
        if _dynamic(name) or (word is not None and _has_expansion(word) and _dynamic(
                w.text_of(word).partition("=")[0])):
            yield Hit(Risk.HIGH, f"sets a variable whose name is computed at run time ({name}), so what it "
                      "sets cannot be assessed")
        elif "[" in name:
            yield from _element_hits(_base_name(name), value, word, cmd, w)
        else:
            yield from _assignment_hits(name.rstrip("+"), value, word, cmd, w)


def _element_hits(name: str, value: str, word, cmd: Cmd, w: _Walker) -> Iterator[Hit]:
    """`NAME[KEY]=value`: arrays are never exported, but bash's own tables are arrays."""
    if _HOOK_NAME.match(name):
        yield Hit(Risk.DANGEROUS, f"assigns {name}, a variable of the terminal's command hook")
    elif name == "BASH_ALIASES" and value.strip():
        yield from w.run_string(value, None, cmd)
    elif name == "BASH_CMDS":
        yield from _hashed_program(value, cmd, w)


def _hashed_program(path: str, cmd: Cmd, w: _Walker) -> Iterator[Hit]:
    """`hash -p PATH NAME` / `BASH_CMDS[NAME]=PATH`: NAME now runs PATH with whatever arguments
    later lines give it, so PATH is judged like a command given arguments from input."""
    yield Hit(Risk.HIGH, f"makes a command name run {path or 'another program'}, so later commands with that "
              "name are not what they seem")
    if path.strip():
        yield from w.run_cmd(Cmd(argv=[path], text=path, top=False, input_args=True))


def _hash(cmd: Cmd, w: _Walker) -> Iterator[Hit]:
    for path in option_values(cmd.args, "p", takes="t"):
        yield from _hashed_program(path, cmd, w)


def _let(cmd: Cmd, w: _Walker) -> Iterator[Hit]:
    yield from arithmetic_hits(" ".join(cmd.args), w.variables)  # `v=__autobot_ok[k]=1; let v` too


def _alias(cmd: Cmd, w: _Walker) -> Iterator[Hit]:
    for a in cmd.args:
        name, eq, value = a.partition("=")
        if eq and (_HOOK_NAME.match(name) or name in _HOOK_BUILTINS):
            yield Hit(Risk.DANGEROUS, f"aliases {name}, which the terminal's command hook relies on")
            return
        if eq and value.strip():  # the alias runs later as this text: judge it now
            yield from w.run_string(value, None, cmd)


def _enable(cmd: Cmd, _w: _Walker) -> Iterator[Hit]:
    opts, _, i = split_options(cmd.args, "f")
    if "f" in opts:
        yield Hit(Risk.HIGH, "loads a builtin from a shared object")
    elif "n" in opts and set(cmd.args[i:]) & _HOOK_ENABLED:
        yield Hit(Risk.DANGEROUS, "disables a builtin the terminal's command hook relies on")
    elif "n" in opts and any(_dynamic(a) for a in cmd.args[i:]):  # `enable -n $(printf kill)`
        yield Hit(Risk.DANGEROUS, "disables builtins named only when it runs (the hook relies on some)")
    elif "n" in opts:
        yield Hit(Risk.MODERATE, "disables shell builtins")


register("read", family="variables", check=_read,
         summary="reading a variable that names code from input HIGH", benign={"read name": Risk.SAFE},
         harmful={"read GIT_PAGER": Risk.HIGH})
register("printf", family="variables", check=_printf, summary="`printf -v` a variable that names code HIGH",
         benign={"printf '%s' x": Risk.SAFE}, harmful={"printf -v PAGER '%s' x": Risk.HIGH})
register("mapfile", "readarray", family="variables", check=_mapfile_variable,
         summary="`mapfile` into a variable that names code HIGH", benign={"mapfile lines < notes.txt": Risk.SAFE},
         harmful={"mapfile PATH < notes.txt": Risk.HIGH})
register("getopts", family="variables", check=_getopts, summary="`getopts` into a variable that names code HIGH",
         benign={"getopts ab opt": Risk.SAFE}, harmful={"getopts ab PAGER": Risk.HIGH})
register("hash", family="variables", check=_hash,
         summary="`hash -p PROGRAM NAME`: at least HIGH, judged as PROGRAM", benign={"hash -r": Risk.SAFE},
         harmful={"hash -p /sbin/mkfs.ext4 ls": Risk.DANGEROUS})
register("let", family="variables", check=_let, summary="`let` on the hook's variables DANGEROUS",
         benign={"let x=1": Risk.SAFE}, harmful={"let __autobot_ok[1]=1": Risk.DANGEROUS})
register("alias", family="variables", check=_alias, input_args=RUNS_UNSEEN,
         summary="`alias NAME=…` judged as the alias's text; aliases of the hook's builtins DANGEROUS",
         benign={"alias ll='ls -l'": Risk.SAFE}, harmful={"alias ll='rm -rf /'": Risk.DANGEROUS})
register("enable", family="variables", check=_enable, input_args=RUNS_UNSEEN,
         summary="`enable -n` of a builtin the hook uses, or of names known only when it runs, DANGEROUS",
         benign={"enable -a": Risk.SAFE},
         harmful={"enable -n trap": Risk.DANGEROUS, "enable -n kill": Risk.DANGEROUS,
                  "enable -n $(printf kill)": Risk.DANGEROUS})
