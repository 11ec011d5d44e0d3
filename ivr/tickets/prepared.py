"""Core statements compiled once and run on the DBAPI cursor: the few that callers wait on.

A new ticket's two inserts and a call turn's load and save. SQLAlchemy's work around each
execution (parameter processing, an execution context, a result object) cost more than SQLite's
own share: a call's load 47 -> 19 µs, a turn's save 165 -> 78 µs, a ticket 0.9 -> 0.5 ms with
migration 0016 (``benchmarks/tickets.py``). The SQL, the bind names, the types' bind and result
processors and the errors raised are still SQLAlchemy's, so values are stored and read, and
faults reported, exactly as through ``connection.execute``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement


class Prepared:
    """One statement for one dialect, executed inside the caller's transaction.

    Values are given by bind name (a column's name for an insert's implicit values); rows come
    back as tuples, through the columns' result processors.
    """

    def __init__(
        self, statement: ClauseElement, dialect: Dialect, keys: Sequence[str] | None = None
    ) -> None:
        compiled = statement.compile(
            dialect=dialect, column_keys=None if keys is None else list(keys)
        )
        self.sql = str(compiled)
        binds = compiled.binds
        if any(bind.expanding for bind in binds.values()):
            raise ValueError("an IN list is rendered per execution: use connection.execute")
        self._fixed = {name: bind.value for name, bind in binds.items() if not bind.required}
        """Values the statement carries itself (``literal``, ``None``), by bind name."""
        self._order: Sequence[str] | None = compiled.positiontup
        """The bind names in placeholder order (``?``, ``%s``), or None for named placeholders."""
        self._processors: dict[str, Callable[[Any], Any]] = {}
        for name, bind in binds.items():
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                self._processors[name] = processor
        returned = getattr(statement, "exported_columns", ())  # a SELECT's or the RETURNING's
        self._results = [
            column.type.dialect_impl(dialect).result_processor(dialect, None) for column in returned
        ]

    def parameters(self, values: Mapping[str, Any]) -> Sequence[Any] | dict[str, Any]:
        merged = {**self._fixed, **values}
        for name, processor in self._processors.items():
            merged[name] = processor(merged[name])
        if self._order is None:
            return merged
        return [merged[name] for name in self._order]

    def first(self, connection: Connection, values: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """The first row the statement returns (None if none)."""
        row = self._execute(connection, values)[0]
        if row is None or not any(self._results):
            return row
        return tuple(v if p is None else p(v) for v, p in zip(row, self._results, strict=True))

    def scalar(self, connection: Connection, values: Mapping[str, Any]) -> Any:
        """The first column of the first row returned (None if none)."""
        row = self.first(connection, values)
        return None if row is None else row[0]

    def run(self, connection: Connection, values: Mapping[str, Any]) -> int:
        """Execute; how many rows the statement changed."""
        return self._execute(connection, values)[1]

    def run_many(self, connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """The statement once for each of ``rows`` (the DBAPI's executemany)."""
        self._execute(connection, [self.parameters(row) for row in rows], many=True)

    def _execute(
        self, connection: Connection, values: Any, many: bool = False
    ) -> tuple[tuple[Any, ...] | None, int]:
        dialect = connection.dialect
        parameters = values if many else self.parameters(values)
        cursor = connection.connection.cursor()
        try:
            if many:
                cursor.executemany(self.sql, parameters)
                return None, cursor.rowcount
            cursor.execute(self.sql, parameters)
            row = cursor.fetchone() if cursor.description else None
            return row, cursor.rowcount
        except dialect.loaded_dbapi.Error as error:
            raise self._wrapped(connection, error, cursor, parameters) from error
        finally:
            cursor.close()

    def _wrapped(
        self, connection: Connection, error: Exception, cursor: Any, parameters: Any
    ) -> BaseException:
        """The error SQLAlchemy would raise (``IntegrityError``, ``OperationalError``, ...),
        and a connection the server dropped is invalidated, so the pool does not hand it out
        again: what ``connection.execute`` does, which callers' error handling relies on."""
        dialect = connection.dialect
        lost = dialect.is_disconnect(error, connection.connection.dbapi_connection, cursor)
        if lost:
            connection.invalidate(error)
        return DBAPIError.instance(
            self.sql,
            parameters,
            error,
            dialect.loaded_dbapi.Error,
            connection_invalidated=lost,
            dialect=dialect,
        )
