"""Field ownership: what LeadHub writes to a CRM row, and what it leaves to people."""

from __future__ import annotations

import pytest

from transforms.crm import (
    RemoteRow,
    SyncState,
    TableNames,
    canonical,
    content_hash,
    default_tables,
    desired_row,
    plan_row,
    rename_tables,
)

TABLES = default_tables(["Сайт", "Email", "Другое"], ["Новый", "В работе", "КП отправлено"])
CONTACTS = TABLES["contacts"]
KEY = "+79123456789"


def desired(**changes) -> dict:
    values = {"contact_key": KEY, "name": "Иван Петров", "phone": KEY,
              "email": "ivan@example.ru", "source": "Сайт",
              "first_seen": "2026-11-01T09:00:00+00:00", "leads_count": 1}
    return desired_row(CONTACTS, {**values, **changes})


def synced(values: dict, edited=()) -> SyncState:
    return SyncState(content_hash(values), "recAAAAAAAAAAAAAA", dict(values), frozenset(edited))


def test_a_new_row_gets_leadhub_fields_and_the_people_defaults():
    write = plan_row(CONTACTS, desired(), None, None)
    assert write.create
    assert write.values["name"] == "Иван Петров"
    assert write.values["status"] == "Новый"
    assert "owner" not in write.values and "merged_into" not in write.values


def test_an_unchanged_row_is_not_written():
    values = desired()
    assert plan_row(CONTACTS, values, synced(values), None) is None


def test_only_changed_fields_are_sent():
    before = desired()
    write = plan_row(CONTACTS, desired(leads_count=2), synced(before), None)
    assert write.values == {"leads_count": 2.0}
    assert not write.create and write.remote_id == "recAAAAAAAAAAAAAA"


def test_a_persons_correction_of_a_leadhub_field_is_kept():
    before = desired()
    remote = RemoteRow("recAAAAAAAAAAAAAA", KEY, {**before, "name": "Иван Петрович"})
    write = plan_row(CONTACTS, desired(name="Иван Петров", leads_count=2), synced(before), remote)
    assert "name" not in write.values
    assert write.values == {"leads_count": 2.0}
    assert "name" in write.state.edited
    # ... and stays theirs on later runs, when the row is not read again
    later = plan_row(CONTACTS, desired(name="Иван П.", leads_count=3), write.state, None)
    assert "name" not in later.values


def test_a_field_a_person_emptied_is_filled_again():
    before = desired()
    remote = RemoteRow("recAAAAAAAAAAAAAA", KEY, {**before, "email": None})
    write = plan_row(CONTACTS, before, synced(before), remote)
    assert write.values == {"email": "ivan@example.ru"}


def test_people_owned_fields_are_never_sent_to_an_existing_row():
    before = desired()
    remote = RemoteRow("recAAAAAAAAAAAAAA", KEY, {**before, "status": "Клиент"})
    write = plan_row(CONTACTS, desired(leads_count=5), synced(before), remote)
    assert set(write.values) == {"leads_count"}


def test_a_row_a_person_created_with_the_key_keeps_their_values():
    remote = RemoteRow("recBBBBBBBBBBBBBB", KEY, {"contact_key": KEY, "name": "Ваня"})
    write = plan_row(CONTACTS, desired(), None, remote)
    assert not write.create
    assert "name" not in write.values and write.values["email"] == "ivan@example.ru"
    assert "status" not in write.values


def test_a_deleted_row_is_created_again_with_defaults():
    values = desired()
    write = plan_row(CONTACTS, values, synced(values), None, gone=True)
    assert write.create and write.values["status"] == "Новый"


def row_holding(values: dict, **changes) -> RemoteRow:
    """The row as read back: LeadHub's values, the people default, changes."""
    return RemoteRow("recAAAAAAAAAAAAAA", KEY, {**values, "status": "Новый", **changes})


def test_a_row_a_killed_run_created_is_leadhubs_and_takes_later_changes():
    created = plan_row(CONTACTS, desired(), None, None)
    # killed before the answer: the row is there, only the intent was kept
    later = plan_row(CONTACTS, desired(leads_count=2), created.intent, row_holding(desired()))
    assert not later.create
    assert later.values == {"leads_count": 2.0}
    assert later.state.edited == frozenset() and later.state.pending is None


@pytest.mark.parametrize("landed", [True, False], ids=["applied", "not-applied-but-read"])
def test_an_update_a_killed_run_sent_is_leadhubs_whether_it_landed_or_not(landed):
    before = desired()
    sent = plan_row(CONTACTS, desired(leads_count=2), synced(before), None)
    held = desired(leads_count=2) if landed else before
    # read back because it changed: by LeadHub's write, or by a person's status
    remote = row_holding(held, status="Клиент")
    later = plan_row(CONTACTS, desired(leads_count=3), sent.intent, remote)
    assert later.values == {"leads_count": 3.0}
    assert later.state.edited == frozenset()


