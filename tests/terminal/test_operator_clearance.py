"""An operator's line runs only what it was cleared for (terminal/services/clearance.py)
in a real sandboxed STANDARD shell, where the level itself blocks nothing:
bash can run more than the typed text shows (history expansion, functions, aliases, sourced
files, what a line leaves in the background), and none of that may go above the line's rating.
The stand-in for harm is a recursive deletion (HIGH) of a folder in the user's files area."""

import asyncio
import os

import pytest

from autobot.errors import Conflict
from autobot.models import AuditEvent
from files.services import area_root
from terminal import services
from terminal.hook import HookRequest
from terminal.models import CommandRecord, TerminalSession
from terminal.services import commands
from terminal.services import live as registry
from tests.conftest import _call_sync

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]

CLEARED = "the operator's line was cleared for"


def _make_staff(user):
    user.is_staff = True
    user.save()
    return user


@pytest.fixture
async def staff_user(terminal_user):
    return await asyncio.to_thread(_call_sync, _make_staff, terminal_user)


@pytest.fixture
async def victim(staff_user):
    root, _ = await area_root(user=staff_user)
    path = os.path.join(root, "victim")
    await asyncio.to_thread(os.makedirs, path, exist_ok=True)
    return path


class Shell:
    """A STANDARD session: the person types with ``person``, the operator with ``operator``."""

    def __init__(self, user, session):
        self.user, self.session, self.n = user, session, 0
        self.live = registry.get(session.pk)

    async def person(self, line: str) -> str:
        """Type a line as the person at the keyboard; return what it printed."""
        self.n += 1
        marker = f"PERSON{self.n}DONE"
        sub = self.live.proc.subscribe()
        try:
            await services.session_input(user=self.user, session_id=self.session.pk,
                                         text=f"{line}; echo {marker[:3]}''{marker[3:]}\n")
            seen = ""
            while marker not in seen.replace(f"{marker[:3]}''{marker[3:]}", ""):
                chunk = await asyncio.wait_for(sub.read(), 20)
                assert chunk is not None, seen
                seen += chunk
            await asyncio.wait_for(self.live.at_prompt.wait(), 10)  # its prompt is back
            return seen
        finally:
            sub.close()

    async def operator(self, command: str, timeout: float = 20) -> dict:  # noqa: ASYNC109 - passed on
        return await services.command_type(user=self.user, session_id=self.session.pk, command=command,
                                           actor="operator", correlation_id="turn-7", timeout=timeout)


@pytest.fixture
async def shell(staff_user):
    session = await services.session_open(user=staff_user, security_level="STANDARD")
    return Shell(staff_user, session)


async def _refused(session, command: str) -> CommandRecord:
    return await CommandRecord.objects.aget(session_id=session.pk, command=command, blocked=True)


async def test_history_expansion_cannot_turn_a_cleared_line_into_another(shell, victim):
    assert (await shell.operator("history -s 'rm -rf victim'"))["exit_code"] == 0  # SAFE: it only adds history
    ran = await shell.operator("!!")  # MODERATE as typed; bash would run the line it expands to

    assert ran["blocked"] and "not the line typed" in ran["reason"]
    assert await asyncio.to_thread(os.path.isdir, victim)
    refused = await _refused(shell.session, "rm -rf victim")
    assert (refused.actor, refused.correlation_id) == ("operator", "turn-7")
    assert await AuditEvent.objects.filter(action="terminal.command_blocked", data__record_id=refused.pk).aexists()

    quick = await shell.operator("^victim^victim")  # quick substitution: history expansion too
    assert quick["blocked"] and await asyncio.to_thread(os.path.isdir, victim)


