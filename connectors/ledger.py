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
