"""Attacks on knowledge ingestion (docs/security.md, "Files and knowledge"): each test is one
hostile input through the real API, and what the user sees in answer."""

import zlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from knowledge.models import KnowledgeEntry

pytestmark = pytest.mark.django_db(transaction=True)
URL = "/api/knowledge/documents"


def shared_stream_pdf(pages: int, stream: bytes) -> bytes:
    """A PDF whose ``pages`` pages all draw one Flate-compressed content stream: a few hundred
    bytes on disk, ``pages`` times the stream's instructions to run."""
    body = zlib.compress(stream)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"",  # the page tree, below
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n%s\nendstream" % (len(body), body),
    ]
    page = (b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
            b" /Resources << /Font << /F1 3 0 R >> >> >>")
    objects += [page] * pages
    kids = b" ".join(b"%d 0 R" % n for n in range(5, 5 + pages))
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, pages)
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, obj in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, obj)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


async def upload(client, name, data):
    return await client.post(URL, {"file": SimpleUploadedFile(name, data, content_type="application/octet-stream")})


async def test_a_pdf_made_to_be_slow_is_refused_once_its_budget_is_spent(api_client, owner, settings):
    # 2,000 pages x one stream of 4,000 instructions: 8 million to run from a 9 KB file (at the
    # default budget of a million, the same shape with a bigger stream costs hours).
    settings.KNOWLEDGE_PDF_MAX_OPERATIONS = 20_000
    bomb = shared_stream_pdf(2000, b"BT /F1 1 Tf (a) Tj ET\n" * 1000)
    response = await upload(api_client(owner), "slow.pdf", bomb)
    assert response.status_code == 422, response.content
    assert response.json()["code"] == "unparseable_document"
    assert "too complex" in response.json()["detail"]
    assert not await KnowledgeEntry.objects.aexists()


async def test_a_pdf_within_the_budget_is_read_whole(api_client, owner, settings):
    settings.KNOWLEDGE_PDF_MAX_OPERATIONS = 20_000
    response = await upload(api_client(owner), "ok.pdf", shared_stream_pdf(3, b"BT /F1 12 Tf (uptime) Tj ET\n"))
    assert response.status_code == 201, response.content
    assert response.json()["entry"]["content"].split() == ["uptime"] * 3


@pytest.mark.parametrize(
    "stream",
    [
        pytest.param(b"BT /F1 12 Tf [" + b"0 " * 100_001 + b"] TJ ET", id="array-over-pypdf-limit"),
        pytest.param(b"BT /F1 12 Tf " + b"[" * 5000 + b"(x)" + b"]" * 5000 + b" TJ ET", id="nested-arrays"),
    ],
)
async def test_a_pdf_that_trips_the_parser_is_a_422_not_a_500(api_client, owner, stream):
    # pypdf raises its own LimitReachedError, or Python's RecursionError, for these (< 1 KB each).
    response = await upload(api_client(owner), "trap.pdf", shared_stream_pdf(1, stream))
    assert response.status_code == 422, response.content
    assert response.json()["code"] == "unparseable_document"
    assert not await KnowledgeEntry.objects.aexists()


async def test_deeply_nested_html_is_read_not_a_500(api_client, owner):
    # 3,000 nested <div>s (15 KB) ran the extractor's walk into Python's recursion limit.
    page = b"<html><body>" + b"<div>" * 3000 + b"<p>Deep text.</p>" + b"</div>" * 3000 + b"</body></html>"
    response = await upload(api_client(owner), "deep.html", page)
    assert response.status_code == 201, response.content
    assert response.json()["entry"]["content"] == "Deep text."


# --- crawl patterns: the user's regular expressions meet URLs a site chooses, on the event loop ----


async def test_a_catastrophic_include_pattern_cannot_stall_the_server(site):
    from knowledge.crawler import CrawlConfig, Crawler

    # With Python's backtracking re, this pattern against a link of 40 letters takes hours, with
    # the event loop (every request of the worker) blocked for all of them.
    site.pages["/"] = '<html><body><p>Start.</p><a href="/' + "a" * 40 + '">next</a></body></html>'
    stored = []

    async def ingest(page):
        stored.append(page.url)
        return "created"

    config = CrawlConfig(start_url=site.base + "/", include=[r"(\w+\w?)+!"], per_host_delay=0, allow_private=True)
    stats = await Crawler(config, ingest=ingest).run()
    assert stored == [site.base + "/"] and stats.pages_found == 1  # the link is out of scope, quickly


