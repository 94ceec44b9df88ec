"""The sync flow: the ledger's contacts, leads and review items into each
configured sink (Airtable, Google Sheets), and people's work back.

Per table: read what changed in the sink since the last sync (everything the
first time), plan each row with the field-ownership rules of transforms/crm.py,
write only the differences in the sink's largest batches, and keep what landed
in the ledger batch by batch. A crash mid-sync loses nothing and doubles
nothing: writes are upserts on the key (a sheet's rows are found by key before
an append), each batch's values are kept as pending before its request goes
out, and the next run re-reads every row changed since the last finished sync,
so what it finds of a killed run's writes it knows for LeadHub's own.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from connectors import Sink
from connectors.ledger import Ledger
from leadhub.errors import FatalError, TransientError
from leadhub.progress import report
from leadhub.settings import Settings
from transforms.crm import (
    CrmTable,
    RemoteRow,
    RowWrite,
    SyncState,
    contact_values,
    content_hash,
    corrections,
    desired_row,
    duplicate_decision,
    initial_row,
    lead_values,
    pair_key,
    pair_values,
    people_values,
    plan_row,
    review_values,
    same_values,
)
from transforms.crm_rows import crm_item
from transforms.exports import preview
from transforms.identity_rules import IdentityRules

log = logging.getLogger("leadhub.sync")

# Tables LeadHub writes, in link order: leads and tasks link to their contact.
WRITTEN_TABLES = ("contacts", "leads", "needs_review", "tasks", "possible_duplicates")
# Sink and ledger clocks may differ a little; re-reading a few seconds is cheap.
CLOCK_MARGIN = timedelta(seconds=10)


def _airtable(config: Any, settings: Settings) -> Sink:
    from connectors.airtable import AirtableSink
    from connectors.shared_limits import for_this_run

    return AirtableSink(config, config.crm_tables(settings), limits=for_this_run())


def _sheets(config: Any, settings: Settings) -> Sink:
    from connectors.shared_limits import for_this_run
    from connectors.sheets import SheetsSink

    return SheetsSink(config, config.crm_tables(settings), settings.timezone,
                      limits=for_this_run())


# Every sink type, and how to build it: one entry per module.
SINK_BUILDERS: dict[str, Callable[[Any, Settings], Sink]] = {
    "airtable": _airtable,
    "sheets": _sheets,
}




def build_sink(settings: Settings, name: str):
    for config in settings.sinks:
        if config.name == name or config.type == name:
            return SINK_BUILDERS[config.type](config, settings), config
    raise KeyError(name)


def _rows_of(ledger: Ledger, table_name: str) -> Iterable[dict]:
    if table_name == "tasks":
        return ledger.task_rows()
    if table_name == "possible_duplicates":
        return (pair_values(row) for row in ledger.duplicate_pairs(PAIR_STATES_SHOWN))
    shape = {
        "contacts": contact_values,
        "leads": lead_values,
        "needs_review": lambda row: review_values(row, preview(row["payload"])),
    }[table_name]
    return (shape(row) for row in ledger.sink_rows(table_name))


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class SyncRun:
    """One sink's sync: the settings, whether the sink is the record people
    work in (their rows and corrections are read from it) or a mirror, and
    the moment the sync started."""

    settings: Settings
    record: bool
    now: datetime
    # called between write batches: a long sync keeps its lease on the sink
    keep_lease: Callable[[], None] = lambda: None

    @property
    def reads_people(self) -> bool:
        return self.record

    def same(self, table: CrmTable):
        return same_values(table, self.settings.region)


@dataclass
class TableRead:
    """What one table's read found: its rows by key, the rows a person typed,
    keys on several rows, rows people deleted, and when the read started."""

    table: CrmTable
    states: dict[str, SyncState]
    remote: dict[str, RemoteRow] = field(default_factory=dict)
    typed: list[RemoteRow] = field(default_factory=list)
    duplicates: set[str] = field(default_factory=set)
    gone: set[str] = field(default_factory=set)
    scan_due: bool = False


def read_table(ledger: Ledger, sink: Sink, config: Any, table: CrmTable, stats: Counter,
               run: SyncRun) -> TableRead:
    """The table's rows changed since the last sync (everything the first
    time), and, when a full scan is due, which rows people deleted."""
    mark_source = f"sink:{sink.name}"
    since = ledger.checkpoint(mark_source, f"{table.name}:read")
    last_scan = ledger.checkpoint(mark_source, f"{table.name}:scan")
    found = TableRead(table, ledger.sink_states(sink.name, table.name))
    if any(f.type == "link" for f in table.stored):
        # before reading: links read back as keys, and go out as record ids
        _share_contact_links(ledger, sink)
    by_remote_id = {state.remote_id: key for key, state in found.states.items()
                    if state.remote_id}
    for row in sink.read(table, modified_since=since):
        if not row.key:
            # a person's row: taken in before (its key not written yet), or new
            if row.remote_id in by_remote_id:
                found.remote[by_remote_id[row.remote_id]] = row
            else:
                found.typed.append(row)
            continue
        if row.key in found.remote and found.remote[row.key].remote_id != row.remote_id:
            found.duplicates.add(row.key)
        found.remote[row.key] = row
    stats["rows_read"] += len(found.remote) + len(found.typed)
    read_everything = since is None or sink.reads_everything
    found.scan_due = read_everything or last_scan is None or config.full_scan_minutes == 0 or (
        datetime.fromisoformat(last_scan) <= run.now - timedelta(
            minutes=config.full_scan_minutes))
    if found.scan_due:
        present = set(found.remote) if read_everything else {
            row.key or by_remote_id.get(row.remote_id, "")
            for row in sink.read(table, only_key=True)}
        found.gone = {key for key, state in found.states.items()
                      if state.remote_id and key not in present}
        stats["rows_deleted_in_sink"] += len(found.gone)
    return found


def write_table(ledger: Ledger, sink: Sink, config: Any, read: TableRead, stats: Counter,
                run: SyncRun) -> None:
    """People's values in, then only what differs out, and the corrections
    people made kept in the store."""
    table, remote = read.table, read.remote
    states = read.states
    if read.gone and config.deleted_rows == "leave":
        # Remembered as deleted on purpose: the hash never matches a real row.
        ledger.save_sink_states(sink.name, table.name, {
            key: SyncState("deleted", None, states[key].confirmed) for key in read.gone})
        states = ledger.sink_states(sink.name, table.name)
        read.gone = set()
    if run.reads_people:
        values = {key: people_values(table, row) for key, row in remote.items() if key in states}
        ledger.save_people_values(sink.name, table.name, values, run.now)
        if table.name == "tasks":
            # `done` drives reminders: a task ticked in the CRM is not reminded again
            ledger.save_task_done({key: bool(people.get("done"))
                                   for key, people in values.items()})
        if table.name == "possible_duplicates":
            stats.update(act_on_decisions(ledger, sink.name, run.settings.identity_rules(),
                                          values))
    if any(f.type == "link" for f in table.stored):
        _share_contact_links(ledger, sink)  # the contacts written a moment ago too
    refused = ledger.sink_errors(sink.name, table.name)
    same = run.same(table)
    found_corrections: dict[str, dict] = {}
    pending: list[RowWrite] = []
    for values in _rows_of(ledger, table.name):
        desired = desired_row(table, values)
        key = desired[table.key]
        state = states.get(key)
        if state and state.content_hash == "deleted":
            stats["left_deleted"] += 1
            continue
        if refused.get(key) == content_hash(desired) and key not in remote:
            stats["failed"] += 1  # refused before and unchanged since: not sent again
            continue
        write = plan_row(table, desired, state, remote.get(key), gone=key in read.gone,
                         initial=initial_row(table, values), same=same)
        if run.reads_people:
            corrected = corrections(table, write, state, remote.get(key))
            if corrected is not None:
                found_corrections[key] = corrected
        if write is None or (not write.values and write.state == state):
            stats["unchanged"] += 1
            continue
        if key in read.duplicates:
            ledger.record_sink_errors(sink.name, table.name, {key: (
                content_hash(desired), f"several rows in {table.title} have the key {key}:"
                " delete the extra ones")})
            stats["failed"] += 1
            continue
        pending.append(write)
        if len(pending) >= sink.write_chunk:
            _write(ledger, sink, table, pending, stats)
            pending = []
            run.keep_lease()
    if pending:
        _write(ledger, sink, table, pending, stats)
    if found_corrections:
        stats["corrections"] += ledger.save_corrections(
            table.name, found_corrections, sink.name, run.settings.normalize_rules(), run.now)


def sync_table(ledger: Ledger, sink: Sink, config: Any, table: CrmTable, stats: Counter,
               run: SyncRun) -> None:
    """One table on its own: read, take in what people typed, write."""
    read = read_table(ledger, sink, config, table, stats, run)
    started = run.now - CLOCK_MARGIN
    _take_typed(ledger, sink, [read], run, stats)
    write_table(ledger, sink, config, read, stats, run)
    _finish_reads(ledger, sink, [read], started, run)


def _take_typed(ledger: Ledger, sink: Sink, reads: list[TableRead], run: SyncRun,
                stats: Counter) -> None:
    """People's new rows of every table read, taken in before anything is
    written: a lead typed for a contact typed in the same sync finds it."""
    if not run.reads_people:
        return
    for read in reads:
        if read.typed and read.table.name in TYPED_TABLES:
            read.remote.update(take_typed_rows(ledger, sink, read.table, read.typed, run, stats))
            read.states = ledger.sink_states(sink.name, read.table.name)


def _finish_reads(ledger: Ledger, sink: Sink, reads: list[TableRead], started: datetime,
                  run: SyncRun) -> None:
    """The next sync reads only what changed from `started` on (a margin before
    this one: an edit made while it ran is read again)."""
    for read in reads:
        ledger.set_checkpoint(f"sink:{sink.name}", f"{read.table.name}:read", _iso(started))
        if read.scan_due:
            ledger.set_checkpoint(f"sink:{sink.name}", f"{read.table.name}:scan",
                                  run.now.isoformat())


# The tables whose new rows a person types are taken in as records.
TYPED_TABLES = ("contacts", "leads", "tasks")


def take_typed_rows(ledger: Ledger, sink: Sink, table: CrmTable, rows: list[RemoteRow],
                    run: SyncRun, stats: Counter) -> dict[str, RemoteRow]:
    """Rows a person added to the record sink (no key yet): contacts and leads
    go in as raw items, processed like any mail, so they are matched with
    everyone else and a row that cannot be read goes to Needs review; tasks
    go straight in. Each row taken becomes that record's row in the sink.
    Returns the rows taken, by their record's key."""
    from flows.intake import process_pending

    # A link to a contact typed in this same sync reads as that row's id: by now
    # the row is the contact's, so the link is its key.
    contacts = {state.remote_id: key for key, state in
                ledger.sink_states(sink.name, "contacts").items() if state.remote_id}

    def linked(values: dict) -> dict:
        link = values.get("contact")
        return {**values, "contact": contacts.get(link, link)} if link else values

    if table.name == "tasks":
        taken = ledger.take_typed_tasks(
            sink.name, [(row.remote_id, linked(row.values)) for row in rows], run.now)
        stats["typed_tasks"] += len(taken)
        by_id = {row.remote_id: row for row in rows}
        return {key: by_id[remote_id] for key, remote_id in taken.items()}
    items = [crm_item(sink.name, table.name, row.remote_id, linked(row.values),
                      row.created_at or run.now) for row in rows]
    ledger.store_raw_items(items)
    stats.update({key: value for key, value in process_pending(run.settings).items()
                  if key in ("typed_contacts", "typed_leads", "quarantined")})
    by_id = {row.remote_id: row for row in rows}
    states = ledger.sink_states(sink.name, table.name)
    return {key: by_id[state.remote_id] for key, state in states.items()
            if state.remote_id in by_id}


