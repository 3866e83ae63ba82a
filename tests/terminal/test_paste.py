"""Every line bash runs gets its own verdict and its own record, however it arrived: several
lines in one frame, bracketed paste, Ctrl-V Ctrl-J, subshells and brace groups after the
first line — in a real sandboxed session with the real server hook."""

import asyncio

import pytest

from terminal.models import CommandRecord
from tests.terminal.sandbox_helpers import Term

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]

HARMLESS_DANGER = "mkfs.ext4 /dev/autobot-test-none"
PASTE_START, PASTE_END = "\x1b[200~", "\x1b[201~"
RECORD_WAIT_SECONDS = 30
LINES = ["echo one", "echo two", "(echo three)", "{ echo four; } &", "x=5; (( x > 1 )) && echo five"]


async def records(term) -> list[CommandRecord]:
    rows = CommandRecord.objects.filter(session_id=term.session.pk).order_by("started", "id")
    return [r async for r in rows]


async def wait_records(term, count: int) -> list[CommandRecord]:
    """The session's records once ``count`` (besides an end marker) are there."""
    term.type("echo DO''NE\r")
    await term.until("DONE\r\n")
    # A background job's verdict may land after the marker's: it asks from its own process, which
    # a busy machine may run seconds later. Waited for as long as a line's verdict may take.
    deadline = asyncio.get_running_loop().time() + RECORD_WAIT_SECONDS
    while True:
        found = [r for r in await records(term) if r.command != "echo DO''NE"]
        if len(found) >= count or asyncio.get_running_loop().time() > deadline:
            return found
        await asyncio.sleep(0.05)


def assert_in_order(found: list[CommandRecord], expected: list[str]) -> None:
    """Each line recorded once; foreground lines in the order typed. (A background job asks
    for its verdict from its own process, racing the next line, so only its presence counts.)"""
    commands = [r.command for r in found]
    assert sorted(commands) == sorted(expected)
    foreground = [c for c in expected if not c.endswith("&")]
    assert [c for c in commands if c in foreground] == foreground


@pytest.fixture
async def term(terminal_user):
    return await Term.open(terminal_user)


async def test_lines_typed_in_one_frame_are_each_recorded_in_order(term):
    term.type("\r".join(LINES) + "\r")
    found = await wait_records(term, len(LINES))
    assert_in_order(found, LINES)
    assert not any(r.blocked for r in found)


async def test_a_bracketed_paste_records_every_line_in_order(term):
    term.type(PASTE_START + "\n".join(LINES) + PASTE_END + "\r")
    found = await wait_records(term, len(LINES))
    assert_in_order(found, LINES)


async def test_ctrl_v_ctrl_j_joined_lines_are_each_recorded(term):
    term.type("echo one\x16\x0a(echo two)\x16\x0a{ echo three; }\r")
    found = await wait_records(term, 3)
    assert [r.command for r in found] == ["echo one", "(echo two)", "{ echo three; }"]


@pytest.mark.parametrize("bracketed", [False, True])
async def test_a_dangerous_subshell_on_a_second_pasted_line_is_blocked_and_recorded(term, bracketed):
    lines = ["echo first", f"({HARMLESS_DANGER})", f"{{ {HARMLESS_DANGER}; }} &", "echo last"]
    text = "\n".join(lines)
    term.type((PASTE_START + text + PASTE_END + "\r") if bracketed else text.replace("\n", "\r") + "\r")
    found = await wait_records(term, len(lines))
    assert_in_order(found, lines)
    assert {r.command for r in found if r.blocked} == {lines[1], lines[2]}
    events = [e async for e in _audit(term)]
    blocked = [e.data["command"] for e in events if e.action == "terminal.command_blocked"]
    assert sorted(blocked) == sorted(lines[1:3])
    assert len(events) == len(lines) + 1  # and the end marker


@pytest.mark.parametrize("line", [f"coproc {HARMLESS_DANGER}", f"coproc X {{ {HARMLESS_DANGER}; }}"])
async def test_a_blocked_coproc_does_not_cost_the_next_line_its_verdict(terminal_user, settings, line):
    settings.TERMINAL_HOOK_TIMEOUT = 120  # a stolen answer would now outlast the test
    term = await Term.open(terminal_user)
    term.type(f"{line}\r")
    term.type("echo af''ter\r")
    out = await term.until("after\r\n")
    assert "no verdict" not in out
    found = await wait_records(term, 2)
    # A coproc asks from its own process, like a background job: only presence counts.
    expected = sorted([(line, True), ("echo af''ter", False)])
    assert sorted((r.command, r.blocked) for r in found) == expected


def _audit(term):
    from autobot.models import AuditEvent

    events = AuditEvent.objects.filter(target_id=str(term.session.pk), action__startswith="terminal.command")
    return events.order_by("id")


async def test_each_pasted_line_keeps_its_own_exit_code(term):
    term.type(PASTE_START + "false\ntrue\n(exit 3)" + PASTE_END + "\r")
    found = await wait_records(term, 3)
    assert [(r.command, r.exit_code) for r in found] == [("false", 1), ("true", 0), ("(exit 3)", 3)]


async def test_a_subshell_inside_a_function_checks_each_command_it_runs(term):
    # The line `f mkfs.ext4` looks harmless; the subshell in f runs a command computed at
    # run time, which now gets its own verdict (HIGH: blocked at RESTRICTED) and record.
    term.type("f() { (echo in-sub''shell; $1 /dev/autobot-test-none); }\r")
    term.type("f mkfs.ext4\r")
    found = await wait_records(term, 2)
    # (Defining a function runs nothing: bash gives the hook no command to check.)
    assert [(r.command, r.blocked) for r in found] == [
        ("f mkfs.ext4", False),
        ("$1 /dev/autobot-test-none", True),
    ]


async def test_a_line_run_by_the_shell_and_its_subshells_is_one_record(term):
    term.type("(echo a); echo b | cat; (echo c) | (cat)\r")
    found = await wait_records(term, 1)
    assert [r.command for r in found] == ["(echo a); echo b | cat; (echo c) | (cat)"]
