"""What an operator's line was cleared for, and which of the shell's requests it holds.

A line typed for the operator (services.typed) was rated and, when its risk asks for that,
approved: it is *cleared for* its rating. Bash can run more than the line's text shows: history
expansion (``!!``, ``^a^b``) rewrites it, functions, aliases and sourced files defined earlier run
commands of their own, and what it puts in the background asks later. The hook (commands.
hook_decide) refuses any of that rated above the line's clearance, and a line other than the one
typed. Which requests a line holds:

- its first request claims it: the shell's first ``line`` (typed at the prompt, the next line the
  shell runs is it), or a subshell's ``sline`` with its text (``( … )`` runs in a subshell only);
- until the prompt is back (only the shell's own prompt report counts: terminal/hooksocket.py),
  every request of the shell itself, which runs one line at a time; after it, the shell's own
  requests until someone else's line starts;
- subshells by the process that wrote the request (the kernel's pid and start time, and its
  parents'), never by the history number they report, which the line can rewrite or forge: a new
  one is of the line the shell was running when it forked it (its start time against the
  ``timeline`` of operator lines); one no longer under the shell goes by its number, and an
  unknown number holds it to the strictest operator's line known;
- a line that ended before it asked anything (a background job blocked before its first command)
  is claimed later by the first subshell asking with its text.
"""

from __future__ import annotations

import os
import time
from dataclasses import replace

from terminal.hook import HookRequest
from terminal.policy import Verdict
from terminal.risk import Assessment

from . import live as registry

KEEP = 64  # operator lines remembered per session, by history number and by text
_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")  # the unit of a process's start time in /proc


def refuse(assessment: Assessment, reason: str) -> tuple[Assessment, Verdict]:
    return replace(assessment, reasons=(reason, *assessment.reasons)), Verdict(blocked=True, warn=False, reason=reason)


def line_of(live: registry.LiveSession, request: HookRequest):
    """The operator's line this request is held to (a services.typed.TypedLine), or None (a
    person's); and whether the request claims it (its record is then the line's)."""
    typed = live.typed if live.typed is not None and not live.typed.done.done() else None
    if request.kind in ("line", "cmd"):  # the shell itself
        if typed is not None and typed.number is None and request.kind == "line":
            _claim(live, typed, request.history_number)
            live.shell_line = typed
            return typed, True
        if typed is not None and typed.number is not None:
            return typed, False
        if request.kind == "line" and request.line and request.history_number:
            # A line of someone else's starts: the shell is past the operator's.
            live.shell_line = None
            live.clearances.pop(request.history_number, None)  # the number is theirs now (history -c)
            live.person_lines[request.history_number] = True
            _trim(live.person_lines)
            return None, False
        return live.shell_line, False
    known, forked = _known_subshell(live, request.pid)
    if known is not _NEW:
        return known, False
    line, claims = _first_of_subshell(live, request, typed, forked)
    if (found := _process(request.pid)) is not None:
        live.subshells[found[:2]] = line
        _trim(live.subshells, 512)
    return line, claims


def _first_of_subshell(live: registry.LiveSession, request: HookRequest, typed, forked: int | None):
    """A subshell's first request: the line the shell ran when it forked it (``forked``: when
    the shell's child it comes from started, in clock ticks since boot), else the line it says it
    is of, as far as that can be trusted."""
    text = request.line.strip()
    if typed is not None and typed.number is None and request.kind == "sline" and text == typed.command.strip():
        _claim(live, typed, request.history_number)
        live.shell_line = typed
        return typed, True
    if request.kind == "sline" and (late := live.unclaimed.pop(text, None)) is not None:
        _claim(live, late, request.history_number)
        return late, True
    if forked is not None:  # the kernel's start time, not the number the hook's variables say
        return _running_at(live, forked), False
    number = request.history_number
    if typed is not None and typed.number is not None and number in (typed.number, 0):
        return typed, False
    if number in live.clearances:
        return live.clearances[number], False
    if number and number in live.person_lines:
        return None, False
    # No line had this number (its history rewritten in the subshell, or the hook's variables
    # written): the strictest operator's line still known, if any.
    lines = [*live.clearances.values(), *([typed] if typed is not None else [])]
    return min(lines, key=lambda kept: kept.clearance, default=None), False


_NEW = object()


