"""The intake: sources -> ledger -> parse, normalize, match -> ledger.

Every raw item is committed to the ledger (with its source checkpoint) before
it is processed; processing marks it in the same transaction that writes its
lead and contact, so a crash between or inside the steps loses and doubles
nothing: the next run picks up the items still marked new.

Plain functions: the CLI runs them as they are (no Prefect server to start),
flows/deployments.py wraps them as Prefect flows for schedules and workers.
"""

from __future__ import annotations

import gc
import logging
import os
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from collections.abc import Set as AbstractSet
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from sqlalchemy.exc import StatementError

from connectors import Source
from connectors.files import FilesSource
from connectors.ledger import Ledger, new_worker_id
from connectors.ledger.leads import LeadRows
from flows.batch_gc import after_batch, collected_per_batch
from leadhub.errors import FatalError, TransientError
from leadhub.progress import report
from leadhub.settings import FilesSourceConfig, ImapSourceConfig, Settings
from transforms.dedupe import ContactBook, LeadFacts, Resolution, lead_facts
from transforms.identity_rules import IdentityRules
from transforms.items import lead_from_item
from transforms.owners import Assignment, choose_owner
from transforms.records import Lead, ParseSkip, RawItem, Rejection

# Items a transaction processes: fewer commits and look-ups, and more of a
# big store's index pages written once for several leads (a million-lead
# store: 2,500 a batch cost 10-13% less CPU a lead than 1,000); a web post waiting
# for the SQLite write lock waits for one batch at most.
PROCESS_BATCH = 2500
# How often reading a source reports the items it stored.
READ_REPORT_EVERY = 1000
# Batches the worker processes parse ahead of the writer: as it reaches the
# middle of them, the next half is claimed and handed out, so the workers
# never wait for the writer's last batch and the writer never waits for a
# fresh window's first.
PROCESS_WINDOW = 6
# How often a worker process looks whether the process it works for is alive.
WORKER_WATCH_SECONDS = 1.0


log = logging.getLogger("leadhub.intake")


def files_source(config: FilesSourceConfig, settings: Settings) -> FilesSource:
    return FilesSource(
        name=config.name, paths=config.paths, default_form=config.form,
        csv_delimiter=settings.csv.delimiter, csv_encoding=settings.csv.encoding,
    )


def imap_source(config: ImapSourceConfig, settings: Settings) -> Source:
    from connectors.imap import ImapSource

    return ImapSource(config)


# Every source type the flow reads, and how to build it: one entry per module.
# Webhook sources are not here: they push into the ledger through the web
# endpoint (connectors/webhook.py), and the flow processes what they stored.
SOURCE_BUILDERS: dict[str, Callable[[Any, Settings], Source]] = {
    "files": files_source,
    "imap": imap_source,
}


def collect(source: Source, store: str | Path) -> Counter:
    """Store a source's new raw items in the ledger, each batch with its checkpoint,
    then let the source acknowledge them (mark read, move: its policy)."""
    logger = log
    ledger = Ledger(store, create=True)
    stats: Counter = Counter()
    try:
        for batch in source.batches(ledger.checkpoint):
            before, total = stats["read"], stats["read"] + len(batch.items)
            added = ledger.store_raw_items(_reported(batch.items, before, total),
                                           checkpoint=batch.checkpoint)
            source.acknowledge(batch)
            stats["read"] = total
            stats["new_items"] += added
            logger.info("%s %s: %d items, %d new", source.name, batch.checkpoint[1],
                        len(batch.items), added)
            report("read", total, total)
    except (FatalError, TransientError) as error:
        for scope in source.scopes():
            ledger.record_failure(source.name, scope, str(error))
        raise
    else:
        found = source.summary()
        last_message_at = found.get("last_message_at", {})
        for scope in source.scopes():
            ledger.record_success(source.name, scope, last_message_at.get(scope))
        stats["ignored_files"] += found.get("ignored_files", 0)
        for path in found.get("ignored", []):
            logger.info("%s: not read (LeadHub does not read this kind of file)", path)
    finally:
        ledger.close()
    return stats


