"""pytest plugin: a test fails if anything held an event loop longer than 100 ms while it ran.

Every callback of every standard library event loop in the test process is timed
(`autobot.watchdog.time_callbacks`): the test's own loop, the servers and consumers it drives
in-process, the loops `async_to_sync` starts. A slow one is reported with the task that ran it
and the stack where it was stuck, and the test fails at teardown. Registered from
tests/conftest.py. The threshold is `AUTOBOT_TEST_LOOP_BLOCK_MS` (default 100; 0 turns the
check off).

What the test code itself does on its loop is its own business: a stall whose innermost
frame of this project (not a library's) is in tests/ — a sync fixture helper that waits for a
thread, a test that drives a sync library — is not counted. Anything stuck in the product's
code fails the test. Not counted either: the event loop of Playwright's sync API (the browser
tests' client: it also runs the test's own code inside a loop callback when it switches
greenlets back; the server under test there is a process of its own); Django's test client
building its middleware chain (`load_middleware`, per client instance; the server does it once,
before it serves); the time a callback's thread spent waiting, runnable, for a CPU (the
kernel's run-queue delay, left out by `time_callbacks`); and two kinds of stall that say more
about a busy machine than about the code: a `Thread.start()` waiting for the OS to run the new
thread (CPython blocks until it does), and a stall so short that not even the watchdog's own
thread got to look (under NO_STACK_MS: the whole process was off the CPU).

A test whose own body must block (a sync library with no async form, used only by the test)
says so with `@pytest.mark.allow_loop_block("why")`; the server code it exercises never
should.
"""

import gc
import os
import threading
import time
from pathlib import Path

import pytest

from autobot.watchdog import Stall, time_callbacks

THRESHOLD_MS = int(os.environ.get("AUTOBOT_TEST_LOOP_BLOCK_MS", "100"))
NO_STACK_MS = 500
PLAYWRIGHT = f"{os.sep}playwright{os.sep}"  # the browser tests' client library and its loop

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
# The server harness is test code that lives in autobot/ (bench/ uses it too): a test that starts
# a server from async code blocks its own loop, not the product's.
HARNESS = ROOT / "autobot" / "testing.py"
_stalls: list[Stall] = []
_lock = threading.Lock()


# The interpreter's garbage collector can hold any callback (a full collection of a test run's
# heap took 330 ms under load in CI); that is not code blocking the loop. Collections are timed
# here, and a stall that a collection accounts for is not counted.
_collections: list[tuple[float, float]] = []  # (start, end) of recent collections, monotonic
_gc_started = 0.0


def _time_collection(phase: str, info: dict) -> None:
    global _gc_started
    if phase == "start":
        _gc_started = time.monotonic()
    else:
        _collections.append((_gc_started, time.monotonic()))
        del _collections[:-20]


def _collected_during(stall: Stall) -> bool:
    now = time.monotonic()
    spent = sum(end - max(start, now - stall.seconds) for start, end in list(_collections)
                if end > now - stall.seconds)
    return stall.seconds - spent < THRESHOLD_MS / 1000


def _note(stall: Stall) -> None:
    if stall.stack is None and stall.seconds * 1000 < NO_STACK_MS:
        return
    if _collected_during(stall):
        return
    if PLAYWRIGHT in stall.where or any(PLAYWRIGHT in frame.filename for frame in stall.stack or []):
        return
    if stall.stack is not None and (_in_test_code(stall) or _starting_a_thread(stall) or _start_up(stall)):
        return
    with _lock:
        _stalls.append(stall)


def _starting_a_thread(stall: Stall) -> bool:
    return any(frame.name == "start" and frame.filename.endswith("threading.py") for frame in stall.stack[-4:])


def _start_up(stall: Stall) -> bool:
    return any(frame.name == "load_middleware" for frame in stall.stack)


def _in_test_code(stall: Stall) -> bool:
    """Whether the innermost frame of this project's own code on the stuck stack is a test's."""
    for frame in reversed(stall.stack or []):
        path = Path(frame.filename)
        if path.is_relative_to(ROOT) and ".venv" not in path.parts:
            return (path.is_relative_to(TESTS) and path.name != "loop_watchdog.py") or path == HARNESS
    return False


def pytest_configure(config):
    config.addinivalue_line("markers", "allow_loop_block(reason): this test's own code may hold its event loop")
    if THRESHOLD_MS > 0:
        gc.callbacks.append(_time_collection)
        time_callbacks(THRESHOLD_MS / 1000, _note)


@pytest.fixture(scope="session", autouse=True)
def _preloaded():
    """Import what the server imports at start-up (autobot/asgi.py), not inside the first test
    that makes a request, on its loop; and the Redis layer, which tests switch to."""
    import importlib.util

    from django.conf import settings

    from autobot.watchdog import preload

    if not settings.configured:
        return  # a run without Django (the plugin's own test)
    preload()
    if importlib.util.find_spec("channels_redis"):
        import channels_redis.core  # noqa: F401


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
