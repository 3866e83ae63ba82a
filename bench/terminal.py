"""Terminal benchmark: output throughput and keystroke echo latency over the WebSocket.

In one run, on this machine:
1. baseline: the raw PTY read rate — ``head -c SIZE /dev/zero | base64`` on a PTY, read with
   blocking 64 KiB ``os.read`` calls in a tight loop and discarded;
2. the same command in a terminal session of a real server, received by a WebSocket client
   (loopback), reported in MB/s and as a ratio of (1). Target (issue 3): at least 80 %;
3. keystroke echo round trip (send one character as an input frame, wait for the output frame
   carrying its echo) p50/p99, with 1 session, then N concurrent sessions each typing at a
   typist's pace (``--pace-ms``), then the same N flat out (a stress figure: each keystroke
   queues behind everyone else's). Target: p50 under 5 ms.

Runs a real uvicorn server (as ``make run`` does) on a throw-away SQLite database in a
temporary folder. Not a test: it asserts nothing.
    .venv/bin/python bench/terminal.py [--size-mb 100] [--sessions 50] [--keys 200]
"""

import argparse
import asyncio
import os
import random
import statistics
import tempfile
import time

import aiohttp
import ptyprocess
from common import (  # first: it puts the project root on sys.path
    bench_token,
    free_port,
    percentile,
    setup_django,
    uvicorn_server,
)
from report import record


def raw_pty_rate(size_mb: int) -> tuple[float, int]:
    """MB/s of a tight blocking read loop on the PTY: the ceiling for any terminal server."""
    proc = ptyprocess.PtyProcess.spawn(["bash", "-c", f"head -c {size_mb}M /dev/zero | base64"], dimensions=(40, 120))
    total = 0
    started = time.perf_counter()
    while True:
        try:
            data = os.read(proc.fd, 65536)
        except OSError:
            break
        if not data:
            break
        total += len(data)
    elapsed = time.perf_counter() - started
    proc.close(force=True)
    return total / elapsed / 1e6, total


async def open_terminal(http, url: str, headers: dict) -> tuple[str, aiohttp.ClientWebSocketResponse]:
    async with http.post(
        f"{url}/api/terminal/sessions", json={"security_level": "STANDARD", "cols": 120, "rows": 40}, headers=headers
    ) as resp:
        body = await resp.json()
        if resp.status != 201:
            raise SystemExit(f"could not open a session: {body}")
    ws = await http.ws_connect(
        f"{url.replace('http', 'ws')}/ws/terminal/{body['id']}/", headers=headers, max_msg_size=0
    )
    await read_until(ws, "@autobot:")
    return body["id"], ws


async def read_until(ws, needle: str) -> int:
    """Receive output frames until needle appears; return the output bytes received."""
    total = 0
    tail = ""
    while True:
        msg = await ws.receive_json()
        if msg["type"] != "output":
            continue
        data = msg["data"]
        total += len(data.encode())
        tail = (tail + data)[-len(needle) - 4096 :]
        if needle in tail:
            return total


async def throughput(ws, size_mb: int) -> tuple[float, int]:
    await ws.send_json({"type": "input", "data": f"head -c {size_mb}M /dev/zero | base64; echo END-$((6*7))\r"})
    await read_until(ws, "base64; echo END")  # the echo of the command line itself
    started = time.perf_counter()
    total = await read_until(ws, "END-42")
    return total / (time.perf_counter() - started) / 1e6, total


async def echo_latencies(ws, keys: int, pace: float = 0.0) -> list[float]:
    """Type a character and wait for its echo; then erase it the same way. With ``pace``,
    start a keystroke every ``pace`` seconds (a typist), else as fast as echoes come back."""
    if pace:
        await asyncio.sleep(random.uniform(0, pace))  # typists are not in lockstep
    samples = []
    for n in range(keys):
        key, echo = ("x", "x") if n % 2 == 0 else ("\x7f", "\b")
        started = time.perf_counter()
        await ws.send_json({"type": "input", "data": key})
        while True:  # skip anything else still in flight (the prompt after the last command)
            msg = await ws.receive_json()
            if msg["type"] == "output" and echo in msg["data"]:
                break
        samples.append((time.perf_counter() - started) * 1000)
        if pace:
            await asyncio.sleep(max(0.0, pace - (time.perf_counter() - started)))
    return samples


