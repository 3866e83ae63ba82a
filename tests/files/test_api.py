"""The files REST API through Django's async client (the buffered-body path)."""

import os
from pathlib import Path

import pytest
from django.conf import settings

from autobot.models import AuditEvent

pytestmark = pytest.mark.django_db(transaction=True)

BOUNDARY = "----autobotTestBoundary"


def multipart(fields: dict | None = None, files: list[tuple[str, bytes]] = ()) -> bytes:
    out = b""
    for name, value in (fields or {}).items():
        out += f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
    for filename, data in files:
        out += (
            (
                f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; filename="{filename}"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n"
            ).encode()
            + data
            + b"\r\n"
        )
    return out + f"--{BOUNDARY}--\r\n".encode()


async def post_upload(client, fields=None, files=(), query=""):
    return await client.post(
        f"/api/files/upload{query}",
        data=multipart(fields, files),
        content_type=f"multipart/form-data; boundary={BOUNDARY}",
    )


def area(username: str) -> Path:
    path = Path(settings.FILES_ROOT) / username
    path.mkdir(parents=True, exist_ok=True)
    return path


async def body_of(response) -> bytes:
    return b"".join([chunk async for chunk in response.streaming_content])


async def test_anonymous_is_401(api_client):
    response = await api_client(None).get("/api/files/")
    assert response.status_code == 401


async def test_the_area_is_created_on_demand_and_listed(api_client, owner):
    response = await api_client(owner).get("/api/files/")
    assert response.status_code == 200
    assert response.json() == {"items": [], "count": 0, "path": "", "area": "owner"}
    assert area("owner").is_dir()


async def test_upload_list_preview_download_move_delete(api_client, owner):
    client = api_client(owner)
    assert (await client.post("/api/files/mkdir", {"path": "docs"}, content_type="application/json")).status_code == 201
    response = await post_upload(client, {"path": "docs"}, [("hello.txt", b"hello world\n"), ("b.bin", b"\x00\x01")])
    assert response.status_code == 201, response.content
    assert [(i["path"], i["size"]) for i in response.json()["items"]] == [("docs/hello.txt", 12), ("docs/b.bin", 2)]

    listing = (await client.get("/api/files/", {"path": "docs"})).json()
    assert [(i["name"], i["type"], i["mime_type"]) for i in listing["items"]] == [
        ("b.bin", "file", "application/octet-stream"),
        ("hello.txt", "file", "text/plain"),
    ]

    preview = (await client.get("/api/files/preview", {"path": "docs/hello.txt"})).json()
    assert preview["kind"] == "text" and preview["text"] == "hello world\n"

    download = await client.get("/api/files/download", {"path": "docs/hello.txt"})
    assert download.status_code == 200 and await body_of(download) == b"hello world\n"
    assert download["Content-Length"] == "12" and download["Content-Type"] == "text/plain"
    assert download["Content-Disposition"].startswith("attachment;")

    moved = await client.post(
        "/api/files/move", {"src": "docs/hello.txt", "dst": "renamed.txt"}, content_type="application/json"
    )
    assert moved.status_code == 200 and moved.json()["path"] == "renamed.txt"
    assert (await client.delete("/api/files/?path=renamed.txt")).status_code == 200
    assert not (area("owner") / "renamed.txt").exists()

    actions = [e.action async for e in AuditEvent.objects.filter(action__startswith="files.").order_by("id")]
    assert actions == ["files.mkdir", "files.upload", "files.move", "files.delete"]
    upload_event = await AuditEvent.objects.aget(action="files.upload")
    assert upload_event.actor_name == "owner"
    assert upload_event.data["size"] == 14 and upload_event.data["result"] == "ok"
    assert upload_event.data["path"] == "docs"


