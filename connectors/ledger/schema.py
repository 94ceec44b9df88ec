"""The store's one schema, for SQLite and PostgreSQL alike: what the queries
use. The Alembic revisions in migrations/versions/ build exactly this (a test
compares them), and upgrade a store from any earlier version in place.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

from connectors.ledger.database import Moment, Money

metadata = MetaData()

ITEM_STATES = ("new", "processed", "skipped", "quarantined")


def _text(name: str, **options) -> Column:
    """A text column people see; empty rather than NULL."""
    return Column(name, Text, nullable=False, server_default="", **options)


raw_items = Table(
    "raw_items", metadata,
    Column("item_id", String, primary_key=True),
    Column("source", String, nullable=False),
    Column("kind", String, nullable=False),
    Column("received_at", Moment, nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("content_hash", String, nullable=False),
    Column("meta", Text, nullable=False, server_default="{}"),
    Column("state", String, nullable=False, server_default="new"),
    _text("reason"),
    Column("lead_id", String),
    Column("ingested_at", Moment, nullable=False),
    Column("processed_at", Moment),
    # a worker that took the item to process it, and when (a lease: an item
    # claimed by a worker that died is taken again after a while)
    Column("claimed_by", String),
    Column("claimed_at", Moment),
    # the order items were stored in (a file's rows in the file's order), so
    # that a claim takes a file's rows in that order whatever the batch size;
    # 0 for items stored before it was kept
    Column("arrival", BigInteger, nullable=False, server_default="0"),
    CheckConstraint("state IN ('new', 'processed', 'skipped', 'quarantined')",
                    name="raw_items_state_known"),
)
# a claim takes the oldest in (received_at, arrival, item_id) order from the index
Index("raw_items_state", raw_items.c.state, raw_items.c.received_at, raw_items.c.arrival,
      raw_items.c.item_id)
# the next arrival number is the largest one + 1
Index("raw_items_arrival", raw_items.c.arrival)
Index("raw_items_content", raw_items.c.source, raw_items.c.content_hash,
      raw_items.c.received_at)

checkpoints = Table(
    "checkpoints", metadata,
    Column("source", String, primary_key=True),
    Column("scope", String, primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", Moment, nullable=False),
)

source_status = Table(
    "source_status", metadata,
    Column("source", String, primary_key=True),
    Column("scope", String, primary_key=True),
    Column("last_success_at", Moment),
    Column("last_message_at", Moment),
    _text("last_error"),
    Column("last_error_at", Moment),
    Column("failing_since", Moment),
)

contacts = Table(
    "contacts", metadata,
    # a stable id of its own (contacts from before 0002 keep their phone or
    # email as their id, so rows already in a CRM keep their key)
    Column("contact_key", String, primary_key=True),
    _text("name"),
    _text("phone"),
    _text("phone_display"),
    _text("email"),
    _text("company"),
    _text("legal_form"),
    _text("position"),
    _text("city"),
    _text("source"),
    Column("first_seen", Moment),
    Column("last_seen", Moment),
    Column("leads_count", Integer, nullable=False, server_default="0"),
    _text("segment"),
    Column("merged_into", String),
    Column("updated_at", Moment, nullable=False),
    # the names it was written under, newest first (JSON list)
    Column("names", Text, nullable=False, server_default="[]"),
    # "" for LeadHub's own; "sink:airtable:recXXX" for a row a person typed
    _text("origin"),
    # the fields a person corrected in the CRM, and their values (JSON): these
    # win over what leads say, in the store and every report
    Column("corrected", Text, nullable=False, server_default="{}"),
    # people's own fields, read back from the CRM that is the record
    _text("status"),
    _text("owner"),
    _text("notes"),
)
Index("contacts_first_seen", contacts.c.first_seen, contacts.c.contact_key)
Index("contacts_merged_into", contacts.c.merged_into)

# A phone (E.164, `;ext=` for an extension) or email (canonical) of a contact.
# One identity may belong to several contacts: an office line, a family mailbox.
identities = Table(
    "identities", metadata,
    Column("contact_key", String, primary_key=True),
    Column("kind", String, primary_key=True),
    Column("value", String, primary_key=True),
    _text("written"),  # as it was given: the address as typed, the phone display
    Column("first_seen", Moment),
    Column("last_seen", Moment),
    _text("seen_in"),  # the lead (or CRM row) it came from first
    # false: history (a phone a person replaced in the CRM)
    Column("active", Boolean(create_constraint=False), nullable=False, server_default="1"),
)
Index("identities_value", identities.c.kind, identities.c.value)

# Identities known to be used by several people: they weigh less as evidence.
shared_identities = Table(
    "shared_identities", metadata,
    Column("kind", String, primary_key=True),
    Column("value", String, primary_key=True),
    _text("reason"),
    Column("marked_at", Moment, nullable=False),
)

# Blocking keys of a contact (its names, its phone line without extension):
# what puts a lead beside the contacts it may belong to without an identity in
# common (transforms.dedupe.block_keys_of).
block_keys = Table(
    "block_keys", metadata,
    Column("key", String, primary_key=True),
    Column("contact_key", String, primary_key=True),
)
Index("block_keys_contact", block_keys.c.contact_key)

# Every merge, so that it can be undone (`leadhub contacts split`).
contact_merges = Table(
    "contact_merges", metadata,
    Column("merge_id", Integer, primary_key=True, autoincrement=True),
    Column("survivor", String, nullable=False),
    Column("loser", String, nullable=False),
    _text("reason"),
    Column("score", Float),
    Column("decided_by", String, nullable=False),  # rule | person | rescan
    Column("merged_at", Moment, nullable=False),
    Column("undone_at", Moment),
)
Index("contact_merges_survivor", contact_merges.c.survivor)
Index("contact_merges_loser", contact_merges.c.loser)

# Possible duplicates for people to decide, and their decisions (same /
# different), which are never asked again. contact_a < contact_b.
duplicate_pairs = Table(
    "duplicate_pairs", metadata,
    Column("contact_a", String, primary_key=True),
    Column("contact_b", String, primary_key=True),
    Column("score", Float, nullable=False),
    Column("reasons", Text, nullable=False, server_default="[]"),
    # open | same | different | merged (merged by a rule after all) | gone
    Column("state", String, nullable=False, server_default="open"),
    _text("decided_by"),
    Column("decided_at", Moment),
    Column("found_at", Moment, nullable=False),
    Column("updated_at", Moment, nullable=False),
)
Index("duplicate_pairs_state", duplicate_pairs.c.state)
Index("duplicate_pairs_b", duplicate_pairs.c.contact_b)

leads = Table(
    "leads", metadata,
    Column("lead_id", String, primary_key=True),
    # the order leads were stored in; only grows (assigned under the write lock)
    Column("seq", Integer, nullable=False),
    Column("contact_key", String, nullable=False),
    # the contact the lead was first attached to: a split sends it back there
    Column("first_contact_key", String, nullable=False, server_default=""),
    _text("match_reason"),
    Column("raw_item_id", String, nullable=False),
    Column("received_at", Moment, nullable=False),
    Column("channel", String, nullable=False),
    Column("source", String, nullable=False),
    Column("source_matched", Boolean(create_constraint=False), nullable=False),
    Column("raw_source", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("phone", Text, nullable=False),
    _text("phone_extension"),
    _text("phone_display"),
    Column("phone_valid", Boolean(create_constraint=False), nullable=False, server_default="0"),
    Column("email", Text, nullable=False),
    Column("company", Text, nullable=False),
    _text("legal_form"),
    _text("position"),
    _text("city"),
    Column("subject", Text, nullable=False),
    Column("message", Text, nullable=False),
    _text("stage"),
    Column("warnings", Text, nullable=False, server_default="[]"),
    _text("fingerprint"),
    _text("origin"),
    _text("owner"),
    _text("notes"),
    Column("amount", Money),
    _text("loss_reason"),
)
Index("leads_contact", leads.c.contact_key)
Index("leads_first_contact", leads.c.first_contact_key)
Index("leads_received", leads.c.received_at, leads.c.lead_id)
Index("leads_seq", leads.c.seq, unique=True)

sink_state = Table(
    "sink_state", metadata,
    Column("sink", String, primary_key=True),
    Column("record_kind", String, primary_key=True),
    Column("record_key", String, primary_key=True),
    Column("content_hash", String, nullable=False),
    Column("remote_id", String),
    Column("synced_at", Moment, nullable=False),
    Column("written", Text, nullable=False, server_default="{}"),
    Column("edited", Text, nullable=False, server_default="[]"),
    Column("people", Text, nullable=False, server_default="{}"),
)
Index("sink_state_remote", sink_state.c.sink, sink_state.c.record_kind, sink_state.c.remote_id)

sink_errors = Table(
    "sink_errors", metadata,
    Column("sink", String, primary_key=True),
    Column("record_kind", String, primary_key=True),
    Column("record_key", String, primary_key=True),
    Column("content_hash", String, nullable=False),
    Column("error", Text, nullable=False),
    Column("failed_at", Moment, nullable=False),
)

runs = Table(
    "runs", metadata,
    Column("run_id", Integer, primary_key=True, autoincrement=True),
    Column("command", String, nullable=False),
    Column("started_at", Moment, nullable=False),
    Column("finished_at", Moment),
    Column("stats", Text, nullable=False, server_default="{}"),
)

orders = Table(
    "orders", metadata,
    Column("order_id", String, primary_key=True),
    Column("contact_key", String, nullable=False),
    Column("ordered_at", Moment, nullable=False),
    _text("status"),
    _text("comment"),
    Column("updated_at", Moment, nullable=False),
)
Index("orders_contact", orders.c.contact_key)
Index("orders_ordered", orders.c.ordered_at, orders.c.order_id)

order_items = Table(
    "order_items", metadata,
    Column("order_id", String, primary_key=True),
    Column("line", Integer, primary_key=True),
    Column("product", Text, nullable=False),
    Column("price", Money, nullable=False),
    Column("cost", Money, nullable=False, server_default="0"),
    Column("quantity", Money, nullable=False),
    Column("updated_at", Moment, nullable=False),
)

ALERT_STATES = ("pending", "sending", "sent", "failed", "cancelled")

alerts = Table(
    "alerts", metadata,
    # the order alerts were queued in (a combined message lists them so)
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("alert_id", String, nullable=False),
    Column("rule", String, nullable=False),
    Column("channel", String, nullable=False),
    Column("event_kind", String, nullable=False),
    Column("event_key", String, nullable=False),
    _text("title"),
    Column("message", Text, nullable=False),
    Column("state", String, nullable=False, server_default="pending"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    _text("last_error"),
    Column("created_at", Moment, nullable=False),
    Column("send_after", Moment, nullable=False),
    Column("claimed_at", Moment),
    Column("sent_at", Moment),
    # the first failed attempt since the alert last went out or was replayed:
    # retries go on for delivery.retry_for_hours from here
    Column("failing_since", Moment),
    # why a `failed` alert was given up: retries (its retry window passed),
    # no_channel (the channel left the config), unconfirmed (a crash mid-send)
    Column("given_up", String, nullable=False, server_default=""),
    CheckConstraint("state IN ('pending', 'sending', 'sent', 'failed', 'cancelled')",
                    name="alerts_state_known"),
)
Index("alerts_due", alerts.c.state, alerts.c.send_after)
Index("alerts_alert_id", alerts.c.alert_id, unique=True)

tasks = Table(
    "tasks", metadata,
    Column("task_id", String, primary_key=True),
    Column("rule", String, nullable=False),
    Column("contact_key", String, nullable=False, server_default=""),
    Column("lead_id", String),
    Column("title", Text, nullable=False),
    _text("details"),
    Column("due_at", Moment, nullable=False),
    Column("done", Boolean(create_constraint=False), nullable=False, server_default="0"),
    Column("created_at", Moment, nullable=False),
    Column("reminded_due_at", Moment),
    _text("origin"),
    _text("owner"),
    _text("notes"),
)
Index("tasks_due", tasks.c.done, tasks.c.due_at)

# Every change of a lead's stage LeadHub saw: its own (the first stage) and
# people's in the CRM, with when.
lead_stages = Table(
    "lead_stages", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("lead_id", String, nullable=False),
    Column("stage", Text, nullable=False),
    _text("reason"),
    Column("changed_at", Moment, nullable=False),
    # leadhub | sink:NAME (a person in that CRM)
    Column("changed_by", String, nullable=False),
)
Index("lead_stages_lead", lead_stages.c.lead_id, lead_stages.c.changed_at)

event_marks = Table(
    "event_marks", metadata,
    Column("rule", String, primary_key=True),
    Column("event_key", String, primary_key=True),
    Column("marked_at", Moment, nullable=False),
)
