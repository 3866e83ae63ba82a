"""`autobot.dbread.read_one` and `read_all`: rows read as Django's cursor reads it, and Django's cursor whenever
it would do more (logging, execute wrappers, a broken transaction, an event loop, no connection)."""

import asyncio
import hashlib
import inspect

import pytest
from django.core.exceptions import SynchronousOnlyOperation
from django.db import DatabaseError, OperationalError, connection, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.sqlite3.base import SQLiteCursorWrapper
from django.db.backends.utils import CursorWrapper
from django.db.transaction import TransactionManagementError
from django.test.utils import CaptureQueriesContext

from autobot.dbread import read_all, read_one

pytestmark = pytest.mark.django_db

SQL = "SELECT %s || '%%', 1 + %s"

# The sha256 of the Django code read_one restates: the cursor's preparation, its execute, and
# SQLite's `%s` rewrite. A new Django version fails here, so autobot/dbread.py gets looked at.
DJANGO_CURSOR_SHA256 = "9be09a0376378c183cd7291d29b2ccc6dfd184a94f53f931440d30104f5a0f17"


def django_cursor_sha256() -> str:
    sources = [inspect.getsource(fn) for fn in (BaseDatabaseWrapper._cursor, BaseDatabaseWrapper._prepare_cursor,
                                                CursorWrapper._execute, SQLiteCursorWrapper.execute,
                                                SQLiteCursorWrapper.convert_query)]
    return hashlib.sha256("".join(sources).encode()).hexdigest()


def test_what_dbread_restates_is_django_s_current_code():
    assert django_cursor_sha256() == DJANGO_CURSOR_SHA256, (
        "Django's cursor code changed: bring autobot/dbread.py in line with it, then update DJANGO_CURSOR_SHA256")


def test_a_row_reads_as_through_django_s_cursor():
    with connection.cursor() as cursor:
        cursor.execute(SQL, ["a", 2])
        expected = cursor.fetchone()
    assert read_one(connection, SQL, ["a", 2]) == expected == ("a%", 3)
    assert read_one(connection, "SELECT 1 WHERE 1 = %s", [0]) is None


def test_all_rows_read_as_through_django_s_cursor():
    sql = "SELECT %s || '%%s' UNION ALL SELECT %s ORDER BY 1"
    with connection.cursor() as cursor:
        cursor.execute(sql, ["a", "b"])
        expected = cursor.fetchall()
    assert read_all(connection, sql, ["a", "b"]) == expected == [("a%s",), ("b",)]
    assert read_all(connection, "SELECT 1 WHERE 1 = %s", [0]) == []


@pytest.mark.postgres
def test_on_postgresql_django_s_cursor_reads_them():
    test_a_row_reads_as_through_django_s_cursor()
    test_all_rows_read_as_through_django_s_cursor()
    test_database_errors_are_django_s()


def test_logged_queries_and_execute_wrappers_see_the_read():
    with CaptureQueriesContext(connection) as captured:
        assert read_one(connection, SQL, ["b", 1]) == ("b%", 2)
    assert len(captured.captured_queries) == 1
    seen = []

    def wrapper(execute, sql, params, many, context):
        seen.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(wrapper):
        read_one(connection, SQL, ["c", 1])
    assert seen == [SQL]


def test_database_errors_are_django_s():
    with pytest.raises(DatabaseError) as raised:
        read_one(connection, "SELECT * FROM no_such_table WHERE 1 = %s", [1])
    assert type(raised.value).__module__ == "django.db.utils"  # not the driver's own class
    if connection.vendor == "sqlite":
        assert isinstance(raised.value, OperationalError)


def test_a_broken_transaction_refuses_the_read():
    with transaction.atomic():
        connection.needs_rollback = True
        try:
            with pytest.raises(TransactionManagementError):
                read_one(connection, SQL, ["d", 1])
        finally:
            connection.needs_rollback = False


def test_an_event_loop_in_the_thread_refuses_the_read():
    async def on_the_loop():
        return read_one(connection, SQL, ["e", 1])

    with pytest.raises(SynchronousOnlyOperation):
        asyncio.run(on_the_loop())


def test_a_connection_used_from_another_thread_is_refused():
    import threading

    from django.db import connections

    errors = []
    this_thread_s = connections["default"]
    this_thread_s.ensure_connection()

    def other():
        try:
            read_one(this_thread_s, SQL, ["f", 1])
        except DatabaseError as exc:
            errors.append(exc)

    thread = threading.Thread(target=other)
    thread.start()
    thread.join()
    assert errors and "thread" in str(errors[0])


@pytest.mark.django_db(transaction=True)
def test_a_closed_connection_is_opened_again():
    connection.close()
    assert connection.connection is None
    assert read_one(connection, SQL, ["g", 1]) == ("g%", 2)
    assert connection.connection is not None
