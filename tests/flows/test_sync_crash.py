"""A sync killed with SIGKILL between a write request and the state it keeps
of it is repaired by the next run, in Airtable and in Google Sheets: every
field of every row ends as the store says, a person's edit stays theirs (made
while the sync waited for its answer, too), and the next run's counts say what
it did, not what the killed run had already done. On a store of each engine."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flows.sync import build_sink, sync_all
from leadhub.settings import Settings, load_settings
from tests.flows.crash_helpers import (
    Hold,
    HoldingAirtable,
    HoldingSheets,
    differences,
    edited_fields,
    expected_counts,
    sync_killed_at,
)
from tests.flows.crm_helpers import add_leads, contact_of, make_lead, seed

BASE = "appTESTBASE000001"
TOKEN = "patTEST.secret"
KEY_TITLES = {"Contacts": "Contact key", "Leads": "Lead id"}


class AirtableBench:
    """The local Airtable, a base with LeadHub's tables, and a person at it."""

    name = "airtable"

    def __init__(self, fake: HoldingAirtable):
        self.fake = fake

    def config(self) -> dict[str, Any]:
        return {"type": "airtable", "base": BASE, "token": TOKEN, "endpoint_url": self.fake.url,
                "rate_limit_wait_seconds": self.fake.penalty_seconds}

    def prepare(self, store: Path) -> Settings:
        settings = load_settings(store=str(store), sinks=[self.config()])
        build_sink(settings, self.name)[0].init_schema()
        return settings

    def person_edit(self, title: str, key: str, cells: dict[str, Any]) -> bool:
        for record in self.fake.table_records(BASE, title):
            if record["fields"].get(KEY_TITLES[title]) == key:
                self.fake.person_edit(BASE, title, record["id"], cells)
                return True
        return False


class SheetsBench:
    """The local Sheets, a spreadsheet with LeadHub's sheets, and a person at it."""

    name = "sheets"

    def __init__(self, fake: HoldingSheets):
        self.fake = fake
        self.spreadsheet = fake.create_spreadsheet("CRM", sheets=("Sheet1",))
        self.key = json.dumps(fake.service_account_key())

    def config(self) -> dict[str, Any]:
        # quotas are not what these tests are about: a generous one keeps them quick
        return {"type": "sheets", "spreadsheet": self.spreadsheet, "credentials": self.key,
                "base_url": self.fake.url, "reads_per_minute": 300, "writes_per_minute": 300}

    def prepare(self, store: Path) -> Settings:
        settings = load_settings(store=str(store), sinks=[self.config()])
        build_sink(settings, self.name)[0].init_schema()
        return settings

    def person_edit(self, title: str, key: str, cells: dict[str, Any]) -> bool:
        from connectors.sheets import column_letter

        grid = self.fake.grid(self.spreadsheet, title)
        header = grid[0]
        column = header.index(KEY_TITLES[title])
        for number, row in enumerate(grid[1:], start=2):
            if column < len(row) and str(row[column]) == key:
                for header_title, value in cells.items():
                    cell = f"{column_letter(header.index(header_title))}{number}"
                    self.fake.person_edit(self.spreadsheet, title, cell, value)
                return True
        return False


@pytest.fixture(params=["airtable", "sheets"])
def bench(request) -> Iterator[AirtableBench | SheetsBench]:
    if request.param == "airtable":
        with HoldingAirtable(TOKEN, bases=(BASE,), penalty_seconds=0.5) as fake:
            yield AirtableBench(fake)
    else:
        with HoldingSheets(reads_per_minute=300, writes_per_minute=300) as fake:
            yield SheetsBench(fake)


def again_from(numbers: range | list[int], first_lead: int) -> list:
    """One more lead from each of these contacts: their counts and last-seen change."""
    return [make_lead(first_lead + i, phone_number=n) for i, n in enumerate(numbers)]


def sink_of(bench, settings: Settings):
    return build_sink(settings, bench.name)[0]


# The write that lands contact 15 of 30: Airtable writes 10 records a request
# (the second request), Sheets a whole table (the first).
HELD_WRITE = {"airtable": 2, "sheets": 1}


@pytest.mark.parametrize("phase", ["creating", "updating"])
def test_a_sync_killed_after_its_write_landed_is_repaired_by_the_next_run(
        bench, store, phase):
    seed(store, 30)
    settings = bench.prepare(store)
    if phase == "updating":
        sync_all(settings)
        add_leads(store, again_from(range(1, 31), 100))
    edited = contact_of(15)
    person = {("contacts", edited, "name"): "Иван Петрович",
              ("contacts", edited, "status"): "В работе"}
    # while the sync waits for the answer, a person corrects a name it just wrote
    hold = Hold(HELD_WRITE[bench.name], while_held=lambda: bench.person_edit(
        "Contacts", edited, {"Name": "Иван Петрович", "Status": "В работе"}))

    assert sync_killed_at(bench.fake, hold, store, bench.config())
    # intake goes on before the next sync: every contact writes again
    add_leads(store, again_from(range(1, 31), 200))
    counts = expected_counts(sink_of(bench, settings), store, person)
    stats = sync_all(settings)[bench.name]

    assert differences(sink_of(bench, settings), store, person) == []
    assert edited_fields(store, bench.name) == {
        "contacts": {edited: frozenset({"name"})}, "leads": {}}
    assert {k: stats[k] for k in counts} == counts
    assert stats["failed"] == stats["deferred"] == 0


# How many writes a round's run makes at least, so that its kill point is
# always reached: the first run creates 12 contacts and 12 leads (Airtable: 10
# records a request), a later one updates and creates contacts and creates leads.
FIRST_RUN_WRITES = {"airtable": 4, "sheets": 2}
LATER_RUN_WRITES = 2


@pytest.mark.parametrize("seed_number", [17], ids=lambda n: f"seed-{n}")
def test_syncs_killed_at_random_writes_end_with_every_field_right(bench, store, seed_number):
    rng = random.Random(seed_number)
    seed(store, 12)
    settings = bench.prepare(store)
    contacts, next_lead = 12, 1000
    person: dict[tuple[str, str, str], Any] = {}
    for round_number in range(1, 5):
        target = contact_of(rng.randint(1, contacts))
        name = f"Правка {round_number}"

        def edit(target=target, name=name) -> None:
            if bench.person_edit("Contacts", target, {"Name": name, "Status": "В работе"}):
                person[("contacts", target, "name")] = name
                person[("contacts", target, "status")] = "В работе"

        most = FIRST_RUN_WRITES[bench.name] if round_number == 1 else LATER_RUN_WRITES
        hold = Hold(rng.randint(1, most), before_apply=rng.random() < 0.5, while_held=edit)
        assert sync_killed_at(bench.fake, hold, store, bench.config()), (
            f"round {round_number} ended before its kill point")
        # between runs: known people write again, and new people arrive
        returning = rng.sample(range(1, contacts + 1), 5)
        arriving = [contacts + 1, contacts + 2, contacts + 3]
        add_leads(store, again_from(returning + arriving, next_lead))
        contacts, next_lead = contacts + 3, next_lead + 8
    counts = expected_counts(sink_of(bench, settings), store, person)

    stats = sync_all(settings)[bench.name]

    assert differences(sink_of(bench, settings), store, person) == []
    names = {key: frozenset({"name"}) for (_, key, field) in person if field == "name"}
    assert edited_fields(store, bench.name) == {"contacts": names, "leads": {}}
    assert {k: stats[k] for k in counts} == counts
