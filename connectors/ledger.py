"""The embedded store: one SQLite file (WAL) that holds every raw item first.

Raw items, contacts, leads, source checkpoints and per-sink sync state live
here. A raw item and the checkpoint that moves past it are committed in one
transaction; inserting an item that is already there changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, fields
from datetime import UTC, datetime, timedelta
from pathlib import Path

from leadhub.errors import FatalError
from transforms.crm import SyncState
from transforms.dedupe import ContactBook, Identity
from transforms.records import Contact, Lead, RawItem

# Forward migrations, applied in order; the index + 1 is the schema version.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE raw_items (
        item_id TEXT PRIMARY KEY,
        source TEXT NOT NULL,
        kind TEXT NOT NULL,
        received_at TEXT NOT NULL,
        payload BLOB NOT NULL,
        content_hash TEXT NOT NULL,
        meta TEXT NOT NULL DEFAULT '{}',
        state TEXT NOT NULL DEFAULT 'new'
            CHECK (state IN ('new', 'processed', 'skipped', 'quarantined')),
        reason TEXT NOT NULL DEFAULT '',
        lead_id TEXT,
        ingested_at TEXT NOT NULL,
        processed_at TEXT
    );
    CREATE INDEX raw_items_state ON raw_items (state, received_at);
    CREATE TABLE checkpoints (
        source TEXT NOT NULL,
        scope TEXT NOT NULL,
        value TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (source, scope)
    );
    CREATE TABLE contacts (
        contact_key TEXT PRIMARY KEY,
        name TEXT NOT NULL DEFAULT '',
        phone TEXT NOT NULL DEFAULT '',
        phone_display TEXT NOT NULL DEFAULT '',
        email TEXT NOT NULL DEFAULT '',
        company TEXT NOT NULL DEFAULT '',
        legal_form TEXT NOT NULL DEFAULT '',
        position TEXT NOT NULL DEFAULT '',
        city TEXT NOT NULL DEFAULT '',
        source TEXT NOT NULL DEFAULT '',
        first_seen TEXT,
        last_seen TEXT,
        leads_count INTEGER NOT NULL DEFAULT 0,
        segment TEXT NOT NULL DEFAULT '',
        merged_into TEXT,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE contact_identities (
        kind TEXT NOT NULL,
        value TEXT NOT NULL,
        contact_key TEXT NOT NULL,
        PRIMARY KEY (kind, value)
    );
    CREATE INDEX contact_identities_key ON contact_identities (contact_key);
    CREATE TABLE leads (
        lead_id TEXT PRIMARY KEY,
        contact_key TEXT NOT NULL,
        raw_item_id TEXT NOT NULL,
        received_at TEXT NOT NULL,
        channel TEXT NOT NULL,
        source TEXT NOT NULL,
        source_matched INTEGER NOT NULL,
        raw_source TEXT NOT NULL,
        name TEXT NOT NULL,
        phone TEXT NOT NULL,
        email TEXT NOT NULL,
        company TEXT NOT NULL,
        subject TEXT NOT NULL,
        message TEXT NOT NULL,
        stage TEXT NOT NULL DEFAULT '',
        warnings TEXT NOT NULL DEFAULT '[]'
    );
    CREATE INDEX leads_contact ON leads (contact_key);
    CREATE TABLE sink_state (
        sink TEXT NOT NULL,
        record_kind TEXT NOT NULL,
        record_key TEXT NOT NULL,
        content_hash TEXT NOT NULL,
        remote_id TEXT,
        synced_at TEXT NOT NULL,
        PRIMARY KEY (sink, record_kind, record_key)
    );
    CREATE TABLE runs (
        run_id INTEGER PRIMARY KEY AUTOINCREMENT,
        command TEXT NOT NULL,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        stats TEXT NOT NULL DEFAULT '{}'
    );
    """,
    # 2: health of every source scope (a mailbox folder, a files source)
    """
    CREATE TABLE source_status (
        source TEXT NOT NULL,
        scope TEXT NOT NULL,
        last_success_at TEXT,
        last_message_at TEXT,
        last_error TEXT NOT NULL DEFAULT '',
        last_error_at TEXT,
        failing_since TEXT,
        PRIMARY KEY (source, scope)
    );
    """,
    # 3: orders and their items, imported or read back from a CRM table
    """
    CREATE TABLE orders (
        order_id TEXT PRIMARY KEY,
        contact_key TEXT NOT NULL,
        ordered_at TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT '',
        comment TEXT NOT NULL DEFAULT '',
        updated_at TEXT NOT NULL
    );
    CREATE INDEX orders_contact ON orders (contact_key);
    CREATE TABLE order_items (
        order_id TEXT NOT NULL,
        line INTEGER NOT NULL,
        product TEXT NOT NULL,
        price REAL NOT NULL,
        cost REAL NOT NULL DEFAULT 0,
        quantity REAL NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (order_id, line)
    );
    CREATE INDEX raw_items_content ON raw_items (source, content_hash, received_at);
    """,
    # 4: exports read leads and orders in time order, and by date with --since
    """
    CREATE INDEX leads_received ON leads (received_at, lead_id);
    CREATE INDEX orders_ordered ON orders (ordered_at, order_id);
    CREATE INDEX contacts_first_seen ON contacts (first_seen, contact_key);
    """,
    # 5: per row of a sink, the values LeadHub last wrote, the fields people took
    # over, and the people-owned values read back
    """
    ALTER TABLE sink_state ADD COLUMN written TEXT NOT NULL DEFAULT '{}';
    ALTER TABLE sink_state ADD COLUMN edited TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE sink_state ADD COLUMN people TEXT NOT NULL DEFAULT '{}';
    CREATE INDEX sink_state_remote ON sink_state (sink, record_kind, remote_id);
    CREATE TABLE sink_errors (
        sink TEXT NOT NULL,
        record_kind TEXT NOT NULL,
        record_key TEXT NOT NULL,
        content_hash TEXT NOT NULL,
        error TEXT NOT NULL,
        failed_at TEXT NOT NULL,
        PRIMARY KEY (sink, record_kind, record_key)
    );
    """,
    # 6: alerts queued and sent (one row per rule, event and channel), follow-up
    # tasks, and the events a rule has already acted on
    """
    CREATE TABLE alerts (
        alert_id TEXT PRIMARY KEY,
        rule TEXT NOT NULL,
        channel TEXT NOT NULL,
        event_kind TEXT NOT NULL,
        event_key TEXT NOT NULL,
        title TEXT NOT NULL DEFAULT '',
        message TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending'
            CHECK (state IN ('pending', 'sending', 'sent', 'failed', 'cancelled')),
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT NOT NULL DEFAULT '',
        created_at TEXT NOT NULL,
        send_after TEXT NOT NULL,
        claimed_at TEXT,
        sent_at TEXT
    );
    CREATE INDEX alerts_due ON alerts (state, send_after);
    CREATE TABLE tasks (
        task_id TEXT PRIMARY KEY,
        rule TEXT NOT NULL,
        contact_key TEXT NOT NULL DEFAULT '',
        lead_id TEXT,
        title TEXT NOT NULL,
        details TEXT NOT NULL DEFAULT '',
        due_at TEXT NOT NULL,
        done INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        reminded_due_at TEXT
    );
    CREATE INDEX tasks_due ON tasks (done, due_at);
    CREATE TABLE event_marks (
        rule TEXT NOT NULL,
        event_key TEXT NOT NULL,
        marked_at TEXT NOT NULL,
        PRIMARY KEY (rule, event_key)
    );
    """,
]

