"""A queryset's SQL compiled once per shape, run with each call's values: for hot list endpoints.

Compiling a queryset (`filter()`, the SQL compiler) costs several times what SQLite takes to run
a small query. A `CompiledQuery` builds its queryset once, with `Param("name")` where each call's
values go, lets the ORM compile it for the connection's backend (quoting, lookups, LIKE escaping,
value converters: all the ORM's own), and keeps the SQL. Each call then runs that SQL with its
values as parameters and applies the same converters the ORM would, in the calling thread's
connection. Values are always parameters, never text in the SQL.

One `CompiledQuery` is one shape: which filters are present is part of the shape (a list with a
`?q=` search is another `CompiledQuery` than one without). Sync: run it on a lane.

A column the response carries as text (a datetime, a UUID) can be read straight into that text
(`text=`, see `DatetimeText` and `UUIDText`): on SQLite that skips making an aware datetime or a
`UUID` object only to turn it back into a string, ~1.5 µs a value (docs/performance.md, tenth round).

`CompiledInsert` does the same for an INSERT of one new row (a chat question, an audit event:
docs/performance.md, eleventh round).
"""

import re
from collections.abc import Callable
from datetime import datetime

import orjson
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Expression, Field, QuerySet
from django.db.models.sql import InsertQuery

from autobot.dbread import read_all
from autobot.pagination import MAX_LIMIT, MAX_OFFSET


class _Slot:
    __slots__ = ("name", "field")

    def __init__(self, name: str, field: Field) -> None:
        self.name, self.field = name, field


class Param(Expression):
    """A value given at each call: `%s` in the compiled SQL. `output_field` says how the value
    is adapted for the database (`get_db_prep_value`), as the ORM adapts a filter's value."""

    def __init__(self, name: str, output_field: Field) -> None:
        super().__init__(output_field=output_field)
        self.name = name

    def as_sql(self, compiler, connection):
        return "%s", [_Slot(self.name, self.output_field)]


def _is_only(functions: list, method) -> bool:
    """Whether a column's converters are exactly the backend's `method` (no field's own
    `from_db_value`, no other backend step): only then may a reader skip them."""
    return [getattr(function, "__func__", function) for function in functions] == [method]


class DatetimeText:
    """A datetime column read as the text `write(value)` gives for the aware datetime the ORM
    would return. On SQLite with USE_TZ in UTC (the only way AutoBot runs it), the value arrives
    naive and in UTC — the ORM would only attach the UTC zone — so `write_naive_utc(value)` gives
    the same text without making the aware datetime. Anything else takes the ORM's converters."""

    def __init__(self, write: Callable[[datetime], str], write_naive_utc: Callable[[datetime], str]) -> None:
        self.write, self.write_naive_utc = write, write_naive_utc

    def reader(self, functions: list, expression, connection) -> Callable:
        slow = _slow_reader(functions, expression, connection, self.write)
        ops = type(connection.ops)
        if not (connection.vendor == "sqlite" and settings.USE_TZ and connection.timezone_name == "UTC"
                and _is_only(functions, getattr(ops, "convert_datetimefield_value", None))):
            return slow
        fast = self.write_naive_utc

        def read(value):
            if type(value) is datetime and value.tzinfo is None:
                return fast(value)
            return slow(value)

        return read


def _isoformat_naive_utc(value: datetime) -> str:
    """`value.isoformat() + "+00:00"`, the text of the aware value, written by orjson: RFC 3339
    with the microseconds only when there are some, as `isoformat` writes them, in ~0.2 µs
    against ~0.5 (`isoformat` formats each field through `PyUnicode_FromFormat`; 40 a 20-row
    page). tests/platform/test_compiled_text.py compares the two."""
    return orjson.dumps(value, option=orjson.OPT_NAIVE_UTC)[1:-1].decode()


ISO_DATETIME = DatetimeText(datetime.isoformat, _isoformat_naive_utc)