async def test_a_pattern_re2_cannot_run_in_linear_time_is_a_422(api_client, owner):
    response = await api_client(owner).post(
        "/api/knowledge/crawls", {"url": "http://example.test/", "include": [r"(a)\1"]}, content_type="application/json"
    )
    assert response.status_code == 422 and response.json()["code"] == "invalid_input"
    assert "RE2" in response.json()["detail"]


# --- HTML that makes a spec-following tree builder quadratic: read as plain text instead --------
# Each page below took lexbor minutes (the suite's timeout is 120 s) before the pre-scan.

QUADRATIC_PAGES = {
    # 400,000 nested <div>s (4.4 MB): each opening one searches the whole stack for a <p>.
    "nested-divs": b"<html><body>" + b"<div>" * 400_000 + b"<p>Deep text.</p>" + b"</div>" * 400_000,
    # The end tags are ignored (a <div> stops the search for </span>), so the stack only grows.
    "ignored-end-tags": b"<body>" + b"<span><div></span>" * 200_000 + b"<p>Deep text.</p>",
    # Options in one <select>: lexbor's cost grows with their square.
    "long-select": b"<body><p>Deep text.</p><select>" + b"<option>x</option>" * 300_000 + b"</select>",
    # Attributes on one tag, each checked against the others.
    "many-attributes": b"<body><div " + b" ".join(b"a%d=1" % i for i in range(300_000)) + b">Deep text.</div>",
}


@pytest.mark.parametrize("page", QUADRATIC_PAGES.values(), ids=QUADRATIC_PAGES.keys())
async def test_html_that_would_parse_for_minutes_is_read_as_text(api_client, owner, page):
    response = await upload(api_client(owner), "bomb.html", page)
    assert response.status_code == 201, response.content
    assert "Deep text." in response.json()["entry"]["content"]


def test_formatting_elements_reopened_in_every_paragraph_are_caught_before_parsing():
    from knowledge.extract import extract_html
    from knowledge.htmlscan import too_complex

    # One link left open is cloned into every later paragraph, attributes and all: 625 MB of
    # tree from this 100 KB (https://github.com/whatwg/html/issues/10772).
    page = '<p><a href="' + "A" * 50_000 + '"><p>Deep text.' + "<p>a" * 12_500
    assert "opened again" in too_complex(page)
    assert extract_html(page).text.startswith("Deep text.")


def test_the_plain_text_reading_keeps_title_links_and_robots():
    from knowledge.extract import extract_html

    page = (
        '<html><head><title>Deep &amp; dark</title><meta name="robots" content="nofollow">'
        "<style>p { color: red }</style></head><body>"
        + "<div>" * 2_000
        + '<p>Read <a href="/next">the next page</a> &mdash; or not.</p><script>var x = "<div>";</script>'
    )
    doc = extract_html(page, base_url="https://example.test/a/")
    assert doc.title == "Deep & dark"
    assert doc.text == "Read the next page \u2014 or not."
    assert doc.links == ["https://example.test/next"] and doc.nofollow and not doc.noindex


async def test_a_robots_txt_of_megabytes_is_still_honoured(site):
    from knowledge.crawler import CrawlConfig, Crawler

    # 3 MB of rules for another crawler after ours; parsed in a thread, only the first 512 KiB.
    other = "".join(f"Disallow: /p{i:06d}/\n" for i in range(170_000))
    site.robots = "User-agent: *\nDisallow: /private/\n\nUser-agent: other\n" + other
    site.pages["/"] = '<html><body><p>Start.</p><a href="/private/secret">secret</a></body></html>'
    stored = []

    async def ingest(page):
        stored.append(page.url)
        return "created"

    config = CrawlConfig(start_url=site.base + "/", per_host_delay=0, allow_private=True)
    stats = await Crawler(config, ingest=ingest).run()
    assert stored == [site.base + "/"]
    assert "/private/secret" not in site.hits
    assert {"url": site.base + "/private/secret", "error": "disallowed by robots.txt"} in stats.errors