def _reported(items: Iterable[RawItem], before: int, total: int) -> Iterator[RawItem]:
    """The items, reporting every READ_REPORT_EVERY how many of the `total`
    read so far are stored (a bar with items/s and the time left)."""
    for done, item in enumerate(items, start=before + 1):
        yield item
        if done % READ_REPORT_EVERY == 0:
            report("read", done, total)


def default_workers() -> int:
    """Processes that parse and normalize: both cores of a small machine."""
    return min(2, os.cpu_count() or 1)


def process_pending(settings: Settings, batch_size: int = PROCESS_BATCH,
                    workers: int | None = None) -> Counter:
    """Turn every raw item still marked new into a lead, a skip or a quarantine.
    Items are claimed a window of batches at a time, so several processors
    share the work without doing any of it twice; `workers` processes parse
    and normalize the window's batches while this one writes them, in order."""
    logger = log
    ledger = Ledger(settings.store)
    worker = new_worker_id()
    intake_rules = IntakeRules.of(settings)
    rules = (settings.mail_rules(), settings.submission_rules(), settings.normalize_rules(),
             settings.form_rules())
    stats: Counter = Counter()
    try:
        # what is left at the start: the bar's total (other processors may take some)
        pending = ledger.item_counts().get("items_new", 0)

        def claim(limit: int, busy: AbstractSet[str]) -> list[RawItem]:
            return ledger.claim_pending(worker, limit, excluding=busy)

        with collected_per_batch(), _Parser(rules, workers or default_workers()) as parser:
            for outcomes in parser.parsed(claim, batch_size):
                _record_batch(ledger, outcomes, stats, intake_rules, worker)
                after_batch()
                done = stats["processed_items"]
                report("process", done, max(done, pending))
        for reason, count in stats.items():
            if reason.startswith("reason:"):
                logger.warning("%d item(s) %s", count, reason.removeprefix("reason:"))
    finally:
        ledger.release_claims(worker)
        ledger.close()
    return Counter({k: v for k, v in stats.items() if not k.startswith("reason:")})


Rules = tuple  # lead_from_item's rules after the item: mail, submission, normalize, form
_worker_rules: Rules = ()
# Claims up to a number of items, leaving out a set of item ids.
Claim = Callable[[int, AbstractSet[str]], list[RawItem]]
# A batch's outcomes, each with its item.
Parsed = list[tuple[RawItem, "Outcome"]]


class _Parser:
    """Claimed raw items to outcomes a batch at a time, in the order claimed:
    here, or in a pool of worker processes once there is more than one batch
    to do. Matching facts are worked out by the writer, not here: sent back
    from the workers they cost more CPU in all than they saved it (100,000
    rows: 110 s against 87 s, and 190 MiB more), for no time saved."""

    def __init__(self, rules: Rules, workers: int):
        self.rules, self.workers = rules, workers
        self.pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> _Parser:
        return self

    def __exit__(self, *exc_info) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)

    def parsed(self, claim: Claim, size: int) -> Iterator[Parsed]:
        """Every batch `claim` gives until it gives none, parsed. With workers,
        the next half window is claimed while the writer is in the middle of
        this one (not after its last batch), leaving out the items in hand."""
        window = size * PROCESS_WINDOW
        if self.workers < 2:
            while items := claim(window, frozenset()):
                for batch in _cut(items, size):
                    yield self._here(batch)
            return
        queue: deque[tuple[list[RawItem], Future]] = deque()
        busy: set[str] = set()  # claimed and not recorded yet
        more = True
        while True:
            if more and len(queue) <= PROCESS_WINDOW // 2:
                items = claim(window - len(queue) * size, busy)
                more = bool(items)
                if self.pool is None and len(items) <= size:
                    # one batch (a web post, a mail): no processes to start for it
                    if items:
                        yield self._here(items)
                    continue
                for batch in _cut(items, size):
                    queue.append((batch, self._pool().submit(_outcomes_in_worker, batch)))
                    busy.update(item.item_id for item in batch)
            if not queue:
                return
            batch, future = queue.popleft()
            yield list(zip(batch, future.result(), strict=True))
            busy.difference_update(item.item_id for item in batch)

    def _here(self, batch: list[RawItem]) -> Parsed:
        return list(zip(batch, _outcomes(batch, self.rules), strict=True))

    def _pool(self) -> ProcessPoolExecutor:
        if self.pool is None:
            # spawn, not fork: the store's connections and threads stay here
            self.pool = ProcessPoolExecutor(self.workers, get_context("spawn"),
                                            initializer=_start_worker,
                                            initargs=(self.rules, os.getpid()))
        return self.pool


