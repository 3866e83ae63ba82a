"""Chat benchmark: does streaming chat load slow the rest of the server down?

1. `GET /api/health` latency (p50/p99) with no chat load, then while 100 chat answers stream
   at once over SSE from a fake LLM that takes 2 s per answer — same server, same run.
   Targets (issue 5): p99 under load < 50 ms, no failed request.
2. Time to first token through AutoBot (POST → first SSE token) versus asking the fake LLM
   directly, and the difference. Target: overhead < 10 ms.

Runs a real uvicorn server (as `make run` does) on a throw-away SQLite database in a temporary
folder, and the fake LLM from tests/chat/fake_llm.py on loopback. The machine's load average is
printed with the figures: on a shared machine they vary with it. Not a test: it asserts nothing.
    .venv/bin/python bench/chat.py [--streams 100] [--answer-seconds 2]

Before/after in one run: `--compare DIR` serves a second AutoBot from another source tree (an
export of an earlier commit: `git archive <commit> | tar -x -C DIR`) beside this one, on the same
database, and measures only the time to first token: the answers alternate between the two
servers (which goes first alternates too), a new session every 20 answers on each; printed are
each server's median and the server process's CPU time per answer (from /proc), and their ratios.
    .venv/bin/python bench/chat.py --compare /tmp/base --ttft 200
"""

import argparse
import asyncio
import statistics
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import aiohttp
from common import (  # first: it puts the project root on sys.path
    HealthProbeProcess,
    bench_token,
    cpu_seconds,
    free_port,
    load_line,
    machine_load,
    percentile,
    setup_django,
    uvicorn_server,
)
from report import record

from tests.chat.fake_llm import FakeLLMThread

TOKENS = 20


async def new_session(http, url, headers) -> str:
    async with http.post(f"{url}/api/chat/sessions", json={}, headers=headers) as resp:
        return (await resp.json())["id"]


async def stream_answer(http, url, headers, sid: str, content: str) -> tuple[float, bool]:
    """POST a message with SSE; return (ms to the first token, finished complete)."""
    started = time.perf_counter()
    first = None
    complete = False
    async with http.post(f"{url}/api/chat/sessions/{sid}/messages", json={"content": content},
                         headers={**headers, "Accept": "text/event-stream"}) as resp:
        async for line in resp.content:
            if first is None and line.startswith(b"event: token"):
                first = (time.perf_counter() - started) * 1000
            if line.startswith(b"data: ") and b'"type": "done"' in line:
                complete = b'"status": "complete"' in line
    return first or float("nan"), complete