@pytest.mark.parametrize("created", [True, False], ids=["creation", "update"])
def test_a_write_a_killed_run_never_sent_is_sent_again(created):
    before = desired()
    state = None if created else synced(before)
    sent = plan_row(CONTACTS, desired(leads_count=2), state, None)
    # not read: the row did not change since the last finished sync
    again = plan_row(CONTACTS, desired(leads_count=2), sent.intent, None)
    assert again.create is created
    assert again.values["leads_count"] == 2.0


def test_a_persons_edit_after_a_pending_write_is_theirs():
    before = desired()
    sent = plan_row(CONTACTS, desired(leads_count=2), synced(before), None)
    remote = row_holding(desired(leads_count=2), name="Иван Петрович")
    later = plan_row(CONTACTS, desired(leads_count=3), sent.intent, remote)
    assert later.state.edited == {"name"}
    assert later.values == {"leads_count": 3.0}


def test_two_killed_runs_in_a_row_keep_what_the_first_one_landed():
    first = plan_row(CONTACTS, desired(leads_count=2), synced(desired()), None)
    # the second run finds the first write, sends another and is killed before it lands
    second = plan_row(CONTACTS, desired(leads_count=3), first.intent,
                      row_holding(desired(leads_count=2)))
    third = plan_row(CONTACTS, desired(leads_count=3), second.intent,
                     row_holding(desired(leads_count=2), status="Клиент"))
    assert third.values == {"leads_count": 3.0}
    assert third.state.edited == frozenset()


@pytest.mark.parametrize(
    ("field_name", "given", "expected"),
    [
        ("first_seen", "2026-11-01T12:00:00+03:00", "2026-11-01T09:00:00Z"),
        ("first_seen", "2026-11-01T09:00:00.000Z", "2026-11-01T09:00:00Z"),
        ("leads_count", "3", 3.0),
        ("name", "  Иван  ", "Иван"),
        ("name", "", None),
        ("name", {"error": "#ERROR!"}, None),
    ],
    ids=["datetime-offset", "datetime-airtable-ms", "number-text", "text-trimmed",
         "empty-is-none", "formula-error"],
)
def test_canonical_values_compare_whatever_the_sink_returned(field_name, given, expected):
    assert canonical(CONTACTS.field(field_name), given) == expected


def test_config_titles_rename_tables_and_fields():
    renamed = rename_tables(TABLES, {"contacts": TableNames("Клиенты", {"name": "ФИО"})})
    assert renamed["contacts"].title == "Клиенты"
    assert renamed["contacts"].field("name").title == "ФИО"
    with pytest.raises(ValueError, match="has no field.*its fields are"):
        rename_tables(TABLES, {"contacts": TableNames(None, {"nmae": "ФИО"})})


def test_a_value_written_another_way_is_the_same_but_another_word_is_an_edit():
    from transforms.crm import same_values

    same = same_values(CONTACTS, "RU")
    assert same("phone", "8 912 345 67 89", "+7 (912) 345-67-89")
    assert same("name", "мария  соколова", "Мария Соколова")
    assert same("email", " Maria@Example.ru", "maria@example.ru")
    # words that are not read as a person's name still differ from each other
    assert not same("name", "Правка 1", "Клиент 9")
    assert same("name", "правка 1", "Правка 1")
    assert not same("company", "Ромашка", "Лютик")


def test_russian_titles_give_way_to_the_configs_own_and_formulas_follow_the_titles():
    from transforms.crm import TableNames, default_tables, keep_existing_titles, titled_tables

    tables = titled_tables(default_tables(["Сайт"], ["Новый"]), "ru", {
        "contacts": TableNames(fields={"name": "ФИО"})})

    contacts = tables["contacts"]
    assert (contacts.title, contacts.field("name").title, contacts.field("phone").title) == (
        "Контакты", "ФИО", "Телефон")
    assert tables["leads"].field("stage").title == "Стадия"
    assert tables["order_items"].field("profit").formula == "{Выручка} - {Себестоимость итого}"
    kept = keep_existing_titles(tables, {"Contacts", "Лиды"})
    assert kept["contacts"].title == "Contacts" and kept["contacts"].field("name").title == "ФИО"
    assert kept["leads"].title == "Лиды" and kept["tasks"].title == "Задачи"


def test_english_is_the_default_language_of_the_titles():
    from transforms.crm import default_tables, titled_tables

    tables = titled_tables(default_tables(["Сайт"], ["Новый"]), "en", {})
    assert tables == default_tables(["Сайт"], ["Новый"])
    assert all(table.english is None for table in tables.values())
