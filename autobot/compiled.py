"""A queryset's SQL compiled once per shape, run with each call's values: for hot list endpoints.

Compiling a queryset (`filter()`, the SQL compiler) costs several times what SQLite takes to run
a small query. A `CompiledQuery` builds its queryset once, with `Param("name")` where each call's
values go, lets the ORM compile it for the connection's backend (quoting, lookups, LIKE escaping,
value converters: all the ORM's own), and keeps the SQL. Each call then runs that SQL with its
values as parameters and applies the same converters the ORM would, in the calling thread's
connection. Values are always parameters, never text in the SQL.

One `CompiledQuery` is one shape: which filters are present is part of the shape (a list with a
`?q=` search is another `CompiledQuery` than one without). Sync: run it on a lane.

A page is converted a column at a time (docs/performance.md, fourteenth round): a column whose
values are all in their common form is converted by C-level steps over the whole column (`map`,
one orjson call), with no Python call per value; a column with any other value is converted value
by value, the ORM's way for the values not in that form.

A column the response carries as text (a datetime, a UUID) can be read straight into that text
(`text=`, see `DatetimeText` and `UUIDText`): on SQLite that skips making an aware datetime or a
`UUID` object only to turn it back into a string (tenth round). On SQLite a datetime column is
then selected as its stored text (`CAST(col AS TEXT)`), which the driver hands over as it is
instead of calling Django's `parse_datetime` on it from Python (fourteenth round); ORDER BY still
names the column.

The other columns get the ORM's converters, with two kinds read more directly (fourteenth round):
a `JSONField` parsed by orjson (the ORM's `json.loads` wherever orjson could read otherwise), a
SQLite boolean the driver already made a `bool`.

`CompiledInsert` does the same for an INSERT of one new row (a chat question, an audit event:
docs/performance.md, eleventh round).
"""

import re
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import partial
from itertools import chain, compress
from operator import attrgetter, is_, itemgetter

import orjson
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Expression, Field, JSONField, QuerySet, TextField
from django.db.models.fields.json import KeyTransform
from django.db.models.functions import Cast
from django.db.models.sql import InsertQuery

from autobot.dbread import read_all
from autobot.pagination import MAX_LIMIT, MAX_OFFSET

# A column reader: the column's values as the driver gave them, and the calling thread's
# connection → the values as the page carries them, in the same order.
ColumnReader = Callable[[Sequence, object], Sequence]


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


_TZINFO = attrgetter("tzinfo")
_STR = frozenset({str})
_NAIVE = {None}


