"""Helpers the benchmarks share: a throw-away database, a bench user, a real server, percentiles.

The real server is autobot/testing.py's ``ServerProcess``, the one the tests use too.

Importing this module puts the project root first on ``sys.path``: a benchmark is run as
``bench/<name>.py``, so without it ``bench/chat.py`` would shadow the ``chat`` app (and so on),
and the project's packages would not be importable at all. Import it before any project module.

Not a benchmark itself: ``make bench`` runs every ``bench/*.py``, so run as a script it only
says so.
"""

import asyncio
import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
if sys.path[0] != str(ROOT):
    sys.path.insert(0, str(ROOT))

# After the path is set. HOST and free_port are re-exported for the benchmarks.
from autobot.testing import HOST, ServerFailed, ServerProcess, free_port  # noqa: E402, F401

READY_SECONDS = 30  # how long a server may take to start answering


# --- Django on a throw-away SQLite database -------------------------------------------------


def setup_django(folder: str, **env: str) -> None:
    """Point the settings at a fresh SQLite database in ``folder``, set up Django and migrate.

    ``env`` adds settings variables (``AUTOBOT_FILES_ROOT=...``). They go into ``os.environ``,
    so a server started afterwards with ``uvicorn_server`` sees the same database and settings.
    Call it before the event loop starts: it uses the sync ORM.
    """
    os.environ["DATABASE_URL"] = f"sqlite:///{folder}/bench.sqlite3"
    os.environ["AUTOBOT_VAR_DIR"] = folder
    os.environ.update(env)
    os.environ.pop("REDIS_URL", None)  # in-memory channel layer: the figures are the server's own
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "autobot.settings")
    os.environ.setdefault("AUTOBOT_LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def bench_token(*, staff: bool = False) -> str:
    """Create the user ``bench`` and return a raw API token for it (``Authorization: Bearer``)."""
    from asgiref.sync import async_to_sync
    from django.contrib.auth import get_user_model

    from autobot.auth import token_create

    user = get_user_model().objects.create_user("bench", password="bench-password-123", is_staff=staff)
    _token, raw = async_to_sync(token_create)(actor=None, user=user, name="bench", via="bench")
    return raw


# --- a real server ----------------------------------------------------------------------------


def _running(server: ServerProcess) -> Iterator[ServerProcess]:
    """Start ``server``, yield it while the caller works, stop it on leaving (a benchmark that
    cannot start its server ends with the reason, not a traceback)."""
    try:
        server.start()
    except ServerFailed as exc:
        raise SystemExit(str(exc)) from None
    try:
        yield server
    finally:
        server.stop()


def seed_lists(username: str = "bench", rows: int = 20) -> None:
    """``rows`` chat sessions and knowledge entries of ``username``: what the list calls and the
    chat and knowledge pages read."""
    from asgiref.sync import async_to_sync
    from django.contrib.auth import get_user_model

    from chat.models import ChatSession
    from knowledge import services as knowledge

    user = get_user_model().objects.get(username=username)
    for n in range(rows):
        ChatSession.objects.create(owner=user, title=f"bench session {n}")
        async_to_sync(knowledge.entry_create)(user=user, title=f"bench entry {n}",
                                              content=f"Entry {n}: " + "some words to index " * 20, tags=["bench"])


@contextmanager
def uvicorn_server(folder: str, port: int, *args: str, env: dict | None = None) -> Iterator[ServerProcess]:
    """Run the server users run (``make run``: uvicorn, one worker) on ``127.0.0.1:port`` meanwhile.

    A ``ServerProcess`` (autobot/testing.py, shared with the tests): it inherits this process's
    environment (``setup_django`` put the database there), plus ``env``; ``args`` are extra
    uvicorn options. Yields once ``/api/health`` answers (200, or 503 if a dependency is down);
    its output goes to ``folder/server.log``. On leaving, the server is stopped.
    """
    server = ServerProcess(env={"AUTOBOT_LOG_LEVEL": "WARNING", **(env or {})}, var_dir=folder, port=port,
                           uvicorn_args=args, ready_statuses=(200, 503), ready_seconds=READY_SECONDS,
                           stop_seconds=15)
    yield from _running(server)


@contextmanager
def stock_server(folder: str, app: str = "application", port: int | None = None) -> Iterator[ServerProcess]:
    """bench/stock_app.py (``application``: stock ninja; ``raw_application``: bare ASGI) under the
    same uvicorn, one worker, as a ``ServerProcess`` like AutoBot's; its log is
    ``folder/stock-<app>.log``. It has no ``/api/health``, so its 404 there means it is up."""
    port = port or free_port()
    argv = [sys.executable, "-m", "uvicorn", f"stock_app:{app}", "--app-dir", str(ROOT / "bench"),
            "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    server = ServerProcess(var_dir=folder, port=port, name=f"stock-{app}", command=argv, ready_statuses=(404, 200),
                           ready_seconds=READY_SECONDS, stop_seconds=15)
    yield from _running(server)


async def probe_health(
    http: aiohttp.ClientSession,
    url: str,
    stop: asyncio.Event,
    latencies: list[float],
    failures: list | None = None,
    count: int | None = None,
) -> None:
    """Time ``GET /api/health`` (ms, into ``latencies``) every 10 ms until ``stop`` or ``count``.

    With ``failures``, a non-200 answer or a connection error is noted there; without, a
    connection error propagates.
    """
    while not stop.is_set() and (count is None or len(latencies) < count):
        started = time.perf_counter()
        try:
            async with http.get(f"{url}/api/health") as resp:
                await resp.read()
                if resp.status != 200 and failures is not None:
                    failures.append(resp.status)
        except aiohttp.ClientError as exc:
            if failures is None:
                raise
            failures.append(repr(exc))
        latencies.append((time.perf_counter() - started) * 1000)
        try:
            await asyncio.wait_for(stop.wait(), 0.01)
        except TimeoutError:
            pass


# --- wrk against a server process --------------------------------------------------------------

WRK_LUA = """
done = function(summary, latency, requests)
  io.write(string.format("PCT %d %d %d\\n", latency:percentile(50), latency:percentile(95), latency:percentile(99)))
end
"""


def wrk_parser(doc: str):
    """The options every wrk benchmark takes: --seconds a run and --rounds (alternating)."""
    import argparse

    from report import quick

    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0 if quick() else 5.0)
    parser.add_argument("--rounds", type=int, default=1 if quick() else 2)
    return parser


