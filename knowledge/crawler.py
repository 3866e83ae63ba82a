"""An async web crawler that knows nothing of Django.

The crawler fetches pages, extracts their text and hands each page to an
injected ``ingest`` callback (which stores it and says whether it was new,
changed or unchanged); an injected ``progress`` callback sees a snapshot of the
counters after every page. The services module wires both to the database and
the channel layer; tests wire them to lists.

Safety: only http(s); hosts resolving to private, loopback, link-local,
multicast or reserved addresses (cloud metadata at 169.254.169.254 included)
are refused unless ``allow_private`` is set. The check runs twice: before each
request, for a clear error, and inside the connector's resolver, so a DNS
answer that changes between the two (rebinding) or a redirect cannot slip
through. Redirects are followed by hand so every hop is checked for scope and
safety.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import logging
import re
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from urllib import robotparser
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import aiohttp
import re2
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

from knowledge.extract import Extracted, ExtractionError, decode_text, extract_html, normalise_text

log = logging.getLogger(__name__)

INGESTIBLE_TYPES = ("text/html", "application/xhtml+xml", "text/plain")
THREAD_EXTRACT_BYTES = 64 * 1024  # parse pages larger than this off the event loop
MAX_REDIRECTS = 5
# Like Google, only the first 512 KiB of a robots.txt count: parsing it (in a thread) and matching
# every URL against its rules (on the event loop) stay a few milliseconds whatever a site serves.
ROBOTS_MAX_BYTES = 512 * 1024
MAX_ERRORS_KEPT = 200
_TRACKING_PARAMS = re.compile(r"^(utm_\w+|fbclid|gclid|mc_cid|mc_eid)$", re.IGNORECASE)
_DEFAULT_PORTS = {"http": 80, "https": 443}


def compile_pattern(pattern: str):
    """A user's include/exclude pattern, compiled by RE2 (raises ``re2.error`` when it cannot be).

    The patterns are matched against every URL a crawled site links to, on the event loop. With
    Python's backtracking ``re`` a pattern such as ``(\\w+\\w?)+!`` and a link of forty letters
    would stall the whole server for hours; RE2 matches in time linear in the URL, whatever the
    pattern (and so has no backreferences or lookaround).
    """
    options = re2.Options()
    options.log_errors = False
    return re2.compile(pattern, options)


class CrawlError(Exception):
    """A page could not be fetched or used; the message says why."""


class UnsafeURL(CrawlError):
    """The URL's scheme or address is not allowed."""


@dataclass
class CrawlConfig:
    start_url: str
    max_pages: int = 100
    max_depth: int = 3
    same_domain: bool = True
    include: list[str] = field(default_factory=list)  # regexes; a URL must match one (if any given)
    exclude: list[str] = field(default_factory=list)  # regexes; a URL matching any is skipped
    concurrency: int = 4
    per_host_delay: float = 0.5  # seconds between requests to one host
    timeout: float = 15.0  # per request, whole response
    connect_timeout: float = 5.0
    max_bytes: int = 5 * 1024 * 1024  # response size cap
    allow_private: bool = False
    user_agent: str = "AutoBot-Crawler/1.0 (+knowledge base)"
    respect_robots: bool = True


@dataclass
class Page:
    url: str  # normalised final URL (after redirects)
    title: str
    text: str
    content_hash: str
    depth: int
    content_type: str


@dataclass
class CrawlStats:
    pages_found: int = 0  # distinct in-scope URLs discovered (start URL included)
    pages_fetched: int = 0  # responses received for pages (robots.txt not counted)
    pages_ingested: int = 0  # new or changed pages stored
    pages_unchanged: int = 0  # stored before with the same content
    pages_skipped: int = 0  # robots, wrong type, duplicate content, noindex
    pages_failed: int = 0  # errors: network, status, too large, unparseable
    errors: list[dict] = field(default_factory=list)  # {"url", "error"}, capped
    cancelled: bool = False

    def snapshot(self) -> dict:
        return asdict(self)


IngestFn = Callable[[Page], Awaitable[str]]  # returns "created" | "updated" | "unchanged"
ProgressFn = Callable[[CrawlStats], Awaitable[None]]


# --- URLs and scope -------------------------------------------------------