class DatetimeText:
    """A datetime column read as the text `write(value)` gives for the aware datetime the ORM
    would return. On SQLite with USE_TZ in UTC (the only way AutoBot runs it), the value arrives
    naive and in UTC — the ORM would only attach the UTC zone — so `write_naive_utc(value)` gives
    the same text without making the aware datetime (`write_naive_utc_all` for a list of them, in
    one step). Anything else takes the ORM's converters."""

    def __init__(self, write: Callable[[datetime], str], write_naive_utc: Callable[[datetime], str],
                 write_naive_utc_all: Callable[[list[datetime]], list[str]]) -> None:
        self.write, self.write_naive_utc, self.write_naive_utc_all = write, write_naive_utc, write_naive_utc_all

    @staticmethod
    def _short(functions: list, connection) -> bool:
        """Whether the ORM's value is the driver's naive UTC value made aware in UTC, nothing else."""
        return (connection.vendor == "sqlite" and settings.USE_TZ and connection.timezone_name == "UTC"
                and _is_only(functions, getattr(type(connection.ops), "convert_datetimefield_value", None)))

    def reader(self, functions: list, expression, connection) -> ColumnReader:
        slow = _slow_reader(functions, expression, connection, self.write)
        if not self._short(functions, connection):
            return _each(slow)
        fast = self.write_naive_utc

        def read(value):
            if type(value) is datetime and value.tzinfo is None:
                return fast(value)
            return slow(value)

        return _each(read)

    def stored_reader(self, functions: list, expression, connection) -> ColumnReader | None:
        """The reader for the column selected as `CAST(column AS TEXT)`, or None where `reader`
        must read it (not SQLite in UTC, not the backend's converter only).

        SQLite then hands over the stored text, where for the column itself the driver would have
        called its declared type's converter with that text (Django's `parse_datetime`, whose
        first step is `datetime.fromisoformat`). So when `fromisoformat` reads every value of the
        page as a naive datetime, those are the driver's values, and the text is written from them
        as `reader` writes them (`write_naive_utc_all`). Otherwise each value is read alone: the
        same way if `fromisoformat` reads it as a naive datetime, else (NULL, a form only
        `parse_datetime`'s own pattern reads, an offset, no date) through the driver's converter
        and the ORM's, as the column itself would have been."""
        if not self._short(functions, connection):
            return None
        driver = _declared_type_converter(expression.output_field.db_type(connection), connection)
        slow = _slow_reader(functions, expression, connection, self.write)
        write, write_all, parse = self.write_naive_utc, self.write_naive_utc_all, datetime.fromisoformat

        def read(value):  # one value: the same test, then the column's own way
            if type(value) is str:
                try:
                    parsed = parse(value)
                except ValueError:
                    parsed = None
                if parsed is not None and parsed.tzinfo is None:
                    return write(parsed)
            if value is not None and driver is not None:  # the driver converts non-NULL values only
                value = driver(value.encode())
            return slow(value)

        def read_column(values: Sequence, connection) -> Sequence:
            if set(map(type, values)) <= _STR:
                try:
                    parsed = list(map(parse, values))
                except ValueError:
                    parsed = None
                if parsed is not None and set(map(_TZINFO, parsed)) == _NAIVE:
                    return write_all(parsed)
            return list(map(read, values))

        return read_column


def _declared_type_converter(declared: str | None, connection) -> Callable | None:
    """The converter Python's sqlite3 driver applies to a column of this declared type (its
    name up to a space or "(", in capitals: `register_converter`'s key), if the connection asks
    it to (PARSE_DECLTYPES, which Django's backend sets)."""
    database = connection.Database
    if not declared or not connection.get_connection_params().get("detect_types", 0) & database.PARSE_DECLTYPES:
        return None
    return database.converters.get(re.split(r"[ (]", declared, maxsplit=1)[0].upper())


def _isoformat_naive_utc(value: datetime) -> str:
    """`value.isoformat() + "+00:00"`, the text of the aware value, written by orjson: RFC 3339
    with the microseconds only when there are some, as `isoformat` writes them, in ~0.2 µs
    against ~0.5 (`isoformat` formats each field through `PyUnicode_FromFormat`; 40 a 20-row
    page). tests/platform/test_compiled_text.py compares the two."""
    return orjson.dumps(value, option=orjson.OPT_NAIVE_UTC)[1:-1].decode()


def _isoformat_naive_utc_all(values: list[datetime]) -> list[str]:
    """`_isoformat_naive_utc` of each value: orjson writes the list, and reads back its strings."""
    return orjson.loads(orjson.dumps(values, option=orjson.OPT_NAIVE_UTC))


ISO_DATETIME = DatetimeText(datetime.isoformat, _isoformat_naive_utc, _isoformat_naive_utc_all)

_HEX32 = re.compile(r"[0-9a-f]{32}")
_HEX_DIGITS = frozenset("0123456789abcdef")
_LENGTH_32 = {32}
_UUID_PARTS = itemgetter(slice(0, 8), slice(8, 12), slice(12, 16), slice(16, 20), slice(20, 32))


