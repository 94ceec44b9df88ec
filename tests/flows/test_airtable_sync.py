"""Sync to Airtable, against the local Airtable server (tests/fakes/airtable.py):
the fewest calls at the rate limit, never a duplicate, people's edits kept."""

from __future__ import annotations

import math
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
from tests.fakes.airtable import FakeAirtable
from tests.fakes.clock import FakeClock
from tests.flows.crm_helpers import add_leads, contact_of, make_lead, seed, sinks_on
from tests.store import query

BASE = "appTESTBASE000001"
TOKEN = "patTEST.secret"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def airtable(monkeypatch):
    """The local Airtable and every sink the test builds on one fake clock."""
    clock = FakeClock()
    sinks_on(clock, monkeypatch)
    with FakeAirtable(TOKEN, bases=(BASE,), penalty_seconds=0.5, clock=clock) as fake:
        yield fake


@pytest.fixture
def airtable_on_the_real_clock():
    """For a sync in another process, which cannot share a fake clock."""
    with FakeAirtable(TOKEN, bases=(BASE,), penalty_seconds=0.5) as fake:
        yield fake


def settings_for(fake: FakeAirtable, store: Path, **sink):
    config = {"type": "airtable", "base": BASE, "token": TOKEN, "endpoint_url": fake.url,
              "rate_limit_wait_seconds": fake.penalty_seconds, **sink}
    return load_settings(store=str(store), sinks=[config])


def ready_base(fake: FakeAirtable, store: Path, **sink):
    settings = settings_for(fake, store, **sink)
    sink_object, _ = build_sink(settings, "airtable")
    sink_object.init_schema()
    fake.reset_calls()
    return settings


def records_by(fake: FakeAirtable, table: str, field: str) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for record in fake.table_records(BASE, table):
        found.setdefault(record["fields"].get(field), []).append(record)
    return found


def test_first_sync_writes_ten_records_a_call_and_a_second_run_writes_nothing(airtable, store):
    seed(store, 2000)
    settings = ready_base(airtable, store)

    stats = sync_all(settings)["airtable"]

    assert stats["created"] == 4000 and stats["failed"] == 0
    assert airtable.write_calls == 2 * math.ceil(2000 / 10)
    contacts = records_by(airtable, "Contacts", "Contact key")
    leads = records_by(airtable, "Leads", "Lead id")
    assert len(contacts) == 2000 and all(len(rows) == 1 for rows in contacts.values())
    assert len(leads) == 2000
    lead = leads["lead-000007"][0]["fields"]
    assert lead["Contact"] == [contacts[contact_of(7)][0]["id"]]
    assert contacts[contact_of(7)][0]["fields"]["Status"] == "Новый"

    airtable.reset_calls()
    again = sync_all(settings)["airtable"]
    assert airtable.write_calls == 0
    assert again["created"] == again["updated"] == 0
    assert airtable.calls["rate_limited"] == 0


def test_a_persons_status_and_name_correction_survive_the_next_sync(airtable, store):
    seed(store, 20)
    settings = ready_base(airtable, store)
    sync_all(settings)
    row = records_by(airtable, "Contacts", "Contact key")[contact_of(3)][0]
    airtable.person_edit(BASE, "Contacts", row["id"], {"Status": "В работе",
                                                       "Name": "Иван Петрович"})
    lead = records_by(airtable, "Leads", "Lead id")["lead-000003"][0]
    airtable.person_edit(BASE, "Leads", lead["id"], {"Stage": "КП отправлено"})
    # the same person writes again: LeadHub's fields of the contact change
    add_leads(store, [make_lead(500, phone_number=3, name="Клиент 3")])

    airtable.reset_calls()
    stats = sync_all(settings)["airtable"]

    fields = records_by(airtable, "Contacts", "Contact key")[contact_of(3)][0]["fields"]
    assert fields["Status"] == "В работе"
    assert fields["Name"] == "Иван Петрович"
    assert fields["Leads count"] == 2
    assert stats["created"] == 1  # the new lead
    ledger = Ledger(store)
    try:
        [(stage,)] = query(store, "SELECT stage FROM leads WHERE lead_id = 'lead-000003'")
        lead_state = ledger.sink_states("airtable", "leads")["lead-000003"]
    finally:
        ledger.close()
    assert stage == "КП отправлено"
    # the lead's link read back as its contact's key: LeadHub still owns it
    assert lead_state.edited == frozenset()


def test_rate_limit_storms_and_503_blips_land_every_record_once(airtable, store):
    seed(store, 120)
    settings = ready_base(airtable, store)
    # another tool shares the base: Airtable lets through fewer than LeadHub sends
    airtable.rate_per_second = 3
    airtable.fail_next(3, status=503)
    airtable.fail_next(2, status=503, after_apply=True)

    stats = sync_all(settings)["airtable"]

    assert stats["failed"] == 0
    assert airtable.calls["rate_limited"] >= 1
    for table, key in (("Contacts", "Contact key"), ("Leads", "Lead id")):
        rows = records_by(airtable, table, key)
        assert len(rows) == 120 and all(len(r) == 1 for r in rows.values())


