"""Copy a whole store into a new one (SQLite to PostgreSQL, or back), table by
table in key order, in chunks, and check that every row arrived."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import func, select, text

from connectors.ledger.base import LedgerBase
from connectors.ledger.schema import metadata
from leadhub.errors import FatalError

CHUNK = 5000
Progress = Callable[[str, int, int], None]


def copy_store(source: LedgerBase, target: LedgerBase,
               progress: Progress | None = None) -> dict[str, int]:
    """Every row of `source` into `target`, which must be empty. Returns the
    rows copied per table; raises if a count differs afterwards."""
    if any(_count(target, table) for table in metadata.sorted_tables):
        raise FatalError(f"the store {target.path} already has rows: copy into a new, empty"
                         " store (a new SQLite file, or an empty PostgreSQL database)")
    copied: dict[str, int] = {}
    for table in metadata.sorted_tables:
        total = _count(source, table)
        done = 0
        order = list(table.primary_key.columns)
        with source.reading() as reading:
            result = reading.execution_options(stream_results=True, yield_per=CHUNK).execute(
                select(table).order_by(*order))
            for rows in result.mappings().partitions(CHUNK):
                with target.transaction() as tx:
                    tx.execute(table.insert(), [dict(row) for row in rows])
                done += len(rows)
                if progress:
                    progress(table.name, done, total)
        copied[table.name] = done
        _continue_sequences(target, table)
    for table in metadata.sorted_tables:
        if _count(target, table) != copied[table.name]:
            raise FatalError(f"copying {table.name} lost rows: {copied[table.name]} read,"
                             f" {_count(target, table)} in {target.path}")
    return copied


def _count(ledger: LedgerBase, table) -> int:
    return ledger.scalar(select(func.count()).select_from(table))


def _continue_sequences(target: LedgerBase, table) -> None:
    """PostgreSQL numbers new rows from a sequence that copied rows did not
    move: start it after the highest copied number."""
    if target.dialect != "postgresql":
        return
    for column in table.primary_key.columns:
        if column.autoincrement is True:
            with target.transaction() as tx:
                tx.execute(text(
                    f"SELECT setval(pg_get_serial_sequence('{table.name}', '{column.name}'),"
                    f" COALESCE((SELECT MAX({column.name}) FROM {table.name}), 0) + 1, false)"))
