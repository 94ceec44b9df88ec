from datetime import UTC, datetime

import pytest

from transforms.dedupe import (
    BLOCK_LIMIT,
    DIFFERENT,
    ContactBook,
    block_keys_of,
    new_contact_key,
)
from transforms.normalize import normalize_lead
from transforms.records import ParsedLead


def _lead(rules, lead_id, day, phone="", email="", name="", company=""):
    parsed = ParsedLead(lead_id=lead_id, channel="form",
                        received_at=datetime(2026, 1, day, tzinfo=UTC), name=name,
                        phones=[phone] if phone else [], emails=[email] if email else [],
                        company=company)
    return normalize_lead(parsed, rules)


@pytest.fixture
def book(identity_rules):
    return ContactBook(identity_rules)


def test_a_contact_has_an_id_of_its_own_not_a_phone(book, normalize_rules):
    result = book.add(_lead(normalize_rules, "a", 1, phone="8 912 345-67-89", name="Иван"))
    assert result.is_new and result.contact_key == new_contact_key("a")
    assert result.contact_key.startswith("C-") and "912" not in result.contact_key


def test_same_phone_in_other_format_attaches_to_the_contact(book, normalize_rules):
    first = book.add(_lead(normalize_rules, "a", 1, phone="8 912 345-67-89", name="Иван"))
    second = book.add(_lead(normalize_rules, "b", 2, phone="+7(912)3456789"))
    assert not second.is_new and second.contact_key == first.contact_key
    contact = book.contacts[first.contact_key]
    assert (contact.leads_count, contact.name, contact.phone) == (2, "Иван", "+79123456789")
    assert contact.last_seen == datetime(2026, 1, 2, tzinfo=UTC)
    assert "same phone" in second.reason


@pytest.mark.parametrize(("first", "second"), [
    pytest.param("olga@example.ru", "Olga@Example.RU", id="case"),
    pytest.param("Nesterova.Y@gmail.Com", "nesterovay+crm@gmail.com", id="gmail-dots-and-tag"),
    pytest.param("a.ivanova@ya.ru", "a-ivanova@yandex.kz", id="one-yandex-mailbox"),
    pytest.param("olga@yandex.ru", "olga@yandex.ry", id="typo-in-the-domain"),
])
def test_one_mailbox_written_two_ways_is_one_contact(book, normalize_rules, first, second):
    book.add(_lead(normalize_rules, "a", 1, email=first, name="Ольга"))
    book.add(_lead(normalize_rules, "b", 2, email=second, name="Ольга"))
    assert len(book.contacts) == 1


def test_a_lead_linking_two_contacts_of_one_person_merges_them_into_the_earliest(
        book, normalize_rules):
    by_phone = book.add(_lead(normalize_rules, "a", 5, phone="89123456789", name="Пётр"))
    by_email = book.add(_lead(normalize_rules, "b", 1, email="petr@firm.ru",
                              name="Пётр Сидоров"))
    result = book.add(_lead(normalize_rules, "c", 7, phone="89123456789", email="petr@firm.ru",
                            name="Пётр Сидоров"))
    assert result.contact_key == by_email.contact_key  # seen on day 1
    assert result.merged == [by_phone.contact_key]
    survivor = book.contacts[by_email.contact_key]
    assert (survivor.leads_count, survivor.phone, survivor.name) == (
        3, "+79123456789", "Пётр Сидоров")
    assert book.merged_into == {by_phone.contact_key: by_email.contact_key}
    assert book.add(_lead(normalize_rules, "d", 9, phone="8 912 345 67 89")).contact_key == (
        by_email.contact_key)


def test_a_husband_writing_from_his_wifes_mailbox_is_not_merged_with_her(
        book, normalize_rules):
    sergey = book.add(_lead(normalize_rules, "a", 1, phone="+7 916 555-01-01",
                            name="Сергей Волков"))
    marina = book.add(_lead(normalize_rules, "b", 2, email="marina.volkova@yandex.ru",
                            name="Марина Волкова"))
    result = book.add(_lead(normalize_rules, "c", 3, phone="8 (916) 555-01-01",
                            email="Marina.Volkova@yandex.ru", name="Сергей Волков"))
    assert result.contact_key == sergey.contact_key and result.merged == []
    assert len(book.contacts) == 2
    assert ("email", "marina-volkova@yandex.ru") in book.new_shared
    again = book.add(_lead(normalize_rules, "d", 4, email="marina.volkova@yandex.ru",
                           name="Марина"))
    assert again.contact_key == marina.contact_key


