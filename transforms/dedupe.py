"""Who is who: the contact book a batch of leads is matched against.

The store loads the contacts a batch could belong to (by identity and
blocking key) into a `ContactBook`; each lead is added to it, and the book
remembers what changed for the store to write: contacts, their identities and
blocking keys, merges (so they can be undone), identities found to be shared,
and pairs for people to decide.

A contact is a member of the book: the `Contact` people see, the identities
that point at it (phones with extension, emails), each with where and when it
was seen, and the names it was written under. A lead matching two contacts
merges them; the survivor is the earliest seen (ties broken by key).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from transforms.records import Contact, Lead

Identity = tuple[str, str]
NAMES_KEPT = 5


@dataclass
class Sighting:
    """One identity of a contact: as written, when first and last seen, and
    the lead (or CRM row) it came from first."""

    written: str
    first_seen: datetime | None
    last_seen: datetime | None
    seen_in: str
    active: bool = True

    def seen_again(self, moment: datetime | None) -> None:
        self.first_seen = _earliest(self.first_seen, moment)
        self.last_seen = _latest(self.last_seen, moment)


@dataclass
class Member:
    contact: Contact
    identities: dict[Identity, Sighting] = field(default_factory=dict)
    block_keys: set[str] = field(default_factory=set)
    # the names the contact was written under, newest first
    names: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        return self.contact.contact_key


@dataclass(frozen=True)
class Merge:
    survivor: str
    loser: str
    reason: str
    score: float | None = None
    decided_by: str = "rule"


@dataclass
class Resolution:
    contact_key: str
    is_new: bool
    reason: str = ""
    merged: list[str] = field(default_factory=list)


def contact_key_for(lead: Lead) -> str:
    """E.164 phone, else lower-cased email (DESIGN.md "Records")."""
    return lead.phone if lead.phone_valid else lead.email


def identities_of(lead: Lead) -> dict[Identity, str]:
    """The identities a lead gives (identity -> as written). Only the lead's
    main phone and email identify the person: a second phone in a signature
    is often the office switchboard shared by many."""
    found: dict[Identity, str] = {}
    if lead.phone_valid:
        found[("phone", lead.phone)] = lead.phone_display or lead.phone
    if lead.email:
        found[("email", lead.email)] = lead.email
    return found


def block_keys_of(lead: Lead) -> set[str]:
    """Keys that put a lead beside the contacts it may belong to without an
    identity in common (none yet: matching is on identities only)."""
    return set()


@dataclass
class ContactBook:
    """The contacts a batch may touch, and what the batch changed."""

    members: dict[str, Member] = field(default_factory=dict)
    by_identity: dict[Identity, set[str]] = field(default_factory=dict)
    by_block: dict[str, set[str]] = field(default_factory=dict)
    # what the store writes afterwards
    changed: set[str] = field(default_factory=set)
    merges: list[Merge] = field(default_factory=list)
    retired: dict[str, Member] = field(default_factory=dict)

    @property
    def contacts(self) -> dict[str, Contact]:
        return {key: member.contact for key, member in self.members.items()}

    @property
    def merged_into(self) -> dict[str, str]:
        return {merge.loser: merge.survivor for merge in self.merges}

    def load(self, member: Member) -> None:
        """Put a contact known elsewhere (the store) into the book, unchanged."""
        self.members[member.key] = member
        self._index(member)

    def add(self, lead: Lead) -> Resolution:
        return self.apply(self.resolve(lead), lead)

    def resolve(self, lead: Lead) -> Resolution:
        """Which contact the lead belongs to, and what it merges, without
        changing the book (the store writes the lead first, then `apply`)."""
        given = identities_of(lead)
        matched = sorted(
            {key for identity in given for key in self.by_identity.get(identity, ())},
            key=lambda key: (_sort_time(self.members[key].contact.first_seen), key),
        )
        if not matched:
            return Resolution(contact_key=contact_key_for(lead), is_new=True,
                              reason="new contact")
        return Resolution(contact_key=matched[0], is_new=False,
                          reason=_why(self.members[matched[0]], given), merged=matched[1:])

    def apply(self, resolution: Resolution, lead: Lead) -> Resolution:
        given = identities_of(lead)
        key = resolution.contact_key
        for other in resolution.merged:
            self._merge(other, into=key, reason=_why(self.members[other], given))
        if resolution.is_new:
            self.members[key] = Member(Contact(contact_key=key))
        member = self.members[key]
        member.contact = apply_lead(member.contact, lead)
        self._note(member, lead, given)
        self.changed.add(key)
        return resolution

    def _note(self, member: Member, lead: Lead, given: dict[Identity, str]) -> None:
        for identity, written in given.items():
            if identity in member.identities:
                member.identities[identity].seen_again(lead.received_at)
            else:
                member.identities[identity] = Sighting(written, lead.received_at,
                                                       lead.received_at, lead.lead_id)
        member.block_keys |= block_keys_of(lead)
        if lead.name:
            member.names = [lead.name] + [n for n in member.names if n != lead.name]
            del member.names[NAMES_KEPT:]
        self._index(member)

    def _merge(self, loser_key: str, into: str, reason: str) -> None:
        loser = self.members.pop(loser_key)
        survivor = self.members[into]
        self.retired[loser_key] = loser
        survivor.contact = merge_contacts(survivor.contact, loser.contact)
        for identity, sighting in loser.identities.items():
            if identity in survivor.identities:
                survivor.identities[identity].seen_again(sighting.first_seen)
                survivor.identities[identity].seen_again(sighting.last_seen)
            else:
                survivor.identities[identity] = replace(sighting)
        survivor.block_keys |= loser.block_keys
        survivor.names += [n for n in loser.names if n not in survivor.names]
        del survivor.names[NAMES_KEPT:]
        for keys in (*self.by_identity.values(), *self.by_block.values()):
            keys.discard(loser_key)
        self._index(survivor)
        self.merges.append(Merge(survivor=into, loser=loser_key, reason=reason))
        self.changed.discard(loser_key)
        self.changed.add(into)

    def _index(self, member: Member) -> None:
        for identity, sighting in member.identities.items():
            if sighting.active:
                self.by_identity.setdefault(identity, set()).add(member.key)
        for key in member.block_keys:
            self.by_block.setdefault(key, set()).add(member.key)


def _why(member: Member, given: dict[Identity, str]) -> str:
    kinds = sorted({kind for kind, value in given if (kind, value) in member.identities})
    return " and ".join(f"same {kind}" for kind in kinds) or "same phone or email"


def apply_lead(contact: Contact, lead: Lead) -> Contact:
    """LeadHub's own fields: a lead fills the blanks; a lead older than anything
    seen so far (a late import of an old list) also takes precedence, so the
    contact is the same whatever order the leads arrive in."""
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
        leads_count=1,
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


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    return min((t for t in (a, b) if t is not None), default=None)


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    return max((t for t in (a, b) if t is not None), default=None)


def _sort_time(value: datetime | None) -> float:
    return value.timestamp() if value else float("inf")
