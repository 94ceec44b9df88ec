"""What every part of the ledger shares: the engine, transactions, reads, and
upserts that read the same on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import itemgetter
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Executable, RowMapping, Table, exc
from sqlalchemy.dialects import sqlite

from connectors.ledger.database import (
    VERSION_TABLE,
    StoreLocation,
    create_store_engine,
    damaged_message,
    is_damage,
    locate,
    read_transaction,
    write_transaction,
)
from connectors.ledger.migrate import prepare
from leadhub.errors import FatalError

# Parameters per IN (...) list: well under SQLite's 32,766 and PostgreSQL's 65,535.
IN_CHUNK = 500


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def chunks(values: Sequence, size: int = IN_CHUNK) -> Iterator[Sequence]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


def upsert(connection: Connection, table: Table):
    """INSERT ... ON CONFLICT for this connection's engine (one API, both dialects)."""
    if connection.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert

        return insert(table)
    return sqlite.insert(table)


@dataclass(frozen=True)
class _Compiled:
    """A statement as one dialect's driver takes it, and how a row becomes its
    parameters: the values in the statement's order, each through the bind
    processor SQLAlchemy gives its column (where it gives one)."""

    sql: str
    names: tuple[str, ...]  # the parameters as the driver names them
    values: Callable[[Mapping[str, Any]], tuple]  # a row's values, in that order
    processors: tuple[tuple[int, Callable[[Any], Any]], ...]
    positional: bool

    def parameters(self, rows: Sequence[Mapping[str, Any]]) -> list:
        # a column at a time: the loops over the rows run in C (map, zip)
        given = list(map(self.values, rows))
        if self.processors:
            columns = list(zip(*given, strict=True))
            for index, process in self.processors:
                columns[index] = map(process, columns[index])
            given = zip(*columns, strict=True)
        if self.positional:
            return list(given)
        names = self.names
        return [dict(zip(names, values, strict=True)) for values in given]


def _values_of(keys: tuple[str, ...]) -> Callable[[Mapping[str, Any]], tuple]:
    """A row's values at these keys, as a tuple, in one C call."""
    get = itemgetter(*keys)
    if len(keys) > 1:
        return get

    def one(row: Mapping[str, Any]) -> tuple:
        return (get(row),)

    return one


class Bulk:
    """An INSERT or UPDATE written for many rows at once (one executemany),
    compiled once per dialect, its rows turned into the driver's parameters
    in one pass. Each value goes through the same bind processor SQLAlchemy
    would apply (so the store holds the same values), without the per-row
    bookkeeping of `Connection.execute` (a parameter dict and a list per row,
    the compiled-cache look-up, for every statement of every batch).

    `build(tx, keys)` makes the statement for rows with these keys; every
    parameter it has must be one of them (write a constant into the
    statement, such as `null()`, rather than as a bound value). Errors are
    the ones `execute` raises: a value a column's type refuses is a
    StatementError, what the database refuses a DBAPIError."""

    def __init__(self, build: Callable[[Connection, tuple[str, ...]], Executable]):
        self.build = build
        self._compiled: dict[tuple[str, str, tuple[str, ...]], _Compiled] = {}

    def execute(self, tx: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        keys = tuple(rows[0])
        dialect = tx.dialect
        cache_key = (dialect.name, dialect.paramstyle, keys)
        compiled = self._compiled.get(cache_key)
        if compiled is None:
            compiled = self._compiled[cache_key] = self._compile(tx, keys)
        try:
            parameters = compiled.parameters(rows)
        except Exception as error:
            # what `execute` raises for a value its column's type refuses
            raise exc.StatementError(f"({type(error).__module__}.{type(error).__name__}) {error}",
                                     compiled.sql, None, error, ismulti=True) from None
        tx.exec_driver_sql(compiled.sql, parameters)

    def _compile(self, tx: Connection, keys: tuple[str, ...]) -> _Compiled:
        dialect = tx.dialect
        compiled = self.build(tx, keys).compile(dialect=dialect, column_keys=list(keys),
                                                for_executemany=True)
        if compiled.literal_execute_params or compiled.post_compile_params:
            raise ValueError("a bulk write cannot expand parameters (IN lists)")
        names = tuple(compiled.positiontup if compiled.positional
                      else dict.fromkeys(compiled.bind_names.values()))
        missing = [name for name in names if name not in keys]
        if missing:
            raise ValueError(f"bulk write: parameters {missing} are not row keys {keys}")
        processors = []
        for index, name in enumerate(names):
            bind = compiled.binds[name]
            process = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if process is not None:
                processors.append((index, process))
        escaped = compiled.escaped_bind_names
        return _Compiled(compiled.string, tuple(escaped.get(name, name) for name in names),
                         _values_of(names), tuple(processors), compiled.positional)


class LedgerBase:
    """The store at one location. One instance per thread; the engine's pool
    hands each transaction its own connection."""

    def __init__(self, location: str | Path | StoreLocation, *, create: bool = False):
        self.location = locate(location)
        self.engine = create_store_engine(self.location)
        try:
            self.created = prepare(self.location, self.engine, create=create)
        except exc.DBAPIError as error:
            self.engine.dispose()
            raise FatalError(_store_error(self.location, error)) from None
        except OSError as error:
            self.engine.dispose()
            raise FatalError(f"cannot open the store {self.location.describe()}:"
                             f" {error.strerror or error}") from None
        except BaseException:
            self.engine.dispose()
            raise

    @property
    def path(self) -> str:
        """Where the store is, for people (a PostgreSQL URL without its password)."""
        return self.location.describe()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def close(self) -> None:
        self.engine.dispose()

    def schema_version(self) -> str:
        """The store's schema revision (also: the store answers)."""
        with self.reading() as connection:
            return connection.exec_driver_sql(f"SELECT version_num FROM {VERSION_TABLE}").scalar()

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A write transaction: one writer at a time on SQLite (BEGIN IMMEDIATE);
        on PostgreSQL the steps that must not race take a named lock."""
        with self._translated(), write_transaction(self.engine) as connection:
            yield connection

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        with self._translated(), read_transaction(self.engine) as connection:
            yield connection

    @contextmanager
    def _translated(self) -> Iterator[None]:
        """A damaged file is the user's problem to fix, not a bug: one clear message."""
        try:
            yield
        except exc.DBAPIError as error:
            if self.location.is_sqlite and is_damage(error):
                raise FatalError(damaged_message(self.location, error.orig)) from None
            raise

    def rows(self, statement: Executable) -> list[RowMapping]:
        with self.reading() as connection:
            return list(connection.execute(statement).mappings())

    def row(self, statement: Executable) -> RowMapping | None:
        with self.reading() as connection:
            return connection.execute(statement).mappings().first()

    def scalar(self, statement: Executable) -> Any:
        with self.reading() as connection:
            return connection.execute(statement).scalar()

    def iter_rows(self, statement: Executable) -> Iterator[dict]:
        """Rows one by one (a server-side cursor on PostgreSQL), so an export of
        a million leads stays small in memory."""
        with self.reading() as connection:
            result = connection.execution_options(stream_results=True, yield_per=2000).execute(
                statement)
            for row in result.mappings():
                yield dict(row)


def _store_error(location: StoreLocation, error: exc.DBAPIError) -> str:
    if location.is_sqlite and is_damage(error):
        return damaged_message(location, error.orig)
    return f"cannot open the store {location.describe()}: {str(error.orig).strip()}"