def wrk_installed() -> bool:
    """True if wrk is on PATH; otherwise says so and records a failed row (the suite goes on)."""
    from shutil import which

    from report import record

    if which("wrk"):
        return True
    print("wrk is not installed (Debian: apt-get install wrk); nothing measured")
    record("wrk available", 0, "", target="installed", passed=False, note="apt-get install wrk")
    return False


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(url: str, connections: int, seconds: float, pid: int, script: str, headers: dict) -> dict:
    """One wrk run against ``url``: req/s, p50/p95/p99 (ms), errors, and the CPU time the server
    process ``pid`` spent per request meanwhile. ``script`` is a file holding ``WRK_LUA``.
    A 10 s timeout (wrk's default is 2 s): a slow answer counts in the latency, not as an error."""
    import re
    import subprocess

    argv = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "10s", "-s", script, url]
    for name, value in headers.items():
        argv[1:1] = ["-H", f"{name}: {value}"]
    before = cpu_seconds(pid)
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30).stdout
    cpu = cpu_seconds(pid) - before
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    errors = sum(int(n) for n in re.findall(r"(?:Non-2xx or 3xx responses|connect|read|write|timeout) (\d+)", out))
    p50, p95, p99 = (int(n) / 1000 for n in re.search(r"PCT (\d+) (\d+) (\d+)", out).groups())
    return {"rps": requests / seconds, "p50": p50, "p95": p95, "p99": p99, "errors": errors,
            "cpu_ms": cpu * 1000 / max(requests, 1)}


# --- figures ----------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (q in 0..100): the sample at rank round(q % of n - 1); nan if none."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def percentile_high(values: list[float], q: float) -> float:
    """The q-th percentile (q in 0..100) as the sample at rank floor(q % of n); nan if none.

    One rank above ``percentile`` now and then (the upper median for p50 of an even count):
    what the agents and files benchmarks have always printed, kept so their figures compare.
    """
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * (q / 100)))]


def machine_load() -> float:
    """The 1-minute load average: on a shared machine the figures vary with it."""
    return os.getloadavg()[0]


def load_line(before: float) -> str:
    """A line for the report: the load before the run (see ``machine_load``) and now."""
    return f"machine load (1-min average): {before:.2f} before the run, {machine_load():.2f} after"


class HealthProbeProcess:
    """``probe_health`` run from a separate process. In-process probes share the event loop (and
    the GIL) with the benchmark's own client work — a hundred SSE streams being read, an
    in-process fake LLM — so they time the client's busyness as well as the server's. A probe of
    its own measures only the server, for the baseline and the loaded phase alike.

        async with HealthProbeProcess(url) as probe:   # until the block ends
            ...
        probe.latencies, probe.failures
    """

    def __init__(self, url: str, count: int | None = None) -> None:
        self.url, self.count = url, count
        self.latencies: list[float] = []
        self.failures: list = []

    async def __aenter__(self):
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "probe", self.url, str(self.count or 0),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )
        return self

    async def __aexit__(self, *exc) -> None:
        if self.count is None:
            self.proc.stdin.close()  # end of stdin tells the probe to stop
        out, _ = await self.proc.communicate()
        result = json.loads(out)
        self.latencies, self.failures = result["latencies"], result["failures"]


async def _probe_main(url: str, count: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    if not count:
        # Stop at end of stdin (the parent closes it), read in a thread so the loop stays free.
        loop.run_in_executor(None, sys.stdin.read).add_done_callback(lambda _f: loop.call_soon_threadsafe(stop.set))
    latencies: list[float] = []
    failures: list = []
    async with aiohttp.ClientSession() as http:
        await probe_health(http, url, stop, latencies, failures, count=count or None)
    print(json.dumps({"latencies": latencies, "failures": failures}))


if __name__ == "__main__":
    if sys.argv[1:2] == ["probe"]:
        asyncio.run(_probe_main(sys.argv[2], int(sys.argv[3])))
    else:
        print("bench/common.py: helpers for the other benchmarks, nothing to measure")
