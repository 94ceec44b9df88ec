"""Raw items: every mail, form post and row, stored before anything else
happens, then claimed by one worker, processed and marked."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Connection, and_, bindparam, exc, func, null, select, update

from connectors.ledger.base import Bulk, LedgerBase, chunks, now, upsert
from connectors.ledger.database import as_utc, lock_all
from connectors.ledger.schema import raw_items
from transforms.records import RawItem

# A worker that claimed items and died: after this long another takes them.
CLAIM_LEASE = timedelta(minutes=10)
HOST = socket.gethostname()
# Items written per statement when a source hands over many (a CSV of a million rows).
ITEM_BATCH = 5000

# What storing one web-form post came to: (item id, was it a repeat), or the
# error that kept it out.
SubmissionOutcome = tuple[str, bool] | exc.SQLAlchemyError


def new_worker_id() -> str:
    """`host:pid:token`: whose claim an item carries (a dead local process's
    claims are void at once; a remote one's when the lease ends)."""
    return f"{HOST}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _claim_is_void(claimed_by: str | None, claimed_at: datetime | None, at: datetime) -> bool:
    if claimed_by is None or claimed_at is None or claimed_at < at - CLAIM_LEASE:
        return True
    host, _, rest = claimed_by.partition(":")
    pid = rest.partition(":")[0]
    return host == HOST and pid.isdigit() and not _alive(int(pid))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _submission_locks(item: RawItem, content_hash: str) -> tuple[str, str]:
    return (f"submission:{item.source}:{content_hash}", f"submission-id:{item.item_id}")


_MARK = Bulk(lambda tx, keys: (
    update(raw_items).where(raw_items.c.item_id == bindparam("marked_id"))
    .values(state=bindparam("state"), reason=bindparam("reason"),
            lead_id=bindparam("lead_id"), processed_at=bindparam("processed_at"),
            claimed_by=null(), claimed_at=null())))
# New items: one that is there already (another writer's) is left as it is.
_INSERT = Bulk(lambda tx, keys: upsert(tx, raw_items).on_conflict_do_nothing(
    index_elements=["item_id"]))


def _item_row(item: RawItem, item_id: str, content_hash: str, arrival: int,
              ingested_at: datetime | None = None) -> dict:
    return {
        "item_id": item_id, "source": item.source, "kind": item.kind,
        "received_at": item.received_at, "payload": item.payload,
        "content_hash": content_hash,
        "meta": json.dumps(item.meta, ensure_ascii=False, sort_keys=True),
        "ingested_at": ingested_at or now(), "arrival": arrival,
    }


def _next_arrival(tx: Connection) -> int:
    """The number the next stored item gets in the order items are stored in.
    SQLite has one writer at a time; two PostgreSQL transactions storing at
    once may hand out the same numbers, and their items then go by item id."""
    return (tx.execute(select(func.max(raw_items.c.arrival))).scalar() or 0) + 1


@dataclass
class _Seen:
    """What a group's posts are checked against: the stored submissions like
    them, and the group's own posts before them."""

    ids: set[str] = field(default_factory=set)
    # (source, content hash) -> (received at, item id)
    contents: defaultdict[tuple[str, str], list[tuple[datetime, str]]] = field(
        default_factory=lambda: defaultdict(list))

    def repeat_of(self, item: RawItem, content_hash: str, window: timedelta) -> str | None:
        if item.item_id in self.ids:
            return item.item_id
        # compared as the store compares them: moments to the second
        since = as_utc(item.received_at - window)
        within = [(as_utc(at), item_id) for at, item_id in
                  self.contents.get((item.source, content_hash), ()) if as_utc(at) >= since]
        return min(within)[1] if within else None

    def add(self, item: RawItem, content_hash: str) -> None:
        self.ids.add(item.item_id)
        self.contents[(item.source, content_hash)].append((item.received_at, item.item_id))


def _revision_id(item_id: str, content_hash: str) -> str:
    return f"{item_id}@{content_hash[:12]}"


def _batches(items: Iterable[RawItem], size: int) -> Iterator[list[RawItem]]:
    batch: list[RawItem] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


# What a claim hands back: the columns a RawItem is made of.
_ITEM_COLUMNS = (raw_items.c.item_id, raw_items.c.source, raw_items.c.kind, raw_items.c.payload,
                 raw_items.c.received_at, raw_items.c.meta)


def _row_to_item(row) -> RawItem:
    return RawItem(item_id=row["item_id"], source=row["source"], kind=row["kind"],
                   payload=row["payload"], received_at=row["received_at"],
                   meta=json.loads(row["meta"]))


class RawItems(LedgerBase):
    def store_raw_items(
        self, items: Iterable[RawItem], checkpoint: tuple[str, str, str] | None = None
    ) -> int:
        """Insert new items and move the checkpoint in one transaction.

        Returns how many items were new; items already stored are left as
        they are, so storing the same item twice changes nothing.
        """
        added = 0
        with self.transaction() as tx:
            arrival = _next_arrival(tx)
            for chunk in _batches(items, ITEM_BATCH):
                added += self._insert_items(tx, chunk, arrival + added)
            if checkpoint:
                self._save_checkpoint(tx, *checkpoint)
        return added

    def _insert_items(self, tx: Connection, items: list[RawItem], arrival: int) -> int:
        """One chunk of items in one statement; what is stored already is read
        first, in one query, rather than after each row."""
        hashes = [hashlib.sha256(item.payload).hexdigest() for item in items]
        known = self._stored_hashes(tx, [item.item_id for item in items])
        known |= self._stored_hashes(tx, [
            _revision_id(item.item_id, content_hash)
            for item, content_hash in zip(items, hashes, strict=True)
            if known.get(item.item_id, content_hash) != content_hash])
        new, stamp = [], now()
        for item, content_hash in zip(items, hashes, strict=True):
            item_id = item.item_id
            if item_id in known and "@" not in item_id and known[item_id] != content_hash:
                # Same place, new content (a CSV row edited and imported again):
                # keep it as a revision rather than lose it.
                item_id = _revision_id(item_id, content_hash)
            if item_id in known:
                continue
            known[item_id] = content_hash
            new.append(_item_row(item, item_id, content_hash, arrival + len(new), stamp))
        _INSERT.execute(tx, new)
        return len(new)

    def _stored_hashes(self, tx: Connection, item_ids: list[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for chunk in chunks(item_ids):
            found.update((item_id, content_hash) for item_id, content_hash in tx.execute(
                select(raw_items.c.item_id, raw_items.c.content_hash)
                .where(raw_items.c.item_id.in_(chunk))).all())
        return found

    def _insert_item(self, tx: Connection, item: RawItem, item_id: str, content_hash: str) -> int:
        values = _item_row(item, item_id, content_hash, _next_arrival(tx))
        inserted = tx.execute(upsert(tx, raw_items).values(**values)
                              .on_conflict_do_nothing(index_elements=["item_id"])).rowcount
        if inserted or "@" in item_id:
            return inserted
        stored = tx.execute(select(raw_items.c.content_hash)
                            .where(raw_items.c.item_id == item_id)).scalar()
        if stored == content_hash:
            return 0
        # Same place, new content (a CSV row edited and imported again): keep
        # it as a revision rather than lose it.
        return self._insert_item(tx, item, _revision_id(item_id, content_hash), content_hash)

    def store_submissions(
        self, items: Sequence[RawItem], duplicate_window_seconds: int
    ) -> list[SubmissionOutcome]:
        """Store a group of web-form posts in one transaction: one commit (one
        fsync) for all of them. Each post is stored unless it repeats one: the
        same item id (a provider retry with its submission id) or the same
        content from the same source within the window, also when the first
        copy is earlier in the same group. For each post, in order: the id of
        the stored (or earlier) item and whether it was a repeat, or the
        error that kept that post out; the others are stored all the same."""
        with self.transaction() as tx:
            return self.store_group(tx, items, duplicate_window_seconds)

    def store_group(
        self, tx: Connection, items: Sequence[RawItem], duplicate_window_seconds: int
    ) -> list[SubmissionOutcome]:
        """`store_submissions` inside the caller's transaction. The group's
        contents and ids are locked first, in one order: two copies arriving at
        two endpoint replicas cannot both get in, and two replicas whose groups
        overlap wait for each other rather than deadlock."""
        hashes = [hashlib.sha256(item.payload).hexdigest() for item in items]
        lock_all(tx, [name for item, content_hash in zip(items, hashes, strict=True)
                      for name in _submission_locks(item, content_hash)])
        window = timedelta(seconds=duplicate_window_seconds)
        try:
            with tx.begin_nested():
                return self._store_together(tx, items, hashes, window)
        except exc.SQLAlchemyError:
            # The store refused some post's content: one by one, so it fails alone.
            return [self._store_alone(tx, item, content_hash, duplicate_window_seconds)
                    for item, content_hash in zip(items, hashes, strict=True)]

    def _store_together(self, tx: Connection, items: Sequence[RawItem], hashes: list[str],
                        window: timedelta) -> list[tuple[str, bool]]:
        """The whole group in a few statements whatever its size (one look-up
        of its ids, one of its contents, one insert): each statement is a
        round trip, and on SQLite each gives up the GIL and waits to get it back."""
        seen = self._stored_like(tx, items, hashes, window)
        outcomes, rows, stamp, arrival = [], [], now(), _next_arrival(tx)
        for item, content_hash in zip(items, hashes, strict=True):
            earlier = seen.repeat_of(item, content_hash, window)
            if earlier is not None:
                outcomes.append((earlier, True))
                continue
            seen.add(item, content_hash)
            rows.append(_item_row(item, item.item_id, content_hash, arrival + len(rows), stamp))
            outcomes.append((item.item_id, False))
        _INSERT.execute(tx, rows)
        return outcomes

    def _stored_like(self, tx: Connection, items: Sequence[RawItem], hashes: list[str],
                     window: timedelta) -> _Seen:
        """The stored items a post of the group could repeat: the same id, or
        the same content from the same source within the window."""
        seen = _Seen()
        ids = list(dict.fromkeys(item.item_id for item in items))
        for chunk in chunks(ids):
            seen.ids.update(tx.execute(select(raw_items.c.item_id)
                                       .where(raw_items.c.item_id.in_(chunk))).scalars().all())
        since = min(item.received_at for item in items) - window
        sources = list(dict.fromkeys(item.source for item in items))
        for chunk in chunks(sorted(set(hashes))):
            for row in tx.execute(select(raw_items.c.item_id, raw_items.c.source,
                                         raw_items.c.content_hash, raw_items.c.received_at)
                                  .where(raw_items.c.source.in_(sources),
                                         raw_items.c.content_hash.in_(chunk),
                                         raw_items.c.received_at >= since)).all():
                seen.contents[(row.source, row.content_hash)].append(
                    (row.received_at, row.item_id))
        return seen

    def _store_alone(self, tx: Connection, item: RawItem, content_hash: str,
                     duplicate_window_seconds: int) -> SubmissionOutcome:
        """One post in a savepoint of its own: content the store refuses
        fails this post only."""
        try:
            with tx.begin_nested():
                return self._store_unless_repeat(tx, item, content_hash,
                                                 duplicate_window_seconds)
        except exc.SQLAlchemyError as error:
            return error

    def _store_unless_repeat(self, tx: Connection, item: RawItem, content_hash: str,
                             duplicate_window_seconds: int) -> tuple[str, bool]:
        since = item.received_at - timedelta(seconds=duplicate_window_seconds)
        # Two indexed look-ups: an OR of both would scan the whole table.
        earlier = tx.execute(select(raw_items.c.item_id)
                             .where(raw_items.c.item_id == item.item_id)).scalar()
        if earlier is None:
            earlier = tx.execute(select(raw_items.c.item_id).where(
                raw_items.c.source == item.source, raw_items.c.content_hash == content_hash,
                raw_items.c.received_at >= since).limit(1)).scalar()
        if earlier is not None:
            return earlier, True
        self._insert_item(tx, item, item.item_id, content_hash)
        return item.item_id, False

    def pending_items(self, limit: int) -> list[RawItem]:
        """Items not processed yet, oldest first (whoever may hold them)."""
        rows = self.rows(select(raw_items).where(raw_items.c.state == "new")
                         .order_by(raw_items.c.received_at, raw_items.c.arrival,
                                   raw_items.c.item_id).limit(limit))
        return [_row_to_item(row) for row in rows]

    def claim_pending(self, worker: str, limit: int, at: datetime | None = None,
                      excluding: AbstractSet[str] = frozenset()) -> list[RawItem]:
        """Take up to `limit` unprocessed items for `worker`, oldest first. An
        item another live worker holds is skipped (PostgreSQL: SKIP LOCKED
        while claiming); one whose claim is void is taken over. `excluding`:
        items the worker claimed and is still working on (not taken again)."""
        at = at or now()
        candidates = (
            select(raw_items.c.item_id, raw_items.c.claimed_by, raw_items.c.claimed_at)
            .where(raw_items.c.state == "new")
            .order_by(raw_items.c.received_at, raw_items.c.arrival, raw_items.c.item_id)
            .limit(limit * 4 + len(excluding))
            .with_for_update(skip_locked=True)
        )
        with self.transaction() as tx:
            taken = [row.item_id for row in tx.execute(candidates).all()
                     if row.item_id not in excluding
                     and (row.claimed_by == worker
                          or _claim_is_void(row.claimed_by, row.claimed_at, at))][:limit]
            items = []
            for chunk in chunks(taken):
                # the claimed rows come back from the update itself: no read-back
                items += tx.execute(update(raw_items).where(raw_items.c.item_id.in_(chunk))
                                    .values(claimed_by=worker, claimed_at=at)
                                    .returning(*_ITEM_COLUMNS, raw_items.c.arrival)
                                    ).mappings().all()
        items.sort(key=lambda row: (row["received_at"], row["arrival"], row["item_id"]))
        return [_row_to_item(row) for row in items]

    def release_claims(self, worker: str) -> None:
        """The worker stops early: what it still holds is free for others now."""
        with self.transaction() as tx:
            tx.execute(update(raw_items).where(raw_items.c.claimed_by == worker,
                                               raw_items.c.state == "new")
                       .values(claimed_by=None, claimed_at=None))

    def still_mine(self, tx: Connection, item_ids: list[str], worker: str | None) -> set[str]:
        """Of these items, the ones still unprocessed and (with a worker) still
        claimed by it: read inside the write transaction, since another
        processor may have taken some meanwhile."""
        found: set[str] = set()
        for chunk in chunks(item_ids):
            # Found by their ids alone, the state and claim checked here: given
            # `state = 'new'` too, SQLite walked the state index over every
            # pending item for each batch (a million-row file: a third of the
            # writer's time while most of it was still pending).
            rows = tx.execute(select(raw_items.c.item_id, raw_items.c.state,
                                     raw_items.c.claimed_by)
                              .where(raw_items.c.item_id.in_(chunk))).all()
            found.update(item_id for item_id, state, claimed_by in rows
                         if state == "new" and (worker is None
                                                or claimed_by in (worker, None)))
        return found

    def mark_item(self, tx: Connection, item_id: str, state: str, reason: str = "",
                  lead_id: str | None = None, batch: list[dict] | None = None) -> None:
        """Mark an item done; with `batch`, the mark joins it for `mark_items`."""
        mark = {"marked_id": item_id, "state": state, "reason": reason, "lead_id": lead_id,
                "processed_at": now()}
        if batch is None:
            self.mark_items(tx, [mark])
        else:
            batch.append(mark)

    def mark_items(self, tx: Connection, marks: list[dict]) -> None:
        _MARK.execute(tx, marks)

    def requeue(self, states: tuple[str, ...] = ("quarantined",)) -> int:
        """Mark items to be processed again (replay after a config fix)."""
        with self.transaction() as tx:
            return tx.execute(update(raw_items).where(raw_items.c.state.in_(states))
                              .values(state="new", reason="", claimed_by=None,
                                      claimed_at=None)).rowcount

    def quarantined_since(self, since: datetime) -> list[dict]:
        """Items quarantined at or after `since`, with the start of their payload."""
        return list(self.iter_rows(
            select(raw_items.c.item_id, raw_items.c.source, raw_items.c.received_at,
                   raw_items.c.reason,
                   func.substr(raw_items.c.payload, 1, 4000).label("payload"))
            .where(raw_items.c.state == "quarantined", raw_items.c.processed_at >= since)
            .order_by(raw_items.c.processed_at, raw_items.c.item_id)))

    def quarantined_between(self, start: datetime, end: datetime) -> int:
        return self.scalar(select(func.count()).select_from(raw_items).where(and_(
            raw_items.c.state == "quarantined", raw_items.c.processed_at >= start,
            raw_items.c.processed_at < end)))

    def item_counts(self) -> dict[str, int]:
        with self.reading() as connection:
            return {f"items_{state}": count for state, count in connection.execute(
                select(raw_items.c.state, func.count()).group_by(raw_items.c.state))}
