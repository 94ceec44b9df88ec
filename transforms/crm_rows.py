"""Rows people typed into the CRM (a contact they met, a lead taken by
phone), read back as records: what LeadHub stores of them, and whether they
can be read at all.

A row reaches the store as a raw item like any mail or form post: its payload
is the row's values by LeadHub's field names, its meta says which sink, table
and row it is. Parsing it is then the same as any other source's: a parsed
lead for normalization and identity resolution, or a rejection that goes to
"Needs review" with what to fix, leaving the row in the CRM as it is.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from transforms.records import ParsedLead, RawItem, Rejection

# The tables whose new rows people type and LeadHub takes in as records.
PEOPLE_TABLES = ("contacts", "leads")


def crm_item(sink: str, table: str, remote_id: str, values: Mapping[str, Any],
             seen_at: datetime) -> RawItem:
    """A row a person typed, as a raw item: kept first, processed like the rest."""
    payload = json.dumps({key: value for key, value in values.items() if value is not None},
                         ensure_ascii=False, sort_keys=True, default=str).encode()
    return RawItem(item_id=f"sink:{sink}:{table}:{remote_id}", source=f"sink:{sink}",
                   kind="row", payload=payload, received_at=seen_at,
                   meta={"crm": sink, "crm_table": table, "remote_id": remote_id})


def parse_crm_row(item: RawItem) -> ParsedLead | Rejection:
    """A typed row's values as a parsed lead (a contact row too: the contact is
    matched like a lead's, and no lead is made of it)."""
    values = json.loads(item.payload.decode("utf-8"))
    table, sink = item.meta["crm_table"], item.meta["crm"]
    where = f"{table} row {item.meta['remote_id']} in {sink}"
    phone, email = _text(values.get("phone")), _text(values.get("email"))
    if not phone and not email:
        return Rejection(f"no phone or email to reach the person ({where}: fill in a phone or"
                         " an email there; the row is read again once it changes)")
    received = values.get("received_at")
    lead = ParsedLead(
        lead_id=f"crm:{sink}:{table}:{item.meta['remote_id']}",
        channel="crm",
        received_at=_moment(received) or item.received_at,
        name=_text(values.get("name")),
        phones=[phone] if phone else [],
        emails=[email] if email else [],
        company=_text(values.get("company")),
        position=_text(values.get("position")),
        city=_text(values.get("city")),
        subject=_text(values.get("subject")),
        message=_text(values.get("message")) or _text(values.get("notes")),
        raw_source={"crm": sink, "table": table, **(
            {"category": _text(values["source"])} if values.get("source") else {}), **(
            {"contact": _text(values["contact"])} if values.get("contact") else {})},
    )
    return lead


def invalid_phone_reason(item: RawItem, phone: str) -> Rejection:
    """A typed phone that is no phone: the person fixes it in the row."""
    return Rejection(f"the phone {phone!r} is not a phone number ({item.meta['crm_table']} row"
                     f" {item.meta['remote_id']} in {item.meta['crm']}: correct it there; the"
                     " row is read again once it changes)")


def _text(value: Any) -> str:
    return " ".join(str(value).split()) if value not in (None, "") else ""


def _moment(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else None