async def test_a_function_the_person_defined_runs_nothing_above_the_operators_clearance(shell, victim):
    # The person defines it and runs it once: the shell keeps its verdict on `rm -rf victim`
    # for that line only; the operator's line must ask again.
    await shell.person("mkdir -p victim2 && cleanup() { rm -rf victim2; rm -rf victim; }")
    ran = await shell.operator("cleanup")  # MODERATE: an unknown command

    assert ran["blocked"] and CLEARED in ran["reason"] and "HIGH" in ran["reason"]
    assert await asyncio.to_thread(os.path.isdir, victim)
    refused = await _refused(shell.session, "rm -rf victim2")
    assert refused.actor == "operator" and refused.reasons[0].startswith("HIGH")

    await shell.person("cleanup")  # the person's own line is judged by the level only
    assert not await asyncio.to_thread(os.path.isdir, victim)


async def test_an_alias_and_a_sourced_file_are_held_to_the_clearance_too(shell, victim):
    await shell.person("alias tidy='rm -rf victim'")
    assert (await shell.operator("tidy"))["blocked"]
    root = os.path.dirname(victim)
    await asyncio.to_thread(_write, os.path.join(root, "steps.sh"), "echo step-one\nrm -rf victim\n")
    sourced = await shell.operator("source steps.sh")

    assert sourced["blocked"] and "step-one" in sourced["output"]
    assert await asyncio.to_thread(os.path.isdir, victim)


async def test_what_an_operators_line_leaves_in_the_background_stays_held(shell, victim):
    await shell.person("cleanup() { rm -rf victim; }")
    ran = await shell.operator("(sleep 1; cleanup; echo bg-finished > bg.txt) &")
    assert ran["exit_code"] == 0 and not ran["blocked"], ran  # the line itself ended at once

    bg = os.path.join(os.path.dirname(victim), "bg.txt")
    for _ in range(100):
        if await asyncio.to_thread(os.path.exists, bg):
            break
        await asyncio.sleep(0.1)
    assert await asyncio.to_thread(os.path.exists, bg)
    assert await asyncio.to_thread(os.path.isdir, victim)
    assert CLEARED in (await _refused(shell.session, "rm -rf victim")).reasons[0]


async def test_a_cleared_high_line_runs_and_a_comment_or_definition_returns_at_once(shell, victim):
    ran = await shell.operator("rm -rf victim")  # its caller cleared HIGH (the user approved it)
    assert (ran["blocked"], ran["exit_code"]) == (False, 0)
    assert not await asyncio.to_thread(os.path.isdir, victim)

    for line in ("# nothing to run", "greet() { echo hello; }"):
        quick = await asyncio.wait_for(shell.operator(line), 5)  # no command for the hook to ask about
        assert (quick["exit_code"], quick["blocked"], quick["timed_out"]) == (0, False, False)
    assert (await shell.operator("greet"))["output"] == "hello"


async def running(shell: Shell, program: str, seconds: float = 20) -> None:
    """Wait until `program` runs in the foreground of the shell, its line past the prompt (a busy
    machine may take seconds to start it)."""
    async with asyncio.timeout(seconds):
        while True:  # nothing to await: the terminal reports no program starting
            if not shell.live.at_prompt.is_set() and shell.live.proc.foreground_command() == program:
                return
            await asyncio.sleep(0.05)


async def test_the_operator_does_not_type_into_a_program_that_is_running(shell):
    reading = asyncio.create_task(shell.person("cat"))  # cat would take the line as its input
    await running(shell, "cat")
    with pytest.raises(Conflict) as refused:
        await shell.operator("echo typed", timeout=2)
    assert refused.value.code == "terminal_busy" and "cat is running" in str(refused.value)
    shell.live.proc.write("\x04")  # end of input: cat ends, the person's line finishes
    await asyncio.wait_for(reading, 20)
    assert (await shell.operator("echo typed"))["output"] == "typed"


async def test_a_shell_whose_hook_was_switched_off_is_ended(shell):
    shell.live.proc.write("trap - DEBUG\n")  # DANGEROUS, which STANDARD lets the person run
    await asyncio.wait_for(shell.live.ended.wait(), 20)

    session = await TerminalSession.objects.aget(pk=shell.session.pk)
    assert (session.status, session.end_reason) == ("ended", "hook_off")
    assert await AuditEvent.objects.filter(action="terminal.session_end", data__reason="hook_off").aexists()


def _write(path: str, text: str) -> None:
    with open(path, "w") as fh:
        fh.write(text)


