"""A queryset's SQL compiled once per shape, run with each call's values: for hot list endpoints.

Compiling a queryset (`filter()`, the SQL compiler) costs several times what SQLite takes to run
a small query. A `CompiledQuery` builds its queryset once, with `Param("name")` where each call's
values go, lets the ORM compile it for the connection's backend (quoting, lookups, LIKE escaping,
value converters: all the ORM's own), and keeps the SQL. Each call then runs that SQL with its
values as parameters and applies the same converters the ORM would, in the calling thread's
connection. Values are always parameters, never text in the SQL.

One `CompiledQuery` is one shape: which filters are present is part of the shape (a list with a
`?q=` search is another `CompiledQuery` than one without). Sync: run it on a lane.
"""

from collections.abc import Callable

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Expression, Field, QuerySet

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


class _Compiled:
    def __init__(self, queryset: QuerySet, connection) -> None:
        compiler = queryset.query.get_compiler(connection=connection)
        sql, params = compiler.as_sql()
        self.sql = sql
        self.params = list(params)
        fields = [select[0] for select in compiler.select[0:compiler.col_count]]
        self.converters = list(compiler.get_converters(fields).items())
        count_sql, count_params = queryset.order_by().query.get_compiler(connection=connection).as_sql()
        self.count_sql = f"SELECT COUNT(*) FROM ({count_sql}) subquery"
        self.count_params = list(count_params)


class CompiledQuery:
    """`build()` returns a `values_list()` queryset (no slicing) with `Param`s for the values."""

    def __init__(self, build: Callable[[], QuerySet]) -> None:
        self.build = build
        self._compiled: dict[tuple[str, str], _Compiled] = {}

    def _for(self, connection) -> _Compiled:
        key = (connection.alias, connection.vendor)
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = self._compiled[key] = _Compiled(self.build(), connection)
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
            sql, args = f"{sql} LIMIT %s", [*args, limit]
        with connection.cursor() as cursor:
            cursor.execute(sql, args)
            return self._converted(cursor.fetchall(), compiled, connection)

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
        return rows

    def page(self, values: dict, *, limit: int = 50, offset: int = 0,
             using: str = DEFAULT_DB_ALIAS) -> tuple[list[list], int]:
        """One page of rows (lists, in the `values_list` order, converted as the ORM converts
        them) and the total, as `autobot.pagination.paginate_sync` counts it: a page shorter than
        the limit that is not past the end is the last one, so no COUNT query is needed."""
        limit = max(1, min(limit, MAX_LIMIT))
        offset = max(0, min(offset, MAX_OFFSET))
        connection = connections[using]
        compiled = self._for(connection)
        with connection.cursor() as cursor:
            cursor.execute(f"{compiled.sql} LIMIT %s OFFSET %s",
                           [*self._args(compiled.params, values, connection), limit, offset])
            rows = self._converted(cursor.fetchall(), compiled, connection)
            if len(rows) < limit and (rows or offset == 0):
                return rows, offset + len(rows)
            cursor.execute(compiled.count_sql, self._args(compiled.count_params, values, connection))
            return rows, cursor.fetchone()[0]
