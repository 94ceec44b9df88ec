import math
from datetime import UTC, datetime

import pytest

from transforms.matching import (
    PRIOR_MATCH,
    combine_evidence,
    compare,
    evidence_from_lead,
    evidence_of,
)
from transforms.normalize import normalize_lead
from transforms.records import ParsedLead


@pytest.fixture
def lead_evidence(normalize_rules, identity_rules):
    def build(name="", phone="", email="", company="", city=""):
        parsed = ParsedLead(
            lead_id="x", channel="form", received_at=datetime(2026, 1, 1, tzinfo=UTC),
            name=name, phones=[phone] if phone else [], emails=[email] if email else [],
            company=company, city=city)
        return evidence_from_lead(normalize_lead(parsed, normalize_rules), identity_rules)
    return build


def test_a_colleague_on_the_office_line_with_another_extension_is_not_a_match(
        lead_evidence, identity_rules):
    first = lead_evidence("Игорь Смирнов", "8 (342) 052-16-74 доб. 280")
    second = lead_evidence("Олег Петров", "+7 342 052-16-74 вн. 281")
    result = compare(first, second, identity_rules)
    assert result.decision == "distinct"
    assert "same phone, other extension" in result.reasons
    assert "names differ: Игорь / Олег" in result.reasons


def test_the_same_person_with_the_phone_written_two_ways_is_a_match(lead_evidence,
                                                                    identity_rules):
    first = lead_evidence("Иван Петров", "8 912 345-67-89")
    second = lead_evidence("Петров Иван", "+7(912)3456789")
    result = compare(first, second, identity_rules)
    assert result.decision == "match"
    assert result.reasons[0] == "same phone"


def test_the_same_extension_is_the_same_person(lead_evidence, identity_rules):
    first = lead_evidence("Игорь Смирнов", "8 (342) 052-16-74 доб. 280")
    second = lead_evidence("Игорь Смирнов", "+7 342 052 16 74 ext. 280")
    assert compare(first, second, identity_rules).decision == "match"


def test_a_family_mailbox_with_another_first_name_is_not_a_match(lead_evidence, identity_rules):
    husband = lead_evidence("Андрей Журавлёв", email="zhuravlevy@mail.ru")
    wife = lead_evidence("Ольга Журавлёва", email="Zhuravlevy@mail.ru")
    result = compare(husband, wife, identity_rules)
    assert result.decision == "distinct"
    assert "same family mailbox (zhuravlevy@)" in result.reasons


def test_the_same_person_writing_again_from_a_family_mailbox_is_a_match(lead_evidence,
                                                                        identity_rules):
    first = lead_evidence("Ольга Журавлёва", email="zhuravlevy@mail.ru")
    second = lead_evidence("Журавлева Ольга", email="zhuravlevy@mail.ru")
    assert compare(first, second, identity_rules).decision == "match"


def test_name_and_company_without_a_shared_identifier_goes_to_review(lead_evidence,
                                                                     identity_rules):
    by_phone = lead_evidence("Иван Петров", "8 912 345-67-89", company="ООО «Ромашка»")
    by_mail = lead_evidence("Петров Иван", email="ivan.p@gmail.com", company="Ромашка")
    result = compare(by_phone, by_mail, identity_rules)
    assert result.decision == "review"
    assert 0.5 < result.probability < 0.99
    assert result.reasons == ("same name and company",)


def test_two_igors_with_different_phones_stay_two_people(lead_evidence, identity_rules):
    first = lead_evidence("Игорь", "89123456789")
    second = lead_evidence("Игорь", "89161234567")
    assert compare(first, second, identity_rules).decision == "distinct"


def test_namesakes_with_their_own_phones_and_mailboxes_are_not_merged(lead_evidence,
                                                                      identity_rules):
    first = lead_evidence("Иван Петров", "89123456789", "ivan@romashka.ru")
    second = lead_evidence("Иван Петров", "89161234567", "petrov@lutik.ru")
    assert compare(first, second, identity_rules).decision == "distinct"


@pytest.mark.parametrize(
    ("first", "second"),
    [
        pytest.param("Игорь Смирнов", "Олег Смирнов", id="other-first-name"),
        pytest.param("Евгений Смирнов", "Евгения Смирнова", id="other-gender"),
        pytest.param("Иван Петрович Смирнов", "Иван Сергеевич Смирнов", id="other-patronymic"),
        pytest.param("Анна Смирнова", "Анна Козлова", id="other-surname"),
    ],
)
def test_an_identifier_match_with_incompatible_names_is_never_a_match(
        first, second, lead_evidence, identity_rules):
    a = lead_evidence(first, "89123456789", "smirnov@romashka.ru", company="Ромашка")
    b = lead_evidence(second, "89123456789", "smirnov@romashka.ru", company="Ромашка")
    assert compare(a, b, identity_rules).decision != "match"