async def test_the_hooks_secret_is_neither_shown_to_the_operator_nor_usable_in_a_line(shell):
    secret = shell.live.hook.secret
    shown = await shell.operator("set | grep -a autobot_secret=")
    assert secret not in shown["output"] and "[the hook's secret]" in shown["output"]

    forged = f"printf '%s\\t-\\tdone\\t0\\t0\\t1\\n' {secret} > forged.txt"
    refused = await shell.operator(forged)
    assert refused["blocked"] and "the terminal hook's secret" in refused["reason"]
    # Reading it is DANGEROUS, which no operator policy lets run.
    assert (await shell.operator('echo "${#__autobot_secret}"'))["risk"] == "DANGEROUS"


async def test_an_early_report_of_the_lines_end_does_not_lift_its_clearance(shell, victim):
    """A line that learnt the secret could report its own end (a prompt's `done`) while it still
    runs: the operator's next line would then be typed into it. Read by `source /dev/stdin`, that
    line's commands run in the shell itself, still held to the first line's clearance."""
    await shell.person("cleanup() { rm -rf victim; }")
    first = asyncio.create_task(shell.operator("source /dev/stdin"))  # MODERATE: reads commands from the terminal
    await asyncio.sleep(1)
    assert shell.live.typed.number  # the shell asked about it: it runs
    await commands.hook_done(shell.live, HookRequest("done", exit_status=0, prompt=True), lambda: None)  # forged
    assert (await first)["exit_code"] == 0

    second = asyncio.create_task(shell.operator("cleanup"))  # read by `source`, not by readline
    await asyncio.sleep(1)
    shell.live.proc.write("\x04")  # end of input: `source` runs what it read
    await second
    assert await asyncio.to_thread(os.path.isdir, victim)
    assert CLEARED in (await _refused(shell.session, "rm -rf victim")).reasons[0]


# Found by a review playing the model against the first version of this (each got `rm -rf victim`
# run from lines rated at most MODERATE).


async def _lines(shell, *lines) -> None:
    """The operator's lines, each allowed and rated at most MODERATE (run without approval)."""
    for line in lines:
        ran = await shell.operator(line)
        assert not ran["blocked"] and ran["risk"] in (None, "SAFE", "MODERATE"), (line, ran)


async def _survives(path: str, seconds: float = 2.0) -> bool:
    await asyncio.sleep(seconds)  # what would delete it has had its time
    return await asyncio.to_thread(os.path.isdir, path)


async def test_history_cleared_or_reread_midway_does_not_end_the_line(shell, victim):
    await _lines(shell, "printf 'history -c\\nrm -rf victim\\n' > s.sh")
    assert (await shell.operator("source s.sh"))["blocked"]
    await _lines(shell, "printf 'f() { rm -rf victim; }\\n' > d.sh", "source d.sh", "echo hi > h.txt")
    assert (await shell.operator("history -r h.txt; f"))["blocked"]
    assert await _survives(victim, 0)


async def test_a_subshell_that_clears_its_history_is_still_held(shell, victim):
    await _lines(shell, "printf 'rm -rf victim\\n' > s.sh")
    await shell.operator("(history -c; source s.sh)")
    assert await _survives(victim, 0)


async def test_a_prompt_strings_subshell_is_held_to_the_line_it_runs_for(shell, victim):
    await _lines(shell, "printf 'f() { rm -rf victim; }\\n' > d.sh", "source d.sh", "PS0='$(f)'")
    ran = await shell.operator("echo next")  # PS0 runs in a subshell as the line is read
    assert ran["blocked"] and CLEARED in ran["reason"]
    assert await _survives(victim, 0)


async def test_a_background_job_that_asks_only_after_the_next_line_is_still_held(shell, victim):
    await _lines(shell, "printf 'f() { rm -rf victim; }\\n' > d.sh", "source d.sh", "mkfifo p", "(f) < p &",
                 "echo go > p")
    assert await _survives(victim)