def normalise_url(url: str, base: str | None = None) -> str | None:
    """A canonical form of ``url`` (joined to ``base``), or None if not http(s).

    Lower-case scheme and host, default port dropped, fragment dropped, empty
    path made ``/``, dot segments resolved, tracking parameters dropped and the
    rest sorted so ``?b=1&a=2`` and ``?a=2&b=1`` are one page.
    """
    try:
        joined = urljoin(base, url.strip()) if base else url.strip()
        parts = urlsplit(joined)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    host = parts.hostname.lower().rstrip(".")
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    path = _resolve_dots(parts.path or "/")
    query = urlencode(
        sorted((k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _TRACKING_PARAMS.match(k))
    )
    return urlunsplit((scheme, netloc, path, query, ""))


def _resolve_dots(path: str) -> str:
    out: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if len(out) > 1:
                out.pop()
        elif segment != ".":
            out.append(segment)
    resolved = "/".join(out)
    if path.endswith(("/.", "/..")):
        resolved += "/"
    return resolved if resolved.startswith("/") else "/" + resolved


def address_is_public(address: str) -> bool:
    """True unless the address is private, loopback, link-local, reserved …"""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and (ip.ipv4_mapped or ip.sixtofour):
        # The IPv4 address inside is where it goes: `::ffff:127.0.0.1`, and a 6to4 address
        # (2002:AABB:CCDD::/48) that a relay unwraps to AA.BB.CC.DD.
        ip = ip.ipv4_mapped or ip.sixtofour
    return not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    )


