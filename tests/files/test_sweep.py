"""Leftovers of uploads whose worker died are removed when a worker starts, and audited."""

import asyncio
import os
import socket
import subprocess
import time

import pytest
from asgiref.sync import sync_to_async

from autobot.models import AuditEvent
from autobot.testing import ServerProcess, database_url
from files import storage
from files.sweep import leftovers_remove, uploads_sweep
from knowledge.models import CrawlJob
from tests.conftest import SERVER_READY_SECONDS, make_token

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]
HOST = storage._HOST


def dead_pid() -> int:
    """The pid of a process that has ended (a pid this host may reuse later, but not this instant)."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def leftover(folder, writer: str, *, suffix=".part", age=0.0, data=b"half an upload") -> str:
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{storage.TEMP_PREFIX}{os.urandom(8).hex()}{writer}{suffix}"
    (folder / name).write_bytes(data)
    if age:
        then = time.time() - age
        os.utime(folder / name, (then, then))
    return name


async def test_a_dead_workers_leftovers_go_and_live_or_recent_ones_stay(owner, settings):
    root = settings.FILES_ROOT
    area = root / "owner"
    pid = dead_pid()
    dead = leftover(area / "docs", f"-{pid}@{HOST}")
    dead_backup = leftover(area, f"-{dead_pid()}@{HOST}", suffix=".old")
    alive = leftover(area, f"-{os.getpid()}@{HOST}")  # this process: an upload in flight
    elsewhere = leftover(area, "-1234@some-other-host")  # can't be checked from here: only age tells
    stale = leftover(area, "-1234@some-other-host", age=7 * 3600)
    old_style = leftover(area, "", age=7 * 3600)  # a name from before names carried their writer
    (area / "notes.txt").write_text("the user's own file")
    os.symlink("notes.txt", area / f"{storage.TEMP_PREFIX}{'0' * 16}-{dead_pid()}@{HOST}.part")

    removed = await uploads_sweep()

    assert {(r.name, r.reason) for r in removed} == {
        (dead, "worker_gone"), (dead_backup, "worker_gone"), (stale, "stale"), (old_style, "stale")}
    remaining = {p.name for p in area.iterdir()}
    assert {alive, elsewhere, "notes.txt", "docs"} <= remaining
    assert not {dead, dead_backup, stale, old_style} & remaining
    events = [e async for e in AuditEvent.objects.filter(action="files.upload_interrupted").order_by("id")]
    assert len(events) == 4
    assert {e.actor_id for e in events} == {owner.pk}
    by_name = {e.data["temp_name"]: e.data for e in events}
    assert by_name[dead] == {"folder": "docs", "temp_name": dead, "bytes": 14, "reason": "worker_gone",
                             "worker": f"{HOST}:{pid}"}
    assert await uploads_sweep() == []  # nothing twice


def test_the_sweep_never_follows_a_symlinked_folder(tmp_path):
    outside = tmp_path / "outside"
    name = leftover(outside, f"-{dead_pid()}@{HOST}")
    root = tmp_path / "files"
    (root / "eve").mkdir(parents=True)
    os.symlink(outside, root / "eve" / "link")
    assert leftovers_remove(str(root), max_age=3600) == []
    assert (outside / name).exists()


async def slow_upload(server: ServerProcess, token: str) -> asyncio.StreamWriter:
    """Start an upload of a big file, send a part of it and stop sending (the request stays open)."""
    boundary = "----sweepBoundary"
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="path"\r\n\r\n\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="big.bin"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n").encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write((f"POST /api/files/upload HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
                  f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
                  f"Content-Length: {len(head) + 10_000_000}\r\n\r\n").encode() + head + b"x" * 2_000_000)
    await writer.drain()
    return writer


async def test_a_killed_workers_upload_and_crawl_are_cleaned_up_by_the_next_worker(owner, settings, tmp_path):
    files_root = tmp_path / "files"
    env = {"DATABASE_URL": database_url(settings.DATABASES["default"]),
           "DJANGO_SETTINGS_MODULE": "tests.server_settings", "AUTOBOT_FILES_ROOT": str(files_root),
           "AUTOBOT_SECRET_KEY": settings.SECRET_KEY}
    first = ServerProcess(env=env, var_dir=tmp_path, name="first", ready_seconds=SERVER_READY_SECONDS).start()
    token = await sync_to_async(make_token)(owner)
    upload = await slow_upload(first, token)
    area = files_root / "owner"
    deadline = time.monotonic() + 30
    while not (area.exists() and [p for p in area.iterdir() if p.name.endswith(".part")]):
        assert time.monotonic() < deadline, "the upload never reached the disk"
        await asyncio.sleep(0.05)  # the server writes the file in its own time: nothing to await
    # A crawl the killed worker was running (recorded as its own).
    crawl = await CrawlJob.objects.acreate(owner=owner, url="http://127.0.0.1:9/", status=CrawlJob.Status.RUNNING,
                                           worker=f"{socket.gethostname()}:{first.process.pid}")
    first.kill()
    upload.close()

    second = ServerProcess(env=env, var_dir=tmp_path, name="second", ready_seconds=SERVER_READY_SECONDS).start()
    try:
        assert [p.name for p in area.iterdir()] == []  # nothing left, nothing half-written
        swept = await AuditEvent.objects.aget(action="files.upload_interrupted")
        assert swept.data["reason"] == "worker_gone" and swept.data["bytes"] > 0
        assert swept.data["worker"] == f"{HOST}:{first.process.pid}"
        await crawl.arefresh_from_db()
        assert crawl.status == CrawlJob.Status.FAILED and "interrupted" in crawl.detail
        interrupted = await AuditEvent.objects.aget(action="knowledge.crawl_interrupted")
        assert interrupted.target_id == str(crawl.pk) and interrupted.actor_id == owner.pk
    finally:
        second.stop()
