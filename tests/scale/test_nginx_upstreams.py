"""The site file's upstream rules (deploy/nginx-autobot.conf), with nginx in front of two small
HTTP servers that say who answered: an application's 503 or 502 is passed to the client and
takes no worker out of rotation, POST is never sent twice, and a worker that refuses
connections is skipped.

The soak (issue 11) found the opposite: with `proxy_next_upstream ... http_502 http_503` and
`max_fails=1`, a few application 503s took both workers out for 5 s and every request became an
instant 502. Loopback only; every process started here is stopped here.
"""

import asyncio
import shutil
from collections import Counter

import aiohttp
import pytest
from aiohttp import web

from autobot.testbed import NginxProxy

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(shutil.which("nginx") is None, reason="needs nginx"),
]


class Upstream:
    """An HTTP server on 127.0.0.1 that answers with its name; /unavailable is a 503 and
    /bad-gateway a 502 (what AutoBot answers for llm_unavailable, an agent's error)."""

    def __init__(self, name: str):
        self.name = name
        self.hits: Counter = Counter()
        self.runner: web.AppRunner | None = None
        self.port = 0

    async def _answer(self, request: web.Request) -> web.Response:
        self.hits[(request.method, request.path)] += 1
        status = {"/unavailable": 503, "/bad-gateway": 502}.get(request.path, 200)
        return web.json_response({"by": self.name}, status=status)

    async def start(self, port: int = 0) -> "Upstream":
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._answer)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        await self.runner.cleanup()


@pytest.fixture
async def proxied(tmp_path):
    upstreams = [await Upstream("one").start(), await Upstream("two").start()]
    proxy = NginxProxy(tmp_path / "nginx", [f"127.0.0.1:{u.port}" for u in upstreams])
    await asyncio.to_thread(proxy.start)
    try:
        async with aiohttp.ClientSession(f"http://{proxy.address}") as http:
            yield http, upstreams
    finally:
        await asyncio.to_thread(proxy.stop)
        for upstream in upstreams:
            await upstream.stop()


async def answered_by(http, method: str, path: str) -> tuple[int, str]:
    async with http.request(method, path) as response:
        body = await response.json(content_type=None) if response.content_type == "application/json" else {}
        return response.status, body.get("by", "")


async def test_an_application_503_or_502_reaches_the_client_and_both_workers_stay(proxied):
    http, upstreams = proxied
    for method, path, status in (("GET", "/unavailable", 503), ("DELETE", "/unavailable", 503),
                                 ("POST", "/bad-gateway", 502), ("GET", "/bad-gateway", 502)):
        for _ in range(2):  # round robin: one on each worker
            assert (await answered_by(http, method, path))[0] == status
        # Asked once each: an application's answer is not retried on the other worker.
        assert [u.hits[(method, path)] for u in upstreams] == [1, 1]
        # And neither is taken out of rotation: the next requests reach both.
        answers = [await answered_by(http, "GET", "/api/me") for _ in range(4)]
        assert {status for status, _ in answers} == {200}
        assert Counter(by for _, by in answers) == {"one": 2, "two": 2}


async def test_a_worker_that_refuses_connections_is_skipped(proxied):
    http, upstreams = proxied
    await upstreams[1].stop()
    answers = [await answered_by(http, "GET", "/api/me") for _ in range(4)]
    assert answers == [(200, "one")] * 4
    # Back on its port: after fail_timeout (5 s) it takes requests again.
    await upstreams[1].start(port=upstreams[1].port)
    for _ in range(100):
        if "two" in {by for _, by in [await answered_by(http, "GET", "/api/me") for _ in range(2)]}:
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the restarted worker never took a request again")