def test_colleagues_behind_one_office_line_stay_apart(book, normalize_rules):
    ivanov = book.add(_lead(normalize_rules, "a", 1, phone="8 (342) 052-16-74 доб. 280",
                            name="Иванов Пётр", company="ООО Ромашка"))
    sidorova = book.add(_lead(normalize_rules, "b", 2, phone="8 (342) 052-16-74 доб. 281",
                              name="Сидорова Анна", company="Ромашка"))
    assert sidorova.is_new and sidorova.contact_key != ivanov.contact_key
    again = book.add(_lead(normalize_rules, "c", 3, phone="+7 342 052-16-74 доб. 280",
                           name="Пётр Иванов"))
    assert again.contact_key == ivanov.contact_key


def test_a_switchboard_number_given_by_two_people_is_marked_shared(book, normalize_rules):
    first = book.add(_lead(normalize_rules, "a", 1, phone="8 (342) 052-16-74",
                           name="Иванов Пётр"))
    second = book.add(_lead(normalize_rules, "b", 2, phone="8 (342) 052-16-74",
                            name="Сидорова Анна"))
    assert second.is_new and second.contact_key != first.contact_key
    assert ("phone", "+73420521674") in book.new_shared
    assert book.add(_lead(normalize_rules, "c", 3, phone="8 (342) 052-16-74",
                          name="Анна Сидорова")).contact_key == second.contact_key


def test_nameless_calls_from_a_shared_line_are_one_unknown_caller(book, normalize_rules):
    book.add(_lead(normalize_rules, "a", 1, phone="8 (342) 052-16-74", name="Иванов Пётр"))
    book.add(_lead(normalize_rules, "b", 2, phone="8 (342) 052-16-74", name="Сидорова Анна"))
    first = book.add(_lead(normalize_rules, "c", 3, phone="8 (342) 052-16-74"))
    second = book.add(_lead(normalize_rules, "d", 4, phone="8 (342) 052-16-74"))
    assert first.is_new and second.contact_key == first.contact_key
    assert len(book.contacts) == 3


def test_same_name_different_phones_stay_two_people(book, normalize_rules):
    book.add(_lead(normalize_rules, "a", 1, phone="89123456789", name="Игорь"))
    book.add(_lead(normalize_rules, "b", 2, phone="89161234567", name="Игорь"))
    assert len(book.contacts) == 2


def test_name_and_company_without_a_common_identity_go_to_people(book, normalize_rules):
    phone_only = book.add(_lead(normalize_rules, "a", 1, phone="89123456789",
                                name="Нестерова Юлия", company="ООО «Вектор»"))
    email_only = book.add(_lead(normalize_rules, "b", 2, email="y.nesterova@vector.ru",
                                name="Юлия Нестерова", company="Вектор"))
    assert email_only.is_new
    [pair] = book.pairs.values()
    assert {pair.a, pair.b} == {phone_only.contact_key, email_only.contact_key}
    assert 0.5 <= pair.score < 0.99 and any("company" in reason for reason in pair.reasons)


def test_a_pair_a_merge_of_the_same_book_settles_is_kept_closed(book, normalize_rules):
    """As the store closes a pair a batch before found: the same history
    whether the pair and the merge fell in one batch or two."""
    phone_only = book.add(_lead(normalize_rules, "a", 1, phone="89123456789",
                                name="Нестерова Юлия", company="ООО «Вектор»"))
    email_only = book.add(_lead(normalize_rules, "b", 2, email="y.nesterova@vector.ru",
                                name="Юлия Нестерова", company="Вектор"))
    [found] = book.pairs.values()
    both = book.add(_lead(normalize_rules, "c", 3, phone="89123456789",
                          email="y.nesterova@vector.ru", name="Юлия Нестерова"))
    assert both.merged and {both.contact_key, *both.merged} == {
        phone_only.contact_key, email_only.contact_key}
    assert book.pairs == {} and list(book.closed_pairs.values()) == [found]


