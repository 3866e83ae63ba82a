"""A hot query's SQL run on a Django cursor without the work Django redoes for every query.

On SQLite, Django's cursor (`SQLiteCursorWrapper.execute`) turns the `%s` placeholders into
SQLite's `?` with a regular expression on every call: ~75,000 instructions for the 1-2 KB of a
list's SQL, 5-6 % of a whole list call (docs/performance.md, twelfth round). The text is the same
every time, so a `Statement` converts it once, with Django's own `convert_query`, and runs it the
way `CursorWrapper._execute` runs a query: the broken-transaction check, then the driver's
`execute` inside the connection's error wrapping (so a failure is the same `django.db` error).

Django's way is kept for everything else: PostgreSQL (psycopg takes `%s` itself), a cursor that
logs its queries (`DEBUG`, the tests' `CaptureQueriesContext`), a connection with execute wrappers
(`connection.execute_wrapper`), a backend whose cursor is not Django's SQLite one.
"""

import hashlib
import inspect
import sqlite3

from django.db.backends.sqlite3.base import SQLiteCursorWrapper
from django.db.backends.utils import CursorWrapper

# The sha256 of the sources of the Django steps this module does in its own way (see
# `django_sources_sha256`; tests/platform/test_statements.py fails when one changes).
DJANGO_SOURCES_SHA256 = "74b7c87279d51dd8b3a4707b1316cc4b57a4392bab354acfc31325cc356b0aad"


def django_sources_sha256() -> str:
    sources = (CursorWrapper.execute, CursorWrapper._execute_with_wrappers, CursorWrapper._execute,
               SQLiteCursorWrapper.execute, SQLiteCursorWrapper.convert_query)
    return hashlib.sha256("".join(inspect.getsource(source) for source in sources).encode()).hexdigest()


class Statement:
    """One SQL text with `%s` placeholders and positional parameters, run by `execute`."""

    __slots__ = ("sql", "_qmark")

    def __init__(self, sql: str) -> None:
        self.sql = sql
        self._qmark: str | None = None

    def execute(self, cursor, params: list) -> None:
        """`cursor.execute(self.sql, params)`, for a cursor from `connection.cursor()`."""
        driver = cursor.cursor
        if type(cursor) is not CursorWrapper or type(driver) is not SQLiteCursorWrapper or cursor.db.execute_wrappers:
            cursor.execute(self.sql, params)
            return
        qmark = self._qmark
        if qmark is None:
            qmark = self._qmark = driver.convert_query(self.sql)
        db = cursor.db
        db.validate_no_broken_transaction()
        with db.wrap_database_errors:
            sqlite3.Cursor.execute(driver, qmark, params)