def _cut(items: list[RawItem], size: int) -> list[list[RawItem]]:
    return [items[start:start + size] for start in range(0, len(items), size)]


def _start_worker(rules: Rules, parent: int) -> None:
    global _worker_rules
    _worker_rules = rules
    # a worker lives for one processing run: collected per batch (flows/batch_gc.py)
    gc.disable()
    threading.Thread(target=_end_with, args=(parent,), daemon=True).start()


def _end_with(parent: int) -> None:
    """A worker whose processor was killed ends too (the pool's own pipes do
    not tell it: every worker holds both of their ends)."""
    while os.getppid() == parent:
        time.sleep(WORKER_WATCH_SECONDS)
    os._exit(1)


def _outcomes(items: list[RawItem], rules: Rules) -> list[Outcome]:
    return [lead_from_item(item, *rules) for item in items]


def _outcomes_in_worker(items: list[RawItem]) -> list[Outcome]:
    outcomes = _outcomes(items, _worker_rules)
    after_batch()
    return outcomes


Outcome = Lead | ParseSkip | Rejection


@dataclass(frozen=True)
class IntakeRules:
    """What processing needs beyond parsing: how to tell people apart, the
    stage a new lead starts at, and who gets it."""

    identity: IdentityRules
    first_stage: str
    assignment: Assignment

    @classmethod
    def of(cls, settings: Settings) -> IntakeRules:
        return cls(settings.identity_rules(), settings.stages()[0], settings.assignment_of())


def _record_batch(ledger: Ledger, outcomes: list[tuple[RawItem, Outcome]], stats: Counter,
                  rules: IntakeRules, worker: str | None = None) -> None:
    """One batch in one transaction. Its rows are written together at the end;
    when the store refuses one of them, the batch is done again a row at a
    time, so that only the refused item is quarantined."""
    # In the order claimed (received, then stored): what a row ends on must
    # not depend on how the rows were cut into batches. Sorting each batch by
    # the leads' own dates did make it depend on that for a file whose rows
    # are not in date order (2,000 rows newest first: 17 clusters differ
    # between batches of 7 and one batch); a contact's first-seen moment is
    # the earliest of its leads' whatever the order.
    try:
        stats.update(_record(ledger, outcomes, rules, worker, together=True))
    except _StoreRefused:
        stats.update(_record(ledger, outcomes, rules, worker, together=False))


class _StoreRefused(Exception):
    """The store refused a row of a batch written together."""


