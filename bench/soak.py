"""A bounded soak of the scale-out set-up (issue 11): mixed traffic through nginx to two workers,
one worker killed and restarted, the Redis restarted, and what was lost counted.

Two uvicorn workers (autobot/testing.py) behind nginx with the project's site config
(autobot/testbed.py), a Redis of its own on another port, PostgreSQL when it answers on
127.0.0.1:5432 (a throw-away database, dropped at the end) and SQLite otherwise, the fake LLM
from tests/chat/fake_llm.py. Virtual users loop over API calls, terminal commands over
WebSockets, streamed chat answers (SSE) and uploads with ranged downloads. A third of the way in
worker 0 is killed with SIGKILL and started again; two thirds in, Redis is restarted.

It prints requests sent and failed (5xx or no answer; those during a fault window apart), sockets
dropped and recovered, audit events the successful operations imply against those written, and
whether the audit chain verifies. Loopback only, bounded in time; it asserts nothing.

    .venv/bin/python bench/soak.py [--seconds 300] [--users 12]
"""

import argparse
import asyncio
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import aiohttp
from common import ROOT, ServerProcess  # first: it puts the project root on sys.path
from report import record

from autobot.testbed import NginxProxy, RedisServer
from tests.chat.fake_llm import FakeLLMThread

PG = "postgres://postgres@127.0.0.1:5432"
OPERATION_SECONDS = 60  # one operation (a few requests, a command, an answer) at most


class Stats:
    def __init__(self) -> None:
        self.counts: Counter = Counter()
        self.fault = ""  # the fault in progress, if any
        self.audited = 0  # audit events the successful operations imply (at least)

    def ok(self, kind: str, audited: int = 0) -> None:
        self.counts[f"{kind} ok"] += 1
        self.audited += audited

    def failed(self, kind: str, why: str) -> None:
        where = f" during {self.fault}" if self.fault else ""
        self.counts[f"{kind} failed{where}"] += 1
        self.counts[f"  why: {why}{where}"] += 1


def database() -> tuple[str, str | None]:
    """(DATABASE_URL, PostgreSQL database to drop) — PostgreSQL when it answers, else SQLite."""
    name = f"autobot_soak_{os.getpid()}"
    made = subprocess.run(["psql", f"{PG}/postgres", "-qc", f"CREATE DATABASE {name}"], capture_output=True)
    if made.returncode == 0:
        return f"{PG}/{name}", name
    folder = tempfile.mkdtemp(prefix="autobot-soak-db-")
    return f"sqlite:///{folder}/soak.sqlite3", None


def manage(env: dict, *args: str) -> str:
    result = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=300)
    if result.returncode:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
    return result.stdout


def audit_count(env: dict) -> int:
    out = manage(env, "shell", "-c", "from autobot.models import AuditEvent; print(AuditEvent.objects.count())")
    return int(out.strip().splitlines()[-1])


async def api_calls(http, stats: Stats) -> None:
    for path in ("/api/me", "/api/chat/sessions", "/api/knowledge/search?q=soak", "/api/files/?path="):
        try:
            async with http.get(path) as response:
                await response.read()
                if response.status < 500:
                    stats.ok("api")
                else:
                    stats.failed("api", f"{path} {response.status}")
        except (aiohttp.ClientError, ValueError) as exc:
            stats.failed("api", type(exc).__name__)


async def files(http, stats: Stats, user: int) -> None:
    name = f"soak-{user}-{uuid.uuid4().hex[:6]}.bin"
    payload = os.urandom(64 * 1024)
    form = aiohttp.FormData()
    form.add_field("path", "")
    form.add_field("files", payload, filename=name, content_type="application/octet-stream")
    try:
        async with http.post("/api/files/upload", data=form) as response:
            await response.read()
            if response.status >= 500:
                return stats.failed("upload", str(response.status))
        async with http.get("/api/files/download", params={"path": name}, headers={"Range": "bytes=0-99"}) as got:
            body = await got.read()
            if got.status == 206 and body == payload[:100]:
                stats.ok("upload+download", audited=1)
            else:
                stats.failed("upload+download", f"download {got.status}")
    except (aiohttp.ClientError, ValueError) as exc:
        stats.failed("upload+download", type(exc).__name__)


