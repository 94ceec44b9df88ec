from datetime import UTC, datetime

from transforms.dedupe import ContactBook
from transforms.normalize import normalize_lead
from transforms.records import ParsedLead


def _lead(rules, lead_id, day, phone="", email="", name=""):
    parsed = ParsedLead(lead_id=lead_id, channel="form",
                        received_at=datetime(2026, 1, day, tzinfo=UTC), name=name,
                        phones=[phone] if phone else [], emails=[email] if email else [])
    return normalize_lead(parsed, rules)


def test_same_phone_in_other_format_attaches_to_the_contact(normalize_rules):
    book = ContactBook()
    first = book.add(_lead(normalize_rules, "a", 1, phone="8 912 345-67-89", name="Иван"))
    second = book.add(_lead(normalize_rules, "b", 2, phone="+7(912)3456789"))
    assert first.is_new and not second.is_new
    assert second.contact_key == first.contact_key == "+79123456789"
    contact = book.contacts["+79123456789"]
    assert (contact.leads_count, contact.name) == (2, "Иван")
    assert contact.last_seen == datetime(2026, 1, 2, tzinfo=UTC)


def test_email_in_other_case_attaches(normalize_rules):
    book = ContactBook()
    book.add(_lead(normalize_rules, "a", 1, email="olga@example.ru"))
    result = book.add(_lead(normalize_rules, "b", 2, email="Olga@Example.RU"))
    assert result.contact_key == "olga@example.ru"
    assert len(book.contacts) == 1


def test_key_is_phone_else_email(normalize_rules):
    book = ContactBook()
    assert book.add(_lead(normalize_rules, "a", 1, phone="89123456789",
                          email="x@y.ru")).contact_key == "+79123456789"
    assert book.add(_lead(normalize_rules, "b", 1, email="z@y.ru")).contact_key == "z@y.ru"


def test_lead_linking_two_contacts_merges_them_into_the_earliest(normalize_rules):
    book = ContactBook()
    book.add(_lead(normalize_rules, "a", 5, phone="89123456789", name="Пётр"))
    book.add(_lead(normalize_rules, "b", 1, email="petr@firm.ru", name="Пётр Сидоров"))
    result = book.add(_lead(normalize_rules, "c", 7, phone="89123456789", email="petr@firm.ru"))
    assert result.contact_key == "petr@firm.ru"  # seen on day 1
    assert result.merged == ["+79123456789"]
    assert list(book.contacts) == ["petr@firm.ru"]
    survivor = book.contacts["petr@firm.ru"]
    assert (survivor.leads_count, survivor.phone, survivor.name) == (
        3, "+79123456789", "Пётр Сидоров")
    assert book.merged_into == {"+79123456789": "petr@firm.ru"}
    # the merged contact's identities now lead to the survivor
    assert book.add(_lead(normalize_rules, "d", 9, phone="8 912 345 67 89")).contact_key == (
        "petr@firm.ru")


def test_same_name_different_phones_stay_two_people(normalize_rules):
    book = ContactBook()
    book.add(_lead(normalize_rules, "a", 1, phone="89123456789", name="Игорь"))
    book.add(_lead(normalize_rules, "b", 2, phone="89161234567", name="Игорь"))
    assert len(book.contacts) == 2


def test_invalid_phone_does_not_identify_anyone(normalize_rules):
    book = ContactBook()
    book.add(_lead(normalize_rules, "a", 1, phone="+7 000 000", email="a@b.ru"))
    result = book.add(_lead(normalize_rules, "b", 2, phone="+7 000 000", email="c@d.ru"))
    assert result.is_new


def test_older_lead_arriving_late_gives_the_same_contact(normalize_rules):
    email_first, csv_first = ContactBook(), ContactBook()
    old_row = _lead(normalize_rules, "csv", 1, phone="89035551122", name="Смирнов Игорь")
    new_mail = _lead(normalize_rules, "mail", 5, phone="+7 903 555-11-22", name="Игорь")
    email_first.add(new_mail)
    email_first.add(old_row)
    csv_first.add(old_row)
    csv_first.add(new_mail)
    assert email_first.contacts == csv_first.contacts
    assert email_first.contacts["+79035551122"].name == "Смирнов Игорь"


def test_merged_contact_is_kept_as_retired_for_the_record(normalize_rules):
    book = ContactBook()
    book.add(_lead(normalize_rules, "a", 1, phone="89123456789"))
    book.add(_lead(normalize_rules, "b", 2, email="petr@firm.ru"))
    book.add(_lead(normalize_rules, "c", 3, phone="89123456789", email="petr@firm.ru"))
    assert book.retired["petr@firm.ru"].contact.leads_count == 1