async def test_upload_needs_explicit_overwrite(api_client, owner):
    (area("owner") / "a.txt").write_text("old")
    client = api_client(owner)
    response = await post_upload(client, {}, [("a.txt", b"new")])
    assert response.status_code == 409 and response.json()["code"] == "file_exists"
    assert (area("owner") / "a.txt").read_text() == "old"
    response = await post_upload(client, {"overwrite": "true"}, [("a.txt", b"new")])
    assert response.status_code == 201
    assert (area("owner") / "a.txt").read_text() == "new"


async def test_upload_over_the_size_limit_is_413_and_leaves_nothing(api_client, owner, settings):
    settings.FILES_MAX_UPLOAD_BYTES = 1000
    response = await post_upload(api_client(owner), {}, [("ok.txt", b"x"), ("big.bin", b"x" * 1001)])
    assert response.status_code == 413
    assert response.json()["code"] == "too_large" and "1000 bytes" in response.json()["detail"]
    assert os.listdir(area("owner")) == []
    event = await AuditEvent.objects.aget(action="files.upload")
    assert event.data["result"] == "too_large"


async def test_upload_over_the_quota_is_413(api_client, owner, settings):
    settings.FILES_USER_QUOTA_BYTES = 10
    (area("owner") / "used.bin").write_bytes(b"x" * 8)
    response = await post_upload(api_client(owner), {}, [("more.bin", b"xyz")])
    assert response.status_code == 413 and response.json()["code"] == "quota_exceeded"
    assert os.listdir(area("owner")) == ["used.bin"]


@pytest.mark.parametrize("filename", [".", "..", "a/b", "..\\..\\x", "\u200b", "x" * 300, "CON"])
async def test_bad_multipart_filenames_are_403(api_client, owner, filename):
    response = await post_upload(api_client(owner), {}, [(filename, b"x")])
    assert response.status_code == 403 and response.json()["code"] == "path_forbidden"
    assert os.listdir(area("owner")) == []


async def test_an_upload_without_files_is_422(api_client, owner):
    response = await post_upload(api_client(owner), {"path": ""})
    assert response.status_code == 422 and response.json()["code"] == "no_files"


async def test_a_malformed_body_is_400(api_client, owner):
    response = await api_client(owner).post(
        "/api/files/upload", data=b"--nope\r\n", content_type=f"multipart/form-data; boundary={BOUNDARY}"
    )
    assert response.status_code == 400 and response.json()["code"] == "invalid_multipart"


TRAVERSALS = ["../other", "/etc/passwd", "%2e%2e/other", "docs\\..\\..", "a\x00b", "..%2f..%2fetc"]


@pytest.mark.parametrize("path", TRAVERSALS)
async def test_traversal_is_403_everywhere(api_client, owner, colleague, path):
    (area("colleague") / "secret.txt").write_text("secret")
    area("owner")
    client = api_client(owner)
    calls = [
        client.get("/api/files/", {"path": path}),
        client.get("/api/files/download", {"path": path}),
        client.get("/api/files/preview", {"path": path}),
        client.post("/api/files/mkdir", {"path": path}, content_type="application/json"),
        client.post("/api/files/move", {"src": path, "dst": "x"}, content_type="application/json"),
        client.delete("/api/files/", QUERY_STRING=f"path={path}&recursive=true"),
        post_upload(client, {"path": path}, [("x.txt", b"x")]),
    ]
    for call in calls:
        response = await call
        assert response.status_code == 403, (response.status_code, response.content)
        assert response.json()["code"] == "path_forbidden"
    assert (area("colleague") / "secret.txt").read_text() == "secret"
    assert os.listdir(area("owner")) == []


async def test_a_symlink_out_of_the_area_is_403(api_client, owner, colleague, tmp_path):
    (area("colleague") / "secret.txt").write_text("secret")
    os.symlink(area("colleague"), area("owner") / "peek")
    client = api_client(owner)
    assert (await client.get("/api/files/", {"path": "peek"})).status_code == 403
    assert (await client.get("/api/files/download", {"path": "peek/secret.txt"})).status_code == 403
    assert (await post_upload(client, {"path": "peek"}, [("x.txt", b"x")])).status_code == 403
    assert sorted(os.listdir(area("colleague"))) == ["secret.txt"]


