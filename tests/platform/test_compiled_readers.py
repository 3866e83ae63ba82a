"""A compiled list query's shorter readers (autobot/compiled.py) give exactly what the ORM gives,
on real rows: a datetime selected as the text SQLite stores (the form the ORM writes, and every
other form, NULL and impossible dates the ORM's way), a JSONField parsed by orjson (and by
`json.loads` wherever orjson could read otherwise), a boolean the driver already made a `bool`."""

import json
from datetime import UTC, datetime

import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from autobot.compiled import ISO_DATETIME, CompiledQuery
from autobot.responses import JSON_DATETIME, json_datetime
from chat.models import ChatSession
from knowledge.models import KnowledgeEntry

pytestmark = pytest.mark.django_db(transaction=True)

ENTRY_FIELDS = ("id", "tags", "shared", "created_at", "updated_at")
WRITERS = [(ISO_DATETIME, datetime.isoformat), (JSON_DATETIME, json_datetime)]


def _entries(text=None) -> CompiledQuery:
    def build():
        return KnowledgeEntry.objects.order_by("id").values_list(*ENTRY_FIELDS)

    return CompiledQuery(build, text=text)


def _orm_entries(write=None) -> list[list]:
    """The ORM's rows, the dates written by hand as the views wrote them before."""
    return [[id_, tags, shared, *(value if value is None or write is None else write(value) for value in dates)]
            for id_, tags, shared, *dates in KnowledgeEntry.objects.order_by("id").values_list(*ENTRY_FIELDS)]


def _new_entries(owner, count: int) -> list[int]:
    return [KnowledgeEntry.objects.create(owner=owner, title=f"e{n}", content="c", content_hash=f"{n}").pk
            for n in range(count)]


def _store(column: str, values: list, ids: list[int], *, model=KnowledgeEntry) -> None:
    """Write each value into `column` as it is, by SQL: what some other program might have left."""
    with connection.cursor() as cursor:
        for pk, value in zip(ids, values, strict=True):
            cursor.execute(f"UPDATE {model._meta.db_table} SET {column} = %s WHERE id = %s", [value, pk])


def _typed(rows) -> str:
    """The rows with their values' types: 1, 1.0 and True are not the same answer."""
    return repr(rows)


def _sqlite_only():
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's storage")


def test_sqlite_selects_the_dates_as_their_stored_text_and_orders_by_the_column(owner):
    _sqlite_only()
    query = CompiledQuery(lambda: KnowledgeEntry.objects.order_by("-created_at").values_list(*ENTRY_FIELDS),
                          text={"created_at": JSON_DATETIME, "updated_at": ISO_DATETIME})
    select, order = query._for(connection).sql.split(" ORDER BY ")
    assert 'CAST("knowledge_knowledgeentry"."created_at" AS text)' in select
    assert 'CAST("knowledge_knowledgeentry"."updated_at" AS text)' in select
    assert order == '"knowledge_knowledgeentry"."created_at" DESC'
    # The entries list orders by the date itself, not by its text (nor by its place in the row).
    from knowledge.api import _entry_list_query

    sql = _entry_list_query(staff=True, category=False, tag=False, source_type=False, source=False,
                            mine=False)._for(connection).sql
    assert sql.endswith('ORDER BY "knowledge_knowledgeentry"."updated_at" DESC, 1 DESC')


@pytest.mark.postgres
def test_postgresql_selects_the_dates_themselves(owner):
    sql = _entries({"created_at": JSON_DATETIME, "updated_at": ISO_DATETIME})._for(connection).sql
    assert "CAST" not in sql.upper()


# Dates as the ORM writes them: every kind of fraction (none, under a millisecond, 500 µs: ".000"
# in JSON), the last day of each kind of month, February 29th, a year of three digits.
ORM_DATES = [
    datetime(2026, 12, 7, 12, 30, 45, 123456, tzinfo=UTC), datetime(2026, 12, 7, 12, 30, 45, tzinfo=UTC),
    datetime(2026, 12, 7, 12, 30, 45, 500, tzinfo=UTC), datetime(2026, 12, 7, 12, 30, 45, 1000, tzinfo=UTC),
    datetime(2026, 12, 7, 12, 30, 45, 999, tzinfo=UTC), datetime(2026, 1, 31, 23, 59, 59, 999999, tzinfo=UTC),
    datetime(2026, 4, 30, tzinfo=UTC), datetime(2026, 2, 28, 1, 2, 3, 4, tzinfo=UTC),
    datetime(2024, 2, 29, 12, 0, tzinfo=UTC), datetime(2000, 2, 29, 23, 59, 59, 100000, tzinfo=UTC),
    datetime(999, 3, 31, 1, 2, 3, 400000, tzinfo=UTC), datetime(1, 1, 1, tzinfo=UTC),
    datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), datetime(1970, 1, 1, tzinfo=UTC),
]

