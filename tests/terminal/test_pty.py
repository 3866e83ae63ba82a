"""terminal/pty.py against real bash processes on real PTYs."""

import asyncio
import os
import resource
import signal
import sys

import pytest

from terminal.pty import MAX_COLS, MIN_COLS, InputOverflow, PtyClosed, PtyOptions, PtyProcess

pytestmark = pytest.mark.timeout(30)

ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TERM": "xterm-256color", "LANG": "C.UTF-8"}


def options(tmp_path, argv, **kw) -> PtyOptions:
    return PtyOptions(argv=argv, env={**ENV, "HOME": str(tmp_path)}, cwd=str(tmp_path), **kw)


async def read_until(sub, needle: str) -> str:
    seen = ""
    while needle not in seen:
        chunk = await sub.read()
        assert chunk is not None, f"exited before {needle!r}; got {seen[-500:]!r}"
        seen += chunk
    return seen


async def read_all(sub) -> str:
    seen = ""
    while (chunk := await sub.read()) is not None:
        seen += chunk
    return seen


async def test_it_runs_a_command_and_reports_the_exit_code(tmp_path):
    proc = await PtyProcess.spawn(options(tmp_path, ["bash", "-c", "echo hello; exit 3"]))
    sub = proc.subscribe()
    assert "hello" in await read_all(sub)
    assert await proc.wait() == 3
    assert not proc.alive


async def test_it_echoes_input_of_an_interactive_shell(tmp_path):
    proc = await PtyProcess.spawn(options(tmp_path, ["bash", "--norc", "--noprofile", "-i"]))
    sub = proc.subscribe()
    proc.write("echo $((6*7))\n")
    await read_until(sub, "42")
    proc.write("exit\n")
    assert await proc.wait() == 0


async def test_multibyte_characters_split_across_reads_survive(tmp_path):
    # printf writes the two bytes of "é" in separate writes, with a pause between.
    script = r"printf '\xc3'; sleep 0.05; printf '\xa9 done\n'"
    proc = await PtyProcess.spawn(options(tmp_path, ["bash", "-c", script]))
    assert "é done" in await read_all(proc.subscribe())


async def test_invalid_utf8_is_replaced_not_fatal(tmp_path):
    proc = await PtyProcess.spawn(options(tmp_path, ["bash", "-c", r"printf 'a\xff\xfeb\n'"]))
    out = await read_all(proc.subscribe())
    assert "a\ufffd\ufffdb" in out


async def test_resize_is_clamped_and_seen_by_the_program(tmp_path):
    proc = await PtyProcess.spawn(options(tmp_path, ["bash", "--norc", "--noprofile", "-i"], cols=80, rows=24))
    sub = proc.subscribe()
    assert proc.resize(100000, 0) == (MAX_COLS, 1)
    assert proc.resize(0, 30) == (MIN_COLS, 30)
    proc.resize(123, 45)
    proc.write("stty size\n")
    await read_until(sub, "45 123")
    await proc.terminate()


async def test_the_replay_buffer_is_bounded(tmp_path):
    proc = await PtyProcess.spawn(
        options(tmp_path, ["bash", "-c", "head -c 300000 /dev/zero | tr '\\0' x; echo; echo END"], replay_chars=4096)
    )
    out = await read_all(proc.subscribe())
    assert out.rstrip().endswith("END")
    assert len(proc.replay()) <= 4096
    assert proc.replay().rstrip().endswith("END")


async def test_a_late_subscriber_gets_the_replay(tmp_path):
    proc = await PtyProcess.spawn(options(tmp_path, ["bash", "--norc", "--noprofile", "-i"]))
    first = proc.subscribe()
    proc.write("echo marker-$((1+1))\n")
    await read_until(first, "marker-2")
    second = proc.subscribe(replay=True)
    assert "marker-2" in await second.read()
    await proc.terminate()


async def test_a_flood_pauses_reading_instead_of_buffering_without_bound(tmp_path):
    proc = await PtyProcess.spawn(
        options(tmp_path, ["bash", "-c", "head -c 20000000 /dev/zero | base64"], subscriber_high_water=256 * 1024)
    )
    sub = proc.subscribe()
    total = 0
    biggest = 0
    while (chunk := await sub.read()) is not None:
        total += len(chunk)
        biggest = max(biggest, len(chunk))
        await asyncio.sleep(0)  # a slow consumer
    assert total > 20_000_000
    # Never more than the high-water mark plus one coalesced batch was queued.
    assert biggest <= 256 * 1024 + 2 * 64 * 1024
    assert await proc.wait() == 0