async def test_a_trap_action_is_dangerous_since_the_hook_cannot_see_its_commands(shell, staff_user, victim):
    # Inside a trap's action bash reports the interrupted command to the hook, not the action's.
    ran = await shell.operator("trap 'source s.sh' USR1; kill -USR1 $$")
    assert ran["risk"] == "DANGEROUS"  # which no operator policy runs
    elevated = Shell(staff_user, await services.session_open(user=staff_user, security_level="ELEVATED"))
    await _lines(elevated, "printf 'mkfs.ext4 /dev/autobot-test-none\\n' > s.sh")
    blocked = await elevated.operator("trap 'source s.sh' USR1; kill -USR1 $$")
    assert blocked["blocked"] and "mke2fs" not in blocked["output"]


async def test_writing_to_the_hooks_channel_is_refused(shell, victim):
    fd = shell.live.hook.fd_numbers[0]
    assert f"{fd}" in (await shell.operator("echo $AUTOBOT_HOOK_FD"))["output"]  # the shell's numbers
    forged = await shell.operator(f"printf 'x\\tn\\tdone\\t0\\t0\\t1\\n' >&{fd}")
    assert forged["blocked"] and "hook's channel" in forged["reason"]
    # Bash reads leading zeros away (`>&0017` is 17): refused the same.
    padded = await shell.operator(f"printf 'x\\tn\\tdone\\t0\\t0\\t1\\n' >&00{fd}")
    assert padded["blocked"] and "hook's channel" in padded["reason"]
    # Rated, not run: DANGEROUS and HIGH, which the operator's policy never runs unasked.
    indirect = "v=__auto; v+=bot_secret; printf '%s' \"${!v}\" >&$AUTOBOT_HOOK_FD"
    assert (await services.command_assess(user=shell.user, command=indirect))["risk"] == "DANGEROUS"
    assert (await services.command_assess(user=shell.user, command='x=HOME; echo "${!x}"'))["risk"] == "HIGH"


async def test_a_program_handed_the_secret_cannot_report_the_prompt(shell, victim):
    """It inherits the hook's descriptors; with the secret (from a file here) it could report a
    prompt that never came and end the operator's call while the line still runs. The kernel
    says which process wrote it: only the shell's own reports count."""
    fd, secret = shell.live.hook.fd_numbers[0], shell.live.hook.secret
    forge = f"import os\nos.write({fd}, b'{secret}\\tn1\\tdone\\t0\\t0\\t1\\n')\n"
    await asyncio.to_thread(_write, os.path.join(os.path.dirname(victim), "forge.py"), forge)
    ran = await shell.operator("python3 forge.py && sleep 1 && echo real-end")

    assert ran["output"].splitlines()[-1] == "real-end"  # the call ended with the line, not before
    assert shell.live.hook.forged == 1


# A second review, against the version with the first review's fixes.


async def test_a_subshell_that_moves_its_history_on_is_still_held(shell, staff_user, victim):
    await _lines(shell, "printf 'f() { rm -rf victim; }\\n' > d.sh", "source d.sh")
    await shell.operator("(history -s x; history -s y; f)")
    assert await _survives(victim, 0)
    # In ELEVATED the first command after the subshell's new line was not rated at all.
    elevated = Shell(staff_user, await services.session_open(user=staff_user, security_level="ELEVATED"))
    await _lines(elevated, "printf 'history -s x; history -s y; mkfs.ext4 /dev/autobot-test-none\\n' > s.sh")
    assert "mke2fs" not in (await elevated.operator("(source s.sh)"))["output"]


async def test_a_prompt_strings_command_is_rated_though_the_line_does_not_show_it(shell, staff_user, victim):
    await _lines(shell, "PS0='$(\\162m -rf victim)'")  # bash decodes \162 (r) before it runs the substitution
    assert (await shell.operator("echo next"))["blocked"]
    assert await _survives(victim, 0)
    elevated = Shell(staff_user, await services.session_open(user=staff_user, security_level="ELEVATED"))
    await elevated.person("PS0='$(\\155kfs.ext4 /dev/autobot-test-none >&2)'")  # the person's own, at ELEVATED
    assert "mke2fs" not in (await elevated.operator("echo next"))["output"]


