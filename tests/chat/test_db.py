"""chat.db: the database jobs of chat run on chat's own thread, with the caller's context."""

import contextvars
import threading

import pytest

from chat.db import db_job
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
    assert name.startswith("chat-db-") and name != threading.current_thread().name
    assert seen == "request-42"


async def test_jobs_use_the_database_and_pass_errors_back(owner):
    await ChatSession.objects.acreate(owner=owner)
    assert await _count_sessions() == 1
    with pytest.raises(ValueError, match="no"):
        await _fail()
    assert await _count_sessions() == 1  # the thread still works after a failed job