def test_a_shared_identity_weighs_much_less(lead_evidence, identity_rules):
    first = lead_evidence("Иван Петров", "8 (342) 052-16-74")
    second = lead_evidence("Иван Петров", "8 (342) 052-16-74")
    unmarked = compare(first, second, identity_rules)
    marked = compare(first, second, identity_rules, shared=frozenset({"+73420521674"}))
    assert unmarked.decision == "match"
    assert marked.decision == "review"
    assert marked.weight < unmarked.weight - 5
    assert "shared office line" in marked.reasons


def test_a_role_mailbox_weighs_less_before_it_is_marked(lead_evidence, identity_rules):
    role = compare(lead_evidence("Иван", email="info@romashka.ru"),
                   lead_evidence(email="info@romashka.ru"), identity_rules)
    personal = compare(lead_evidence("Иван", email="ivan@romashka.ru"),
                       lead_evidence(email="ivan@romashka.ru"), identity_rules)
    assert personal.decision == "match"
    assert role.decision != "match"
    assert "same role mailbox (info@)" in role.reasons


@pytest.mark.parametrize(
    ("first", "second", "reason"),
    [
        pytest.param({"phone": "8 912 345-67-89"}, {"phone": "+79123456789"}, "same phone",
                     id="same-phone"),
        pytest.param({"phone": "8 (342) 052-16-74 доб. 280"},
                     {"phone": "8 (342) 052-16-74 доб. 281"}, "same phone, other extension",
                     id="other-extension"),
        pytest.param({"email": "Nesterova.Y@gmail.Com"}, {"email": "nesterovay@gmail.com"},
                     "same email (Gmail ignores dots)", id="gmail-dots"),
        pytest.param({"email": "ny@ya.ru"}, {"email": "ny@yandex.ru"},
                     "same email (ya.ru and yandex.ru are one mailbox)", id="yandex"),
        pytest.param({"email": "ny@yandex.ry"}, {"email": "ny@yandex.ru"},
                     "same email (yandex.ry read as yandex.ru)", id="typo"),
        pytest.param({"name": "Игорь", "phone": "89123456789"},
                     {"name": "Олег", "phone": "89123456789"}, "names differ: Игорь / Олег",
                     id="names-differ"),
        pytest.param({"name": "Иван Петров", "company": "Ромашка", "phone": "89123456789"},
                     {"name": "Иван Петров", "company": "«Ромашка»", "email": "a@b.ru"},
                     "same name and company", id="name-and-company"),
        pytest.param({"phone": "89123456789", "city": "г. Москва"},
                     {"phone": "89123456789", "city": "Москва"}, "same city", id="city"),
    ],
)
def test_reasons_are_plain_words(first, second, reason, lead_evidence, identity_rules):
    assert reason in compare(lead_evidence(**first), lead_evidence(**second),
                             identity_rules).reasons


def test_the_weight_is_prior_plus_field_weights(lead_evidence, identity_rules):
    result = compare(lead_evidence("Иван Петров", "89123456789"),
                     lead_evidence("Иван Петров", "89161234567"), identity_rules)
    prior = math.log2(PRIOR_MATCH / (1 - PRIOR_MATCH))
    assert result.weight == pytest.approx(prior + sum(f.weight for f in result.fields))
    assert result.probability == pytest.approx(2 ** result.weight / (1 + 2 ** result.weight))
    assert result.levels == {"name": "exact", "phone": "different", "email": "missing",
                             "company": "missing", "city": "missing"}


def test_a_contact_combines_its_leads(identity_rules):
    contact = combine_evidence([
        evidence_of(identity_rules, name="Саша", phones=["+79123456789"]),
        evidence_of(identity_rules, name="Александр Петров", emails=["a.petrov@gmail.com"]),
    ])
    lead = evidence_of(identity_rules, name="Петров Александр", emails=["apetrov@gmail.com"])
    assert contact.name.surname == "Петров"
    assert contact.phones == {"+79123456789"}
    assert compare(contact, lead, identity_rules).decision == "match"
