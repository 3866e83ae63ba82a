"""Inputs that used to end in a 500, and bodies that used to be coerced (issue 14)."""

import os
import threading

import pytest

from tests.files.test_api import area

pytestmark = pytest.mark.django_db(transaction=True)
JSON = "application/json"


@pytest.mark.parametrize("body", ["[]", "42", "null", '"x"', "true"])
@pytest.mark.parametrize("path", ["/api/chat/sessions", "/api/terminal/sessions", "/api/knowledge/entries"])
async def test_a_body_that_is_not_an_object_is_400(api_client, staff, path, body):
    response = await api_client(staff).post(path, body, content_type=JSON)
    assert response.status_code == 400, response.content
    assert response.json() == {"detail": "the request body must be a JSON object", "code": "bad_request"}


async def test_ten_thousand_deep_json_is_400(api_client, owner):
    deep = "[" * 10_000 + "]" * 10_000
    for path in ("/api/chat/sessions", "/api/agents/messages"):
        response = await api_client(owner).post(path, deep, content_type=JSON)
        assert response.status_code == 400, (path, response.content)
        assert "deeper than" in response.json()["detail"]


async def test_ten_thousand_deep_json_in_utf16_is_400(api_client, owner):
    # UTF-16 puts a quote's byte inside "Ģ" (22 01): the bytes alone hid the brackets after it.
    deep = ('{"content": "\u0122", "x": ' + "[" * 10_000 + "]" * 10_000 + "}").encode("utf-16-le")
    for path in ("/api/agents/messages", "/api/chat/sessions"):
        response = await api_client(owner).post(path, deep, content_type=JSON)
        assert response.status_code == 400, (path, response.content)
        assert "deeper than" in response.json()["detail"]


async def test_json_nested_within_the_bound_still_works(api_client, owner):
    data = {"x": 1}
    for _ in range(30):
        data = {"d": data}
    body = {"header": {"message_type": "NOTIFICATION", "recipient_id": "knowledge"},
            "payload": {"action": "note", "data": data}}
    import json

    response = await api_client(owner).post("/api/agents/messages", json.dumps(body), content_type=JSON)
    assert response.status_code == 202, response.content


@pytest.mark.parametrize(("body", "field"), [
    ({"content": "x", "shared": 0}, "shared"),
    ({"content": "x", "shared": "true"}, "shared"),
    ({"content": 5}, "content"),
    ({"content": "x", "tags": "a,b"}, "tags"),
])
async def test_values_are_not_coerced(api_client, owner, body, field):
    response = await api_client(owner).post("/api/knowledge/entries", body, content_type=JSON)
    assert response.status_code == 422, response.content
    assert response.json()["code"] == "validation_error" and field in response.json()["detail"]


async def test_a_number_is_not_a_date(api_client, staff):
    response = await api_client(staff).get("/api/terminal/audit", {"since": "1700000000"})
    assert response.status_code == 422 and "ISO 8601" in response.json()["detail"]
    assert (await api_client(staff).get("/api/terminal/audit", {"since": "2024-05-01T12:00:00Z"})).status_code == 200


async def test_a_tiny_wait_timeout_is_422(api_client, owner):
    body = '{"header": {"message_type": "REQUEST", "recipient_id": "knowledge"}, "payload": {"action": "search"}}'
    for timeout in ("5e-324", "0", "0.01"):
        response = await api_client(owner).post(f"/api/agents/messages?wait=true&timeout={timeout}", body,
                                                content_type=JSON)
        assert response.status_code == 422 and "timeout" in response.json()["detail"], timeout


@pytest.mark.parametrize("path", ["/api/knowledge/documents", "/api/files/upload"])
async def test_multipart_without_a_boundary_is_400(api_client, owner, path):
    response = await api_client(owner).post(path, b"--x\r\n\r\n", content_type="multipart/form-data")
    assert response.status_code == 400, response.content
    assert response.json()["code"] in ("bad_request", "invalid_multipart")


async def test_a_symlink_swapped_in_during_downloads_is_never_a_500_nor_served(api_client, owner, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "f.txt").write_text("outside secret")
    root = area("owner")
    (root / "real").mkdir()
    (root / "real" / "f.txt").write_text("inside")
    stop = threading.Event()

    def swap():  # the folder and the file flip between real things and symlinks out of the area
        n = 0
        while not stop.is_set():
            n += 1
            link = root / f".swap-{n}"
            os.symlink(outside if n % 2 else root / "real", link)
            os.replace(link, root / "docs")
            file_link = root / "real" / f".swap-{n}"
            os.symlink(outside / "f.txt", file_link)
            os.replace(file_link, root / "real" / "g.txt")
            (root / "real" / ".g").write_text("inside")
            os.replace(root / "real" / ".g", root / "real" / "g.txt")

    swapper = threading.Thread(target=swap, daemon=True)
    swapper.start()
    client, statuses = api_client(owner), set()
    try:
        for n in range(150):
            path = "docs/f.txt" if n % 2 else "real/g.txt"
            response = await client.get("/api/files/download", {"path": path})
            statuses.add(response.status_code)
            body = b"".join([chunk async for chunk in response.streaming_content]) if response.streaming else b""
            assert b"outside secret" not in body
    finally:
        stop.set()
        swapper.join()
    assert statuses <= {200, 400, 403, 404}, statuses


async def test_a_deep_websocket_frame_is_an_error_frame(ws_connect, api_client, owner):
    session = (await api_client(owner).post("/api/chat/sessions", "{}", content_type=JSON)).json()
    comm = await ws_connect(f"/ws/chat/{session['id']}/", user=owner)
    await comm.send_to(text_data="[" * 5000 + "]" * 5000)
    frame = await comm.receive_json_from(timeout=5)
    while frame.get("type") != "error":  # the session snapshot comes first
        frame = await comm.receive_json_from(timeout=5)
    assert frame["code"] == "invalid_json"
    await comm.disconnect()
