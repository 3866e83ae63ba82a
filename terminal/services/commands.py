"""Verdicts on commands: from the shell hook, from the execute endpoint, from other apps."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import re
import subprocess
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from django.conf import settings
from django.utils import timezone

from autobot import audit
from autobot.errors import Forbidden, InvalidInput, LimitExceeded
from terminal.child import Child
from terminal.hook import HookReply, HookRequest
from terminal.models import CommandRecord, TerminalSession
from terminal.policy import Level, Verdict, decide
from terminal.pty import preexec
from terminal.risk import Assessment, Risk, assess
from terminal.sandbox import needs_sandbox

from . import clearance
from . import live as registry
from .access import check_level, owned_session, parse_level, require_terminal, stricter, working_dir
from .confine import Launch, launch_check, launch_for

log = logging.getLogger("terminal")

MAX_COMMAND_CHARS = 64 * 1024
# A stopped line's refusals before its session is ended (see _unstoppable): a stop that works
# ends the line at its first or second refusal.
MAX_STOP_REFUSALS = 32
INTERRUPTED = 128 + 2  # a line's exit status when Ctrl-C (SIGINT) interrupted it, as bash has it
# Parse longer lines in a thread: bashlex is pure Python, ~20 µs a character on nested
# substitutions, so 4 KiB could hold the loop for ~80 ms; 1 KiB keeps it near 20 ms at worst.
_BIG_LINE = 1024

NOT_IN_HISTORY = Assessment(
    risk=Risk.HIGH,
    reasons=("the command line is not in the shell history (history switched off), so it cannot be checked",),
    commands=(),
    parsed=False,
)


SECRET_TYPED = Assessment(
    risk=Risk.DANGEROUS,
    reasons=("the line holds the terminal hook's secret, which only the hook may use",),
    commands=(),
    parsed=True,
)


CHANNEL_WRITE = Assessment(
    risk=Risk.DANGEROUS,
    reasons=("the line redirects to the terminal hook's channel (its file descriptor), which only the hook may use",),
    commands=(),
    parsed=True,
)


@functools.cache
def _channel(fd_numbers: tuple[int, ...]) -> re.Pattern:
    """`>&17`, `17>`, `<&18`, `/dev/fd/17`, `/proc/self/fd/17`: the hook's descriptors in a shell,
    leading zeros included (bash reads `>&0017` and `017>` as 17)."""
    fds = "|".join(str(fd) for fd in fd_numbers)
    return re.compile(rf"(?<![\w$.-])0*({fds})[<>]|[<>]&\s*0*({fds})(?!\d)|/fd/0*({fds})(?!\d)")


async def assess_text(text: str) -> Assessment:
    if len(text) > _BIG_LINE:
        return await asyncio.to_thread(assess, text)
    return assess(text)


def _worst(level: Level, assessments: list[Assessment]) -> tuple[Assessment, Verdict]:
    """The assessment that matters: the first blocked one, else the riskiest."""
    judged = [(a, decide(level, a)) for a in assessments]
    return max(judged, key=lambda pair: (pair[1].blocked, pair[1].warn, pair[0].risk))


async def _record(
    *,
    user,
    session_id,
    level: Level,
    command: str,
    assessment: Assessment,
    verdict: Verdict,
    source: str,
    cwd: str,
    client_ip: str | None,
    exit_code: int | None = None,
    finished: datetime | None = None,
    actor: str = "",
    correlation_id: str = "",
) -> CommandRecord:
    record = await CommandRecord.objects.acreate(
        actor=actor,
        correlation_id=correlation_id,
        session_id=session_id,
        user=user,
        source=source,
        security_level=level.value,
        command=command,
        risk=assessment.risk.name,
        reasons=list(assessment.reasons),
        blocked=verdict.blocked,
        warned=verdict.warn,
        exit_code=exit_code,
        cwd=cwd,
        finished=finished,
        client_ip=client_ip,
    )
    await audit.record(
        actor=user,
        action="terminal.command_blocked" if verdict.blocked else "terminal.command",
        target_type="terminal_session" if session_id else "terminal_command",
        target_id=str(session_id or record.pk),
        data={
            "command": command[:4000],
            "level": level.value,
            "risk": assessment.risk.name,
            "reasons": list(assessment.reasons),
            "blocked": verdict.blocked,
            "warned": verdict.warn,
            "source": source,
            "cwd": cwd,
            "record_id": record.pk,
            "exit_code": exit_code,
            **({"actor": actor} if actor else {}),
        },
        ip=client_ip,
        correlation_id=correlation_id or None,
    )
    return record


# ---- the shell hook ---------------------------------------------------------------------


async def hook_decide(live: registry.LiveSession, request: HookRequest) -> HookReply:
    """A verdict for what bash is about to run in a live session."""
    if request.kind in ("line", "cmd"):  # the shell itself runs something: it is not at its prompt
        live.at_prompt.clear()
    if request.kind in ("cmd", "scmd"):
        assessments = [await assess_text(request.command)]
    elif request.line:
        assessments = [await assess_text(request.line)]
        if request.command and request.command not in request.line:  # an alias or a function
            assessments.append(await assess_text(request.command))
    elif request.kind == "line":
        assessments = [await assess_text(request.command)]
    else:
        assessments = [NOT_IN_HISTORY, *([await assess_text(request.command)] if request.command else [])]
    if live.hook.secret in request.line or live.hook.secret in request.command:
        # Typed out after it was read somewhere (`set`, a file): requests of its own, forged.
        assessments.append(SECRET_TYPED)
    if _channel(live.hook.fd_numbers).search(f"{request.line}\n{request.command}"):
        assessments.append(CHANNEL_WRITE)
    # No await from here to the record's write: the stop as it stands now is what the row says.
    typed, claims = clearance.line_of(live, request)
    judged = clearance.held(request, typed, claims, assessments, _worst(live.level, assessments))
    stop = live.stopping
    assessment, verdict = _stop_holds(live, *judged)
    text = request.line or request.command
    number = request.history_number
    if request.kind in ("line", "sline"):
        # The shell and every subshell of a line may ask; the line is one record (whoever asks
        # first). Lines not in history (number 0) are recorded each time.
        recorded = claims or not number or number not in live.recorded_lines
    else:  # a further simple command of a line already recorded: only when it is refused
        recorded = verdict.blocked
    if request.kind in ("line", "sline") and number:
        if len(live.recorded_lines) > 1024:
            live.recorded_lines.clear()
        live.recorded_lines.add(number)
    # Whose the record is: the operator's line it is part of, else the stopped line it is the rest of.
    owner = typed or live.stopping
    if recorded:
        record = await _record(
            actor=owner.actor if owner else "",
            correlation_id=owner.correlation_id if owner else "",
            user=live.typist or live.owner,
            session_id=live.id,
            level=live.level,
            command=text,
            assessment=assessment,
            verdict=verdict,
            source=CommandRecord.Source.INTERACTIVE,
            cwd=live.proc.cwd() or "",
            client_ip=live.client_ip,
        )
        if not verdict.blocked and live.stopping is not None:  # the stop came while the row was written
            stop = live.stopping
            assessment, verdict = _stop_holds(live, assessment, verdict)
            await _record_stopped(live, record, assessment)
        live.current_record_id = None if verdict.blocked else record.pk
        if not verdict.blocked and request.kind in ("line", "sline") and request.history_number:
            live.open_records[request.history_number] = record.pk
            while len(live.open_records) > 64:  # lines whose end never came (killed subshells)
                live.open_records.pop(next(iter(live.open_records)))
        if claims:
            typed.record_id, typed.blocked, typed.risk = record.pk, verdict.blocked, assessment.risk.name
            typed.reason = verdict.reason
            clearance.recorded(typed)
    if typed is live.typed and typed is not None and not claims and verdict.blocked and typed.refused is None:
        typed.refused = verdict.reason  # a later part of the operator's line: its caller hears of it
    if verdict.blocked and recorded:
        live.broadcast(
            {
                "type": "blocked",
                "command": text,
                "risk": assessment.risk.name,
                "reasons": list(assessment.reasons),
                "security_level": live.level.value,
            }
        )
        message = f"autobot: blocked: {verdict.reason}"
    elif verdict.warn:
        message = f"autobot: warning: {verdict.reason}"
    else:
        message = ""
    if stop is not None:
        # The refusal ends the line: the shell raises SIGINT on itself (autobot.bashrc __autobot_stop).
        # Once the terminal has acted on the stop's Ctrl-C, so the two never both land on the shell:
        # the second would come as it reports its prompt.
        await stop.interrupts_acted(registry.INTERRUPT_SECONDS)
    return HookReply(allow=not verdict.blocked, message=message, generation=live.generation, stop=stop is not None)


def _stop_holds(live: registry.LiveSession, assessment: Assessment, verdict: Verdict) -> tuple[Assessment, Verdict]:
    """The rest of a line the operator stopped is refused, with why (and the refusal ends the line:
    hook_decide answers "stop", the shell then abandons the line as Ctrl-C would)."""
    stop = live.stopping
    if stop is None:
        return assessment, verdict
    stop.refused = True
    stop.refusals += 1
    if stop.refusals > MAX_STOP_REFUSALS:
        _unstoppable(live)
    return clearance.refuse(assessment, stop.reason)


def _unstoppable(live: registry.LiveSession) -> None:
    """A stopped line that keeps asking after MAX_STOP_REFUSALS refusals: its "stop"s do not end
    it (a loop of subshells in a shell that ignores SIGINT without job control: each ends, the
    loop does not). The session ends, as when the hook is off; nothing of the line ran meanwhile."""
    from .sessions import end_live

    log.warning("terminal %s: a stopped line did not end; ending the session", live.id)
    reason = "the stopped line kept running though every command of it was refused, so the session was ended"
    live.broadcast({"type": "blocked", "command": "", "risk": Risk.DANGEROUS.name, "reasons": [reason],
                    "security_level": live.level.value})
    end_live(live, "unstoppable")


async def _record_stopped(live: registry.LiveSession, record: CommandRecord, assessment: Assessment) -> None:
    """A row written as allowed, refused after all by a stop that came during the write: the row
    says blocked, and the audit chain (append-only) gets the refusal as an event of its own."""
    await CommandRecord.objects.filter(pk=record.pk).aupdate(blocked=True, warned=False,
                                                             reasons=list(assessment.reasons))
    await audit.record(
        actor=record.user,
        action="terminal.command_blocked",
        target_type="terminal_session",
        target_id=str(live.id),
        data={"command": record.command[:4000], "record_id": record.pk, "reasons": list(assessment.reasons),
              "blocked": True, "stopped_while_recorded": True},
        ip=live.client_ip,
        correlation_id=record.correlation_id or None,
    )


async def hook_done(live: registry.LiveSession, request: HookRequest,
                    go_on: Callable[[], None] = lambda: None) -> None:
    """A line finished: keep its exit code and the shell's folder. Number 0 (from the prompt)
    means the latest line; the first report for a line wins. A line the operator's stop cut short
    is kept as interrupted (130), whatever bash reports for it (see below). The prompt's report ends the
    operator's stop (and kills what the stopped line left running in the background), once the
    terminal has acted on the stop's Ctrl-C: the shell waits for
    ``go_on`` before it reads a line, so readline never takes the next line while it still
    handles that interrupt (a report sent before the interrupt landed then comes first; the
    prompt the interrupt brings waits its turn, and a line typed meanwhile stays unread)."""
    if request.history_number and request.history_number in live.open_records:
        record_id = live.open_records.pop(request.history_number)
    elif not request.history_number and live.open_records:
        record_id = live.open_records.pop(max(live.open_records))
        live.open_records.clear()  # the prompt is back: every earlier line has ended
    else:
        record_id = None if request.history_number else live.current_record_id
    if record_id == live.current_record_id:
        live.current_record_id = None
    if request.prompt:
        live.prompted = True
    if not request.hooked:
        _hook_off(live)
    if request.prompt and (stop := live.stopping) is not None:  # the stopped line is over
        await stop.interrupts_acted(registry.INTERRUPT_SECONDS)
        if live.stopping is stop:
            # What the line put in the background goes too. Now, while the shell waits for
            # go_on at its prompt: nothing of a next line can be running yet.
            live.proc.kill_jobs()
            stop.over.set()
            live.stopping = None
            if stop.refused:
                # Cut short: the refusal ended the line (the shell raised SIGINT on itself), but what
                # bash reports may be a subshell's end or a pipeline's last program, and a command
                # the hook skips counts as a success (0) to bash. Its Ctrl-C may have been lost (it
                # lands as the shell hands the terminal to the next program: bash takes it for the
                # program's, which runs on until the SIGKILL, and the next command of the line asks
                # and is refused). Recorded as bash records a line Ctrl-C interrupted.
                request = replace(request, exit_status=INTERRUPTED)
    go_on()
    if request.prompt and request.hooked:
        live.at_prompt.set()
    clearance.prompt_back(live, request)
    cwd = live.proc.cwd()
    if record_id is not None:
        await CommandRecord.objects.filter(pk=record_id).aupdate(exit_code=request.exit_status, finished=timezone.now())
    if cwd:
        await TerminalSession.objects.filter(pk=live.id).aupdate(cwd=cwd)


def _hook_off(live: registry.LiveSession) -> None:
    """The shell reported a prompt without its DEBUG trap having run (``trap - DEBUG`` and the
    like): nothing it runs would be rated, refused or recorded any more. The session ends; the
    operator's line that found it so is refused."""
    from .sessions import end_live

    log.warning("terminal %s: the command hook is off; ending the session", live.id)
    reason = "the terminal's command hook was switched off in this session, so it was ended"
    if (typed := live.typed) is not None and not typed.done.done():
        typed.blocked, typed.reason = True, reason
        typed.done.set_result(None)
    live.broadcast({"type": "blocked", "command": "", "risk": Risk.DANGEROUS.name, "reasons": [reason],
                    "security_level": live.level.value})
    end_live(live, "hook_off")


