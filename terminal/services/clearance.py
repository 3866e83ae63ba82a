"""What an operator's line was cleared for, and which of the shell's requests it holds.

A line typed for the operator (services.typed) was rated and, when its risk asks for that,
approved: it is *cleared for* its rating. Bash can run more than the line's text shows: history
expansion (``!!``, ``^a^b``) rewrites it, functions, aliases and sourced files defined earlier run
commands of their own, and what it puts in the background asks later. The hook (commands.
hook_decide) refuses any of that rated above the line's clearance, and a line other than the one
typed. Which requests a line holds:

- its first request claims it: the shell's first ``line`` (typed at the prompt, the next line the
  shell runs is it), or a subshell's ``sline`` with its text (``( … )`` runs in a subshell only);
- until the prompt is back, every request of the shell itself (it runs one line at a time), and
  of subshells those with its history number, or with none (their history cleared or off);
- later, its subshells (by history number), and the shell's own requests until someone else's
  line starts (a report of the line's end can be forged by a line that read the hook's secret);
- a line that ended before it asked anything (a background job blocked before its first command)
  is claimed later by the first subshell asking with its text.
"""

from __future__ import annotations

from dataclasses import replace

from terminal.hook import HookRequest
from terminal.policy import Verdict
from terminal.risk import Assessment

from . import live as registry

KEEP = 64  # operator lines remembered per session, by history number and by text


def refuse(assessment: Assessment, reason: str) -> tuple[Assessment, Verdict]:
    return replace(assessment, reasons=(reason, *assessment.reasons)), Verdict(blocked=True, warn=False, reason=reason)


def line_of(live: registry.LiveSession, request: HookRequest):
    """The operator's line this request is part of (a services.typed.TypedLine), or None; and
    whether the request claims it (its record is then the line's)."""
    typed = live.typed if live.typed is not None and not live.typed.done.done() else None
    if typed is not None and typed.number is None and (
            request.kind == "line" or (request.kind == "sline" and _same(request.line, typed.command))):
        _claim(live, typed, request.history_number)
        live.shell_line = typed
        return typed, True
    if request.kind == "sline" and (late := live.unclaimed.pop(request.line.strip(), None)) is not None:
        _claim(live, late, request.history_number)
        return late, True
    if typed is not None and typed.number is not None and (
            request.kind in ("line", "cmd") or request.history_number in (typed.number, 0)):
        return typed, False
    return None, False


def holder(live: registry.LiveSession, request: HookRequest, line):
    """The operator's line whose clearance this request is held to, or None (someone else's)."""
    if line is not None:
        return line
    if request.kind in ("sline", "scmd"):  # what an operator's line left running
        if request.history_number:
            return live.clearances.get(request.history_number)
        # No number: its history was cleared or switched off. The strictest line still known.
        return min(live.clearances.values(), key=lambda kept: kept.clearance, default=None)
    if request.kind == "line" and request.line and request.history_number:
        # A line of someone else's starts: the shell is past the operator's.
        live.shell_line = None
        live.clearances.pop(request.history_number, None)  # the number is theirs now (history -c)
        return None
    return live.shell_line


def held(request: HookRequest, line, claims: bool, holding, assessments: list[Assessment],
         judged: tuple[Assessment, Verdict]) -> tuple[Assessment, Verdict]:
    """The verdict, refused when the request goes beyond what ``holding`` was cleared for."""
    if claims and not _same(request.line, line.command):
        if not request.line:
            why = "the shell's history is off, so the line it runs cannot be checked against the one typed"
        else:
            why = (f"the shell ran {request.line[:300]!r}, not the line typed (history expansion, or a line "
                   "left unfinished before it)")
        return refuse(judged[0], f"{why}: the operator's line was not run")
    riskiest = max(assessments, key=lambda a: a.risk)
    if holding is not None and riskiest.risk > holding.clearance:
        top = riskiest.reasons[0] if riskiest.reasons else riskiest.risk.name
        return refuse(riskiest, f"{riskiest.risk.name} ({top}) is more than the {holding.clearance.name} the "
                                "operator's line was cleared for: a function, alias or file it runs does more than "
                                "it shows")
    return judged


def prompt_back(live: registry.LiveSession, request: HookRequest) -> None:
    """The shell's prompt is back (``done`` from the prompt): the operator's line typed at the
    previous one is over, and its caller wakes. Only the prompt ends it: it is one line, so a
    report of a line's end before the prompt (its history renumbered midway) is not its own."""
    typed = live.typed
    if typed is None or typed.done.done() or not request.prompt:
        return
    if typed.record_id is not None:
        typed.done.set_result(request.exit_status)
    elif typed.number is None:  # it asked nothing: a comment, a definition, or it runs in the background only
        typed.unchecked = True
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


def _trim(kept: dict) -> None:
    while len(kept) > KEEP:
        kept.pop(next(iter(kept)))


def _same(ran: str, typed: str) -> bool:
    return ran.strip() == typed.strip()
