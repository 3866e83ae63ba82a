"""The crawler against a real aiohttp site on 127.0.0.1 (no Django needed)."""

from __future__ import annotations

import asyncio

import pytest

from knowledge.crawler import (
    CrawlConfig,
    Crawler,
    Page,
    UnsafeURL,
    address_is_public,
    check_url_allowed,
    normalise_url,
)

CAP_BYTES = 200_000


class Recorder:
    def __init__(self, outcome: str = "created") -> None:
        self.pages: list[Page] = []
        self.snapshots: list[dict] = []
        self.outcome = outcome

    async def ingest(self, page: Page) -> str:
        self.pages.append(page)
        return self.outcome

    async def progress(self, stats) -> None:
        self.snapshots.append(stats.snapshot())

    def paths(self, base: str) -> set[str]:
        return {p.url.removeprefix(base) for p in self.pages}


def _config(site, **overrides) -> CrawlConfig:
    values = dict(
        start_url=site.base + "/",
        max_pages=50,
        max_depth=5,
        per_host_delay=0,
        timeout=0.5,
        max_bytes=CAP_BYTES,
        allow_private=True,
    )
    values.update(overrides)
    return CrawlConfig(**values)


async def test_it_crawls_the_site_once_per_page(site):
    rec = Recorder()
    stats = await Crawler(_config(site), ingest=rec.ingest, progress=rec.progress).run()

    assert rec.paths(site.base) == {"/", "/a", "/b", "/deep/1", "/deep/2", "/target", "/big", "/notes.txt"}
    assert len(rec.pages) == len({p.url for p in rec.pages})
    assert stats.pages_ingested == 8
    assert not stats.cancelled
    errors = {e["url"].removeprefix(site.base): e["error"] for e in stats.errors}
    assert errors["/private/secret"] == "disallowed by robots.txt"
    assert errors["/missing"] == "HTTP 404"
    assert "timed out" in errors["/slow"]
    assert "not a text page" in errors["/file.bin"]
    assert "too large" in errors["/huge"]
    assert "same content as" in errors["/dup"]
    assert "noindex" in errors["/noindex"]
    assert "out of scope" in errors["/away"]
    assert stats.pages_failed == 4  # 404, slow, huge, away
    assert rec.snapshots[-1] == stats.snapshot()


async def test_it_never_fetches_what_robots_disallow(site):
    await Crawler(_config(site), ingest=Recorder().ingest).run()
    assert "/private/secret" not in site.hits
    assert site.hits.count("/robots.txt") == 1


async def test_it_follows_a_redirect_and_stores_the_final_url(site):
    rec = Recorder()
    await Crawler(_config(site, start_url=site.base + "/old"), ingest=rec.ingest).run()
    assert [p.url for p in rec.pages] == [site.base + "/target"]
    assert rec.pages[0].title == "Target"


async def test_it_keeps_headings_and_text_of_the_page(site):
    rec = Recorder()
    await Crawler(_config(site, start_url=site.base + "/a", max_pages=1), ingest=rec.ingest).run()
    assert rec.pages[0].text.startswith("# Page A\n\nAlpha content about installing.")
    assert len(rec.pages[0].content_hash) == 64


async def test_max_pages_bounds_the_fetches(site):
    rec = Recorder()
    stats = await Crawler(_config(site, max_pages=3, concurrency=1), ingest=rec.ingest).run()
    assert stats.pages_fetched + stats.pages_failed <= 3
    assert len([h for h in site.hits if h != "/robots.txt"]) == 3


async def test_max_depth_bounds_the_links_followed(site):
    rec = Recorder()
    await Crawler(_config(site, start_url=site.base + "/b", max_depth=1), ingest=rec.ingest).run()
    assert rec.paths(site.base) == {"/b", "/a", "/deep/1"}


async def test_include_and_exclude_patterns(site):
    rec = Recorder()
    await Crawler(_config(site, include=[r"/deep/", r"/b$"], exclude=[r"/2$"]), ingest=rec.ingest).run()
    assert rec.paths(site.base) == {"/", "/b", "/deep/1"}