def _write(ledger: Ledger, sink: Sink, table: CrmTable, writes: list[RowWrite],
           stats: Counter) -> None:
    silent = {w.key: w.state for w in writes if not w.values}
    to_send = [w for w in writes if w.values]
    # Write-ahead: a run killed before the answers are kept leaves what it sent,
    # so the next run knows the values it finds there for LeadHub's own.
    ledger.save_sink_states(sink.name, table.name, {w.key: w.intent for w in to_send})
    landed = dict(silent)
    errors: dict[str, tuple[str, str]] = {}
    by_key = {w.key: w for w in to_send}
    for outcome in sink.upsert(table, to_send):
        write = by_key[outcome.key]
        if outcome.error.startswith("deferred"):
            stats["deferred"] += 1
        elif outcome.error:
            errors[outcome.key] = (write.state.content_hash, outcome.error)
            log.warning("%s %s: %s", sink.name, table.title, outcome.error)
        else:
            state = write.state
            landed[outcome.key] = SyncState(
                state.content_hash, outcome.remote_id or write.remote_id, state.written,
                state.edited)
            stats["created" if outcome.created else "updated"] += 1
    stats["unchanged"] += len(silent)
    stats["failed"] += len(errors)
    ledger.save_sink_states(sink.name, table.name, landed)
    if errors:
        ledger.record_sink_errors(sink.name, table.name, errors)
    report(f"sync {table.name}", stats["created"] + stats["updated"])


