"""Simulated users (issue 15, target 5): 100 users running a scripted mix against one worker for a
bounded time, p95 per kind of action and failures.

Each user has an account of its own, logged in twice as a browser and a script would be: a
session cookie for the pages, an API token (Bearer) for the API and the sockets. Each loops
until the time is up: wait a think time (uniform, 0.5x-1.5x of ``--think`` seconds), then one
action, drawn with these weights:

| kind | what | weight |
|---|---|---|
| page | GET one of /, /chat/, /knowledge/, /files/, /terminal/ (session cookie) | 25 |
| api | GET one of /api/chat/sessions, /api/knowledge/entries, /api/files/?path= | 25 |
| search | GET /api/knowledge/search?q=<a word from the seeded notes> | 15 |
| chat | POST a message (SSE); the time to the first token, the answer must complete | 15 |
| terminal | `echo` over the user's terminal socket; the time until its output comes back | 15 |
| upload | POST a 16 KiB file (multipart) | 5 |

The users are not staff; they hold the ``terminal.use_terminal`` permission, so their terminals
are RESTRICTED ones. The server is one uvicorn worker (as ``make run``) on a throw-away SQLite database, with the
fake LLM of tests/chat/fake_llm.py on loopback (5 tokens, 20 ms apart). The baseline, in the
same run: the same users at the same pace asking stock ninja's ``GET /api/aping``
(bench/stock_app.py under the same uvicorn). Target: p95 under 200 ms for every kind, no
failures (an error status, a broken stream or socket, or no answer within 10 s). Not a test:
it asserts nothing.

    .venv/bin/python bench/users.py [--users 100] [--seconds 60] [--think 1.0]
"""

import argparse
import asyncio
import json
import os
import random
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import aiohttp
from common import (  # first: it puts the project root on sys.path
    free_port,
    load_line,
    machine_load,
    percentile,
    setup_django,
    stock_server,
    uvicorn_server,
)
from report import quick, record

from tests.chat.fake_llm import FakeLLMThread

TIMEOUT = 10  # seconds an action may take before it counts as failed
TARGET_MS = 200
PAGES = ("/", "/chat/", "/knowledge/", "/files/", "/terminal/")
API = ("/api/chat/sessions", "/api/knowledge/entries", "/api/files/?path=")
WORDS = ("deploy", "backup", "network", "printer", "password", "kernel", "invoice", "mailbox", "firewall", "python")
MIX = {"page": 25, "api": 25, "search": 15, "chat": 15, "terminal": 15, "upload": 5}
UPLOAD = os.urandom(16 * 1024)


class User:
    def __init__(self, n: int, token: str, cookie: str, chat_session: str) -> None:
        self.n, self.token, self.cookie, self.chat_session = n, token, cookie, chat_session
        self.terminal: aiohttp.ClientWebSocketResponse | None = None
        self.rest: asyncio.Future | None = None  # the rest of the last chat answer, being read
        self.commands = 0
        self.reader: asyncio.Future | None = None  # reads the terminal socket all along
        self.output = ""  # the terminal's latest output
        self.output_ready = asyncio.Event()
        self.output_closed = ""  # why the socket ended, once it has


def seed(users: int) -> list[User]:
    """``users`` accounts, each with a token, a browser session, a chat session and two notes."""
    from asgiref.sync import async_to_sync
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
    from django.contrib.auth.models import Permission
    from django.contrib.sessions.backends.db import SessionStore

    from autobot.auth import token_create
    from chat.models import ChatSession
    from knowledge.services import entry_create

    # The terminal is for staff or holders of this permission; ordinary users with it get
    # RESTRICTED sessions, as a team's non-admin members would.
    use_terminal = Permission.objects.get(codename="use_terminal", content_type__app_label="terminal")
    made = []
    rng = random.Random(15)
    for n in range(users):
        user = get_user_model().objects.create_user(f"user{n}", password=None)  # no hashing: never logs in
        user.user_permissions.add(use_terminal)
        _token, raw = async_to_sync(token_create)(actor=None, user=user, name="bench", via="bench")
        session = SessionStore()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.create()
        chat = ChatSession.objects.create(owner=user, title=f"user {n}")
        for k in range(2):
            words = " ".join(rng.choice(WORDS) for _ in range(30))
            async_to_sync(entry_create)(user=user, title=f"note {n}-{k}", content=f"Note {n}-{k}: {words}",
                                        tags=["users"])
        made.append(User(n, raw, session.session_key, str(chat.id)))
    return made


class Stats:
    def __init__(self) -> None:
        self.ms: dict[str, list[float]] = defaultdict(list)
        self.failures: dict[str, list[str]] = defaultdict(list)

    def failed(self, kind: str, why: str) -> None:
        self.failures[kind].append(why)


async def _get(http, url: str, headers: dict) -> None:
    async with http.get(url, headers=headers, allow_redirects=False) as response:
        await response.read()
        if response.status != 200:
            raise RuntimeError(f"GET {url.split('/', 3)[-1]} {response.status}")


