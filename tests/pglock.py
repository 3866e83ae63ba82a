"""A PostgreSQL table held locked by another connection while a test's block runs (real waits)."""

import asyncio
import contextlib
import threading

from django.db import connection, transaction


@contextlib.asynccontextmanager
async def table_locked(table: str, mode: str):
    """`LOCK TABLE table IN mode MODE` held on a thread of its own until the block ends: with
    EXCLUSIVE no one writes the table meanwhile (reads still work), with ACCESS EXCLUSIVE no one
    reads it either; a query that needs it waits."""
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(f'LOCK TABLE "{table}" IN {mode} MODE')
                held.set()
                release.wait(60)
        finally:
            connection.close()

    holder = asyncio.ensure_future(asyncio.to_thread(hold))
    assert await asyncio.to_thread(held.wait, 10)
    try:
        yield
    finally:
        release.set()
        await holder
