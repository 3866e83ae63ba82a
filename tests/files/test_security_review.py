"""Regressions from the security review of the files app (each failed before its fix)."""

import os

import pytest
from django.test import AsyncClient

from autobot.models import AuditEvent
from files import paths, storage
from files.paths import PathRefused
from files.ranges import parse_range
from tests.conftest import PASSWORD
from tests.files.test_api import BOUNDARY, area, body_of, multipart, post_upload
from tests.knowledge.test_security_review import shared_stream_pdf

pytestmark = pytest.mark.django_db(transaction=True)

CSRF = "a" * 32


async def session_client(user) -> AsyncClient:
    client = AsyncClient(enforce_csrf_checks=True)
    await client.alogin(username=user.username, password=PASSWORD)
    client.cookies["csrftoken"] = CSRF
    return client


def upload_body(name: str = "a.txt") -> dict:
    return {"data": multipart({}, [(name, b"x")]), "content_type": f"multipart/form-data; boundary={BOUNDARY}"}


# --- session uploads: authentication and CSRF really run -----------------------------------


async def test_a_session_upload_with_the_csrf_header_works(owner):
    client = await session_client(owner)
    response = await client.post("/api/files/upload", headers={"X-CSRFToken": CSRF}, **upload_body())
    assert response.status_code == 201, response.content
    assert (area("owner") / "a.txt").read_bytes() == b"x"


async def test_a_cross_site_form_post_with_the_session_cookie_is_403(owner):
    client = await session_client(owner)
    response = await client.post("/api/files/upload", headers={"Origin": "https://evil.example"}, **upload_body())
    assert response.status_code == 403 and response.json()["code"] == "csrf_failed"
    response = await client.post("/api/files/upload", **upload_body())
    assert response.status_code == 403 and response.json()["code"] == "csrf_failed"
    assert os.listdir(area("owner")) == []


@pytest.mark.parametrize("cookie", [None, "not-a-session"])
async def test_an_anonymous_upload_is_401(db, cookie):
    client = AsyncClient(enforce_csrf_checks=True)
    if cookie:
        client.cookies["sessionid"] = cookie
    response = await client.post("/api/files/upload", **upload_body())
    assert response.status_code == 401


# --- Range headers that used to crash the view ----------------------------------------------


@pytest.mark.parametrize("header", ["bytes=\xb2-", "bytes=0-\xb9", "bytes=" + "9" * 5000 + "-", "bytes=-" + "1" * 5000])
def test_odd_range_numbers_serve_the_whole_file(header):
    assert parse_range(header, 10) is None


async def test_odd_range_numbers_over_http_are_200(api_client, owner):
    (area("owner") / "d.bin").write_bytes(b"0123456789")
    client = api_client(owner)
    for header in ("bytes=\xb2-", "bytes=" + "9" * 5000 + "-"):
        response = await client.get("/api/files/download", {"path": "d.bin"}, headers={"Range": header})
        assert response.status_code == 200 and await body_of(response) == b"0123456789"


# --- uploads are all or nothing, also when a later file cannot be placed -----------------------


async def test_overwrite_onto_a_folder_replaces_nothing(api_client, owner):
    (area("owner") / "a.txt").write_text("old")
    (area("owner") / "d").mkdir()
    response = await post_upload(api_client(owner), {"overwrite": "true"}, [("a.txt", b"new"), ("d", b"x")])
    assert response.status_code == 409
    assert (area("owner") / "a.txt").read_text() == "old"
    assert sorted(os.listdir(area("owner"))) == ["a.txt", "d"]


@pytest.mark.parametrize("overwrite", [False, True])
async def test_a_failure_at_commit_time_rolls_back_placed_files(owner, overwrite, settings):
    root = area("owner")
    (root / "a.txt").write_text("old")
    if not overwrite:
        (root / "a.txt").unlink()
    with pytest.raises(storage.EntryExists):
        async with storage.Upload(str(root), "", overwrite=overwrite) as upload:
            for name in ("a.txt", "b.txt"):
                await upload.file_begin(name)
                await upload.file_write(b"new " + name.encode())
            # Someone makes b.txt a folder (overwrite) / a file (no overwrite) before the commit.
            (root / "b.txt").mkdir() if overwrite else (root / "b.txt").write_text("theirs")
            await upload.commit()
    expected = ["a.txt", "b.txt"] if overwrite else ["b.txt"]
    assert sorted(os.listdir(root)) == expected
    if overwrite:
        assert (root / "a.txt").read_text() == "old"
    else:
        assert (root / "b.txt").read_text() == "theirs"


# --- hard links: another name for a file that may be outside the area -------------------------


async def test_a_hard_link_to_an_outside_file_is_not_served(api_client, owner, tmp_path):
    outside = tmp_path / "secret.txt"
    outside.write_text("outside secret")
    os.link(outside, area("owner") / "hl.txt")
    client = api_client(owner)
    for url in ("/api/files/download", "/api/files/preview"):
        response = await client.get(url, {"path": "hl.txt"})
        assert response.status_code == 403 and response.json()["code"] == "path_forbidden"
    # Replacing or deleting the link never writes through to the outside file.
    assert (await post_upload(client, {"overwrite": "true"}, [("hl.txt", b"new")])).status_code == 201
    assert (await client.delete("/api/files/?path=hl.txt")).status_code == 200
    assert outside.read_text() == "outside secret"


