"""Helpers for the sink tests: a ledger filled with generated leads, the way
intake fills it (a contact book, leads, identities)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connectors.ledger import Ledger
from tests.fakes.clock import FakeClock
from transforms.records import Lead

SOURCES = ("Сайт", "Email", "Авито", "Реклама")
FIRST_STAGE = "Новый"  # where intake starts every lead
START = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def make_lead(number: int, *, phone_number: int | None = None, name: str | None = None,
              source: str | None = None) -> Lead:
    phone_number = number if phone_number is None else phone_number
    phone = f"+7912{phone_number:07d}"
    return Lead(
        lead_id=f"lead-{number:06d}", channel="form",
        received_at=START + timedelta(minutes=number),
        name=name or f"Клиент {phone_number}", phone=phone,
        phone_display=f"+7 (912) {phone[5:8]}-{phone[8:10]}-{phone[10:]}", phone_valid=True,
        email=f"client{phone_number}@example.ru", company="Ромашка", legal_form="ООО",
        position="", city="Москва", source=source or SOURCES[phone_number % len(SOURCES)],
        source_matched=True, raw_source={"form": "site-callback"},
        subject="Заявка с сайта", message=f"Перезвоните, заявка {number}",
    )


def contact_of(number: int) -> str:
    """The id of the contact that `make_lead(number)` founded."""
    from transforms.dedupe import new_contact_key

    return new_contact_key(f"lead-{number:06d}")


def add_leads(store: Path, leads: list[Lead]) -> None:
    """Store leads as intake does: one contact per phone, leads linked to it."""
    from leadhub.settings import load_settings
    from transforms.dedupe import lookups_of, query_keys_of

    rules = load_settings().identity_rules()
    ledger = Ledger(store, create=True)
    try:
        with ledger.transaction() as tx:
            book = ledger.load_book(
                tx, rules, (i for lead in leads for i in lookups_of(lead, rules)),
                (k for lead in leads for k in query_keys_of(lead, rules)))
            seq = ledger.next_lead_seq(tx)
            for position, lead in enumerate(leads, start=seq):
                resolution = book.add(lead)
                ledger.save_lead(tx, lead, resolution.contact_key, f"form:test:{lead.lead_id}",
                                 position, resolution.reason, stage=FIRST_STAGE)
            ledger.save_book(tx, book)
    finally:
        ledger.close()


def seed(store: Path, contacts: int) -> None:
    """`contacts` contacts with one lead each."""
    add_leads(store, [make_lead(n) for n in range(1, contacts + 1)])


def sinks_on(clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every sink the sync builds reads and waits on `clock`, the clock its fake
    server counts on: the sink's waits move the server's time, and rate windows
    no longer depend on how fast the machine runs."""
    from connectors.airtable import AirtableSink
    from connectors.sheets import SheetsSink
    from flows.sync import SINK_BUILDERS

    def airtable(config, settings):
        return AirtableSink(config, config.crm_tables(settings), clock=clock, sleep=clock.sleep)

    def sheets(config, settings):
        return SheetsSink(config, config.crm_tables(settings), settings.timezone, clock=clock,
                          sleep=clock.sleep)

    monkeypatch.setitem(SINK_BUILDERS, "airtable", airtable)
    monkeypatch.setitem(SINK_BUILDERS, "sheets", sheets)
