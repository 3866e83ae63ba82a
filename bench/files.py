"""Files benchmark: streaming upload/download speed and memory, against a raw disk write.

In one run, on the same filesystem:
1. baseline: a raw ``dd``-style sequential write of SIZE bytes (1 MiB blocks, then fsync);
2. upload the same number of bytes as one multipart file to ``POST /api/files/upload`` over
   loopback (the client streams the body; nothing is held in memory), sampling the server
   process's RSS and timing ``GET /api/health`` continuously while it runs;
3. download it back with ``GET /api/files/download`` (chunks read and discarded).

Targets (issue 6): upload ≥ 25 % of the raw write, download ≥ 50 %, server peak RSS growth
during the upload < 50 MB, health p99 during the upload < 50 ms.

Runs a real uvicorn server (as ``make run`` does) on a throw-away SQLite database in a
temporary folder; ``autobot/asgi.py`` streams upload bodies to disk (see ``files/asgi.py``).
Not a test: it asserts nothing.
    .venv/bin/python bench/files.py [--mb 200]
"""

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp
from common import (  # first: it puts the project root on sys.path
    bench_token,
    free_port,
    percentile_high,
    probe_health,
    setup_django,
    uvicorn_server,
)
from report import record

BLOCK = 1024 * 1024
BOUNDARY = "----autobotBenchBoundary"
# The upload body around the file's bytes: an empty "path" field, then the file "big.bin".
BODY_HEAD = (
    f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="path"\r\n\r\n\r\n'
    f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; filename="big.bin"\r\n'
    "Content-Type: application/octet-stream\r\n\r\n"
).encode()
BODY_TAIL = f"\r\n--{BOUNDARY}--\r\n".encode()


def raw_write(path: Path, size: int) -> float:
    """Seconds for a sequential write of ``size`` bytes plus fsync (the disk's baseline)."""
    block = os.urandom(BLOCK)
    started = time.perf_counter()
    with open(path, "wb") as handle:
        for _ in range(size // BLOCK):
            handle.write(block)
        handle.flush()
        os.fsync(handle.fileno())
    elapsed = time.perf_counter() - started
    path.unlink()
    return elapsed


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


async def body(size: int):
    yield BODY_HEAD
    block = os.urandom(BLOCK)
    for _ in range(size // BLOCK):
        yield block
    yield BODY_TAIL


def body_length(size: int) -> int:
    return len(BODY_HEAD) + size + len(BODY_TAIL)


async def sample_rss(pid: int, stop: asyncio.Event, peaks: list[int]) -> None:
    while not stop.is_set():
        peaks.append(rss_bytes(pid))
        try:
            await asyncio.wait_for(stop.wait(), 0.02)
        except TimeoutError:
            pass


async def run(folder: str, token: str, size: int, url: str, server) -> None:
    files_root = Path(folder) / "files"
    (files_root / "bench").mkdir(parents=True)
    async with aiohttp.ClientSession() as probes:
        headers = {"Authorization": f"Bearer {token}"}
        mb = size / 1e6

        raw_seconds = await asyncio.to_thread(raw_write, files_root / "bench" / "raw.bin", size)
        raw_rate = mb / raw_seconds

        # Health latency with no load, for comparison.
        idle: list[float] = []
        stop_idle = asyncio.Event()
        probe = asyncio.create_task(probe_health(probes, url, stop_idle, idle))
        await asyncio.sleep(1.0)
        stop_idle.set()
        await probe

        pid = server.pid
        base_rss = rss_bytes(pid)
        stop = asyncio.Event()
        rss: list[int] = []
        latencies: list[float] = []
        watchers = [
            asyncio.create_task(sample_rss(pid, stop, rss)),
            asyncio.create_task(probe_health(probes, url, stop, latencies)),
        ]
        timeout = aiohttp.ClientTimeout(total=None)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            started = time.perf_counter()
            async with session.post(
                f"{url}/api/files/upload",
                data=body(size),
                headers={
                    **headers,
                    "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
                    "Content-Length": str(body_length(size)),
                },
            ) as response:
                result = await response.json()
            upload_seconds = time.perf_counter() - started
            stop.set()
            await asyncio.gather(*watchers)
            if response.status != 201:
                raise RuntimeError(f"upload failed: {response.status} {result}")

            started = time.perf_counter()
            received = 0
            async with session.get(
                f"{url}/api/files/download", params={"path": "big.bin"}, headers=headers
            ) as response:
                async for chunk in response.content.iter_chunked(BLOCK):
                    received += len(chunk)
            download_seconds = time.perf_counter() - started
        if received != size:
            raise RuntimeError(f"downloaded {received} bytes, expected {size}")

        up_rate, down_rate = mb / upload_seconds, mb / download_seconds
        growth = (max(rss) - base_rss) / 1e6 if rss else float("nan")
        print(f"files benchmark — {mb:.0f} MB over loopback, server: uvicorn")
        print(f"  raw sequential write (1 MiB blocks + fsync): {raw_rate:8.1f} MB/s")
        print(
            f"  upload   (multipart POST):                   {up_rate:8.1f} MB/s"
            f"  = {up_rate / raw_rate:5.0%} of raw  (target ≥ 25%)"
        )
        print(
            f"  download (streamed):                          {down_rate:8.1f} MB/s"
            f"  = {down_rate / raw_rate:5.0%} of raw  (target ≥ 50%)"
        )
        print(
            f"  server RSS: {base_rss / 1e6:.1f} MB before, peak growth during upload {growth:.1f} MB  (target < 50 MB)"
        )
        print(
            f"  /api/health idle:        p50 {percentile_high(idle, 50):6.1f} ms  "
            f"p99 {percentile_high(idle, 99):6.1f} ms  (n={len(idle)})"
        )
        print(
            f"  /api/health during upload: p50 {percentile_high(latencies, 50):6.1f} ms  "
            f"p99 {percentile_high(latencies, 99):6.1f} ms"
            f"  max {max(latencies, default=float('nan')):6.1f} ms  (n={len(latencies)}, target p99 < 50 ms)"
        )
        if latencies:
            print(f"  (mean during upload {statistics.fmean(latencies):.1f} ms)")
        record(f"upload {mb:.0f} MB (multipart)", up_rate, "MB/s", baseline=raw_rate, baseline_name="raw disk write",
               target=">= 25% of raw", passed=up_rate >= 0.25 * raw_rate)
        record(f"download {mb:.0f} MB (streamed)", down_rate, "MB/s", baseline=raw_rate,
               baseline_name="raw disk write", target=">= 50% of raw", passed=down_rate >= 0.5 * raw_rate)
        record("server RSS growth during upload", growth, "MB", target="< 50 MB", passed=growth < 50)
        p99 = percentile_high(latencies, 99)
        record("/api/health p99 during upload", p99, "ms", baseline=percentile_high(idle, 99), baseline_name="idle",
               target="< 50 ms", passed=p99 < 50)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=int, default=200, help="size of the file in MiB")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="autobot-bench-files-") as folder:
        # Unlimited upload size and quota: the benchmark measures speed, not the limits.
        setup_django(folder, AUTOBOT_FILES_ROOT=str(Path(folder) / "files"), AUTOBOT_FILES_MAX_UPLOAD_BYTES="0",
                     AUTOBOT_FILES_USER_QUOTA_BYTES="0")
        token = bench_token()  # sync ORM: before the event loop starts
        port = free_port()
        with uvicorn_server(folder, port) as server:
            asyncio.run(run(folder, token, args.mb * BLOCK, f"http://127.0.0.1:{port}", server))


if __name__ == "__main__":
    main()
