"""Per-sink sync state: what LeadHub last wrote to each row of each CRM table,
the fields people took over, people's values read back, and rows a sink
refused."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

from sqlalchemy import Connection, delete, func, or_, select

from connectors.ledger.base import LedgerBase, chunks, now, upsert
from connectors.ledger.schema import contacts, leads, raw_items, sink_errors, sink_state
from transforms.crm import SyncState


class Sinks(LedgerBase):
    def sink_states(self, sink: str, kind: str) -> dict[str, SyncState]:
        return {
            row["record_key"]: SyncState(row["content_hash"], row["remote_id"],
                                         json.loads(row["written"]),
                                         frozenset(json.loads(row["edited"])))
            for row in self.iter_rows(select(sink_state).where(
                sink_state.c.sink == sink, sink_state.c.record_kind == kind))
        }

    def save_sink_states(self, sink: str, kind: str, states: dict[str, SyncState]) -> None:
        """Keep what landed in the sink; one transaction per written batch, so a
        crash loses at most the batch in flight (which the next run re-reads)."""
        stamp = now()
        with self.transaction() as tx:
            for key, state in states.items():
                tx.execute(delete(sink_errors).where(
                    sink_errors.c.sink == sink, sink_errors.c.record_kind == kind,
                    sink_errors.c.record_key == key))
                statement = upsert(tx, sink_state).values(
                    sink=sink, record_kind=kind, record_key=key,
                    content_hash=state.content_hash, remote_id=state.remote_id,
                    synced_at=stamp,
                    written=json.dumps(state.written, ensure_ascii=False, sort_keys=True,
                                       default=str),
                    edited=json.dumps(sorted(state.edited), ensure_ascii=False))
                tx.execute(statement.on_conflict_do_update(
                    index_elements=["sink", "record_kind", "record_key"],
                    set_={name: statement.excluded[name] for name in (
                        "content_hash", "remote_id", "synced_at", "written", "edited")}))

    def adopt_row(self, tx: Connection, sink: str, kind: str, key: str, remote_id: str) -> None:
        """A row a person typed becomes the sink's row of `key`: LeadHub has
        written nothing to it yet, so whatever it holds is the person's."""
        statement = upsert(tx, sink_state).values(
            sink=sink, record_kind=kind, record_key=key, content_hash="", remote_id=remote_id,
            synced_at=now(), written="{}", edited="[]")
        tx.execute(statement.on_conflict_do_update(
            index_elements=["sink", "record_kind", "record_key"],
            set_={"remote_id": statement.excluded.remote_id, "content_hash": "",
                  "written": "{}", "edited": "[]"}))

    def remote_id_of(self, tx: Connection, sink: str, kind: str, key: str) -> str | None:
        return tx.execute(select(sink_state.c.remote_id).where(
            sink_state.c.sink == sink, sink_state.c.record_kind == kind,
            sink_state.c.record_key == key)).scalar()

    def sink_errors(self, sink: str, kind: str) -> dict[str, str]:
        """Rows the sink refused, by key -> the content hash that was refused."""
        with self.reading() as connection:
            return dict(connection.execute(
                select(sink_errors.c.record_key, sink_errors.c.content_hash).where(
                    sink_errors.c.sink == sink, sink_errors.c.record_kind == kind)).all())

    def record_sink_errors(self, sink: str, kind: str, errors: dict[str, tuple[str, str]]) -> None:
        """key -> (content hash, the sink's message): kept until the row changes."""
        stamp = now()
        with self.transaction() as tx:
            for key, (digest, message) in errors.items():
                statement = upsert(tx, sink_errors).values(
                    sink=sink, record_kind=kind, record_key=key, content_hash=digest,
                    error=message, failed_at=stamp)
                tx.execute(statement.on_conflict_do_update(
                    index_elements=["sink", "record_kind", "record_key"],
                    set_={name: statement.excluded[name]
                          for name in ("content_hash", "error", "failed_at")}))

    def sink_error_list(self) -> list:
        return self.rows(select(sink_errors).order_by(
            sink_errors.c.sink, sink_errors.c.record_kind, sink_errors.c.failed_at))

    def sink_error_counts(self) -> dict[str, int]:
        with self.reading() as connection:
            return dict(connection.execute(select(sink_errors.c.sink, func.count())
                                           .group_by(sink_errors.c.sink)).all())

    def people_values(self, sink: str, kind: str) -> dict[str, dict]:
        with self.reading() as connection:
            return {key: json.loads(people) for key, people in connection.execute(
                select(sink_state.c.record_key, sink_state.c.people).where(
                    sink_state.c.sink == sink, sink_state.c.record_kind == kind))}

    def sink_rows(self, kind: str) -> Iterator[dict]:
        """What LeadHub keeps in a sink's table, one store row at a time."""
        if kind == "contacts":
            query = select(contacts).order_by(contacts.c.first_seen, contacts.c.contact_key)
        elif kind == "leads":
            query = select(leads).order_by(leads.c.received_at, leads.c.lead_id)
        else:
            # quarantined now, or once (a replayed item's row then shows its new state)
            once = select(sink_state.c.record_key).where(
                sink_state.c.record_kind == "needs_review")
            query = select(raw_items.c.item_id, raw_items.c.source, raw_items.c.kind,
                           raw_items.c.received_at, raw_items.c.state, raw_items.c.reason,
                           raw_items.c.payload).where(or_(
                               raw_items.c.state == "quarantined",
                               raw_items.c.item_id.in_(once))).order_by(
                raw_items.c.received_at, raw_items.c.item_id)
        return self.iter_rows(query)

    def remote_ids(self, sinks: Iterable[str], kind: str,
                   keys: Iterable[str]) -> dict[str, dict[str, str]]:
        """record key -> {sink: remote id} of the rows synced to these sinks."""
        keys = list(keys)
        found: dict[str, dict[str, str]] = {}
        with self.reading() as connection:
            for sink in sinks:
                for chunk in chunks(keys):
                    for key, remote_id in connection.execute(select(
                            sink_state.c.record_key, sink_state.c.remote_id).where(
                            sink_state.c.sink == sink, sink_state.c.record_kind == kind,
                            sink_state.c.remote_id.is_not(None),
                            sink_state.c.record_key.in_(chunk))):
                        found.setdefault(key, {})[sink] = remote_id
        return found
