"""Helpers for the flow tests: the bundled samples and a store snapshot."""

from __future__ import annotations

from pathlib import Path

from leadhub.cli import lead_samples
from tests.store import rows

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
# what the demo ingests as leads (samples/orders/ is imported as orders)
LEAD_SAMPLES = lead_samples()


def snapshot(store: str | Path) -> dict[str, list[tuple]]:
    """Everything a user could see in the store, without write timestamps.
    A contact is named by its first lead: its id depends on which of its
    leads a run happened to meet first (a batch's size, a crash's point)."""
    named = _contacts_by_first_lead(store)

    def by_lead(table_rows: list[tuple], *columns: int) -> list[tuple]:
        return sorted(tuple(named.get(value, value) if i in columns else value
                            for i, value in enumerate(row)) for row in table_rows)

    return {
        "contacts": by_lead(rows(
            store, "SELECT contact_key, name, phone, phone_display, email, company, legal_form,"
            " position, city, source, first_seen, last_seen, leads_count, merged_into"
            " FROM contacts"), 0, 13),
        "identities": by_lead(rows(
            store, "SELECT contact_key, kind, value, written, first_seen, last_seen, seen_in,"
            " active FROM identities"), 0),
        "leads": by_lead(rows(
            store, "SELECT lead_id, contact_key, raw_item_id, received_at, channel, source, name,"
            " phone, email, message FROM leads"), 1),
        "items": rows(store, "SELECT item_id, state, reason, lead_id FROM raw_items"
                              " ORDER BY item_id"),
    }


def _contacts_by_first_lead(store: str | Path) -> dict[str, str]:
    first: dict[str, str] = {}
    for lead_id, contact_key in rows(store, "SELECT lead_id, contact_key FROM leads"):
        first[contact_key] = min(first.get(contact_key, lead_id), lead_id)
    return {key: f"contact of {lead_id}" for key, lead_id in first.items()}


def people(store: str | Path) -> list[tuple]:
    """The contacts as people see them, whatever ids they got: each live
    contact's leads and fields (ids depend on which lead came first)."""
    leads: dict[str, list[str]] = {}
    for lead_id, contact_key in rows(store, "SELECT lead_id, contact_key FROM leads"):
        leads.setdefault(contact_key, []).append(lead_id)
    return sorted(
        (tuple(sorted(leads.get(key, []))), *fields) for key, *fields in rows(
            store, "SELECT contact_key, name, phone, phone_display, email, company, legal_form,"
            " position, city, source, first_seen, last_seen, leads_count FROM contacts"
            " WHERE merged_into IS NULL"))