# Texts the ORM does not write, which it still reads: another separator, a zero fraction, a
# short or long fraction, offsets, "Z", one-digit fields, an integer, text that is no date (None).
ODD_TEXTS = [
    "2026-12-07T08:00:00", "2026-12-07 09:00:00.000000", "2026-12-07 10:00:00.123", "2026-12-07 10:00:00.5",
    "2026-12-07 10:00:00.1234567", "2026-12-07 11:00:00+02:00", "2026-12-07 11:00:00-0530",
    "2026-12-07 13:00:00Z", "2026-12-07 13:00:00.5Z", "2026-12-07 13:00", "2026-1-7 3:04:05", "2026-12-07",
    "2026-12-07 13:00:00 ", " 2026-12-07 13:00:00", "2026-12-07 13:00:00\n", "２０２６-12-07 13:00:00",
    "not a date", "", 12345, 1.5,
]


@pytest.mark.parametrize("text, write", WRITERS)
def test_dates_the_orm_wrote_read_as_the_orm_reads_them(owner, text, write):
    ids = _new_entries(owner, len(ORM_DATES))
    for pk, created, updated in zip(ids, ORM_DATES, reversed(ORM_DATES), strict=True):
        KnowledgeEntry.objects.filter(pk=pk).update(created_at=created, updated_at=updated)
    rows, count = _entries({"created_at": text, "updated_at": text}).page({}, limit=50)
    assert count == len(ORM_DATES)
    assert _typed(rows) == _typed(_orm_entries(write))


@pytest.mark.postgres
@pytest.mark.parametrize("text, write", WRITERS)
def test_postgresql_dates_read_as_the_orm_reads_them(owner, text, write):
    test_dates_the_orm_wrote_read_as_the_orm_reads_them(owner, text, write)


@pytest.mark.parametrize("text, write", WRITERS)
def test_dates_stored_in_other_forms_read_the_orms_way(owner, text, write):
    _sqlite_only()
    ids = _new_entries(owner, len(ODD_TEXTS))
    _store("created_at", ODD_TEXTS, ids)
    _store("updated_at", list(reversed(ODD_TEXTS)), ids)
    rows, _count = _entries({"created_at": text, "updated_at": text}).page({}, limit=50)
    expected = _orm_entries(write)
    assert _typed(rows) == _typed(expected)
    assert None in [row[3] for row in expected]  # "not a date", "", 12345, 1.5…: no date to the ORM


@pytest.mark.parametrize("stored", ["2023-02-29 12:00:00", "2026-04-31 00:00:00", "2026-13-01 00:00:00",
                                    "2026-12-07 24:00:00", "2026-12-07 12:60:00", "2026-12-07 12:00:60",
                                    "0000-01-01 00:00:00"])
def test_a_date_that_does_not_exist_fails_as_the_orm_fails(owner, stored):
    """Well formed but impossible: Django's parse_datetime raises ValueError; so does the list."""
    _sqlite_only()
    _store("created_at", [stored], _new_entries(owner, 1))
    with pytest.raises(ValueError):
        _orm_entries()
    with pytest.raises(ValueError):
        _entries({"created_at": JSON_DATETIME}).page({})


@pytest.mark.parametrize("text, write", WRITERS)
def test_a_null_date_reads_as_null(owner, colleague, text, write):
    """A user with no entry has no dates (LEFT JOIN): NULL, read as None on every path."""
    _new_entries(owner, 2)
    users = get_user_model().objects.order_by("username", "knowledge_entries__id")
    fields = ("username", "knowledge_entries__created_at", "knowledge_entries__tags")
    rows, _count = CompiledQuery(lambda: users.values_list(*fields),
                                 text={"knowledge_entries__created_at": text}).page({})
    expected = [[name, None if when is None else write(when), tags] for name, when, tags in users.values_list(*fields)]
    assert _typed(rows) == _typed(expected)
    assert ["colleague", None, None] in rows


@pytest.mark.parametrize("text, write", WRITERS)
def test_one_date_in_another_form_sends_its_page_the_orms_way(owner, text, write):
    """Every value of the page reads as a datetime, one of them with an offset: that one keeps it."""
    ids = _new_entries(owner, 3)
    _store("created_at", ["2026-12-07 11:00:00", "2026-12-07 11:00:00+02:00", "2026-12-07 11:00:00.000500"], ids)
    rows, _count = _entries({"created_at": text, "updated_at": text}).page({}, limit=50)
    assert _typed(rows) == _typed(_orm_entries(write))
    assert rows[1][3] == write(datetime.fromisoformat("2026-12-07 11:00:00+02:00"))


# JSON the ORM writes: what tags hold, and any other JSON value.
ORM_JSON = [["bench"], [], ["été", "日本語", 'a"b\\c', "😀", "\u2028"], {"a": {"b": [True, False, None]}},
            {"z": 1, "a": 2}, [1, -2, 9223372036854775807, 18446744073709551615], "just text", 0, True,
            [[[[["deep"]]]]], [1.5, -0.0], {"n": 10**30}]