async def test_unchanged_pages_are_counted_apart(site):
    rec = Recorder(outcome="unchanged")
    stats = await Crawler(_config(site, start_url=site.base + "/deep/1"), ingest=rec.ingest).run()
    assert (stats.pages_unchanged, stats.pages_ingested) == (2, 0)


async def test_stop_ends_the_crawl_early(site):
    rec = Recorder()
    crawler = None

    async def ingest(page: Page) -> str:
        crawler.stop()
        return await rec.ingest(page)

    crawler = Crawler(_config(site, concurrency=1), ingest=ingest)
    stats = await crawler.run()
    assert stats.cancelled
    assert len(rec.pages) == 1


async def test_cancelling_the_task_stops_a_hanging_fetch(site):
    crawler = Crawler(_config(site, start_url=site.base + "/slow", timeout=60), ingest=Recorder().ingest)
    task = asyncio.create_task(crawler.run())
    await site.slow_entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_politeness_delay_spaces_requests_to_one_host(site):
    stamps: list[float] = []
    loop = asyncio.get_running_loop()

    async def ingest(page: Page) -> str:
        stamps.append(loop.time())
        return "created"

    await Crawler(_config(site, start_url=site.base + "/deep/1", per_host_delay=0.05), ingest=ingest).run()
    assert len(stamps) == 2
    assert stamps[1] - stamps[0] >= 0.045  # a lower bound only: never flaky


async def test_it_refuses_loopback_unless_allowed(site):
    with pytest.raises(UnsafeURL, match="private or reserved") as refused:
        await Crawler(_config(site, allow_private=False), ingest=Recorder().ingest).run()
    assert site.hits == []
    # The refusal says why it is off and which setting turns it on.
    assert "inside your network" in str(refused.value)
    assert "AUTOBOT_KNOWLEDGE_CRAWL_ALLOW_PRIVATE=true" in str(refused.value)


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/",
        "http://10.0.0.1/",
        "http://[::ffff:127.0.0.1]/",
        "http://[2002:7f00:1::1]/",  # 6to4 for 127.0.0.1
        "http://[2002:a9fe:a9fe::1]/",  # 6to4 for 169.254.169.254
        "http://0.0.0.0/",
    ],
)
async def test_it_refuses_private_and_metadata_addresses(url):
    with pytest.raises(UnsafeURL):
        await check_url_allowed(url, allow_private=False)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/", "javascript:alert(1)", "gopher://x/"])
async def test_it_refuses_other_schemes(url):
    with pytest.raises(UnsafeURL):
        await check_url_allowed(url, allow_private=True)
    with pytest.raises(UnsafeURL):
        Crawler(CrawlConfig(start_url=url), ingest=Recorder().ingest)


def test_address_classification():
    assert address_is_public("93.184.216.34")
    assert address_is_public("2606:2800:220:1:248:1893:25c8:1946")
    for address in (
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "fd00::1",
        "fe80::1",
        "::1",
        "100.64.0.1",
        "not-an-ip",
    ):
        assert not address_is_public(address), address


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("HTTP://Example.COM:80", "http://example.com/"),
        ("https://example.com:443/a/./b/../c#frag", "https://example.com/a/c"),
        ("http://example.com/p?b=2&a=1&utm_source=x", "http://example.com/p?a=1&b=2"),
        ("http://example.com:8080/x/", "http://example.com:8080/x/"),
        ("mailto:x@example.com", None),
        ("http://[::1]:8000/", "http://[::1]:8000/"),
    ],
)
def test_normalise_url(raw, expected):
    assert normalise_url(raw) == expected


def test_normalise_url_joins_relative_links():
    assert normalise_url("../up", base="http://example.com/a/b/c") == "http://example.com/a/up"


async def test_a_start_url_that_moves_to_another_host_moves_the_scope(site):
    rec = Recorder()
    start = site.base.replace("127.0.0.1", "localhost") + "/old-home"
    site.redirects = {"/old-home": site.base + "/deep/1"}
    await Crawler(_config(site, start_url=start), ingest=rec.ingest).run()
    assert [p.url for p in rec.pages] == [site.base + "/deep/1", site.base + "/deep/2"]
