"""Expansions and redirections whose target only exists at run time: a variable named by another
variable's value (`${!name}`), a value expanded as a prompt (`${x@P}`), a file descriptor chosen at
run time (`>&$fd`, `/dev/fd/$fd`). Either may be the terminal's command hook (its secret, its
channel), which the line does not show, so they are HIGH.

The walker calls these on the words and redirections bash really expands: single-quoted, `$'…'`
and backslash-escaped text, comments and quoted here-documents never reach them. `ROUGH` is for a
line bashlex cannot parse, which is HIGH anyway: it only names the reason.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from terminal.risk.expand import _past_backtick, _skip_quoted
from terminal.risk.model import Hit, Risk

INDIRECT = Hit(Risk.HIGH, "reads a variable named at run time (${!name}), which cannot be assessed")
PROMPT = Hit(Risk.HIGH, "expands a value as a prompt string (${name@P}), which runs the commands in it: they "
             "cannot be assessed")
DYNAMIC_FD = Hit(Risk.HIGH, "redirects to a file descriptor chosen at run time, which cannot be assessed")
QUOTED_FD = Hit(Risk.HIGH, "redirects to a file descriptor spelled with quotes, escapes or leading zeros, which "
                "the check of the terminal hook's channel does not read")
EXEC_STDIN = Hit(Risk.HIGH, "makes the shell read its next lines from elsewhere than the terminal (exec <…)")
FD_PATH = Hit(Risk.HIGH, "names a file descriptor (/dev/fd/…) chosen at run time or spelled so that the check "
              "of the terminal hook's channel does not read it")

# Rated by the walker in tests/terminal/test_risk_expansions.py, like a registered rule's examples.
BENIGN = {
    "echo '${!x}'": Risk.SAFE,
    "echo ${!prefix*} ${!arr[@]}": Risk.SAFE,
    "echo x >&2": Risk.SAFE,
    "ls -l /proc/self/fd/": Risk.SAFE,
}
HARMFUL = {
    'echo "${!x}"': Risk.HIGH,
    'echo "${x@P}"': Risk.HIGH,
    "echo x >&$fd": Risk.HIGH,
    "echo x >/dev/fd/$fd": Risk.HIGH,
}


def word_hits(text: str) -> Iterator[Hit]:
    """A word's source text, as bash expands it."""
    text = _joined(text)
    for body in _expansions(text):
        expansion = "${" + body + "}"  # nested ones are inside, quoted or not (`"${a:-'${!x}'}"` expands)
        if _INDIRECT.search(expansion):
            yield INDIRECT
        if _PROMPT.search(expansion):
            yield PROMPT
    if _fd_path(text):
        yield FD_PATH


def redirect_hits(op: str, source: str, target: str, expands: bool) -> Iterator[Hit]:
    """`>&WORD` / `<&WORD`: a descriptor when WORD expands to a number. The server refuses the
    hook's own numbers written plainly (services.commands); any other spelling (quotes, escapes,
    leading zeros: bash reads `>&0017` as 17) is HIGH. So is a `/dev/fd/N` target the line only
    shows through a variable (`x=/dev/fd/7; echo >$x`)."""
    source = _joined(source)
    if _FD_DIR.search(target) and not _FD_DIR.search(source):
        yield FD_PATH
    if op not in {">&", "<&"}:
        return
    if expands:
        yield DYNAMIC_FD
    elif target.isdigit() and (source != target or target != str(int(target))):
        yield QUOTED_FD


# `${!name}`, `${!name[1]}`, `${!name:-x}`, `${!name@Q}`, `${!1}`, `${!@}`: the value of the variable
# another one names. Not the names `${!prefix@}`/`${!prefix*}`, the keys `${!arr[@]}`, nor `${!#}`,
# `${!?}`, `${!$}`, `${!!}` (numbers: they name positional parameters), `${!-}` (the shell's flags).
_INDIRECT = re.compile(r"\$\{!(?!(?:[A-Za-z_]\w*(?:[@*]|\[[@*]\])|[#?$!-])\})")
_PROMPT = re.compile(r"\$\{!?(?:\w+|[@*])(?:\[[^\]]*\])?@P\}")


def _expansions(text: str, *, inside: bool = False) -> Iterator[str]:
    """The bodies of the `${…}` bash expands in a word's source text (outermost only); not those
    in single quotes, `$'…'` or after a backslash. `$(…)` and backticks are skipped (the walker visits
    their commands on their own), except what bash unescapes in backticks (`` `echo \\${!x}` ``),
    which is scanned here, `$(…)` included (`inside`)."""
    i, n, double = 0, len(text), False
    while i < n:
        ch = text[i]
        if ch == "\\":
            i += 2
        elif ch == '"':
            double = not double
            i += 1
        elif not double and (ch == "'" or text.startswith("$'", i)):
            i = _skip_quoted(text, i)
        elif text.startswith("${", i):
            end = _skip_quoted(text, i)
            yield text[i + 2 : end - 1]
            i = end
        elif text.startswith("$(", i):
            i = i + 2 if inside else _skip_quoted(text, i)
        elif ch == "`":
            end = _past_backtick(text, i)
            body = text[i + 1 : end - 1]
            if inside or re.search(r"\\[$`\\]", body):
                yield from _expansions(re.sub(r"\\([$`\\])", r"\1", body), inside=True)
            i = end
        else:
            i += 1


def _joined(text: str) -> str:
    """`text` without bash's line continuations (a backslash before a newline), which bash takes out
    before it reads anything else (`${\\<newline>!x}` is `${!x}`); but not inside single quotes or
    `$'…'`, where they are text. (Inside `$(…)` within double quotes it joins a little more than
    bash would: that can only show more.)"""
    if "\\\n" not in text:
        return text
    out, i, n, double = [], 0, len(text), False
    while i < n:
        ch = text[i]
        if ch == "\\":
            if text.startswith("\n", i + 1):
                i += 2
                continue
            out.append(text[i : i + 2])
            i += 2
        elif ch == '"':
            double = not double
            out.append(ch)
            i += 1
        elif not double and (ch == "'" or text.startswith("$'", i)):
            end = _skip_quoted(text, i)
            out.append(text[i:end])
            i = end
        else:
            out.append(ch)
            i += 1
    return "".join(out)



_FD_DIR = re.compile(r"/dev/fd/|/proc/[^/\s]*/fd/")
# After the folder: a plain number (the server refuses the hook's own), maybe closing a quoted word,
# or nothing (the folder itself).
_PLAIN_FD = re.compile(r"(\d+[\"']?)?(?=$|[\s;|&<>)])")


def _fd_path(text: str) -> bool:
    return any(not _PLAIN_FD.match(text, m.end()) for m in _FD_DIR.finditer(text))


# For a line bashlex cannot parse (HIGH anyway): the reasons the rules above would give, from the
# raw text. Quoted text matches too; that only adds a reason.
ROUGH = (
    (re.compile(r"\$\{!([A-Za-z_]\w*|\d+|[@*])(\}|[:#%/^,@]|\[(?![@*]\]))"), INDIRECT.why),
    (re.compile(r"\bexec\s+(?:\d*[<>][>&]?\s*\S+\s+)*?(0?<|0>)"), EXEC_STDIN.why),
    (re.compile(r"[<>]&\s*[$`\"'\\]"), DYNAMIC_FD.why),
)
