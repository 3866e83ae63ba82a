"""Lines typed for the chat's operator (terminal/services/typed.py) into a real sandboxed shell:
the operator's stop stops the whole line, not just the program running, and the shell lives on."""

import asyncio
from pathlib import Path

import pytest

from autobot.models import AuditEvent
from autobot.supervise import cancel
from files.services import area_root
from terminal import services
from terminal.models import CommandRecord
from terminal.services import sessions as sessions_module
from terminal.services import typed as typed_module

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]

STOPPED = "the operator stopped this line"


@pytest.fixture
async def session(terminal_user):
    return await services.session_open(user=terminal_user)


async def type_line(user, session, command, *, on_output=None):
    return await services.command_type(user=user, session_id=session.pk, command=command, actor="operator",
                                       correlation_id="turn-1", timeout=30, on_output=on_output)


async def started(user, session, command):
    """Type ``command`` (which prints started-2 first); returns its task once that is printed."""
    seen, printed = [], asyncio.Event()

    async def output(text):
        seen.append(text)
        if "started-2" in "".join(seen):
            printed.set()

    task = asyncio.create_task(type_line(user, session, command, on_output=output))
    await printed.wait()
    return task


async def stop(task):
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_stop_ends_the_whole_line_and_the_shell_takes_the_next(terminal_user, session):
    root, _ = await area_root(user=terminal_user)
    typing = await started(terminal_user, session, "echo started-$((1+1)); sleep 30; echo after-stop > stopped.txt")
    shell = services.live_session(session.pk).proc.shell_pid()
    await stop(typing)

    # The shell is at its prompt again (the same shell) and runs the next line; by then the
    # stopped line is over, and what followed the sleep never ran.
    ran = await type_line(terminal_user, session, "echo next-$((2+3))")
    assert (ran["output"].splitlines()[-1], ran["exit_code"], ran["timed_out"]) == ("next-5", 0, False)
    assert services.live_session(session.pk).proc.shell_pid() == shell
    assert not await asyncio.to_thread(Path(root, "stopped.txt").exists)
    stopped = await CommandRecord.objects.aget(command__startswith="echo started-$((1+1)); sleep 30")
    assert (stopped.blocked, stopped.exit_code) == (False, 130)  # interrupted, however the Ctrl-C landed


async def test_a_program_ignoring_ctrl_c_is_killed_and_the_rest_of_its_line_is_refused(terminal_user, session):
    """As when the stop's Ctrl-C is lost (it lands as the shell hands the terminal to the line's
    program: bash takes it for the program's): the program is killed, the rest of the line refused,
    and the line is recorded as interrupted (130), not with the status bash reports for a command
    the hook skipped (0)."""
    root, _ = await area_root(user=terminal_user)
    # The same command text allowed before: the shell keeps that verdict and would not ask again.
    primed = await type_line(terminal_user, session, "mkdir -p primed && cd primed && echo after-stop > stopped.txt")
    assert primed["exit_code"] == 0
    await type_line(terminal_user, session, "cd ..")

    deaf = "bash -c 'trap \"\" INT; echo started-$((1+1)); exec sleep 30'"  # ignores Ctrl-C
    typing = await started(terminal_user, session, f"{deaf}; echo after-stop > stopped.txt")
    await stop(typing)

    ran = await type_line(terminal_user, session, "echo next-$((2+3))")
    assert (ran["output"].splitlines()[-1], ran["exit_code"]) == ("next-5", 0)
    assert not await asyncio.to_thread(Path(root, "stopped.txt").exists)
    stopped = await CommandRecord.objects.aget(session_id=session.pk, command=f"{deaf}; echo after-stop > stopped.txt")
    assert (stopped.blocked, stopped.exit_code) == (False, 130)
    # Refused, recorded and audited like any blocked command, saying why.
    refused = await CommandRecord.objects.aget(session_id=session.pk, command="echo after-stop > stopped.txt",
                                               blocked=True)
    assert refused.reasons[0] == STOPPED
    audited = await AuditEvent.objects.aget(action="terminal.command_blocked", data__record_id=refused.pk)
    assert audited.data["reasons"][0] == STOPPED


DEAF = "bash -c 'trap \"\" INT; echo started-$((1+1)); exec sleep 30'"  # ignores Ctrl-C


