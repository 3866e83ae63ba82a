"""The shell hook with real bash processes: commands reach the server and a "block"
verdict skips them, whatever way they were entered."""

import asyncio
import os
import signal

import pytest

from terminal.hook import HookChannel, HookReply, HookRequest, bash_argv, parse_request
from terminal.pty import PtyOptions, PtyProcess
from tests.terminal.sandbox_helpers import ShellOutput

pytestmark = pytest.mark.timeout(30)

HARMLESS_DANGER = "mkfs.ext4 /dev/autobot-test-none"


class Shell(ShellOutput):
    """bash with the hook, and a server that blocks anything mentioning mkfs."""

    def __init__(self) -> None:
        self.requests: list[HookRequest] = []
        self.done: list[HookRequest] = []
        self.channel = HookChannel(decide=self.decide, notify=self.notify)
        self.seen = ""

    async def decide(self, request: HookRequest) -> HookReply:
        self.requests.append(request)
        text = request.line + "\n" + request.command
        if "mkfs" in text:
            return HookReply(allow=False, message="autobot: blocked (DANGEROUS): disk formatting")
        return HookReply(allow=True)

    async def notify(self, request: HookRequest, go_on) -> None:
        self.done.append(request)

    async def start(self, tmp_path, *, before_hook=None) -> None:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "TERM": "dumb",
            "HOME": str(tmp_path),
            "LANG": "C.UTF-8",
            **self.channel.env(),
        }
        self.proc = await PtyProcess.spawn(
            PtyOptions(argv=bash_argv(), env=env, cwd=str(tmp_path), pass_fds=self.channel.child_fds)
        )
        if before_hook is not None:  # while the rc file waits for the hook's secret
            await before_hook(self.proc)
        await self.channel.start()
        self.sub = self.proc.subscribe()
        await self.until("@autobot:")

    async def run(self, line: str, marker: str) -> str:
        """Type a line followed by a marker command; return what was printed before the marker."""
        self.proc.write(f"{line}\n")
        self.proc.write(f"echo {marker[:3]}''{marker[3:]}\n")
        return await self.until(f"\n{marker}")

    async def close(self) -> None:
        await self.proc.terminate(grace=0.5)
        await self.channel.close()


async def _running(kind, tmp_path):
    """A started shell of `kind` (a Shell class), closed after the test."""
    sh = kind()
    await sh.start(tmp_path)
    yield sh
    await sh.close()


@pytest.fixture
async def shell(tmp_path):
    async for sh in _running(Shell, tmp_path):
        yield sh


async def test_an_allowed_command_runs(shell):
    out = await shell.run("echo hel''lo", "MARK1")
    assert "hello" in out
    assert any(r.kind == "line" and r.line == "echo hel''lo" for r in shell.requests)


async def test_a_blocked_command_is_skipped_with_a_notice(shell):
    out = await shell.run(f"{HARMLESS_DANGER}; echo ran-$((1+1))", "MARK2")
    assert "autobot: blocked (DANGEROUS)" in out
    assert "ran-2" not in out  # the whole line is skipped
    assert "does not exist" not in out and "No such file" not in out


async def test_history_recall_is_checked_too(shell):
    await shell.run(f"{HARMLESS_DANGER}", "MARK3")
    out = await shell.run("!mkfs", "MARK4")  # history expansion recalls the blocked line
    assert out.count("autobot: blocked") == 1
    assert [r.line for r in shell.requests if r.kind == "line"].count(HARMLESS_DANGER) == 2


async def test_an_alias_is_checked_when_it_runs(shell):
    await shell.run(f"alias ll='mk''{HARMLESS_DANGER[2:]}'", "MARK5")
    out = await shell.run("ll", "MARK6")
    assert "autobot: blocked" in out
    assert any(r.line == "ll" and "mkfs" in r.command for r in shell.requests)


