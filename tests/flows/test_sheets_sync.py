"""Sync to Google Sheets, against the local Sheets server (tests/fakes/sheets.py):
columns by header, a handful of calls, people's sorting and edits kept."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from connectors.ledger import Ledger
from flows.sync import build_sink, sync_all
from leadhub.errors import FatalError
from leadhub.settings import load_settings
from tests.fakes.clock import FakeClock
from tests.fakes.sheets import FakeSheets
from tests.flows.crm_helpers import add_leads, contact_of, make_lead, seed, sinks_on
from tests.store import rows

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def sheets():
    with FakeSheets() as fake:
        yield fake


def settings_for(fake: FakeSheets, store: Path, spreadsheet: str, **sink):
    key = json.dumps(fake.service_account_key())
    config = {"type": "sheets", "spreadsheet": spreadsheet, "credentials": key,
              "base_url": fake.url, **sink}
    return load_settings(store=str(store), sinks=[config])


def ready_sheet(fake: FakeSheets, store: Path, **sink):
    spreadsheet = fake.create_spreadsheet("CRM", sheets=("Sheet1",))
    settings = settings_for(fake, store, spreadsheet, **sink)
    sink_object, _ = build_sink(settings, "sheets")
    sink_object.init_schema()
    fake.reset_calls()
    return settings, spreadsheet


def rows_by_key(fake: FakeSheets, spreadsheet: str, title: str, key_header: str) -> dict:
    grid = fake.grid(spreadsheet, title)
    header = grid[0]
    found: dict[str, list[dict]] = {}
    for row in grid[1:]:
        record = dict(zip(header, row + [""] * (len(header) - len(row)), strict=False))
        if record.get(key_header):
            found.setdefault(str(record[key_header]), []).append(record)
    return found


def test_first_sync_in_three_calls_a_table_and_a_second_run_writes_nothing(sheets, store):
    seed(store, 2000)
    settings, spreadsheet = ready_sheet(sheets, store)

    stats = sync_all(settings)["sheets"]

    assert stats["created"] == 4000 and stats["failed"] == 0
    contacts = rows_by_key(sheets, spreadsheet, "Contacts", "Contact key")
    assert len(contacts) == 2000 and all(len(rows) == 1 for rows in contacts.values())
    row = contacts[contact_of(7)][0]
    assert row["Phone"] == "+7 (912) 000-00-07", "the business's format, as text"
    assert row["Phone E.164"] == "+79120000007", "a phone stays text, not a number or a formula"
    assert row["Status"] == "Новый"
    assert len(rows_by_key(sheets, spreadsheet, "Leads", "Lead id")) == 2000
    # one append per written table, nothing else
    assert sheets.write_calls == 2

    sheets.reset_calls()
    again = sync_all(settings)["sheets"]
    assert sheets.write_calls == 0
    assert again["created"] == again["updated"] == 0


def test_people_reorder_columns_add_their_own_sort_rows_and_edit_a_status(sheets, store):
    seed(store, 30)
    settings, spreadsheet = ready_sheet(sheets, store)
    sync_all(settings)
    grid = sheets.grid(spreadsheet, "Contacts")
    header, rows = grid[0], grid[1:]
    # a person moves Status first, adds a column of their own, sorts by name descending
    order = [header.index("Status")] + [i for i in range(len(header)) if header[i] != "Status"]
    rows = [[(r + [""] * len(header))[i] for i in order] + ["мой комментарий"] for r in rows]
    rows.sort(key=lambda r: str(r[order.index(header.index("Name"))]), reverse=True)
    new_header = [header[i] for i in order] + ["Мой столбец"]
    sheets.set_grid(spreadsheet, "Contacts", [new_header, *rows])
    target = next(n for n, r in enumerate(rows, start=2)
                  if r[new_header.index("Contact key")] == contact_of(5))
    sheets.person_edit(spreadsheet, "Contacts", f"A{target}", "В работе")
    add_leads(store, [make_lead(900, phone_number=5, name="Клиент 5")])

    sheets.reset_calls()
    stats = sync_all(settings)["sheets"]

    contacts = rows_by_key(sheets, spreadsheet, "Contacts", "Contact key")
    assert len(contacts) == 30
    row = contacts[contact_of(5)][0]
    assert row["Status"] == "В работе"
    assert row["Мой столбец"] == "мой комментарий"
    assert str(row["Leads count"]) == "2"
    assert stats["updated"] == 1 and stats["created"] == 1
    assert sheets.grid(spreadsheet, "Contacts")[0] == new_header


def test_a_renamed_header_stops_the_run_naming_it(sheets, store):
    seed(store, 3)
    settings, spreadsheet = ready_sheet(sheets, store)
    grid = sheets.grid(spreadsheet, "Contacts")
    grid[0][grid[0].index("Email")] = "E-mail"
    sheets.set_grid(spreadsheet, "Contacts", grid)
    with pytest.raises(FatalError, match="no column headed 'Email'"):
        sync_all(settings)


def test_quota_bursts_land_everything_once(store, monkeypatch):
    seed(store, 50)
    clock = FakeClock()  # the writes meet in one window however slowly the machine runs
    sinks_on(clock, monkeypatch)
    with FakeSheets(writes_per_minute=2, quota_window_seconds=1.0, clock=clock) as fake:
        settings, spreadsheet = ready_sheet(fake, store, writes_per_minute=60)
        stats = sync_all(settings)["sheets"]
        assert stats["failed"] == 0
        assert fake.calls["rate_limited"] >= 1
        contacts = rows_by_key(fake, spreadsheet, "Contacts", "Contact key")
        assert len(contacts) == 50 and all(len(r) == 1 for r in contacts.values())


def test_killed_mid_sync_then_run_again_leaves_no_duplicate_rows(sheets, store):
    seed(store, 200)
    settings, spreadsheet = ready_sheet(sheets, store)
    sheet_config = settings.sinks[0]
    script = (
        "import json; from leadhub.settings import load_settings; from flows.sync import sync_all;"
        f"sync_all(load_settings(store={str(store)!r}, sinks=[{{'type': 'sheets',"
        f" 'spreadsheet': {spreadsheet!r}, 'base_url': {sheets.url!r},"
        f" 'credentials': {sheet_config.credentials.get_secret_value()!r}}}]))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # the sync freezes after its first write, whatever the machine's speed, until killed
    frozen = sheets.hold_after_writes(1)
    process = subprocess.Popen([sys.executable, "-c", script], env=env, cwd=ROOT)
    try:
        frozen.wait(timeout=300)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    sheets.release()

    sync_all(settings)

    for title, key in (("Contacts", "Contact key"), ("Leads", "Lead id")):
        rows = rows_by_key(sheets, spreadsheet, title, key)
        assert len(rows) == 200 and all(len(r) == 1 for r in rows.values())


def test_no_access_names_the_service_account_to_share_with(sheets, store):
    seed(store, 1)
    spreadsheet = sheets.create_spreadsheet("CRM")
    sheets.allowed_accounts = {"someone-else@proj.iam.gserviceaccount.com"}
    settings = settings_for(sheets, store, spreadsheet)
    with pytest.raises(FatalError, match=r"share it with leadhub@proj\.iam\.gserviceaccount\.com"):
        sync_all(settings)


def test_a_missing_spreadsheet_names_the_key(sheets, tmp_path):
    settings = settings_for(sheets, tmp_path / "leadhub.db", "1NoSuchSpreadsheetKey000")
    sink, _ = build_sink(settings, "sheets")
    with pytest.raises(FatalError, match="1NoSuchSpreadsheetKey000 not found"):
        sink.problems()


def test_schema_init_makes_frozen_headers_and_a_source_dropdown(sheets, tmp_path):
    spreadsheet = sheets.create_spreadsheet("CRM")
    settings = settings_for(
        sheets, tmp_path / "leadhub.db",
        f"https://docs.google.com/spreadsheets/d/{spreadsheet}/edit#gid=0")
    sink, _ = build_sink(settings, "sheets")
    assert "worksheet 'Contacts' is missing" in sink.problems()

    created, _ = sink.init_schema()

    assert "worksheet Contacts" in created
    assert sink.problems() == []
    assert sheets.grid(spreadsheet, "Contacts")[0][:3] == ["Name", "Contact key", "Phone"]
    rules = sheets.validation(spreadsheet, "Contacts")
    assert any("Сайт" in json.dumps(rule, ensure_ascii=False) for rule in rules)
    assert sink.init_schema() == ([], [])


def test_orders_sheets_come_back_into_the_ledger(sheets, store):
    seed(store, 2)
    settings, spreadsheet = ready_sheet(sheets, store)
    header_orders = sheets.grid(spreadsheet, "Orders")[0]
    order = dict.fromkeys(header_orders, "")
    order.update({"Order": "A-7", "Date": "2026-11-20", "Status": "Оплачен",
                  "Contact": contact_of(2)})
    sheets.set_grid(spreadsheet, "Orders", [header_orders, [order[h] for h in header_orders]])
    header_items = sheets.grid(spreadsheet, "Order items")[0]
    item = dict.fromkeys(header_items, "")
    item.update({"Item": "1", "Order": "A-7", "Product": "Стол", "Price": 500, "Quantity": 3,
                 "Cost": 200})
    sheets.set_grid(spreadsheet, "Order items", [header_items, [item[h] for h in header_items]])

    stats = sync_all(settings)["sheets"]

    assert stats["orders_read"] == 1 and stats["order_items_read"] == 1
    [row] = rows(store, "SELECT order_id, contact_key, ordered_at FROM orders")
    assert row[:2] == ("A-7", contact_of(2))
    assert row[2].startswith("2026-11-20")


def test_a_merge_marks_the_merged_contact_and_moves_its_leads(sheets, store):
    by_phone = make_lead(1, name="Иван Петров")
    by_email = make_lead(2, phone_number=2, name="Иван Петров")
    by_email.phone = by_email.phone_display = ""
    by_email.phone_valid = False
    add_leads(store, [by_phone, by_email])
    settings, spreadsheet = ready_sheet(sheets, store)
    sync_all(settings)
    # one person after all: the phone of the first and the email of the second
    both = make_lead(3, phone_number=1, name="Иван Петров")
    both.email = by_email.email
    add_leads(store, [both])

    sync_all(settings)

    contacts = rows_by_key(sheets, spreadsheet, "Contacts", "Contact key")
    assert contacts[contact_of(2)][0]["Merged into"] == contact_of(1)
    leads = rows_by_key(sheets, spreadsheet, "Leads", "Lead id")
    assert {leads[f"lead-00000{n}"][0]["Contact"] for n in (1, 2, 3)} == {contact_of(1)}


def test_quarantined_items_are_listed_in_needs_review(sheets, tmp_path):
    from datetime import UTC, datetime

    from transforms.records import RawItem

    store = tmp_path / "leadhub.db"
    ledger = Ledger(store, create=True)
    try:
        ledger.store_raw_items([RawItem("form:site:1", "site", "form", b'{"name": "Bob"}',
                                        datetime(2026, 11, 20, tzinfo=UTC))])
        with ledger.transaction() as db:
            ledger.mark_item(db, "form:site:1", "quarantined", "no phone or email")
    finally:
        ledger.close()
    settings, spreadsheet = ready_sheet(sheets, store)

    sync_all(settings)

    row = rows_by_key(sheets, spreadsheet, "Needs review", "Item id")["form:site:1"][0]
    assert row["Reason"] == "no phone or email"
    assert "Bob" in row["Excerpt"]


@pytest.mark.parametrize(("policy", "recreated"), [("recreate", True), ("leave", False)],
                         ids=["default-recreates", "leave-keeps-it-deleted"])
def test_a_row_people_deleted_from_the_sheet(sheets, store, policy, recreated):
    seed(store, 5)
    settings, spreadsheet = ready_sheet(sheets, store, deleted_rows=policy)
    sync_all(settings)
    grid = sheets.grid(spreadsheet, "Contacts")
    key_column = grid[0].index("Contact key")
    sheets.set_grid(spreadsheet, "Contacts",
                    [row for row in grid if row[key_column] != contact_of(4)])

    sync_all(settings)

    contacts = rows_by_key(sheets, spreadsheet, "Contacts", "Contact key")
    assert (contact_of(4) in contacts) is recreated
    assert len(contacts) == (5 if recreated else 4)


def test_a_spreadsheet_near_the_cell_limit_is_warned_about(sheets, tmp_path, monkeypatch,
                                                         caplog):
    monkeypatch.setattr("connectors.sheets.CELL_LIMIT", 500)
    store = tmp_path / "leadhub.db"
    seed(store, 30)
    settings, _ = ready_sheet(sheets, store)
    sync_all(settings)
    caplog.clear()

    sync_all(settings)

    assert any("cells: move old rows" in record.getMessage() for record in caplog.records)


def test_a_sheet_made_with_language_ru_has_russian_headers_and_syncs_through_them(sheets,
                                                                                  store):
    seed(store, 4)
    settings, spreadsheet = ready_sheet(sheets, store, language="ru")
    assert sheets.grid(spreadsheet, "Контакты")[0][:3] == ["Имя", "Ключ контакта", "Телефон"]

    stats = sync_all(settings)["sheets"]
    assert stats["created"] == 8 and stats["failed"] == 0
    contacts = rows_by_key(sheets, spreadsheet, "Контакты", "Ключ контакта")
    assert contacts[contact_of(3)][0]["Статус"] == "Новый"
    header, *cells = sheets.grid(spreadsheet, "Контакты")
    row = next(number for number, values in enumerate(cells, start=2)
               if values[header.index("Ключ контакта")] == contact_of(3))
    status_column = chr(ord("A") + header.index("Статус"))
    sheets.person_edit(spreadsheet, "Контакты", f"{status_column}{row}", "В работе")

    sync_all(settings)

    assert rows(store, "SELECT status FROM contacts WHERE contact_key = :key",
                key=contact_of(3)) == [("В работе",)]
    assert rows_by_key(sheets, spreadsheet, "Контакты", "Ключ контакта")[contact_of(3)][0][
        "Статус"] == "В работе"


def test_a_sheet_made_in_english_keeps_its_headers_when_the_sink_turns_to_russian(sheets,
                                                                                  store):
    seed(store, 2)
    settings, spreadsheet = ready_sheet(sheets, store)
    sync_all(settings)
    in_russian = settings_for(sheets, store, spreadsheet, language="ru")
    sink, _ = build_sink(in_russian, "sheets")

    assert sink.init_schema() == ([], [])
    add_leads(store, [make_lead(40)])
    stats = sync_all(in_russian)["sheets"]
    assert stats["failed"] == 0 and stats["created"] == 2
    assert len(rows_by_key(sheets, spreadsheet, "Contacts", "Contact key")) == 3
    assert "Контакты" not in sink._worksheets()