async def act(kind: str, user: User, http, url: str, rng: random.Random) -> None:
    """One action; raises on failure."""
    bearer = {"Authorization": f"Bearer {user.token}"}
    if kind == "page":
        await _get(http, url + rng.choice(PAGES), {"Cookie": f"sessionid={user.cookie}"})
    elif kind == "api":
        await _get(http, url + rng.choice(API), bearer)
    elif kind == "search":
        await _get(http, f"{url}/api/knowledge/search?q={rng.choice(WORDS)}", bearer)
    elif kind == "chat":
        await chat(http, url, user, bearer)
    elif kind == "terminal":
        await terminal(user)
    elif kind == "upload":
        form = aiohttp.FormData()
        form.add_field("path", "")
        form.add_field("overwrite", "true")
        form.add_field("files", UPLOAD, filename=f"upload-{rng.randrange(5)}.bin",
                       content_type="application/octet-stream")
        async with http.post(f"{url}/api/files/upload", data=form, headers=bearer) as response:
            await response.read()
            if response.status != 201:
                raise RuntimeError(f"upload {response.status}")


async def chat(http, url: str, user: User, bearer: dict) -> None:
    """Returns when the first token arrives (the time measured); the rest is read in the background."""
    response = await http.post(f"{url}/api/chat/sessions/{user.chat_session}/messages",
                               json={"content": "hello", "use_knowledge": False},
                               headers={**bearer, "Accept": "text/event-stream"})
    if response.status != 200:
        text = await response.text()
        response.release()
        raise RuntimeError(f"chat {response.status} {text[:80]}")
    async for line in response.content:
        if line.startswith(b"event: token"):
            break
    else:
        raise RuntimeError("chat stream ended without a token")
    user.rest = asyncio.ensure_future(_finish_stream(response))


async def _finish_stream(response) -> None:
    async with response:
        async for line in response.content:
            if line.startswith(b"data: ") and b'"type": "done"' in line:
                if b'"status": "complete"' not in line:
                    raise RuntimeError(f"chat answer not complete: {line[:120]!r}")
                return
    raise RuntimeError("chat stream ended without done")


async def open_terminal(http, url: str, user: User) -> None:
    async with http.post(f"{url}/api/terminal/sessions", json={"cols": 80, "rows": 24},
                         headers={"Authorization": f"Bearer {user.token}"}) as response:
        body = await response.json(content_type=None)
        if response.status != 201:
            raise RuntimeError(f"terminal session {response.status}: {body}")
    user.terminal = await http.ws_connect(f"{url.replace('http', 'ws')}/ws/terminal/{body['id']}/",
                                          headers={"Authorization": f"Bearer {user.token}"}, origin=url)
    # Read all the time, as a browser does: it answers the server's pings (uvicorn closes a
    # socket whose pong is 20 s late) and keeps the output flowing.
    user.reader = asyncio.ensure_future(read_terminal(user))
    await terminal(user)  # the first command waits for the shell to start


async def read_terminal(user: User) -> None:
    while True:
        message = await user.terminal.receive()
        if message.type != aiohttp.WSMsgType.TEXT:
            user.output_closed = f"terminal socket closed ({message.type.name} {message.data} {message.extra})"
            user.output_ready.set()
            return
        frame = json.loads(message.data)
        if frame["type"] == "output":
            user.output = user.output[-200:] + frame["data"]
            user.output_ready.set()
        elif frame["type"] in ("error", "exit", "blocked"):
            user.output_closed = f"terminal {frame}"
            user.output_ready.set()


async def terminal(user: User) -> None:
    """``echo`` a marker the typed line does not contain (the quotes split it) and wait for it."""
    user.commands += 1
    marker = f"ok-{user.n}-{user.commands}"
    user.output = ""
    await user.terminal.send_json({"type": "input", "data": f'echo o""k-{user.n}-{user.commands}\r'})
    while marker not in user.output:
        if user.output_closed:
            raise RuntimeError(user.output_closed)
        user.output_ready.clear()
        await user.output_ready.wait()


async def user_loop(user: User, http, url: str, end: float, think: float, stats: Stats, kinds=None) -> None:
    rng = random.Random(user.n)
    names, weights = zip(*(kinds or MIX).items(), strict=True)
    await asyncio.sleep(rng.uniform(0, think))  # users arrive spread over one think time
    while time.monotonic() < end:
        kind = rng.choices(names, weights)[0]
        if kind == "chat":
            await finish_chat(user, stats)  # the previous answer must be done (or a 409), not timed
        started = time.perf_counter()
        try:
            async with asyncio.timeout(TIMEOUT):
                await act(kind, user, http, url, rng)
            stats.ms[kind].append((time.perf_counter() - started) * 1000)
        except Exception as exc:  # noqa: BLE001 - every failure is counted, with its reason
            stats.failed(kind, f"{type(exc).__name__}: {exc}"[:200])
        await asyncio.sleep(think * rng.uniform(0.5, 1.5))
    await finish_chat(user, stats)


