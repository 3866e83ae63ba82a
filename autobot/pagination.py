from django.db.models import QuerySet

MAX_LIMIT = 200
MAX_OFFSET = 10**9  # far past any real list; keeps the SQL integer in range


async def paginate(queryset: QuerySet, *, limit: int = 50, offset: int = 0) -> tuple[list, int]:
    """One page of a queryset as a list (evaluated now, never lazily later) and the total."""
    limit = max(1, min(limit, MAX_LIMIT))
    offset = max(0, min(offset, MAX_OFFSET))
    count = await queryset.acount()
    items = [item async for item in queryset[offset:offset + limit]]
    return items, count
