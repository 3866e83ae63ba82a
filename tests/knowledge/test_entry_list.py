"""GET /api/knowledge/entries runs a query compiled once per shape and skips ninja's response
validation (knowledge/api.py). Both must give exactly what services.entry_list and the schema give,
for every combination of filters."""

import itertools
import json

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from ninja.responses import NinjaJSONEncoder

from autobot.pagination import paginate_sync
from knowledge import services
from knowledge.schemas import KnowledgeEntryList

pytestmark = pytest.mark.django_db(transaction=True)

FILTERS = {
    "category": ["ops", "OPS", "dev", "%"],
    "tag": ["linux", "LINUX ", "lin", "a_b", "%"],
    "source_type": ["note", "web"],
    "source": ["example", "EXAMPLE.org", "%", "_"],
    "owner": ["me", "someone"],
}


@pytest.fixture
def entries(owner, colleague):
    specs = [
        (owner, dict(category="ops", tags=["linux", "a_b"], shared=False, source_type="note")),
        (owner, dict(category="dev", tags=["python"], shared=True, source_type="web", source="https://example.org/a")),
        (colleague, dict(category="ops", tags=["linux"], shared=True, source_type="web", source="https://x.test/%")),
        (colleague, dict(category="ops", tags=["ab"], shared=False, source_type="note")),
        (colleague, dict(category="", tags=[], shared=False, source_type="document", source="file_1.txt")),
    ]
    for n, (user, fields) in enumerate(specs):
        async_to_sync(services.entry_create)(user=user, title=f"entry {n}", content=f"Entry number {n}: words.",
                                             **fields)


@pytest.fixture(params=["owner", "colleague", "staff", "stranger"])
def viewer(request, entries):
    return request.getfixturevalue(request.param)


def _expected(user, filters: dict, limit: int, offset: int) -> dict:
    """What the endpoint gave before: the service's queryset, validated against the schema."""
    qs = async_to_sync(services.entry_list)(user=user, **{k: filters.get(k) for k in FILTERS})
    items, count = paginate_sync(qs, limit=limit, offset=offset)
    data = {"items": [services.entry_as_dict(e, content=False) for e in items], "count": count}
    return json.loads(json.dumps(KnowledgeEntryList.model_validate(data).model_dump(), cls=NinjaJSONEncoder))


def _combinations():
    yield {}
    for name, values in FILTERS.items():
        for value in values:
            yield {name: value}
    for a, b in itertools.combinations(FILTERS, 2):
        yield {a: FILTERS[a][0], b: FILTERS[b][0]}
    yield {name: values[0] for name, values in FILTERS.items()}


async def test_the_list_is_the_services_list_for_every_filter_and_page(viewer, api_client):
    client = await sync_to_async(api_client)(viewer)
    for filters in _combinations():
        for limit, offset in ((50, 0), (1, 0), (2, 1), (1, 50)):
            response = await client.get("/api/knowledge/entries", {**filters, "limit": limit, "offset": offset})
            assert response.status_code == 200
            expected = await sync_to_async(_expected)(viewer, filters, limit, offset)
            assert response.json() == expected, (viewer.username, filters, limit, offset)


async def test_a_user_sees_own_and_shared_entries_and_staff_all(entries, api_client, owner, colleague, staff, stranger):
    seen = {}
    for user in (owner, colleague, staff, stranger):
        client = await sync_to_async(api_client)(user)
        body = (await client.get("/api/knowledge/entries")).json()
        seen[user.username] = sorted(item["title"] for item in body["items"])
        assert body["count"] == len(body["items"])
    assert seen["owner"] == ["entry 0", "entry 1", "entry 2"]
    assert seen["colleague"] == ["entry 1", "entry 2", "entry 3", "entry 4"]
    assert seen["staffer"] == [f"entry {n}" for n in range(5)]
    assert seen["stranger"] == ["entry 1", "entry 2"]
