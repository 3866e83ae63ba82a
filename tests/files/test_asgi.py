"""Streaming uploads through files.asgi.StreamingUploadMiddleware on the real ASGI app."""

import asyncio
import fcntl
import json
import os
from pathlib import Path

import pytest
from django.conf import settings

import autobot.asgi  # noqa: F401  (imports the MCP and A2A SDKs: at collection, not on a test's loop)
from autobot.models import AuditEvent
from files import storage
from files.asgi import streaming_application
from files.storage import TEMP_PREFIX

pytestmark = pytest.mark.django_db(transaction=True)

BOUNDARY = "----autobotAsgiBoundary"


def head(filename: str) -> bytes:
    return (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="path"\r\n\r\n\r\n'
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()


TAIL = f"\r\n--{BOUNDARY}--\r\n".encode()


async def call(token: str, messages: list, on_receive=None, gate=None):
    """Run one POST /api/files/upload through the ASGI app; returns (status, json body).

    ``on_receive(index)`` runs, and ``await gate(index)`` waits, before message ``index`` is
    handed to the app."""
    app = streaming_application()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/files/upload",
        "raw_path": b"/api/files/upload",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"testserver"),
            (b"authorization", f"Bearer {token}".encode()),
            (b"content-type", f"multipart/form-data; boundary={BOUNDARY}".encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
    }
    pending = list(messages)
    sent = []

    async def receive():
        if on_receive:
            on_receive(len(messages) - len(pending))
        if gate:
            await gate(len(messages) - len(pending))
        if pending:
            return pending.pop(0)
        raise AssertionError("the app read past the end of the request")

    async def send(message):
        sent.append(message)

    await app(scope, receive, send)
    # No response at all when the client has gone: Django cancels the view.
    status = next((m["status"] for m in sent if m["type"] == "http.response.start"), None)
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, json.loads(body) if body else None


def area(username: str) -> Path:
    path = Path(settings.FILES_ROOT) / username
    path.mkdir(parents=True, exist_ok=True)
    return path


async def test_the_body_goes_to_disk_while_it_is_still_arriving(owner, token_for):
    token = token_for(owner)
    block = os.urandom(2 * 1024 * 1024)
    seen_on_disk = []

    def on_receive(index):
        # Before the last block is handed over, the first ones must already be on disk.
        if index == 3:
            temps = [n for n in os.listdir(area("owner")) if n.startswith(TEMP_PREFIX)]
            seen_on_disk.append(sum(os.path.getsize(area("owner") / n) for n in temps))

    messages = [
        {"type": "http.request", "body": head("big.bin"), "more_body": True},
        {"type": "http.request", "body": block, "more_body": True},
        {"type": "http.request", "body": block, "more_body": True},
        {"type": "http.request", "body": block + TAIL, "more_body": False},
    ]
    status, body = await call(token, messages, on_receive)
    assert status == 201, body
    assert body["items"][0]["size"] == 3 * len(block)
    assert seen_on_disk and seen_on_disk[0] >= 2 * 1024 * 1024
    assert (area("owner") / "big.bin").read_bytes() == block * 3
    assert [n for n in os.listdir(area("owner")) if n.startswith(TEMP_PREFIX)] == []


async def test_a_disconnect_mid_upload_leaves_nothing(owner, token_for):
    messages = [
        {"type": "http.request", "body": head("cut.bin"), "more_body": True},
        {"type": "http.request", "body": b"x" * 3_000_000, "more_body": True},
        {"type": "http.disconnect"},
    ]
    status, body = await call(token_for(owner), messages)
    # The answer goes nowhere (the client is gone), but the view finished its cleanup first.
    assert status == 400 and body["code"] == "upload_aborted"
    assert os.listdir(area("owner")) == []
    event = await AuditEvent.objects.aget(action="files.upload")
    assert event.data["result"] == "upload_aborted"


async def test_an_oversized_file_is_refused_before_the_body_ends(owner, token_for, settings):
    settings.FILES_MAX_UPLOAD_BYTES = 1024 * 1024
    messages = [
        {"type": "http.request", "body": head("big.bin"), "more_body": True},
        {"type": "http.request", "body": b"x" * 2_000_000, "more_body": True},
        # Never read: the 413 goes out as soon as the limit is crossed.
        {"type": "http.request", "body": b"x" * 2_000_000 + TAIL, "more_body": False},
    ]
    status, body = await call(token_for(owner), messages)
    assert status == 413 and body["code"] == "too_large"
    assert os.listdir(area("owner")) == []


async def test_the_middleware_still_authenticates(db):
    status, body = await call("abt_not-a-real-token", [{"type": "http.request", "body": b"", "more_body": False}])
    assert status == 401


def temps(path: Path) -> list[str]:
    return [n for n in os.listdir(path) if n.startswith(TEMP_PREFIX)]


async def test_parallel_uploads_cannot_together_exceed_the_quota(owner, token_for, settings):
    settings.FILES_USER_QUOTA_BYTES = 100_000
    root = area("owner")
    (root / "old.bin").write_bytes(b"o" * 10_000)
    token = token_for(owner)
    go = asyncio.Event()
    waiting = 0
    all_waiting = asyncio.Event()

    async def gate(index):
        nonlocal waiting
        if index == 2:  # each has begun (usage measured) and written its first 20 000 bytes
            waiting += 1
            if waiting == 3:
                all_waiting.set()
            await go.wait()

    def upload(i: int):
        data = bytes([ord("A") + i]) * 20_000
        messages = [
            {"type": "http.request", "body": head(f"f{i}.bin"), "more_body": True},
            {"type": "http.request", "body": data, "more_body": True},
            {"type": "http.request", "body": data + TAIL, "more_body": False},
        ]
        return call(token, messages, gate=gate)

    # 10 000 + 40 000 each: any one or two fit in 100 000, all three do not.
    tasks = [asyncio.create_task(upload(i)) for i in range(3)]
    await all_waiting.wait()
    assert len(temps(root)) == 3  # all three are staged and passed the early check
    go.set()
    results = await asyncio.gather(*tasks)

    statuses = sorted(status for status, _ in results)
    assert statuses == [201, 201, 413], results
    refused = next(body for status, body in results if status == 413)
    assert refused["code"] == "quota_exceeded"
    landed = sorted(n for n in os.listdir(root) if n != "old.bin")
    assert len(landed) == 2 and temps(root) == []
    for name in landed:
        i = int(name[1])
        assert (root / name).read_bytes() == bytes([ord("A") + i]) * 40_000
    assert await storage.usage(str(root)) == 90_000 <= settings.FILES_USER_QUOTA_BYTES
    outcomes = [e.data["result"] async for e in AuditEvent.objects.filter(action="files.upload")]
    assert sorted(outcomes) == ["ok", "ok", "quota_exceeded"]


async def test_an_upload_that_cannot_get_the_area_lock_is_503(owner, token_for, settings, monkeypatch):
    settings.FILES_USER_QUOTA_BYTES = 100_000
    monkeypatch.setattr(storage, "COMMIT_LOCK_WAIT", 0.05)
    lock = Path(storage.area_lock_path(str(area("owner"))))
    lock.parent.mkdir(exist_ok=True)
    held = os.open(lock, os.O_RDWR | os.O_CREAT)  # another open of the lock file: as another process
    try:
        fcntl.flock(held, fcntl.LOCK_EX)
        messages = [{"type": "http.request", "body": head("a.bin") + b"a" + TAIL, "more_body": False}]
        status, body = await call(token_for(owner), messages)
    finally:
        os.close(held)
    assert status == 503 and body["code"] == "area_busy"
    assert os.listdir(area("owner")) == []
