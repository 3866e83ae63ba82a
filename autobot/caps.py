"""Per-user caps that hold under concurrency, on one worker and across workers.

Counting a user's live things and then creating one, in two steps, lets every concurrent request
see the same count: 6 simultaneous crawl starts with a cap of 3 all started. ``cap_reserve`` does
the count and the create in one transaction that first takes a lock the user's other requests
must also take, so they queue and each sees the rows the one before it created:

- PostgreSQL: ``SELECT … FOR UPDATE`` on the user's row (per user: other users are not held up;
  READ COMMITTED gives each statement after the lock a fresh snapshot, so the count is current);
- SQLite: the transaction is IMMEDIATE (settings), so BEGIN takes the database's write lock.

Usage (any capability; the create runs inside the lock, so keep it to the one INSERT):

    job = await cap_reserve(owner=user, queryset=CrawlJob.objects.filter(owner=user, status__in=ACTIVE),
                            cap=settings.KNOWLEDGE_CRAWL_MAX_ACTIVE,
                            create=lambda: CrawlJob.objects.create(owner=user, ...))

It raises ``CapReached(count, cap)``; the caller turns it into its own ``RateLimited`` message.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import QuerySet

T = TypeVar("T")


class CapReached(Exception):
    def __init__(self, count: int, cap: int) -> None:
        super().__init__(f"{count} of {cap} already in use")
        self.count = count
        self.cap = cap


def cap_reserve_sync(*, owner, queryset: QuerySet, cap: int, create: Callable[[], T]) -> T:
    """The synchronous form (sync services, management commands); see the module docstring."""
    with transaction.atomic():
        if connection.vendor != "sqlite":  # SQLite: BEGIN IMMEDIATE already holds the write lock
            list(get_user_model().objects.select_for_update().filter(pk=owner.pk).values_list("pk", flat=True))
        count = queryset.count()
        if count >= cap:
            raise CapReached(count, cap)
        return create()


async def cap_reserve(*, owner, queryset: QuerySet, cap: int, create: Callable[[], T]) -> T:
    """Count `queryset` and, when under `cap`, call `create` (sync), atomically for `owner`."""
    return await sync_to_async(cap_reserve_sync)(owner=owner, queryset=queryset, cap=cap, create=create)