async def terminal(http, stats: Stats, origin: str) -> None:
    try:
        async with http.post("/api/terminal/sessions", json={}) as response:
            if response.status != 201:
                await response.read()
                return stats.failed("terminal", f"open {response.status}")
            session = await response.json(content_type=None)
        marker = uuid.uuid4().hex[:8]
        for attempt in (1, 2):  # a socket on a killed worker: reconnect once, as the page does
            try:
                async with http.ws_connect(f"/ws/terminal/{session['id']}/", origin=origin) as ws:
                    await ws.send_json({"type": "input", "data": f"echo {marker}-$((40+2))\r"})
                    seen, error = "", ""
                    async with asyncio.timeout(20):
                        while f"{marker}-42" not in seen:
                            message = await ws.receive()
                            if message.type != aiohttp.WSMsgType.TEXT:  # why: the close code, the error
                                raise ConnectionError(f"socket closed ({message.data}{error})")
                            frame = json.loads(message.data)
                            seen += frame.get("data", "") if frame["type"] == "output" else ""
                            error = f" {frame.get('code')}" if frame["type"] == "error" else error
                if attempt == 2:
                    stats.counts["sockets recovered"] += 1
                break
            except (ConnectionError, TimeoutError, aiohttp.ClientError) as exc:
                stats.counts["sockets dropped"] += 1
                why = f"{type(exc).__name__} {exc}" if isinstance(exc, ConnectionError) else type(exc).__name__
                if attempt == 2:
                    return stats.failed("terminal", why)
        async with http.delete(f"/api/terminal/sessions/{session['id']}") as response:
            await response.read()
        stats.ok("terminal", audited=3)  # opened, the command, closed
    except (aiohttp.ClientError, ValueError) as exc:
        stats.failed("terminal", type(exc).__name__)


async def chat(http, stats: Stats, session_id: str) -> None:
    try:
        async with http.post(f"/api/chat/sessions/{session_id}/messages",
                             json={"content": "soak", "use_knowledge": False},
                             headers={"Accept": "text/event-stream"}) as response:
            text = await response.text()
            if response.status == 409:  # the previous answer (its worker killed) still counts as running
                return stats.failed("chat", "409 busy")
            if response.status >= 500 or "event: done" not in text:
                return stats.failed("chat", f"{response.status} without done")
            stats.ok("chat", audited=1)
    except (aiohttp.ClientError, ValueError) as exc:
        stats.failed("chat", type(exc).__name__)


async def user_loop(address: str, token: str, user: int, end: float, stats: Stats) -> None:
    origin = f"http://{address}"
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(origin, headers=headers) as http:
        for _ in range(20):  # a worker may be down right now: nginx answers 502, try again
            async with http.post("/api/chat/sessions", json={}) as response:
                if response.status == 201:
                    chat_session = (await response.json(content_type=None))["id"]
                    break
                await response.read()
            await asyncio.sleep(0.5)
        else:
            return stats.failed("chat session", "no session")
        while time.monotonic() < end:
            choice = random.random()
            kind, operation = (("api", api_calls(http, stats)) if choice < 0.5
                               else ("terminal", terminal(http, stats, origin)) if choice < 0.7
                               else ("chat", chat(http, stats, chat_session)) if choice < 0.85
                               else ("upload+download", files(http, stats, user)))
            try:
                # Bounded: an answer that never comes is a failure, not a soak that never ends.
                async with asyncio.timeout(OPERATION_SECONDS):
                    await operation
            except TimeoutError:
                stats.failed(kind, f"no answer within {OPERATION_SECONDS} s")


async def faults(workers: list[ServerProcess], redis: RedisServer, seconds: float, stats: Stats) -> None:
    await asyncio.sleep(seconds / 3)
    stats.fault = "the worker kill"
    await asyncio.to_thread(workers[0].kill)
    await asyncio.sleep(2)
    await asyncio.to_thread(workers[0].start)
    await asyncio.sleep(5)
    stats.fault = ""
    await asyncio.sleep(seconds / 3 - 7)
    stats.fault = "the Redis restart"
    await asyncio.to_thread(redis.restart)
    await asyncio.sleep(8)
    stats.fault = ""


