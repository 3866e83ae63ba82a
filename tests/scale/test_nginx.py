"""Two workers behind nginx on PostgreSQL + Redis: a user's whole visit, with no stickiness.

nginx sends requests round robin, so consecutive calls alternate between the workers; sockets
land on either. Then the faults: a worker killed with SIGKILL mid-session, Redis restarted.
"""

import asyncio
import json
import re
import subprocess
import sys

import aiohttp
import pytest
from asgiref.sync import sync_to_async

from tests.agents.test_cluster import connect_agent, frame, serve_one
from tests.chat.fake_llm import FakeLLMThread
from tests.conftest import PASSWORD, make_token
from tests.scale.cluster import ROOT, running_cluster, worker_id
from tests.terminal.conftest import _grant

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True),
              pytest.mark.timeout(180)]

ANSWER = [f"word{i} " for i in range(40)]


@pytest.fixture(scope="module")
def llm():
    with FakeLLMThread(tokens=ANSWER, delay=0.1) as fake:
        yield fake


@pytest.fixture(scope="module")
def cluster(llm, django_db_setup, django_db_blocker, tmp_path_factory):
    extra = {"AUTOBOT_LLM_PROVIDER": "ollama", "AUTOBOT_LLM_BASE_URL": llm.url, "AUTOBOT_LLM_MODEL": "fake-small",
             "AUTOBOT_KNOWLEDGE_CRAWL_ALLOW_PRIVATE": "true"}
    with running_cluster(tmp_path_factory.mktemp("nginx-cluster"), extra_env=extra) as cluster:
        yield cluster


class Visitor:
    """A browser-like client through nginx: session cookie, CSRF header, same-origin sockets."""

    def __init__(self, address: str):
        self.address = address
        self.http = aiohttp.ClientSession(f"http://{address}", cookie_jar=aiohttp.CookieJar(unsafe=True))

    async def login(self, username: str) -> None:
        async with self.http.get("/accounts/login/") as page:
            html = await page.text()
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
        async with self.http.post("/accounts/login/", data={"username": username, "password": PASSWORD,
                                                            "csrfmiddlewaretoken": csrf},
                                  allow_redirects=False) as response:
            assert response.status == 302, await response.text()

    def _csrf(self) -> dict:
        token = next((c.value for c in self.http.cookie_jar if c.key == "csrftoken"), "")
        return {"X-CSRFToken": token}

    async def call(self, method: str, path: str, **kwargs) -> tuple[int, dict]:
        async with self.http.request(method, path, headers=self._csrf(), **kwargs) as response:
            body = await response.json(content_type=None) if response.content_type == "application/json" else {}
            return response.status, body

    async def socket(self, path: str):
        return await self.http.ws_connect(path, origin=f"http://{self.address}", heartbeat=None)

    async def close(self) -> None:
        await self.http.close()


@pytest.fixture
async def visitor(cluster, owner):
    await sync_to_async(_grant)(owner)
    client = Visitor(cluster.address)
    await client.login(owner.get_username())
    yield client
    await client.close()


async def read_until(ws, predicate, *, seconds=20) -> list[dict]:
    frames = []
    while True:
        try:
            message = await asyncio.wait_for(ws.receive(), timeout=seconds)
        except TimeoutError:
            raise AssertionError(f"no such frame in {seconds} s; frames: {frames[-5:]}") from None
        if True:
            if message.type != aiohttp.WSMsgType.TEXT:
                raise AssertionError(f"socket ended ({message.type}, {message.data}); frames: {frames[-5:]}")
            frame = json.loads(message.data)
            frames.append(frame)
            if predicate(frame, frames):
                return frames


def output_has(text):
    return lambda _frame, frames: text in "".join(f.get("data", "") for f in frames if f["type"] == "output")


async def test_pages_and_api_answer_on_both_workers(cluster, visitor):
    for _ in range(4):  # round robin: two on each worker
        async with visitor.http.get("/chat/") as page:
            assert page.status == 200
        status, me = await visitor.call("GET", "/api/me")
        assert status == 200 and me["username"] == "owner"


