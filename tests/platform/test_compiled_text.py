"""A compiled list query's text columns (autobot/compiled.py `text=`) read exactly what the ORM's
value gives when written by hand: the same text for every kind of date and id, on SQLite (the
short way) and on PostgreSQL (the ORM's converters), and the ORM's way for a value stored some
other way than the ORM stores it."""

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from autobot.compiled import ISO_DATETIME, CompiledQuery, Param, UUIDText
from autobot.responses import JSON_DATETIME, json_datetime
from chat.models import ChatSession

pytestmark = pytest.mark.django_db(transaction=True)

FIELDS = ("id", "created", "updated", "operator_terminal")
DATES = [
    datetime(2026, 12, 7, 12, 30, 45, 123456, tzinfo=UTC),
    datetime(2026, 12, 7, 12, 30, 45, tzinfo=UTC),  # a whole second: no fraction in the text
    datetime(2026, 12, 7, 12, 30, 45, 1000, tzinfo=UTC),  # exactly one millisecond
    datetime(2026, 12, 7, 12, 30, 45, 999, tzinfo=UTC),  # under a millisecond: ".000" in JSON
    datetime(2000, 2, 29, 23, 59, 59, 999999, tzinfo=UTC),
    datetime(1970, 1, 1, tzinfo=UTC),
    datetime(2026, 6, 1, 2, 0, tzinfo=timezone(timedelta(hours=5, minutes=30))),  # stored in UTC
]


def _query(created, updated) -> CompiledQuery:
    def build():
        rows = ChatSession.objects.filter(owner_id=Param("user", ChatSession._meta.get_field("owner").target_field))
        return rows.order_by("title").values_list(*FIELDS)

    return CompiledQuery(build, text={"id": UUIDText, "operator_terminal": UUIDText,
                                      "created": created, "updated": updated})


def _sessions(owner) -> None:
    for n, when in enumerate(DATES):
        session = ChatSession.objects.create(owner=owner, title=f"s{n}",
                                             operator_terminal=uuid.uuid4() if n % 2 else None)
        ChatSession.objects.filter(pk=session.pk).update(created=when, updated=when + timedelta(microseconds=n))


def _by_hand(owner, write) -> list[list]:
    """The ORM's values, written as the views wrote them before."""
    return [[str(id_), write(created), write(updated), str(terminal) if terminal else None]
            for id_, created, updated, terminal in
            ChatSession.objects.filter(owner=owner).order_by("title").values_list(*FIELDS)]


def _check_every_kind(owner) -> None:
    _sessions(owner)
    for text, write in ((ISO_DATETIME, datetime.isoformat), (JSON_DATETIME, json_datetime)):
        rows, count = _query(text, text).page({"user": owner.pk}, limit=50)
        assert count == len(DATES)
        assert rows == _by_hand(owner, write)
        assert all(type(value) is str for row in rows for value in row[:3])


def test_sqlite_reads_every_kind_of_date_and_id_as_the_orm_writes_it(owner):
    _check_every_kind(owner)


@pytest.mark.postgres
def test_postgresql_reads_every_kind_of_date_and_id_as_the_orm_writes_it(owner):
    _check_every_kind(owner)


def test_an_id_stored_in_capitals_is_read_the_orms_way(owner):
    """SQLite keeps a UUID as 32 lowercase hex digits when the ORM writes it; one written by other
    means (here in capitals) is read through the ORM's converter, so the text is still canonical."""
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's text storage of UUIDs")
    session = ChatSession.objects.create(owner=owner, title="caps", operator_terminal=uuid.uuid4())
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {ChatSession._meta.db_table} SET operator_terminal = %s WHERE id = %s",
                       [session.operator_terminal.hex.upper(), session.pk.hex])
    (row,), _count = _query(ISO_DATETIME, ISO_DATETIME).page({"user": owner.pk})
    assert row[3] == str(session.operator_terminal)
    assert row == _by_hand(owner, datetime.isoformat)[0]


def test_a_text_column_must_be_one_of_the_listed_fields():
    def build():
        return ChatSession.objects.values_list("id", "created")

    with pytest.raises(ImproperlyConfigured):
        CompiledQuery(build, text={"updated": ISO_DATETIME}).page({})


NAIVE = [datetime.min, datetime.max, datetime(1, 1, 1, 0, 0, 0, 1), datetime(999, 5, 5, 5, 5, 5, 100000),
         datetime(2026, 12, 7, 12, 30, 45, 120000), datetime(2026, 12, 7, 12, 30, 45, 9), *(
             datetime(2026, 12, 7, 12, 30, 45, 123456) + timedelta(days=day * 37, seconds=day * 7919, microseconds=step)
             for day in range(40) for step in (0, 1, 999, 1000, 123000, 654321))]


@pytest.mark.parametrize("text, write", [(ISO_DATETIME, datetime.isoformat), (JSON_DATETIME, json_datetime)])
def test_the_short_way_writes_a_naive_utc_date_as_the_aware_one_is_written(text, write):
    """The SQLite short way (orjson) against the writer's text for the value made aware in UTC, as
    the ORM's converter makes it: years of one to four digits, every kind of fraction."""
    for value in NAIVE:
        assert text.write_naive_utc(value) == write(value.replace(tzinfo=UTC)), value
    assert text.write_naive_utc_all(NAIVE) == [write(value.replace(tzinfo=UTC)) for value in NAIVE]
    assert text.write_naive_utc_all([]) == []