async def soak(args, address: str, token: str, workers, redis) -> Stats:
    stats = Stats()
    end = time.monotonic() + args.seconds
    await asyncio.gather(faults(workers, redis, args.seconds, stats),
                         *(user_loop(address, token, user, end, stats) for user in range(args.users)))
    return stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument("--users", type=int, default=12)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="autobot-soak-"))
    database_url, pg_name = database()
    redis = RedisServer().start()
    workers: list[ServerProcess] = []
    nginx = None
    failed = True  # until the report says otherwise: keep the logs
    try:
        with FakeLLMThread(tokens=[f"w{i} " for i in range(20)], delay=0.02) as llm:
            env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis.url, "AUTOBOT_VAR_DIR": str(folder),
                   "AUTOBOT_SECRET_KEY": uuid.uuid4().hex * 2, "AUTOBOT_LLM_PROVIDER": "ollama",
                   "AUTOBOT_LLM_BASE_URL": llm.url, "AUTOBOT_LLM_MODEL": "fake-small",
                   "AUTOBOT_TERMINAL_MAX_SESSIONS_PER_USER": "50", "AUTOBOT_ADMIN_PASSWORD": uuid.uuid4().hex}
            manage(env, "migrate", "--noinput")
            manage(env, "ensure_admin")
            token = manage(env, "create_api_token", "admin").strip().splitlines()[-1]
            keep = {k: env[k] for k in env if k.startswith(("AUTOBOT_", "DATABASE_URL", "REDIS_URL"))}
            workers = [ServerProcess(env=keep, var_dir=folder, name=f"worker-{i}").start() for i in range(2)]
            nginx = NginxProxy(folder / "nginx", [w.address for w in workers]).start()
            before = audit_count(env)
            started = time.monotonic()
            stats = asyncio.run(soak(args, nginx.address, token, workers, redis))
            took = time.monotonic() - started
            written = audit_count(env) - before
            chain = subprocess.run([sys.executable, "manage.py", "verify_audit"], cwd=ROOT, env=env,
                                   capture_output=True, text=True, timeout=600)
        failed = report(stats, took, written, chain.returncode == 0)
    finally:
        if nginx is not None:
            nginx.stop()
        for worker in workers:
            worker.stop()
        redis.stop()
        if failed:
            print(f"the workers' and nginx's logs are kept in {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
        if pg_name:
            subprocess.run(["psql", f"{PG}/postgres", "-qc", f"DROP DATABASE IF EXISTS {pg_name} WITH (FORCE)"],
                           capture_output=True)


def report(stats: Stats, took: float, written: int, chain_ok: bool) -> bool:
    """Print and record the figures; whether anything failed outside the fault windows or the
    audit fell short."""
    sent = sum(v for k, v in stats.counts.items() if k.endswith(" ok") or " failed" in k and not k.startswith(" "))
    failed = sum(v for k, v in stats.counts.items() if " failed" in k and not k.startswith(" "))
    outside = sum(v for k, v in stats.counts.items() if k.endswith(" failed"))
    print(f"soak: {took:.0f} s, operations {sent}, failed {failed} ({outside} outside the fault windows)")
    for key in sorted(stats.counts):
        print(f"  {key:60} {stats.counts[key]:7}")
    print(f"  audit events implied by successful operations (at least) {stats.audited:7}")
    print(f"  audit events written                                      {written:7}")
    print(f"  audit chain verifies                                      {'yes' if chain_ok else 'NO'}")
    record("soak: operations failed outside the fault windows", outside, "ops", target="0", passed=outside == 0)
    ratio = written / max(stats.audited, 1)
    record("soak: audit events written / implied", round(ratio, 2), "x", target=">= 1 and chain valid",
           passed=ratio >= 1 and chain_ok)
    return outside > 0 or ratio < 1 or not chain_ok


if __name__ == "__main__":
    main()
