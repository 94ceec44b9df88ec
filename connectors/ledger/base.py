"""What every part of the ledger shares: the engine, transactions, reads, and
upserts that read the same on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
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