# ---- non-interactive commands --------------------------------------------------------------


def command_env(*, user, home: str, level: Level) -> dict[str, str]:
    """A clean environment: nothing of the server's (secrets live there) leaks into shells."""
    return {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": home,
        "USER": user.get_username(),
        "LOGNAME": user.get_username(),
        "SHELL": "/bin/bash",
        "TERM": "xterm-256color",
        "COLORTERM": "truecolor",
        "LANG": "C.UTF-8",
        "AUTOBOT_SECURITY_LEVEL": level.value,
    }


async def _collect(stream: asyncio.StreamReader, chunks: list[bytes], cap: int) -> bool:
    """Read a stream to its end, keeping at most ``cap`` bytes; True when some was dropped."""
    kept = 0
    dropped = False
    while data := await stream.read(65536):
        room = cap - kept
        if room > 0:
            chunks.append(data[:room])
            kept += min(room, len(data))
        dropped = dropped or len(data) > room
    return dropped


async def _execute(
    launch: Launch, *, cwd: str, env: dict[str, str], seconds: float, cap: int
) -> tuple[int | None, str, bool, bool]:
    try:  # started off the loop: with its preexec_fn, Popen forks and waits for the exec
        child = await Child.start(
            launch.argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            pass_fds=launch.pass_fds,
            preexec_fn=preexec(launch.rlimits, cgroup_procs=launch.cgroup_procs),
        )
    finally:
        launch.spawned()
    chunks: list[bytes] = []
    timed_out = False
    truncated = False
    try:
        reading = asyncio.gather(_collect(child.stdout, chunks, cap), child.wait())
        truncated, _ = await asyncio.wait_for(reading, seconds)
    except TimeoutError:
        timed_out = True
    finally:
        # The whole process group: a background job must not outlive the request.
        child.kill_group()
        try:
            await child.wait()
        finally:
            child.close()
    output = b"".join(chunks).decode("utf-8", errors="replace")
    return (None if timed_out else child.returncode), output, truncated, timed_out