async def direct_first_token(http, llm_url: str) -> float:
    started = time.perf_counter()
    body = {"model": "fake-small", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    async with http.post(f"{llm_url}/api/chat", json=body) as resp:
        async for _line in resp.content:
            first = (time.perf_counter() - started) * 1000
            break
        resp.close()
    return first


async def run(args, url: str, token: str, fake, server) -> None:
    load_before = machine_load()  # other work on the machine, before this run adds its own
    headers = {"Authorization": f"Bearer {token}"}
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        # 1. health alone (probes from a process of their own in both phases: see HealthProbeProcess)
        async with HealthProbeProcess(url, count=args.probes) as idle_probe:
            pass
        idle, idle_fail = idle_probe.latencies, idle_probe.failures

        # 2. health while N answers stream
        fake.tokens = [f" t{n}" for n in range(TOKENS)]
        fake.delay = args.answer_seconds / TOKENS
        sids = [await new_session(http, url, headers) for _ in range(args.streams)]
        async with HealthProbeProcess(url) as loaded_probe:
            started = time.perf_counter()
            results = await asyncio.gather(*(stream_answer(http, url, headers, sid, "load") for sid in sids),
                                           return_exceptions=True)
            wall = time.perf_counter() - started
        loaded, loaded_fail = loaded_probe.latencies, loaded_probe.failures
        streams_ok = sum(1 for r in results if isinstance(r, tuple) and r[1])
        loaded_first = [r[0] for r in results if isinstance(r, tuple)]

        # 3. time to first token: direct vs through AutoBot (no artificial delay)
        fake.delay = 0.0
        fake.tokens = ["a", "b"]
        direct = [await direct_first_token(http, fake.url) for _ in range(args.ttft)]
        sid = await new_session(http, url, headers)
        through = [(await stream_answer(http, url, headers, sid, "ttft"))[0] for _ in range(args.ttft)]

    print(load_line(load_before))
    print(f"GET /api/health, no chat load     : p50 {percentile(idle, 50):7.2f} ms  "
          f"p99 {percentile(idle, 99):7.2f} ms  "
          f"({len(idle)} requests, {len(idle_fail)} failed)")
    print(f"GET /api/health, {args.streams} chat streams : p50 {percentile(loaded, 50):7.2f} ms  "
          f"p99 {percentile(loaded, 99):7.2f} ms  ({len(loaded)} requests, {len(loaded_fail)} failed)  "
          "target p99 < 50 ms, 0 failed")
    print(f"  p99 ratio loaded/idle: {percentile(loaded, 99) / percentile(idle, 99):.1f}x")
    print(f"chat streams: {streams_ok}/{args.streams} complete in {wall:.2f} s "
          f"(each answer takes {args.answer_seconds:.1f} s at the fake LLM)")
    if loaded_first:
        print(f"  their first tokens after: p50 {percentile(loaded_first, 50):.1f} ms, max {max(loaded_first):.1f} ms")
    d50, t50 = statistics.median(direct), statistics.median(through)
    print(f"time to first token: direct {d50:.2f} ms, through AutoBot {t50:.2f} ms (medians of {args.ttft})")
    print(f"  overhead {t50 - d50:.2f} ms   target < 10 ms")
    p99 = percentile(loaded, 99)
    record(f"/api/health p99 during {args.streams} chat streams", p99, "ms", baseline=percentile(idle, 99),
           baseline_name="idle", target="< 50 ms, 0 failed", passed=p99 < 50 and not loaded_fail)
    record(f"chat streams complete ({args.streams})", streams_ok, "", target=f"{args.streams}",
           passed=streams_ok == args.streams)
    record("time to first token overhead", t50 - d50, "ms", baseline=d50, baseline_name="fake LLM direct",
           target="< 10 ms", passed=t50 - d50 < 10)


async def compare(args, urls: dict[str, str], pids: dict[str, int], token: str, fake) -> None:
    """Time to first token on both servers, answers alternating (see the module's docstring)."""
    headers = {"Authorization": f"Bearer {token}"}
    fake.delay, fake.tokens = 0.0, ["a", "b"]
    first: dict[str, list[float]] = {name: [] for name in urls}
    cpu: dict[str, float] = dict.fromkeys(urls, 0.0)
    sids: dict[str, str] = {}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        direct = [await direct_first_token(http, fake.url) for _ in range(20)]
        for number in range(args.ttft):
            order = list(urls) if number % 2 == 0 else list(reversed(urls))
            for name in order:
                if number % 20 == 0:
                    sids[name] = await new_session(http, urls[name], headers)
                used = cpu_seconds(pids[name])
                first[name].append((await stream_answer(http, urls[name], headers, sids[name], "ttft"))[0])
                cpu[name] += cpu_seconds(pids[name]) - used
    d50 = statistics.median(direct)
    print(f"time to first token, {args.ttft} answers each, alternating; fake LLM direct {d50:.2f} ms (median)")
    print(f"{'server':8} {'p50 ms':>8} {'overhead':>9} {'p90 ms':>8} {'CPU ms/answer':>14}")
    for name in urls:
        print(f"{name:8} {statistics.median(first[name]):8.2f} {statistics.median(first[name]) - d50:9.2f} "
              f"{percentile(first[name], 90):8.2f} {cpu[name] / args.ttft * 1000:14.2f}")
    after, before = statistics.median(first["after"]) - d50, statistics.median(first["before"]) - d50
    print(f"overhead after/before {after / before:.2f}x ({after - before:+.2f} ms); "
          f"CPU per answer {cpu['after'] / cpu['before']:.2f}x (whole answers, the reply's store included)")


def main() -> None:
    parser = argparse.ArgumentParser(description="chat load vs health latency, and TTFT overhead")
    parser.add_argument("--streams", type=int, default=100)
    parser.add_argument("--answer-seconds", type=float, default=2.0)
    parser.add_argument("--probes", type=int, default=200)
    parser.add_argument("--ttft", type=int, default=30)
    parser.add_argument("--compare", metavar="DIR", help="another source tree to serve beside, as 'before' "
                                                         "(time to first token only)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="autobot-bench-chat-") as folder, FakeLLMThread() as fake:
        setup_django(folder)
        token = bench_token()
        port = free_port()
        env = {"AUTOBOT_LLM_PROVIDER": "ollama", "AUTOBOT_LLM_BASE_URL": fake.url, "AUTOBOT_LLM_MODEL": "fake-small"}
        if args.compare:
            with ExitStack() as stack:
                servers = {"after": stack.enter_context(uvicorn_server(folder, port, env=env)),
                           "before": stack.enter_context(uvicorn_server(
                               folder, free_port(), "--app-dir", str(Path(args.compare).resolve()), env=env))}
                asyncio.run(compare(args, {name: s.url for name, s in servers.items()},
                                    {name: s.pid for name, s in servers.items()}, token, fake))
            return
        with uvicorn_server(folder, port, env=env) as server:
            asyncio.run(run(args, f"http://127.0.0.1:{port}", token, fake, server))


if __name__ == "__main__":
    main()
