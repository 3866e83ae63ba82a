"""Everything at once (issue 15, target 3): does the event loop stay free when one worker serves
100 streaming chat answers, a 200 MB upload and a terminal flooding output at the same time?

`/api/health` p99 (probed from a process of its own) with all three running, against the same
server idle; target under 50 ms with nothing failed. One uvicorn worker as `make run` serves,
a throw-away SQLite database, the fake LLM from tests/chat/fake_llm.py on loopback. The loads
reuse the chat, files and terminal benchmarks' own clients. Not a test: it asserts nothing.

    .venv/bin/python bench/mixed_load.py [--streams 100] [--mb 200] [--flood-mb 50]
"""

import argparse
import asyncio
import importlib.util
import re
import tempfile
from pathlib import Path

import aiohttp
from common import (  # first: it puts the project root on sys.path
    HealthProbeProcess,
    bench_token,
    free_port,
    load_line,
    machine_load,
    percentile,
    setup_django,
    uvicorn_server,
)
from report import quick, record

from tests.chat.fake_llm import FakeLLMThread

BENCH = Path(__file__).resolve().parent


def sibling(name: str):
    """Another benchmark's module (by path: `chat` etc. are the project's apps on sys.path)."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


chat_bench, files_bench, terminal_bench = sibling("chat"), sibling("files"), sibling("terminal")


async def upload(http, url: str, headers: dict, size: int) -> bool:
    async with http.post(
        f"{url}/api/files/upload", data=files_bench.body(size),
        headers={**headers, "Content-Type": f"multipart/form-data; boundary={files_bench.BOUNDARY}",
                 "Content-Length": str(files_bench.body_length(size))},
    ) as response:
        await response.read()
        return response.status == 201


async def flood(http, url: str, headers: dict, size_mb: int) -> bool:
    _sid, ws = await terminal_bench.open_terminal(http, url, headers)
    try:
        _rate, total = await terminal_bench.throughput(ws, size_mb)
        return total > size_mb * 1e6  # base64 of size_mb MiB is longer than that
    finally:
        await ws.close()


async def run(args, url: str, token: str, fake, server) -> None:
    load_before = machine_load()
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                     timeout=aiohttp.ClientTimeout(total=None)) as http:
        async with HealthProbeProcess(url, count=args.probes) as idle_probe:
            pass
        fake.tokens = [f" t{n}" for n in range(20)]
        fake.delay = args.answer_seconds / 20
        sids = [await chat_bench.new_session(http, url, headers) for _ in range(args.streams)]
        async with HealthProbeProcess(url) as loaded_probe:
            results = await asyncio.gather(
                *(chat_bench.stream_answer(http, url, headers, sid, "load") for sid in sids),
                upload(http, url, headers, args.mb * files_bench.BLOCK),
                flood(http, url, headers, args.flood_mb),
                return_exceptions=True,
            )
    streams, uploaded, flooded = results[:-2], results[-2], results[-1]
    streams_ok = sum(1 for r in streams if isinstance(r, tuple) and r[1])
    idle_p99, loaded_p99 = percentile(idle_probe.latencies, 99), percentile(loaded_probe.latencies, 99)
    failed = len(loaded_probe.failures) + (args.streams - streams_ok) + (uploaded is not True) + (flooded is not True)
    print(load_line(load_before))
    print(f"GET /api/health p99: {idle_p99:.2f} ms idle, {loaded_p99:.2f} ms under {args.streams} chat streams + "
          f"a {args.mb} MB upload + a terminal flooding {args.flood_mb} MB ({len(loaded_probe.latencies)} probes)")
    print(f"chat streams complete {streams_ok}/{args.streams}; upload {uploaded!r}; terminal flood {flooded!r}; "
          f"health failures {len(loaded_probe.failures)}")
    record("/api/health p99 under streams + upload + terminal flood", loaded_p99, "ms", baseline=idle_p99,
           baseline_name="idle", target="< 50 ms", passed=loaded_p99 < 50)
    record("failures under the mixed load", failed, "", target="0", passed=failed == 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=20 if quick() else 100)
    parser.add_argument("--answer-seconds", type=float, default=2.0)
    parser.add_argument("--mb", type=int, default=20 if quick() else 200)
    parser.add_argument("--flood-mb", type=int, default=5 if quick() else 50)
    parser.add_argument("--probes", type=int, default=100 if quick() else 200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="autobot-bench-mixed-") as folder, FakeLLMThread() as fake:
        setup_django(folder, AUTOBOT_FILES_ROOT=str(Path(folder) / "files"), AUTOBOT_FILES_MAX_UPLOAD_BYTES="0",
                     AUTOBOT_FILES_USER_QUOTA_BYTES="0")
        token = bench_token(staff=True)  # staff: a STANDARD host terminal, as the terminal benchmark
        port = free_port()
        env = {"AUTOBOT_LLM_PROVIDER": "ollama", "AUTOBOT_LLM_BASE_URL": fake.url, "AUTOBOT_LLM_MODEL": "fake-small",
               "AUTOBOT_TERMINAL_RECORDINGS_DIR": f"{folder}/recordings"}
        with uvicorn_server(folder, port, env=env) as server:
            asyncio.run(run(args, f"http://127.0.0.1:{port}", token, fake, server))
        report_stalls(Path(folder) / "server.log")


def report_stalls(log: Path) -> None:
    """What the server's own event-loop watchdog (AUTOBOT_LOOP_WATCHDOG_MS) logged meanwhile."""
    text = log.read_text(errors="replace")
    stalls = re.findall(r"event loop blocked for (\d+) ms", text)
    print(f"server watchdog: {len(stalls)} stall(s) over 100 ms logged" + (f", longest {max(map(int, stalls))} ms"
                                                                           if stalls else ""))
    if stalls:
        first = text[text.index("event loop blocked"):]
        print("  first one:", first[:3000])
    record("event-loop stalls the server logged (> 100 ms)", len(stalls), "", target="0", passed=not stalls)


if __name__ == "__main__":
    main()