async def command_run(
    *,
    user,
    command: str,
    level: str = "RESTRICTED",
    cwd: str | None = None,
    timeout: float | None = None,  # noqa: ASYNC109 - the cross-app contract names it
    client_ip: str | None = None,
    session=None,
) -> dict:
    """Assess, audit, record, then run one command non-interactively (``bash -c``).

    Returns ``exit_code, output, risk, reasons, blocked, duration_ms`` (plus ``reason``,
    ``timed_out``, ``truncated``, ``record_id``). A blocked command is not run.
    """
    await require_terminal(user)
    if not isinstance(command, str) or not command.strip():
        raise InvalidInput("command must not be empty", code="invalid_command")
    if len(command) > MAX_COMMAND_CHARS:
        raise LimitExceeded(f"command is longer than {MAX_COMMAND_CHARS} characters", code="command_too_long")
    chosen = parse_level(level)
    check_level(user=user, current=None, requested=chosen)
    session_id, default_cwd = None, None
    if session is not None:
        row = await owned_session(user=user, session_id=getattr(session, "pk", session))
        session_id = row.pk
        chosen = stricter(chosen, parse_level(row.security_level))
        live = registry.get(row.pk)
        default_cwd = (live.proc.cwd() if live else None) or row.cwd or None
    workdir = await working_dir(user=user, cwd=cwd, level=chosen, default=default_cwd)
    if needs_sandbox(level=chosen, is_staff=user.is_staff):
        # A session's folder may have moved outside the area since; sandboxed runs stay inside
        # (nothing else is mounted in the sandbox).
        workdir = await working_dir(user=user, cwd=workdir, level=Level.RESTRICTED)
    limit = settings.TERMINAL_EXECUTE_TIMEOUT
    timeout = limit if timeout is None else max(0.1, min(float(timeout), limit))

    await launch_check(user=user, level=chosen)
    started = time.monotonic()
    assessment = await assess_text(command)
    verdict = decide(chosen, assessment)
    record = await _record(
        user=user,
        session_id=session_id,
        level=chosen,
        command=command,
        assessment=assessment,
        verdict=verdict,
        source=CommandRecord.Source.EXECUTE,
        cwd=workdir,
        client_ip=client_ip,
    )
    result = {
        "exit_code": None,
        "output": "",
        "risk": assessment.risk.name,
        "reasons": list(assessment.reasons),
        "blocked": verdict.blocked,
        "reason": verdict.reason,
        "timed_out": False,
        "truncated": False,
        "record_id": record.pk,
    }
    if not verdict.blocked:
        home = await working_dir(user=user, cwd=None, level=chosen)
        launch = await launch_for(user=user, level=chosen, home=home, cwd=workdir, interactive=False, command=command)
        try:
            exit_code, output, truncated, timed_out = await _execute(
                launch,
                cwd=workdir,
                env=command_env(user=user, home=home, level=chosen),
                seconds=timeout,
                cap=settings.TERMINAL_EXECUTE_MAX_OUTPUT,
            )
        finally:
            await launch.release()
        result.update(exit_code=exit_code, output=output, truncated=truncated, timed_out=timed_out)
        await CommandRecord.objects.filter(pk=record.pk).aupdate(exit_code=exit_code, finished=timezone.now())
    result["duration_ms"] = round((time.monotonic() - started) * 1000, 1)
    return result


