"""A small site on 127.0.0.1 for the crawler tests (aiohttp test server)."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

HUGE_BYTES = 300_000


def _html(title: str, body: str) -> str:
    head = f"<!doctype html><html><head><title>{title}</title></head>"
    return f"{head}<body><main><h1>{title}</h1>{body}</main></body></html>"


class Site:
    """A small site: links, a cycle, robots.txt, a redirect, a 404, a slow page, a binary and a huge page."""

    def __init__(self) -> None:
        self.release_slow = asyncio.Event()
        self.slow_entered = asyncio.Event()
        self.hits: list[str] = []
        self.redirects: dict[str, str] = {}
        self.robots = "User-agent: *\nDisallow: /private/\n"
        self.pages = {
            "/": _html(
                "Home",
                '<p>Welcome to the docs.</p><a href="/a">A</a> <a href="b">B</a> <a href="/a#section">A again</a>'
                '<a href="/a?utm_source=mail">A tracked</a> <a href="/x/../b">B dotted</a>'
                '<a href="/private/secret">secret</a> <a href="/old">old</a> <a href="/missing">missing</a>'
                '<a href="/slow">slow</a> <a href="/file.bin">binary</a> <a href="/huge">huge</a>'
                '<a href="/big">big</a> <a href="/notes.txt">notes</a> <a href="/dup">dup</a>'
                '<a href="/noindex">noindex</a> <a href="/away">away</a>'
                '<a href="mailto:someone@example.com">mail</a> <a href="http://example.com/">external</a>',
            ),
            "/a": _html("Page A", '<p>Alpha content about installing.</p><a href="/">home</a> <a href="/b">B</a>'),
            "/b": _html(
                "Page B", '<p>Bravo content about configuring.</p><a href="/a">A</a> <a href="/deep/1">deeper</a>'
            ),
            "/deep/1": _html("Deep 1", '<p>One level down.</p><a href="/deep/2">deeper</a>'),
            "/deep/2": _html("Deep 2", "<p>Two levels down.</p>"),
            "/dup": _html("Page A", '<p>Alpha content about installing.</p><a href="/">home</a> <a href="/b">B</a>'),
            "/target": _html("Target", "<p>Where the old page moved.</p>"),
            "/noindex": '<html><head><meta name="robots" content="noindex"></head><body><p>hidden</p></body></html>',
            "/private/secret": _html("Secret", "<p>robots say no</p>"),
            "/big": _html("Big", "".join(f"<p>Paragraph {i} of a long reference page.</p>" for i in range(3000))),
        }

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        self.hits.append(path)
        if path == "/robots.txt":
            return web.Response(text=self.robots)
        if path in self.redirects:
            raise web.HTTPFound(self.redirects[path])
        if path == "/old":
            raise web.HTTPFound("/target")
        if path == "/away":
            raise web.HTTPFound(f"http://localhost:{request.url.port}/a")
        if path == "/slow":
            self.slow_entered.set()
            await self.release_slow.wait()
            return web.Response(text="too late", content_type="text/html")
        if path == "/file.bin":
            return web.Response(body=b"\x00\x01\x02" * 100, content_type="application/octet-stream")
        if path == "/huge":
            return web.Response(text="<p>" + "x " * (HUGE_BYTES // 2) + "</p>", content_type="text/html")
        if path == "/notes.txt":
            return web.Response(text="Plain notes about backups.\n", content_type="text/plain")
        if path in self.pages:
            return web.Response(text=self.pages[path], content_type="text/html")
        raise web.HTTPNotFound()


@pytest.fixture
async def site():
    site = Site()
    server = TestServer(site.app(), host="127.0.0.1")
    await server.start_server()
    site.base = f"http://127.0.0.1:{server.port}"
    yield site
    site.release_slow.set()
    await server.close()


