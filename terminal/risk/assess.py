"""The public entry point: assess(line) -> Assessment."""

from __future__ import annotations

import re
from functools import lru_cache

from terminal.risk.model import MAX_LINE_CHARS, MAX_NESTING, MAX_PARTS, MAX_WORDS, Assessment, Risk, Unassessable
from terminal.risk.parse import _fallback
from terminal.risk.paths import CWD, LINKS, _short
from terminal.risk.rules.expansions import ROUGH
from terminal.risk.rules.hookvars import rough_hits
from terminal.risk.walker import _Walker


def assess(command_line: str, cwd: str | None = None) -> Assessment:
    """Rate a bash command line. Never raises. `cwd`: the directory it runs in, when known
    (relative paths are then judged under it)."""
    if not isinstance(command_line, str):
        command_line = str(command_line)
    if len(command_line) > MAX_LINE_CHARS:  # before anything that copies the text
        reason = f"{_short(command_line[:1024])}: too long to assess ({len(command_line)} characters)"
        return Assessment(Risk.HIGH, (reason,), (), parsed=False)
    if not command_line.strip():
        return Assessment(Risk.SAFE, (), ())
    over = _over_bound(command_line)
    if over:
        return _unassessable(command_line, over)
    return _assess_cached(command_line, cwd if cwd and cwd.startswith("/") else None)


def _over_bound(line: str) -> str | None:
    """A cheap look at the text before bashlex (whose cost grows with both) sees it."""
    parts = len(_PARTS.findall(line))
    if parts > MAX_PARTS:
        return f"more than {MAX_PARTS} pipes, separators and substitutions ({parts})"
    depth = deepest = 0
    for ch in _BRACKETS.findall(line):
        depth = depth + 1 if ch in "({[" else max(depth - 1, 0)
        deepest = max(deepest, depth)
    if deepest > MAX_NESTING:
        return f"nested more than {MAX_NESTING} levels deep"
    words = len(line.split())
    if words > MAX_WORDS:
        return f"more than {MAX_WORDS} words ({words})"
    return None


_PARTS = re.compile(r"\|\||&&|[|;&\n`]|\$\(|[<>]\(")
_BRACKETS = re.compile(r"[(){}\[\]]")


def _unassessable(line: str, why: str) -> Assessment:
    """Over the cost bound: HIGH and not parsed, after a rough scan that still
    finds DANGEROUS commands in the first pieces of the line."""
    walker = _Walker()
    walker.source = line
    try:
        _fallback(line, walker)
    except Exception:  # noqa: BLE001 - the rough scan must never take the terminal down
        walker.findings.clear()
    walker.add(Risk.HIGH, line, f"too complex to assess: {why}")
    return _result(walker, parsed=False)


@lru_cache(maxsize=1024)  # bounded; Assessment is immutable so sharing results is safe
def _assess_cached(line: str, cwd: str | None) -> Assessment:
    token, links = CWD.set(cwd), LINKS.set({})
    try:
        return _assess_line(line)
    finally:
        CWD.reset(token)
        LINKS.reset(links)


def _assess_line(line: str) -> Assessment:
    walker = _Walker()
    try:
        parsed = walker.line(line)
    except Unassessable as over:
        return _unassessable(line, str(over))
    except Exception:  # noqa: BLE001 - a bug here must not let a command through unassessed
        parsed = False
    if not parsed:
        walker = _Walker()
        walker.source = line
        try:
            _fallback(line, walker)
        except Exception:  # noqa: BLE001 - the fallback must never take the terminal down
            walker.findings.clear()
        walker.add(Risk.HIGH, line, "cannot be parsed, so it cannot be fully assessed")
        for pattern, why in ROUGH:  # what the walker would have found, roughly: reasons only, HIGH anyway
            if pattern.search(line):
                walker.add(Risk.HIGH, line, why)
        for hit in rough_hits(line):  # the hook's variables: DANGEROUS on the raw text, quotes or not
            walker.add(hit.risk, line, hit.why)
    return _result(walker, parsed)


# A variable named at run time (`${!name}`), a descriptor chosen at run time (`>&$fd`), `exec <file`
# and the hook's variables read or used in arithmetic are rules of the walker (rules/expansions.py,
# rules/hookvars.py, rules/wrappers.py): they apply where bash expands and redirects, not inside
# quotes, comments or quoted here-documents.


def _result(walker: _Walker, parsed: bool) -> Assessment:
    findings = sorted(walker.findings, key=lambda f: -f.risk)  # stable: keeps line order per risk
    reasons: list[str] = []
    for f in findings:
        reason = f"{f.part}: {f.why}"
        if reason not in reasons:
            reasons.append(reason)
    risk = max((f.risk for f in findings), default=Risk.SAFE)
    return Assessment(
        risk=risk,
        reasons=tuple(reasons),
        commands=tuple(walker.commands),
        facts=tuple(walker.facts),
        parsed=parsed,
    )
