"""pytest plugin: a test fails if anything held an event loop longer than 100 ms while it ran.

Every callback of every standard library event loop in the test process is timed
(`autobot.watchdog.time_callbacks`): the test's own loop, the servers and consumers it drives
in-process, the loops `async_to_sync` starts. A slow one is reported with the task that ran it
and the stack where it was stuck, and the test fails at teardown. Registered from
tests/conftest.py. The threshold is `AUTOBOT_TEST_LOOP_BLOCK_MS` (default 100; 0 turns the
check off).

A test whose own body must block (a sync library with no async form, used only by the test)
says so with `@pytest.mark.allow_loop_block("why")`; the server code it exercises never
should.
"""

import os
import threading

import pytest

from autobot.watchdog import Stall, time_callbacks

THRESHOLD_MS = int(os.environ.get("AUTOBOT_TEST_LOOP_BLOCK_MS", "100"))

_stalls: list[Stall] = []
_lock = threading.Lock()


def _note(stall: Stall) -> None:
    with _lock:
        _stalls.append(stall)


def pytest_configure(config):
    config.addinivalue_line("markers", "allow_loop_block(reason): this test's own code may hold its event loop")
    if THRESHOLD_MS > 0:
        time_callbacks(THRESHOLD_MS / 1000, _note)


@pytest.fixture(autouse=True)
def _no_loop_blocking(request):
    with _lock:
        _stalls.clear()
    yield
    with _lock:
        stalls, _stalls[:] = list(_stalls), []
    if stalls and request.node.get_closest_marker("allow_loop_block") is None:
        report = "\n".join(f"- {stall.seconds * 1000:.0f} ms: {stall.where}" for stall in stalls[:5])
        pytest.fail(f"an event loop was blocked for more than {THRESHOLD_MS} ms "
                    f"({len(stalls)} time(s)):\n{report}", pytrace=False)
