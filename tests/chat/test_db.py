"""chat.db: the database jobs of chat run on chat's own lanes (autobot/lanes.py), with the caller's context."""

import asyncio
import contextvars
import threading

import pytest
from django.db import connection

from autobot import lanes
from chat.db import POSTGRES_WRITERS, _pool, db_job
from chat.models import ChatSession

pytestmark = pytest.mark.django_db(transaction=True)

marker: contextvars.ContextVar[str] = contextvars.ContextVar("marker", default="")


@db_job
def _where() -> tuple[str, str]:
    return threading.current_thread().name, marker.get()


@db_job
def _count_sessions() -> int:
    return ChatSession.objects.count()


@db_job
def _fail() -> None:
    raise ValueError("no")


async def test_jobs_run_on_the_chat_thread_with_the_callers_context():
    marker.set("request-42")
    name, seen = await _where()
    assert name.startswith("autobot-lane-chat-db-") and name != threading.current_thread().name
    assert seen == "request-42"


async def test_jobs_use_the_database_and_pass_errors_back(owner):
    await ChatSession.objects.acreate(owner=owner)
    assert await _count_sessions() == 1
    with pytest.raises(ValueError, match="no"):
        await _fail()
    assert await _count_sessions() == 1  # the thread still works after a failed job


@db_job
def _open_connection():
    """This lane's connection (the wrapper itself, not the thread-local proxy), opened."""
    from django.db import connections

    wrapper = connections["default"]
    wrapper.ensure_connection()
    return wrapper


async def test_chat_writes_on_its_own_lanes_whose_connections_close_connections_covers(owner):
    # SQLite has one write lock: more writers would only wait on it.
    assert len(_pool().lanes) == (1 if connection.vendor == "sqlite" else POSTGRES_WRITERS)
    assert _pool() is lanes.pool("chat-db", count=99)  # the registered pool, whatever a caller passes
    wrapper = await _open_connection()
    assert wrapper.connection is not None
    await asyncio.to_thread(lanes.close_connections)
    assert wrapper.connection is None
