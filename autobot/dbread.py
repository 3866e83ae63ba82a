"""A hot read on SQLite, without the layers of Django's cursor that do nothing there.

Every page reads its session row and its user row (autobot/sessions.py); every API call with a
token its token row (autobot/auth.py), and a list its page (autobot/compiled.py). Through
`connection.cursor()` each read costs ~90,000 instructions around SQLite's ~35,000: the
`async_unsafe` checks (each raises and catches a RuntimeError on a lane thread, which has no
event loop), the cursor wrapper and its execute wrappers, and the `%s` → `?` rewrite of the SQL by
a regular expression on every call (docs/performance.md, "Twelfth round (target 2)").

`read_one` and `read_all` do what those layers do for a read, and nothing else: the `?` text of the SQL is made
once (Django's own rewrite, `FORMAT_QMARK_REGEX`), the thread check is Django's
(`validate_thread_sharing`), errors are translated to Django's exceptions by its
`wrap_database_errors`, and the cursor is closed before returning (SQLite keeps a read snapshot
open while a statement is unfinished). Whenever a layer would do more, Django's cursor is used
as before:

- a connection not open yet, or due its health check (`CONN_HEALTH_CHECKS`): Django connects and
  checks;
- a running event loop in this thread: Django raises `SynchronousOnlyOperation`;
- a transaction that needs rolling back: Django raises `TransactionManagementError`;
- queries being logged (`DEBUG`, `connection.force_debug_cursor`, as in `assertNumQueries`) or
  `connection.execute_wrapper(...)` installed: they see the query;
- any other database than SQLite.

tests/platform/test_dbread.py hashes the Django code restated here (`BaseDatabaseWrapper._cursor`
and `_prepare_cursor`, `CursorWrapper._execute`, `SQLiteCursorWrapper.execute` and
`convert_query`), so a new Django version gets looked at.
"""

from asyncio import _get_running_loop  # without raising: asyncio.get_running_loop raises when none

from django.db.backends.sqlite3.base import FORMAT_QMARK_REGEX

from autobot.memo import Memo

# The texts are the project's own queries (a few per model and list shape).
_qmark = Memo(1024)


def read_one(connection, sql: str, params: list) -> tuple | None:
    """`with connection.cursor() as c: c.execute(sql, params); return c.fetchone()`. Sync: on a
    lane. `sql` uses Django's "format" style (`%s`, and `%%` for a literal `%`)."""
    return _read(connection, sql, params, all_rows=False)


def read_all(connection, sql: str, params: list) -> list[tuple]:
    """`with connection.cursor() as c: c.execute(sql, params); return c.fetchall()`, as `read_one`."""
    return _read(connection, sql, params, all_rows=True)


def _read(connection, sql: str, params: list, *, all_rows: bool):
    if not _direct(connection):
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall() if all_rows else cursor.fetchone()
    text = _qmark.get(sql)
    if text is None:
        text = FORMAT_QMARK_REGEX.sub("?", sql).replace("%%", "%")  # SQLiteCursorWrapper's rewrite
        _qmark.put(sql, text)
    connection.validate_thread_sharing()
    with connection.wrap_database_errors:
        cursor = connection.connection.cursor()
        try:
            cursor.execute(text, params)
            return cursor.fetchall() if all_rows else cursor.fetchone()
        finally:
            cursor.close()


def _direct(connection) -> bool:
    """Whether Django's cursor would do nothing more than `read_one` does (module docstring)."""
    return (
        connection.vendor == "sqlite"
        and connection.connection is not None
        and (connection.health_check_done or not connection.health_check_enabled)
        and _get_running_loop() is None
        and not connection.needs_rollback
        and not connection.execute_wrappers
        and not connection.queries_logged
    )