_CONTACT_COLUMNS = [f.name for f in fields(Contact)]


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _time(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat(timespec="seconds") if value else None


def _parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


class Ledger:
    """The SQLite ledger. One instance per process; not shared across threads."""

    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        except (OSError, sqlite3.Error) as error:
            raise FatalError(f"cannot open the store {self.path}: {error}") from None
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit is on disk when it returns (the web endpoint answers
        # 202 only after that), even across a power loss.
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self._migrate()

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def schema_version(self) -> int:
        return self.db.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] or 0

    def _migrate(self) -> None:
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS schema_version"
            " (version INTEGER PRIMARY KEY, applied_at TEXT)"
        )
        current = self.schema_version()
        if current > len(MIGRATIONS):
            raise FatalError(
                f"{self.path} was written by a newer LeadHub (schema {current}); upgrade LeadHub"
            )
        for version, script in enumerate(MIGRATIONS[current:], start=current + 1):
            with self.transaction() as db:
                for statement in script.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute("INSERT INTO schema_version VALUES (?, ?)", (version, now()))

    # --- raw items and checkpoints -------------------------------------------

    def store_raw_items(
        self, items: Iterable[RawItem], checkpoint: tuple[str, str, str] | None = None
    ) -> int:
        """Insert new items and move the checkpoint in one transaction.

        Returns how many items were new; items already stored are left as
        they are, so storing the same item twice changes nothing.
        """
        added = 0
        with self.transaction() as db:
            for item in items:
                content_hash = hashlib.sha256(item.payload).hexdigest()
                added += self._insert_item(db, item, item.item_id, content_hash)
            if checkpoint:
                db.execute(
                    "INSERT INTO checkpoints VALUES (?, ?, ?, ?) ON CONFLICT (source, scope)"
                    " DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                    (*checkpoint, now()),
                )
        return added

    def _insert_item(
        self, db: sqlite3.Connection, item: RawItem, item_id: str, content_hash: str
    ) -> int:
        cursor = db.execute(
            "INSERT OR IGNORE INTO raw_items (item_id, source, kind, received_at, payload,"
            " content_hash, meta, ingested_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                item_id,
                item.source,
                item.kind,
                _time(item.received_at),
                item.payload,
                content_hash,
                json.dumps(item.meta, ensure_ascii=False, sort_keys=True),
                now(),
            ),
        )
        if cursor.rowcount or "@" in item_id:
            return cursor.rowcount
        stored = db.execute(
            "SELECT content_hash FROM raw_items WHERE item_id = ?", (item_id,)
        ).fetchone()[0]
        if stored == content_hash:
            return 0
        # Same place, new content (a CSV row edited and imported again): keep
        # it as a revision rather than lose it.
        return self._insert_item(db, item, f"{item_id}@{content_hash[:12]}", content_hash)

    def store_submission(self, item: RawItem, duplicate_window_seconds: int) -> tuple[str, bool]:
        """Store a web-form post unless it repeats one: the same item id (a
        provider retry with its submission id) or the same content from the
        same source within the window. Check and insert are one transaction,
        so two copies arriving at once cannot both get in. Returns the id of
        the stored (or earlier) item and whether it was a repeat."""
        content_hash = hashlib.sha256(item.payload).hexdigest()
        since = (item.received_at - timedelta(seconds=duplicate_window_seconds))
        with self.transaction() as db:
            # Two indexed look-ups: an OR of both would scan the whole table.
            earlier = db.execute(
                "SELECT item_id FROM raw_items WHERE item_id = ?", (item.item_id,)
            ).fetchone() or db.execute(
                "SELECT item_id FROM raw_items WHERE source = ? AND content_hash = ?"
                " AND received_at >= ? LIMIT 1",
                (item.source, content_hash, _time(since)),
            ).fetchone()
            if earlier:
                return earlier[0], True
            self._insert_item(db, item, item.item_id, content_hash)
        return item.item_id, False

    def checkpoint(self, source: str, scope: str) -> str | None:
        row = self.db.execute(
            "SELECT value FROM checkpoints WHERE source = ? AND scope = ?", (source, scope)
        ).fetchone()
        return row[0] if row else None

    def pending_items(self, limit: int) -> list[RawItem]:
        rows = self.db.execute(
            "SELECT * FROM raw_items WHERE state = 'new' ORDER BY received_at, item_id LIMIT ?",
            (limit,),
        ).fetchall()
        return [
            RawItem(
                item_id=row["item_id"],
                source=row["source"],
                kind=row["kind"],
                payload=row["payload"],
                received_at=datetime.fromisoformat(row["received_at"]),
                meta=json.loads(row["meta"]),
            )
            for row in rows
        ]

    def requeue(self, states: tuple[str, ...] = ("quarantined",)) -> int:
        """Mark items to be processed again (replay after a config fix)."""
        marks = ",".join("?" * len(states))
        with self.transaction() as db:
            return db.execute(
                f"UPDATE raw_items SET state = 'new', reason = '' WHERE state IN ({marks})",
                states,
            ).rowcount

    # --- source health --------------------------------------------------------

    def record_success(
        self, source: str, scope: str, last_message_at: datetime | None = None
    ) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO source_status (source, scope, last_success_at, last_message_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (source, scope) DO UPDATE SET"
                " last_success_at = excluded.last_success_at,"
                " last_message_at = COALESCE(excluded.last_message_at, last_message_at),"
                " failing_since = NULL",
                (source, scope, now(), _time(last_message_at)),
            )

    def record_failure(self, source: str, scope: str, error: str) -> None:
        stamp = now()
        with self.transaction() as db:
            db.execute(
                "INSERT INTO source_status (source, scope, last_error, last_error_at,"
                " failing_since) VALUES (?, ?, ?, ?, ?) ON CONFLICT (source, scope) DO UPDATE"
                " SET last_error = excluded.last_error, last_error_at = excluded.last_error_at,"
                " failing_since = COALESCE(failing_since, excluded.failing_since)",
                (source, scope, error, stamp, stamp),
            )

    def source_health(self) -> list[sqlite3.Row]:
        return self.db.execute(
            "SELECT s.*, c.value AS checkpoint FROM source_status s LEFT JOIN checkpoints c"
            " ON c.source = s.source AND c.scope = s.scope ORDER BY s.source, s.scope"
        ).fetchall()

    # --- contacts and leads --------------------------------------------------

    def load_book(self, identities: Iterable[Identity]) -> ContactBook:
        """The contacts that own any of these identities, with all their identities."""
        book = ContactBook()
        keys = set()
        for kind, value in set(identities):
            row = self.db.execute(
                "SELECT contact_key FROM contact_identities WHERE kind = ? AND value = ?",
                (kind, value),
            ).fetchone()
            if row:
                keys.add(row[0])
        for key in sorted(keys):
            row = self.db.execute("SELECT * FROM contacts WHERE contact_key = ?", (key,)).fetchone()
            owned = self.db.execute(
                "SELECT kind, value FROM contact_identities WHERE contact_key = ?", (key,)
            ).fetchall()
            book.load(_contact_from_row(row), [(r[0], r[1]) for r in owned])
        return book

    def still_new(self, db: sqlite3.Connection, item_ids: list[str]) -> set[str]:
        found: set[str] = set()
        for start in range(0, len(item_ids), 500):
            chunk = item_ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            found |= {row[0] for row in db.execute(
                f"SELECT item_id FROM raw_items WHERE state = 'new' AND item_id IN ({marks})",
                chunk)}
        return found

    def lead_exists(self, lead_id: str) -> bool:
        return bool(self.db.execute("SELECT 1 FROM leads WHERE lead_id = ?", (lead_id,)).fetchone())

    def mark_item(
        self,
        db: sqlite3.Connection,
        item_id: str,
        state: str,
        reason: str = "",
        lead_id: str | None = None,
    ) -> None:
        db.execute(
            "UPDATE raw_items SET state = ?, reason = ?, lead_id = ?, processed_at = ?"
            " WHERE item_id = ?",
            (state, reason, lead_id, now(), item_id),
        )

    def save_book(self, db: sqlite3.Connection, book: ContactBook) -> None:
        """Write changed contacts, their identities, and merges (leads follow)."""
        stamp = now()
        for loser, survivor in book.merged_into.items():
            self._upsert_contact(db, book.retired[loser], stamp, merged_into=survivor)
            db.execute("UPDATE leads SET contact_key = ? WHERE contact_key = ?", (survivor, loser))
            db.execute(
                "UPDATE contacts SET merged_into = ? WHERE merged_into = ?", (survivor, loser)
            )
        for key in book.changed:
            self._upsert_contact(db, book.contacts[key], stamp)
        for (kind, value), key in book.identities.items():
            if key in book.changed:
                db.execute(
                    "INSERT INTO contact_identities VALUES (?, ?, ?) ON CONFLICT (kind, value)"
                    " DO UPDATE SET contact_key = excluded.contact_key",
                    (kind, value, key),
                )

    def _upsert_contact(
        self, db: sqlite3.Connection, contact: Contact, stamp: str, merged_into: str | None = None
    ) -> None:
        values = asdict(contact)
        values["first_seen"] = _time(contact.first_seen)
        values["last_seen"] = _time(contact.last_seen)
        columns = ", ".join(_CONTACT_COLUMNS)
        marks = ", ".join(f":{c}" for c in _CONTACT_COLUMNS)
        updates = ", ".join(f"{c} = excluded.{c}" for c in _CONTACT_COLUMNS[1:])
        db.execute(
            f"INSERT INTO contacts ({columns}, merged_into, updated_at) VALUES ({marks},"
            f" :merged_into, :updated_at) ON CONFLICT (contact_key) DO UPDATE SET {updates},"
            " merged_into = excluded.merged_into, updated_at = excluded.updated_at",
            {**values, "merged_into": merged_into, "updated_at": stamp},
        )

    def save_lead(self, db: sqlite3.Connection, lead: Lead, contact_key: str, item_id: str) -> None:
        db.execute(
            "INSERT INTO leads (lead_id, contact_key, raw_item_id, received_at, channel, source,"
            " source_matched, raw_source, name, phone, email, company, subject, message, warnings)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                lead.lead_id,
                contact_key,
                item_id,
                _time(lead.received_at),
                lead.channel,
                lead.source,
                int(lead.source_matched),
                json.dumps(lead.raw_source, ensure_ascii=False, sort_keys=True),
                lead.name,
                lead.phone,
                lead.email,
                lead.company,
                lead.subject,
                lead.message,
                json.dumps(lead.warnings, ensure_ascii=False),
            ),
        )

    # --- orders ---------------------------------------------------------------

    def contact_key_for(self, kind: str, value: str) -> str | None:
        """The surviving contact that owns this phone or email, if any."""
        row = self.db.execute(
            "SELECT contact_key FROM contact_identities WHERE kind = ? AND value = ?",
            (kind, value),
        ).fetchone()
        return row[0] if row else None

    def upsert_orders(self, orders: Iterable[dict]) -> int:
        stamp = now()
        with self.transaction() as db:
            count = 0
            for order in orders:
                db.execute(
                    "INSERT INTO orders VALUES (:order_id, :contact_key, :ordered_at, :status,"
                    " :comment, :updated_at) ON CONFLICT (order_id) DO UPDATE SET"
                    " contact_key = excluded.contact_key, ordered_at = excluded.ordered_at,"
                    " status = excluded.status, comment = excluded.comment,"
                    " updated_at = excluded.updated_at",
                    {**order, "ordered_at": _time(order["ordered_at"]), "updated_at": stamp},
                )
                count += 1
        return count

    def upsert_order_items(self, items: Iterable[dict]) -> int:
        """Items keyed by order and line: importing the same file again
        replaces the lines instead of adding them twice."""
        stamp = now()
        with self.transaction() as db:
            count = 0
            for item in items:
                db.execute(
                    "INSERT INTO order_items VALUES (:order_id, :line, :product, :price, :cost,"
                    " :quantity, :updated_at) ON CONFLICT (order_id, line) DO UPDATE SET"
                    " product = excluded.product, price = excluded.price, cost = excluded.cost,"
                    " quantity = excluded.quantity, updated_at = excluded.updated_at",
                    {**item, "updated_at": stamp},
                )
                count += 1
        return count

    def replace_order_items(self, items: Iterable[dict]) -> int:
        """Every order among `items` gets exactly these lines, in one transaction:
        its other stored lines (deleted from a corrected file) go. Orders not
        among `items` keep theirs."""
        items = list(items)
        stamp = now()
        with self.transaction() as db:
            db.executemany("DELETE FROM order_items WHERE order_id = ?",
                           [(order_id,) for order_id in {item["order_id"] for item in items}])
            # REAL columns, and sqlite3 cannot bind a Decimal
            db.executemany(
                "INSERT INTO order_items (order_id, line, product, price, cost, quantity,"
                " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(item["order_id"], item["line"], item["product"], float(item["price"]),
                  float(item["cost"]), float(item["quantity"]), stamp) for item in items])
        return len(items)

    # --- reading for exports and status --------------------------------------

    def iter_rows(self, query: str, params: tuple = ()) -> Iterator[dict]:
        """Rows one by one, so an export of a million leads stays small in memory."""
        cursor = self.db.execute(query, params)
        columns = [d[0] for d in cursor.description]
        for row in cursor:
            yield dict(zip(columns, row, strict=True))

    def review_items(self, since: str = "") -> Iterator[dict]:
        """Skipped and quarantined items (received at or after `since`, ISO)."""
        return self.iter_rows(
            "SELECT item_id, source, kind, received_at, state, reason, meta, payload"
            " FROM raw_items WHERE state IN ('quarantined', 'skipped') AND received_at >= ?"
            " ORDER BY state, received_at, item_id",
            (since,),
        )

    def counts(self) -> dict[str, int]:
        counts = {
            f"items_{row[0]}": row[1]
            for row in self.db.execute("SELECT state, COUNT(*) FROM raw_items GROUP BY state")
        }
        counts["contacts"] = self.db.execute(
            "SELECT COUNT(*) FROM contacts WHERE merged_into IS NULL"
        ).fetchone()[0]
        counts["contacts_merged"] = self.db.execute(
            "SELECT COUNT(*) FROM contacts WHERE merged_into IS NOT NULL"
        ).fetchone()[0]
        counts["leads"] = self.db.execute("SELECT COUNT(*) FROM leads").fetchone()[0]
        return counts

    # --- sinks (Airtable, Sheets) ---------------------------------------------

    def sink_states(self, sink: str, kind: str) -> dict[str, SyncState]:
        return {
            row["record_key"]: SyncState(
                row["content_hash"], row["remote_id"], json.loads(row["written"]),
                frozenset(json.loads(row["edited"])),
            )
            for row in self.db.execute(
                "SELECT record_key, content_hash, remote_id, written, edited FROM sink_state"
                " WHERE sink = ? AND record_kind = ?", (sink, kind),
            )
        }

    def save_sink_states(self, sink: str, kind: str, states: dict[str, SyncState]) -> None:
        """Keep what landed in the sink; one transaction per written batch, so a
        crash loses at most the batch in flight (which the next run re-reads)."""
        stamp = now()
        with self.transaction() as db:
            for key, state in states.items():
                db.execute("DELETE FROM sink_errors WHERE sink = ? AND record_kind = ?"
                           " AND record_key = ?", (sink, kind, key))
                db.execute(
                    "INSERT INTO sink_state (sink, record_kind, record_key, content_hash,"
                    " remote_id, synced_at, written, edited) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (sink, record_kind, record_key) DO UPDATE SET"
                    " content_hash = excluded.content_hash, remote_id = excluded.remote_id,"
                    " synced_at = excluded.synced_at, written = excluded.written,"
                    " edited = excluded.edited",
                    (sink, kind, key, state.content_hash, state.remote_id, stamp,
                     json.dumps(state.written, ensure_ascii=False, sort_keys=True),
                     json.dumps(sorted(state.edited), ensure_ascii=False)),
                )

    def sink_errors(self, sink: str, kind: str) -> dict[str, str]:
        """Rows the sink refused, by key -> the content hash that was refused."""
        return {row[0]: row[1] for row in self.db.execute(
            "SELECT record_key, content_hash FROM sink_errors WHERE sink = ? AND record_kind = ?",
            (sink, kind))}

    def record_sink_errors(self, sink: str, kind: str, errors: dict[str, tuple[str, str]]) -> None:
        """key -> (content hash, the sink's message): kept until the row changes."""
        with self.transaction() as db:
            for key, (digest, message) in errors.items():
                db.execute(
                    "INSERT INTO sink_errors VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (sink,"
                    " record_kind, record_key) DO UPDATE SET content_hash = excluded.content_hash,"
                    " error = excluded.error, failed_at = excluded.failed_at",
                    (sink, kind, key, digest, message, now()))

    def sink_error_list(self) -> list[sqlite3.Row]:
        return self.db.execute(
            "SELECT * FROM sink_errors ORDER BY sink, record_kind, failed_at").fetchall()

    def save_people_values(self, sink: str, kind: str, values: dict[str, dict]) -> None:
        """People-owned values read back from a sink; a lead's stage also goes to
        the leads table, where the funnel report reads it."""
        with self.transaction() as db:
            for key, people in values.items():
                db.execute(
                    "UPDATE sink_state SET people = ? WHERE sink = ? AND record_kind = ?"
                    " AND record_key = ?",
                    (json.dumps(people, ensure_ascii=False, sort_keys=True), sink, kind, key),
                )
                if kind == "leads" and "stage" in people:
                    db.execute("UPDATE leads SET stage = ? WHERE lead_id = ?",
                               (people["stage"] or "", key))

    def people_values(self, sink: str, kind: str) -> dict[str, dict]:
        return {
            row[0]: json.loads(row[1])
            for row in self.db.execute(
                "SELECT record_key, people FROM sink_state WHERE sink = ? AND record_kind = ?",
                (sink, kind),
            )
        }

    def sink_rows(self, kind: str) -> Iterator[dict]:
        """What LeadHub keeps in a sink's table, one ledger row at a time."""
        queries = {
            "contacts": "SELECT * FROM contacts ORDER BY first_seen, contact_key",
            "leads": "SELECT * FROM leads ORDER BY received_at, lead_id",
            # quarantined now, or once (a replayed item's row then shows its new state)
            "needs_review": "SELECT item_id, source, kind, received_at, state, reason,"
            " payload FROM raw_items WHERE state = 'quarantined' OR item_id IN"
            " (SELECT record_key FROM sink_state WHERE record_kind = 'needs_review')"
            " ORDER BY received_at, item_id",
        }
        return self.iter_rows(queries[kind])

    def set_checkpoint(self, source: str, scope: str, value: str) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO checkpoints VALUES (?, ?, ?, ?) ON CONFLICT (source, scope)"
                " DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                (source, scope, value, now()),
            )

    # --- alerts and tasks -----------------------------------------------------

    def rule_mark(self, scope: str) -> dict | None:
        """Where an alert or task rule stands (`alert:NAME`, `task:NAME`): the
        last lead it looked at and when it was first seen; None before its
        first run."""
        value = self.checkpoint("alerts", scope)
        return json.loads(value) if value else None

    def start_rule(self, scope: str, baseline: Iterable[str] = ()) -> dict:
        """A rule's first run: it acts only on what comes after, so a rule added
        to a ledger full of old leads fires nothing for them. `baseline` are the
        triggers already true (leads already at a stage), never to act on."""
        stamp = now()
        with self.transaction() as db:
            row = db.execute("SELECT value FROM checkpoints WHERE source = 'alerts'"
                             " AND scope = ?", (scope,)).fetchone()
            if row:
                return json.loads(row[0])
            position = db.execute("SELECT COALESCE(MAX(rowid), 0) FROM leads").fetchone()[0]
            mark = {"lead_position": position, "since": stamp}
            db.executemany("INSERT OR IGNORE INTO event_marks VALUES (?, ?, ?)",
                           ((scope, key, stamp) for key in baseline))
            self._save_rule_mark(db, scope, mark)
        return mark

    def _save_rule_mark(self, db: sqlite3.Connection, scope: str, mark: dict) -> None:
        db.execute(
            "INSERT INTO checkpoints VALUES ('alerts', ?, ?, ?) ON CONFLICT (source, scope)"
            " DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            (scope, json.dumps(mark, sort_keys=True), now()),
        )

    def leads_after(self, position: int) -> list[dict]:
        """Leads stored after `position` (their rowid, which only grows: one
        writer at a time, and leads are never deleted), with what alerts show:
        the contact's phone display and lead count, the configured source they
        came through, and whether the lead is the contact's first."""
        return list(self.iter_rows(
            "SELECT l.rowid AS position, l.lead_id, l.contact_key, l.received_at, l.channel,"
            " l.source, l.name, l.phone, l.email, l.company, l.subject, l.message, l.stage,"
            " COALESCE(c.phone_display, '') AS phone_display,"
            " COALESCE(c.leads_count, 0) AS leads_count, COALESCE(r.source, '') AS origin,"
            " NOT EXISTS (SELECT 1 FROM leads e WHERE e.contact_key = l.contact_key"
            " AND e.rowid < l.rowid) AS first_of_contact"
            " FROM leads l LEFT JOIN contacts c ON c.contact_key = l.contact_key"
            " LEFT JOIN raw_items r ON r.item_id = l.raw_item_id"
            " WHERE l.rowid > ? ORDER BY l.rowid", (position,)))

    def quarantined_since(self, since: str) -> list[dict]:
        """Items quarantined at or after `since` (ISO), with the start of their payload."""
        return list(self.iter_rows(
            "SELECT item_id, source, received_at, reason, substr(payload, 1, 4000) AS payload"
            " FROM raw_items WHERE state = 'quarantined' AND processed_at >= ?"
            " ORDER BY processed_at, item_id", (since,)))

    def remote_ids(self, sinks: Iterable[str], kind: str,
                   keys: Iterable[str]) -> dict[str, dict[str, str]]:
        """record key -> {sink: remote id} of the rows synced to these sinks."""
        keys = list(keys)
        found: dict[str, dict[str, str]] = {}
        for sink in sinks:
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                marks = ",".join("?" * len(chunk))
                for key, remote_id in self.db.execute(
                    f"SELECT record_key, remote_id FROM sink_state WHERE sink = ? AND"
                    f" record_kind = ? AND remote_id IS NOT NULL AND record_key IN ({marks})",
                    (sink, kind, *chunk),
                ):
                    found.setdefault(key, {})[sink] = remote_id
        return found

    def queue_alerts(self, alerts: Iterable, at: datetime,
                     mark: tuple[str, dict] | None = None) -> int:
        """Queue alerts (transforms.alerts.Alert); one already queued or sent
        stays as it is. The rule's mark moves in the same transaction.
        Returns how many were new."""
        with self.transaction() as db:
            added = self._insert_alerts(db, alerts, at)
            if mark:
                self._save_rule_mark(db, *mark)
        return added

    def _insert_alerts(self, db: sqlite3.Connection, alerts: Iterable, at: datetime) -> int:
        return sum(db.execute(
            "INSERT OR IGNORE INTO alerts (alert_id, rule, channel, event_kind, event_key,"
            " title, message, created_at, send_after) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (alert.alert_id, alert.rule, alert.channel, alert.event_kind, alert.event_key,
             alert.title, alert.message, _time(at), _time(alert.send_after)),
        ).rowcount for alert in alerts)

    def due_alerts(self, at: datetime) -> list[sqlite3.Row]:
        return self.db.execute(
            "SELECT * FROM alerts WHERE state = 'pending' AND send_after <= ?"
            " ORDER BY created_at, rowid", (_time(at),)).fetchall()

    def _update_alerts(self, db: sqlite3.Connection, alert_ids: Iterable[str], sql: str,
                       params: tuple) -> list[sqlite3.Row]:
        """Run `sql` (an UPDATE ... WHERE alert_id IN ({marks}) RETURNING ...)
        over the ids in chunks; the rows it returns."""
        alert_ids = list(alert_ids)
        rows: list[sqlite3.Row] = []
        for start in range(0, len(alert_ids), 500):
            chunk = alert_ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows += db.execute(sql.format(marks=marks), (*params, *chunk)).fetchall()
        return rows

    def claim_alerts(self, alert_ids: Iterable[str], at: datetime) -> set[str]:
        """Mark alerts `sending`, in their own transaction, before they go out.
        Returns the ones this run took (another run may have taken some)."""
        with self.transaction() as db:
            rows = self._update_alerts(
                db, alert_ids, "UPDATE alerts SET state = 'sending', claimed_at = ?"
                " WHERE state = 'pending' AND alert_id IN ({marks}) RETURNING alert_id",
                (_time(at),))
        return {row[0] for row in rows}

    def release_alerts(self, alert_ids: Iterable[str]) -> None:
        """Claimed alerts this run does not send after all: pending again."""
        with self.transaction() as db:
            self._update_alerts(
                db, alert_ids, "UPDATE alerts SET state = 'pending', claimed_at = NULL"
                " WHERE state = 'sending' AND alert_id IN ({marks}) RETURNING alert_id", ())

    def mark_alerts_sent(self, alert_ids: Iterable[str], at: datetime) -> None:
        with self.transaction() as db:
            self._update_alerts(
                db, alert_ids, "UPDATE alerts SET state = 'sent', sent_at = ?,"
                " attempts = attempts + 1, last_error = '' WHERE alert_id IN ({marks})"
                " RETURNING alert_id", (_time(at),))

    def record_failed_send(self, alert_ids: Iterable[str], error: str, retry_at: datetime,
                           max_attempts: int) -> list[sqlite3.Row]:
        """One more failed attempt: the alerts wait until `retry_at`, or, at
        `max_attempts`, are given up (`failed`, kept with the error for status
        and the digest). Returns the ones given up."""
        with self.transaction() as db:
            rows = self._update_alerts(
                db, alert_ids, "UPDATE alerts SET attempts = attempts + 1, last_error = ?,"
                " claimed_at = NULL, send_after = ?, state = CASE WHEN attempts + 1 >= ?"
                " THEN 'failed' ELSE 'pending' END WHERE state = 'sending'"
                " AND alert_id IN ({marks}) RETURNING *",
                (error, _time(retry_at), max_attempts))
        return [row for row in rows if row["state"] == "failed"]

    def give_up_alerts(self, alert_ids: Iterable[str], error: str) -> None:
        with self.transaction() as db:
            self._update_alerts(
                db, alert_ids, "UPDATE alerts SET state = 'failed', last_error = ?"
                " WHERE state IN ('pending', 'sending') AND alert_id IN ({marks})"
                " RETURNING alert_id", (error,))

    def abandon_unconfirmed(self, claimed_before: datetime, error: str) -> list[sqlite3.Row]:
        """Alerts a run marked `sending` and never recorded (it crashed or was
        killed mid-send). They may have arrived, so they are not sent again:
        they become `failed` with `error` saying so."""
        with self.transaction() as db:
            return db.execute(
                "UPDATE alerts SET state = 'failed', last_error = ? WHERE state = 'sending'"
                " AND claimed_at < ? RETURNING *", (error, _time(claimed_before))).fetchall()

    def cancel_done_reminders(self) -> int:
        """Reminders still waiting (quiet hours, a retry) for tasks people have
        done since: they are not sent."""
        with self.transaction() as db:
            return db.execute(
                "UPDATE alerts SET state = 'cancelled' WHERE state = 'pending'"
                " AND event_kind = 'task_due' AND substr(event_key, 1, instr(event_key, '@') - 1)"
                " IN (SELECT task_id FROM tasks WHERE done = 1)").rowcount

    def alert_counts(self) -> dict[str, int]:
        return {row[0]: row[1] for row in self.db.execute(
            "SELECT state, COUNT(*) FROM alerts GROUP BY state")}

    def alert_problems(self, limit: int = 20) -> list[sqlite3.Row]:
        """Alerts given up, newest first: rule, channel, event, attempts, error."""
        return self.db.execute(
            "SELECT rule, channel, event_kind, event_key, attempts, last_error, created_at"
            " FROM alerts WHERE state = 'failed' ORDER BY created_at DESC, alert_id LIMIT ?",
            (limit,)).fetchall()

    def failed_alerts_since(self, since: datetime) -> int:
        return self.db.execute(
            "SELECT COUNT(*) FROM alerts WHERE state = 'failed' AND created_at >= ?",
            (_time(since),)).fetchone()[0]

    def add_tasks(self, tasks: Iterable, at: datetime, scope: str, fired: Iterable[str] = (),
                  mark: dict | None = None) -> int:
        """Create follow-up tasks (transforms.alerts.Task); a task already there
        is left alone, its id coming from the rule and the trigger. The
        triggers acted on (`fired`) and the rule's mark are kept in the same
        transaction. Returns how many tasks were new."""
        stamp = _time(at)
        added = 0
        with self.transaction() as db:
            for task in tasks:
                added += db.execute(
                    "INSERT OR IGNORE INTO tasks (task_id, rule, contact_key, lead_id, title,"
                    " details, due_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (task.task_id, task.rule, task.contact_key, task.lead_id, task.title,
                     task.details, _time(task.due_at), stamp),
                ).rowcount
            db.executemany("INSERT OR IGNORE INTO event_marks VALUES (?, ?, ?)",
                           ((scope, key, stamp) for key in fired))
            if mark:
                self._save_rule_mark(db, scope, mark)
        return added

    def marked_events(self, scope: str) -> set[str]:
        return {row[0] for row in self.db.execute(
            "SELECT event_key FROM event_marks WHERE rule = ?", (scope,))}

    def leads_at_stages(self, stages: Iterable[str]) -> list[dict]:
        stages = list(stages)
        marks = ",".join("?" * len(stages))
        return list(self.iter_rows(
            "SELECT l.lead_id, l.contact_key, l.stage, l.source, l.name, l.phone, l.email,"
            " l.company, COALESCE(c.phone_display, '') AS phone_display FROM leads l"
            " LEFT JOIN contacts c ON c.contact_key = l.contact_key"
            f" WHERE l.stage IN ({marks}) ORDER BY l.rowid", tuple(stages)))

    def orders_with_statuses(self, statuses: Iterable[str]) -> list[dict]:
        statuses = list(statuses)
        marks = ",".join("?" * len(statuses))
        return list(self.iter_rows(
            "SELECT o.order_id, o.contact_key, o.status, COALESCE(c.name, '') AS name,"
            " COALESCE(c.phone, '') AS phone, COALESCE(c.phone_display, '') AS phone_display,"
            " COALESCE(c.email, '') AS email, COALESCE(c.company, '') AS company"
            " FROM orders o LEFT JOIN contacts c ON c.contact_key = o.contact_key"
            f" WHERE o.status IN ({marks}) ORDER BY o.ordered_at, o.order_id", tuple(statuses)))

    def silent_clients(self, last_contact_before: datetime) -> list[dict]:
        """Contacts with orders whose last lead or order is older than the given time."""
        return list(self.iter_rows(
            "SELECT * FROM (SELECT c.contact_key, c.name, c.phone, c.phone_display, c.email,"
            " c.company, MAX(o.last_order, COALESCE(l.last_lead, '')) AS last_contact"
            " FROM contacts c JOIN (SELECT contact_key, MAX(ordered_at) AS last_order"
            " FROM orders GROUP BY contact_key) o ON o.contact_key = c.contact_key"
            " LEFT JOIN (SELECT contact_key, MAX(received_at) AS last_lead FROM leads"
            " GROUP BY contact_key) l ON l.contact_key = c.contact_key"
            " WHERE c.merged_into IS NULL) WHERE last_contact < ? ORDER BY contact_key",
            (_time(last_contact_before),)))

    _TASK_PERSON = (
        "SELECT t.*, COALESCE(c.name, '') AS name, COALESCE(c.phone, '') AS phone,"
        " COALESCE(c.phone_display, '') AS phone_display, COALESCE(c.email, '') AS email,"
        " COALESCE(c.company, '') AS company FROM tasks t"
        " LEFT JOIN contacts c ON c.contact_key = t.contact_key"
    )

    def tasks_to_remind(self, at: datetime) -> list[dict]:
        """Tasks not done, due by `at`, not yet reminded of for this due time."""
        return list(self.iter_rows(
            self._TASK_PERSON + " WHERE t.done = 0 AND t.due_at <= ? AND"
            " (t.reminded_due_at IS NULL OR t.reminded_due_at <> t.due_at)"
            " ORDER BY t.due_at, t.task_id", (_time(at),)))

    def queue_reminders(self, alerts: Iterable, reminded: dict[str, str], at: datetime) -> int:
        """Queue reminder alerts and note, in the same transaction, the due
        time each task was reminded of (task id -> due_at as stored)."""
        with self.transaction() as db:
            added = self._insert_alerts(db, alerts, at)
            db.executemany("UPDATE tasks SET reminded_due_at = ? WHERE task_id = ?",
                           ((due, task) for task, due in reminded.items()))
        return added

    def overdue_tasks(self, at: datetime) -> list[dict]:
        return list(self.iter_rows(
            self._TASK_PERSON + " WHERE t.done = 0 AND t.due_at < ? ORDER BY t.due_at,"
            " t.task_id", (_time(at),)))

    def task_rows(self) -> Iterator[dict]:
        """Tasks as the sinks' Tasks table takes them (`contact` is the contact
        key, followed to the surviving contact after a merge)."""
        return self.iter_rows(
            "SELECT t.task_id, t.title, COALESCE(c.merged_into, t.contact_key) AS contact,"
            " t.due_at, t.rule, t.details, t.lead_id, t.done FROM tasks t"
            " LEFT JOIN contacts c ON c.contact_key = t.contact_key"
            " ORDER BY t.created_at, t.task_id")

    def save_task_done(self, done: dict[str, bool | None]) -> int:
        """`done` as people set it in a sink's Tasks table (task id -> checked)."""
        with self.transaction() as db:
            return sum(db.execute("UPDATE tasks SET done = ? WHERE task_id = ?",
                                  (int(bool(value)), task)).rowcount
                       for task, value in done.items())

    def leads_by_category(self, start: datetime, end: datetime) -> dict[str, int]:
        return {row[0]: row[1] for row in self.db.execute(
            "SELECT source, COUNT(*) FROM leads WHERE received_at >= ? AND received_at < ?"
            " GROUP BY source", (_time(start), _time(end)))}

    def first_orders_between(self, start: datetime, end: datetime,
                             excluding: Iterable[str] = ()) -> list[dict]:
        """Contacts whose first order (not one of the `excluding` statuses) falls in range."""
        excluded = list(excluding)
        marks = ",".join("?" * len(excluded))
        return list(self.iter_rows(
            "SELECT f.contact_key, f.first_order, COALESCE(c.name, '') AS name,"
            " COALESCE(c.phone_display, c.phone, '') AS phone, COALESCE(c.email, '') AS email"
            " FROM (SELECT contact_key, MIN(ordered_at) AS first_order FROM orders"
            f" WHERE status NOT IN ({marks}) GROUP BY contact_key) f"
            " LEFT JOIN contacts c ON c.contact_key = f.contact_key"
            " WHERE f.first_order >= ? AND f.first_order < ? ORDER BY f.first_order",
            (*excluded, _time(start), _time(end))))

    def quarantined_between(self, start: datetime, end: datetime) -> int:
        return self.db.execute(
            "SELECT COUNT(*) FROM raw_items WHERE state = 'quarantined' AND processed_at >= ?"
            " AND processed_at < ?", (_time(start), _time(end))).fetchone()[0]

    def sink_error_counts(self) -> dict[str, int]:
        return {row[0]: row[1] for row in self.db.execute(
            "SELECT sink, COUNT(*) FROM sink_errors GROUP BY sink")}

    # --- runs ----------------------------------------------------------------

    def start_run(self, command: str) -> int:
        with self.transaction() as db:
            return db.execute(
                "INSERT INTO runs (command, started_at) VALUES (?, ?)", (command, now())
            ).lastrowid

    def finish_run(self, run_id: int, stats: dict) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE runs SET finished_at = ?, stats = ? WHERE run_id = ?",
                (now(), json.dumps(stats, ensure_ascii=False), run_id),
            )

    def last_runs(self, limit: int = 5) -> list[sqlite3.Row]:
        return self.db.execute(
            "SELECT * FROM runs ORDER BY run_id DESC LIMIT ?", (limit,)
        ).fetchall()


def _contact_from_row(row: sqlite3.Row) -> Contact:
    values = {name: row[name] for name in _CONTACT_COLUMNS}
    values["first_seen"] = _parse_time(values["first_seen"])
    values["last_seen"] = _parse_time(values["last_seen"])
    return Contact(**values)
