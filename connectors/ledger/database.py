"""Where the store lives and how to talk to it: SQLite (one file, the embedded
default) or PostgreSQL (shared by several workers), through one SQLAlchemy
Core engine.

Write transactions are serialised the same way on both engines: SQLite's
`BEGIN IMMEDIATE` takes the one write lock at the start; on PostgreSQL the
steps that must not race (contact matching, a source's checkpoint, a sink's
sync state) take a transaction-scoped advisory lock by name (`lock`).
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, String, create_engine, event, exc, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.types import Numeric, TypeDecorator

from leadhub.errors import FatalError
from leadhub.i18n import _

POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")


@dataclass(frozen=True)
class StoreLocation:
    """A store as the config names it: a file path or a PostgreSQL URL."""

    url: URL
    path: Path | None  # the SQLite file; None for PostgreSQL

    @property
    def is_sqlite(self) -> bool:
        return self.path is not None

    def describe(self) -> str:
        """For messages and logs: never the password."""
        if self.path is not None:
            return str(self.path)
        url = self.url
        return URL.create("postgresql", url.username, None, url.host, url.port, url.database,
                          url.query).render_as_string()


def locate(given: str | Path | StoreLocation) -> StoreLocation:
    """`leadhub.db`, `sqlite:///x.db` or `postgresql://user@host/db`. A
    PostgreSQL password comes from the environment (PGPASSWORD, or
    `${VARIABLE}` in the config), never from a file LeadHub writes."""
    if isinstance(given, StoreLocation):
        return given
    text_form = str(given)
    scheme = text_form.partition("://")[0].lower() if "://" in text_form else ""
    if scheme in POSTGRES_SCHEMES:
        try:
            url = make_url(text_form).set(drivername="postgresql+psycopg")
        except exc.ArgumentError as error:
            raise FatalError(f"store {text_form!r} is not a PostgreSQL URL: {error}") from None
        return StoreLocation(url, None)
    if scheme.startswith("sqlite"):
        database = make_url(text_form).database or ""
        path = Path(database)
    elif scheme:
        raise FatalError(f"store {text_form!r}: use a file path or postgresql://user@host/db")
    else:
        path = Path(os.path.expanduser(text_form))
    path = path.resolve()
    return StoreLocation(URL.create("sqlite", database=str(path)), path)


# --- column types that behave the same on both engines ---------------------------


@lru_cache(maxsize=1 << 16)
def as_utc(value: datetime | str) -> datetime:
    """A moment, from an aware datetime (a naive one is UTC) or ISO text, in UTC.
    Remembered: a bulk import reads and writes the same few moments (when the
    file was read, each lead's date) hundreds of thousands of times."""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(
        value, str) else value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(microsecond=0)


@lru_cache(maxsize=1 << 16)
def moment_text(value: datetime | str) -> str:
    """A moment as SQLite keeps it: `as_utc`, as ISO text. Remembered for the
    same reason (a bulk import writes the same few moments again and again)."""
    return as_utc(value).isoformat()


class Moment(TypeDecorator):
    """A point in time. PostgreSQL: timestamptz. SQLite: UTC ISO text of one
    fixed shape (`2026-05-19T21:00:00+00:00`), so comparing the text compares
    the moments. Whatever a caller passes (a local time, ISO text), the
    column and the parameter end up in UTC: a query can never compare a UTC
    moment with a local one as text."""

    impl = String(32)
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import TIMESTAMP

            return dialect.type_descriptor(TIMESTAMP(timezone=True))
        return dialect.type_descriptor(String(32))

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        return as_utc(value) if dialect.name == "postgresql" else moment_text(value)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return as_utc(value)


class Money(TypeDecorator):
    """An exact decimal amount (prices, costs, quantities). PostgreSQL:
    numeric; SQLite: the decimal as text (SQLite would turn a number into a
    binary float)."""

    impl = String(40)
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name == "postgresql":
            return dialect.type_descriptor(Numeric(asdecimal=True))
        return dialect.type_descriptor(String(40))

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        amount = to_decimal(value)
        return amount if dialect.name == "postgresql" else str(amount)

    def process_result_value(self, value, dialect):
        return None if value is None else to_decimal(value)


def to_decimal(value: Any) -> Decimal:
    if isinstance(value, Decimal):
        return value
    try:
        # via str: a float 0.1 is the amount 0.1, not 0.1000000000000000055...
        return Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"{value!r} is not an amount") from None


# --- the engine -------------------------------------------------------------------


# psycopg 3 forgets a cursor's row count when the cursor closes: keep it, since
# "how many rows did this change" is how an upsert says whether it inserted.
COMMON_OPTIONS = {"preserve_rowcount": True}


def create_store_engine(location: StoreLocation) -> Engine:
    if location.is_sqlite:
        return _sqlite_engine(location)
    return create_engine(location.url, pool_pre_ping=True, pool_size=4, max_overflow=4,
                         execution_options=COMMON_OPTIONS)


