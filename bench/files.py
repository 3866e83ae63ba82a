"""Files benchmark: streaming upload/download speed and memory, against a raw disk write.

In one run, on the same filesystem:
1. baseline: a raw ``dd``-style sequential write of SIZE bytes (1 MiB blocks, then fsync);
2. upload the same number of bytes as one multipart file to ``POST /api/files/upload`` over
   loopback (the client streams the body; nothing is held in memory), sampling the server
   process's RSS and timing ``GET /api/health`` continuously while it runs;
3. download it back with ``GET /api/files/download`` (chunks read and discarded).

Targets (issue 6): upload ≥ 25 % of the raw write, download ≥ 50 %, server peak RSS growth
during the upload < 50 MB, health p99 during the upload < 50 ms.

Runs a real server process on a throw-away SQLite database in a temporary folder:
``--server uvicorn`` (default) serves ``files.asgi:streaming_application`` (bodies stream to
disk); ``uvicorn-plain`` and ``daphne`` serve ``autobot.asgi:application`` as it is wired today
(Django buffers the body first; daphne/Twisted additionally queues it all in memory).
Not a test: it asserts nothing.
    .venv/bin/python bench/files.py [--mb 200] [--server uvicorn|uvicorn-plain|daphne]
"""

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BLOCK = 1024 * 1024
BOUNDARY = "----autobotBenchBoundary"


def setup_database(folder: str) -> str:
    """Migrate a fresh database and return an API token for a bench user."""
    os.environ["DATABASE_URL"] = f"sqlite:///{folder}/bench.sqlite3"
    os.environ["AUTOBOT_VAR_DIR"] = folder
    os.environ["AUTOBOT_FILES_ROOT"] = str(Path(folder) / "files")
    os.environ["AUTOBOT_FILES_MAX_UPLOAD_BYTES"] = "0"
    os.environ["AUTOBOT_FILES_USER_QUOTA_BYTES"] = "0"
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "autobot.settings")
    os.environ.setdefault("AUTOBOT_LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from autobot.auth import new_raw_token
    from autobot.models import ApiToken

    call_command("migrate", verbosity=0, interactive=False)
    user = get_user_model().objects.create_user("bench", password="bench-password-123")
    raw = new_raw_token()
    ApiToken.objects.create(user=user, prefix=raw[:12], token_hash=ApiToken.hash(raw))
    return raw


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(folder: str, port: int, kind: str) -> subprocess.Popen:
    log = open(Path(folder) / "server.log", "wb")  # noqa: SIM115 — lives as long as the server
    if kind == "daphne":  # the project's app as autobot/asgi.py wires it
        cmd = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "autobot.asgi:application"]
    else:
        app = ["--factory", "files.asgi:streaming_application"] if kind == "uvicorn" else ["autobot.asgi:application"]
        cmd = [
            sys.executable,
            "-m",
            "uvicorn",
            *app,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
        ]
    return subprocess.Popen(cmd, cwd=ROOT, env={**os.environ}, stdout=log, stderr=subprocess.STDOUT)


async def wait_ready(url: str, proc: subprocess.Popen) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(300):
            if proc.poll() is not None:
                raise RuntimeError("the server exited; see server.log")
            try:
                async with session.get(f"{url}/api/health") as response:
                    if response.status in (200, 503):
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("the server did not start")


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


def server_pid(proc: subprocess.Popen) -> int:
    return proc.pid


async def body(size: int):
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="path"\r\n\r\n\r\n'
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; filename="big.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    yield head
    block = os.urandom(BLOCK)
    for _ in range(size // BLOCK):
        yield block
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


def body_length(size: int) -> int:
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="path"\r\n\r\n\r\n'
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; filename="big.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    return len(head) + size + len(f"\r\n--{BOUNDARY}--\r\n".encode())


async def sample_rss(pid: int, stop: asyncio.Event, peaks: list[int]) -> None:
    while not stop.is_set():
        peaks.append(rss_bytes(pid))
        try:
            await asyncio.wait_for(stop.wait(), 0.02)
        except TimeoutError:
            pass


async def probe_health(url: str, stop: asyncio.Event, latencies: list[float]) -> None:
    async with aiohttp.ClientSession() as session:
        while not stop.is_set():
            started = time.perf_counter()
            async with session.get(f"{url}/api/health") as response:
                await response.read()
            latencies.append((time.perf_counter() - started) * 1000)
            try:
                await asyncio.wait_for(stop.wait(), 0.01)
            except TimeoutError:
                pass


def p(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(folder: str, token: str, size: int, kind: str) -> None:
    files_root = Path(folder) / "files"
    (files_root / "bench").mkdir(parents=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_server(folder, port, kind)
    try:
        await wait_ready(url, proc)
        headers = {"Authorization": f"Bearer {token}"}
        mb = size / 1e6

        raw_seconds = await asyncio.to_thread(raw_write, files_root / "bench" / "raw.bin", size)
        raw_rate = mb / raw_seconds

        # Health latency with no load, for comparison.
        idle: list[float] = []
        stop_idle = asyncio.Event()
        probe = asyncio.create_task(probe_health(url, stop_idle, idle))
        await asyncio.sleep(1.0)
        stop_idle.set()
        await probe

        pid = server_pid(proc)
        base_rss = rss_bytes(pid)
        stop = asyncio.Event()
        rss: list[int] = []
        latencies: list[float] = []
        watchers = [
            asyncio.create_task(sample_rss(pid, stop, rss)),
            asyncio.create_task(probe_health(url, stop, latencies)),
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
        print(f"files benchmark — {mb:.0f} MB over loopback, server: {kind}")
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
        print(f"  /api/health idle:        p50 {p(idle, 0.5):6.1f} ms  p99 {p(idle, 0.99):6.1f} ms  (n={len(idle)})")
        print(
            f"  /api/health during upload: p50 {p(latencies, 0.5):6.1f} ms  p99 {p(latencies, 0.99):6.1f} ms"
            f"  max {max(latencies, default=float('nan')):6.1f} ms  (n={len(latencies)}, target p99 < 50 ms)"
        )
        if latencies:
            print(f"  (mean during upload {statistics.fmean(latencies):.1f} ms)")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=int, default=200, help="size of the file in MiB")
    parser.add_argument("--server", choices=["uvicorn", "uvicorn-plain", "daphne"], default="uvicorn")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="autobot-bench-files-") as folder:
        token = setup_database(folder)  # sync ORM: before the event loop starts
        asyncio.run(run(folder, token, args.mb * BLOCK, args.server))


if __name__ == "__main__":
    main()
