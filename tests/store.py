"""Reading a store the way a person with a SQL client would, on either engine:
tests check what landed without going through the code under test."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlalchemy import create_engine, text

from connectors.ledger import locate
from connectors.ledger.database import as_utc


def comparable(value):
    """The same value as either engine returns it: PostgreSQL gives datetimes and
    booleans where SQLite gives UTC ISO text and 0/1."""
    if isinstance(value, datetime):
        return as_utc(value).isoformat()
    if isinstance(value, bool):
        return int(value)
    return value


def rows(store: str | Path, sql: str, **params) -> list[tuple]:
    """`query`, with every value in the one form both engines agree on."""
    return [tuple(comparable(value) for value in row) for row in query(store, sql, **params)]


def query(store: str | Path, sql: str, **params) -> list[tuple]:
    """Run one statement on the store; its rows as tuples (none for a change)."""
    engine = create_engine(locate(store).url)
    try:
        with engine.begin() as connection:
            result = connection.execute(text(sql), params)
            return [tuple(row) for row in result] if result.returns_rows else []
    finally:
        engine.dispose()


def lock_waits(store: str) -> int:
    """PostgreSQL: sessions of this store's database waiting for a lock."""
    [(count,)] = query(store, "SELECT count(*) FROM pg_locks WHERE NOT granted AND"
                              " database = (SELECT oid FROM pg_database"
                              "             WHERE datname = current_database())")
    return count
