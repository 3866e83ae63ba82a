"""Editors and debuggers told what to do on the command line."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from typing import TYPE_CHECKING

from terminal.risk.expand import _ansi_c_dequote
from terminal.risk.model import Cmd, Hit, Risk, Trait
from terminal.risk.paths import option_values, split_options
from terminal.risk.registry import register

if TYPE_CHECKING:
    from terminal.risk.walker import _Walker


_VIMS = {"vim", "vi", "nvim", "ex", "view", "vimdiff", "gvim", "rvim", "evim", "gview", "vimx"}


# Ex commands that run programs or code: `:sh`, `:terminal`, the language bindings, `system()`,
# sourcing files, `:make`/`:grep` (which run 'makeprg'/'grepprg').
_VIM_RUNS = re.compile(
    r"^(sh(ell)?|py(thon)?3?|pyx|pythonx|lua|luado|luafile|perl|perldo|rub(y)?|rubydo|mz(scheme)?|tcl"
    r"|tcldo|so(urce)?|runtime|make|lmake|grep|lgrep|call|cex(pr)?|lex(pr)?|cgetexpr|lgetexpr|redir|wviminfo|wshada"
    r"|mksession|mkvimrc|mkview|mkexrc)\b|\b(system|systemlist|jobstart|job_start|term_start|termopen|libcall"
    r"|libcallnr|feedkeys|execute|win_execute|luaeval|py3eval|pyeval|pyxeval|perleval|rubyeval)\s*\("
)


# Ex command prefixes: (full name, shortest abbreviation). Each is followed by another Ex command.
_EX_MODIFIERS = {
    "silent": 3, "unsilent": 3, "keepalt": 5, "keepjumps": 5, "keepmarks": 3, "keeppatterns": 5, "lockmarks": 3,
    "noautocmd": 3, "noswapfile": 3, "verbose": 4, "sandbox": 3, "vertical": 4, "horizontal": 3, "leftabove": 5,
    "aboveleft": 3, "rightbelow": 6, "belowright": 3, "topleft": 2, "botright": 2, "tab": 3, "hide": 3,
    "confirm": 4, "browse": 3, "legacy": 3, "vim9cmd": 4, "windo": 5, "bufdo": 5, "argdo": 5, "tabdo": 5,
    "cdo": 3, "ldo": 3, "cfdo": 4, "lfdo": 4, "filter": 4,
}


# Commands that define what runs later (autocommands, user commands, mappings): the rest is code.
_EX_DEFINES = re.compile(r"^(au(tocmd)?|com(mand)?|[nvxsoilct]?(nore)?m(ap)?|[nvxsoilct]?no(remap)?|"
                         r"[nvxsoilct]?map|map|noremap|ab(breviate)?|[ic]?(nore)?ab(brev)?|fu(nction)?|def)!?$")


# Options whose value is a program Vim runs.
_VIM_PROGRAM_OPTIONS = {"shell", "sh", "makeprg", "mp", "grepprg", "gp", "keywordprg", "kp", "equalprg", "ep",
                        "formatprg", "fp", "shellpipe", "sp", "shellredir", "srr"}


_EX_RANGE = re.compile(r"^(?:[%.$]|\d+|'.|/(?:[^/\\\n]|\\.)*/?|\?(?:[^?\\\n]|\\.)*\??|[-+]\d*|[,;]|\s)*")


_STRING_LITERAL = re.compile(r"'((?:[^']|'')*)'|\"((?:[^\"\\]|\\.)*)\"")


def _ex_abbrev(word: str, table: dict[str, int]) -> str | None:
    return next((full for full, least in table.items() if len(word) >= least and full.startswith(word)), None)


def _vim_operands(args: list[str]) -> list[str]:
    """The files Vim is given (what `%` names in a shell command)."""
    _, _, i = split_options([a for a in args if not a.startswith("+")], "cSsTuUwWiqtr", ("cmd",))
    return [a for a in args if not a.startswith("+")][i:]


def _vim(cmd: Cmd, w: _Walker) -> Iterator[Hit]:
    """vim -c CMD / --cmd CMD / +CMD run Ex commands at start-up; -S FILE sources a script; in Ex
    mode (`-e`, `-es`, `ex`) -s is silent, elsewhere `-s FILE` types the file's keys."""
    ex_mode = cmd.name == "ex" or any(re.fullmatch(r"-[A-Za-z]*[eE][A-Za-z]*", a) for a in cmd.args)
    takes = "iTuUwWrt" + ("" if ex_mode else "s")
    commands = option_values(cmd.args, "c", ("cmd",), takes=takes)
    commands += [a[1:] for a in cmd.args if a.startswith("+") and len(a) > 1 and not a[1:].isdigit()
                 and not a.startswith("+/")]
    files = _vim_operands(cmd.args)
    for text in commands:
        yield from _ex_commands(text, cmd, w, files)
    remote = [a for a in cmd.args if a.startswith("--remote")]
    for value in option_values(cmd.args, "", ("remote-send", "remote-expr"), takes=takes):
        yield from _vim_code(value, cmd, w, files)
    if remote:
        yield Hit(Risk.HIGH, "sends keys or commands to another running Vim, which can run anything", Trait.INLINE_CODE)
    if option_values(cmd.args, "S", takes="ciTuUwWrt") or "-S" in cmd.args or (
            not ex_mode and option_values(cmd.args, "s", takes="ciTuUwWrt")):
        yield Hit(Risk.MODERATE, "runs Vim commands from a script file", Trait.LOADS_CODE)
    if cmd.name == "nvim" and option_values(cmd.args, "l", takes="ciTuUwWrs"):
        yield Hit(Risk.MODERATE, "runs a Lua script file", Trait.LOADS_CODE)