@pytest.mark.parametrize("line", [
    f"for i in $(seq 50); do {DEAF}; sleep 0.1; done",
    f"while :; do {DEAF}; sleep 1; done",
    f"while true; do {DEAF}; sleep 1; done",
    # the shell itself ignores Ctrl-C, and so does what it runs
    "trap '' INT; while :; do echo started-$((1+1)); sleep 1; done",
], ids=["finite", "endless", "endless-true", "endless-ignoring-ctrl-c"])
async def test_a_stopped_loop_whose_ctrl_c_was_lost_ends_at_its_first_refusal(terminal_user, session, line):
    """The stop's Ctrl-C lost (taken for the deaf program's), or ignored: the loop used to run on,
    asking about each of its commands and refused each time, a record and an audit event each (an
    endless one for ever, and the stop with it: the next line was refused as busy). Now the first
    refusal ends the line, as Ctrl-C at the shell would."""
    live = services.live_session(session.pk)
    typing = await started(terminal_user, session, line)
    await stop(typing)

    ran = await type_line(terminal_user, session, "trap -p INT; echo next-$((2+3))")
    assert (ran["output"].splitlines()[-1], ran["exit_code"], ran["blocked"]) == ("next-5", 0, False)
    assert ran["output"].startswith("trap -- '' SIGINT") == line.startswith("trap")  # the line's own, kept
    assert live.stopping is None
    stopped = await CommandRecord.objects.aget(session_id=session.pk, command=line)
    assert (stopped.blocked, stopped.exit_code) == (False, 130)
    refused = [r async for r in CommandRecord.objects.filter(session_id=session.pk, blocked=True)]
    assert len(refused) == 1 and refused[0].reasons[0] == STOPPED
    assert await AuditEvent.objects.filter(action="terminal.command_blocked").acount() == 1
    assert await CommandRecord.objects.filter(session_id=session.pk).acount() == 3  # the line, the refusal, the next


async def test_a_stopped_subshell_loop_ignoring_ctrl_c_ends_and_so_does_its_line(terminal_user, session):
    """A subshell asks on its own channel: its first refusal ends it, and the shell's first ends the
    rest of the line (it sees the subshell end with 130, not killed by the signal)."""
    root, _ = await area_root(user=terminal_user)
    line = "( trap '' INT; echo started-$((1+1)); while :; do sleep 0.2; done ) | cat; echo after-stop > stopped.txt"
    typing = await started(terminal_user, session, line)
    await stop(typing)

    ran = await type_line(terminal_user, session, "echo next-$((2+3))")
    assert (ran["output"].splitlines()[-1], ran["exit_code"]) == ("next-5", 0)
    assert not await asyncio.to_thread(Path(root, "stopped.txt").exists)
    stopped = await CommandRecord.objects.aget(session_id=session.pk, command=line)
    assert (stopped.blocked, stopped.exit_code) == (False, 130)
    refused = [r.command async for r in CommandRecord.objects.filter(session_id=session.pk, blocked=True)
               .order_by("id")]
    # the subshell's first refused command (the loop's test or its body), and perhaps the shell's
    assert refused[0] in (":", "sleep 0.2") and refused[1:] in ([], ["echo after-stop > stopped.txt"])


async def test_a_stopped_line_that_cannot_end_ends_its_session(terminal_user, session):
    """Without job control, in a shell that ignores Ctrl-C, a loop of subshells outlives every
    "stop": each subshell ends at its refusal, the loop does not, and the shell itself never asks.
    Past MAX_STOP_REFUSALS refusals the session is ended; nothing more of the line runs."""
    from terminal.models import TerminalSession
    from terminal.services.commands import MAX_STOP_REFUSALS

    line = "set +m; trap '' INT; while ! (echo started-$((1+1)); sleep 0.2; false); do (sleep 0.2); done"
    typing = await started(terminal_user, session, line)
    await stop(typing)

    ended = TerminalSession.objects.filter(pk=session.pk, status=TerminalSession.Status.ENDED)
    for _ in range(300):  # the teardown's own pace: at most 30 s
        if await ended.aexists():
            break
        await asyncio.sleep(0.1)
    row = await TerminalSession.objects.aget(pk=session.pk)
    assert (row.status, row.end_reason) == (TerminalSession.Status.ENDED, "unstoppable")
    refused = await CommandRecord.objects.filter(session_id=session.pk, blocked=True).acount()
    assert MAX_STOP_REFUSALS < refused <= MAX_STOP_REFUSALS + 4  # then the session ended


async def test_a_stop_at_the_prompt_leaves_the_next_line_alone(terminal_user, session):
    live = services.live_session(session.pk)
    typed_module.line_stop(live, STOPPED)  # nothing runs: Ctrl-C just brings a new prompt

    ran = await type_line(terminal_user, session, "echo next-$((2+3))")
    assert (ran["output"].splitlines()[-1], ran["exit_code"], ran["blocked"]) == ("next-5", 0, False)
    assert live.stopping is None


async def test_a_stop_at_a_prompt_in_use_leaves_the_next_line_alone(terminal_user, session):
    """The Ctrl-C lands on readline waiting at its prompt: the next line, typed as soon as the stop
    is over, is read whole (not from a readline still handling the interrupt)."""
    assert (await type_line(terminal_user, session, "echo one-$((0+1))"))["exit_code"] == 0
    live = services.live_session(session.pk)
    typed_module.line_stop(live, STOPPED)

    ran = await type_line(terminal_user, session, "echo next-$((2+3))")
    assert (ran["output"].splitlines()[-1], ran["exit_code"], ran["blocked"]) == ("next-5", 0, False)