async def test_a_terminal_is_driven_from_both_workers(cluster, visitor):
    status, session = await visitor.call("POST", "/api/terminal/sessions", json={})
    assert status == 201, session
    ws = await visitor.socket(f"/ws/terminal/{session['id']}/")
    await read_until(ws, lambda f, _: f["type"] == "session")
    # REST input alternates between the workers; one of them does not own the PTY.
    for n in range(4):
        status, body = await visitor.call("POST", f"/api/terminal/sessions/{session['id']}/input",
                                          json={"text": f"echo rest-{n}-$((6*7))\r"})
        assert status in (200, 202, 204), body
        await read_until(ws, output_has(f"rest-{n}-42"))
    await ws.send_json({"type": "input", "data": "echo typed-$((40+2))\r"})
    await read_until(ws, output_has("typed-42"))
    await ws.close()
    # Reconnecting (nginx may pick the other worker): the recent output is replayed, typing works.
    for _ in range(2):
        ws = await visitor.socket(f"/ws/terminal/{session['id']}/")
        await read_until(ws, output_has("typed-42"))
        await ws.send_json({"type": "input", "data": "echo again-$((40+2))\r"})
        await read_until(ws, output_has("again-42"))
        await ws.close()
    status, _ = await visitor.call("DELETE", f"/api/terminal/sessions/{session['id']}")
    assert status in (200, 204)


async def test_a_chat_answer_resumes_on_another_worker(cluster, visitor):
    status, session = await visitor.call("POST", "/api/chat/sessions", json={})
    assert status in (200, 201), session
    ws = await visitor.socket(f"/ws/chat/{session['id']}/")
    await ws.send_json({"type": "message", "content": "tell me", "use_knowledge": False})
    first = await read_until(ws, lambda _f, frames: sum(f["type"] == "token" for f in frames) >= 5)
    await ws.close()
    text = {f["offset"]: f["data"] for f in first if f["type"] == "token"}
    for _ in range(2):  # round robin: one of the reconnects reaches the other worker
        ws = await visitor.socket(f"/ws/chat/{session['id']}/")
        frames = await read_until(ws, lambda f, _: f["type"] == "token")
        snapshot = frames[-1]
        assert snapshot["offset"] == 0
        # The text so far is exactly what was streamed up to now: nothing lost since the first socket.
        assert snapshot["data"].startswith("".join(text[k] for k in sorted(text)))
        await ws.close()
    ws = await visitor.socket(f"/ws/chat/{session['id']}/")
    frames = await read_until(ws, lambda f, _: f["type"] == "done", seconds=30)
    pieces = {}
    for token in frames:
        if token["type"] == "token":
            pieces[token["offset"]] = token["data"]
    assembled = ""
    for offset in sorted(pieces):
        assembled = assembled[:offset] + pieces[offset]
    assert assembled == "".join(ANSWER) == frames[-1]["message"]["content"]
    await ws.close()


async def test_files_upload_and_download_through_the_proxy(cluster, visitor):
    payload = b"autobot " * 200_000  # 1.6 MB, streamed through nginx
    form = aiohttp.FormData()
    form.add_field("path", "")
    form.add_field("files", payload, filename="big.bin", content_type="application/octet-stream")
    status, body = await visitor.call("POST", "/api/files/upload", data=form)
    assert status in (200, 201), body
    for _ in range(2):
        async with visitor.http.get("/api/files/download", params={"path": "big.bin"},
                                    headers={"Range": "bytes=8-15"}) as response:
            assert response.status == 206 and await response.read() == b"autobot "


async def test_an_external_agent_on_one_worker_answers_through_the_other(cluster, owner, visitor):
    token = await sync_to_async(make_token)(owner)
    agent = await connect_agent(cluster.address, token, "roamer")
    try:
        for n in range(4):  # alternating workers
            body = {"header": {"message_type": "REQUEST", "recipient_id": "roamer"},
                    "payload": {"action": "echo", "data": {"n": n}}}
            call = asyncio.create_task(visitor.call("POST", "/api/agents/messages?wait=true&timeout=10", json=body))
            await serve_one(agent, "roamer")
            status, answer = await call
            assert status == 200, answer
            assert answer["payload"]["data"]["echo"] == {"n": n}
    finally:
        await agent.close()