def _share_contact_links(ledger: Ledger, sink: Sink) -> None:
    contact_states = ledger.sink_states(sink.name, "contacts")
    sink.set_links("contacts", {key: state.remote_id for key, state in contact_states.items()
                                if state.remote_id})


# Pairs shown in the sinks' Possible duplicates: waiting ones, and decided ones
# so their State says what became of them.
PAIR_STATES_SHOWN = ("open", "same", "different", "merged")


def act_on_decisions(ledger: Ledger, sink_name: str, rules: IdentityRules,
                     values: dict[str, dict]) -> Counter:
    """People's choices in the Possible duplicates table: one person merges the
    pair, two people keeps it apart for good."""
    stats: Counter = Counter()
    waiting = {pair_key(row["contact_a"], row["contact_b"]) for row in
               ledger.duplicate_pairs(("open",))}
    for key, people in values.items():
        decision = duplicate_decision(people.get("decision"))
        if decision is None or key not in waiting:
            continue
        a, _, b = key.partition("|")
        try:
            if decision == "same":
                ledger.merge_contacts(rules, a, b, by=f"sink:{sink_name}")
            else:
                ledger.keep_apart(a, b, by=f"sink:{sink_name}")
        except FatalError as error:
            log.warning("%s: possible duplicate %s: %s", sink_name, key, error)
            continue
        stats[f"pairs_{decision}"] += 1
    return stats


