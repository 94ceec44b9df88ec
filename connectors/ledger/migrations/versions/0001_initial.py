"""The first store schema under Alembic: stable contact ids with identities
(several per contact, shared ones marked), name blocking keys, the merge log
and the possible-duplicates queue; leads in a stored order (seq) with the
contact they were first attached to; exact money; claimable raw items.

A new store gets these tables. A store of LeadHub 0.1 (SQLite, numbered SQL
scripts) is brought to its last script and converted in place: its contacts
keep their keys (their phone or email), so CRM rows already synced keep
theirs; each old identity becomes an identity of its contact; every lead keeps
its position for the alert rules.

Revision ID: 0001
Revises:
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

from connectors.ledger import legacy
from connectors.ledger.database import Moment, Money

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

tables = sa.MetaData()


def _text(name: str) -> sa.Column:
    return sa.Column(name, sa.Text, nullable=False, server_default="")


_flag = sa.Boolean(create_constraint=False)

raw_items = sa.Table(
    "raw_items", tables,
    sa.Column("item_id", sa.String, primary_key=True),
    sa.Column("source", sa.String, nullable=False),
    sa.Column("kind", sa.String, nullable=False),
    sa.Column("received_at", Moment, nullable=False),
    sa.Column("payload", sa.LargeBinary, nullable=False),
    sa.Column("content_hash", sa.String, nullable=False),
    sa.Column("meta", sa.Text, nullable=False, server_default="{}"),
    sa.Column("state", sa.String, nullable=False, server_default="new"),
    _text("reason"),
    sa.Column("lead_id", sa.String),
    sa.Column("ingested_at", Moment, nullable=False),
    sa.Column("processed_at", Moment),
    sa.Column("claimed_by", sa.String),
    sa.Column("claimed_at", Moment),
    sa.CheckConstraint("state IN ('new', 'processed', 'skipped', 'quarantined')",
                       name="raw_items_state_known"),
)
sa.Index("raw_items_state", raw_items.c.state, raw_items.c.received_at)
sa.Index("raw_items_content", raw_items.c.source, raw_items.c.content_hash,
         raw_items.c.received_at)

checkpoints = sa.Table(
    "checkpoints", tables,
    sa.Column("source", sa.String, primary_key=True),
    sa.Column("scope", sa.String, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("updated_at", Moment, nullable=False),
)

source_status = sa.Table(
    "source_status", tables,
    sa.Column("source", sa.String, primary_key=True),
    sa.Column("scope", sa.String, primary_key=True),
    sa.Column("last_success_at", Moment),
    sa.Column("last_message_at", Moment),
    _text("last_error"),
    sa.Column("last_error_at", Moment),
    sa.Column("failing_since", Moment),
)

contacts = sa.Table(
    "contacts", tables,
    sa.Column("contact_key", sa.String, primary_key=True),
    _text("name"), _text("phone"), _text("phone_display"), _text("email"), _text("company"),
    _text("legal_form"), _text("position"), _text("city"), _text("source"),
    sa.Column("first_seen", Moment),
    sa.Column("last_seen", Moment),
    sa.Column("leads_count", sa.Integer, nullable=False, server_default="0"),
    _text("segment"),
    sa.Column("merged_into", sa.String),
    sa.Column("updated_at", Moment, nullable=False),
    sa.Column("names", sa.Text, nullable=False, server_default="[]"),
)
sa.Index("contacts_first_seen", contacts.c.first_seen, contacts.c.contact_key)
sa.Index("contacts_merged_into", contacts.c.merged_into)

identities = sa.Table(
    "identities", tables,
    sa.Column("contact_key", sa.String, primary_key=True),
    sa.Column("kind", sa.String, primary_key=True),
    sa.Column("value", sa.String, primary_key=True),
    _text("written"),
    sa.Column("first_seen", Moment),
    sa.Column("last_seen", Moment),
    _text("seen_in"),
    sa.Column("active", _flag, nullable=False, server_default="1"),
)
sa.Index("identities_value", identities.c.kind, identities.c.value)

shared_identities = sa.Table(
    "shared_identities", tables,
    sa.Column("kind", sa.String, primary_key=True),
    sa.Column("value", sa.String, primary_key=True),
    _text("reason"),
    sa.Column("marked_at", Moment, nullable=False),
)

block_keys = sa.Table(
    "block_keys", tables,
    sa.Column("key", sa.String, primary_key=True),
    sa.Column("contact_key", sa.String, primary_key=True),
)
sa.Index("block_keys_contact", block_keys.c.contact_key)

contact_merges = sa.Table(
    "contact_merges", tables,
    sa.Column("merge_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("survivor", sa.String, nullable=False),
    sa.Column("loser", sa.String, nullable=False),
    _text("reason"),
    sa.Column("score", sa.Float),
    sa.Column("decided_by", sa.String, nullable=False),
    sa.Column("merged_at", Moment, nullable=False),
    sa.Column("undone_at", Moment),
)
sa.Index("contact_merges_survivor", contact_merges.c.survivor)
sa.Index("contact_merges_loser", contact_merges.c.loser)

duplicate_pairs = sa.Table(
    "duplicate_pairs", tables,
    sa.Column("contact_a", sa.String, primary_key=True),
    sa.Column("contact_b", sa.String, primary_key=True),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("reasons", sa.Text, nullable=False, server_default="[]"),
    sa.Column("state", sa.String, nullable=False, server_default="open"),
    _text("decided_by"),
    sa.Column("decided_at", Moment),
    sa.Column("found_at", Moment, nullable=False),
    sa.Column("updated_at", Moment, nullable=False),
)
sa.Index("duplicate_pairs_state", duplicate_pairs.c.state)
sa.Index("duplicate_pairs_b", duplicate_pairs.c.contact_b)

leads = sa.Table(
    "leads", tables,
    sa.Column("lead_id", sa.String, primary_key=True),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("contact_key", sa.String, nullable=False),
    sa.Column("first_contact_key", sa.String, nullable=False, server_default=""),
    _text("match_reason"),
    sa.Column("raw_item_id", sa.String, nullable=False),
    sa.Column("received_at", Moment, nullable=False),
    sa.Column("channel", sa.String, nullable=False),
    sa.Column("source", sa.String, nullable=False),
    sa.Column("source_matched", _flag, nullable=False),
    sa.Column("raw_source", sa.Text, nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("phone", sa.Text, nullable=False),
    _text("phone_extension"),
    _text("phone_display"),
    sa.Column("phone_valid", _flag, nullable=False, server_default="0"),
    sa.Column("email", sa.Text, nullable=False),
    sa.Column("company", sa.Text, nullable=False),
    _text("legal_form"),
    _text("position"),
    _text("city"),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    _text("stage"),
    sa.Column("warnings", sa.Text, nullable=False, server_default="[]"),
    _text("fingerprint"),
)
sa.Index("leads_contact", leads.c.contact_key)
sa.Index("leads_first_contact", leads.c.first_contact_key)
sa.Index("leads_received", leads.c.received_at, leads.c.lead_id)
sa.Index("leads_seq", leads.c.seq, unique=True)

sink_state = sa.Table(
    "sink_state", tables,
    sa.Column("sink", sa.String, primary_key=True),
    sa.Column("record_kind", sa.String, primary_key=True),
    sa.Column("record_key", sa.String, primary_key=True),
    sa.Column("content_hash", sa.String, nullable=False),
    sa.Column("remote_id", sa.String),
    sa.Column("synced_at", Moment, nullable=False),
    sa.Column("written", sa.Text, nullable=False, server_default="{}"),
    sa.Column("edited", sa.Text, nullable=False, server_default="[]"),
    sa.Column("people", sa.Text, nullable=False, server_default="{}"),
)
sa.Index("sink_state_remote", sink_state.c.sink, sink_state.c.record_kind,
         sink_state.c.remote_id)

sink_errors = sa.Table(
    "sink_errors", tables,
    sa.Column("sink", sa.String, primary_key=True),
    sa.Column("record_kind", sa.String, primary_key=True),
    sa.Column("record_key", sa.String, primary_key=True),
    sa.Column("content_hash", sa.String, nullable=False),
    sa.Column("error", sa.Text, nullable=False),
    sa.Column("failed_at", Moment, nullable=False),
)

runs = sa.Table(
    "runs", tables,
    sa.Column("run_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("command", sa.String, nullable=False),
    sa.Column("started_at", Moment, nullable=False),
    sa.Column("finished_at", Moment),
    sa.Column("stats", sa.Text, nullable=False, server_default="{}"),
)

orders = sa.Table(
    "orders", tables,
    sa.Column("order_id", sa.String, primary_key=True),
    sa.Column("contact_key", sa.String, nullable=False),
    sa.Column("ordered_at", Moment, nullable=False),
    _text("status"),
    _text("comment"),
    sa.Column("updated_at", Moment, nullable=False),
)
sa.Index("orders_contact", orders.c.contact_key)
sa.Index("orders_ordered", orders.c.ordered_at, orders.c.order_id)

order_items = sa.Table(
    "order_items", tables,
    sa.Column("order_id", sa.String, primary_key=True),
    sa.Column("line", sa.Integer, primary_key=True),
    sa.Column("product", sa.Text, nullable=False),
    sa.Column("price", Money, nullable=False),
    sa.Column("cost", Money, nullable=False, server_default="0"),
    sa.Column("quantity", Money, nullable=False),
    sa.Column("updated_at", Moment, nullable=False),
)

alerts = sa.Table(
    "alerts", tables,
    # the order alerts were queued in (a combined message lists them so)
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("alert_id", sa.String, nullable=False),
    sa.Column("rule", sa.String, nullable=False),
    sa.Column("channel", sa.String, nullable=False),
    sa.Column("event_kind", sa.String, nullable=False),
    sa.Column("event_key", sa.String, nullable=False),
    _text("title"),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("state", sa.String, nullable=False, server_default="pending"),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    _text("last_error"),
    sa.Column("created_at", Moment, nullable=False),
    sa.Column("send_after", Moment, nullable=False),
    sa.Column("claimed_at", Moment),
    sa.Column("sent_at", Moment),
    sa.CheckConstraint("state IN ('pending', 'sending', 'sent', 'failed', 'cancelled')",
                       name="alerts_state_known"),
)
sa.Index("alerts_due", alerts.c.state, alerts.c.send_after)
sa.Index("alerts_alert_id", alerts.c.alert_id, unique=True)

tasks = sa.Table(
    "tasks", tables,
    sa.Column("task_id", sa.String, primary_key=True),
    sa.Column("rule", sa.String, nullable=False),
    sa.Column("contact_key", sa.String, nullable=False, server_default=""),
    sa.Column("lead_id", sa.String),
    sa.Column("title", sa.Text, nullable=False),
    _text("details"),
    sa.Column("due_at", Moment, nullable=False),
    sa.Column("done", _flag, nullable=False, server_default="0"),
    sa.Column("created_at", Moment, nullable=False),
    sa.Column("reminded_due_at", Moment),
)
sa.Index("tasks_due", tasks.c.done, tasks.c.due_at)

event_marks = sa.Table(
    "event_marks", tables,
    sa.Column("rule", sa.String, primary_key=True),
    sa.Column("event_key", sa.String, primary_key=True),
    sa.Column("marked_at", Moment, nullable=False),
)

# Columns a 0.1 table only lacks (nullable, no default): added in place, so the
# raw items, the bulk of a store, are not copied.
_ADDED = {"raw_items": ("claimed_by", "claimed_at")}
# What a 0.1 store's other changed tables become: each rebuilt table is filled by this
# SELECT over the old one (the columns it did not have take their defaults).
_CONVERTED = {
    "contacts": "SELECT *, CASE WHEN name = '' THEN '[]' ELSE json_array(name) END FROM contacts",
    "leads": "SELECT lead_id, rowid, contact_key, contact_key, '', raw_item_id, received_at,"
             " channel, source, source_matched, raw_source, name, phone, '',"
             " COALESCE((SELECT c.phone_display FROM contacts c WHERE c.phone = leads.phone"
             " AND c.phone <> '' LIMIT 1), ''), phone LIKE '+%', email, company, '', '', '',"
             " subject, message, stage, warnings, '' FROM leads",
    "order_items": "SELECT order_id, line, product, CAST(price AS TEXT), CAST(cost AS TEXT),"
                   " CAST(quantity AS TEXT), updated_at FROM order_items",
    "identities": "SELECT i.contact_key, i.kind, i.value, i.value, c.first_seen, c.last_seen,"
                  " '', 1 FROM contact_identities i JOIN contacts c"
                  " ON c.contact_key = i.contact_key",
    "alerts": "SELECT rowid, * FROM alerts",
    "contact_merges": "SELECT NULL, merged_into, contact_key, 'same phone or email (LeadHub 0.1)',"
                      " NULL, 'rule', updated_at, NULL FROM contacts"
                      " WHERE merged_into IS NOT NULL",
}


def upgrade() -> None:
    connection = op.get_bind()
    version = legacy.version_of(connection)
    if version is None:
        tables.create_all(connection)
        return
    legacy.finish_old_scripts(connection, version)
    for table in tables.sorted_tables:
        _convert(connection, table)
    connection.exec_driver_sql("DROP TABLE contact_identities")


def _convert(connection, table: sa.Table) -> None:
    """Rebuild one table in its new shape from the old one (SQLite keeps a
    column's declared type, so money stored as REAL must be copied into a
    text column, and a new NOT NULL column needs a rebuild)."""
    for name in _ADDED.get(table.name, ()):
        column_type = table.c[name].type.compile(connection.dialect)
        connection.exec_driver_sql(f"ALTER TABLE {table.name} ADD COLUMN {name} {column_type}")
    select = _CONVERTED.get(table.name)
    if select is None:
        if not connection.dialect.has_table(connection, table.name):
            table.create(connection)
        for index in table.indexes:
            index.create(connection, checkfirst=True)
        return
    scratch = table.to_metadata(sa.MetaData(), name=f"{table.name}__new")
    scratch.indexes.clear()
    scratch.create(connection)
    connection.exec_driver_sql(f"INSERT INTO {scratch.name} {select}")
    if connection.dialect.has_table(connection, table.name):
        connection.exec_driver_sql(f"DROP TABLE {table.name}")
    connection.exec_driver_sql(f"ALTER TABLE {scratch.name} RENAME TO {table.name}")
    for index in table.indexes:
        index.create(connection)


def downgrade() -> None:
    raise NotImplementedError("a store is never downgraded; restore a backup instead")
