"""A Statement (autobot/statements.py) runs its SQL as `cursor.execute` would: the same rows, the
same `django.db` errors, the broken-transaction check; logged, wrapped and PostgreSQL queries go
Django's way."""

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.transaction import TransactionManagementError
from django.test.utils import CaptureQueriesContext

from autobot.models import ApiToken
from autobot.statements import DJANGO_SOURCES_SHA256, Statement, django_sources_sha256

pytestmark = pytest.mark.django_db(transaction=True)

SQL = "SELECT %s, 'a%%b', %s || '%%s'"


def test_the_django_steps_done_again_are_django_s_current_ones():
    assert django_sources_sha256() == DJANGO_SOURCES_SHA256, (
        "Django's CursorWrapper.execute/_execute_with_wrappers/_execute or SQLiteCursorWrapper.execute/"
        "convert_query changed: bring autobot/statements.py in line with them, then update DJANGO_SOURCES_SHA256")


def _rows(run) -> list:
    with connection.cursor() as cursor:
        run(cursor)
        return cursor.fetchall()


def test_it_reads_what_cursor_execute_reads():
    statement = Statement(SQL)
    expected = _rows(lambda cursor: cursor.execute(SQL, ["x", "y"]))
    assert expected == [("x", "a%b", "y%s")]
    assert _rows(lambda cursor: statement.execute(cursor, ["x", "y"])) == expected
    assert _rows(lambda cursor: statement.execute(cursor, ["z", "%s"])) == [("z", "a%b", "%s%s")]  # again, other values
    if connection.vendor == "sqlite":  # the short way was taken, with Django's conversion
        assert statement._qmark == "SELECT ?, 'a%b', ? || '%s'"


@pytest.mark.postgres
def test_it_reads_what_cursor_execute_reads_on_postgresql():
    test_it_reads_what_cursor_execute_reads()


def test_a_failure_is_django_s_error():
    with pytest.raises(DatabaseError) as failed, connection.cursor() as cursor:
        Statement("SELECT * FROM no_such_table WHERE 1 = %s").execute(cursor, [1])
    assert type(failed.value).__module__ == "django.db.utils"
    table = ApiToken._meta.db_table
    with pytest.raises(IntegrityError), connection.cursor() as cursor:  # django.db's IntegrityError, not sqlite3's
        Statement(f"INSERT INTO {table} (name) VALUES (%s)").execute(cursor, ["no user"])


def test_a_broken_transaction_refuses_the_next_query():
    with transaction.atomic():
        with pytest.raises(DatabaseError), transaction.atomic(savepoint=False), connection.cursor() as cursor:
            Statement("SELECT * FROM no_such_table").execute(cursor, [])
        with pytest.raises(TransactionManagementError), connection.cursor() as cursor:
            Statement("SELECT %s").execute(cursor, [1])


def test_a_logging_cursor_logs_it():
    with CaptureQueriesContext(connection) as queries:
        assert _rows(lambda cursor: Statement(SQL).execute(cursor, ["x", "y"])) == [("x", "a%b", "y%s")]
    assert len(queries) == 1 and "a%" in queries[0]["sql"]


def test_execute_wrappers_see_it():
    seen = []

    def wrapper(execute, sql, params, many, context):
        seen.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(wrapper):
        assert _rows(lambda cursor: Statement(SQL).execute(cursor, ["x", "y"])) == [("x", "a%b", "y%s")]
    assert seen == [(SQL, ["x", "y"])]