def _process(pid: int | None) -> tuple[int, int, int] | None:
    """(pid, start time, parent) from /proc, or None when it is gone. The start time tells a pid
    reused later apart."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as fh:  # noqa: ASYNC230 - procfs
            fields = fh.read().rpartition(")")[2].split()
    except OSError:
        return None
    return pid, int(fields[19]), int(fields[1])


def _known_subshell(live: registry.LiveSession, pid: int | None):
    """(the line a subshell, or one it forked from, was first held to; when the shell's child
    it comes from started), by the process that wrote the request: the kernel's word, not the
    hook's variables, which a line can write through arithmetic. ``(_NEW, started)`` for a
    subshell not seen yet (``started`` None when it does not come from the shell: reparented)."""
    shell, child = live.hook.shell, None
    for _ in range(16):
        found = _process(pid)
        if found is None or found[0] <= 1:
            return _NEW, None
        if found[0] == shell:
            return _NEW, child
        if found[:2] in live.subshells:
            return live.subshells[found[:2]], None
        child, pid = found[1], found[2]
    return _NEW, None


def line_starts(live: registry.LiveSession, line) -> None:
    """An operator's line goes to the shell now: what the shell forks from now on is its, until
    the prompt after it (``prompt_back``)."""
    _mark(live, line)


def _mark(live: registry.LiveSession, line) -> None:
    live.timeline.append((_ticks(), line))
    del live.timeline[:-KEEP]


def _running_at(live: registry.LiveSession, ticks: int):
    """The operator's line the shell ran at ``ticks``, or None (a person's, or none). Clock
    ticks are coarse (10 ms): a fork in the tick a line ended counts as the line's (stricter)."""
    line = None
    for at, what in live.timeline:
        if at > ticks or (what is None and at == ticks):
            break
        line = what
    return line


def _ticks() -> int:
    return int(time.clock_gettime(time.CLOCK_BOOTTIME) * _TICKS_PER_SECOND)


def held(request: HookRequest, line, claims: bool, assessments: list[Assessment],
         judged: tuple[Assessment, Verdict]) -> tuple[Assessment, Verdict]:
    """The verdict, refused when the request goes beyond what ``line`` was cleared for."""
    if claims and not _same(request.line, line.command):
        if not request.line:
            why = "the shell's history is off, so the line it runs cannot be checked against the one typed"
        else:
            why = (f"the shell ran {request.line[:300]!r}, not the line typed (history expansion, or a line "
                   "left unfinished before it)")
        return refuse(judged[0], f"{why}: the operator's line was not run")
    riskiest = max(assessments, key=lambda a: a.risk)
    if line is not None and riskiest.risk > line.clearance:
        top = riskiest.reasons[0] if riskiest.reasons else riskiest.risk.name
        return refuse(riskiest, f"{riskiest.risk.name} ({top}) is more than the {line.clearance.name} the "
                                "operator's line was cleared for: a function, alias or file it runs does more than "
                                "it shows")
    return judged


def prompt_back(live: registry.LiveSession, request: HookRequest) -> None:
    """The shell's prompt is back (``done`` from the prompt): the operator's line typed at the
    previous one is over, and its caller wakes. Only the prompt ends it: it is one line, so a
    report of a line's end before the prompt (its history renumbered midway) is not its own."""
    if request.prompt and live.timeline and live.timeline[-1][1] is not None:
        _mark(live, None)  # the shell forks nothing more for that line
    typed = live.typed
    if typed is None or typed.done.done() or not request.prompt:
        return
    if typed.record_id is not None:
        typed.done.set_result(request.exit_status)
    elif typed.number is None:  # it asked nothing: a comment, a definition, or it runs in the background only
        live.unclaimed[typed.command.strip()] = typed
        _trim(live.unclaimed)
        typed.done.set_result(request.exit_status)
    else:  # claimed by its subshell, whose record is still being written: it ends then (recorded)
        typed.prompt_back, typed.prompt_status = True, request.exit_status


def recorded(typed) -> None:
    """The claiming request's record is written: a line whose prompt came meanwhile ends now."""
    if typed.prompt_back and not typed.done.done():
        typed.done.set_result(typed.prompt_status)


def _claim(live: registry.LiveSession, line, number: int) -> None:
    line.number = number
    if number:
        live.clearances[number] = line
        _trim(live.clearances)


def _trim(kept: dict, keep: int = KEEP) -> None:
    while len(kept) > keep:
        kept.pop(next(iter(kept)))


def _same(ran: str, typed: str) -> bool:
    return ran.strip() == typed.strip()