_HEX32 = re.compile(r"[0-9a-f]{32}")


class UUIDText:
    """A UUID column read as `str(uuid)`. SQLite keeps a UUID as its 32 lowercase hex digits,
    which only need their dashes; anything else takes the ORM's converters."""

    @staticmethod
    def reader(functions: list, expression, connection) -> Callable:
        slow = _slow_reader(functions, expression, connection, str)
        if not (connection.vendor == "sqlite"
                and _is_only(functions, getattr(type(connection.ops), "convert_uuidfield_value", None))):
            return slow

        def read(value):
            if type(value) is str and _HEX32.fullmatch(value):
                return f"{value[:8]}-{value[8:12]}-{value[12:16]}-{value[16:20]}-{value[20:]}"
            return slow(value)

        return read


def _slow_reader(functions: list, expression, connection, write: Callable) -> Callable:
    def read(value):
        for convert in functions:
            value = convert(value, expression, connection)
        return None if value is None else write(value)

    return read


class _Compiled:
    def __init__(self, queryset: QuerySet, connection, text: dict) -> None:
        compiler = queryset.query.get_compiler(connection=connection)
        sql, params = compiler.as_sql()
        self.sql = sql
        self.params = list(params)
        fields = [select[0] for select in compiler.select[0:compiler.col_count]]
        converters = compiler.get_converters(fields)
        positions = _text_positions(queryset, compiler.col_count, text)
        # A text column has a reader (its raw value → the response's text), the others the ORM's converters.
        self.readers = [(index, text[name].reader(*converters.get(index, ([], fields[index])), connection))
                        for name, index in positions.items()]
        self.converters = [(index, converter) for index, converter in converters.items()
                           if index not in positions.values()]
        count_sql, count_params = queryset.order_by().query.get_compiler(connection=connection).as_sql()
        self.count_sql = f"SELECT COUNT(*) FROM ({count_sql}) subquery"
        self.count_params = list(count_params)
        # Made once: autobot/dbread.py converts each text's placeholders once, keyed by the text.
        self.first_sql = f"{sql} LIMIT %s"
        self.page_sql = f"{sql} LIMIT %s OFFSET %s"


def _text_positions(queryset: QuerySet, col_count: int, text: dict) -> dict[str, int]:
    """Where each of `text`'s columns is in the row: its place among the `values_list` names."""
    names = list(queryset.query.values_select)
    if text and (len(names) != col_count or not set(text) <= set(names)):
        raise ImproperlyConfigured(f"text columns {sorted(text)} must be plain values_list fields of {names}")
    return {name: names.index(name) for name in text}


class CompiledQuery:
    """`build()` returns a `values_list()` queryset (no slicing) with `Param`s for the values;
    `text` maps some of its fields to how they are read as text (`DatetimeText`, `UUIDText`)."""

    def __init__(self, build: Callable[[], QuerySet], *, text: dict | None = None) -> None:
        self.build = build
        self.text = dict(text or {})
        self._compiled: dict[tuple[str, str], _Compiled] = {}

    def _for(self, connection) -> _Compiled:
        key = (connection.alias, connection.vendor)
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = self._compiled[key] = _Compiled(self.build(), connection, self.text)
        return compiled

    @staticmethod
    def _args(params: list, values: dict, connection) -> list:
        return [param.field.get_db_prep_value(values[param.name], connection) if isinstance(param, _Slot) else param
                for param in params]

    def rows(self, values: dict, *, limit: int | None = None, using: str = DEFAULT_DB_ALIAS) -> list[list]:
        """All the rows (or the first `limit`), converted as `page` converts them; no count."""
        connection = connections[using]
        compiled = self._for(connection)
        sql, args = compiled.sql, self._args(compiled.params, values, connection)
        if limit is not None:
            sql, args = compiled.first_sql, [*args, limit]
        return self._converted(read_all(connection, sql, args), compiled, connection)

    @staticmethod
    def _converted(fetched, compiled: _Compiled, connection) -> list[list]:
        rows = [list(row) for row in fetched]
        if compiled.converters:
            for row in rows:
                for index, (functions, expression) in compiled.converters:
                    value = row[index]
                    for convert in functions:
                        value = convert(value, expression, connection)
                    row[index] = value
        for index, read in compiled.readers:
            for row in rows:
                row[index] = read(row[index])
        return rows

    def page(self, values: dict, *, limit: int = 50, offset: int = 0,
             using: str = DEFAULT_DB_ALIAS) -> tuple[list[list], int]:
        """One page of rows (lists, in the `values_list` order, converted as the ORM converts
        them, the `text` columns as their text) and the total, as
        `autobot.pagination.paginate_sync` counts it: a page shorter than the limit that is not
        past the end is the last one, so no COUNT query is needed."""
        limit = max(1, min(limit, MAX_LIMIT))
        offset = max(0, min(offset, MAX_OFFSET))
        connection = connections[using]
        compiled = self._for(connection)
        args = [*self._args(compiled.params, values, connection), limit, offset]
        rows = self._converted(read_all(connection, compiled.page_sql, args), compiled, connection)
        if len(rows) < limit and (rows or offset == 0):
            return rows, offset + len(rows)
        counted = read_all(connection, compiled.count_sql, self._args(compiled.count_params, values, connection))
        return rows, counted[0][0]