# Texts the ORM does not write, which it still reads: floats orjson reads as json does or not,
# integers past 64 bits, NaN and Infinity, a lone surrogate, repeated keys, spaces, invalid JSON
# (the ORM gives the text itself), JSON's null, a number (SQLite keeps it as text in this column), a
# NUL character (which PostgreSQL's jsonb refuses).
ODD_JSON = ["[1e400]", "[99999999999999999999]", "[-9223372036854775809]", "[NaN]", "[Infinity, -Infinity]",
            '["\\ud800"]', '{"k": "\\ud83d\\ude00", "k": 2}', '{"a": 1, "b": 2, "a": 3}', "  [1, 2]\n",
            '["\\u00e9", "\\/"]', "not json", "", "[1,]", "[" * 600 + "]" * 600, "null", 5,
            '["a\\u0000b"]']


def test_json_the_orm_wrote_reads_as_the_orm_reads_it(owner):
    ids = _new_entries(owner, len(ORM_JSON))
    for pk, value in zip(ids, ORM_JSON, strict=True):
        KnowledgeEntry.objects.filter(pk=pk).update(tags=value)
    rows, _count = _entries().page({}, limit=50)
    assert _typed(rows) == _typed(_orm_entries())
    assert [row[1] for row in rows] == ORM_JSON


@pytest.mark.postgres
def test_postgresql_json_reads_as_the_orm_reads_it(owner):
    test_json_the_orm_wrote_reads_as_the_orm_reads_it(owner)


@pytest.fixture
def unchecked_json():
    """SQLite checks a JSONField's text with JSON_VALID; other programs may not have."""
    _sqlite_only()
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA ignore_check_constraints = ON")
    yield
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA ignore_check_constraints = OFF")


def test_json_stored_in_other_forms_reads_the_orms_way(owner, unchecked_json):
    ids = _new_entries(owner, len(ODD_JSON))
    _store("tags", ODD_JSON, ids)
    rows, _count = _entries().page({}, limit=50)
    expected = _orm_entries()
    assert _typed(rows) == _typed(expected)
    assert expected[0][1] == [float("inf")] and expected[1][1] == [99999999999999999999]
    assert expected[10][1] == "not json"


def test_booleans_read_as_the_orm_reads_them(owner):
    """All `bool`s, and pages with NULL (a nullable field) or values stored otherwise than 0/1."""
    sessions = [ChatSession.objects.create(owner=owner, title=f"s{n}", tools=tools).pk
                for n, tools in enumerate([True, False, True])]
    ids = _new_entries(owner, 4)
    KnowledgeEntry.objects.filter(pk__in=ids[:2]).update(shared=True)

    def session_rows():
        return CompiledQuery(lambda: ChatSession.objects.order_by("title").values_list("title", "tools")).page(
            {}, limit=50)[0]

    def orm_session_rows():
        return [list(row) for row in ChatSession.objects.order_by("title").values_list("title", "tools")]

    assert _typed(session_rows()) == _typed(orm_session_rows()) == _typed([["s0", True], ["s1", False], ["s2", True]])
    ChatSession.objects.filter(pk=sessions[1]).update(tools=None)
    assert _typed(session_rows()) == _typed(orm_session_rows())
    assert session_rows()[1] == ["s1", None]
    assert _typed(_entries().page({})[0]) == _typed(_orm_entries())
    if connection.vendor == "sqlite":
        _store("shared", [2, "yes", "1"], ids[1:])
        assert _typed(_entries().page({})[0]) == _typed(_orm_entries())


@pytest.mark.postgres
def test_postgresql_booleans_read_as_the_orm_reads_them(owner):
    test_booleans_read_as_the_orm_reads_them(owner)


def test_the_entries_list_reads_what_it_read_before(owner, colleague, api_client):
    """The API's bytes for dates with and without microseconds, unicode tags, shared or not:
    each item as the ORM's values written by services.entry_as_dict."""
    from asgiref.sync import async_to_sync

    from knowledge import services

    ids = _new_entries(owner, 4) + _new_entries(colleague, 1)
    for pk, (when, tags) in zip(ids, [(ORM_DATES[0], ["été"]), (ORM_DATES[1], []), (ORM_DATES[2], ["日本語", "x"]),
                                      (ORM_DATES[8], ["a"]), (ORM_DATES[10], ["b"])], strict=True):
        KnowledgeEntry.objects.filter(pk=pk).update(created_at=when, updated_at=when, tags=tags, shared=pk % 2 == 0)
    body = async_to_sync(api_client(owner).get)("/api/knowledge/entries").content
    entries = async_to_sync(services.entry_list)(user=owner)
    expected = [services.entry_as_dict(entry, content=False) for entry in entries]
    items = json.loads(json.dumps(expected, default=json_datetime))
    assert json.loads(body) == {"items": items, "count": len(expected)}
    created = {item["id"]: item["created_at"] for item in json.loads(body)["items"]}
    assert created[ids[2]] == "2026-12-07T12:30:45.000Z" and created[ids[1]] == "2026-12-07T12:30:45Z"  # 500 µs, 0
