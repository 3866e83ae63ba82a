"""The knowledge REST API through Django's async client."""

import pytest
from asgiref.sync import sync_to_async

from autobot.models import AuditEvent
from knowledge.models import KnowledgeChunk, KnowledgeEntry

pytestmark = pytest.mark.django_db(transaction=True)
BASE = "/api/knowledge"


async def create(client, **body):
    response = await client.post(f"{BASE}/entries", body, content_type="application/json")
    assert response.status_code == 201, response.content
    return response.json()


async def actions():
    """The knowledge events, in order (the API client's token is audited too, as auth.*)."""
    events = AuditEvent.objects.filter(action__startswith="knowledge.").order_by("id")
    return [a async for a in events.values_list("action", flat=True)]


async def test_it_creates_reads_updates_and_deletes_an_entry(api_client, owner):
    client = api_client(owner)
    entry = await create(client, title="Runbook", content="# Restart\n\nUse systemctl restart autobot.",
                         category="ops", tags=["Linux", "systemd"])
    assert entry["owner"] == "owner" and entry["chunk_count"] == 1 and entry["can_edit"]
    assert entry["tags"] == ["linux", "systemd"]

    got = (await client.get(f"{BASE}/entries/{entry['id']}")).json()
    assert got["content"] == "# Restart\n\nUse systemctl restart autobot."

    patched = await client.patch(f"{BASE}/entries/{entry['id']}", {"content": "Use the service manager."},
                                 content_type="application/json")
    assert patched.status_code == 200 and patched.json()["content"] == "Use the service manager."

    deleted = await client.delete(f"{BASE}/entries/{entry['id']}")
    assert deleted.status_code == 204
    assert (await client.get(f"{BASE}/entries/{entry['id']}")).status_code == 404
    assert await KnowledgeChunk.objects.acount() == 0
    assert await actions() == ["knowledge.entry_created", "knowledge.entry_updated", "knowledge.entry_deleted"]


async def test_the_list_is_paginated_and_filtered(api_client, owner):
    client = api_client(owner)
    for i in range(5):
        await create(client, content=f"Note number {i}", category="a" if i % 2 else "b", tags=["t"] if i < 2 else [])
    page = (await client.get(f"{BASE}/entries", {"limit": 2, "offset": 1})).json()
    assert page["count"] == 5 and len(page["items"]) == 2
    assert "content" not in page["items"][0]
    assert (await client.get(f"{BASE}/entries", {"category": "a"})).json()["count"] == 2
    assert (await client.get(f"{BASE}/entries", {"tag": "T"})).json()["count"] == 2
    assert (await client.get(f"{BASE}/entries", {"source_type": "document"})).json()["count"] == 0


async def test_identical_content_is_not_stored_twice(api_client, owner):
    client = api_client(owner)
    first = await create(client, content="Same words.")
    again = await client.post(f"{BASE}/entries", {"content": "Same words."}, content_type="application/json")
    assert again.status_code == 409
    assert again.json()["code"] == "duplicate_entry" and str(first["id"]) in again.json()["detail"]
    assert await KnowledgeEntry.objects.acount() == 1


async def test_strangers_cannot_see_or_change_private_entries(api_client, owner, stranger):
    entry = await create(api_client(owner), content="Private.")
    other = api_client(stranger)
    assert (await other.get(f"{BASE}/entries/{entry['id']}")).status_code == 404
    assert (await other.delete(f"{BASE}/entries/{entry['id']}")).status_code == 404
    assert (await other.get(f"{BASE}/entries")).json()["count"] == 0


async def test_shared_entries_are_readable_but_only_the_owner_edits(api_client, owner, colleague, staff):
    entry = await create(api_client(owner), content="Team notes.", shared=True)
    other = api_client(colleague)
    got = (await other.get(f"{BASE}/entries/{entry['id']}")).json()
    assert got["can_edit"] is False
    response = await other.patch(f"{BASE}/entries/{entry['id']}", {"title": "Mine"}, content_type="application/json")
    assert response.status_code == 403
    assert (await api_client(staff).patch(f"{BASE}/entries/{entry['id']}", {"title": "Staff edit"},
                                          content_type="application/json")).status_code == 200


async def test_bad_input_is_a_clear_error(api_client, owner):
    client = api_client(owner)
    empty = await client.post(f"{BASE}/entries", {"content": "   "}, content_type="application/json")
    assert empty.status_code == 422 and empty.json()["code"] == "validation_error"  # the schema's pattern
    tag = await client.post(f"{BASE}/entries", {"content": "x", "tags": ["no spaces allowed"]},
                            content_type="application/json")
    assert tag.status_code == 422 and "tag" in tag.json()["detail"]
    missing = await client.post(f"{BASE}/entries", {}, content_type="application/json")
    assert missing.status_code == 422


async def test_anonymous_callers_are_refused(api_client):
    assert (await api_client(None).get(f"{BASE}/entries")).status_code == 401
    assert (await api_client(None).get(f"{BASE}/search", {"q": "x"})).status_code == 401


async def test_search_returns_highlighted_results(api_client, owner):
    client = api_client(owner)
    await create(client, title="Proxy", content="# Web\n\nNginx terminates TLS for the app.", category="ops")
    response = await client.get(f"{BASE}/search", {"q": "nginx TLS", "limit": 5})
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 1 and body["query"] == "nginx TLS"
    [hit] = body["items"]
    assert hit["title"] == "Proxy" and hit["heading_path"] == "Web" and "<mark>" in hit["snippet"]
    assert (await client.get(f"{BASE}/search", {"q": "nginx", "category": "dev"})).json()["count"] == 0
    assert (await client.get(f"{BASE}/search", {"q": "ngi", "prefix": "true"})).json()["count"] == 1


@pytest.mark.parametrize("q", ['"', "NEAR(", "a OR", "*", "'; DROP TABLE x; --", "\\", "%_%"])
async def test_search_never_fails_on_odd_queries(api_client, owner, q):
    response = await api_client(owner).get(f"{BASE}/search", {"q": q})
    assert response.status_code == 200


async def test_an_empty_search_is_422(api_client, owner):
    for query in ({"q": " "}, {"q": ""}, {}):
        response = await api_client(owner).get(f"{BASE}/search", query)
        assert response.status_code == 422 and response.json()["code"] == "validation_error", query


async def test_stats_count_what_the_user_can_see(api_client, owner, stranger):
    await create(api_client(owner), content="One.", category="ops")
    await create(api_client(stranger), content="Two.")
    stats = (await api_client(owner).get(f"{BASE}/stats")).json()
    assert stats["entries"] == 1 and stats["chunks"] == 1
    assert stats["by_source_type"]["note"] == 1
    assert stats["categories"] == [{"category": "ops", "count": 1}]
    assert stats["search_backend"] in ("sqlite-fts5", "postgresql")


async def test_a_failed_store_leaves_nothing_behind(api_client, owner, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(KnowledgeChunk.objects, "bulk_create", broken)
    response = await api_client(owner).post(f"{BASE}/entries", {"content": "Doomed."}, content_type="application/json")
    assert response.status_code == 500
    assert await KnowledgeEntry.objects.acount() == 0
    assert await sync_to_async(lambda: list(KnowledgeEntry.objects.all()))() == []
