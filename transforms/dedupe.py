"""Exact deduplication: one person, one contact, every inquiry its own lead.

A lead belongs to the contact that has its phone (E.164) or its email. A lead
that matches two contacts merges them; the survivor is the earliest seen (ties
broken by key), so the result does not depend on processing order.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from transforms.records import Contact, Lead

Identity = tuple[str, str]


@dataclass
class Resolution:
    contact_key: str
    is_new: bool
    merged: list[str] = field(default_factory=list)


def contact_key_for(lead: Lead) -> str:
    """E.164 phone, else lower-cased email (DESIGN.md "Records")."""
    return lead.phone if lead.phone_valid else lead.email


def primary_identities(lead: Lead) -> list[Identity]:
    """Only the lead's main phone and email identify the person: a second
    phone in a signature is often the office switchboard shared by many."""
    found: list[Identity] = []
    if lead.phone_valid:
        found.append(("phone", lead.phone))
    if lead.email:
        found.append(("email", lead.email))
    return found


@dataclass
class ContactBook:
    """Contacts and the identities that point at them, held in memory."""

    contacts: dict[str, Contact] = field(default_factory=dict)
    identities: dict[Identity, str] = field(default_factory=dict)
    merged_into: dict[str, str] = field(default_factory=dict)
    retired: dict[str, Contact] = field(default_factory=dict)
    changed: set[str] = field(default_factory=set)
    _members: dict[str, set[Identity]] = field(default_factory=dict)

    def load(self, contact: Contact, identities: list[Identity]) -> None:
        """Put a contact known elsewhere (the ledger) into the book, unchanged."""
        self.contacts[contact.contact_key] = contact
        for identity in identities:
            self._point(identity, contact.contact_key)

    def add(self, lead: Lead) -> Resolution:
        matched = sorted(
            {self.identities[i] for i in primary_identities(lead) if i in self.identities},
            key=lambda key: (_sort_time(self.contacts[key].first_seen), key),
        )
        if matched:
            key, is_new = matched[0], False
            for other in matched[1:]:
                self._merge(other, into=key)
        else:
            key, is_new = contact_key_for(lead), True
            self.contacts[key] = Contact(contact_key=key)
        self.contacts[key] = apply_lead(self.contacts[key], lead)
        for identity in primary_identities(lead):
            self._point(identity, key)
        self.changed.add(key)
        return Resolution(contact_key=key, is_new=is_new, merged=matched[1:])

    def _merge(self, loser_key: str, into: str) -> None:
        loser = self.contacts.pop(loser_key)
        self.retired[loser_key] = loser
        self.contacts[into] = merge_contacts(self.contacts[into], loser)
        for identity in self._members.pop(loser_key, set()):
            self._point(identity, into)
        self.merged_into[loser_key] = into
        self.changed.discard(loser_key)
        self.changed.add(into)

    def _point(self, identity: Identity, key: str) -> None:
        self.identities[identity] = key
        self._members.setdefault(key, set()).add(identity)


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
