"""Contacts, their identities and blocking keys, and merges: the contact book
a batch of leads is matched against, loaded and written back."""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field, fields

from sqlalchemy import Connection, Integer, String, cast, delete, func, insert, select, update

from connectors.ledger.base import Bulk, LedgerBase, chunks, now, upsert
from connectors.ledger.database import lock
from connectors.ledger.schema import (
    block_keys,
    checkpoints,
    contact_merges,
    contacts,
    duplicate_pairs,
    identities,
    leads,
    orders,
    shared_identities,
)
from transforms.dedupe import (
    BLOCK_LIMIT,
    OPEN,
    ContactBook,
    Identity,
    Member,
    Merge,
    Pair,
    Sighting,
)
from transforms.identity_rules import IdentityRules
from transforms.matching import Evidence
from transforms.phones import split_identity
from transforms.records import Contact

CONTACT_FIELDS = [f.name for f in fields(Contact)]
# Contact matching and merging happen one batch at a time across all workers.
CONTACTS_LOCK = "contacts"
# The checkpoint (source, scope) that counts the transactions that may have
# changed contacts: the store's contact generation.
GENERATION = ("contacts", "generation")
# The most members a ledger keeps from one batch to the next (a few KB each).
KNOWN_MEMBERS = 100_000


def corrections_of(stored: str) -> dict[str, dict]:
    """A contact's corrections as kept: what people set, and what LeadHub had."""
    found = json.loads(stored or "{}")
    return {"corrected": found.get("to", {}), "base": found.get("was", {})}


def corrections_json(member: Member) -> str:
    if not member.corrected:
        return "{}"
    return json.dumps({"to": member.corrected, "was": member.base}, ensure_ascii=False,
                      sort_keys=True, default=str)


@dataclass
class _ContactRows:
    """The rows that write contacts back: new and known contacts, their
    identities and blocking keys."""

    new: list[dict] = field(default_factory=list)
    known: list[dict] = field(default_factory=list)
    identities: list[dict] = field(default_factory=list)
    block_keys: list[dict] = field(default_factory=list)

    def add(self, member: Member, stamp, merged_into: str | None = None,
            new: bool = False) -> None:
        # the fields one by one: asdict's deep copy costs more than the write
        values = {**{name: getattr(member.contact, name) for name in CONTACT_FIELDS},
                  "merged_into": merged_into, "updated_at": stamp,
                  "names": json.dumps(member.names, ensure_ascii=False),
                  "origin": member.origin, "owner": member.owner,
                  "corrected": corrections_json(member)}
        (self.new if new else self.known).append(values)
        if merged_into is not None:
            return
        for (kind, value), seen in member.identities.items():
            self.identities.append({
                "contact_key": member.key, "kind": kind, "value": value,
                "written": seen.written, "first_seen": seen.first_seen,
                "last_seen": seen.last_seen, "seen_in": seen.seen_in, "active": seen.active})
        self.block_keys += [{"key": key, "contact_key": member.key}
                            for key in sorted(member.block_keys)]


@dataclass
class _KnownMembers:
    """Live contacts as the store has them at `generation`, kept by this ledger
    so that the next batch need not read them again: those a batch read, and
    those it wrote (the book's members once its transaction committed). Each
    book gets copies (a book changes its members; these stay as committed),
    with their evidence for matching. Good while no one else has moved the
    generation on since."""

    generation: int = -1
    # the generation the current transaction leaves, once it commits
    taken: int = -1
    # least recently used first. An OrderedDict, not a dict: a dict's oldest
    # entry is found by walking past every slot deleted at its front, so
    # evicting from a full one cost more with every batch (a million-row
    # import: 9% of the writer's time at 450,000 leads).
    members: OrderedDict[str, Member] = field(default_factory=OrderedDict)
    evidence: dict[str, Evidence] = field(default_factory=dict)

    def fresh(self, before: int, after: int) -> None:
        """The contacts lock is taken: the store was at `before` (at this
        transaction's start), and is at `after` once it commits."""
        if before != self.generation:
            self.members.clear()
            self.evidence.clear()
            self.generation = before
        self.taken = after

    def copies(self, keys: list[str]) -> list[tuple[Member, Evidence | None]]:
        found = []
        for key in keys:
            member = self.members.get(key)
            if member is not None:
                self.members.move_to_end(key)  # the most recently used last
                found.append((_copy(member), self.evidence.get(key)))
        return found

    def committed(self, book: ContactBook) -> None:
        """The transaction that wrote `book` committed: its members are what
        the store has at the generation it left (the book is done with them)."""
        for key in book.retired:
            self.members.pop(key, None)
            self.evidence.pop(key, None)
        for key, member in book.members.items():
            self.members[key] = member
            self.members.move_to_end(key)
            evidence = book.known_evidence(key)
            if evidence is None:
                self.evidence.pop(key, None)
            else:
                self.evidence[key] = evidence
        while len(self.members) > KNOWN_MEMBERS:
            oldest, _ = self.members.popitem(last=False)
            self.evidence.pop(oldest, None)
        self.generation = self.taken


