"""The operator's stop (terminal/services/typed.py line_stop) against the hook's verdicts and the
session's processes, in a real sandboxed shell."""

import asyncio
import os
import re

import pytest
from django.db.models.signals import post_save

from autobot.models import AuditEvent
from terminal import procs, services
from terminal.hook import HookRequest
from terminal.models import CommandRecord
from terminal.services import commands
from terminal.services.live import LineStop

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]

STOPPED = "the operator stopped this line"


@pytest.fixture
async def session(terminal_user):
    return await services.session_open(user=terminal_user)


async def test_a_stop_that_lands_while_the_record_is_written_refuses_and_the_row_says_blocked(session):
    """The stop comes during the record's own database write (a post_save receiver sets it, as a
    stop landing on the loop while the write awaits would): the reply refuses, and the row and
    the audit trail say so rather than "allowed"."""
    live = services.live_session(session.pk)
    # At its first prompt: that prompt's report, landing during the write, would end the stop.
    await asyncio.wait_for(live.at_prompt.wait(), 10)

    def stop_now(sender, instance, created, **kwargs):
        if created and instance.session_id == live.id:
            live.stopping = LineStop(STOPPED)

    post_save.connect(stop_now, sender=CommandRecord, weak=False)
    try:
        reply = await commands.hook_decide(
            live, HookRequest(kind="line", line="echo harmless", command="echo harmless", history_number=900))
    finally:
        post_save.disconnect(stop_now, sender=CommandRecord)
        live.stopping = None

    assert not reply.allow and STOPPED in reply.message
    row = await CommandRecord.objects.aget(session_id=live.id, command="echo harmless")
    assert row.blocked and row.reasons[0] == STOPPED
    assert live.current_record_id is None and 900 not in live.open_records
    refused = [e async for e in AuditEvent.objects.filter(action="terminal.command_blocked")]
    assert [e.data["record_id"] for e in refused] == [row.pk]


async def test_a_stop_before_the_decision_refuses_with_one_blocked_row(session):
    live = services.live_session(session.pk)
    await asyncio.wait_for(live.at_prompt.wait(), 10)
    live.stopping = LineStop(STOPPED)
    try:
        reply = await commands.hook_decide(
            live, HookRequest(kind="line", line="echo harmless", command="echo harmless", history_number=901))
    finally:
        live.stopping = None
    assert not reply.allow
    row = await CommandRecord.objects.aget(session_id=live.id, command="echo harmless")
    assert row.blocked and row.reasons[0] == STOPPED
    assert await AuditEvent.objects.filter(action="terminal.command_blocked").acount() == 1


async def _type(user, session, command, *, on_output=None):
    return await services.command_type(user=user, session_id=session.pk, command=command, actor="operator",
                                       correlation_id="turn-1", timeout=30, on_output=on_output)


def _host_pid(live, inner: int) -> int:
    """The host's pid of the process the sandboxed shell calls ``inner`` (its PID namespace's;
    a job may still be the shell's fork, asking the hook before it runs its program)."""
    for pid in procs.descendants(live.proc.pid):
        with open(f"/proc/{pid}/status", encoding="utf-8") as fh:
            status = dict(line.split(":", 1) for line in fh)
        if int(status["NSpid"].split()[-1]) == inner:
            return pid
    raise AssertionError(f"no process {inner} in the session")


async def _exited(pid: int) -> None:
    """Wait until the process ``pid`` has exited (its pidfd turns readable)."""
    loop = asyncio.get_running_loop()
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:  # exited and reaped already
        return
    gone = loop.create_future()
    loop.add_reader(fd, lambda: gone.done() or gone.set_result(None))
    try:
        await asyncio.wait_for(gone, 20)
    finally:
        loop.remove_reader(fd)
        os.close(fd)