def read_back_orders(ledger: Ledger, sink: Sink, tz: tzinfo = UTC) -> Counter:
    """People's Orders and Order items tables into the ledger, for exports.

    An order's Date is a day in the business's time zone `tz` (its midnight
    there), like a date in an imported CSV. Each order in the Order items
    table gets exactly the table's lines, so a line a person deleted leaves
    the store too.
    """
    stats: Counter = Counter()
    orders_table, items_table = sink.tables["orders"], sink.tables["order_items"]
    _share_contact_links(ledger, sink)
    orders = []
    order_keys: dict[str, str] = {}
    for row in sink.read(orders_table):
        values = row.values
        order_id = values.get("order_id") or row.remote_id
        order_keys[order_id] = row.remote_id
        if not values.get("contact") or not values.get("ordered_at"):
            stats["orders_incomplete"] += 1
            continue
        orders.append({
            "order_id": order_id, "contact_key": values["contact"],
            "ordered_at": datetime.fromisoformat(str(values["ordered_at"])[:10]).replace(
                tzinfo=tz),
            "status": values.get("status") or "", "comment": values.get("comment") or ""})
    sink.set_links("orders", order_keys)
    lines: dict[str, int] = Counter()
    items = []
    for row in sorted(sink.read(items_table), key=lambda r: r.remote_id):
        values = row.values
        order_id = values.get("order")
        if not order_id or not values.get("product") or values.get("price") is None:
            stats["order_items_incomplete"] += 1
            continue
        lines[order_id] += 1
        items.append({
            "order_id": order_id, "line": lines[order_id], "product": values["product"],
            "price": Decimal(str(values["price"])), "cost": Decimal(str(values.get("cost") or 0)),
            "quantity": Decimal(str(values.get("quantity") or 1))})
    stats["orders_read"] = ledger.upsert_orders(orders)
    stats["order_items_read"] = ledger.replace_order_items(items)
    return stats


# Always in a sync's summary, zero or not.
SUMMARY_KEYS = ("created", "updated", "unchanged", "failed", "deferred", "rows_read",
                "rows_deleted_in_sink", "orders_read", "order_items_read", "api_calls",
                "rate_limited")


def sync_sink(ledger: Ledger, sink: Sink, config: Any, settings: Settings,
              now: datetime | None = None,
              keep_lease: Callable[[], None] = lambda: None) -> dict[str, int]:
    """One sink brought up to date. The record sink (the one people work in)
    is also read for their work: their new rows, corrections, stages, orders;
    a mirror only shows what the store holds."""
    stats: Counter = Counter()
    run = SyncRun(settings, settings.is_record(config) and config.read_back,
                  now or datetime.now(UTC), keep_lease)
    started = run.now - CLOCK_MARGIN
    reads = [read_table(ledger, sink, config, sink.tables[name], stats, run)
             for name in WRITTEN_TABLES]
    _take_typed(ledger, sink, reads, run, stats)
    for read in reads:
        write_table(ledger, sink, config, read, stats, run)
    _finish_reads(ledger, sink, reads, started, run)
    if run.reads_people:
        stats.update(read_back_orders(ledger, sink, ZoneInfo(settings.timezone)))
    stats["api_calls"] = sum(v for k, v in sink.calls.items()
                             if k not in ("timeouts", "retried", "rate_limited"))
    stats["rate_limited"] = sink.calls["rate_limited"]
    for warning in sink.warnings:
        log.warning("%s", warning)
    return {**dict.fromkeys(SUMMARY_KEYS, 0), **stats}


