"""Who is who: the contact book a batch of leads is matched against.

The store loads the contacts a batch could belong to (by identity and by
blocking key) into a `ContactBook`; each lead is resolved against them and
applied, and the book remembers what changed for the store to write:
contacts, their identities and blocking keys, merges (so they can be undone),
identities found to be shared, and pairs for people to decide.

A lead is compared with every candidate (transforms.matching: a
Fellegi-Sunter weight from names, phones, emails, company, city). It joins the
best candidate above the match threshold; other candidates above it that are
compatible with the best are merged in. A phone or email the lead shares with
a contact whose name is incompatible (a colleague behind the office line, a
wife on the family mailbox) does not join them: the lead gets a contact of its
own and the identity is marked shared, so it weighs less from then on.
Candidates in the uncertain band become "possible duplicate" pairs for people;
a pair people decided is never asked about again.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import lru_cache
from itertools import islice
from typing import Any

from transforms.emails import canonical_email, mailbox_kind
from transforms.identity_rules import IdentityRules
from transforms.matching import (
    Comparison,
    Evidence,
    combine_evidence,
    company_key,
    compare,
    evidence_from_lead,
    evidence_of,
)
from transforms.person_names import (
    NameLevel,
    PersonName,
    compare_names,
    name_block_keys,
    name_query_keys,
    parse_person_name,
    surname_keys,
)
from transforms.phones import phone_identity, split_identity
from transforms.records import Contact, Lead

Identity = tuple[str, str]
NAMES_KEPT = 5
# A blocking key shared by this many contacts says too little to be worth
# comparing with each: it takes no more members and finds no candidates. Five
# namesakes (a surname and first name, or a surname at one firm) are already
# more than the name can tell apart without a phone or an email, and comparing
# with each would only fill the review queue; a common name's key fills up as
# the book grows, so a lead meets about as many candidates at a million
# contacts as at ten thousand. The full name with its patronymic, the surname
# with the company and the phone line still narrow a common name.
BLOCK_LIMIT = 5
SAME, DIFFERENT, OPEN = "same", "different", "open"


@dataclass
class Sighting:
    """One identity of a contact: as written, when first and last seen, and
    the lead (or CRM row) it came from first."""

    written: str
    first_seen: datetime | None
    last_seen: datetime | None
    seen_in: str
    active: bool = True

    def seen_again(self, moment: datetime | None, where: str = "",
                   written: str = "") -> None:
        """`where` (and how it was `written` there) becomes where it was first
        seen when it is earlier: a history imported later, or a batch read in
        another order, gives the same answer."""
        if where and moment is not None and (
                self.first_seen is None or (moment, where) < (self.first_seen, self.seen_in)):
            self.seen_in, self.written = where, written or self.written
        self.first_seen = _earliest(self.first_seen, moment)
        self.last_seen = _latest(self.last_seen, moment)


@dataclass
class Member:
    contact: Contact
    identities: dict[Identity, Sighting] = field(default_factory=dict)
    block_keys: set[str] = field(default_factory=set)
    # the names it was written under, newest first
    names: list[str] = field(default_factory=list)
    # "" for LeadHub's own; "sink:NAME:ROW" for a contact a person typed there
    origin: str = ""
    # who works the contact (read back from the CRM, or assigned with its first lead)
    owner: str = ""
    # fields a person corrected in the CRM, by name: they win over the leads'
    corrected: dict[str, Any] = field(default_factory=dict)
    # LeadHub's own values of those fields (back in force if a person empties theirs)
    base: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return self.contact.contact_key

    def with_corrections(self, contact: Contact) -> Contact:
        return replace(contact, **{name: value for name, value in self.corrected.items()
                                   if hasattr(contact, name)}) if self.corrected else contact

    def own_values(self) -> Contact:
        """The contact as its leads make it, without people's corrections
        (the contact itself when no one corrected it: callers do not change it)."""
        if not self.base:
            return self.contact
        return replace(self.contact, **{name: value for name, value in self.base.items()
                                        if hasattr(self.contact, name)})


@dataclass(frozen=True)
class Merge:
    survivor: str
    loser: str
    reason: str
    score: float | None = None
    decided_by: str = "rule"


@dataclass(frozen=True)
class Pair:
    """Two contacts that may be one person: for people to decide."""

    a: str
    b: str
    score: float
    reasons: tuple[str, ...]


@dataclass
class Resolution:
    contact_key: str
    is_new: bool
    reason: str = ""
    score: float | None = None
    merged: list[str] = field(default_factory=list)
    # identities the lead shares with people it is not: to mark shared
    shared: dict[Identity, str] = field(default_factory=dict)
    # contacts that may be the same person as the resolved one
    maybe: list[tuple[str, Comparison]] = field(default_factory=list)


def new_contact_key(founding_lead_id: str) -> str:
    """A contact's own id: stable, not a phone (phones change and are shared),
    the same for the same founding lead (a replay gives the same ids)."""
    digest = hashlib.sha256(founding_lead_id.encode("utf-8", "surrogatepass")).digest()
    # 12 letters are the first 60 bits: base32 of the first 10 bytes begins
    # with the same 16 letters as that of the whole digest, at a third of the cost
    return "C-" + base64.b32encode(digest[:10]).decode()[:12]


def identities_of(lead: Lead, rules: IdentityRules) -> dict[Identity, str]:
    """The identities a lead gives (identity -> as written): its main phone
    with its extension, and its mailbox (Gmail dots and Yandex domains read
    as one). A second phone in a signature is often the office switchboard
    shared by many, so only the main one identifies."""
    found: dict[Identity, str] = {}
    if lead.phone_valid:
        found[("phone", phone_identity(lead.phone, lead.phone_extension))] = (
            lead.phone_display or lead.phone)
    mailbox = canonical_email(lead.email, rules) if lead.email else ""
    if mailbox:
        found[("email", mailbox)] = lead.email
    return found


def lookups_of(lead: Lead, rules: IdentityRules) -> set[Identity]:
    """What to look a lead's contacts up by: its identities, and its address
    as written (stores from before canonical mailboxes keep that form)."""
    found = set(identities_of(lead, rules))
    if lead.email:
        found.add(("email", lead.email))
    return found


def block_keys_of(lead: Lead, rules: IdentityRules) -> set[str]:
    """The keys a lead files its contact under, to be found by a later lead
    that shares no identity with it: its name's keys, its surname with its
    company (for when the name alone is too common to block on), and its
    phone line without the extension (the colleagues behind one switchboard)."""
    return _keys(parse_person_name(lead.name, rules), lead.company, lead, name_block_keys)


def query_keys_of(lead: Lead, rules: IdentityRules) -> set[str]:
    """The keys to look up the contacts a lead may belong to (what
    `block_keys_of` files them under)."""
    return _keys(parse_person_name(lead.name, rules), lead.company, lead, name_query_keys)


@dataclass(frozen=True)
class LeadFacts:
    """What matching needs of a lead alone, worked out once: its identities,
    what to look its contacts up by, the keys to file it under, its evidence."""

    identities: Mapping[Identity, str]
    lookups: frozenset[Identity]
    query_keys: frozenset[str]
    block_keys: frozenset[str]
    evidence: Evidence


def lead_facts(lead: Lead, rules: IdentityRules) -> LeadFacts:
    return LeadFacts(identities_of(lead, rules), frozenset(lookups_of(lead, rules)),
                     frozenset(query_keys_of(lead, rules)), frozenset(block_keys_of(lead, rules)),
                     evidence_from_lead(lead, rules))


def member_block_keys(member: Member, rules: IdentityRules) -> set[str]:
    return _member_keys(member, rules, name_block_keys)


def member_query_keys(member: Member, rules: IdentityRules) -> set[str]:
    return _member_keys(member, rules, name_query_keys)


def _keys(name: PersonName, company: str, lead: Lead,
          name_keys: Callable[[PersonName], set[str]]) -> set[str]:
    keys = set(_name_keys(name, company, name_keys))
    if lead.phone_valid:
        keys.add(f"t:{lead.phone}")
    return keys


def _member_keys(member: Member, rules: IdentityRules,
                 name_keys: Callable[[PersonName], set[str]]) -> set[str]:
    keys: set[str] = set()
    for name in member.names:
        keys |= _name_keys(parse_person_name(name, rules), member.contact.company, name_keys)
    keys |= {f"t:{split_identity(value)[0]}" for kind, value in member.identities
             if kind == "phone"}
    return keys


# A lead's keys are looked up for its batch's book and again to match it, and
# the same name at the same firm recurs: worked out once (a few hundred bytes each).
@lru_cache(maxsize=65536)
def _name_keys(name: PersonName, company: str,
               name_keys: Callable[[PersonName], set[str]]) -> frozenset[str]:
    keys = {f"n:{key}" for key in name_keys(name)}
    firm = company_key(company) if company else ""
    if firm:
        keys |= {f"c:{surname}|{firm}" for surname in surname_keys(name)}
    return frozenset(keys)


def shared_reason(identity: Identity, rules: IdentityRules) -> str:
    kind, value = identity
    if kind == "phone":
        return "a phone several people give (an office line)"
    found = mailbox_kind(value, rules)
    if found == "role":
        return "a role mailbox several people write from"
    if found == "family":
        return "a family mailbox"
    return "a mailbox several people write from"


@dataclass
class ContactBook:
    """The contacts a batch may touch, and what the batch changed."""

    rules: IdentityRules = field(default_factory=IdentityRules)
    members: dict[str, Member] = field(default_factory=dict)
    by_identity: dict[Identity, set[str]] = field(default_factory=dict)
    by_block: dict[str, set[str]] = field(default_factory=dict)
    # identities known to be used by several people, and why
    shared: dict[Identity, str] = field(default_factory=dict)
    # people's decisions about pairs of contacts: same, different, open
    decisions: dict[frozenset[str], str] = field(default_factory=dict)
    # blocking keys that have as many contacts as they may hold
    full_blocks: set[str] = field(default_factory=set)
    # contacts of the store a blocking key has that the book did not load
    # (keys it only files leads under): they count towards its limit, so a key
    # fills up at the same lead whatever the batches were
    unseen_in_block: dict[str, int] = field(default_factory=dict)
    # what the store writes afterwards
    changed: set[str] = field(default_factory=set)
    created: set[str] = field(default_factory=set)
    merges: list[Merge] = field(default_factory=list)
    retired: dict[str, Member] = field(default_factory=dict)
    new_shared: dict[Identity, str] = field(default_factory=dict)
    pairs: dict[frozenset[str], Pair] = field(default_factory=dict)
    # pairs found here whose contact a merge here then retired: the store keeps
    # them closed ("merged"), as it closes such a pair a batch before wrote
    closed_pairs: dict[frozenset[str], Pair] = field(default_factory=dict)
    _evidence: dict[str, Evidence] = field(default_factory=dict, repr=False)
    # the values of `shared`, kept up as it grows, and which dict and how much of it
    _shared_values_of: tuple[int, int] = field(default=(0, 0), repr=False)
    _shared_value_set: set[str] = field(default_factory=set, repr=False)
    # the pairs each contact is in, so a merge finds the loser's without walking all
    _pairs_of: dict[str, set[frozenset[str]]] = field(default_factory=dict, repr=False)

    @property
    def contacts(self) -> dict[str, Contact]:
        return {key: member.contact for key, member in self.members.items()}

    @property
    def merged_into(self) -> dict[str, str]:
        return {merge.loser: merge.survivor for merge in self.merges}

    def load(self, member: Member, evidence: Evidence | None = None) -> None:
        """Put a contact known elsewhere (the store) into the book, unchanged,
        with its evidence when that is known already."""
        self.members[member.key] = member
        if evidence is not None:
            self._evidence[member.key] = evidence
        self._index(member)

    def add(self, lead: Lead) -> Resolution:
        facts = lead_facts(lead, self.rules)
        return self.apply(self.resolve(lead, facts), lead, facts)

    # --- deciding --------------------------------------------------------------

    def resolve(self, lead: Lead, facts: LeadFacts | None = None) -> Resolution:
        """Which contact the lead belongs to, what it merges, what it shows to be
        shared, and what may be the same person, without changing the book
        (the store writes the lead first, then `apply`). `facts`: the lead's
        (`lead_facts`), when worked out already."""
        facts = facts or lead_facts(lead, self.rules)
        given = facts.identities
        scored = [(key, self.compare_with(facts.evidence, key))
                  for key in self._candidates(facts)]
        matches = [(key, found) for key, found in scored if found.decision == "match"]
        shared = {identity: shared_reason(identity, self.rules)
                  for key, found in scored if not found.name.level.compatible
                  for identity in self._common(given, key)}
        if matches:
            resolution = self._join(matches)
        else:
            resolution = self._unmatched(lead, given, shared, scored)
        resolution.shared = {i: why for i, why in shared.items() if i not in self.shared}
        taken = {resolution.contact_key, *resolution.merged}
        resolution.maybe = [(key, found) for key, found in scored
                            if key not in taken and found.decision in ("match", "review")]
        return resolution

    def _join(self, matches: list[tuple[str, Comparison]]) -> Resolution:
        """The best match, and the other matches that are one person with it."""
        best_key, best = max(matches, key=lambda pair: (pair[1].weight, _rank(
            self.members[pair[0]])))
        joined = [best_key] + [
            key for key, _ in matches if key != best_key and self.may_merge(best_key, key)]
        survivor = min(joined, key=lambda key: _rank(self.members[key]))
        return Resolution(contact_key=survivor, is_new=False, reason=_words(best),
                          score=best.probability,
                          merged=[key for key in joined if key != survivor])

    def _unmatched(self, lead: Lead, given: Mapping[Identity, str], shared: dict[Identity, str],
                   scored: list[tuple[str, Comparison]]) -> Resolution:
        """No candidate is surely the same person by the numbers. On a shared
        phone or mailbox the name tells the people behind it apart: the lead
        joins the one owner whose name fits it best (a nameless lead: the
        line's nameless contact, the same unknown caller). Otherwise it is a
        new contact."""
        owners = [(key, found) for key, found in scored
                  if self._common(given, key) and found.name.level.compatible]
        if lead.name:
            best = max((found.name.level for _, found in owners), default=NameLevel.MISSING)
            fitting = [(key, found) for key, found in owners if found.name.level == best]
            if best >= NameLevel.FIRST_NAME_ONLY and len(fitting) == 1:
                key, found = fitting[0]
                return Resolution(contact_key=key, is_new=False, score=found.probability,
                                  reason=f"{_words(found)}; the name tells who on a shared"
                                         " phone or mailbox")
        elif any(identity in self.shared or identity in shared for identity in given):
            for key, _ in owners:
                if not self.members[key].names:
                    return Resolution(contact_key=key, is_new=False,
                                      reason="the same shared line, no name given")
        return Resolution(contact_key=self._free_key(lead.lead_id), is_new=True,
                          reason="new contact")

    def may_merge(self, a: str, b: str) -> bool:
        if self.decisions.get(frozenset((a, b))) == DIFFERENT:
            return False
        names_a, names_b = self.members[a].names, self.members[b].names
        if not names_a or not names_b:
            return True
        return compare_names(names_a[0], names_b[0], self.rules).level.compatible

    def _candidates(self, facts: LeadFacts) -> list[str]:
        keys: set[str] = set()
        for identity in facts.lookups:
            keys |= self.by_identity.get(identity, set())
        for block in facts.query_keys:
            keys |= self.block_members(block)
        # an entry left behind by a contact merged or split away names no one now
        return sorted(key for key in keys if key in self.members)

    def block_members(self, key: str) -> set[str]:
        """The contacts a blocking key finds: none once it is full."""
        return set() if key in self.full_blocks else self.by_block.get(key, set())

    def _common(self, given: Mapping[Identity, str], key: str) -> list[Identity]:
        """The lead's identities that this contact has too (a phone given
        without extension counts against the same line's extensions)."""
        member = self.members[key]
        common = [identity for identity in given if identity in member.identities]
        for kind, value in given:
            if kind == "phone" and ";" not in value and (kind, value) not in member.identities:
                if any(k == "phone" and split_identity(v)[0] == value
                       for k, v in member.identities):
                    common.append((kind, value))
        return common

    def compare_with(self, evidence: Evidence, key: str) -> Comparison:
        return compare(evidence, self.evidence_of(key), self.rules,
                       shared=self._shared_values())

    def _shared_values(self) -> AbstractSet[str]:
        # Kept up as `shared` grows (a dict only added to, or replaced whole):
        # building it again for each comparison or each new shared identity
        # cost the size of the book.
        source, seen = self._shared_values_of
        if source != id(self.shared) or seen > len(self.shared):
            self._shared_value_set = {value for _, value in self.shared}
        elif seen < len(self.shared):
            self._shared_value_set.update(
                value for _, value in islice(reversed(self.shared), len(self.shared) - seen))
        self._shared_values_of = (id(self.shared), len(self.shared))
        return self._shared_value_set

    def known_evidence(self, key: str) -> Evidence | None:
        """A member's evidence if the book has worked it out (and the member
        has not changed since)."""
        return self._evidence.get(key)

    def evidence_of(self, key: str) -> Evidence:
        if key not in self._evidence:
            self._evidence[key] = member_evidence(self.members[key], self.rules)
        return self._evidence[key]

    # --- applying -----------------------------------------------------------------

    def apply(self, resolution: Resolution, lead: Lead, facts: LeadFacts | None = None, *,
              counts: bool = True, origin: str = "", owner: str = "") -> Resolution:
        """`facts`: the lead's, when worked out already; `counts`: the lead is
        an inquiry (a contact a person typed is not); `origin`, `owner`: a new
        contact's."""
        facts = facts or lead_facts(lead, self.rules)
        key = resolution.contact_key
        for other in resolution.merged:
            self._merge(other, into=key, reason=resolution.reason, score=resolution.score)
        if resolution.is_new:
            self.members[key] = Member(Contact(contact_key=key), origin=origin, owner=owner)
            self.created.add(key)
        member = self.members[key]
        own = apply_lead(member.own_values(), lead, leads=1 if counts else 0)
        member.base = {name: getattr(own, name) for name in member.corrected}
        member.contact = member.with_corrections(own)
        self._note(member, lead, facts)
        self.changed.add(key)
        for identity, why in resolution.shared.items():
            self.shared.setdefault(identity, why)
            self.new_shared.setdefault(identity, why)
        for other, found in resolution.maybe:
            self.propose(key, other, found)
        return resolution

    def propose(self, key: str, other: str, found: Comparison) -> None:
        """A possible duplicate for people, unless they already decided on it."""
        if other not in self.members or other == key:
            return
        pair = frozenset((key, other))
        if self.decisions.get(pair) in (SAME, DIFFERENT):
            return
        a, b = sorted(pair)
        self.pairs[pair] = Pair(a, b, round(found.probability, 4), tuple(found.reasons))
        for contact in pair:
            self._pairs_of.setdefault(contact, set()).add(pair)
        self.decisions[pair] = OPEN

    def _note(self, member: Member, lead: Lead, facts: LeadFacts) -> None:
        for identity, written in facts.identities.items():
            if identity in member.identities:
                member.identities[identity].seen_again(lead.received_at, lead.lead_id, written)
            else:
                member.identities[identity] = Sighting(written, lead.received_at,
                                                       lead.received_at, lead.lead_id)
        if lead.name:
            member.names = [lead.name] + [n for n in member.names if n != lead.name]
            del member.names[NAMES_KEPT:]
        member.block_keys |= {key for key in facts.block_keys
                              if key not in self.full_blocks or key in member.block_keys}
        self._evidence.pop(member.key, None)
        self._index(member)

    def merge(self, loser_key: str, into: str, reason: str, score: float | None = None,
              decided_by: str = "rule") -> None:
        """Merge two contacts of the book (a person's decision, a rescan)."""
        self._merge(loser_key, into, reason, score, decided_by)

    def _merge(self, loser_key: str, into: str, reason: str, score: float | None = None,
               decided_by: str = "rule") -> None:
        loser = self.members.pop(loser_key)
        survivor = self.members[into]
        self.retired[loser_key] = loser
        survivor.contact = merge_contacts(survivor.contact, loser.contact)
        for identity, sighting in loser.identities.items():
            if identity in survivor.identities:
                survivor.identities[identity].seen_again(sighting.first_seen, sighting.seen_in,
                                                         sighting.written)
                survivor.identities[identity].seen_again(sighting.last_seen)
            else:
                survivor.identities[identity] = replace(sighting)
        survivor.block_keys |= loser.block_keys
        survivor.names += [n for n in loser.names if n not in survivor.names]
        del survivor.names[NAMES_KEPT:]
        survivor.owner = survivor.owner or loser.owner
        for name, value in loser.corrected.items():
            if name not in survivor.corrected:
                survivor.base[name] = getattr(survivor.contact, name)
                survivor.corrected[name] = value
        survivor.contact = survivor.with_corrections(survivor.contact)
        # only the loser's own entries: walking every index would cost the whole book
        for identity in loser.identities:
            self.by_identity.get(identity, set()).discard(loser_key)
        for key in loser.block_keys:
            self.by_block.get(key, set()).discard(loser_key)
        for pair in self._pairs_of.pop(loser_key, set()):
            if pair in self.pairs:
                self.closed_pairs[pair] = self.pairs.pop(pair)
        self._evidence.pop(into, None)
        self._evidence.pop(loser_key, None)
        self._index(survivor)
        self.merges.append(Merge(into, loser_key, reason, score, decided_by))
        self.changed.discard(loser_key)
        self.created.discard(loser_key)
        self.changed.add(into)

    def _index(self, member: Member) -> None:
        for identity, sighting in member.identities.items():
            if sighting.active:
                self.by_identity.setdefault(identity, set()).add(member.key)
        for key in member.block_keys:
            members = self.by_block.setdefault(key, set())
            members.add(member.key)
            if len(members) + self.unseen_in_block.get(key, 0) >= BLOCK_LIMIT:
                self.full_blocks.add(key)

    def _free_key(self, lead_id: str) -> str:
        key = new_contact_key(lead_id)
        while key in self.members or key in self.retired:
            key = new_contact_key(key)
        return key


def member_evidence(member: Member, rules: IdentityRules) -> Evidence:
    """What a contact says about who it is: its fullest name, every active
    identity, its company and city."""
    contact = member.contact
    phones = [value for (kind, value), seen in member.identities.items()
              if kind == "phone" and seen.active]
    emails = [seen.written or value for (kind, value), seen in member.identities.items()
              if kind == "email" and seen.active]
    found = evidence_of(rules, name=member.names[0] if member.names else contact.name,
                        phones=phones, emails=emails, company=contact.company,
                        city=contact.city)
    if len(member.names) < 2:
        return found
    return combine_evidence([found] + [evidence_of(rules, name=name)
                                       for name in member.names[1:]])


def _words(found: Comparison) -> str:
    return "; ".join(found.reasons[:3]) or "same person"


def _rank(member: Member) -> tuple[float, str]:
    """Earliest seen first (ties by key): the survivor of a merge."""
    return (_sort_time(member.contact.first_seen), member.key)


def apply_lead(contact: Contact, lead: Lead, leads: int = 1) -> Contact:
    """LeadHub's own fields: a lead fills the blanks; a lead older than anything
    seen so far (a late import of an old list) also takes precedence, so the
    contact is the same whatever order the leads arrive in. `leads`: how many
    inquiries it counts as (0 for a contact a person typed)."""
    from_lead = Contact(
        contact_key=contact.contact_key,
        name=lead.name,
        phone=lead.phone if lead.phone_valid else "",
        phone_display=lead.phone_display if lead.phone_valid else "",
        email=lead.email,
        company=lead.company,
        legal_form=lead.legal_form if lead.company else "",
        position=lead.position,
        city=lead.city,
        source=lead.source,
        first_seen=lead.received_at,
        last_seen=lead.received_at,
        leads_count=leads,
    )
    if contact.first_seen is None or lead.received_at < contact.first_seen:
        return merge_contacts(from_lead, contact)
    return merge_contacts(contact, from_lead)


def merge_contacts(survivor: Contact, loser: Contact) -> Contact:
    """The survivor's values, blanks filled from the loser; a phone keeps its
    display and a company its legal form."""
    phone_from = survivor if survivor.phone else loser
    company_from = survivor if survivor.company else loser
    return replace(
        survivor,
        name=survivor.name or loser.name,
        phone=phone_from.phone,
        phone_display=phone_from.phone_display,
        email=survivor.email or loser.email,
        company=company_from.company,
        legal_form=company_from.legal_form,
        position=survivor.position or loser.position,
        city=survivor.city or loser.city,
        source=survivor.source or loser.source,
        first_seen=_earliest(survivor.first_seen, loser.first_seen),
        last_seen=_latest(survivor.last_seen, loser.last_seen),
        leads_count=survivor.leads_count + loser.leads_count,
    )


def contact_from_leads(key: str, leads: Iterable[Lead],
                       corrected: dict[str, str] | None = None) -> Contact:
    """A contact rebuilt from its leads (after a split), with a person's
    corrections on top."""
    contact = Contact(contact_key=key)
    for lead in sorted(leads, key=lambda lead: (lead.received_at, lead.lead_id)):
        contact = apply_lead(contact, lead)
    return Member(contact, corrected=dict(corrected or {})).with_corrections(contact)


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    return min((t for t in (a, b) if t is not None), default=None)


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    return max((t for t in (a, b) if t is not None), default=None)


def _sort_time(value: datetime | None) -> float:
    return value.timestamp() if value else float("inf")

