"""autobot/pagination.py: the total is right whether or not the COUNT query was needed."""

import pytest

from autobot.pagination import paginate

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize(("limit", "offset", "page", "count"), [
    (50, 0, 7, 7),    # short first page: the total is the page
    (7, 0, 7, 7),     # exactly full: counted
    (3, 0, 3, 7),     # full page, more behind it
    (3, 6, 1, 7),     # short last page
    (3, 7, 0, 7),     # just past the end: counted
    (3, 100, 0, 7),   # far past the end: counted
])
async def test_a_page_and_its_total(owner, limit, offset, page, count):
    from chat.models import ChatSession

    for n in range(7):
        await ChatSession.objects.acreate(owner=owner, title=f"s{n}")
    items, total = await paginate(ChatSession.objects.order_by("title"), limit=limit, offset=offset)
    assert (len(items), total) == (page, count)
    assert [s.title for s in items] == [f"s{n}" for n in range(7)][offset:offset + limit]


async def test_an_empty_list_counts_zero(owner):
    from chat.models import ChatSession

    assert await paginate(ChatSession.objects.all()) == ([], 0)