def _record(ledger: Ledger, outcomes: list[tuple[RawItem, Outcome]], rules: IntakeRules,
            worker: str | None, together: bool) -> Counter:
    stats: Counter = Counter()
    with ledger.transaction() as tx:
        ledger.lock_contacts(tx)
        mine = ledger.still_mine(tx, [item.item_id for item, _ in outcomes], worker)
        outcomes = [pair for pair in outcomes if pair[0].item_id in mine]
        leads = [outcome for _, outcome in outcomes if isinstance(outcome, Lead)]
        # what matching needs of each lead alone, worked out once for the
        # book's load and the match
        facts = {item.item_id: lead_facts(outcome, rules.identity)
                 for item, outcome in outcomes if isinstance(outcome, Lead)}
        book = ledger.load_book(
            tx, rules.identity, (i for each in facts.values() for i in each.lookups),
            (k for each in facts.values() for k in each.query_keys),
            contacts_named=(lead.raw_source["contact"] for lead in leads
                            if lead.raw_source.get("contact")),
            filed=(k for each in facts.values() for k in each.block_keys))
        known_before = set(book.members)
        batch = _Batch(ledger, tx, book, stats, rules, ledger.next_lead_seq(tx), together,
                       [lead.lead_id for lead in leads])
        for item, outcome in outcomes:
            stats["processed_items"] += 1
            if isinstance(outcome, ParseSkip):
                batch.mark(item.item_id, "skipped", outcome.reason)
                stats["skipped"] += 1
                stats["reason:skipped: " + outcome.reason.partition(":")[0]] += 1
            elif isinstance(outcome, Rejection):
                batch.quarantine(item, outcome.reason)
            elif item.meta.get("crm_table") == "contacts":
                batch.add_contact(item, outcome, facts[item.item_id])
            else:
                batch.add_lead(item, outcome, facts[item.item_id])
        batch.write_together()
        ledger.save_book(tx, book)
        batch.save_turn()
    ledger.remember_book(book)
    stats["updated_contacts"] += len(book.changed & known_before)
    return stats