# How long a sync holds its sink without renewing: a run that dies holds it
# no longer than this. A running sync renews it between write batches.
SYNC_LEASE = timedelta(minutes=10)
RENEW_EVERY = timedelta(minutes=1)


@dataclass
class SinkLease:
    """One sync of a sink at a time, across processes and machines (the web
    endpoint's follow-up, the schedule, several workers): a lease kept in the
    store, taken before the sync and given back after it."""

    ledger: Ledger
    sink: str
    holder: str = field(default_factory=lambda: (
        f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"))
    held_by: str | None = None
    renewed: datetime | None = None

    def take(self) -> bool:
        at = datetime.now(UTC)
        name = f"sync:{self.sink}"
        self.held_by = self.ledger.take_lease(name, self.holder, at + SYNC_LEASE, at)
        if self.held_by and _died_here(self.held_by):
            # a run killed on this machine: no need to wait for its lease to run out
            self.held_by = self.ledger.take_lease(name, self.holder, at + SYNC_LEASE, at,
                                                  replacing=self.held_by)
        self.renewed = at
        return self.held_by is None

    def renew(self) -> None:
        if self.renewed and datetime.now(UTC) - self.renewed < RENEW_EVERY:
            return
        if not self.take():
            raise TransientError(f"sync of {self.sink} stopped: {self.held_by} took the sink"
                                 " over after this run held it too long without a word")

    def release(self) -> None:
        self.ledger.release_lease(f"sync:{self.sink}", self.holder)


def _died_here(holder: str) -> bool:
    """Whether a lease's holder (host:pid:nonce) was a process of this machine
    that is gone."""
    host, _, rest = holder.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


# The web endpoint's background processing and the schedule may both sync:
# one at a time per process keeps the rate limit and the plans simple.
_ONE_SYNC_AT_A_TIME = threading.Lock()


def sync_all(settings: Settings, only: str | None = None) -> dict[str, dict[str, int]]:
    """Sync every configured sink (or one), each with its own summary."""
    with _ONE_SYNC_AT_A_TIME:
        return _sync_all(settings, only)


def _sync_all(settings: Settings, only: str | None) -> dict[str, dict[str, int]]:
    results: dict[str, dict[str, int]] = {}
    ledger = Ledger(settings.store)
    # The record first: what people did there reaches the mirrors in the same run.
    in_order = sorted(settings.sinks, key=lambda sink: not settings.is_record(sink))
    try:
        for config in in_order:
            if only and only not in (config.name, config.type):
                continue
            sink = SINK_BUILDERS[config.type](config, settings)
            lease = SinkLease(ledger, config.name)
            if not lease.take():
                # Another process or machine is syncing this sink: two at once
                # would append one row twice. That run brings it up to date.
                log.warning("%s: another sync of it is running (%s); leaving it to that one",
                            sink.describe(), lease.held_by)
                results[config.name] = {**dict.fromkeys(SUMMARY_KEYS, 0), "sink_busy": 1}
                continue
            run_id = ledger.start_run(f"sync {config.name}")
            stats: dict[str, int] = {}
            # The sink's health sits beside the mailboxes' in `leadhub status`.
            health = (f"sink:{config.name}", "sync")
            try:
                stats = sync_sink(ledger, sink, config, settings, keep_lease=lease.renew)
            except (FatalError, TransientError) as error:
                ledger.record_failure(*health, str(error))
                if isinstance(error, FatalError):
                    raise
                # Everything is in the ledger: the next run catches up.
                log.error("%s: %s", sink.describe(), error)
                stats = {"sink_failed": 1}
            else:
                ledger.record_success(*health)
            finally:
                lease.release()
                ledger.finish_run(run_id, dict(stats))
            log.info("%s: %s", sink.describe(), stats)
            results[config.name] = stats
    finally:
        ledger.close()
    return results