async def test_commands_in_a_sourced_file_are_checked(shell, tmp_path):
    (tmp_path / "setup.sh").write_text(f"echo sourced-$((2+3))\n{HARMLESS_DANGER}\n")
    out = await shell.run(". ./setup.sh", "MARK7")
    assert "sourced-5" in out
    assert "autobot: blocked" in out
    assert any(r.kind == "cmd" and r.command == HARMLESS_DANGER for r in shell.requests)


async def test_a_subshell_follows_the_line_verdict(shell):
    out = await shell.run(f"(echo inside-$((3+4)); {HARMLESS_DANGER})", "MARK8")
    assert "inside-7" not in out
    ok = await shell.run("(echo inside-$((4+4))) | cat", "MARK9")
    assert "inside-8" in ok


async def test_pasted_lines_are_checked_one_by_one(shell):
    out = await shell.run(f"echo one-$((0+1))\n{HARMLESS_DANGER}\necho two-$((1+1))", "MARK10")
    assert "one-1" in out and "two-2" in out
    assert "autobot: blocked" in out


async def test_exit_statuses_are_reported(shell):
    await shell.run("false", "MARK11")
    assert any(d.exit_status == 1 for d in shell.done)


async def test_the_hook_functions_cannot_be_redefined(shell):
    out = await shell.run("__autobot_hook() { :; }", "MARK12")
    assert "readonly function" in out
    assert "autobot: blocked" in await shell.run(HARMLESS_DANGER, "MARK13")


async def test_a_request_without_the_secret_is_ignored(shell):
    await shell.run("printf 'guess\\t1\\tline\\t0\\tls\\t\\n' >&$AUTOBOT_HOOK_FD", "MARK14")
    assert shell.channel.forged == 1


async def test_it_fails_closed_when_the_server_is_gone(shell):
    await shell.channel.close()
    shell.proc.write("echo after-$((5+5))\n")
    # Writing to the closed channel ends the shell (SIGPIPE) before the command runs.
    while (chunk := await shell.sub.read()) is not None:
        shell.seen += chunk
    assert "after-10" not in shell.seen
    assert not shell.proc.alive


def test_parse_request_rejects_a_wrong_secret_and_unescapes():
    good = b"s3cret\t42\tline\t7\techo a\\tb\\nc\\\\d\techo\n"
    nonce, request = parse_request(good, "s3cret")
    assert nonce == "42" and request.line == "echo a\tb\nc\\d" and request.history_number == 7
    assert parse_request(good, "other") is None
    assert parse_request(b"s3cret\t1\tbogus\t0\tx\t\n", "s3cret") is None
    assert parse_request(b"not enough fields\n", "s3cret") is None


async def test_channel_survives_a_slow_decision(tmp_path):
    shell = Shell()
    original = shell.decide

    async def slow(request):
        await asyncio.sleep(0.05)  # the server is busy (database); the hook just waits
        return await original(request)

    shell.channel._decide = slow
    await shell.start(tmp_path)
    try:
        assert "slow-ok" in await shell.run("echo slow-''ok", "MARK15")
    finally:
        await shell.close()


async def test_the_hook_setup_is_not_in_the_users_history(shell):
    out = await shell.run("history", "MARK9")
    assert "__autobot" not in out and "trap" not in out
    assert "history" in out  # history itself works: the line just typed is there


def _ignores_sigint(pid: int) -> bool:
    with open(f"/proc/{pid}/status") as fh:  # noqa: ASYNC230 - procfs, no disk I/O
        mask = next(line.split()[1] for line in fh if line.startswith("SigIgn:"))
    return bool(int(mask, 16) & (1 << (signal.SIGINT - 1)))


