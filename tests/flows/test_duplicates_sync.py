"""Possible duplicates through the sinks: a likely pair lands in the Possible
duplicates table of the local Airtable and Sheets with both contacts, the
score and the reasons; a person picks «Один человек» or «Разные люди» there,
and the next sync merges the pair or keeps it apart for good."""

from __future__ import annotations

from dataclasses import replace

import pytest

from connectors.ledger import Ledger
from flows.sync import build_sink, sync_all
from leadhub.settings import load_settings
from tests.fakes.airtable import FakeAirtable
from tests.fakes.sheets import FakeSheets
from tests.flows.crm_helpers import add_leads, contact_of, make_lead
from tests.flows.test_tasks_sync import _airtable_sink, _sheets_sink
from tests.store import query

BASE = "appTESTBASE000001"


def _likely_pair(store) -> None:
    """One person twice: phone only, then email only, same name and company."""
    phone_only = replace(make_lead(1, name="Сидоров Пётр"), email="")
    email_only = replace(make_lead(2, name="Пётр Сидоров"), phone="", phone_display="",
                         phone_valid=False, email="p.sidorov@vector.ru")
    add_leads(store, [phone_only, email_only])


def _rows(fake, sink_type: str, settings) -> list[dict]:
    if sink_type == "airtable":
        return [{"id": r["id"], **r["fields"]}
                for r in fake.table_records(BASE, "Possible duplicates")]
    grid = fake.grid(settings.sinks[0].spreadsheet, "Possible duplicates")
    return [{"row": n, **dict(zip(grid[0], row, strict=False))}
            for n, row in enumerate(grid[1:], start=2)]


def _decide(fake, sink_type: str, settings, row: dict, choice: str) -> None:
    if sink_type == "airtable":
        fake.person_edit(BASE, "Possible duplicates", row["id"], {"Decision": choice})
        return
    spreadsheet = settings.sinks[0].spreadsheet
    header = fake.grid(spreadsheet, "Possible duplicates")[0]
    column = chr(ord("A") + header.index("Decision"))
    fake.person_edit(spreadsheet, "Possible duplicates", f"{column}{row['row']}", choice)


@pytest.mark.parametrize("sink_type", ["sheets", "airtable"])
@pytest.mark.parametrize(("choice", "contacts_left", "state"), [
    pytest.param("Один человек", 1, "один человек", id="same-person"),
    pytest.param("Разные люди", 2, "разные люди", id="different-people"),
])
def test_a_person_decides_a_possible_duplicate_in_the_crm(store, sink_type, choice,
                                                         contacts_left, state):
    fake_class = FakeSheets if sink_type == "sheets" else FakeAirtable
    with (fake_class(penalty_seconds=0.5) if sink_type == "airtable" else fake_class()) as fake:
        sink = _airtable_sink(fake) if sink_type == "airtable" else _sheets_sink(fake)
        settings = load_settings(store=str(store), sinks=[sink])
        build_sink(settings, sink_type)[0].init_schema()
        _likely_pair(store)
        sync_all(settings)

        [row] = _rows(fake, sink_type, settings)
        assert row["Pair"] == f"{min(contact_of(1), contact_of(2))}|" \
                              f"{max(contact_of(1), contact_of(2))}"
        assert {row["Name A"], row["Name B"]} == {"Сидоров Пётр", "Пётр Сидоров"}
        assert "company" in row["Why"] and row["State"] == "ждёт решения"

        _decide(fake, sink_type, settings, row, choice)
        stats = sync_all(settings)[sink_type]
        sync_all(settings)  # the pair's new state reaches the row

        assert query(store, "SELECT COUNT(*) FROM contacts WHERE merged_into IS NULL") == [
            (contacts_left,)]
        assert stats[f"pairs_{'same' if contacts_left == 1 else 'different'}"] == 1
        [row] = _rows(fake, sink_type, settings)
        assert row["State"] == state
        ledger = Ledger(store)
        try:
            [pair] = ledger.duplicate_pairs(("same", "different"))
        finally:
            ledger.close()
        assert pair["decided_by"] == f"sink:{sink_type}"