async def test_a_link_back_to_the_area_root_is_a_folder(api_client, owner):
    # `ln -s . home` (or `d/up -> ..`) typed in the owner's terminal, whose home is the area.
    a = area("owner")
    os.symlink(".", a / "home")
    (a / "d").mkdir()
    os.symlink("..", a / "d" / "up")
    client = api_client(owner)
    for url in ("/api/files/download", "/api/files/preview"):
        for path in ("home", "d/up"):
            response = await client.get(url, {"path": path})
            assert response.status_code == 400, (url, path, response.content)
            assert response.json()["code"] == "is_a_directory"


async def test_another_users_area_is_404(api_client, owner, colleague):
    (area("colleague") / "secret.txt").write_text("secret")
    client = api_client(owner)
    response = await client.get("/api/files/", {"user": "colleague"})
    assert response.status_code == 404 and response.json()["code"] == "area_not_found"
    response = await client.get("/api/files/download", {"path": "secret.txt", "user": "colleague"})
    assert response.status_code == 404
    response = await client.delete("/api/files/?path=secret.txt&user=colleague")
    assert response.status_code == 404
    assert (area("colleague") / "secret.txt").exists()


async def test_staff_can_browse_any_area(api_client, staff, colleague):
    (area("colleague") / "report.txt").write_text("r")
    response = await api_client(staff).get("/api/files/", {"user": "colleague"})
    assert response.status_code == 200
    assert response.json()["area"] == "colleague" and response.json()["items"][0]["name"] == "report.txt"
    response = await api_client(staff).get("/api/files/", {"user": "nobody"})
    assert response.status_code == 404


async def test_download_ranges(api_client, owner):
    data = bytes(range(256)) * 40  # 10240 bytes
    (area("owner") / "data.bin").write_bytes(data)
    client = api_client(owner)
    response = await client.get("/api/files/download", {"path": "data.bin"}, headers={"Range": "bytes=100-199"})
    assert response.status_code == 206 and response["Content-Range"] == "bytes 100-199/10240"
    assert await body_of(response) == data[100:200] and response["Content-Length"] == "100"

    response = await client.get("/api/files/download", {"path": "data.bin"}, headers={"Range": "bytes=-10"})
    assert await body_of(response) == data[-10:]

    response = await client.get("/api/files/download", {"path": "data.bin"}, headers={"Range": "bytes=20000-"})
    assert response.status_code == 416 and response["Content-Range"] == "bytes */10240"

    response = await client.get("/api/files/download", {"path": "data.bin"}, headers={"Range": "bytes=0-1,10-11"})
    assert response.status_code == 206 and response["Content-Type"].startswith("multipart/byteranges; boundary=")
    body = await body_of(response)
    assert len(body) == int(response["Content-Length"])
    assert b"Content-Range: bytes 0-1/10240\r\n\r\n" + data[0:2] in body
    assert b"Content-Range: bytes 10-11/10240\r\n\r\n" + data[10:12] in body


async def test_download_validators(api_client, owner):
    (area("owner") / "a.txt").write_text("abc")
    client = api_client(owner)
    first = await client.get("/api/files/download", {"path": "a.txt"})
    etag, modified = first["ETag"], first["Last-Modified"]
    await body_of(first)
    again = await client.get("/api/files/download", {"path": "a.txt"}, headers={"If-None-Match": etag})
    assert again.status_code == 304
    again = await client.get("/api/files/download", {"path": "a.txt"}, headers={"If-Modified-Since": modified})
    assert again.status_code == 304
    stale = await client.get(
        "/api/files/download", {"path": "a.txt"}, headers={"Range": "bytes=0-0", "If-Range": '"stale"'}
    )
    assert stale.status_code == 200 and await body_of(stale) == b"abc"


