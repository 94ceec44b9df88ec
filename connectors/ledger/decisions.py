"""What people decide about who is who, and what a contact is made of: merge
two contacts, keep two apart, undo a merge or take leads out of a contact,
re-examine the whole book after a rule change, and the story of one contact
(why each of its leads is there)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace

from sqlalchemy import Connection, delete, func, or_, select, update

from connectors.ledger.base import LedgerBase, chunks, now, upsert
from connectors.ledger.leads import lead_from_row
from connectors.ledger.schema import (
    block_keys,
    contact_merges,
    contacts,
    duplicate_pairs,
    identities,
    leads,
    shared_identities,
)
from leadhub.errors import FatalError
from transforms.dedupe import (
    DIFFERENT,
    OPEN,
    SAME,
    ContactBook,
    Member,
    Sighting,
    contact_from_leads,
    identities_of,
    member_block_keys,
    member_query_keys,
    new_contact_key,
)
from transforms.emails import canonical_email
from transforms.identity_rules import IdentityRules


@dataclass
class Proposal:
    """What a rescan found: a merge to make, or a pair for people."""

    survivor: str
    other: str
    score: float
    reasons: tuple[str, ...]
    merge: bool


@dataclass
class Story:
    contact: dict
    identities: list[dict] = field(default_factory=list)
    leads: list[dict] = field(default_factory=list)
    merges: list[dict] = field(default_factory=list)
    pairs: list[dict] = field(default_factory=list)


class Decisions(LedgerBase):
    def live_key(self, tx: Connection, key: str) -> str:
        """The contact a key stands for now (a merged contact: its survivor)."""
        row = tx.execute(select(contacts.c.contact_key, contacts.c.merged_into)
                         .where(contacts.c.contact_key == key)).first()
        if row is None:
            raise FatalError(f"there is no contact {key}: `leadhub contacts show` takes the id"
                             " from the Contact key column (C-...)")
        return row.merged_into or row.contact_key

    def merge_contacts(self, rules: IdentityRules, a: str, b: str, by: str = "person") -> str:
        """People say a and b are one person: merged into the one seen first.
        Returns the survivor."""
        with self.transaction() as tx:
            self.lock_contacts(tx)
            a, b = self.live_key(tx, a), self.live_key(tx, b)
            if a == b:
                return a
            book = self._book_of(tx, rules, [a, b])
            survivor, loser = sorted((a, b), key=lambda key: _first(book.members[key]))
            book.merge(loser, into=survivor, reason="a person's decision", decided_by=by)
            self.save_book(tx, book)
            self._decide(tx, a, b, SAME, by)
        return survivor

    def keep_apart(self, a: str, b: str, by: str = "person") -> None:
        """People say a and b are two people: never merged, never asked again."""
        with self.transaction() as tx:
            self.lock_contacts(tx)
            live_a, live_b = self.live_key(tx, a), self.live_key(tx, b)
            if live_a == live_b:
                raise FatalError(f"{a} and {b} are one contact now: undo the merge with"
                                 f" `leadhub contacts split {a if a != live_a else b}`")
            self._decide(tx, live_a, live_b, DIFFERENT, by)

    def _decide(self, tx: Connection, a: str, b: str, state: str, by: str) -> None:
        first, second = sorted((a, b))
        stamp = now()
        statement = upsert(tx, duplicate_pairs).values(
            contact_a=first, contact_b=second, score=1.0 if state == SAME else 0.0,
            reasons="[]", state=state, decided_by=by, decided_at=stamp, found_at=stamp,
            updated_at=stamp)
        tx.execute(statement.on_conflict_do_update(
            index_elements=["contact_a", "contact_b"],
            set_={"state": state, "decided_by": by, "decided_at": stamp, "updated_at": stamp}))

    def split(self, rules: IdentityRules, key: str, lead_ids: Iterable[str] = (),
              by: str = "person") -> str:
        """Undo a wrong merge: `key` is the contact that was merged away; it and
        every contact merged into it come back, with the leads that came with
        them. With `lead_ids`, those leads leave their contact for a new one.
        The two are kept apart from then on. Returns the contact that left."""
        lead_ids = list(lead_ids)
        with self.transaction() as tx:
            self.lock_contacts(tx)
            if lead_ids:
                survivor, left = self._detach(tx, key, lead_ids)
            else:
                survivor, left = self._undo_merge(tx, key)
            for contact_key in (survivor, left):
                self._rebuild(tx, rules, contact_key)
            self._decide(tx, survivor, left, DIFFERENT, by)
        return left

    def _undo_merge(self, tx: Connection, loser: str) -> tuple[str, str]:
        row = tx.execute(select(contacts.c.merged_into).where(contacts.c.contact_key == loser)
                         ).first()
        if row is None:
            raise FatalError(f"there is no contact {loser}")
        if row.merged_into is None:
            raise FatalError(f"{loser} was not merged into another contact: name the contact"
                             " that was merged away, or the leads to take out (--lead)")
        survivor = row.merged_into
        family = self._merged_under(tx, loser)
        stamp = now()
        tx.execute(update(contact_merges).where(contact_merges.c.loser.in_(family | {loser}),
                                                contact_merges.c.undone_at.is_(None),
                                                contact_merges.c.loser == loser)
                   .values(undone_at=stamp))
        tx.execute(update(contacts).where(contacts.c.contact_key == loser)
                   .values(merged_into=None, updated_at=stamp))
        for chunk in chunks(sorted(family)):
            tx.execute(update(contacts).where(contacts.c.contact_key.in_(chunk))
                       .values(merged_into=loser, updated_at=stamp))
        for chunk in chunks(sorted(family | {loser})):
            tx.execute(update(leads).where(leads.c.first_contact_key.in_(chunk),
                                           leads.c.contact_key == survivor)
                       .values(contact_key=loser))
        return survivor, loser

    def _merged_under(self, tx: Connection, key: str) -> set[str]:
        """Every contact merged into `key` (directly or through others), by the
        merge log, not counting merges undone."""
        found: set[str] = set()
        frontier = {key}
        while frontier:
            below = set(tx.execute(select(contact_merges.c.loser).where(
                contact_merges.c.survivor.in_(sorted(frontier)),
                contact_merges.c.undone_at.is_(None))).scalars()) - found - {key}
            found |= below
            frontier = below
        return found

    def _detach(self, tx: Connection, key: str, lead_ids: list[str]) -> tuple[str, str]:
        survivor = self.live_key(tx, key)
        found = set(tx.execute(select(leads.c.lead_id).where(
            leads.c.lead_id.in_(lead_ids), leads.c.contact_key == survivor)).scalars())
        missing = sorted(set(lead_ids) - found)
        if missing:
            raise FatalError(f"{', '.join(missing)}: not a lead of {survivor}"
                             " (`leadhub contacts show` lists them)")
        total = tx.execute(select(func.count()).select_from(leads)
                           .where(leads.c.contact_key == survivor)).scalar()
        if len(found) == total:
            raise FatalError(f"those are all the leads of {survivor}: nothing would be left")
        left = new_contact_key(sorted(found)[0])
        stamp = now()
        existing = tx.execute(select(contacts.c.contact_key).where(
            contacts.c.contact_key == left)).first()
        if existing:
            tx.execute(update(contacts).where(contacts.c.contact_key == left)
                       .values(merged_into=None, updated_at=stamp))
        else:
            tx.execute(contacts.insert().values(contact_key=left, updated_at=stamp))
        tx.execute(update(leads).where(leads.c.lead_id.in_(sorted(found)))
                   .values(contact_key=left, first_contact_key=left))
        return survivor, left

    def _rebuild(self, tx: Connection, rules: IdentityRules, key: str) -> None:
        """A contact's LeadHub fields, identities and blocking keys again from its
        leads alone (after a split)."""
        own = [lead_from_row(row) for row in tx.execute(
            select(leads).where(leads.c.contact_key == key)).mappings()]
        contact = contact_from_leads(key, own)
        names = [lead.name for lead in sorted(own, key=lambda lead: lead.received_at,
                                              reverse=True) if lead.name]
        member = Member(contact, names=list(dict.fromkeys(names))[:5])
        for lead in sorted(own, key=lambda lead: lead.received_at):
            for identity, written in identities_of(lead, rules).items():
                if identity in member.identities:
                    member.identities[identity].seen_again(lead.received_at)
                else:
                    member.identities[identity] = Sighting(written, lead.received_at,
                                                           lead.received_at, lead.lead_id)
        member.block_keys = member_block_keys(member, rules)
        tx.execute(delete(identities).where(identities.c.contact_key == key,
                                            identities.c.seen_in.not_like("sink:%")))
        tx.execute(delete(block_keys).where(block_keys.c.contact_key == key))
        self._write_contact(tx, member, now())

    def _book_of(self, tx: Connection, rules: IdentityRules, keys: list[str]) -> ContactBook:
        book = ContactBook(rules)
        for member in self._members(tx, sorted(keys)):
            book.load(member)
        return book

    # --- re-examining the whole book ------------------------------------------------

    def rescan(self, rules: IdentityRules, apply: bool,
               progress: Callable[[str, int, int], None] | None = None,
               chunk: int = 500) -> list[Proposal]:
        """Compare every contact with its candidates again (after a rule change,
        or for a store from before these rules). First each contact's index is
        brought up to the rules (its mailboxes in their canonical form, its
        blocking keys): that changes no contact. Then pairs above the match
        threshold merge (with `apply`) and pairs in the uncertain band go to
        people; without `apply` nothing more is written."""
        keys = [row[0] for row in self._live_keys()]
        for start in range(0, len(keys), chunk):
            with self.transaction() as tx:
                self.lock_contacts(tx)
                self._reindex(tx, rules, keys[start:start + chunk])
            if progress:
                progress("index", min(start + chunk, len(keys)), len(keys))
        proposals: list[Proposal] = []
        seen_pairs: set[frozenset[str]] = set()
        for start in range(0, len(keys), chunk):
            with self.transaction() as tx:
                self.lock_contacts(tx)
                proposals += self._rescan_chunk(tx, rules, keys[start:start + chunk], apply,
                                                seen_pairs)
            if progress:
                progress("compare", min(start + chunk, len(keys)), len(keys))
        return proposals

    def _reindex(self, tx: Connection, rules: IdentityRules, keys: list[str]) -> None:
        for member in self._members(tx, keys):
            canonical: dict = {}
            for (kind, value), seen in member.identities.items():
                if kind == "email":
                    value = canonical_email(seen.written or value, rules) or value
                if (kind, value) in canonical:
                    canonical[(kind, value)].seen_again(seen.first_seen)
                    canonical[(kind, value)].seen_again(seen.last_seen)
                else:
                    canonical[(kind, value)] = replace(seen)
            member.identities = canonical
            member.block_keys = member_block_keys(member, rules)
            tx.execute(delete(identities).where(identities.c.contact_key == member.key))
            tx.execute(delete(block_keys).where(block_keys.c.contact_key == member.key))
            self._write_contact(tx, member, now())

    def _live_keys(self) -> list[tuple]:
        with self.reading() as connection:
            return connection.execute(
                select(contacts.c.contact_key).where(contacts.c.merged_into.is_(None))
                .order_by(contacts.c.first_seen, contacts.c.contact_key)).all()

    def _rescan_chunk(self, tx: Connection, rules: IdentityRules, keys: list[str], apply: bool,
                      seen_pairs: set[frozenset[str]]) -> list[Proposal]:
        mine = self._members(tx, keys)
        looked_up = {member.key: member_query_keys(member, rules) for member in mine}
        book = self.load_book(tx, rules, {i for member in mine for i in member.identities},
                              {key for keys_of in looked_up.values() for key in keys_of})
        proposals: list[Proposal] = []
        for member in mine:
            if member.key not in book.members:
                continue  # merged away earlier in this rescan
            candidates: set[str] = set()
            for identity in member.identities:
                candidates |= book.by_identity.get(identity, set())
            for key in looked_up[member.key]:
                candidates |= book.block_members(key)
            for other in sorted(candidates - {member.key}):
                pair = frozenset((member.key, other))
                if pair in seen_pairs or other not in book.members or member.key not in (
                        book.members):
                    continue
                seen_pairs.add(pair)
                if book.decisions.get(pair) in (SAME, DIFFERENT):
                    continue
                found = book.compare_with(book.evidence_of(member.key), other)
                if found.decision == "distinct":
                    continue
                merge = found.decision == "match" and book.may_merge(member.key, other)
                survivor, loser = sorted((member.key, other),
                                         key=lambda key: _first(book.members[key]))
                proposals.append(Proposal(survivor, loser, found.probability,
                                          tuple(found.reasons), merge))
                if not apply:
                    continue
                if merge:
                    book.merge(loser, into=survivor, reason="; ".join(found.reasons[:3]),
                               score=found.probability, decided_by="rescan")
                else:
                    book.propose(member.key, other, found)
        if apply:
            self.save_book(tx, book)
        return proposals

    # --- the story of one contact --------------------------------------------------

    def story(self, key: str) -> Story:
        with self.reading() as tx:
            live = self.live_key(tx, key)
            contact = dict(tx.execute(select(contacts).where(contacts.c.contact_key == live)
                                      ).mappings().one())
            story = Story(contact=contact)
            shared = dict(((kind, value), reason) for kind, value, reason in tx.execute(
                select(shared_identities.c.kind, shared_identities.c.value,
                       shared_identities.c.reason)))
            for row in tx.execute(select(identities).where(identities.c.contact_key == live)
                                  .order_by(identities.c.first_seen)).mappings():
                base = row["value"].split(";")[0]
                story.identities.append({**row, "shared": shared.get(
                    (row["kind"], row["value"])) or shared.get((row["kind"], base), "")})
            story.leads = [dict(row) for row in tx.execute(
                select(leads.c.lead_id, leads.c.received_at, leads.c.channel, leads.c.name,
                       leads.c.phone, leads.c.email, leads.c.match_reason,
                       leads.c.first_contact_key)
                .where(leads.c.contact_key == live).order_by(leads.c.received_at)).mappings()]
            story.merges = [dict(row) for row in tx.execute(
                select(contact_merges).where(or_(contact_merges.c.survivor == live,
                                                 contact_merges.c.loser == live))
                .order_by(contact_merges.c.merged_at)).mappings()]
            story.pairs = [dict(row) for row in tx.execute(
                select(duplicate_pairs).where(or_(duplicate_pairs.c.contact_a == live,
                                                  duplicate_pairs.c.contact_b == live))
                ).mappings()]
        return story

    def duplicate_pairs(self, states: tuple[str, ...] = (OPEN,)) -> Iterator[dict]:
        """Possible duplicates with both contacts' fields, the most likely first."""
        a, b = contacts.alias("a"), contacts.alias("b")
        query = (
            select(duplicate_pairs.c.contact_a, duplicate_pairs.c.contact_b,
                   duplicate_pairs.c.score, duplicate_pairs.c.reasons, duplicate_pairs.c.state,
                   duplicate_pairs.c.decided_by, duplicate_pairs.c.found_at,
                   a.c.name.label("name_a"), a.c.phone_display.label("phone_a"),
                   a.c.email.label("email_a"), a.c.company.label("company_a"),
                   b.c.name.label("name_b"), b.c.phone_display.label("phone_b"),
                   b.c.email.label("email_b"), b.c.company.label("company_b"))
            .select_from(duplicate_pairs.join(a, a.c.contact_key == duplicate_pairs.c.contact_a)
                         .join(b, b.c.contact_key == duplicate_pairs.c.contact_b))
            .where(duplicate_pairs.c.state.in_(states))
            .order_by(duplicate_pairs.c.score.desc(), duplicate_pairs.c.contact_a,
                      duplicate_pairs.c.contact_b))
        for row in self.iter_rows(query):
            yield {**row, "reasons": json.loads(row["reasons"])}


def _first(member: Member) -> tuple:
    moment = member.contact.first_seen
    return (moment.timestamp() if moment else float("inf"), member.key)