class _Batch:
    """One processing transaction. Written `together`, its leads and marks are
    kept and written at the end, a statement for all; otherwise each lead is
    written at once in a savepoint of its own, so one item the store refuses
    is quarantined and the rest go on."""

    def __init__(self, ledger: Ledger, tx, book: ContactBook, stats: Counter,
                 rules: IntakeRules, seq: int, together: bool, lead_ids: list[str]):
        self.ledger, self.tx, self.book, self.stats, self.seq = ledger, tx, book, stats, seq
        self.rules = rules
        self.turn = int(ledger.checkpoint_in(tx, "assignment", "turn") or 0)
        self.first_turn = self.turn
        self.together = together
        self.marks: list[dict] = []
        self.lead_rows = LeadRows()
        # Fingerprints of the leads stored (None: no such lead), read at once for the batch.
        self.fingerprints: dict[str, str | None] = dict.fromkeys(lead_ids)
        self.fingerprints.update(ledger.lead_fingerprints(tx, lead_ids))

    def mark(self, item_id: str, state: str, reason: str = "",
             lead_id: str | None = None) -> None:
        self.ledger.mark_item(self.tx, item_id, state, reason, lead_id=lead_id,
                              batch=self.marks if self.together else None)

    def quarantine(self, item: RawItem, reason: str) -> None:
        self.mark(item.item_id, "quarantined", reason)
        self.stats["quarantined"] += 1
        self.stats["reason:quarantined: " + reason.partition(" (")[0]] += 1

    def write_together(self) -> None:
        """The leads and marks kept for the end. A refusal ends the whole
        transaction (its rollback takes back everything the batch did) and the
        caller does the batch again row by row. No savepoint: nothing goes on
        in this transaction after a refusal, and in one SQLite keeps the old
        image of every page the batch changes in a statement journal, a temp
        file (a batch of 2,500 into a store of 571,000 leads: 38 MiB and
        19,570 writes of its 106,000)."""
        try:
            self.ledger.save_leads(self.tx, self.lead_rows)
            self.ledger.mark_items(self.tx, self.marks)
        except (StatementError, ValueError, OverflowError, UnicodeError) as error:
            raise _StoreRefused from error

    def add_lead(self, item: RawItem, given: Lead, facts: LeadFacts) -> None:
        lead = self._as_new_inquiry(given)
        if lead is None:
            # The same inquiry again (a re-sent mail, a provider retry).
            self.mark(item.item_id, "processed", lead_id=given.lead_id)
            self.stats["duplicate_items"] += 1
            return
        resolution = self._linked(item, lead) or self.book.resolve(lead, facts)
        owner = self._owner(item, lead, resolution)
        if self.together and not item.meta.get("crm"):
            self._save(item, lead, resolution, owner, self.lead_rows)
            self.mark(item.item_id, "processed", lead_id=lead.lead_id)
        else:
            try:
                with self.tx.begin_nested():
                    self._save(item, lead, resolution, owner, None)
                    self.ledger.mark_item(self.tx, item.item_id, "processed",
                                          lead_id=lead.lead_id)
                    if item.meta.get("crm"):
                        self.ledger.adopt_row(self.tx, item.meta["crm"], "leads",
                                              lead.lead_id, item.meta["remote_id"])
            except (StatementError, ValueError, OverflowError, UnicodeError) as error:
                self.quarantine(item, f"the store cannot keep it ({type(error).__name__}:"
                                      f" {_first_line(error)})")
                return
        self.fingerprints[lead.lead_id] = lead.fingerprint
        self.book.apply(resolution, lead, facts, owner=owner)
        self.seq += 1
        self.stats["new_leads"] += 1
        self.stats["typed_leads"] += bool(item.meta.get("crm"))
        self.stats["new_contacts"] += resolution.is_new
        self.stats["merged_contacts"] += len(resolution.merged)
        self.stats["unmatched_source"] += not lead.source_matched

    def _save(self, item: RawItem, lead: Lead, resolution: Resolution, owner: str,
              rows: LeadRows | None) -> None:
        self.ledger.save_lead(self.tx, lead, resolution.contact_key, item.item_id,
                              self.seq, resolution.reason, origin=_origin(item),
                              owner=owner, stage=self.rules.first_stage, batch=rows)

    def add_contact(self, item: RawItem, contact: Lead, facts: LeadFacts) -> None:
        """A contact a person typed into the CRM: matched like a lead's, so a
        later mail from them finds it; it counts as no inquiry."""
        sink, remote_id = item.meta["crm"], item.meta["remote_id"]
        resolution = self.book.resolve(contact, facts)
        if not resolution.is_new:
            row = self.ledger.remote_id_of(self.tx, sink, "contacts", resolution.contact_key)
            if row and row != remote_id:
                self.quarantine(item, f"the same person as contact {resolution.contact_key},"
                                      f" which has its own row in {sink} (row {row}) already:"
                                      " keep one of the two rows")
                return
        with self.tx.begin_nested():
            self.ledger.adopt_row(self.tx, sink, "contacts", resolution.contact_key, remote_id)
            self.ledger.mark_item(self.tx, item.item_id, "processed")
        self.book.apply(resolution, contact, facts, counts=False, origin=_origin(item))
        self.stats["typed_contacts"] += 1
        self.stats["new_contacts"] += resolution.is_new
        self.stats["merged_contacts"] += len(resolution.merged)

    def _linked(self, item: RawItem, lead: Lead) -> Resolution | None:
        """A lead a person typed and linked to a contact belongs to that contact."""
        key = lead.raw_source.get("contact", "") if item.meta.get("crm") else ""
        if key in self.book.members:
            return Resolution(contact_key=key, is_new=False,
                              reason=f"a person linked it to this contact in {item.meta['crm']}")
        return None

    def _owner(self, item: RawItem, lead: Lead, resolution: Resolution) -> str:
        member = self.book.members.get(resolution.contact_key)
        owner, self.turn = choose_owner(self.rules.assignment, lead.source, item.source,
                                        member.owner if member else "", self.turn)
        return owner

    def save_turn(self) -> None:
        if self.turn != self.first_turn:
            self.ledger.save_checkpoint_in(self.tx, "assignment", "turn", str(self.turn))

    def _as_new_inquiry(self, lead: Lead) -> Lead | None:
        """The lead, or None when it repeats one already stored: the same id
        and the same content. A different mail that reuses a Message-ID (or
        one cut short) becomes a lead of its own; leads stored before
        fingerprints match on their id alone."""
        stored = self._stored_fingerprint(lead.lead_id)
        if stored is None:
            return lead
        if not stored or not lead.fingerprint or stored == lead.fingerprint:
            return None
        other = replace(lead, lead_id=f"{lead.lead_id}~{lead.fingerprint[:12]}")
        return None if self._stored_fingerprint(other.lead_id) is not None else other

    def _stored_fingerprint(self, lead_id: str) -> str | None:
        if lead_id not in self.fingerprints:
            self.fingerprints[lead_id] = self.ledger.lead_fingerprint(self.tx, lead_id)
        return self.fingerprints[lead_id]


