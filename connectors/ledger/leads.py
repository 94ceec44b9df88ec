"""Leads: one row per inquiry, in the order they were stored."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from sqlalchemy import Connection, func, select

from connectors.ledger.base import Bulk, LedgerBase, chunks
from connectors.ledger.schema import lead_stages, leads
from transforms.records import Lead

_INSERT_LEADS = Bulk(lambda tx, keys: leads.insert())
_INSERT_STAGES = Bulk(lambda tx, keys: lead_stages.insert())


@dataclass
class LeadRows:
    """Leads to write together: their rows and their first stages."""

    leads: list[dict] = field(default_factory=list)
    stages: list[dict] = field(default_factory=list)


class Leads(LedgerBase):
    def next_lead_seq(self, tx: Connection) -> int:
        """The position the next stored lead takes. Read under the contacts
        lock, so positions grow in the order leads are committed (the alert
        rules read "every lead after position N")."""
        return (tx.execute(select(func.max(leads.c.seq))).scalar() or 0) + 1

    def lead_fingerprint(self, tx: Connection, lead_id: str) -> str | None:
        """The content fingerprint of a stored lead ("" for leads stored before
        fingerprints), or None when there is no such lead."""
        return tx.execute(select(leads.c.fingerprint).where(leads.c.lead_id == lead_id)
                          ).scalar()

    def lead_fingerprints(self, tx: Connection, lead_ids: list[str]) -> dict[str, str]:
        """`lead_fingerprint` of many leads at once: the stored ones only."""
        found: dict[str, str] = {}
        for chunk in chunks(sorted(set(lead_ids))):
            found.update((lead_id, fingerprint) for lead_id, fingerprint in tx.execute(
                select(leads.c.lead_id, leads.c.fingerprint).where(leads.c.lead_id.in_(chunk))
            ).all())
        return found

    def save_lead(self, tx: Connection, lead: Lead, contact_key: str, item_id: str, seq: int,
                  reason: str = "", *, origin: str = "", owner: str = "",
                  stage: str = "", batch: LeadRows | None = None) -> None:
        """A new lead; `stage` starts its stage history (LeadHub's first stage).
        With `batch`, its rows join the batch, which `save_leads` writes."""
        rows = batch if batch is not None else LeadRows()
        if stage:
            rows.stages.append({"lead_id": lead.lead_id, "stage": stage,
                                "changed_at": lead.received_at, "changed_by": "leadhub"})
        rows.leads.append(dict(
            origin=origin, owner=owner, stage=stage,
            lead_id=lead.lead_id, seq=seq, contact_key=contact_key,
            first_contact_key=contact_key, match_reason=reason, raw_item_id=item_id,
            received_at=lead.received_at, channel=lead.channel, source=lead.source,
            source_matched=lead.source_matched,
            raw_source=json.dumps(lead.raw_source, ensure_ascii=False, sort_keys=True),
            name=lead.name, phone=lead.phone, phone_extension=lead.phone_extension,
            phone_display=lead.phone_display, phone_valid=lead.phone_valid, email=lead.email,
            company=lead.company, legal_form=lead.legal_form, position=lead.position,
            city=lead.city, subject=lead.subject, message=lead.message,
            warnings="[]" if lead.warnings == [] else json.dumps(lead.warnings, ensure_ascii=False),
            fingerprint=lead.fingerprint))
        if batch is None:
            self.save_leads(tx, rows)

    def save_leads(self, tx: Connection, rows: LeadRows) -> None:
        """A batch's leads and their first stages, one prepared statement each."""
        _INSERT_STAGES.execute(tx, rows.stages)
        _INSERT_LEADS.execute(tx, rows.leads)

    def lead_count(self) -> int:
        return self.scalar(select(func.count()).select_from(leads))


def lead_from_row(row) -> Lead:
    """A stored lead as the record the contact book takes."""
    return Lead(
        lead_id=row["lead_id"], channel=row["channel"], received_at=row["received_at"],
        name=row["name"], phone=row["phone"], phone_display=row["phone_display"],
        phone_valid=bool(row["phone_valid"]), email=row["email"], company=row["company"],
        legal_form=row["legal_form"], position=row["position"], city=row["city"],
        source=row["source"], source_matched=bool(row["source_matched"]),
        raw_source=json.loads(row["raw_source"] or "{}"), subject=row["subject"],
        message=row["message"], warnings=json.loads(row["warnings"] or "[]"),
        phone_extension=row["phone_extension"], fingerprint=row["fingerprint"])