async def test_a_crawl_runs_and_reports_progress_through_the_proxy(cluster, visitor):
    from aiohttp import web

    pages = {"/": '<a href="/a">a</a> <a href="/b">b</a>', "/a": "Alpha page about workers.",
             "/b": "Beta page about proxies."}

    async def page(request):
        body = f"<html><head><title>{request.path}</title></head><body><p>{pages[request.path]}</p></body></html>"
        return web.Response(text=body, content_type="text/html")

    app = web.Application()
    for path in pages:
        app.router.add_get(path, page)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        status, crawl = await visitor.call("POST", "/api/knowledge/crawls",
                                           json={"url": f"http://127.0.0.1:{port}/", "max_depth": 1})
        assert status == 202, crawl
        ws = await visitor.socket(f"/ws/knowledge/crawls/{crawl['id']}/")
        frames = await read_until(ws, lambda f, _: f["type"] == "progress" and f["crawl"]["status"] == "done",
                                  seconds=60)
        assert frames[-1]["crawl"]["pages_ingested"] == 3
        await ws.close()
        for _ in range(2):  # either worker finds what was crawled
            status, found = await visitor.call("GET", "/api/knowledge/search?q=proxies")
            assert status == 200 and found["count"] >= 1, found
    finally:
        await runner.cleanup()


