"""Source checkpoints (a mailbox folder's last UID, a file's hash) and the
health of every source scope that `leadhub status` shows."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, delete, func, select

from connectors.ledger.base import LedgerBase, now, upsert
from connectors.ledger.database import lock
from connectors.ledger.schema import checkpoints, source_status

# Leases sit among the checkpoints under this source, one scope per lease.
LEASES = "lease"


class Sources(LedgerBase):
    def take_lease(self, name: str, holder: str, until: datetime, at: datetime,
                   replacing: str | None = None) -> str | None:
        """Hold the lease `name` for `holder` until `until` (taking it, or
        keeping it longer), unless another holder has it beyond `at`.
        None when held; otherwise the holder that has it. A holder that died
        keeps it only until its `until`, or until someone who knows it is dead
        takes it over (`replacing` it)."""
        with self.transaction() as tx:
            lock(tx, f"lease:{name}")
            current = self.checkpoint_in(tx, LEASES, name)
            if current:
                other, _, expires = current.rpartition("|")
                if other not in (holder, replacing) and datetime.fromisoformat(expires) > at:
                    return other
            self._save_checkpoint(tx, LEASES, name, f"{holder}|{until.isoformat()}")
        return None

    def release_lease(self, name: str, holder: str) -> None:
        with self.transaction() as tx:
            lock(tx, f"lease:{name}")
            current = self.checkpoint_in(tx, LEASES, name)
            if current and current.rpartition("|")[0] == holder:
                tx.execute(delete(checkpoints).where(checkpoints.c.source == LEASES,
                                                     checkpoints.c.scope == name))

    def checkpoint(self, source: str, scope: str) -> str | None:
        return self.scalar(select(checkpoints.c.value).where(
            checkpoints.c.source == source, checkpoints.c.scope == scope))

    def checkpoint_in(self, tx: Connection, source: str, scope: str) -> str | None:
        """A checkpoint read inside a write transaction (its lock keeps it)."""
        return tx.execute(select(checkpoints.c.value).where(
            checkpoints.c.source == source, checkpoints.c.scope == scope)).scalar()

    def save_checkpoint_in(self, tx: Connection, source: str, scope: str, value: str) -> None:
        self._save_checkpoint(tx, source, scope, value)

    def set_checkpoint(self, source: str, scope: str, value: str) -> None:
        with self.transaction() as tx:
            self._save_checkpoint(tx, source, scope, value)

    def _save_checkpoint(self, tx: Connection, source: str, scope: str, value: str) -> None:
        statement = upsert(tx, checkpoints).values(
            source=source, scope=scope, value=value, updated_at=now())
        tx.execute(statement.on_conflict_do_update(
            index_elements=["source", "scope"],
            set_={"value": statement.excluded.value,
                  "updated_at": statement.excluded.updated_at}))

    def record_success(self, source: str, scope: str,
                       last_message_at: datetime | None = None) -> None:
        with self.transaction() as tx:
            statement = upsert(tx, source_status).values(
                source=source, scope=scope, last_success_at=now(),
                last_message_at=last_message_at)
            tx.execute(statement.on_conflict_do_update(
                index_elements=["source", "scope"],
                set_={"last_success_at": statement.excluded.last_success_at,
                      "last_message_at": func.coalesce(statement.excluded.last_message_at,
                                                        source_status.c.last_message_at),
                      "failing_since": None}))

    def record_failure(self, source: str, scope: str, error: str) -> None:
        stamp = now()
        with self.transaction() as tx:
            statement = upsert(tx, source_status).values(
                source=source, scope=scope, last_error=error, last_error_at=stamp,
                failing_since=stamp)
            tx.execute(statement.on_conflict_do_update(
                index_elements=["source", "scope"],
                set_={"last_error": statement.excluded.last_error,
                      "last_error_at": statement.excluded.last_error_at,
                      "failing_since": func.coalesce(source_status.c.failing_since,
                                                     statement.excluded.failing_since)}))

    def source_health(self) -> list:
        return self.rows(
            select(source_status, checkpoints.c.value.label("checkpoint"))
            .select_from(source_status.outerjoin(checkpoints, (
                checkpoints.c.source == source_status.c.source)
                & (checkpoints.c.scope == source_status.c.scope)))
            .order_by(source_status.c.source, source_status.c.scope))