def _copy(member: Member) -> Member:
    return Member(_shallow(member.contact), {identity: _shallow(seen) for identity, seen in
                                             member.identities.items()},
                  set(member.block_keys), list(member.names), member.origin, member.owner,
                  dict(member.corrected), dict(member.base))


def _shallow(record: Contact | Sighting):
    """A copy of a dataclass of plain values: `copy.copy` goes through the
    pickling protocol, ten times slower, for every member of every batch."""
    twin = object.__new__(type(record))
    twin.__dict__.update(record.__dict__)
    return twin


def _upsert(table, index: list[str], columns: Iterable[str] | None = None):
    """INSERT ... ON CONFLICT (index) DO UPDATE SET these columns (every one
    the rows have, when not given) to the new row's."""
    def build(tx: Connection, keys: tuple[str, ...]):
        statement = upsert(tx, table)
        return statement.on_conflict_do_update(
            index_elements=index,
            set_={name: statement.excluded[name] for name in (keys if columns is None else columns)
                  if name not in index})
    return build


_INSERT_CONTACTS = Bulk(lambda tx, keys: insert(contacts))
_UPSERT_CONTACTS = Bulk(_upsert(contacts, ["contact_key"]))
_UPSERT_IDENTITIES = Bulk(_upsert(identities, ["contact_key", "kind", "value"],
                                  ("written", "first_seen", "last_seen", "seen_in", "active")))
_ADD_BLOCK_KEYS = Bulk(lambda tx, keys: upsert(tx, block_keys).on_conflict_do_nothing(
    index_elements=["key", "contact_key"]))