def test_killed_mid_sync_then_run_again_leaves_no_duplicates_and_nothing_missing(
        airtable_on_the_real_clock, store):
    airtable = airtable_on_the_real_clock
    seed(store, 300)
    ready_base(airtable, store)
    # the sync freezes after 12 writes, whatever the machine's speed, until killed
    frozen = airtable.hold_after_writes(12)
    script = (
        "import sys; from leadhub.settings import load_settings; from flows.sync import sync_all;"
        f"sync_all(load_settings(store={str(store)!r}, sinks=[{{'type': 'airtable',"
        f" 'base': {BASE!r}, 'token': {TOKEN!r}, 'endpoint_url': {airtable.url!r}}}]))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, "-c", script], env=env, cwd=ROOT)
    try:
        frozen.wait(timeout=300)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    airtable.release()
    assert 12 <= airtable.write_calls < 60, "the sync was killed in the middle"

    sync_all(settings_for(airtable, store))

    for table, key in (("Contacts", "Contact key"), ("Leads", "Lead id")):
        rows = records_by(airtable, table, key)
        assert len(rows) == 300 and all(len(r) == 1 for r in rows.values())


@pytest.mark.parametrize(("policy", "recreated"), [("recreate", True), ("leave", False)],
                         ids=["default-recreates", "leave-keeps-it-deleted"])
def test_a_contact_row_people_deleted(airtable, store, policy, recreated):
    seed(store, 10)
    settings = ready_base(airtable, store, deleted_rows=policy, full_scan_minutes=0)
    sync_all(settings)
    row = records_by(airtable, "Contacts", "Contact key")[contact_of(4)][0]
    airtable.person_delete(BASE, "Contacts", row["id"])

    sync_all(settings)

    assert (contact_of(4) in records_by(airtable, "Contacts", "Contact key")) is recreated


def test_a_record_airtable_refuses_is_split_out_and_the_rest_lands(airtable, store):
    add_leads(store, [make_lead(n) for n in range(1, 10)]
              + [make_lead(10, source="Неизвестный источник")])
    settings = ready_base(airtable, store, typecast=False)

    stats = sync_all(settings)["airtable"]

    assert stats["failed"] == 1  # the contact with the unknown option
    assert stats["deferred"] == 1  # its lead waits for it
    assert len(records_by(airtable, "Contacts", "Contact key")) == 9
    assert len(records_by(airtable, "Leads", "Lead id")) == 9
    ledger = Ledger(store)
    try:
        errors = ledger.sink_error_list()
    finally:
        ledger.close()
    assert [row["record_key"] for row in errors] == [contact_of(10)]
    assert "INVALID_MULTIPLE_CHOICE_OPTIONS" in errors[0]["error"]
    airtable.reset_calls()
    sync_all(settings)
    assert airtable.write_calls == 0, "a refused row is not re-sent until it changes"


def test_a_wrong_token_names_the_base_and_the_scopes(airtable, store):
    seed(store, 1)
    settings = load_settings(store=str(store), sinks=[{
        "type": "airtable", "base": BASE, "token": "patWRONG", "endpoint_url": airtable.url}])
    with pytest.raises(FatalError, match=rf"{BASE}.*401.*data\.records:write"):
        sync_all(settings)


def test_an_unknown_field_names_it_and_suggests_schema_init(airtable, store):
    seed(store, 1)
    ready_base(airtable, store)
    renamed = settings_for(airtable, store, tables={"contacts": {"fields": {"city": "Город"}}})
    with pytest.raises(FatalError, match=r"Город.*leadhub schema init airtable"):
        sync_all(renamed)


def test_schema_init_then_check(airtable, tmp_path):
    settings = settings_for(airtable, tmp_path / "leadhub.db")
    sink, _ = build_sink(settings, "airtable")
    assert "table 'Contacts' is missing" in sink.problems()

    created, manual = sink.init_schema()

    assert "table Contacts" in created and "Leads.Contact" in created
    schema = sink.schema(refresh=True)
    assert schema["Leads"]["by_name"]["Contact"]["options"]["linkedTableId"] == (
        schema["Contacts"]["id"])
    assert schema["Contacts"]["by_name"]["Source"]["type"] == "singleSelect"
    assert sink.problems() == []
    assert sink.manual_steps() == manual
    assert "Order items.Revenue: a Formula field `{Price} * {Quantity}`" in manual
    again, _ = sink.init_schema()
    assert again == []


def test_orders_people_keep_come_back_into_the_ledger(airtable, store):
    seed(store, 3)
    settings = ready_base(airtable, store)
    sync_all(settings)
    contact = records_by(airtable, "Contacts", "Contact key")[contact_of(2)][0]["id"]
    order = airtable.person_create(BASE, "Orders", {
        "Order": "A-1", "Date": "2026-11-20", "Status": "Оплачен", "Contact": [contact]})
    airtable.person_create(BASE, "Order items", {
        "Item": "1", "Order": [order], "Product": "Диван", "Price": 1000, "Cost": 600,
        "Quantity": 2})

    stats = sync_all(settings)["airtable"]

    assert stats["orders_read"] == 1 and stats["order_items_read"] == 1
    row = query(store, "SELECT contact_key, status FROM orders")
    assert row == [(contact_of(2), "Оплачен")]
    ledger = Ledger(store)
    try:
        item = next(ledger.export_order_items())
    finally:
        ledger.close()
    assert (item["product"], item["price"], item["quantity"]) == ("Диван", 1000, 2)


def test_check_names_fields_of_the_wrong_type_and_wrong_links(airtable, tmp_path):
    settings = settings_for(airtable, tmp_path / "leadhub.db")
    sink, _ = build_sink(settings, "airtable")
    sink.init_schema()
    contacts = sink.schema(refresh=True)["Contacts"]
    # a person's own phone field is a checkbox, and their leads table links to itself
    airtable.person_add_field(BASE, contacts["id"], {
        "name": "Телефон", "type": "checkbox",
        "options": {"icon": "check", "color": "greenBright"}})
    other = airtable.create_table(BASE, "Заявки", [{"name": "Lead id", "type": "singleLineText"}])
    airtable.person_add_field(BASE, other["id"], {
        "name": "Contact", "type": "multipleRecordLinks",
        "options": {"linkedTableId": other["id"]}})
    mapped = settings_for(airtable, tmp_path / "leadhub.db", tables={
        "contacts": {"fields": {"phone": "Телефон"}}, "leads": {"title": "Заявки"}})
    sink, _ = build_sink(mapped, "airtable")

    problems = sink.problems()

    assert ("Contacts.Телефон is a checkbox field; LeadHub needs one of: phoneNumber,"
            " singleLineText") in problems
    assert "Заявки.Contact does not link to Contacts" in problems
    assert "Заявки.Received at is missing" in problems


def test_a_base_made_with_language_ru_has_russian_titles_and_syncs_through_them(airtable,
                                                                                 store):
    seed(store, 5)
    settings = settings_for(airtable, store, language="ru")
    sink, _ = build_sink(settings, "airtable")
    created, manual = sink.init_schema()
    assert "table Контакты" in created and "Лиды.Стадия" in created
    assert "Позиции заказов.Выручка: a Formula field `{Цена} * {Количество}`" in manual
    assert sink.problems() == []

    stats = sync_all(settings)["airtable"]
    assert stats["created"] == 10 and stats["failed"] == 0
    contact = records_by(airtable, "Контакты", "Ключ контакта")[contact_of(2)][0]
    assert contact["fields"]["Имя"] and contact["fields"]["Телефон"]
    assert contact["fields"]["Статус"] == "Новый"
    lead = records_by(airtable, "Лиды", "Номер лида")["lead-000002"][0]
    assert lead["fields"]["Контакт"] == [contact["id"]]
    airtable.person_edit(BASE, "Лиды", lead["id"], {"Стадия": "КП отправлено"})
    airtable.person_edit(BASE, "Контакты", contact["id"], {"Статус": "В работе"})

    sync_all(settings)

    [(stage,)] = query(store, "SELECT stage FROM leads WHERE lead_id = 'lead-000002'")
    assert stage == "КП отправлено"
    assert records_by(airtable, "Контакты", "Ключ контакта")[contact_of(2)][0][
        "fields"]["Статус"] == "В работе"
    assert "Contacts" not in sink.schema(refresh=True)


def test_a_base_made_in_english_keeps_its_titles_when_the_sink_turns_to_russian(airtable,
                                                                                store):
    seed(store, 3)
    ready_base(airtable, store)
    sync_all(settings_for(airtable, store))
    in_russian = settings_for(airtable, store, language="ru",
                              tables={"tasks": {"title": "Мои задачи"}})
    sink, _ = build_sink(in_russian, "airtable")

    created, _ = sink.init_schema()

    # only the table titled explicitly is new; the rest stays as the base has it
    assert created and all(what.startswith(("table Мои задачи", "Мои задачи."))
                           for what in created)
    add_leads(store, [make_lead(50)])
    stats = sync_all(in_russian)["airtable"]
    assert stats["failed"] == 0 and stats["created"] == 2
    assert len(records_by(airtable, "Contacts", "Contact key")) == 4
    assert "Контакты" not in sink.schema(refresh=True)