async def test_download_uses_rfc6266_filenames(api_client, owner):
    (area("owner") / "résumé 2024.pdf").write_bytes(b"%PDF")
    response = await api_client(owner).get("/api/files/download", {"path": "résumé 2024.pdf"})
    assert response["Content-Disposition"] == (
        "attachment; filename=\"r_sum_ 2024.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9%202024.pdf"
    )
    await body_of(response)


async def test_html_and_svg_are_never_served_inline(api_client, owner):
    (area("owner") / "x.html").write_text("<script>alert(1)</script>")
    (area("owner") / "x.svg").write_text("<svg onload=alert(1)></svg>")
    client = api_client(owner)
    for name in ("x.html", "x.svg"):
        raw = await client.get("/api/files/preview", {"path": name, "raw": "true"})
        assert raw.status_code == 415 and raw.json()["code"] == "not_previewable"
        download = await client.get("/api/files/download", {"path": name})
        assert download["Content-Disposition"].startswith("attachment;")
        assert download["X-Content-Type-Options"] == "nosniff"
        assert "sandbox" in download["Content-Security-Policy"]
        await body_of(download)


async def test_images_preview_inline(api_client, owner):
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
    (area("owner") / "p.png").write_bytes(png)
    client = api_client(owner)
    preview = (await client.get("/api/files/preview", {"path": "p.png"})).json()
    assert preview["kind"] == "image" and preview["url"] == "/api/files/preview?path=p.png&raw=true"
    raw = await client.get(preview["url"])
    assert raw.status_code == 200 and raw["Content-Type"] == "image/png"
    assert raw["Content-Disposition"].startswith("inline;") and await body_of(raw) == png


async def test_delete_of_a_folder_needs_recursive(api_client, owner):
    (area("owner") / "d").mkdir()
    (area("owner") / "d" / "f.txt").write_text("f")
    client = api_client(owner)
    response = await client.delete("/api/files/?path=d")
    assert response.status_code == 409 and response.json()["code"] == "directory_not_empty"
    response = await client.delete("/api/files/?path=d&recursive=true")
    assert response.status_code == 200 and response.json()["size"] == 1


async def test_missing_paths_are_404(api_client, owner):
    client = api_client(owner)
    for call in (client.get("/api/files/", {"path": "nope"}), client.get("/api/files/download", {"path": "n.txt"})):
        response = await call
        assert response.status_code == 404 and response.json()["code"] == "file_not_found"


async def test_refused_mutations_are_audited(api_client, owner):
    response = await api_client(owner).post("/api/files/mkdir", {"path": "../x"}, content_type="application/json")
    assert response.status_code == 403
    event = await AuditEvent.objects.aget(action="files.mkdir")
    assert event.data["result"] == "path_forbidden" and event.data["path"] == "../x"


async def test_the_quota_lock_file_is_beside_the_area_and_out_of_reach(api_client, owner, settings):
    settings.FILES_USER_QUOTA_BYTES = 1000
    client = api_client(owner)
    assert (await post_upload(client, {}, [("a.txt", b"a")])).status_code == 201
    lock = Path(settings.FILES_ROOT) / ".autobot-locks" / "owner.lock"
    assert lock.is_file() and os.listdir(area("owner")) == ["a.txt"]
    assert [i["name"] for i in (await client.get("/api/files/")).json()["items"]] == ["a.txt"]
    for path in ("../.autobot-locks/owner.lock", ".autobot-locks/owner.lock"):
        response = await client.get("/api/files/download", {"path": path})
        assert response.status_code in (403, 404)
        response = await client.delete("/api/files/", QUERY_STRING=f"path={path}")
        assert response.status_code in (403, 404)
    assert lock.is_file()


async def test_the_lock_folder_is_never_an_area(api_client, django_user_model):
    user = await django_user_model.objects.acreate(username=".autobot-locks")
    response = await api_client(user).get("/api/files/")
    assert response.status_code == 403 and response.json()["code"] == "path_forbidden"