async def listen_quietly(ws, seconds: float) -> None:
    """Receive for `seconds` (nothing is expected): reading is what lets aiohttp answer pings."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while (left := deadline - loop.time()) > 0:
        try:
            message = await asyncio.wait_for(ws.receive(), timeout=left)
        except TimeoutError:
            return
        assert message.type == aiohttp.WSMsgType.TEXT, f"the socket ended while idle: {message}"


async def heartbeats(agent, seconds: float, every: float = 10) -> None:
    for _ in range(int(seconds // every)):
        await asyncio.sleep(every)
        await agent.send(frame("sleeper", "HEARTBEAT", "heartbeat"))
    await asyncio.sleep(seconds % every)


async def test_sockets_idle_for_a_minute_then_work(cluster, visitor, owner):
    """Longer than every timeout on the way: the layer's blocking read, redis-py's read timeout
    (30 s), nginx's keep-alive; shorter than nginx's proxy_read_timeout (an hour)."""
    status, term = await visitor.call("POST", "/api/terminal/sessions", json={})
    assert status == 201, term
    status, chat = await visitor.call("POST", "/api/chat/sessions", json={})
    assert status in (200, 201), chat
    terminal_ws = await visitor.socket(f"/ws/terminal/{term['id']}/")
    await read_until(terminal_ws, lambda f, _: f["type"] == "session")
    chat_ws = await visitor.socket(f"/ws/chat/{chat['id']}/")
    token = await sync_to_async(make_token)(owner)
    agent = await connect_agent(cluster.address, token, "sleeper")
    # Silent, but listening as a browser does (it answers the server's pings while it waits); the
    # agent sends only the heartbeats the protocol asks of it (without them it counts as offline).
    await asyncio.gather(listen_quietly(terminal_ws, 61), listen_quietly(chat_ws, 61), heartbeats(agent, 61))
    await terminal_ws.send_json({"type": "input", "data": "echo awake-$((40+2))\r"})
    await read_until(terminal_ws, output_has("awake-42"))
    await chat_ws.send_json({"type": "message", "content": "awake?", "use_knowledge": False})
    await read_until(chat_ws, lambda f, _: f["type"] == "done", seconds=30)
    body = {"header": {"message_type": "REQUEST", "recipient_id": "sleeper"},
            "payload": {"action": "echo", "data": {"awake": True}}}
    call = asyncio.create_task(visitor.call("POST", "/api/agents/messages?wait=true&timeout=10", json=body))
    await asyncio.wait_for(serve_one(agent, "sleeper"), timeout=15)
    status, answer = await call
    assert status == 200 and answer["payload"]["data"]["echo"] == {"awake": True}, answer
    for ws in (terminal_ws, chat_ws, agent):
        await ws.close()


async def test_a_killed_worker_ends_its_terminal_clearly_and_loses_nothing_stored(cluster, visitor, owner):
    from terminal.models import TerminalSession

    status, session = await visitor.call("POST", "/api/terminal/sessions", json={})
    assert status == 201, session
    row = await TerminalSession.objects.aget(pk=session["id"])
    host = next(i for i, w in enumerate(cluster.workers) if worker_id(w) == row.host)
    other = cluster.workers[1 - host]
    # A socket on the worker that does not own the PTY, straight to it (not through nginx).
    direct = Visitor(other.address)
    try:  # closed however it ends: a failure here must not leave a client session behind
        direct.http.cookie_jar.update_cookies({c.key: c.value for c in visitor.http.cookie_jar})
        ws = await direct.socket(f"/ws/terminal/{session['id']}/")
        await ws.send_json({"type": "input", "data": "echo before-$((40+2))\r"})
        await read_until(ws, output_has("before-42"))

        await asyncio.to_thread(cluster.workers[host].kill)
        frames = await read_until(ws, lambda f, _: f["type"] == "exit", seconds=60)
        errors = [f for f in frames if f["type"] == "error"]
        assert errors and errors[-1]["code"] == "session_lost", frames[-3:]
    finally:
        await direct.close()
    row = await TerminalSession.objects.aget(pk=session["id"])
    assert row.status == "ended" and row.end_reason == "server_gone"

    await asyncio.to_thread(cluster.restart_worker, host)
    for _ in range(4):  # both workers answer again through nginx
        status, _ = await visitor.call("GET", "/api/me")
        assert status == 200
    await assert_audit_chain_valid(cluster)


async def test_a_killed_worker_ends_its_answer_clearly(cluster, visitor, owner):
    from chat.models import ChatMessage

    status, session = await visitor.call("POST", "/api/chat/sessions", json={})
    assert status in (200, 201), session
    ws = await visitor.socket(f"/ws/chat/{session['id']}/")
    await ws.send_json({"type": "message", "content": "a long one", "use_knowledge": False})
    await read_until(ws, lambda f, _: f["type"] == "token")
    answer = await ChatMessage.objects.filter(session_id=session["id"], role="assistant").alast()
    generator = next(i for i, w in enumerate(cluster.workers) if worker_id(w) == answer.worker)
    direct = Visitor(cluster.workers[1 - generator].address)
    try:  # closed however it ends: a failure here must not leave a client session behind
        direct.http.cookie_jar.update_cookies({c.key: c.value for c in visitor.http.cookie_jar})
        follower = await direct.socket(f"/ws/chat/{session['id']}/")
        await read_until(follower, lambda f, _: f["type"] == "token")

        await asyncio.to_thread(cluster.workers[generator].kill)
        frames = await read_until(follower, lambda f, _: f["type"] == "done", seconds=30)
        assert [f["code"] for f in frames if f["type"] == "error"] == ["interrupted"]
        assert frames[-1]["message"]["status"] == "failed"
    finally:
        await direct.close()
    await ws.close()
    await asyncio.to_thread(cluster.restart_worker, generator)
    # The session takes new questions at once (no 409 while a dead worker's answer "streams").
    status, body = await visitor.call("POST", f"/api/chat/sessions/{session['id']}/messages",
                                      json={"content": "again", "use_knowledge": False})
    assert status in (200, 201, 202), body
    await assert_audit_chain_valid(cluster)


async def test_sockets_and_agents_come_back_after_redis_restarts(cluster, visitor, owner):
    await asyncio.to_thread(cluster.redis.restart)

    async def healthy() -> bool:
        statuses = []
        for _ in range(2):
            async with visitor.http.get("/api/health") as response:
                statuses.append(response.status)
        return statuses == [200, 200]

    for _ in range(120):  # a restart has no event to await: poll health, 60 s at most
        if await healthy():
            break
        await asyncio.sleep(0.5)
    else:
        raise AssertionError("the workers did not report healthy after Redis came back")
    status, session = await visitor.call("POST", "/api/terminal/sessions", json={})
    assert status == 201, session
    ws = await visitor.socket(f"/ws/terminal/{session['id']}/")
    await ws.send_json({"type": "input", "data": "echo after-redis-$((40+2))\r"})
    await read_until(ws, output_has("after-redis-42"))
    await ws.close()
    body = {"header": {"message_type": "REQUEST", "recipient_id": "knowledge"},
            "payload": {"action": "search", "data": {"q": "anything"}}}
    for _ in range(2):
        status, answer = await visitor.call("POST", "/api/agents/messages?wait=true&timeout=10", json=body)
        assert status == 200, answer


async def test_a_terminal_relayed_between_workers_keeps_working_across_a_redis_restart(cluster, visitor, owner):
    """The socket on the worker that does not own the PTY, through a Redis restart: the next line
    typed shows its output, or the socket ends at once with a reason and the reconnected one works.
    (It stayed open and deaf until the host detached it LOST_SECONDS later: bench/soak.py saw it.)"""
    from terminal.models import TerminalSession
    from terminal.services.relay import LOST_SECONDS

    status, session = await visitor.call("POST", "/api/terminal/sessions", json={})
    assert status == 201, session
    row = await TerminalSession.objects.aget(pk=session["id"])
    other = next(w for w in cluster.workers if worker_id(w) != row.host)
    direct = Visitor(other.address)
    direct.http.cookie_jar.update_cookies({c.key: c.value for c in visitor.http.cookie_jar})
    ws = await direct.socket(f"/ws/terminal/{session['id']}/")
    try:
        await ws.send_json({"type": "input", "data": "echo before-$((40+2))\r"})
        await read_until(ws, output_has("before-42"))

        # Down until the relaying worker notices (its health names a failed reader), then up, empty.
        await asyncio.to_thread(cluster.redis.stop)
        for _ in range(120):
            async with direct.http.get("/api/health") as response:
                if response.status == 503:
                    break
            await asyncio.sleep(0.25)
        else:
            raise AssertionError("the worker did not notice Redis stopping")
        await asyncio.to_thread(cluster.redis.start)

        await ws.send_json({"type": "input", "data": "echo after-$((40+2))\r"})
        frames = await read_frames(ws, output_has("after-42"), seconds=LOST_SECONDS / 2)
        if not output_has("after-42")(None, frames):  # ended instead: with a reason, not an exit
            errors = [f["code"] for f in frames if f["type"] == "error"]
            assert "session_unreachable" in errors and not [f for f in frames if f["type"] == "exit"], frames[-3:]
            assert ws.close_code == 1011, ws.close_code
            await ws.close()
            ws = await direct.socket(f"/ws/terminal/{session['id']}/")  # the page reconnects
            await ws.send_json({"type": "input", "data": "echo again-$((40+2))\r"})
            await read_until(ws, output_has("again-42"))
    finally:
        await ws.close()
        await direct.close()
    status, _ = await visitor.call("DELETE", f"/api/terminal/sessions/{session['id']}")
    assert status in (200, 204)


async def read_frames(ws, predicate, *, seconds) -> list[dict]:
    """The frames until ``predicate`` holds or the socket closes; fails if neither within ``seconds``."""
    frames = []
    async with asyncio.timeout(seconds):
        while True:
            message = await ws.receive()
            if message.type != aiohttp.WSMsgType.TEXT:
                return frames
            frames.append(json.loads(message.data))
            if predicate(frames[-1], frames):
                return frames


async def assert_audit_chain_valid(cluster) -> None:
    result = await asyncio.to_thread(
        subprocess.run, [sys.executable, "manage.py", "verify_audit"], cwd=ROOT, env=cluster.workers[0].env,
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
