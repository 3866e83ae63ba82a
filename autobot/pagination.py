from asgiref.sync import sync_to_async
from django.db.models import QuerySet

MAX_LIMIT = 200
MAX_OFFSET = 10**9  # far past any real list; keeps the SQL integer in range


def paginate_sync(queryset: QuerySet, *, limit: int = 50, offset: int = 0) -> tuple[list, int]:
    """One page of a queryset as a list and the total, for sync code (see `paginate`)."""
    limit = max(1, min(limit, MAX_LIMIT))
    offset = max(0, min(offset, MAX_OFFSET))
    items = list(queryset[offset:offset + limit])
    if len(items) < limit and (items or offset == 0):
        # A short page that is not past the end is the last one: the total is known without
        # a COUNT query.
        return items, offset + len(items)
    return items, queryset.count()


async def paginate(queryset: QuerySet, *, limit: int = 50, offset: int = 0) -> tuple[list, int]:
    """One page of a queryset as a list (evaluated now, never lazily later) and the total.

    One trip to a lane for both (each `acount`/`async for` would be a thread hop of its own,
    and a hop costs more CPU than a small SQLite query)."""
    return await sync_to_async(paginate_sync)(queryset, limit=limit, offset=offset)