async def test_a_flood_read_in_batches_arrives_whole_and_in_order(tmp_path):
    # Floods are read by a thread, batch by batch (terminal/pty.py _read_batch); every line, in
    # order, then the exit code once all of it was delivered, to each reader alike.
    proc = await PtyProcess.spawn(options(tmp_path, ["bash", "-c", "seq 1 300000; exit 7"]))
    first, second = proc.subscribe(), proc.subscribe()
    seen, also = await asyncio.gather(read_all(first), read_all(second))
    assert seen == also
    assert seen.split() == [str(n) for n in range(1, 300001)]
    assert await proc.wait() == 7


async def test_a_prompt_after_a_flood_arrives_without_more_output(tmp_path):
    # A batch that ends because the flood stopped delivers what it read, and the next small
    # output (read on the loop again) follows at once: nothing waits for more to come.
    proc = await PtyProcess.spawn(options(tmp_path, ["bash", "--norc", "--noprofile", "-i"]))
    sub = proc.subscribe()
    proc.write("seq 1 100000; echo flood-$((1+1))-over\n")
    seen = await read_until(sub, "flood-2-over\r\n")
    assert "\r\n100000\r\n" in seen
    proc.write("echo $((6*7))\n")
    await read_until(sub, "42")
    proc.write("exit\n")
    assert await proc.wait() == 0


async def test_terminate_escalates_to_sigkill_for_a_stubborn_program(tmp_path):
    script = "trap '' HUP TERM; echo ready; while :; do sleep 0.1; done"
    proc = await PtyProcess.spawn(options(tmp_path, ["bash", "-c", script]))
    sub = proc.subscribe()
    await read_until(sub, "ready")
    code = await proc.terminate(grace=0.2)
    assert code == -signal.SIGKILL
    assert not proc.alive


async def test_signal_reaches_the_foreground_process_group(tmp_path):
    proc = await PtyProcess.spawn(options(tmp_path, ["bash", "--norc", "--noprofile", "-i"]))
    sub = proc.subscribe()
    proc.write("sh -c 'echo start''ed; exec sleep 30'\n")
    await read_until(sub, "started")
    proc.signal_foreground(signal.SIGINT)
    # bash drops the rest of a line whose job died of SIGINT: ask separately.
    proc.write("echo after-$?\n")
    await read_until(sub, f"after-{128 + signal.SIGINT}")
    await proc.terminate()


async def test_writes_after_exit_raise(tmp_path):
    proc = await PtyProcess.spawn(options(tmp_path, ["bash", "-c", "exit 0"]))
    await proc.wait()
    with pytest.raises(PtyClosed):
        proc.write("echo hi\n")


async def test_input_queue_is_bounded_when_the_program_does_not_read(tmp_path):
    proc = await PtyProcess.spawn(
        options(tmp_path, ["bash", "-c", "echo ready; sleep 30"], write_queue_bytes=64 * 1024)
    )
    sub = proc.subscribe()
    await read_until(sub, "ready")
    with pytest.raises(InputOverflow):
        for _ in range(1000):
            proc.write("x" * 1024)
    await proc.terminate(grace=0.2)


async def test_rlimits_apply_to_the_child(tmp_path):
    limits = {resource.RLIMIT_NOFILE: (64, 64)}
    proc = await PtyProcess.spawn(options(tmp_path, ["bash", "-c", "ulimit -n"], rlimits=limits))
    assert "64" in await read_all(proc.subscribe())


async def test_killing_the_server_leaves_no_orphans(tmp_path):
    """A server process dies with SIGKILL mid-session: its shells' jobs go too."""
    script = tmp_path / "server.py"
    script.write_text(
        f"""
import asyncio, os, re, sys
sys.path.insert(0, {os.getcwd()!r})
from terminal.pty import PtyOptions, PtyProcess

async def main():
    proc = await PtyProcess.spawn(PtyOptions(argv=["bash", "--norc", "--noprofile", "-i"],
                                             env={ENV!r}, cwd={str(tmp_path)!r}))
    sub = proc.subscribe()
    proc.write("sleep 1001 & echo BG=$!; sh -c 'echo FG=$$; exec sleep 1002'\\n")
    seen = ""
    # Both jobs have started once the foreground one prints its own pid.
    while not (found := re.search(r"BG=(\\d+).*FG=(\\d+)", seen, re.S)):
        seen += await sub.read()
    print(proc.pid, found.group(1), found.group(2), flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""
    )
    server = await asyncio.create_subprocess_exec(sys.executable, str(script), stdout=asyncio.subprocess.PIPE)
    try:
        line = (await asyncio.wait_for(server.stdout.readline(), 10)).decode().split()
    except TimeoutError:
        server.kill()
        raise
    pidfds = [os.pidfd_open(int(pid)) for pid in line]  # the shell, its background and foreground jobs
    server.kill()
    await server.wait()
    loop = asyncio.get_running_loop()
    for pidfd in pidfds:  # a pidfd becomes readable when its process exits
        done = loop.create_future()
        loop.add_reader(pidfd, done.set_result, None)
        await asyncio.wait_for(done, 10)
        loop.remove_reader(pidfd)
        os.close(pidfd)
