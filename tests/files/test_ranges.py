"""HTTP helpers: Range, conditional requests, Content-Disposition (files/ranges.py)."""

from datetime import UTC, datetime

import pytest

from files.ranges import (
    RangeNotSatisfiable,
    content_disposition,
    http_date,
    make_etag,
    not_modified,
    parse_range,
    range_applies,
)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("bytes=0-99", [(0, 99)]),
        ("bytes=100-", [(100, 999)]),
        ("bytes=-100", [(900, 999)]),
        ("bytes=-5000", None),  # whole file
        ("bytes=0-", None),
        ("bytes=990-5000", [(990, 999)]),
        ("bytes=0-9, 20-29", [(0, 9), (20, 29)]),
        ("bytes=20-29,0-9,5-12", [(0, 12), (20, 29)]),
        ("bytes=0-9,10-19", [(0, 19)]),
        ("items=0-9", None),
        ("bytes=abc", None),
        ("bytes=9-3", None),
        ("bytes=--3", None),
        ("bytes=,", None),  # no range at all: a syntax error, ignored (RFC 9110 14.2)
        ("bytes= , ,", None),
        ("bytes=" + ",".join(f"{i}-{i}" for i in range(0, 40, 2)), None),  # too many
    ],
)
def test_parse_range(header, expected):
    assert parse_range(header, 1000) == expected


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=5000-6000", "bytes=-0"])
def test_it_reports_an_unsatisfiable_range(header):
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, 1000)


def test_an_empty_file_cannot_satisfy_any_range():
    with pytest.raises(RangeNotSatisfiable):
        parse_range("bytes=0-0", 0)


MODIFIED = datetime(2024, 5, 1, 12, 0, 0, 500000, tzinfo=UTC)
ETAG = make_etag(size=10, mtime_ns=1, inode=2)


def test_not_modified_by_etag():
    assert not_modified(if_none_match=ETAG, if_modified_since=None, etag=ETAG, modified=MODIFIED)
    assert not_modified(if_none_match=f'"x", W/{ETAG}', if_modified_since=None, etag=ETAG, modified=MODIFIED)
    assert not not_modified(if_none_match='"x"', if_modified_since=http_date(MODIFIED), etag=ETAG, modified=MODIFIED)


def test_not_modified_by_date():
    assert not_modified(if_none_match=None, if_modified_since=http_date(MODIFIED), etag=ETAG, modified=MODIFIED)
    assert not not_modified(
        if_none_match=None, if_modified_since="Mon, 01 Jan 2001 00:00:00 GMT", etag=ETAG, modified=MODIFIED
    )
    assert not not_modified(if_none_match=None, if_modified_since="garbage", etag=ETAG, modified=MODIFIED)


def test_if_range():
    assert range_applies(if_range=None, etag=ETAG, modified=MODIFIED)
    assert range_applies(if_range=ETAG, etag=ETAG, modified=MODIFIED)
    assert not range_applies(if_range='"other"', etag=ETAG, modified=MODIFIED)
    assert not range_applies(if_range="W/" + ETAG, etag=ETAG, modified=MODIFIED)
    assert range_applies(if_range=http_date(MODIFIED), etag=ETAG, modified=MODIFIED)


def test_content_disposition_has_an_ascii_fallback_and_utf8_name():
    value = content_disposition('résumé "final" 100%.pdf')
    assert value.startswith("attachment; ")
    assert 'filename="r_sum_ _final_ 100_.pdf"' in value
    assert "filename*=UTF-8''r%C3%A9sum%C3%A9%20%22final%22%20100%25.pdf" in value


def test_content_disposition_inline():
    assert content_disposition("a.png", inline=True).startswith('inline; filename="a.png"')