@pytest.mark.parametrize("line", [
    # a job of the shell's, in a process group of its own: the Ctrl-C never reaches it
    "sleep 1000 & echo bg=$!; echo started-$((1+1)); sleep 30",
    # a program deaf to Ctrl-C (killed 2 s later) whose job left its group and session
    "bash -c 'trap \"\" INT; setsid sleep 1000 & echo bg=$!; echo started-$((1+1)); exec sleep 30'",
], ids=["shell-job", "setsid-job-of-a-deaf-program"])
async def test_a_stop_kills_the_lines_background_jobs_and_the_shell_takes_the_next(terminal_user, session, line):
    live = services.live_session(session.pk)
    seen, printed = [], asyncio.Event()

    async def output(text):
        seen.append(text)
        if "started-2" in "".join(seen):
            printed.set()

    typing = asyncio.create_task(_type(terminal_user, session, line, on_output=output))
    await printed.wait()
    job = _host_pid(live, int(re.search(r"bg=(\d+)", "".join(seen)).group(1)))
    shell = live.proc.shell_pid()

    typing.cancel()  # the operator's stop
    with pytest.raises(asyncio.CancelledError):
        await typing

    await _exited(job)
    ran = await _type(terminal_user, session, "echo next-$((2+3))")
    assert ran["output"].splitlines()[-1] == "next-5"
    assert live.proc.shell_pid() == shell and live.proc.alive


async def _finished(command: str) -> CommandRecord:
    """The line's record once its end is stored (or it was refused: a blocked line never ends)."""
    async with asyncio.timeout(20):
        while True:
            record = await CommandRecord.objects.filter(command=command).afirst()
            if record is not None and (record.finished is not None or record.blocked):
                return record
            await asyncio.sleep(0.05)


@pytest.mark.parametrize(("who", "when", "recorded"), [
    # bash abandons the line in its hook (the verdict never counts) and reports 130 for it
    ("person", "in-the-hook", (False, 130)),
    # the stop refuses the line it holds in the hook: blocked, as a refused line is, no exit code
    ("operator", "in-the-hook", (True, None)),
    ("person", "while-it-runs", (False, 130)),
])
async def test_a_ctrl_c_stops_the_line_and_its_record_never_says_it_succeeded(terminal_user, session, who, when,
                                                                              recorded):
    """Ctrl-C while the shell waits in its hook for the line's verdict (held here until the
    terminal has acted on it), or while the line's program runs: the line never gets to its
    `echo`, and its record says so rather than exit 0."""
    live = services.live_session(session.pk)
    await asyncio.wait_for(live.at_prompt.wait(), 10)
    line = f"sleep {30 if when == 'while-it-runs' else 0}; echo ran-$((1+1)) > ran.txt"
    asked, release = asyncio.Event(), asyncio.Event()
    decide = live.hook._decide

    async def held(request):
        if request.kind == "line" and request.line == line and when == "in-the-hook":
            asked.set()
            await release.wait()
        return await decide(request)

    live.hook._decide = held
    typing = None
    if who == "operator":
        typing = asyncio.create_task(_type(terminal_user, session, line))
    else:
        live.proc.write(line + "\r")
    async with asyncio.timeout(20):
        if when == "in-the-hook":
            await asyncio.wait_for(asked.wait(), 10)  # the shell waits for the answer now
        else:
            while live.proc.foreground_command() != "sleep":  # noqa: ASYNC110 - no event says it
                await asyncio.sleep(0.02)
        if typing is not None:
            typing.cancel()  # the operator's stop: its Ctrl-C, and what of the line asks is refused
            with pytest.raises(asyncio.CancelledError):
                await typing
        else:
            await live.proc.interrupt()  # the terminal has sent SIGINT to the shell's group
    release.set()

    record = await _finished(line)
    assert (record.blocked, record.exit_code) == recorded
    ran = await _type(terminal_user, session, "cat ran.txt 2>/dev/null; echo next-$((2+3))")
    assert ran["output"].splitlines() == ["next-5"]  # the line's echo never ran; the shell takes the next
