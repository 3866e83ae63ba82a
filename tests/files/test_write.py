"""files.services.file_write (the operator's files_write): one file, all or nothing, audited."""

import asyncio
import os

import pytest

from autobot.errors import AppError
from autobot.models import AuditEvent
from files.services import area_root, file_write

pytestmark = pytest.mark.django_db(transaction=True)


async def test_it_creates_then_replaces_a_file_and_audits_each_write(owner):
    root, _ = await area_root(user=owner)
    await asyncio.to_thread(os.makedirs, f"{root}/notes")
    first = await file_write(user=owner, path="notes/todo.txt", data=b"one\n")
    second = await file_write(user=owner, path="notes/todo.txt", data=b"two two\n")
    assert first.size == 4 and second.size == 8
    assert await asyncio.to_thread(lambda: open(f"{root}/notes/todo.txt", "rb").read()) == b"two two\n"
    writes = [e async for e in AuditEvent.objects.filter(action="files.write").order_by("id")]
    assert [e.data["result"] for e in writes] == ["ok", "ok"] and writes[0].data["bytes"] == 4


async def test_it_refuses_paths_outside_the_area_and_writes_beyond_the_quota(owner, settings):
    root, _ = await area_root(user=owner)
    with pytest.raises(AppError):
        await file_write(user=owner, path="../escape.txt", data=b"x")
    assert not await asyncio.to_thread(os.path.exists, os.path.join(os.path.dirname(root), "escape.txt"))
    settings.FILES_USER_QUOTA_BYTES = 10
    with pytest.raises(AppError) as refused:
        await file_write(user=owner, path="big.txt", data=b"x" * 11)
    assert refused.value.status == 413
    assert await asyncio.to_thread(os.listdir, root) == []  # nothing written, no temporary file left
