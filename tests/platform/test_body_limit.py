"""Request bodies over AUTOBOT_MAX_REQUEST_BYTES are refused before Django reads them
(autobot/bodylimit.py): anonymous ones included, declared or streamed."""

import pytest
from asgiref.testing import ApplicationCommunicator

import autobot.asgi  # noqa: F401  (imports the MCP and A2A SDKs: at collection, not on a test's loop)
from files.asgi import streaming_application
from tests.conftest import asgi_response

pytestmark = pytest.mark.django_db(transaction=True)
PIECE = b"x" * 65536


def scope(path: str, *headers: tuple[bytes, bytes]) -> dict:
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
        "headers": [(b"host", b"testserver"), (b"content-type", b"multipart/form-data; boundary=b"), *headers],
        "client": ("127.0.0.1", 50000), "server": ("testserver", 80),
    }


async def post(path: str, pieces: int, *headers) -> tuple[int, bytes, int]:
    """POST ``pieces`` x 64 KiB, handed over only as the app asks; (status, body, pieces it took)."""
    comm = ApplicationCommunicator(streaming_application(), scope(path, *headers))
    for index in range(pieces):
        await comm.send_input({"type": "http.request", "body": PIECE, "more_body": index < pieces - 1})
    start, body = await asgi_response(comm)
    return start["status"], body, pieces - comm.input_queue.qsize()


@pytest.fixture
def small_limit(settings):
    settings.MAX_REQUEST_BYTES = 1024
    settings.KNOWLEDGE_MAX_UPLOAD_BYTES = 1024  # the cap never goes below a document upload (+ 1 MiB)
    return 1024 + 1024 * 1024


async def test_an_anonymous_endless_body_is_cut_off_at_the_limit(small_limit):
    # 64 pieces = 4 MiB, sent without a Content-Length (chunked): read only up to the limit.
    status, body, taken = await post("/api/knowledge/documents", 64)
    assert status == 413, body
    assert b'"code": "too_large"' in body
    assert taken * len(PIECE) <= small_limit + len(PIECE)


async def test_a_body_declared_over_the_limit_is_refused_unread(small_limit):
    status, body, taken = await post("/api/knowledge/documents", 4, (b"content-length", b"999999999999"))
    assert status == 413 and taken == 0


async def test_a_body_within_the_limit_reaches_the_view(small_limit):
    status, _, taken = await post("/api/knowledge/documents", 2)
    assert status == 401 and taken == 2  # read whole; then anonymous, as before


async def test_file_uploads_stream_past_the_limit(small_limit):
    # Not Django's buffered body: files/asgi.py streams it, and the area's own limits apply.
    status, _, _ = await post("/api/files/upload", 32)
    assert status == 401


async def test_a_file_upload_declaring_its_size_is_not_refused_by_the_cap(small_limit):
    # A 200 MB upload says so in its Content-Length: the area's limits judge it, not this cap.
    status, body, _ = await post("/api/files/upload", 32, (b"content-length", str(200 * 1024 * 1024).encode()))
    assert status == 401, body  # anonymous: reached the view's own checks


@pytest.mark.parametrize("path", ["/mcp", "/a2a"])
async def test_the_doors_bodies_are_capped_too(small_limit, path):
    # The MCP and A2A SDKs read a request's body whole into memory, as Django does.
    status, body, taken = await post(path, 4, (b"content-length", b"999999999999"))
    assert status == 413 and taken == 0, body
    status, body, taken = await post(path, 64)  # no length said: never read past the limit
    assert status in (401, 413), body  # anonymous: the door may refuse before it reads at all
    assert taken * len(PIECE) <= small_limit + len(PIECE)