def _origin(item: RawItem) -> str:
    """Where a record came from when a person typed it: the sink and its row."""
    return f"sink:{item.meta['crm']}:{item.meta['remote_id']}" if item.meta.get("crm") else ""


def _first_line(error: BaseException) -> str:
    text = str(getattr(error, "orig", None) or error).strip()
    return text.splitlines()[0][:300] if text else ""


def sync_and_alert(settings: Settings) -> dict[str, Any]:
    """What follows processing: the sinks' sync, then alerts and tasks (after
    the sync, so a message can link to the lead's new row)."""
    done: dict[str, Any] = {}
    if settings.sinks:
        from flows.sync import sync_all

        done["sinks"] = sync_all(settings)
    if settings.alerts or settings.task_rules:
        from flows.alerts import run_alerts

        done["alerts"] = run_alerts(settings)
    return done


def process_then_follow_up(settings: Settings) -> None:
    """The web endpoint's background work: a form lead reaches the CRM and the
    alert channels within seconds, not at the next scheduled run."""
    from flows.alerts import start_rules

    start_rules(settings)
    if process_pending(settings).get("new_leads"):
        try:
            sync_and_alert(settings)
        except (FatalError, TransientError) as error:
            log.error("after processing form posts: %s", error)


def sources_of(settings: Settings, paths: list[Path] | None = None) -> list[Source]:
    """The config's sources the intake reads (or a files source of `paths`)."""
    if paths:
        given = FilesSourceConfig(type="files", paths=list(paths))
        return [files_source(given, settings)]
    return [SOURCE_BUILDERS[each.type](each, settings) for each in settings.sources
            if each.type in SOURCE_BUILDERS]


def run_intake(settings: Settings, paths: list[Path] | None = None,
               follow_up: bool = True, workers: int | None = None) -> dict[str, Any]:
    """Ingest the config's sources (or just `paths`), process what is new, then
    (with `follow_up`, where sync and alerts have no deployments of their own)
    sync the sinks and send the alerts. A source that cannot be used (a wrong
    password) does not keep the others waiting; its error is raised at the end.
    `workers`: processes that parse and normalize (`default_workers()`)."""
    from flows.alerts import start_rules

    ledger = Ledger(settings.store, create=True)
    created = ledger.created
    run_id = ledger.start_run("intake")
    stats: Counter = Counter()
    ignored: list[str] = []
    fatal: list[str] = []
    down: list[str] = []
    try:
        # Rules start before this run's leads are processed: the first lead
        # after a rule is set up is alerted too.
        start_rules(settings, ledger)
        for source in sources_of(settings, paths):
            try:
                stats += collect(source, settings.store)
                ignored += source.summary().get("ignored", [])
            except FatalError as error:
                fatal.append(str(error))
            except TransientError as error:
                log.error("%s", error)
                stats["failed_sources"] += 1
                down.append(f"{source.name}: {error}")
        stats += process_pending(settings, workers=workers)
    finally:
        ledger.finish_run(run_id, dict(stats, fatal_errors=len(fatal)))
        ledger.close()
    if fatal:
        raise FatalError("\n".join(fatal))
    result: dict[str, Any] = {**stats, "store_created": created, "ignored": ignored,
                              "down_sources": down}
    if not paths and follow_up:
        result.update(sync_and_alert(settings))
    after = settings.export.after_intake
    if after is not None:
        from flows.export import export_tables

        export_tables(settings, after.out, after.preset)
    return result