def _sqlite_engine(location: StoreLocation) -> Engine:
    engine = create_engine(location.url, connect_args={"timeout": 30, "check_same_thread": False},
                           execution_options=COMMON_OPTIONS)

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection, _record):
        # LeadHub says when a transaction starts (below), not the driver.
        dbapi_connection.isolation_level = None
        dbapi_connection.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit is on disk when it returns (the web endpoint answers
        # 202 only after that), even across a power loss.
        dbapi_connection.execute("PRAGMA synchronous=FULL")
        dbapi_connection.execute("PRAGMA foreign_keys=ON")
        # 256 MiB of pages per connection, not SQLite's 2 MiB: a bulk import
        # updates the leads, contacts and identities indexes at random keys, and
        # with a small cache most of those pages are read in again each batch
        # (200,000 leads written: 4.0 s of CPU with 32 MiB against 6.3 s; 30,000
        # more into a store of 571,000: 54.6 s with 256 MiB against 59.3 s).
        # Memory only, as pages are used (a small store never fills it); what
        # is on disk and when it is synced do not change.
        dbapi_connection.execute("PRAGMA cache_size=-262144")

    @event.listens_for(engine, "begin")
    def _begin(connection):
        # IMMEDIATE: a writer takes the write lock at once, so two writers
        # never both read and then one fails to upgrade its lock.
        writes = connection.get_execution_options().get("leadhub_write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")

    return engine


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as connection:
        connection.execution_options(leadhub_write=True)
        with connection.begin():
            yield connection


@contextmanager
def read_transaction(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as connection, connection.begin():
        yield connection


def lock(connection: Connection, name: str) -> None:
    """Hold the named lock until the transaction ends. SQLite needs none:
    `BEGIN IMMEDIATE` already lets one writer in at a time."""
    lock_all(connection, [name])


def lock_all(connection: Connection, names: Iterable[str]) -> None:
    """Hold every named lock until the transaction ends, taken in one order
    (by key) whoever asks: two transactions that need overlapping sets wait
    for each other instead of each holding what the other waits for."""
    keys = sorted({lock_key(name) for name in names})
    if keys and connection.dialect.name == "postgresql":
        # One executemany: psycopg sends the statements in this order, in one round trip.
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                           [{"key": key} for key in keys])


def lock_key(name: str) -> int:
    """The PostgreSQL advisory-lock key of a lock name."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big",
                          signed=True)


# --- what is at the location ------------------------------------------------------

VERSION_TABLE = "leadhub_schema"
LEGACY_VERSION_TABLE = "schema_version"


@dataclass(frozen=True)
class Found:
    """What a location holds: nothing yet, an empty database, a LeadHub store
    (its revision, or the pre-Alembic schema number), or something else."""

    exists: bool
    tables: frozenset[str]
    revision: str | None = None
    legacy_version: int | None = None

    @property
    def is_empty(self) -> bool:
        return not self.tables

    @property
    def is_leadhub(self) -> bool:
        return self.revision is not None or self.legacy_version is not None


def inspect_location(location: StoreLocation) -> Found:
    """Look without changing anything: a foreign or damaged file is reported,
    never turned into a store."""
    if location.is_sqlite:
        return _inspect_sqlite(location)
    return _inspect_postgres(location)


def _inspect_sqlite(location: StoreLocation) -> Found:
    path = location.path
    assert path is not None
    if not path.exists():
        return Found(exists=False, tables=frozenset())
    if path.is_dir():
        raise FatalError(_("the store {path} is a folder; give a file name such as leadhub.db"
                           ).format(path=path))
    try:
        probe = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    except sqlite3.Error as error:
        raise FatalError(_("cannot open the store {path}: {error}").format(path=path, error=error)
                         ) from None
    try:
        tables = frozenset(row[0] for row in probe.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'"))
        revision = legacy = None
        if VERSION_TABLE in tables:
            row = probe.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchone()
            revision = row[0] if row else None
        elif LEGACY_VERSION_TABLE in tables:
            legacy = probe.execute(f"SELECT MAX(version) FROM {LEGACY_VERSION_TABLE}"
                                   ).fetchone()[0] or 0
    except sqlite3.DatabaseError as error:
        raise FatalError(damaged_message(location, error)) from None
    finally:
        probe.close()
    return Found(exists=True, tables=tables, revision=revision, legacy_version=legacy)


def _inspect_postgres(location: StoreLocation) -> Found:
    engine = create_engine(location.url, poolclass=None)
    try:
        with engine.connect() as connection:
            tables = frozenset(row[0] for row in connection.execute(text(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")))
            revision = None
            if VERSION_TABLE in tables:
                revision = connection.execute(
                    text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()
    except exc.OperationalError as error:
        raise FatalError(_("cannot reach the store {store}: {error}").format(
            store=location.describe(), error=_first_line(error.orig))) from None
    finally:
        engine.dispose()
    return Found(exists=True, tables=tables, revision=revision)


def damaged_message(location: StoreLocation, error: BaseException) -> str:
    return _("the store {store} cannot be used: {error} (not a LeadHub store, or damaged:"
             " restore a backup or give another --db)").format(store=location.describe(),
                                                              error=_first_line(error))


def _first_line(error: object) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def is_damage(error: exc.DBAPIError) -> bool:
    """A SQLite error that says the file itself is unusable (not a bug in a query)."""
    message = str(error.orig).lower()
    return isinstance(error.orig, sqlite3.DatabaseError) and any(sign in message for sign in (
        "file is not a database", "malformed", "disk i/o error", "database or disk is full",
        "unable to open database file", "readonly database"))
