import hashlib
from datetime import UTC, datetime

import pytest

from transforms.normalize import content_fingerprint, normalize_lead
from transforms.records import Lead, ParsedLead, Rejection


def _parsed(**fields) -> ParsedLead:
    return ParsedLead(lead_id="x", channel="form", received_at=datetime(2026, 1, 1, tzinfo=UTC),
                      **fields)


def test_full_lead(normalize_rules):
    lead = normalize_lead(
        _parsed(name=" иван  петров", phones=["8 912 345-67-89"], emails=[" Ivan@Mail.RU"],
                company="ООО «Ромашка»", raw_source={"utm_source": "avito"}),
        normalize_rules,
    )
    assert isinstance(lead, Lead)
    assert (lead.name, lead.phone, lead.phone_display, lead.email) == (
        "Иван Петров", "+79123456789", "+7 (912) 345-67-89", "ivan@mail.ru")
    assert (lead.company, lead.legal_form, lead.source) == ("Ромашка", "ООО", "Авито")
    assert lead.warnings == []


def test_no_way_to_reach_the_person_is_rejected_with_reason(normalize_rules):
    result = normalize_lead(_parsed(name="Анна"), normalize_rules)
    assert isinstance(result, Rejection)
    assert "no phone or email" in result.reason


def test_only_invalid_phone_is_rejected_and_says_which(normalize_rules):
    result = normalize_lead(_parsed(phones=["+7 000 000"]), normalize_rules)
    assert isinstance(result, Rejection)
    assert "'+7 000 000' is not a valid number" in result.reason


def test_invalid_phone_with_valid_email_is_kept_and_flagged(normalize_rules):
    lead = normalize_lead(_parsed(phones=["+7 000 000"], emails=["a@b.ru"]), normalize_rules)
    assert isinstance(lead, Lead)
    assert (lead.phone, lead.phone_valid, lead.email) == ("+7 000 000", False, "a@b.ru")
    assert "phone '+7 000 000' is not a valid number" in lead.warnings


def test_missing_name_is_a_warning_not_a_rejection(normalize_rules):
    lead = normalize_lead(_parsed(phones=["89123456789"]), normalize_rules)
    assert isinstance(lead, Lead)
    assert lead.warnings == ["no name"]


def test_unmatched_source_is_flagged(normalize_rules):
    lead = normalize_lead(
        ParsedLead(lead_id="x", channel="import", received_at=datetime(2026, 1, 1, tzinfo=UTC),
                   phones=["89123456789"], raw_source={"source": "выставка"}),
        normalize_rules,
    )
    assert (lead.source, lead.source_matched) == ("Другое", False)


def test_an_office_extension_is_kept_with_the_lead(normalize_rules):
    lead = normalize_lead(_parsed(phones=["8 (342) 052-16-74 доб. 280"]), normalize_rules)
    assert (lead.phone, lead.phone_extension, lead.phone_display) == (
        "+73420521674", "280", "+7 (342) 052-16-74 доб. 280")


def test_a_typo_in_a_mail_service_is_flagged_and_the_address_kept(normalize_rules):
    lead = normalize_lead(_parsed(emails=["Ivan@Yandex.ry"]), normalize_rules)
    assert lead.email == "ivan@yandex.ry"
    assert "email domain yandex.ry looks like a typo of yandex.ru" in lead.warnings


def test_a_corporate_domain_is_never_called_a_typo(normalize_rules):
    lead = normalize_lead(_parsed(name="Иван", emails=["ivan@email.ru"]), normalize_rules)
    assert lead.warnings == []


def test_a_row_whose_phone_is_in_an_unrecognised_column_names_that_column(normalize_rules):
    parsed = ParsedLead(lead_id="import:x", channel="import",
                        received_at=datetime(2026, 1, 1, tzinfo=UTC), name="Иван",
                        unrecognised=["Мобила", "Заметка"])
    result = normalize_lead(parsed, normalize_rules)
    assert result == Rejection(
        "no phone or email to reach the person (columns LeadHub did not recognise: 'Мобила', "
        "'Заметка'; name the phone or email one in field_aliases (or csv.columns) and replay)")


def test_the_parsers_fingerprint_is_kept_and_one_is_made_when_there_is_none(normalize_rules):
    given = normalize_lead(_parsed(phones=["89123456789"], fingerprint="abc"), normalize_rules)
    made = normalize_lead(_parsed(phones=["89123456789"]), normalize_rules)
    other = normalize_lead(_parsed(phones=["89123456780"]), normalize_rules)
    assert given.fingerprint == "abc"
    assert len(made.fingerprint) == 32 and made.fingerprint != other.fingerprint


def test_the_parsers_warnings_come_first(normalize_rules):
    lead = normalize_lead(_parsed(phones=["89123456789"], warnings=["the Date header ..."]),
                          normalize_rules)
    assert lead.warnings == ["the Date header ...", "no name"]


@pytest.mark.parametrize("parts", [[], [""], ["a", "b"], ["Имя=Иван", "\ud800", "😀", "x\x1fy"]],
                         ids=["none", "one-empty", "two", "cyrillic-surrogate-separator"])
def test_fingerprint_is_the_digest_of_the_parts_one_by_one(parts):
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8", "surrogatepass") + b"\x1f")
    assert content_fingerprint(iter(parts)) == digest.hexdigest()[:32]