# ---- reading ------------------------------------------------------------------------------


async def command_assess(*, user, command: str, level: str | None = None) -> dict:
    """The assessment of a line, and what each level (or the given one) would do with it."""
    if len(command) > MAX_COMMAND_CHARS:
        raise LimitExceeded(f"command is longer than {MAX_COMMAND_CHARS} characters", code="command_too_long")
    assessment = await assess_text(command)
    levels = [parse_level(level)] if level else list(Level)
    verdicts = {}
    for lvl in levels:
        v = decide(lvl, assessment)
        verdicts[lvl.value] = {"blocked": v.blocked, "warn": v.warn, "reason": v.reason}
    return {**assessment.to_dict(), "parsed": assessment.parsed, "verdicts": verdicts}


async def command_audit(
    *,
    user,
    username: str | None = None,
    session_id=None,
    risk: str | None = None,
    blocked: bool | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
):
    """Command records visible to ``user`` (own ones; staff: everyone's), filtered. A queryset."""
    await require_terminal(user)
    records = CommandRecord.objects.select_related("user").order_by("-started", "-id")
    if not user.is_staff:
        if username and username != user.get_username():
            raise Forbidden("only staff may read other users' commands", code="forbidden")
        records = records.filter(user=user)
    elif username:
        records = records.filter(user__username=username)
    if session_id is not None:
        records = records.filter(session_id=session_id)
    if risk:
        name = risk.upper()
        if name not in Risk.__members__:
            raise InvalidInput(f"unknown risk {risk!r}; use one of {', '.join(Risk.__members__)}", code="invalid_risk")
        records = records.filter(risk=name)
    if blocked is not None:
        records = records.filter(blocked=blocked)
    if since is not None:
        records = records.filter(started__gte=since)
    if until is not None:
        records = records.filter(started__lt=until)
    return records
