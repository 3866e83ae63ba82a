"""Uploading documents: text, Markdown, HTML and PDF; limits; unreadable files; re-uploads."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from autobot.models import AuditEvent
from knowledge.models import KnowledgeChunk, KnowledgeEntry
from tests.knowledge.test_extract import make_pdf

pytestmark = pytest.mark.django_db(transaction=True)
URL = "/api/knowledge/documents"


async def upload(client, name, data, content_type="application/octet-stream", **fields):
    return await client.post(URL, {"file": SimpleUploadedFile(name, data, content_type=content_type), **fields})


@pytest.mark.parametrize(
    ("name", "data", "expected_title", "expected_text"),
    [
        ("notes.txt", b"Plain notes about rsync.", "notes", "Plain notes about rsync."),
        ("guide.md", b"# Guide\n\n## Step\n\nRotate keys.", "Guide", "# Guide\n\n## Step\n\nRotate keys."),
        ("page.html", b"<html><head><title>Page</title></head><body><nav>x</nav><p>Body <b>text</b>.</p></body></html>",
         "Page", "Body text."),
        ("report.pdf", make_pdf("Quarterly uptime report"), "report", "Quarterly uptime report"),
    ],
)
async def test_each_format_becomes_a_searchable_entry(api_client, owner, name, data, expected_title, expected_text):
    client = api_client(owner)
    response = await upload(client, name, data, category="docs", tags="a, b")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["outcome"] == "created"
    entry = body["entry"]
    assert entry["title"] == expected_title and entry["source_type"] == "document" and entry["source"] == name
    assert entry["content"] == expected_text
    assert entry["category"] == "docs" and entry["tags"] == ["a", "b"]
    word = expected_text.split()[-1].strip(".")
    search = (await client.get("/api/knowledge/search", {"q": word})).json()
    assert [r["entry_id"] for r in search["items"]] == [entry["id"]]


async def test_reuploading_updates_in_place_and_identical_is_unchanged(api_client, owner):
    client = api_client(owner)
    first = (await upload(client, "faq.md", b"# FAQ\n\nOld answer.")).json()["entry"]
    same = await upload(client, "faq.md", b"# FAQ\n\nOld answer.")
    assert same.status_code == 200 and same.json()["outcome"] == "unchanged"
    changed = await upload(client, "faq.md", b"# FAQ\n\nNew answer.")
    assert changed.status_code == 200 and changed.json()["outcome"] == "updated"
    assert changed.json()["entry"]["id"] == first["id"]
    assert await KnowledgeEntry.objects.acount() == 1
    assert [c.text async for c in KnowledgeChunk.objects.all()] == ["New answer."]
    events = AuditEvent.objects.filter(action__startswith="knowledge.").order_by("id")  # not the token's
    actions = [a async for a in events.values_list("action", flat=True)]
    assert actions == ["knowledge.entry_created", "knowledge.entry_updated"]


async def test_the_same_content_under_another_name_is_a_duplicate(api_client, owner):
    client = api_client(owner)
    await upload(client, "a.txt", b"Identical body.")
    response = await upload(client, "b.txt", b"Identical body.")
    assert response.json()["outcome"] == "duplicate"
    assert await KnowledgeEntry.objects.acount() == 1


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("broken.pdf", b"%PDF-1.4\nnot really", "PDF could not be parsed"),
        ("image.png", b"\x89PNG\r\n\x1a\n", "unsupported file type"),
        ("blob.txt", b"\x00\x01\x02binary", "binary"),
        ("empty.txt", b"", "empty"),
    ],
)
async def test_unreadable_files_are_422_and_nothing_is_stored(api_client, owner, name, data, message):
    response = await upload(api_client(owner), name, data)
    assert response.status_code == 422
    assert response.json()["code"] == "unparseable_document"
    assert message in response.json()["detail"] and name in response.json()["detail"]
    assert await KnowledgeEntry.objects.acount() == 0


async def test_files_over_the_limit_are_413(api_client, owner, settings):
    settings.KNOWLEDGE_MAX_UPLOAD_BYTES = 100
    response = await upload(api_client(owner), "big.txt", b"x" * 101)
    assert response.status_code == 413 and response.json()["code"] == "too_large"
    assert await KnowledgeEntry.objects.acount() == 0


async def test_a_missing_file_is_422(api_client, owner):
    response = await api_client(owner).post(URL, {"title": "nothing"})
    assert response.status_code == 422