def _ex_commands(text: str, cmd: Cmd, w: _Walker, files: list[str]) -> Iterator[Hit]:
    """Each Ex command in a -c string, one after another (`|` separates them, except after `!`,
    `:normal`, `:global` and definitions, which take the rest of the line)."""
    for _ in range(64):
        text = _EX_RANGE.sub("", text.lstrip(" \t:"), count=1).lstrip(" \t:")
        if not text:
            return
        if text.startswith("!"):  # `:!cmd`, `:{range}!filter`
            yield from _vim_shell(text[1:], cmd, w, files)
            return
        m = re.match(r"([A-Za-z]+\d*)(!?)\s*", text)
        word, rest = (m.group(1), text[m.end():]) if m else ("", text)
        modifier = _ex_abbrev(word, _EX_MODIFIERS) if word else None
        global_ = re.match(r"^(g(?:l(?:o(?:b(?:al?)?)?)?)?|v(?:g(?:l(?:o(?:b(?:al?)?)?)?)?)?)!?\s*([^\w\s\\\"|])", text)
        if global_:  # `:g/pattern/cmd`: skip the pattern, the rest is the command
            delim, i = global_.group(2), global_.end()
            while i < len(text) and text[i] != delim:
                i += 2 if text[i] == "\\" else 1
            text = text[i + 1 :] or "p"
        elif modifier == "filter":
            text = re.sub(r"^(/(?:[^/\\]|\\.)*/|\S+)\s*", "", rest, count=1)
        elif modifier:
            text = rest
        elif re.fullmatch(r"r(e(ad?)?)?", word) and (m.group(2) or rest.startswith("!")):  # `:r !cmd`, `:r!cmd`
            yield from _vim_shell(rest if m.group(2) else rest[1:], cmd, w, files)
            return
        elif re.fullmatch(r"w(r(i(te?)?)?)?", word) and not m.group(2) and rest.startswith("!"):  # `:w !cmd`
            yield from _vim_shell(rest[1:], cmd, w, files)
            return
        elif re.fullmatch(r"ter(m(i(n(al?)?)?)?)?", word):
            command = re.sub(r"^(\+\+\w+(=\S*)?\s*)*", "", rest)
            yield Hit(Risk.HIGH, "runs :terminal, which starts a program the command hook cannot see into",
                      Trait.NESTED_SHELL)
            if command.strip():
                yield from _vim_shell(command, cmd, w, files)
            return
        elif re.fullmatch(r"norm(al?)?", word):
            yield from _vim_keys(rest, cmd, w, files)
            return
        elif _EX_DEFINES.match(word + m.group(2) if m else ""):
            if rest.strip():
                yield Hit(Risk.HIGH, f"defines Vim commands to run later ({word}), which can start programs",
                          Trait.INLINE_CODE)
                yield from _bang_commands(rest, cmd, w, files)
                yield from _vim_code(rest, cmd, w, files)
            return
        else:
            head, bar, text = _ex_split(text)
            yield from _ex_single(word, head, cmd, w, files)
            if not bar:
                return