async def test_a_stop_insisted_on_still_detaches_the_stopped_line_from_the_terminal(terminal_user, session):
    """Cancelled again and again (autobot.supervise.cancel, as an A2A cancel does) while it
    winds down, the stopped line still lets go of the terminal: the next line's output never
    reaches the stopped one's watcher."""
    seen, printed = [], asyncio.Event()

    async def output(text):
        seen.append(text)
        if "started-2" in "".join(seen):
            printed.set()

    typing = asyncio.create_task(type_line(terminal_user, session, "echo started-$((1+1)); sleep 30",
                                           on_output=output))
    await printed.wait()
    cancel(typing)
    with pytest.raises(asyncio.CancelledError):
        await typing

    ran = await type_line(terminal_user, session, "echo next-$((2+3))")
    assert ran["output"].splitlines()[-1] == "next-5"
    assert "next-5" not in "".join(seen)


async def test_ctrl_c_typed_while_the_shell_starts_cannot_cost_it_its_hook(terminal_user):
    """A Ctrl-C landing before the rc file's `trap '' INT` made bash abandon the file and run with
    no hook (a few runs in a hundred). Keys that make signals are dropped until the first prompt,
    and so is the operator's stop's own Ctrl-C: hammered through the whole start, every shell
    still rates and refuses a DANGEROUS line."""
    for _ in range(5):
        session = await services.session_open(user=terminal_user)
        live = services.live_session(session.pk)
        typed_module.line_stop(live, STOPPED)
        async with asyncio.timeout(30):
            while not live.prompted:  # (the user's input path, after its checks: no await before the
                # write, so no key goes out once the prompt is reported, which would be a real Ctrl-C)
                await sessions_module._write(live, "\x03\x1c\x1a", user=terminal_user)
                await asyncio.sleep(0.002)
        ran = await type_line(terminal_user, session, "mkfs.ext4 /dev/autobot-test-none")
        assert ran["blocked"] and ran["risk"] == "DANGEROUS", ran
        assert (await type_line(terminal_user, session, "echo alive-$((1+1))"))["output"].splitlines()[-1] == "alive-2"
        await services.session_close(user=terminal_user, session_id=session.pk)


async def test_keys_that_make_signals_are_dropped_until_the_first_prompt_and_kept_after(terminal_user, session,
                                                                                       monkeypatch):
    """The guard itself, deterministically (the race it closes is a millisecond wide): before the
    hook's first prompt, Ctrl-C, Ctrl-\\ and Ctrl-Z never reach the terminal, nor does the stop's
    own Ctrl-C; after it, they do."""
    live = services.live_session(session.pk)
    await type_line(terminal_user, session, "true")  # a line ran: the first prompt has come
    assert live.prompted
    written, interrupts = [], []
    monkeypatch.setattr(live.proc, "write", written.append)
    monkeypatch.setattr(live.proc, "interrupt", lambda: interrupts.append(1))

    live.prompted = False  # as while the rc file still runs
    await sessions_module._write(live, "a\x03b\x1cc\x1ad", user=terminal_user)
    typed_module.line_stop(live, STOPPED)
    assert written == [b"abcd"] and interrupts == []

    live.prompted = True
    await sessions_module._write(live, "a\x03b", user=terminal_user)
    typed_module.line_stop(live, STOPPED)
    assert written[-1] == b"a\x03b" and interrupts == [1]
    live.stopping = None  # nothing ran: the monkeypatched terminal got no real Ctrl-C


@pytest.mark.parametrize("raw", [
    "echo typed\r\n\x1b[?2004l\rtyped\r\n\x1b[?2004hroot@autobot:~# ",
    # Typed while the shell still ran its prompt command (at_prompt is reported from there): the
    # terminal echoed it at once, then readline again after the prompt. Output of real bash.
    "echo typed\r\n\x1b[?2004hroot@autobot:~# echo typed\r\n\x1b[?2004l\rtyped\r\n\x1b[?2004hroot@autobot:~# ",
])
def test_the_output_is_what_the_line_printed_however_often_it_was_echoed(raw):
    assert typed_module._clean(raw, "echo typed") == "typed"


def test_a_first_output_line_that_looks_like_the_prompt_and_the_command_is_kept():
    raw = "cat notes.txt\r\n\x1b[?2004l\rme@box:~$ cat notes.txt\r\nsecond\r\n\x1b[?2004hroot@autobot:~# "
    assert typed_module._clean(raw, "cat notes.txt") == "me@box:~$ cat notes.txt\nsecond"