async def run(args, url: str, token: str, raw_rate: float, server) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        _sid, ws = await open_terminal(http, url, headers)
        rate, total = await throughput(ws, args.size_mb)
        print(
            f"WebSocket output throughput:    {rate:8.1f} MB/s  ({total / 1e6:.0f} MB)  "
            f"= {rate / raw_rate:.0%} of the raw PTY rate (target >= 80%)"
        )
        record("terminal WebSocket output", rate, "MB/s", baseline=raw_rate, baseline_name="raw PTY read",
               target=">= 80% of raw", passed=rate >= 0.8 * raw_rate)

        one = await echo_latencies(ws, args.keys)
        print(
            f"echo round trip, 1 session:     p50 {statistics.median(one):6.2f} ms   p99 {percentile(one, 99):6.2f} ms"
            f"   (target p50 < 5 ms)"
        )
        record("terminal echo round trip, 1 session, p50", statistics.median(one), "ms", target="< 5 ms",
               passed=statistics.median(one) < 5)
        await ws.close()

        sockets = [
            ws for _sid, ws in await asyncio.gather(*(open_terminal(http, url, headers) for _ in range(args.sessions)))
        ]
        pace = args.pace_ms / 1000
        results = await asyncio.gather(*(echo_latencies(ws, args.keys, pace) for ws in sockets))
        paced = [sample for result in results for sample in result]
        print(
            f"echo round trip, {args.sessions} sessions typing {1 / pace:.0f} keys/s each: "
            f"p50 {statistics.median(paced):6.2f} ms   p99 {percentile(paced, 99):6.2f} ms   (target p50 < 5 ms)"
        )
        record(f"terminal echo, {args.sessions} sessions typing, p50", statistics.median(paced), "ms",
               baseline=statistics.median(one), baseline_name="1 session", target="< 5 ms",
               passed=statistics.median(paced) < 5)
        started = time.perf_counter()
        results = await asyncio.gather(*(echo_latencies(ws, args.keys) for ws in sockets))
        rate = args.keys * args.sessions / (time.perf_counter() - started)
        flat_out = [sample for result in results for sample in result]
        print(
            f"echo round trip, {args.sessions} sessions flat out (stress): p50 {statistics.median(flat_out):6.2f} ms   "
            f"p99 {percentile(flat_out, 99):6.2f} ms   ({rate:.0f} keystrokes/s in all)"
        )
        for ws in sockets:
            await ws.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=100)
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--keys", type=int, default=200)
    parser.add_argument("--pace-ms", type=float, default=100.0, help="time between one typist's keystrokes")
    args = parser.parse_args()

    raw_rate, raw_total = raw_pty_rate(args.size_mb)
    print(f"raw PTY read rate (baseline):   {raw_rate:8.1f} MB/s  ({raw_total / 1e6:.0f} MB)")
    with tempfile.TemporaryDirectory(prefix="autobot-bench-terminal-") as folder:
        setup_django(folder)
        token = bench_token(staff=True)
        port = free_port()
        env = {
            "AUTOBOT_TERMINAL_MAX_SESSIONS_PER_USER": str(args.sessions + 5),
            "AUTOBOT_TERMINAL_RECORDINGS_DIR": f"{folder}/recordings",
        }
        with uvicorn_server(folder, port, env=env) as server:
            print(f"server: uvicorn on 127.0.0.1:{port}")
            asyncio.run(run(args, f"http://127.0.0.1:{port}", token, raw_rate, server))


if __name__ == "__main__":
    main()