class UUIDText:
    """A UUID column read as `str(uuid)`. SQLite keeps a UUID as its 32 lowercase hex digits,
    which only need their dashes (a page of them all at once); anything else takes the ORM's
    converters."""

    @staticmethod
    def reader(functions: list, expression, connection) -> ColumnReader:
        slow = _slow_reader(functions, expression, connection, str)
        if not (connection.vendor == "sqlite"
                and _is_only(functions, getattr(type(connection.ops), "convert_uuidfield_value", None))):
            return _each(slow)

        def read(value):
            if type(value) is str and _HEX32.fullmatch(value):
                return f"{value[:8]}-{value[8:12]}-{value[12:16]}-{value[16:20]}-{value[20:]}"
            return slow(value)

        def read_column(values: Sequence, connection) -> Sequence:
            # Every value 32 characters of text, all of them hex digits: `read`'s test, for the page.
            if set(map(type, values)) <= _STR and set(map(len, values)) == _LENGTH_32 \
                    and set("".join(values)) <= _HEX_DIGITS:
                return list(map("-".join, map(_UUID_PARTS, values)))
            return list(map(read, values))

        return read_column


def _slow_reader(functions: list, expression, connection, write: Callable) -> Callable:
    def read(value):
        for convert in functions:
            value = convert(value, expression, connection)
        return None if value is None else write(value)

    return read


def _each(read: Callable) -> ColumnReader:
    """The column reader that reads each value with `read`."""
    def read_column(values: Sequence, connection) -> Sequence:
        return list(map(read, values))

    return read_column


def _converting(functions: list, expression) -> ColumnReader:
    """The ORM's converters for each value, with the calling thread's connection."""
    def read_column(values: Sequence, connection) -> Sequence:
        converted = []
        for value in values:
            for convert in functions:
                value = convert(value, expression, connection)
            converted.append(value)
        return converted

    return read_column


def _same(value):
    return value


_PLAIN_SCALARS = frozenset({str, int, bool, type(None)})
_PLAIN = frozenset({*_PLAIN_SCALARS, list, dict})
_IS_LIST, _IS_DICT = partial(is_, list), partial(is_, dict)


def _plain(values: list) -> bool:
    """Whether orjson's values for JSON texts are surely `json.loads`'s: no floats anywhere
    (orjson makes a float of an integer past 64 bits, where `json` keeps the int; only `json`
    reads NaN and Infinity); strings, ints, booleans and null are read alike. Walked a level of
    nesting at a time, in C-level steps over each level (orjson reads up to 1,024 levels)."""
    level = values
    while level:
        kinds = set(map(type, level))
        if kinds <= _PLAIN_SCALARS:
            return True
        if not kinds <= _PLAIN:
            return False
        types = list(map(type, level))
        level = [*chain.from_iterable(compress(level, map(_IS_LIST, types))),  # the lists' items
                 *chain.from_iterable(map(dict.values, compress(level, map(_IS_DICT, types))))]  # the objects' values
    return True


def _json_reader(functions: list, expression, connection) -> ColumnReader | None:
    """A reader for a `JSONField` whose only converter is JSONField's own `from_db_value`, with
    the default decoder (`json.loads`): orjson's values where they are surely the same (several
    times cheaper; tests/platform/test_compiled_readers.py), the ORM's converter for anything
    else — not text (NULL, bytes: `json.loads` guesses their encoding), text orjson refuses (NaN,
    a lone surrogate, invalid JSON), a float anywhere."""
    if not (_is_only(functions, JSONField.from_db_value) and functions[0].__self__.decoder is None
            and not isinstance(expression, KeyTransform)):
        return None
    slow = _slow_reader(functions, expression, connection, _same)
    loads = orjson.loads

    def read(value):
        if type(value) is str:
            try:
                parsed = loads(value)
            except orjson.JSONDecodeError:
                return slow(value)
            if _plain([parsed]):
                return parsed
        return slow(value)

    def read_column(values: Sequence, connection) -> Sequence:
        if set(map(type, values)) <= _STR:
            try:
                parsed = list(map(loads, values))
            except orjson.JSONDecodeError:
                parsed = None
            if parsed is not None and _plain(parsed):
                return parsed
        return list(map(read, values))

    return read_column