async def finish_chat(user: User, stats: Stats) -> None:
    """Wait for the rest of the user's last answer (read after its first token was timed); a
    stream that breaks or ends without ``done`` is a chat failure."""
    rest, user.rest = user.rest, None
    if rest is None:
        return
    try:
        await asyncio.wait_for(rest, TIMEOUT)
    except Exception as exc:  # noqa: BLE001
        stats.failed("chat", f"{type(exc).__name__}: {exc}"[:200])


async def run_users(args, url: str, users: list[User]) -> Stats:
    stats = Stats()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                     timeout=aiohttp.ClientTimeout(total=None)) as http:
        for start in range(0, len(users), 20):  # 20 shells starting at once at most
            await asyncio.gather(*(open_terminal(http, url, user) for user in users[start:start + 20]))
        for user in users[:5]:  # warm each kind's path once, not timed
            for kind in MIX:
                await act(kind, user, http, url, random.Random(0))
        end = time.monotonic() + args.seconds
        await asyncio.gather(*(user_loop(user, http, url, end, args.think, stats) for user in users))
        await asyncio.gather(*(user.terminal.close() for user in users))
        for user in users:
            user.reader.cancel()
    return stats


async def run_stock(args, url: str, users: list[User]) -> Stats:
    """The same users at the same pace, all asking stock ninja's one endpoint."""
    stats = Stats()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                     timeout=aiohttp.ClientTimeout(total=None)) as http:
        await _get(http, f"{url}/api/aping", {})
        end = time.monotonic() + args.stock_seconds

        async def loop(user: User) -> None:
            rng = random.Random(user.n)
            await asyncio.sleep(rng.uniform(0, args.think))
            while time.monotonic() < end:
                started = time.perf_counter()
                try:
                    async with asyncio.timeout(TIMEOUT):
                        await _get(http, f"{url}/api/aping", {})
                    stats.ms["stock"].append((time.perf_counter() - started) * 1000)
                except Exception as exc:  # noqa: BLE001
                    stats.failed("stock", repr(exc))
                await asyncio.sleep(args.think * rng.uniform(0.5, 1.5))

        await asyncio.gather(*(loop(user) for user in users))
    return stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=15 if quick() else 60)
    parser.add_argument("--stock-seconds", type=float, default=8 if quick() else 20)
    parser.add_argument("--think", type=float, default=1.0, help="mean seconds between one user's actions")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="autobot-bench-users-") as folder, \
            FakeLLMThread(tokens=[f" w{i}" for i in range(5)], delay=0.02) as fake:
        setup_django(folder, AUTOBOT_FILES_ROOT=str(Path(folder) / "files"))
        seeded = time.monotonic()
        users = seed(args.users)
        print(f"{args.users} users seeded in {time.monotonic() - seeded:.1f} s")
        env = {"AUTOBOT_LLM_PROVIDER": "ollama", "AUTOBOT_LLM_BASE_URL": fake.url, "AUTOBOT_LLM_MODEL": "fake-small",
               "AUTOBOT_TERMINAL_RECORDINGS_DIR": f"{folder}/recordings"}
        load_before = machine_load()
        with stock_server(folder) as stock:
            baseline = asyncio.run(run_stock(args, stock.url, users))
        with uvicorn_server(folder, free_port(), env=env) as server:
            stats = asyncio.run(run_users(args, server.url, users))
    report(args, stats, baseline, load_before)


def report(args, stats: Stats, baseline: Stats, load_before: float) -> None:
    stock_p95 = percentile(baseline.ms["stock"], 95)
    total = sum(len(v) for v in stats.ms.values())
    failed = sum(len(v) for v in stats.failures.values()) + len(baseline.failures["stock"])
    print(load_line(load_before))
    print(f"{args.users} users for {args.seconds:.0f} s, think time {args.think:.1f} s: {total} actions "
          f"({total / args.seconds:.0f}/s), {failed} failed")
    print(f"  {'kind':10} {'count':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'failed':>7}")
    for kind in [*MIX, "stock"]:
        ms = (baseline if kind == "stock" else stats).ms[kind]
        fails = (baseline if kind == "stock" else stats).failures[kind]
        print(f"  {kind:10} {len(ms):6} {percentile(ms, 50):8.1f} {percentile(ms, 95):8.1f} "
              f"{percentile(ms, 99):8.1f} {len(fails):7}")
    for kind, why in stats.failures.items():
        for reason in sorted(set(why))[:5]:
            print(f"  {kind} failed: {reason}")
    for kind in MIX:
        p95 = percentile(stats.ms[kind], 95)
        record(f"{args.users} users: {kind} p95", p95, "ms", baseline=stock_p95, baseline_name="stock ninja, same pace",
               target=f"< {TARGET_MS} ms", passed=p95 < TARGET_MS)
    record(f"{args.users} users: failed actions (of {total})", failed, "", target="0", passed=failed == 0)


if __name__ == "__main__":
    main()