def _ex_split(text: str) -> tuple[str, str, str]:
    """(the first command, the `|`, the rest), skipping quoted strings."""
    i, quote = 0, ""
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'" and i and text[i - 1] in " =(,.":
            quote = ch
        elif ch == "|":
            return text[:i], "|", text[i + 1 :]
        i += 1
    return text, "", ""


def _ex_single(word: str, text: str, cmd: Cmd, w: _Walker, files: list[str]) -> Iterator[Hit]:
    """One Ex command that is not a shell escape or a prefix."""
    if re.fullmatch(r"se(t(l(o(c(al?)?)?)?|g(l(o(b(al?)?)?)?)?)?)?", word):
        for option, value in re.findall(r"(\w+)\s*[+^-]?[=:]((?:[^\s\\]|\\.)*)", text):
            if option in _VIM_PROGRAM_OPTIONS and value:
                yield from _vim_shell(re.sub(r"\\(.)", r"\1", value), cmd, w, files)
    option = re.match(r"^let\s+&(?:[lg]:)?(\w+)\s*[.+-]?=\s*(.*)$", text, re.S)
    if option and option.group(1) in _VIM_PROGRAM_OPTIONS:
        yield Hit(Risk.HIGH, f"sets the Vim option {option.group(1)}, a program Vim runs", Trait.INLINE_CODE)
        for literal in _STRING_LITERAL.finditer(option.group(2)):
            yield from _vim_shell(literal.group(1) or literal.group(2) or "", cmd, w, files)
    for backtick in re.findall(r"`([^`=][^`]*)`", text):  # `:e `cmd``: file names from a command
        yield from w.run_string(backtick, None, cmd)
    if _VIM_RUNS.search(text) or re.fullmatch(r"exe(c(u(te?)?)?)?", word):
        yield Hit(Risk.HIGH, f"runs the Vim command {text.strip()!r}, which can start programs or run code",
                  Trait.INLINE_CODE)
        yield from _vim_code(text, cmd, w, files)


def _vim_code(text: str, cmd: Cmd, w: _Walker, files: list[str]) -> Iterator[Hit]:
    """Commands spelled out in string literals: `system('CMD')`, `:exe "!CMD"`."""
    literals = [(m.group(1) or "").replace("''", "'") if m.group(1) is not None else
                re.sub(r"\\(.)", r"\1", m.group(2) or "") for m in _STRING_LITERAL.finditer(text)]
    for call in re.finditer(r"\b(system|systemlist|jobstart|job_start|term_start|termopen|os\.execute"
                            r"|io\.popen|os\.system|os\.popen)\s*\(\s*"
                            r"('(?:[^']|'')*'|\"(?:[^\"\\]|\\.)*\")", text):
        yield from _vim_shell(_ansi_c_dequote(call.group(2)) if call.group(2)[0] == "'" else
                              re.sub(r"\\(.)", r"\1", call.group(2)[1:-1]), cmd, w, files)
    if re.match(r"\s*(exe(c(u(te?)?)?)?|norm(al?)?|feedkeys|call\s+feedkeys)\b", text) and literals:
        yield from _ex_commands("".join(literals), cmd, w, files)
    yield from _bang_commands(text, cmd, w, files)


def _vim_keys(keys: str, cmd: Cmd, w: _Walker, files: list[str]) -> Iterator[Hit]:
    """`:normal KEYS` types KEYS: harmless motions, unless they reach the command line, a filter,
    a macro, 'keywordprg' or an expression register."""
    if not re.search(r"[:!@QK]|<[CcSsAaMm]-|[\x00-\x1f]|gQ|=", keys):
        return
    yield Hit(Risk.HIGH, f"types the Vim keys {keys.strip()!r}, which can start programs or run code",
              Trait.INLINE_CODE)
    for command in re.findall(r":([^\r\n\x0d]*?)(?:<[Cc][Rr]>|<[Ee]nter>|<[Rr]eturn>|\^M|\r|\n|$)", keys):
        yield from _ex_commands(command, cmd, w, files)
    yield from _bang_commands(keys, cmd, w, files)


