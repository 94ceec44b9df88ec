"""The CRM is the record both ways, against the local Airtable and Sheets:
rows people type come in as records and are matched with everyone else,
their corrections win in the store, every stage change is kept, and a second
sink mirrors the record."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from connectors.files import FilesSource
from connectors.ledger import Ledger
from flows.intake import collect, process_pending
from flows.sync import build_sink, sync_all
from leadhub.settings import load_settings
from tests.fakes.airtable import FakeAirtable
from tests.fakes.sheets import FakeSheets
from tests.flows.crm_helpers import add_leads, contact_of, make_lead
from tests.flows.test_tasks_sync import _airtable_sink, _sheets_sink
from tests.store import query, rows

BASE = "appTESTBASE000001"


class Crm:
    """A person working in one local CRM (Airtable or Sheets), by field titles."""

    def __init__(self, kind: str, fake, settings):
        self.kind, self.fake, self.settings = kind, fake, settings

    @property
    def sheet(self) -> str:
        return self.settings.sinks[0].spreadsheet

    def rows(self, table: str) -> list[dict]:
        if self.kind == "airtable":
            return [{"_id": r["id"], **r["fields"]} for r in self.fake.table_records(BASE, table)]
        grid = self.fake.grid(self.sheet, table)
        return [{"_id": f"row:{n}", **{k: v for k, v in zip(grid[0], row, strict=False)
                                      if v not in (None, "")}}
                for n, row in enumerate(grid[1:], start=2) if any(row)]

    def type_row(self, table: str, fields: dict) -> str:
        """A person adds a row; its id."""
        if self.kind == "airtable":
            return self.fake.person_create(BASE, table, fields)
        grid = self.fake.grid(self.sheet, table)
        number = len(grid) + 1
        for title, value in fields.items():
            self._cell(table, grid[0], title, number, value)
        return f"row:{number}"

    def edit(self, table: str, row_id: str, fields: dict) -> None:
        if self.kind == "airtable":
            self.fake.person_edit(BASE, table, row_id, fields)
            return
        header = self.fake.grid(self.sheet, table)[0]
        for title, value in fields.items():
            self._cell(table, header, title, int(row_id.removeprefix("row:")), value)

    def _cell(self, table: str, header: list, title: str, number: int, value) -> None:
        if isinstance(value, list):  # a link: Sheets holds the linked row's key
            value = value[0]
        self.fake.person_edit(self.sheet, table, f"{chr(ord('A') + header.index(title))}{number}",
                              value)

    def link_to(self, key: str) -> list | str:
        """What a person puts in a Contact link cell for the contact `key`."""
        if self.kind == "sheets":
            return key
        return [next(r["_id"] for r in self.rows("Contacts") if r.get("Contact key") == key)]


@pytest.fixture(params=["airtable", "sheets"])
def crm(request, store):
    fake_class = FakeAirtable if request.param == "airtable" else FakeSheets
    with (fake_class(penalty_seconds=0.5) if request.param == "airtable" else fake_class()) as fake:
        sink = _airtable_sink(fake) if request.param == "airtable" else _sheets_sink(fake)
        settings = load_settings(store=store, sinks=[sink])
        build_sink(settings, request.param)[0].init_schema()
        add_leads(store, [make_lead(n) for n in (1, 2, 3)])
        sync_all(settings)
        yield Crm(request.param, fake, settings)


def _count(store, table: str, where: str = "1 = 1") -> int:
    return query(store, f"SELECT COUNT(*) FROM {table} WHERE {where}")[0][0]


def test_rows_people_type_are_records_matched_like_any_lead(crm, store, tmp_path):
    maria = crm.type_row("Contacts", {"Name": "мария соколова", "Phone": "8 912 345 67 89",
                                      "Company": "ООО «Вектор»"})
    # (a person typing `+7 ...` in Sheets gets a formula error: people write 8 ...)
    crm.type_row("Leads", {"Name": "Олег Ким", "Phone": "8 916 111-22-33",
                           "Source": "Рекомендация", "Message": "позвонил по рекомендации",
                           "Stage": "Квалификация"})
    crm.type_row("Tasks", {"Task": "Позвонить Марии", "Contact": crm.link_to(contact_of(1))})

    stats = sync_all(crm.settings)[crm.kind]

    assert (_count(store, "contacts", "merged_into IS NULL"), _count(store, "leads"),
            _count(store, "tasks")) == (5, 4, 1)
    assert (stats["typed_contacts"], stats["typed_leads"], stats["typed_tasks"]) == (1, 1, 1)
    [(name, phone, origin)] = query(store, "SELECT name, phone, origin FROM contacts"
                                           " WHERE origin <> ''")
    assert (name, phone) == ("Мария Соколова", "+79123456789")
    assert origin == f"sink:{crm.kind}:{maria}"
    [(channel, source, stage)] = rows(store, "SELECT channel, source, stage FROM leads"
                                             " WHERE origin <> ''")
    assert (channel, source, stage) == ("crm", "Рекомендация", "Квалификация")

    sync_all(crm.settings)
    contacts = crm.rows("Contacts")
    typed = next(r for r in contacts if r["_id"] == maria)
    assert typed["Contact key"].startswith("C-"), "the typed row got its key, not a twin"
    assert len(contacts) == 5 and len(crm.rows("Leads")) == 4 and len(crm.rows("Tasks")) == 1

    mail = tmp_path / "mail.eml"
    mail.write_text("From: maria@vector.ru\nSubject: Счёт\nMessage-ID: <m1@vector.ru>\n"
                    "Date: Mon, 02 Nov 2026 10:00:00 +0300\n\nЗдравствуйте!\nПришлите счёт.\n\n"
                    "--\nМария Соколова\nООО «Вектор»\nтел. 8 (912) 345-67-89\n",
                    encoding="utf-8")
    collect(FilesSource("files", [mail]), store)
    process_pending(crm.settings)
    [(owner,)] = query(store, "SELECT contact_key FROM leads WHERE channel = 'email'")
    assert owner == typed["Contact key"], "a hand-made contact is never doubled by a mail"


def test_a_typed_row_that_cannot_be_read_goes_to_needs_review_and_stays_as_it_was(crm, store):
    row = crm.type_row("Leads", {"Name": "Без контактов", "Message": "перезвонить"})
    crm.type_row("Leads", {"Name": "Кривой номер", "Phone": "123"})

    sync_all(crm.settings)
    sync_all(crm.settings)

    reasons = sorted(reason for (reason,) in query(
        store, "SELECT reason FROM raw_items WHERE state = 'quarantined'"))
    assert reasons[0].startswith("no phone or email to reach the person (leads row")
    assert "the phone '123' is not a phone number" in reasons[1]
    review = [r.get("Reason", "") for r in crm.rows("Needs review")]
    assert any("no phone or email" in reason for reason in review)
    untouched = next(r for r in crm.rows("Leads") if r["_id"] == row)
    assert "Lead id" not in untouched and "Contact" not in untouched
    assert _count(store, "leads") == 3


def test_a_persons_corrections_are_what_the_store_and_reports_show(crm, store, tmp_path):
    row = next(r for r in crm.rows("Contacts") if r["Contact key"] == contact_of(2))
    crm.edit("Contacts", row["_id"], {"Name": "Пётр Ильич Сидоров", "Phone": "8 903 777 66 55"})

    assert sync_all(crm.settings)[crm.kind]["corrections"] == 1

    [(name, phone, display)] = query(store, "SELECT name, phone, phone_display FROM contacts"
                                            f" WHERE contact_key = '{contact_of(2)}'")
    assert (name, phone, display) == ("Пётр Ильич Сидоров", "+79037776655",
                                      "+7 (903) 777-66-55")
    phones = {value for (value,) in query(store, "SELECT value FROM identities WHERE"
                                                 f" contact_key = '{contact_of(2)}'"
                                                 " AND kind = 'phone'")}
    assert phones == {"+79037776655", make_lead(2).phone}, "the old phone stays, as history"
    ledger = Ledger(store)
    try:
        exported = next(c for c in ledger.export_contacts() if c["contact_key"] == contact_of(2))
    finally:
        ledger.close()
    assert exported["name"] == "Пётр Ильич Сидоров"
    add_leads(store, [replace(make_lead(9), phone="+79037776655", email="",
                              name="Пётр Сидоров")])
    assert query(store, "SELECT contact_key FROM leads WHERE lead_id = 'lead-000009'") == [
        (contact_of(2),)]

    crm.edit("Contacts", row["_id"], {"Name": None})  # the person empties the name
    sync_all(crm.settings)
    [(name,)] = query(store, f"SELECT name FROM contacts WHERE contact_key = '{contact_of(2)}'")
    assert name == make_lead(2).name, "an emptied correction gives LeadHub's value back"


def test_every_stage_change_is_kept_with_its_time(crm, store):
    row = next(r for r in crm.rows("Leads") if r["Lead id"] == "lead-000001")
    crm.edit("Leads", row["_id"], {"Stage": "КП отправлено"})
    sync_all(crm.settings)
    crm.edit("Leads", row["_id"], {"Stage": "Отказ", "Loss reason": "дорого"})
    sync_all(crm.settings)

    history = [(stage, reason, by) for stage, reason, by in query(
        store, "SELECT stage, reason, changed_by FROM lead_stages WHERE lead_id = 'lead-000001'"
               " ORDER BY changed_at, id")]
    assert history == [("Новый", "", "leadhub"), ("КП отправлено", "", f"sink:{crm.kind}"),
                       ("Отказ", "дорого", f"sink:{crm.kind}")]
    assert query(store, "SELECT stage, loss_reason FROM leads WHERE lead_id = 'lead-000001'"
                 ) == [("Отказ", "дорого")]


def test_a_second_sink_mirrors_the_record(store):
    with FakeAirtable(penalty_seconds=0.5) as airtable, FakeSheets() as sheets:
        record = {**_airtable_sink(airtable), "record": True}
        mirror = _sheets_sink(sheets)
        settings = load_settings(store=store, sinks=[mirror, record])
        for kind in ("airtable", "sheets"):
            build_sink(settings, kind)[0].init_schema()
        add_leads(store, [make_lead(1)])
        sync_all(settings)
        at_record = Crm("airtable", airtable, settings)
        at_mirror = Crm("sheets", sheets, load_settings(store=store, sinks=[mirror]))
        row = next(r for r in at_record.rows("Leads") if r["Lead id"] == "lead-000001")
        at_record.edit("Leads", row["_id"], {"Stage": "Переговоры", "Owner": "Анна"})
        at_mirror.type_row("Leads", {"Name": "В зеркале", "Phone": "8 916 000-00-01"})

        sync_all(settings)

        mirrored = next(r for r in at_mirror.rows("Leads") if r.get("Lead id") == "lead-000001")
        assert (mirrored["Stage"], mirrored["Owner"]) == ("Переговоры", "Анна")
        assert _count(store, "leads") == 1, "people's rows are read from the record only"


def test_typed_rows_are_not_taken_twice(crm, store):
    crm.type_row("Contacts", {"Name": "Лиза Волкова", "Email": "liza@example.ru"})
    for _ in range(3):
        sync_all(crm.settings)
    assert _count(store, "contacts", "origin <> ''") == 1
    assert len([r for r in crm.rows("Contacts") if r.get("Email") == "liza@example.ru"]) == 1
    items = query(store, "SELECT item_id FROM raw_items WHERE source LIKE 'sink:%'")
    assert len(items) == 1 and json.dumps(items)