def _bool_reader(functions: list, expression, connection) -> ColumnReader | None:
    """A reader for a column whose only converter is SQLite's for a BooleanField, which keeps a
    `bool` as it is (the driver makes one for the declared type `bool`): a page of `bool`s needs
    nothing done; a page with anything else (NULL) is converted value by value."""
    if not (connection.vendor == "sqlite" and _is_only(functions, getattr(type(connection.ops),
                                                                          "convert_booleanfield_value", None))):
        return None
    converting = _converting(functions, expression)
    kinds = frozenset({bool})

    def read_column(values: Sequence, connection) -> Sequence:
        if set(map(type, values)) <= kinds:
            return values
        return converting(values, connection)

    return read_column


class _Compiled:
    def __init__(self, queryset: QuerySet, connection, text: dict) -> None:
        compiler = queryset.query.get_compiler(connection=connection)
        sql, params = compiler.as_sql()
        fields = [select[0] for select in compiler.select[0:compiler.col_count]]
        converters = compiler.get_converters(fields)
        positions = _text_positions(queryset, compiler.col_count, text)
        # A text column has a reader (its raw value → the response's text), the others the ORM's
        # converters, or a shorter way to the same values for a JSON or boolean column.
        readers: dict[int, ColumnReader] = {}
        for name, index in positions.items():
            readers[index] = text[name].reader(*converters.get(index, ([], fields[index])), connection)
        stored = {index: read for name, index in positions.items()
                  if (read := _stored_reader(text[name], *converters.get(index, ([], fields[index])), connection))}
        if stored:
            as_text = _selected_as_text(queryset, fields, set(stored), connection)
            if as_text is not None:
                sql, params = as_text
                readers.update(stored)
        for index, (functions, expression) in converters.items():
            if index not in readers:
                readers[index] = (_json_reader(functions, expression, connection)
                                  or _bool_reader(functions, expression, connection)
                                  or _converting(functions, expression))
        self.readers = sorted(readers.items())
        self.sql = sql
        self.params = list(params)
        count_sql, count_params = queryset.order_by().query.get_compiler(connection=connection).as_sql()
        self.count_sql = f"SELECT COUNT(*) FROM ({count_sql}) subquery"
        self.count_params = list(count_params)
        # Made once: autobot/dbread.py converts each text's placeholders once, keyed by the text.
        self.first_sql = f"{sql} LIMIT %s"
        self.page_sql = f"{sql} LIMIT %s OFFSET %s"


def _stored_reader(text, functions: list, expression, connection) -> ColumnReader | None:
    stored_reader = getattr(text, "stored_reader", None)
    return stored_reader(functions, expression, connection) if stored_reader else None


def _selected_as_text(queryset: QuerySet, fields: list, indexes: set[int], connection) -> tuple | None:
    """The SQL and parameters of `queryset` with the columns at `indexes` selected as
    `CAST(column AS TEXT)`, the other columns, the filters and the order (which names the
    columns themselves, not their text) as they were; None if the query is not a plain one
    (grouped, distinct, combined) or the ORM made the selection otherwise than asked."""
    query = queryset.query
    if query.combinator or query.distinct or query.group_by is not None:
        return None
    names = list(query.values_select)
    as_text = queryset.values_list(*(Cast(name, TextField()) if index in indexes else name
                                     for index, name in enumerate(names)))
    compiler = as_text.query.get_compiler(connection=connection)
    sql, params = compiler.as_sql()
    selected = [select[0] for select in compiler.select[0:compiler.col_count]]
    if len(selected) != len(fields) or compiler.col_count != len(compiler.select) or any(
            not (isinstance(expression, Cast) and expression.source_expressions == [fields[index]])
            if index in indexes else expression != fields[index]
            for index, expression in enumerate(selected)):
        return None
    return sql, params


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
    def _converted(fetched: list[tuple], compiled: _Compiled, connection) -> list[list]:
        """The rows as lists, each column read by its reader (all at once: see the module's docstring)."""
        if not fetched:
            return []
        if not compiled.readers:
            return list(map(list, fetched))
        columns = list(zip(*fetched, strict=True))
        for index, read in compiled.readers:
            columns[index] = read(columns[index], connection)
        return list(map(list, zip(*columns, strict=True)))

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