async def test_ctrl_c_while_the_rc_file_runs_leaves_the_hook_in_place(tmp_path):
    async def ctrl_c(proc):
        # The rc file has begun (its first line): only /proc shows it, there is no event to await.
        while not _ignores_sigint(proc.pid):  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        proc.write("\x03")  # a keystroke that once abandoned the rc file: a shell without the hook

    shell = Shell()
    await shell.start(tmp_path, before_hook=ctrl_c)
    try:
        assert "autobot: blocked" in await shell.run(HARMLESS_DANGER, "MARK16")
        assert not _ignores_sigint(shell.proc.pid)  # from the first prompt on, Ctrl-C works
        shell.proc.write("echo started-$((5+1)); sleep 30; echo after-$((5+6))\n")
        await shell.until("started-6")
        shell.proc.write("\x03")
        assert "after-11" not in await shell.run("echo", "MARK17")
    finally:
        await shell.close()




async def test_an_answer_written_after_the_shell_went_ends_the_serving_quietly():
    """A shell that exits while its request is decided leaves nobody to read the answer: the
    write fails with a broken pipe. Serving then ends as for any shell that is gone (it once
    ended with BrokenPipeError, which closing the channel raised)."""
    import socket

    from terminal.hooksocket import Endpoint

    ours, theirs = socket.socketpair()
    end = Endpoint(ours, limit=1024)
    channel = HookChannel(decide=Shell().decide)
    serving = asyncio.ensure_future(channel._serve(end))
    await asyncio.sleep(0)
    theirs.close()
    end.write(b"-\tdone\t0\t\n")  # before the loop sees the end: the pipe is broken
    assert await asyncio.wait_for(serving, 5) is None
    end.close()
    ours.close()


async def test_only_the_shell_itself_reports_its_prompt_on_the_main_channel():
    """A program the shell ran inherits the channel: with the secret it could report a prompt that
    never came (ending an operator's line early). The kernel says who wrote each line."""
    import socket

    from terminal.hooksocket import Endpoint, pass_credentials

    reported = []

    async def notify(request, go_on):
        reported.append(request)

    ours, theirs = socket.socketpair()
    pass_credentials(ours)
    channel = HookChannel(decide=Shell().decide, notify=notify, shell_pid=lambda: os.getpid())
    end = Endpoint(ours, limit=1024)
    channel._writers.append(end)
    serving = asyncio.ensure_future(channel._serve(end))
    prompt = f"{channel.secret}\tn1\tdone\t0\t0\t1\n".encode()
    child = os.fork()
    if child == 0:  # another process: its report is ignored
        theirs.send(prompt.replace(b"n1", b"n2"))
        os._exit(0)
    await asyncio.to_thread(os.waitpid, child, 0)
    theirs.send(prompt)  # this process stands for the shell
    assert await asyncio.to_thread(theirs.recv, 100) == b"n1\tdone\t0\t\n"
    assert [r.prompt for r in reported] == [True] and channel.forged == 1
    theirs.close()
    await asyncio.wait_for(serving, 5)
    end.close()
    ours.close()


async def test_a_subshells_request_too_long_to_check_is_answered_with_one_byte():
    """Subshells read one byte for their answer: a whole line would leave letters for the next
    subshells to read as theirs, and one whose nonce matched would run."""
    import socket

    from terminal.hooksocket import Endpoint

    channel = HookChannel(decide=Shell().decide)
    main_ours, main_theirs = socket.socketpair()
    sub_ours, sub_theirs = socket.socketpair()
    channel._writers += [Endpoint(main_ours, limit=1024), Endpoint(sub_ours, limit=1024)]
    serving = asyncio.ensure_future(channel._serve(channel._writers[1]))
    sub_theirs.sendall(b"x" * 2000 + b"\n")
    sub_theirs.settimeout(10)
    assert await asyncio.to_thread(sub_theirs.recv, 100) == b"!"
    sub_theirs.close()
    await asyncio.wait_for(serving, 5)
    for sock in (main_ours, main_theirs, sub_ours):
        sock.close()


