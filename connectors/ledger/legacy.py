"""Stores from before the Alembic migrations (LeadHub 0.1): their numbered
SQL scripts, and the one-off step that turns such a store (SQLite only; there
was no PostgreSQL then) into the first Alembic revision.

The scripts are kept as they shipped: a store at any old version is first
brought to the last of them, then converted.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

# The schema versions of LeadHub 0.1; the index + 1 is the version.
SCRIPTS: list[str] = [
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


def version_of(connection: Connection) -> int | None:
    """The 0.1 schema version of the store on this connection, or None when
    it is not a 0.1 store."""
    if not connection.dialect.has_table(connection, "schema_version"):
        return None
    return connection.execute(text("SELECT MAX(version) FROM schema_version")).scalar() or 0


def finish_old_scripts(connection: Connection, version: int) -> None:
    """Run the 0.1 scripts the store has not had yet."""
    for script in SCRIPTS[version:]:
        for statement in script.split(";"):
            if statement.strip():
                connection.exec_driver_sql(statement)
    connection.exec_driver_sql("DROP TABLE schema_version")