async def test_the_hooks_variables_written_through_arithmetic_do_not_loosen_a_subshell(shell, victim):
    await _lines(shell, "printf 'f() { rm -rf victim; }\\n' > d.sh", "source d.sh")
    await shell.person("echo a-persons-line")  # a number a forged one could point at
    number = max(shell.live.person_lines)
    # Spelled so that the rules do not see the hook's name (`y=__autobot_snum=…` is HIGH on its own).
    await shell.operator(f"( y=__auto; y+=bot_snum={number}; : $(( y )); f )")
    assert await _survives(victim, 0)


async def test_key_bindings_and_the_shells_own_input_need_approval(shell):
    for line in ("bind '\"Z\": accept-line'", "bind -f keys.rc", "exec < steps.sh", "exec 0<<<'rm -rf victim'"):
        assert (await services.command_assess(user=shell.user, command=line))["risk"] == "HIGH", line


async def test_what_the_owner_runs_unasked_anyway_is_not_refused_inside_a_safe_line(shell):
    """A person's `cd` wrapper or `cat` alias calling a command the rules do not know (MODERATE):
    the operator's policy runs MODERATE lines unasked, so a SAFE line running them is not refused
    when the caller says so (chat.tools.terminal passes what the owner's policy runs unasked)."""
    await shell.person("mkdir -p sub; myhook() { :; }; cd() { builtin cd \"$@\" && myhook; }")
    assert (await shell.operator("cd sub"))["blocked"]  # cleared for SAFE only
    ran = await services.command_type(user=shell.user, session_id=shell.session.pk, command="cd ..",
                                      actor="operator", correlation_id="turn-8", timeout=20, clearance="MODERATE")
    assert (ran["blocked"], ran["exit_code"]) == (False, 0)


async def test_a_subshell_is_the_line_the_shell_ran_when_it_forked_it(shell, victim):
    """Its history number is the hook's variable, which arithmetic in the line can set before the
    fork to a person's line's number; when the kernel says the subshell started is what counts."""
    await _lines(shell, "printf 'f() { rm -rf victim; }\\n' > d.sh", "source d.sh")
    await shell.person("echo a-persons-line")
    number = max(shell.live.person_lines)
    await shell.operator(f"y=__auto; y+=bot_snum={number}; : $(( y )); (f)")
    assert await _survives(victim, 0)

    # A person's own job, started after the operator's line, is the person's: not held.
    root = os.path.dirname(victim)
    await asyncio.to_thread(os.makedirs, os.path.join(root, "build"))
    await shell.person("(sleep 0.2; rm -rf build) & true")
    await asyncio.sleep(1.5)
    assert not await asyncio.to_thread(os.path.isdir, os.path.join(root, "build"))


async def test_the_hooks_own_prompt_report_cannot_be_called_from_a_line(shell, victim):
    """Called from a sourced file or a function, it would report a prompt that never came (from
    the shell itself, so the writer's pid does not tell): the line's later forks would then count
    as a person's. The hook skips it only as PROMPT_COMMAND runs it; called otherwise it is rated
    (DANGEROUS) and refused."""
    await _lines(shell, "printf 'f() { rm -rf victim; }\\n' > d.sh", "source d.sh",
                 "printf '__autobot_prompt\\n(f)\\n' > p.sh")
    ran = await shell.operator("source p.sh")
    assert ran["blocked"] and "hook's own functions" in ran["reason"]
    assert await _survives(victim, 0)
    assert (await services.command_assess(user=shell.user, command="__autobot_prompt"))["risk"] == "DANGEROUS"


async def test_a_line_reporting_its_own_prompt_then_renumbering_history_is_still_held(shell, victim):
    """Third review: the hook let `__autobot_prompt` (octal-escaped in the file) through unasked
    from a sourced file; `history -s` then looked like a person's next line."""
    await _lines(shell, r"printf '\137\137autobot_prompt\nhistory -s x\nrm -rf victim\n' > d.sh")
    assert (await shell.operator("source d.sh"))["blocked"]
    assert await _survives(victim, 0)