class CompiledInsert:
    """One new row of `model` inserted as `save()` and `bulk_create` insert it — the same columns
    (all but an auto primary key), each value made by its field's own `pre_save(obj, add=True)`
    and `get_db_prep_save`, the new key read back onto the object — with the statement compiled
    once per connection instead of at every insert (compiling it cost several times running it).

    Plain values only (no expressions). No signals are sent, as `bulk_create` sends none: for
    models nothing listens to. Sync: run it on a lane, inside the caller's transaction."""

    def __init__(self, model) -> None:
        self.model = model
        meta = model._meta
        if meta.auto_field is None:  # the key read back is then raw, not the field's value (a UUID's text)
            raise ImproperlyConfigured(f"{model.__name__}: CompiledInsert takes a model with an automatic key")
        self.fields = [field for field in meta.concrete_fields
                       if field is not meta.auto_field and not getattr(field, "generated", False)]
        self._compiled: dict[tuple[str, str], str] = {}

    def _sql(self, connection) -> str:
        key = (connection.alias, connection.vendor)
        sql = self._compiled.get(key)
        if sql is None:
            query = InsertQuery(self.model)
            query.insert_values(self.fields, [self.model()])
            compiler = query.get_compiler(connection=connection)
            compiler.returning_fields = [self.model._meta.pk] if connection.features.can_return_columns_from_insert \
                else None
            statements = compiler.as_sql()
            # One statement, one plain placeholder a column: the values below are its parameters.
            if len(statements) != 1 or len(statements[0][1]) != len(self.fields) \
                    or statements[0][0].count("%s") != len(self.fields):
                raise ImproperlyConfigured(f"{self.model.__name__}: an insert this backend writes otherwise")
            sql = self._compiled[key] = statements[0][0]
        return sql

    def insert(self, obj, *, using: str = DEFAULT_DB_ALIAS):
        """Insert `obj` (a new instance without a primary key); returns it, saved."""
        connection = connections[using]
        sql = self._sql(connection)
        params = []
        for field in self.fields:
            value = field.pre_save(obj, add=True)
            if hasattr(value, "resolve_expression"):
                raise TypeError(f"{field.name}: CompiledInsert takes plain values, not expressions")
            params.append(field.get_db_prep_save(value, connection=connection))
        meta = self.model._meta
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            if connection.features.can_return_columns_from_insert:
                pk = cursor.fetchone()[0]
            else:
                pk = connection.ops.last_insert_id(cursor, meta.db_table, meta.pk.column)
        obj.pk = pk
        obj._state.adding, obj._state.db = False, using
        return obj
