"""The incremental multipart parser (files/multipart.py)."""

import pytest

from files.multipart import MultipartError, PartData, PartEnd, PartStart, boundary_from, parse

BOUNDARY = b"----autobotBoundary7MA4YWxk"


def body(*parts: tuple[str, str | None, bytes]) -> bytes:
    out = b""
    for name, filename, data in parts:
        out += b"--" + BOUNDARY + b"\r\n"
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        out += f"Content-Disposition: {disposition}\r\n".encode()
        if filename is not None:
            out += b"Content-Type: application/octet-stream\r\n"
        out += b"\r\n" + data + b"\r\n"
    return out + b"--" + BOUNDARY + b"--\r\n"


async def collect(raw: bytes, chunk: int):
    async def chunks():
        for i in range(0, len(raw), chunk):
            yield raw[i : i + chunk]

    parts = []
    async for event in parse(chunks(), BOUNDARY):
        if isinstance(event, PartStart):
            parts.append([event, b""])
        elif isinstance(event, PartData):
            parts[-1][1] += event.data
        else:
            assert isinstance(event, PartEnd)
    return [(start.name, start.filename, data) for start, data in parts]


TRICKY = b"line\r\n--" + BOUNDARY[:-1] + b"\r\n\r\n--" + b"x" * 50 + b"\r"


@pytest.mark.parametrize("chunk", [1, 2, 7, 64, 4096, 1 << 20])
async def test_it_parses_fields_and_files_at_any_chunk_size(chunk):
    raw = body(("path", None, b"docs"), ("files", "a.txt", b"hello"), ("files", "b.bin", TRICKY))
    assert await collect(raw, chunk) == [
        ("path", None, b"docs"),
        ("files", "a.txt", b"hello"),
        ("files", "b.bin", TRICKY),
    ]


async def test_it_handles_an_empty_file():
    assert await collect(body(("files", "empty", b"")), 3) == [("files", "empty", b"")]


async def test_it_rejects_a_truncated_body():
    raw = body(("files", "a.txt", b"hello"))[:-10]
    with pytest.raises(MultipartError):
        await collect(raw, 5)


async def test_it_rejects_a_part_without_disposition():
    raw = b"--" + BOUNDARY + b"\r\nContent-Type: text/plain\r\n\r\nx\r\n--" + BOUNDARY + b"--\r\n"
    with pytest.raises(MultipartError):
        await collect(raw, 100)


async def test_it_decodes_rfc5987_filenames():
    raw = (
        b"--" + BOUNDARY + b'\r\nContent-Disposition: form-data; name="files"; filename="fallback"; '
        b"filename*=UTF-8''r%C3%A9sum%C3%A9.txt\r\n\r\nx\r\n--" + BOUNDARY + b"--\r\n"
    )
    assert await collect(raw, 10) == [("files", "résumé.txt", b"x")]


async def test_it_keeps_raw_utf8_filenames():
    raw = body(("files", "naïve.txt", b"x"))
    assert await collect(raw, 10) == [("files", "naïve.txt", b"x")]


def test_boundary_from_content_type():
    assert boundary_from('multipart/form-data; boundary="abc"') == b"abc"
    assert boundary_from("multipart/form-data; charset=utf-8; boundary=xyz") == b"xyz"
    with pytest.raises(MultipartError):
        boundary_from("application/json")
    with pytest.raises(MultipartError):
        boundary_from("multipart/form-data")
