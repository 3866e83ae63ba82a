"""autobot/watchdog.py: a loop held past the threshold is reported, with where it was stuck."""

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autobot.watchdog import LoopWatchdog


@pytest.mark.allow_loop_block("the test blocks its own loop on purpose, to see the watchdog report it")
async def test_a_blocked_loop_is_reported_with_its_stack():
    stalls = []
    watchdog = LoopWatchdog(0.1, stalls.append)
    watchdog.start()
    try:
        await asyncio.sleep(0.05)
        time.sleep(0.3)  # noqa: ASYNC251 — the blocking call under test
        await asyncio.sleep(0.05)  # the heartbeat runs and reports
    finally:
        watchdog.stop()
    assert len(stalls) == 1
    assert 0.25 < stalls[0].seconds < 1.0
    assert "time.sleep(0.3)" in stalls[0].where


async def test_a_loop_that_keeps_moving_is_not_reported():
    stalls = []
    watchdog = LoopWatchdog(0.1, stalls.append)
    watchdog.start()
    try:
        for _ in range(10):
            await asyncio.sleep(0.02)
    finally:
        watchdog.stop()
    assert stalls == []


def _run_suite(folder: Path) -> subprocess.CompletedProcess:
    """pytest on `folder`'s tests with the watchdog plugin, as the suite runs it."""
    root = Path(__file__).resolve().parents[2]
    return subprocess.run(
        [sys.executable, "-m", "pytest", str(folder), "-q", "-p", "tests.loop_watchdog", "-p", "no:django",
         "-p", "no:cacheprovider", "-o", "asyncio_mode=auto", "-o", "asyncio_default_fixture_loop_scope=function",
         "--rootdir", str(folder)],
        cwd=root, capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONPATH": str(root), "AUTOBOT_TEST_LOOP_BLOCK_MS": "100"},
    )


def test_the_suite_fails_a_test_that_blocks_its_loop(tmp_path):
    (tmp_path / "test_blocking.py").write_text(
        "import time\n\n"
        "async def test_blocks():\n"
        "    time.sleep(0.25)\n\n"
        "async def test_does_not_block():\n"
        "    pass\n"
    )
    result = _run_suite(tmp_path)
    assert result.returncode == 1, result.stdout
    assert "2 passed, 1 error" in result.stdout  # test_blocks runs, then errors at teardown
    assert "an event loop was blocked for more than 100 ms" in result.stdout
    assert "test_blocks" in result.stdout and "time.sleep(0.25)" in result.stdout


STARVED_TEST = '''
import asyncio, os, sys, time

HOG = ("import os, time; os.sched_setaffinity(0, {%d}); os.nice(-20); print('on', flush=True); "
       "end = time.monotonic() + 1.5\\nwhile time.monotonic() < end: pass")


async def test_starved_by_the_scheduler():
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})  # this thread: the loop's
    hog = await asyncio.create_subprocess_exec(sys.executable, "-c", HOG % cpu, stdout=asyncio.subprocess.PIPE)
    await hog.stdout.readline()  # it runs, at the highest priority, on the loop's CPU
    started, spent = time.monotonic(), time.thread_time()
    while time.thread_time() - spent < 0.004:  # 4 ms of the loop's own CPU, in one callback
        pass
    held = time.monotonic() - started
    await hog.wait()
    assert held > 0.15, held  # the scheduler kept the callback off the CPU past the threshold


async def test_blocks():
    time.sleep(0.25)
'''


def test_time_spent_waiting_for_a_cpu_is_not_a_block_but_a_sleep_is(tmp_path):
    """A callback the scheduler keeps off the CPU (a loaded machine: here a process pinned to the
    same CPU at the highest priority) is not reported; a callback sleeping as long is."""
    (tmp_path / "test_starved.py").write_text(STARVED_TEST)
    result = _run_suite(tmp_path)
    assert "2 passed, 1 error" in result.stdout, result.stdout  # only test_blocks errors, at teardown
    assert "ERROR at teardown of test_blocks" in result.stdout, result.stdout