async def test_a_subshells_allow_that_comes_too_late_is_sent_as_block():
    """The subshell gave up and skipped its command; its late nonce byte would be read by another
    subshell, which takes it as its own "allow" when the characters match."""
    import socket

    from terminal.hooksocket import Endpoint

    async def slow(request):
        await asyncio.sleep(0.3)
        return HookReply(allow=True)

    channel = HookChannel(decide=slow, answer_within=0.1)
    main_ours, main_theirs = socket.socketpair()
    sub_ours, sub_theirs = socket.socketpair()
    channel._writers += [Endpoint(main_ours, limit=1024), Endpoint(sub_ours, limit=1024)]
    serving = asyncio.ensure_future(channel._serve(channel._writers[1]))
    sub_theirs.settimeout(10)
    sub_theirs.sendall(f"{channel.secret}\tq\tscmd\t1\techo hi\t\n".encode())
    assert await asyncio.to_thread(sub_theirs.recv, 10) == b"!"
    channel._answer_within = 5  # in time: the nonce, "allow"
    sub_theirs.sendall(f"{channel.secret}\tq\tscmd\t1\techo hi\t\n".encode())
    assert await asyncio.to_thread(sub_theirs.recv, 10) == b"q"
    sub_theirs.close()
    await asyncio.wait_for(serving, 5)
    for sock in (main_ours, main_theirs, sub_ours):
        sock.close()


class Stopping(Shell):
    """A server whose operator stops the line at its first command naming stop-here: from then on,
    until the prompt is back, everything is refused with "stop" (services.live.LineStop)."""

    stopped = False

    async def decide(self, request: HookRequest) -> HookReply:
        self.requests.append(request)
        self.stopped = self.stopped or "stop-here" in request.command
        if self.stopped:
            self.refused.append(request.command)
            return HookReply(allow=False, stop=True, message="autobot: blocked: the operator stopped this line")
        return HookReply(allow=True)

    async def notify(self, request: HookRequest, go_on) -> None:
        await super().notify(request, go_on)
        if request.prompt:
            self.stopped = False

    def __init__(self) -> None:
        super().__init__()
        self.refused: list[str] = []


@pytest.fixture
async def stopping(tmp_path):
    async for sh in _running(Stopping, tmp_path):
        yield sh


@pytest.mark.parametrize("line", [
    "while :; do echo tick-$((1+1)); true stop-here; done; echo after-$((1+1))",
    "for i in 1 2 3 4 5; do echo tick-$((1+1)); true stop-here; done; echo after-$((1+1))",
    # bash ignores Ctrl-C while the line runs: the stop ends it all the same
    "trap '' INT; while true; do echo tick-$((1+1)); true stop-here; done; echo after-$((1+1))",
    "f() { while :; do echo tick-$((1+1)); true stop-here; done; }; f; echo after-$((1+1))",
], ids=["endless", "finite", "ignoring-int", "in-a-function"])
async def test_a_stop_ends_the_whole_line_at_its_first_refusal(stopping, line):
    """Refused once, the line is over (not each remaining command refused, asked about one by one,
    for ever in an endless loop): the prompt is back, the line reported as interrupted (130)."""
    out = await stopping.run(line, "MARK20")
    assert out.count("tick-2") == 1 and "after-2" not in out
    assert out.count("the operator stopped this line") == 1
    assert stopping.refused == ["true stop-here"]
    assert [d.exit_status for d in stopping.done if d.prompt][1] == 130  # (the first: the shell's start)


async def test_a_stop_puts_back_the_lines_int_trap_at_the_prompt(stopping):
    """The stop ends a line that ignores SIGINT by setting the trap aside; the shell keeps it."""
    await stopping.run("trap '' INT; while :; do true stop-here; done", "MARK21")
    assert "trap -- '' SIGINT" in await stopping.run("trap -p INT", "MARK22")
    await stopping.run("trap - INT; while :; do true stop-here; done", "MARK23")
    assert "SIGINT" not in await stopping.run("trap -p INT", "MARK24")


async def test_a_stop_in_posix_mode_puts_back_the_same_int_trap_and_nothing_more(stopping):
    """In posix mode `trap -p` names the signal INT: read as it was, the suffix stayed in the
    action, and two stops made an action the user never set (run unrated on the next SIGINT)."""
    await stopping.run("set -o posix; trap 'echo it'\\''s; :' INT", "MARK31")
    for mark in ("MARK32", "MARK33"):
        await stopping.run("while :; do true stop-here; done", mark)
    assert "trap -- 'echo it'\\''s; :' INT" in await stopping.run("trap -p INT", "MARK34")
    await stopping.run("set +o posix", "MARK35")