def test_a_pair_people_kept_apart_is_never_merged_or_asked_again(book, normalize_rules):
    first = book.add(_lead(normalize_rules, "a", 1, phone="89123456789", name="Пётр Сидоров"))
    second = book.add(_lead(normalize_rules, "b", 2, email="petr@firm.ru", name="Пётр Сидоров"))
    book.pairs.clear()
    book.decisions[frozenset((first.contact_key, second.contact_key))] = DIFFERENT
    result = book.add(_lead(normalize_rules, "c", 3, phone="89123456789", email="petr@firm.ru",
                            name="Пётр Сидоров"))
    assert result.merged == [] and len(book.contacts) == 2
    assert book.pairs == {}


def test_invalid_phone_does_not_identify_anyone(book, normalize_rules):
    book.add(_lead(normalize_rules, "a", 1, phone="+7 000 000", email="a@b.ru"))
    result = book.add(_lead(normalize_rules, "b", 2, phone="+7 000 000", email="c@d.ru"))
    assert result.is_new


def test_older_lead_arriving_late_gives_the_same_contact(identity_rules, normalize_rules):
    email_first, csv_first = ContactBook(identity_rules), ContactBook(identity_rules)
    old_row = _lead(normalize_rules, "csv", 1, phone="89035551122", name="Смирнов Игорь")
    new_mail = _lead(normalize_rules, "mail", 5, phone="+7 903 555-11-22", name="Игорь")
    email_first.add(new_mail)
    email_first.add(old_row)
    csv_first.add(old_row)
    csv_first.add(new_mail)
    [one], [other] = email_first.contacts.values(), csv_first.contacts.values()
    assert (one.name, one.first_seen, one.leads_count) == (
        other.name, other.first_seen, other.leads_count) == (
        "Смирнов Игорь", datetime(2026, 1, 1, tzinfo=UTC), 2)


def test_merged_contact_is_kept_as_retired_for_the_record(book, normalize_rules):
    phone = book.add(_lead(normalize_rules, "a", 1, phone="89123456789", name="Пётр"))
    book.add(_lead(normalize_rules, "b", 2, email="petr@firm.ru", name="Пётр"))
    book.add(_lead(normalize_rules, "c", 3, phone="89123456789", email="petr@firm.ru",
                   name="Пётр"))
    [merge] = book.merges
    assert book.retired[merge.loser].contact.leads_count == 1
    assert merge.survivor == phone.contact_key


def test_a_full_block_takes_no_more_members(identity_rules, normalize_rules):
    book = ContactBook(identity_rules, full_blocks={"n:petrov|ivan"})
    result = book.add(_lead(normalize_rules, "a", 1, phone="89123456789", name="Иван Петров"))
    member = book.members[result.contact_key]
    assert "n:petrov|ivan" not in member.block_keys and member.block_keys
    assert BLOCK_LIMIT > 1


def _name_keys_of(lead, identity_rules):
    return {key for key in block_keys_of(lead, identity_rules) if key.startswith("n:")}


@pytest.mark.parametrize(("company", "found"), [
    pytest.param("Ромашка", True, id="the-same-company-still-narrows-a-common-name"),
    pytest.param("", False, id="a-common-name-alone-finds-no-one"),
])
def test_a_full_name_block_finds_no_candidates(identity_rules, normalize_rules, company, found):
    first = _lead(normalize_rules, "a", 1, phone="89123456789", name="Иван Петров",
                  company=company)
    book = ContactBook(identity_rules)
    book.add(first)
    # then the name's keys fill up, as a million-contact book fills a common name's
    book.full_blocks |= _name_keys_of(first, identity_rules)
    second = book.add(_lead(normalize_rules, "b", 2, email="ivan@example.ru",
                            name="Иван Петров", company=company))
    assert (not second.is_new or bool(second.maybe)) is found