def _bang_commands(text: str, cmd: Cmd, w: _Walker, files: list[str]) -> Iterator[Hit]:
    """Every `!CMD` in text (keys, mappings, autocommands) judged as a shell command."""
    for m in re.finditer(r"(?<![\w!=~])!+(?![=~])([^\r\n]*?)(?=<[Cc][Rr]>|<[Ee]nter>|\^M|\\r|\\n|[\r\n]|$)", text):
        command = m.group(1).strip().rstrip("\"')")
        if command:
            yield from _vim_shell(command, cmd, w, files)


def _vim_shell(command: str, cmd: Cmd, w: _Walker, files: list[str]) -> Iterator[Hit]:
    """A shell command Vim runs: `%` and `#` stand for the file being edited, `!` for the last command."""
    command = command.lstrip("!")
    if not command.strip():
        yield Hit(Risk.HIGH, "runs a Vim shell command that cannot be assessed", Trait.INLINE_CODE)
        return
    if files:
        command = re.sub(r"(?<!\\)[%#](<|\d+)?(:[a-zA-Z~.]|:s[^:]*)*", shlex.quote(files[0]).replace("\\", r"\\"),
                         command)
    yield from w.run_string(command, None, cmd)


# gdb commands that run code: the language bindings, sourcing files, calling functions in the program.
_GDB_RUNS = re.compile(
    r"^(python|py|pi|python-interactive|guile|gu|guile-repl|gr|source|call|print|p|inspect|compile|expression"
    r"|jit-reader-load|def(i(ne?)?)?|doc(u(m(e(nt?)?)?)?)?|ali(as?)?|eval)\b"
)


_GDB_VALUES = ("ex", "eval-command", "iex", "init-eval-command", "command", "init-command", "ix", "pid", "core",
               "directory", "cd", "symbols", "exec", "se", "tty", "data-directory")


def _gdb(cmd: Cmd, w: _Walker) -> Iterator[Hit]:
    """gdb runs `shell CMD`/`!CMD`/`pipe`/`make` given with -ex, scripts with -x, its program with
    `run` (or `--args`), and can attach to a process."""
    # gdb takes its long options with one dash or two: `-ex`, `--ex`, `-eval-command=...`.
    args = ["-" + a if re.match(r"^-[a-z][a-z-]+", a) else a for a in cmd.args]
    program: list[str] = []
    if "--args" in args:
        rest = args[args.index("--args") + 1 :]
        program = rest[split_options(rest, "xpcdseblD", _GDB_VALUES)[2] :]
    else:
        operands = args[split_options(args, "xpcdseblD", _GDB_VALUES)[2] :]
        program = operands[:1]
    run: str | None = "" if "--args" in args else None
    for text in option_values(args, "", ("ex", "eval-command", "iex", "init-eval-command"), takes="xpcdseblD"):
        for hit_or_run in _gdb_command(text, cmd, w):
            if isinstance(hit_or_run, Hit):
                yield hit_or_run
            elif hit_or_run[0] == "file":
                program = [hit_or_run[1], *program[1:]]
            else:
                run = hit_or_run[1]
    if run is not None and program:
        if run.strip():  # gdb starts the program through a shell: `run ARGS` is shell text
            yield from w.run_string(f"{shlex.quote(program[0])} {run}", None, cmd)
        else:
            yield from w.run_argv(program, cmd)
    if option_values(args, "x", ("command", "init-command", "ix"), takes="pcd"):
        yield Hit(Risk.MODERATE, "runs gdb commands from a script file", Trait.LOADS_CODE)
    if option_values(args, "p", ("pid",), takes="xcd"):
        yield Hit(Risk.HIGH, "attaches a debugger to a running process, which can then run any code inside it")