@pytest.mark.parametrize("line", [
    "( while :; do echo tick-$((1+1)); true stop-here; done ) | cat; echo after-$((1+1))",
    "( trap '' INT; while :; do echo tick-$((1+1)); true stop-here; done ); echo after-$((1+1))",
    "true | while :; do echo tick-$((1+1)); true stop-here; done; echo after-$((1+1))",
], ids=["pipeline", "subshell-ignoring-int", "last-of-a-pipeline"])
async def test_a_stop_ends_a_subshells_loop_and_its_line(stopping, line):
    """A subshell asks on its own channel: the "stop" there ends it, and the shell, which sees it
    interrupted, leaves the rest of the line."""
    out = await stopping.run(line, "MARK25")
    assert out.count("tick-2") == 1 and "after-2" not in out
    # Refused once in the subshell, and in the shell at most once more: a subshell's stop ends it
    # with status 130 (not by the signal, which would have ended the shell's line with it).
    assert stopping.refused[0] == "true stop-here" and stopping.refused[1:] in ([], ["echo after-$((1+1))"])
    assert "ok-3" in await stopping.run("echo ok-$((1+2))", "MARK26")  # the next line runs


async def test_a_subshells_stop_is_a_mark_of_its_nonce_and_never_late():
    """A stolen "stop" ends another subshell only when the mark is its own nonce's (else "block");
    a late one would be read by a subshell that asked later: sent as "block"."""
    import socket

    from terminal.hook import NONCES, STOPS, stop_mark
    from terminal.hooksocket import Endpoint

    assert not set(STOPS) & set(NONCES) and "!" not in STOPS
    assert stop_mark("A") == b"#" and stop_mark("9") == STOPS[61 % len(STOPS)].encode()
    delay = 0.0

    async def stopped(request):
        await asyncio.sleep(delay)
        return HookReply(allow=False, stop=True)

    channel = HookChannel(decide=stopped, answer_within=0.1)
    main_ours, main_theirs = socket.socketpair()
    sub_ours, sub_theirs = socket.socketpair()
    channel._writers += [Endpoint(main_ours, limit=1024), Endpoint(sub_ours, limit=1024)]
    serving = [asyncio.ensure_future(channel._serve(w)) for w in channel._writers]
    for sock in (main_theirs, sub_theirs):
        sock.settimeout(10)
    sub_theirs.sendall(f"{channel.secret}\tq\tscmd\t1\techo hi\t\n".encode())
    assert await asyncio.to_thread(sub_theirs.recv, 10) == stop_mark("q")
    main_theirs.sendall(f"{channel.secret}\t123\tcmd\t1\techo hi\t\n".encode())
    assert (await asyncio.to_thread(main_theirs.recv, 100)).split(b"\t")[:2] == [b"123", b"stop"]
    delay = 0.3
    sub_theirs.sendall(f"{channel.secret}\tq\tscmd\t1\techo hi\t\n".encode())
    assert await asyncio.to_thread(sub_theirs.recv, 10) == b"!"
    for sock in (main_theirs, sub_theirs):
        sock.close()
    await asyncio.wait_for(asyncio.gather(*serving), 5)
    for sock in (main_ours, sub_ours):
        sock.close()


async def test_bashpid_and_srandom_stay_bashs_own(stopping):
    """Unset and assigned, they would be plain variables: a BASHPID that makes the shell take the
    subshell's way out of a stop (exit), an SRANDOM that makes every nonce known."""
    out = await stopping.run("unset BASHPID SRANDOM; BASHPID=1; SRANDOM=7; echo pid-$BASHPID r-$SRANDOM", "MARK41")
    assert "pid-1 " not in out and "r-7" not in out
