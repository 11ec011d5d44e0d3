"""Core statements compiled once and run on the DBAPI cursor: for the few writes a caller waits on.

SQLAlchemy's work around each execution (parameter processing, an execution context, a result
object) cost more than SQLite's insert of a ticket itself (``benchmarks/tickets.py``). The SQL,
the bind names and the types' own bind processors are still SQLAlchemy's, taken from the
compiled statement, so values are stored exactly as ``connection.execute`` would store them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement


class Prepared:
    """One statement for one dialect: ``run`` executes it inside the caller's transaction."""

    def __init__(self, statement: ClauseElement, dialect: Dialect, keys: Sequence[str]) -> None:
        compiled = statement.compile(dialect=dialect, column_keys=list(keys))
        self.sql = str(compiled)
        binds = compiled.binds
        self._fixed = {name: bind.value for name, bind in binds.items() if not bind.required}
        """Values the statement carries itself (``literal``), by bind name."""
        self._order: Sequence[str] | None = compiled.positiontup
        """The bind names in placeholder order (``?``, ``%s``), or None for named placeholders."""
        self._processors: dict[str, Callable[[Any], Any]] = {}
        for name, bind in binds.items():
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                self._processors[name] = processor

    def parameters(self, values: Mapping[str, Any]) -> Sequence[Any] | dict[str, Any]:
        merged = {**self._fixed, **values}
        for name, processor in self._processors.items():
            merged[name] = processor(merged[name])
        if self._order is None:
            return merged
        return [merged[name] for name in self._order]

    def run(self, connection: Connection, values: Mapping[str, Any]) -> Any:
        """Execute with ``values`` (by bind name); the first column of the first row returned,
        if the statement returns rows."""
        dialect = connection.dialect
        parameters = self.parameters(values)
        cursor = connection.connection.cursor()
        try:
            cursor.execute(self.sql, parameters)
            row = cursor.fetchone() if cursor.description else None
        except dialect.loaded_dbapi.Error as error:
            raise self._wrapped(connection, error, cursor, parameters) from error
        finally:
            cursor.close()
        return None if row is None else row[0]

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