def _gdb_command(text: str, cmd: Cmd, w: _Walker):
    """Hits for one gdb command, and ("run", ARGS) / ("file", PROGRAM) for what it starts."""
    text = text.strip()
    with_ = re.match(r"^w(i(th?)?)?\s+.*?\s--\s*(.*)$", text, re.S)
    if with_:  # `with SETTING -- COMMAND`
        yield from _gdb_command(with_.group(3), cmd, w)
        return
    m = re.match(r"^(!|\||[A-Za-z][\w-]*)\s*(.*)$", text, re.S)
    word, rest = (m.group(1), m.group(2)) if m else ("", text)
    if word == "!" or (len(word) >= 3 and "shell".startswith(word)):
        yield from w.run_string(rest, None, cmd) if rest.strip() else iter(
            [Hit(Risk.HIGH, "gdb shell starts an interactive shell", Trait.NESTED_SHELL)])
    elif word in {"|", "pipe"}:
        delim = re.match(r"^-d\s+(\S+)\s*(.*)$", rest, re.S)
        sep, body = (delim.group(1), delim.group(2)) if delim else ("|", rest)
        yield Hit(Risk.HIGH, "gdb pipe sends output to a shell command", Trait.INLINE_CODE)
        if sep in body:
            yield from w.run_string(body.split(sep, 1)[1], None, cmd)
    elif len(word) >= 3 and "make".startswith(word):
        yield from w.run_string(f"make {rest}", None, cmd)
    elif word in {"r", "run", "start", "starti"}:
        yield ("run", rest)
    elif word in {"file", "exec-file"} and rest.strip():
        yield ("file", rest.strip())
    elif _GDB_RUNS.match(text) or re.match(r"^(output|printf|dprintf|set|x|display|echo)\b.*\w\s*\(", text, re.S):
        yield Hit(Risk.HIGH, f"runs the gdb command {text!r}, which can run code", Trait.INLINE_CODE)
        if word == "eval":
            literal = _STRING_LITERAL.search(rest)
            if literal:
                yield from _gdb_command(re.sub(r"\\(.)", r"\1", literal.group(2) or literal.group(1) or ""), cmd, w)
    for call in re.finditer(r"\b(system|popen|execl\w*|execv\w*)\s*\(\s*\"((?:[^\"\\]|\\.)*)\"", text):
        yield from w.run_string(re.sub(r"\\(.)", r"\1", call.group(2)), None, cmd)


def _lldb(cmd: Cmd, w: _Walker) -> Iterator[Hit]:
    """lldb -o/-O/-k COMMAND: `platform shell CMD` runs CMD, `script` runs Python; -s FILE sources."""
    values = option_values(cmd.args, "oOkK", ("one-line", "one-line-before-file", "one-line-on-crash"),
                           takes="sSfcpna")
    for text in values:
        shell = re.match(r"^\s*pla?(t(f(o(rm?)?)?)?)?\s+sh(e(ll?)?)?\s+(?:-\S+\s+)*(?P<command>.*)$", text, re.S)
        if shell and shell.group("command").strip():
            yield from w.run_string(shell.group("command"), None, cmd)
        elif re.match(r"^\s*(scr(i(pt?)?)?|co(m(m(a(nd?)?)?)?)?\s+(scr|so)|expr?|p|po|call)\b", text):
            yield Hit(Risk.HIGH, f"runs the lldb command {text!r}, which can run code", Trait.INLINE_CODE)
    if option_values(cmd.args, "sS", ("source", "source-before-file", "source-on-crash"), takes="oOkKfcpna"):
        yield Hit(Risk.MODERATE, "runs lldb commands from a script file", Trait.LOADS_CODE)


register(*sorted(_VIMS), family="editors", check=_vim,
         summary="Vim `-c`/`--cmd`/`+` commands that run programs judged as them; other code-running Ex commands HIGH",
         benign={"vim notes.txt": Risk.SAFE}, harmful={"vim -c '!rm -rf /'": Risk.DANGEROUS})
register("gdb", family="editors", check=_gdb,
         summary="`gdb -ex 'shell CMD'` and the program it runs judged as CMD; python, attach, scripts HIGH",
         benign={"gdb --version": Risk.SAFE}, harmful={"gdb -ex 'shell rm -rf /'": Risk.DANGEROUS})
register("lldb", family="editors", check=_lldb,
         summary="`lldb -o 'platform shell CMD'` judged as CMD; `script` HIGH", benign={"lldb --version": Risk.SAFE},
         harmful={"lldb -o 'platform shell rm -rf /'": Risk.DANGEROUS})
