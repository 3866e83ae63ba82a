"""Idle WebSockets benchmark (issue 15, target 4): what 1,000 idle authenticated sockets cost one
worker.

Opens N chat sockets (`/ws/chat/<id>/`, Bearer token) to one uvicorn worker (as `make run`
serves, throw-away SQLite database) and leaves them idle. Reports the server's resident memory
per socket (RSS after minus before, over N; target under 100 KB) and `/api/health` p99 with the
sockets open against the same server with none (target: unchanged, here at most 1.5x or 5 ms
more). Health is probed from a process of its own. Not a test: it asserts nothing.

    .venv/bin/python bench/idle_sockets.py [--sockets 1000]
"""

import argparse
import asyncio
import resource
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

BATCH = 50  # sockets opened at once


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def chat_session() -> str:
    from django.contrib.auth import get_user_model

    from chat.models import ChatSession

    return str(ChatSession.objects.create(owner=get_user_model().objects.get(username="bench")).id)


async def run(args, url: str, token: str, session_id: str, server) -> None:
    load_before = machine_load()
    headers = {"Authorization": f"Bearer {token}"}
    ws_url = url.replace("http://", "ws://") + f"/ws/chat/{session_id}/"
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        # Warm up: one socket through the whole path, so the first one's imports and caches are
        # not counted as the sockets' memory.
        async with http.ws_connect(ws_url, headers=headers):
            pass
        async with HealthProbeProcess(url, count=args.probes) as idle_probe:
            pass
        await asyncio.sleep(1)
        before = rss_kb(server.pid)
        sockets = []
        for start in range(0, args.sockets, BATCH):
            count = min(BATCH, args.sockets - start)
            sockets += await asyncio.gather(*(http.ws_connect(ws_url, headers=headers, heartbeat=None)
                                              for _ in range(count)))
        await asyncio.sleep(2)  # let the server settle (allocator, buffers)
        after = rss_kb(server.pid)
        async with HealthProbeProcess(url, count=args.probes) as loaded_probe:
            pass
        open_at_end = sum(1 for ws in sockets if not ws.closed)
        await asyncio.gather(*(ws.close() for ws in sockets))

    per_socket = (after - before) / args.sockets
    idle_p99 = percentile(idle_probe.latencies, 99)
    loaded_p99 = percentile(loaded_probe.latencies, 99)
    failed = len(idle_probe.failures) + len(loaded_probe.failures) + (args.sockets - open_at_end)
    print(load_line(load_before))
    print(f"{args.sockets} idle chat sockets (Bearer): server RSS {before / 1024:.1f} MB before, "
          f"{after / 1024:.1f} MB with them open = {per_socket:.1f} KB per socket (target < 100 KB); "
          f"{open_at_end} still open at the end")
    print(f"GET /api/health p99: {idle_p99:.2f} ms with no sockets, {loaded_p99:.2f} ms with {args.sockets} "
          f"({len(loaded_probe.latencies)} probes, {failed} failures)")
    record(f"server memory per idle WebSocket ({args.sockets})", round(per_socket, 1), "KB", target="< 100 KB",
           passed=per_socket < 100)
    record(f"/api/health p99 with {args.sockets} idle sockets", loaded_p99, "ms", baseline=idle_p99,
           baseline_name="no sockets", target="<= 1.5x or +5 ms",
           passed=loaded_p99 <= max(1.5 * idle_p99, idle_p99 + 5))
    record(f"idle sockets still open, probes failed ({args.sockets} sockets)", failed, "", target="0",
           passed=failed == 0)


def raise_fd_limit(sockets: int) -> None:
    """Each socket is a descriptor here and one in the server (which inherits this limit): raise
    the soft limit to the hard one when the default (often 1,024) is too low."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = sockets + 1000
    if soft != resource.RLIM_INFINITY and soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            raise SystemExit(f"{sockets} sockets need {need} file descriptors; the hard limit is {hard} (ulimit -Hn)")
        resource.setrlimit(resource.RLIMIT_NOFILE, (need if hard == resource.RLIM_INFINITY else hard, hard))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sockets", type=int, default=200 if quick() else 1000)
    parser.add_argument("--probes", type=int, default=100 if quick() else 300)
    args = parser.parse_args()
    raise_fd_limit(args.sockets)
    with tempfile.TemporaryDirectory(prefix="autobot-bench-ws-") as folder:
        setup_django(folder)
        token = bench_token()
        session_id = chat_session()
        port = free_port()
        with uvicorn_server(folder, port) as server:
            asyncio.run(run(args, f"http://127.0.0.1:{port}", token, session_id, server))


if __name__ == "__main__":
    main()