async def check_url_allowed(url: str, *, allow_private: bool) -> None:
    """Raise `UnsafeURL` for a non-http(s) URL or one whose host is not public."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in _DEFAULT_PORTS:
        raise UnsafeURL(f"only http and https URLs can be crawled, not {parts.scheme or 'a bare path'!r}")
    host = parts.hostname
    if not host:
        raise UnsafeURL(f"the URL {url!r} has no host")
    if allow_private:
        return
    try:
        ipaddress.ip_address(host)
        addresses = [host]
    except ValueError:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(
                host, parts.port or _DEFAULT_PORTS[parts.scheme.lower()], type=socket.SOCK_STREAM
            )
        except socket.gaierror as exc:
            raise CrawlError(f"the host {host!r} could not be resolved ({exc.strerror})") from exc
        addresses = [info[4][0] for info in infos]
    blocked = [a for a in addresses if not address_is_public(a)]
    if blocked:
        raise UnsafeURL(
            f"the host {host!r} resolves to a private or reserved address ({blocked[0]}): crawling such addresses "
            "is off so that a crawl cannot reach services inside your network; an administrator can allow it "
            "with AUTOBOT_KNOWLEDGE_CRAWL_ALLOW_PRIVATE=true"
        )


class PublicOnlyResolver(AbstractResolver):
    """A resolver that drops non-public answers, checked at connect time."""

    def __init__(self) -> None:
        self._inner = ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = [r for r in await self._inner.resolve(host, port, family) if address_is_public(r["host"])]
        if not results:
            raise OSError(f"{host} resolves only to private or reserved addresses")
        return results

    async def close(self) -> None:
        await self._inner.close()


# --- the crawler ------------------------------------------------------------


class Crawler:
    def __init__(self, config: CrawlConfig, *, ingest: IngestFn, progress: ProgressFn | None = None) -> None:
        start = normalise_url(config.start_url)
        if start is None:
            raise UnsafeURL(f"only http and https URLs can be crawled: {config.start_url!r}")
        self.config = config
        self.start_url = start
        self.start_host = urlsplit(start).netloc
        self.stats = CrawlStats()
        self._ingest = ingest
        self._progress = progress
        self._include = [compile_pattern(p) for p in config.include]
        self._exclude = [compile_pattern(p) for p in config.exclude]
        self._seen_urls: set[str] = set()
        self._seen_hashes: dict[str, str] = {}
        self._robots: dict[str, robotparser.RobotFileParser | None] = {}
        self._robots_locks: dict[str, asyncio.Lock] = {}
        self._host_locks: dict[str, asyncio.Lock] = {}
        self._host_next: dict[str, float] = {}
        self._queue: asyncio.Queue[tuple[str, int]] = asyncio.Queue()
        self._claimed = 0  # page fetches started, bounded by max_pages
        self._stopping = asyncio.Event()
        self._session: aiohttp.ClientSession | None = None

    def stop(self) -> None:
        """Ask the crawl to end early; `run` returns with ``cancelled`` set."""
        self.stats.cancelled = True
        self._stopping.set()

    async def run(self) -> CrawlStats:
        """Crawl until the frontier is empty, ``max_pages`` is reached or `stop`."""
        await check_url_allowed(self.start_url, allow_private=self.config.allow_private)
        connector = aiohttp.TCPConnector(
            limit=self.config.concurrency * 2,
            limit_per_host=self.config.concurrency,
            resolver=None if self.config.allow_private else PublicOnlyResolver(),
            ttl_dns_cache=60,
        )
        timeout = aiohttp.ClientTimeout(
            total=self.config.timeout, connect=self.config.connect_timeout, sock_read=self.config.timeout
        )
        headers = {"User-Agent": self.config.user_agent, "Accept": "text/html,text/plain;q=0.9,*/*;q=0.1"}
        async with aiohttp.ClientSession(connector=connector, timeout=timeout, headers=headers) as session:
            self._session = session
            self._discover(self.start_url, depth=0)
            workers = [asyncio.create_task(self._worker()) for _ in range(max(1, self.config.concurrency))]
            drained = asyncio.create_task(self._queue.join())
            stopping = asyncio.create_task(self._stopping.wait())
            try:
                await asyncio.wait({drained, stopping}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (*workers, drained, stopping):
                    task.cancel()
                await asyncio.gather(*workers, drained, stopping, return_exceptions=True)
                self._session = None
        await self._report()
        return self.stats

    # --- frontier

    def _discover(self, url: str, *, depth: int) -> None:
        if url in self._seen_urls or not self._in_scope(url):
            return
        self._seen_urls.add(url)
        self.stats.pages_found += 1
        self._queue.put_nowait((url, depth))

    def _in_scope(self, url: str) -> bool:
        if self.config.same_domain and urlsplit(url).netloc != self.start_host:
            return False
        if url == self.start_url:
            return True
        if self._include and not any(p.search(url) for p in self._include):
            return False
        return not any(p.search(url) for p in self._exclude)

    async def _worker(self) -> None:
        while True:
            url, depth = await self._queue.get()
            try:
                if self._claimed < self.config.max_pages:
                    self._claimed += 1
                    await self._visit(url, depth)
                    await self._report()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bug on one page must not end the crawl
                log.exception("crawler: unexpected error on %s", url)
                self._fail(url, f"internal error: {exc.__class__.__name__}")
            finally:
                self._queue.task_done()

    async def _visit(self, url: str, depth: int) -> None:
        if not await self._robots_allow(url):
            self._skip(url, "disallowed by robots.txt")
            return
        try:
            final_url, content_type, raw_type, body = await self._fetch(url)
        except _Skipped as exc:
            self.stats.pages_fetched += 1
            self._skip(url, str(exc))
            return
        except CrawlError as exc:
            self._fail(url, str(exc))
            return
        self.stats.pages_fetched += 1
        if final_url != url:
            self._seen_urls.add(final_url)
        doc = await self._extract(final_url, content_type, raw_type, body)
        if doc is None:
            return
        if not doc.nofollow and depth < self.config.max_depth:
            for link in doc.links:
                normal = normalise_url(link)
                if normal:
                    self._discover(normal, depth=depth + 1)
        if doc.noindex:
            self._skip(final_url, "page asks not to be indexed (meta robots noindex)")
            return
        await self._store(final_url, doc, depth=depth, content_type=content_type)

    async def _extract(self, url: str, content_type: str, raw_type: str | None, body: bytes) -> Extracted | None:
        try:
            if len(body) > THREAD_EXTRACT_BYTES:
                # Decoding (charset detection), normalising and parsing megabytes: off the loop.
                return await asyncio.to_thread(_extract_body, url, content_type, raw_type, body)
            return _extract_body(url, content_type, raw_type, body)
        except ExtractionError as exc:
            self._fail(url, str(exc))
            return None

    async def _store(self, url: str, doc: Extracted, *, depth: int, content_type: str) -> None:
        if not doc.text.strip():
            self._skip(url, "page has no text")
            return
        digest = hashlib.sha256(doc.text.encode()).hexdigest()
        if digest in self._seen_hashes:
            self._skip(url, f"same content as {self._seen_hashes[digest]}")
            return
        self._seen_hashes[digest] = url
        page = Page(
            url=url, title=doc.title or url, text=doc.text, content_hash=digest, depth=depth, content_type=content_type
        )
        try:
            outcome = await self._ingest(page)
        except CrawlError as exc:
            self._fail(url, str(exc))
            return
        if outcome == "unchanged":
            self.stats.pages_unchanged += 1
        else:
            self.stats.pages_ingested += 1

    # --- HTTP

    async def _fetch(self, url: str) -> tuple[str, str, str | None, bytes]:
        """GET ``url`` following in-scope redirects.

        Returns (final url, "text/html" or "text/plain", raw Content-Type, body).
        """
        current = url
        for _ in range(MAX_REDIRECTS + 1):
            await check_url_allowed(current, allow_private=self.config.allow_private)
            await self._polite(current)
            try:
                async with self._session.get(current, allow_redirects=False) as response:
                    if response.status in (301, 302, 303, 307, 308):
                        target = normalise_url(response.headers.get("Location", ""), base=current)
                        if target is None:
                            raise CrawlError(f"redirect to an unsupported location ({response.status})")
                        if url == self.start_url and self.stats.pages_fetched == 0 and self.stats.pages_failed == 0:
                            # The start URL moved (http → https, example.com → www.example.com):
                            # the site lives where it points, so the scope follows it.
                            self.start_host = urlsplit(target).netloc
                            self.start_url = target
                        if not self._in_scope(target):
                            raise CrawlError(f"redirects out of scope to {target}")
                        current = target
                        continue
                    if response.status >= 400:
                        raise CrawlError(f"HTTP {response.status}")
                    content_type = (response.content_type or "").lower()
                    if content_type not in INGESTIBLE_TYPES:
                        raise _Skipped(f"not a text page ({content_type or 'no content type'})")
                    body = await self._read_capped(response)
                    kind = "text/plain" if content_type == "text/plain" else "text/html"
                    return current, kind, response.headers.get("Content-Type"), body
            except _Skipped:
                raise
            except TimeoutError as exc:
                raise CrawlError(f"timed out after {self.config.timeout:g} s") from exc
            except aiohttp.ClientError as exc:
                raise CrawlError(f"request failed ({exc.__class__.__name__}: {exc})") from exc
            except OSError as exc:
                raise CrawlError(f"connection failed ({exc})") from exc
        raise CrawlError(f"more than {MAX_REDIRECTS} redirects")

    async def _read_capped(self, response: aiohttp.ClientResponse) -> bytes:
        cap = self.config.max_bytes
        if response.content_length is not None and response.content_length > cap:
            raise CrawlError(f"response too large ({response.content_length} bytes, limit {cap})")
        body = bytearray()
        async for block in response.content.iter_chunked(64 * 1024):
            body.extend(block)
            if len(body) > cap:
                raise CrawlError(f"response too large (over {cap} bytes)")
        return bytes(body)

    async def _polite(self, url: str) -> None:
        """Space requests to one host by ``per_host_delay`` (or robots Crawl-delay)."""
        host = urlsplit(url).netloc
        lock = self._host_locks.setdefault(host, asyncio.Lock())
        async with lock:
            wait = self._host_next.get(host, 0.0) - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            self._host_next[host] = time.monotonic() + self._delay_for(host)

    def _delay_for(self, host: str) -> float:
        delay = self.config.per_host_delay
        robots = self._robots.get(host)
        if robots is not None:
            crawl_delay = robots.crawl_delay(self.config.user_agent)
            if crawl_delay:
                delay = max(delay, min(float(crawl_delay), 10.0))
        return delay

    async def _robots_allow(self, url: str) -> bool:
        if not self.config.respect_robots:
            return True
        parts = urlsplit(url)
        host = parts.netloc
        lock = self._robots_locks.setdefault(host, asyncio.Lock())
        async with lock:
            if host not in self._robots:
                self._robots[host] = await self._load_robots(f"{parts.scheme}://{host}/robots.txt")
        robots = self._robots[host]
        return robots is None or robots.can_fetch(self.config.user_agent, url)

    async def _load_robots(self, robots_url: str) -> robotparser.RobotFileParser | None:
        """Parse robots.txt; None (allow all) when it is missing or unreadable."""
        parser = robotparser.RobotFileParser(robots_url)
        try:
            await check_url_allowed(robots_url, allow_private=self.config.allow_private)
            async with self._session.get(robots_url, allow_redirects=False) as response:
                if response.status in (401, 403):
                    parser.disallow_all = True
                    return parser
                if response.status >= 300:  # missing, or moved somewhere we won't follow
                    return None
                body = await _read_head(response, ROBOTS_MAX_BYTES)
        except (CrawlError, aiohttp.ClientError, TimeoutError, OSError):
            return None
        await asyncio.to_thread(_parse_robots, parser, body)
        return parser

    # --- bookkeeping

    def _fail(self, url: str, error: str) -> None:
        self.stats.pages_failed += 1
        self._note(url, error)

    def _skip(self, url: str, reason: str) -> None:
        self.stats.pages_skipped += 1
        self._note(url, reason)

    def _note(self, url: str, error: str) -> None:
        if len(self.stats.errors) < MAX_ERRORS_KEPT:
            self.stats.errors.append({"url": url, "error": error})

    async def _report(self) -> None:
        if self._progress is not None:
            await self._progress(self.stats)


async def _read_head(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The first ``limit`` bytes of the body, cut at the last whole line; the rest is not read."""
    body = bytearray()
    async for block in response.content.iter_chunked(64 * 1024):
        body.extend(block)
        if len(body) >= limit:
            return bytes(body[: body.rfind(b"\n", 0, limit) + 1])
    return bytes(body)


def _parse_robots(parser: robotparser.RobotFileParser, body: bytes) -> None:
    parser.parse(body.decode("utf-8", errors="replace").splitlines())


def _extract_body(url: str, content_type: str, raw_type: str | None, body: bytes) -> Extracted:
    if content_type == "text/plain":
        text = normalise_text(decode_text(body, content_type=raw_type))
        return Extracted(title=url.rsplit("/", 1)[-1] or url, text=text, format="text")
    return extract_html(decode_text(body, content_type=raw_type), base_url=url)


class _Skipped(CrawlError):
    """Not an error: the response is simply not something we ingest."""
