"""Contacts, their identities and blocking keys, and merges: the contact book
a batch of leads is matched against, loaded and written back."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, fields

from sqlalchemy import Connection, delete, func, insert, select, update

from connectors.ledger.base import LedgerBase, chunks, now, upsert
from connectors.ledger.database import lock
from connectors.ledger.schema import (
    block_keys,
    contact_merges,
    contacts,
    identities,
    leads,
    orders,
)
from transforms.dedupe import ContactBook, Identity, Member, Sighting
from transforms.records import Contact

CONTACT_FIELDS = [f.name for f in fields(Contact)]
# Contact matching and merging happen one batch at a time across all workers.
CONTACTS_LOCK = "contacts"


class Contacts(LedgerBase):
    def lock_contacts(self, tx: Connection) -> None:
        """Taken by every transaction that matches leads to contacts, so two
        workers cannot each create a contact for one person."""
        lock(tx, CONTACTS_LOCK)

    def load_book(self, tx: Connection, given: Iterable[Identity],
                  keys: Iterable[str] = ()) -> ContactBook:
        """The live contacts that own any of these identities or blocking keys,
        with everything the book needs to match against them."""
        given, keys = sorted(set(given)), sorted(set(keys))
        owners: set[str] = set()
        for kind in sorted({kind for kind, _ in given}):
            values = [value for each, value in given if each == kind]
            for chunk in chunks(values):
                owners |= set(tx.execute(select(identities.c.contact_key).where(
                    identities.c.kind == kind, identities.c.value.in_(chunk),
                    identities.c.active)).scalars())
        for chunk in chunks(keys):
            owners |= set(tx.execute(select(block_keys.c.contact_key)
                                     .where(block_keys.c.key.in_(chunk))).scalars())
        book = ContactBook()
        for member in self._members(tx, sorted(owners)):
            book.load(member)
        return book

    def _members(self, tx: Connection, keys: list[str]) -> list[Member]:
        members: dict[str, Member] = {}
        for chunk in chunks(keys):
            for row in tx.execute(select(contacts).where(contacts.c.contact_key.in_(chunk),
                                                         contacts.c.merged_into.is_(None))
                                  ).mappings():
                members[row["contact_key"]] = Member(
                    contact=Contact(**{name: row[name] for name in CONTACT_FIELDS}),
                    names=json.loads(row["names"]))
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
        identities and blocking keys."""
        stamp = now()
        for merge in book.merges:
            tx.execute(insert(contact_merges).values(
                survivor=merge.survivor, loser=merge.loser, reason=merge.reason,
                score=merge.score, decided_by=merge.decided_by, merged_at=stamp))
            self._write_contact(tx, book.retired[merge.loser], stamp, merged_into=merge.survivor)
            tx.execute(delete(identities).where(identities.c.contact_key == merge.loser))
            tx.execute(delete(block_keys).where(block_keys.c.contact_key == merge.loser))
            for table in (leads, orders):
                tx.execute(update(table).where(table.c.contact_key == merge.loser)
                           .values(contact_key=merge.survivor))
            tx.execute(update(contacts).where(contacts.c.merged_into == merge.loser)
                       .values(merged_into=merge.survivor))
        for key in sorted(book.changed):
            self._write_contact(tx, book.members[key], stamp)

    def _write_contact(self, tx: Connection, member: Member, stamp,
                       merged_into: str | None = None) -> None:
        values = {**asdict(member.contact), "merged_into": merged_into, "updated_at": stamp,
                  "names": json.dumps(member.names, ensure_ascii=False)}
        statement = upsert(tx, contacts).values(**values)
        tx.execute(statement.on_conflict_do_update(
            index_elements=["contact_key"],
            set_={name: statement.excluded[name] for name in values if name != "contact_key"}))
        if merged_into is not None:
            return
        for (kind, value), seen in member.identities.items():
            row = {"contact_key": member.key, "kind": kind, "value": value,
                   "written": seen.written, "first_seen": seen.first_seen,
                   "last_seen": seen.last_seen, "seen_in": seen.seen_in, "active": seen.active}
            statement = upsert(tx, identities).values(**row)
            tx.execute(statement.on_conflict_do_update(
                index_elements=["contact_key", "kind", "value"],
                set_={name: statement.excluded[name]
                      for name in ("written", "first_seen", "last_seen", "active")}))
        for key in sorted(member.block_keys):
            tx.execute(upsert(tx, block_keys).values(key=key, contact_key=member.key)
                       .on_conflict_do_nothing(index_elements=["key", "contact_key"]))

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