# --- names the API must not create ---------------------------------------------------------------


@pytest.mark.parametrize("name", ["evil\u202etxt.exe", "a\u2066b", ".autobot-upload-0000.part"])
def test_new_names_refuse_bidi_controls_and_the_temp_prefix(name):
    with pytest.raises(PathRefused):
        paths.validate_new_name(name)


@pytest.mark.parametrize("name", ["evil\u202etxt.exe", ".autobot-upload-0000.part"])
async def test_the_api_does_not_create_disguised_or_hidden_names(api_client, owner, name):
    (area("owner") / "f.txt").write_text("f")
    client = api_client(owner)
    calls = [
        post_upload(client, {}, [(name, b"x")]),
        client.post("/api/files/mkdir", {"path": name}, content_type="application/json"),
        client.post("/api/files/move", {"src": "f.txt", "dst": name}, content_type="application/json"),
    ]
    for call in calls:
        response = await call
        assert response.status_code == 403 and response.json()["code"] == "path_forbidden"
    assert os.listdir(area("owner")) == ["f.txt"]


async def test_an_existing_disguised_name_can_still_be_renamed_and_deleted(api_client, owner):
    (area("owner") / "evil\u202etxt.exe").write_text("x")
    client = api_client(owner)
    response = await client.post(
        "/api/files/move", {"src": "evil\u202etxt.exe", "dst": "evil.exe"}, content_type="application/json"
    )
    assert response.status_code == 200
    assert (await client.delete("/api/files/?path=evil.exe")).status_code == 200


# --- refusals of another user's area are audit events too ----------------------------------------


async def test_a_refused_area_is_audited_for_every_mutation(api_client, owner, colleague):
    (area("colleague") / "secret.txt").write_text("secret")
    client = api_client(owner)
    responses = [
        await client.delete("/api/files/?path=secret.txt&user=colleague"),
        await client.post("/api/files/mkdir?user=colleague", {"path": "x"}, content_type="application/json"),
        await client.post(
            "/api/files/move?user=colleague", {"src": "secret.txt", "dst": "y"}, content_type="application/json"
        ),
        await post_upload(client, {}, [("z.txt", b"z")], query="?user=colleague"),
    ]
    assert [r.status_code for r in responses] == [404] * 4
    events = [e async for e in AuditEvent.objects.filter(action__startswith="files.").order_by("id")]
    assert [e.action for e in events] == ["files.delete", "files.mkdir", "files.move", "files.upload"]
    assert all(e.data["result"] == "area_not_found" and e.data["area"] == "colleague" for e in events)
    assert all(e.actor_name == "owner" for e in events)
    assert sorted(os.listdir(area("colleague"))) == ["secret.txt"]


# --- PDF previews: the text inside is read by pypdf, which hostile PDFs can trip or stall ---------


@pytest.mark.parametrize(
    "stream",
    [
        pytest.param(b"BT /F1 12 Tf [" + b"0 " * 100_001 + b"] TJ ET", id="array-over-pypdf-limit"),
        pytest.param(b"BT /F1 12 Tf " + b"[" * 5000 + b"(x)" + b"]" * 5000 + b" TJ ET", id="nested-arrays"),
    ],
)
async def test_a_pdf_that_trips_the_parser_previews_as_metadata_not_a_500(api_client, owner, stream):
    (area("owner") / "trap.pdf").write_bytes(shared_stream_pdf(1, stream))
    response = await api_client(owner).get("/api/files/preview", {"path": "trap.pdf"})
    assert response.status_code == 200, response.content
    assert response.json()["kind"] == "none"


async def test_a_pdf_made_to_be_slow_previews_as_metadata_once_its_budget_is_spent(api_client, owner, settings):
    # 60 pages of 200 words: about 54,000 instructions, and 12,000 characters of text, short of the
    # preview's 64 KiB, so only the budget can stop the reading early.
    (area("owner") / "slow.pdf").write_bytes(shared_stream_pdf(60, b"BT /F1 12 Tf (a) Tj ET\n" * 200))
    settings.KNOWLEDGE_PDF_MAX_OPERATIONS = 100_000
    body = (await api_client(owner).get("/api/files/preview", {"path": "slow.pdf"})).json()
    assert body["kind"] == "text" and body["text"].count("a") == 60 * 200  # readable within a larger budget
    settings.KNOWLEDGE_PDF_MAX_OPERATIONS = 20_000
    response = await api_client(owner).get("/api/files/preview", {"path": "slow.pdf"})
    assert response.status_code == 200, response.content
    assert response.json()["kind"] == "none"


async def test_a_long_pdf_preview_reads_only_what_it_shows(api_client, owner, settings):
    # All 2,000 pages would spend the budget (about 100 a page); 64 KiB of text is 330 of them.
    settings.KNOWLEDGE_PDF_MAX_OPERATIONS = 50_000
    (area("owner") / "long.pdf").write_bytes(shared_stream_pdf(2000, b"BT /F1 12 Tf (" + b"x" * 200 + b") Tj ET"))
    body = (await api_client(owner).get("/api/files/preview", {"path": "long.pdf"})).json()
    assert body["kind"] == "text" and body["truncated"] is True
    assert len(body["text"]) == 64 * 1024