class Contacts(LedgerBase):
    _known: _KnownMembers | None = None

    def lock_contacts(self, tx: Connection) -> None:
        """Taken by every transaction that matches leads to contacts, so two
        workers cannot each create a contact for one person. Whoever takes
        it may change contacts: it moves the store's contact generation on."""
        lock(tx, CONTACTS_LOCK)
        after = self.contacts_changed(tx)
        self._known_members().fresh(after - 1, after)

    def contacts_changed(self, tx: Connection) -> int:
        """Move the store's contact generation on (one more, counted in the
        store, so two transactions never both see the same one) and return it:
        members kept from before it are read again."""
        statement = upsert(tx, checkpoints).values(
            source=GENERATION[0], scope=GENERATION[1], value="1", updated_at=now())
        return int(tx.execute(statement.on_conflict_do_update(
            index_elements=["source", "scope"],
            set_={"value": cast(cast(checkpoints.c.value, Integer) + 1, String),
                  "updated_at": statement.excluded.updated_at})
            .returning(checkpoints.c.value)).scalar_one())

    def remember_book(self, book: ContactBook) -> None:
        """After the transaction that wrote `book` committed: its members, the
        ones it loaded and the ones it wrote, are as the store has them."""
        self._known_members().committed(book)

    def _known_members(self) -> _KnownMembers:
        if self._known is None:
            self._known = _KnownMembers()
        return self._known

    def load_book(self, tx: Connection, rules: IdentityRules, given: Iterable[Identity],
                  keys: Iterable[str] = (), contacts_named: Iterable[str] = (),
                  filed: Iterable[str] = ()) -> ContactBook:
        """The live contacts that own any of these identities or blocking keys
        (and those named: a lead a person linked to its contact), with
        everything the book needs to match against them: their identities and
        keys, which identities are shared, people's decisions about pairs of
        them, and which blocking keys are full. `filed`: the keys the batch's
        leads are filed under, counted (not read) so that they fill up at
        their limit."""
        given, keys = sorted(set(given)), sorted(set(keys))
        sizes = self._block_sizes(tx, sorted(set(keys) | set(filed)))
        owners: set[str] = set(contacts_named)
        for kind in sorted({kind for kind, _ in given}):
            values = [value for each, value in given if each == kind]
            for chunk in chunks(values):
                owners |= set(tx.execute(select(identities.c.contact_key).where(
                    identities.c.kind == kind, identities.c.value.in_(chunk),
                    identities.c.active)).scalars())
        # A full block finds no candidates: its members are not loaded for it,
        # nor even read (counted in the store: a common surname with an initial
        # holds hundreds of contacts in a store of a million leads).
        full = {key for key, size in sizes.items() if size >= BLOCK_LIMIT}
        for some in chunks([key for key in keys if 0 < sizes.get(key, 0) < BLOCK_LIMIT]):
            owners.update(tx.execute(select(block_keys.c.contact_key)
                                     .where(block_keys.c.key.in_(some))).scalars())
        book = ContactBook(rules, full_blocks=full)
        members = []
        for member, evidence in self._members_of(tx, sorted(owners)):
            book.load(member, evidence)
            members.append(member)
        unseen = {key: size - len(book.by_block.get(key, ())) for key, size in sizes.items()
                  if key not in full}
        book.unseen_in_block = {key: count for key, count in unseen.items() if count > 0}
        every = set(given) | {identity for member in members for identity in member.identities}
        book.shared = self._shared(tx, every)
        book.decisions = self._decisions(tx, [member.key for member in members])
        return book

    def _block_sizes(self, tx: Connection, keys: list[str]) -> dict[str, int]:
        """How many live contacts each blocking key has in the store (a key
        with none is left out)."""
        sizes: dict[str, int] = {}
        for chunk in chunks(keys):
            sizes.update(tx.execute(select(block_keys.c.key, func.count())
                                    .where(block_keys.c.key.in_(chunk))
                                    .group_by(block_keys.c.key)).all())
        return sizes

    def _shared(self, tx: Connection, wanted: set[Identity]) -> dict[Identity, str]:
        found: dict[Identity, str] = {}
        for kind in sorted({kind for kind, _ in wanted}):
            values = sorted({value for each, value in wanted if each == kind}
                            | {split_identity(value)[0] for each, value in wanted
                               if each == kind == "phone"})
            for chunk in chunks(values):
                found.update({(kind, value): reason for value, reason in tx.execute(
                    select(shared_identities.c.value, shared_identities.c.reason).where(
                        shared_identities.c.kind == kind,
                        shared_identities.c.value.in_(chunk)))})
        return found

    def _decisions(self, tx: Connection, keys: list[str]) -> dict[frozenset[str], str]:
        found: dict[frozenset[str], str] = {}
        for chunk in chunks(keys):
            for column in (duplicate_pairs.c.contact_a, duplicate_pairs.c.contact_b):
                found.update({frozenset((a, b)): state for a, b, state in tx.execute(
                    select(duplicate_pairs.c.contact_a, duplicate_pairs.c.contact_b,
                           duplicate_pairs.c.state).where(column.in_(chunk)))})
        return found

    def _members_of(self, tx: Connection, keys: list[str]
                    ) -> list[tuple[Member, Evidence | None]]:
        """`_members` with their evidence when known, those this ledger kept
        from an earlier transaction of the same generation (under the contacts
        lock) not read again."""
        found = self._known_members().copies(keys)
        have = {member.key for member, _ in found}
        found += [(member, None) for member in
                  self._members(tx, [key for key in keys if key not in have])]
        return sorted(found, key=lambda pair: pair[0].key)

    def _members(self, tx: Connection, keys: list[str]) -> list[Member]:
        members: dict[str, Member] = {}
        for chunk in chunks(keys):
            # Found by key alone, the merged ones left out here: given
            # `merged_into IS NULL` too, SQLite walked the merged_into index
            # over every live contact for 50 keys or more (a store of 444,000
            # contacts: 0.86 s a chunk of 500, against 0.012 s by key).
            for row in tx.execute(select(contacts).where(contacts.c.contact_key.in_(chunk))
                                  ).mappings():
                if row["merged_into"] is not None:
                    continue
                members[row["contact_key"]] = Member(
                    contact=Contact(**{name: row[name] for name in CONTACT_FIELDS}),
                    names=json.loads(row["names"]), origin=row["origin"], owner=row["owner"],
                    **corrections_of(row["corrected"]))
            for row in tx.execute(select(identities).where(identities.c.contact_key.in_(chunk))
                                  ).mappings():
                if row["contact_key"] in members:
                    members[row["contact_key"]].identities[(row["kind"], row["value"])] = (
                        Sighting(row["written"], row["first_seen"], row["last_seen"],
                                 row["seen_in"], row["active"]))
            for row in tx.execute(select(block_keys).where(block_keys.c.contact_key.in_(chunk))):
                if row.contact_key in members:
                    members[row.contact_key].block_keys.add(row.key)
        return [members[key] for key in sorted(members)]

    def save_book(self, tx: Connection, book: ContactBook) -> None:
        """Write what the batch changed: merges first (the loser retired, its
        leads and orders to the survivor), then every changed contact with its
        identities and blocking keys, the identities found shared, and the
        possible duplicates for people."""
        stamp = now()
        for merge in book.merges:
            self._write_merge(tx, book, merge, stamp)
        rows = _ContactRows()
        for key in sorted(book.changed):
            rows.add(book.members[key], stamp, new=key in book.created)
        self._write_contacts(tx, rows)
        for (kind, value), reason in sorted(book.new_shared.items()):
            tx.execute(upsert(tx, shared_identities).values(
                kind=kind, value=value, reason=reason, marked_at=stamp)
                .on_conflict_do_nothing(index_elements=["kind", "value"]))
        self._write_pairs(tx, list(book.pairs.values()), stamp)
        self._write_closed_pairs(tx, list(book.closed_pairs.values()), stamp)

    def _write_merge(self, tx: Connection, book: ContactBook, merge: Merge, stamp) -> None:
        tx.execute(insert(contact_merges).values(
            survivor=merge.survivor, loser=merge.loser, reason=merge.reason,
            score=merge.score, decided_by=merge.decided_by, merged_at=stamp))
        self._write_contact(tx, book.retired[merge.loser], stamp, merged_into=merge.survivor,
                            new=merge.loser in book.created)
        tx.execute(delete(identities).where(identities.c.contact_key == merge.loser))
        tx.execute(delete(block_keys).where(block_keys.c.contact_key == merge.loser))
        for table in (leads, orders):
            tx.execute(update(table).where(table.c.contact_key == merge.loser)
                       .values(contact_key=merge.survivor))
        tx.execute(update(contacts).where(contacts.c.merged_into == merge.loser)
                   .values(merged_into=merge.survivor))
        # One statement a side, found by the contact's index: given `a OR b`,
        # or the state as a plain column, SQLite walked every open pair by the
        # state index (a store of a million leads has 200,000); `state || ''`
        # is SQLite's documented way to keep a term off an index.
        for side in (duplicate_pairs.c.contact_a, duplicate_pairs.c.contact_b):
            tx.execute(update(duplicate_pairs).where(side == merge.loser,
                                                     duplicate_pairs.c.state + "" == OPEN)
                       .values(state="merged", updated_at=stamp))

    def _write_pairs(self, tx: Connection, pairs: list[Pair], stamp) -> None:
        if not pairs:
            return
        statement = upsert(tx, duplicate_pairs)
        tx.execute(statement.on_conflict_do_update(
            index_elements=["contact_a", "contact_b"],
            set_={"score": statement.excluded.score, "reasons": statement.excluded.reasons,
                  "updated_at": statement.excluded.updated_at},
            where=duplicate_pairs.c.state == OPEN), [
            {"contact_a": pair.a, "contact_b": pair.b, "score": pair.score,
             "reasons": json.dumps(list(pair.reasons), ensure_ascii=False), "state": OPEN,
             "found_at": stamp, "updated_at": stamp} for pair in pairs])

    def _write_closed_pairs(self, tx: Connection, pairs: list[Pair], stamp) -> None:
        """Pairs found and closed by a merge in one batch. One the store had
        open is closed by the merge already (`_write_merge`): left as it is."""
        if pairs:
            tx.execute(upsert(tx, duplicate_pairs).on_conflict_do_nothing(
                index_elements=["contact_a", "contact_b"]), [
                {"contact_a": pair.a, "contact_b": pair.b, "score": pair.score,
                 "reasons": json.dumps(list(pair.reasons), ensure_ascii=False),
                 "state": "merged", "found_at": stamp, "updated_at": stamp} for pair in pairs])

    def _write_contact(self, tx: Connection, member: Member, stamp,
                       merged_into: str | None = None, new: bool = False) -> None:
        rows = _ContactRows()
        rows.add(member, stamp, merged_into=merged_into, new=new)
        self._write_contacts(tx, rows)

    def _write_contacts(self, tx: Connection, rows: _ContactRows) -> None:
        """Contacts with their identities and blocking keys, one prepared
        statement each for all of them (`Bulk`)."""
        # a new contact's id must be free: an insert, never an overwrite
        _INSERT_CONTACTS.execute(tx, rows.new)
        _UPSERT_CONTACTS.execute(tx, rows.known)
        _UPSERT_IDENTITIES.execute(tx, rows.identities)
        _ADD_BLOCK_KEYS.execute(tx, rows.block_keys)

    def contact_key_for(self, kind: str, value: str) -> str | None:
        """The live contact that owns this phone or email, if any (the one seen
        first, when several people share it)."""
        return self.scalar(
            select(contacts.c.contact_key)
            .select_from(identities.join(contacts,
                                         contacts.c.contact_key == identities.c.contact_key))
            .where(identities.c.kind == kind, identities.c.value == value,
                   identities.c.active, contacts.c.merged_into.is_(None))
            .order_by(contacts.c.first_seen, contacts.c.contact_key).limit(1))

    def contact_counts(self) -> dict[str, int]:
        with self.reading() as connection:
            live = connection.execute(select(func.count()).select_from(contacts)
                                      .where(contacts.c.merged_into.is_(None))).scalar()
            merged = connection.execute(select(func.count()).select_from(contacts)
                                        .where(contacts.c.merged_into.is_not(None))).scalar()
        return {"contacts": live, "contacts_merged": merged}
