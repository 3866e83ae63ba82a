"""Parsing with bashlex, rewrites for syntax it lacks, and a rough fallback for lines it cannot parse."""

from __future__ import annotations

import re
import shlex
from typing import TYPE_CHECKING

import bashlex
import bashlex.ast

from terminal.risk.model import Cmd

if TYPE_CHECKING:
    from terminal.risk.walker import _Walker


_PARSE_ERRORS = (
    bashlex.errors.ParsingError,
    NotImplementedError,
    AttributeError,
    IndexError,
    TypeError,
    ValueError,
    KeyError,
    AssertionError,
    RecursionError,
)


def _parse(text: str, quoted_heredocs: set[str]) -> tuple[list, str] | None:
    """(bashlex trees, the text they index into), retrying once with rewrites of constructs
    bashlex does not implement; None when the line cannot be parsed."""
    try:
        return bashlex.parse(text), text
    except _PARSE_ERRORS:
        pass
    rewritten = _rewrite(text, quoted_heredocs)
    if rewritten == text:
        return None
    try:
        return bashlex.parse(rewritten), rewritten
    except _PARSE_ERRORS:
        return None


_CMD_START = r"(^|[;&|({}!\n]|\b(?:then|do|else|elif)\b)(\s*)"
# `<<EOF`, `<<- EOF`: a here-document whose delimiter is not quoted (not `<<<`, a here-string).
_UNQUOTED_HEREDOC = re.compile(r"(?<!<)<<-?\s*([^'\"\s;&|<>()\\]+)")


def _rewrite(text: str, quoted_heredocs: set[str]) -> str:
    """Neutral rewrites for syntax bashlex lacks. Only expansion-free conditionals and arithmetic
    are replaced (they run nothing); anything containing $(...) or backticks is left to fail."""

    # A delimiter also used unquoted on the line (`cat <<'EOF'; cat <<EOF`) is not counted as
    # quoted: the walker knows here-documents by their delimiter, and the unquoted one's body expands.
    unquoted = set(_UNQUOTED_HEREDOC.findall(text))

    def heredoc(m: re.Match) -> str:
        if m.group(3) not in unquoted:
            quoted_heredocs.add(m.group(3))
        return f"<<{m.group(1)}{m.group(3)}"

    text = re.sub(r"<<(-?)\s*(['\"])([^'\"\s]+)\2", heredoc, text)
    text = re.sub(_CMD_START + r"time(\s+-p)?\s+", r"\1\2", text)
    text = re.sub(_CMD_START + r"coproc\s+", r"\1\2", text)
    text = re.sub(r"\bselect(\s+\w+\s+in\b)", r"for\1", text)
    text = re.sub(r"\$\(\(([^`]*?)\)\)", lambda m: _unless_substitution(m, "0"), text)
    text = re.sub(r"\bfor\s*\(\(([^`]*?)\)\)", lambda m: _unless_substitution(m, "for _ in 0"), text)
    text = re.sub(r"\[\[(.*?)\]\]", lambda m: _unless_substitution(m, "true"), text)
    text = re.sub(r"(^|[\s;&|(])([A-Za-z_]\w*(?:\[[^\]]*\])?\+?=)\(", r"\1\2$(: ", text)
    return text


# What a rewrite must not hide: commands it runs and the hook's variables (left to fail), and
# `${NAME:=value}`, which assigns (kept, as the argument of `:`).
_REWRITE_KEEPS = re.compile(r"\$\(|`|__autobot_|__AUTOBOT_|AUTOBOT_")


_PARAMETER_ASSIGNMENT = re.compile(r"\$\{[A-Za-z_]\w*(?:\[[^\]]*\])?:?=[^{}]*\}")


# `${!name}` and `${name@P}` (rules/expansions.py) are kept too, as arguments of `:`.
_EXPANSION_KEPT = re.compile(r"\$\{![^{}]*\}|\$\{[^{}]*@P\}")
# `>&$((n))`, `/dev/fd/$((n))`: a descriptor chosen at run time; `0` would hide it (left to fail).
_DESCRIPTOR_BEFORE = re.compile(r"([<>]&\s*|/fd/)$")


def _unless_substitution(m: re.Match, replacement: str) -> str:
    if _REWRITE_KEEPS.search(m.group(1)) or _DESCRIPTOR_BEFORE.search(m.string, 0, m.start()):
        return m.group(0)
    kept = _PARAMETER_ASSIGNMENT.findall(m.group(1)) + _EXPANSION_KEPT.findall(m.group(1))
    return ": " + " ".join(f'"{a}"' for a in kept) if kept else replacement


def _fallback(text: str, walker: _Walker) -> None:
    """For a line bashlex cannot parse: split it roughly and judge each piece by the rules, so a
    dangerous command next to unparseable syntax still comes out DANGEROUS."""
    for segment in re.split(r"[;&|\n()`{}]+|\$\(|\bthen\b|\bdo\b|\belse\b", text)[:200]:
        segment = segment.strip()
        if not segment:
            continue
        try:
            argv = shlex.split(segment)
        except ValueError:
            argv = segment.split()
        argv = [a for a in argv if not re.match(r"^[A-Za-z_]\w*=", a)] or argv
        if argv:
            walker.simple(Cmd(argv=argv, text=segment, top=True))
