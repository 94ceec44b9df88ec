import hashlib
import json
from datetime import UTC, datetime

import pytest

from transforms.fields import FieldMap
from transforms.submissions import (
    _JSON,
    _label_in,
    _last_part,
    _lead_id,
    flatten,
    parse_datetime,
    parse_submission,
)


def test_tilda_style_post(submission_rules):
    lead = parse_submission(
        {"Name": "Olga", "Phone": "+7 (912) 345-67-89", "Email": "Olga@Example.RU",
         "formname": "Callback", "tranid": "1234:56", "utm_source": "yandex",
         "utm_medium": "cpc", "COMMENTS": "Перезвоните"},
        "form",
        submission_rules,
    )
    assert lead.lead_id == "form:Callback:1234:56"
    assert lead.phones == ["+79123456789"]
    assert lead.emails == ["olga@example.ru"]
    assert lead.message == "Перезвоните"
    assert lead.raw_source == {"utm_source": "yandex", "utm_medium": "cpc", "form": "Callback"}


def test_same_post_without_id_gets_the_same_content_id(submission_rules):
    post = {"name": "Igor", "phone": "89991234567"}
    first = parse_submission(post, "form", submission_rules, default_form="site")
    again = parse_submission(dict(reversed(post.items())), "form", submission_rules,
                             default_form="site")
    assert first.lead_id == again.lead_id
    assert first.lead_id.startswith("form:site:")


def test_nested_json_fields_are_found_by_their_last_name(submission_rules):
    lead = parse_submission(
        {"contact": {"phone": "8 903 123 45 67", "email": "a@b.ru"}, "tags": ["vip", "opt"]},
        "form",
        submission_rules,
    )
    assert lead.phones == ["+79031234567"]
    assert lead.emails == ["a@b.ru"]


def test_crm_row_uses_its_date_and_source_column(submission_rules):
    lead = parse_submission(
        {"ФИО": "сидоров пётр", "Телефон": "79031234567", "Источник": "Авито",
         "Дата": "01.11.2026"},
        "import",
        submission_rules,
    )
    assert lead.received_at == datetime(2026, 11, 1, tzinfo=UTC)
    assert lead.raw_source == {"source": "Авито"}
    assert lead.lead_id.startswith("import:")


def test_invalid_phone_and_email_are_kept_as_typed_for_review(submission_rules):
    lead = parse_submission({"phone": "12-34", "email": "not-an-email"}, "form",
                            submission_rules)
    assert lead.phones == ["12-34"]
    assert lead.emails == ["not-an-email"]


def test_flatten_joins_lists_and_skips_nulls():
    assert flatten({"a": {"b": 1}, "c": [1, None, ""], "d": None}) == [("a.b", "1"), ("c", "1")]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("01.11.2026", datetime(2026, 11, 1, tzinfo=UTC), id="ru-date"),
        pytest.param("01.11.2026 14:30", datetime(2026, 11, 1, 14, 30, tzinfo=UTC),
                     id="ru-date-time"),
        pytest.param("2026-11-01T14:30:00Z", datetime(2026, 11, 1, 14, 30, tzinfo=UTC),
                     id="iso-z"),
        pytest.param("2026-11-01", datetime(2026, 11, 1, tzinfo=UTC), id="iso-date"),
    ],
)
def test_dates_people_export(text, expected):
    assert parse_datetime(text) == (expected, True)


def test_unreadable_date_is_reported():
    assert parse_datetime("вчера") == (None, False)


@pytest.mark.parametrize(
    ("record", "channel", "name"),
    [
        pytest.param({"First Name": "Zaphod", "Last Name": "Beeblebrox",
                      "email": "zaphod@heartofgold.ai"}, "form", "Zaphod Beeblebrox",
                     id="first-name-last-name"),
        pytest.param({"Имя": "Иван", "Фамилия": "Петров", "Телефон": "89123456789"}, "form",
                     "Иван Петров", id="imya-familiya"),
        pytest.param({"Name": "Ольга", "Surname": "Смирнова", "Phone": "89123456789",
                      "tranid": "1:2"}, "form", "Ольга Смирнова", id="tilda-name-surname"),
        pytest.param({"name": {"first": "Anna", "last": "Lee"}, "email": "anna@lee.io"}, "form",
                     "Anna Lee", id="jotform-first-last-object"),
        pytest.param({"q3_name[first]": "Anna", "q3_name[last]": "Lee", "email": "anna@lee.io"},
                     "form", "Anna Lee", id="jotform-bracketed-fields"),
        pytest.param({"Фамилия": "Сидоров", "Имя": "Пётр", "Отчество": "Ильич",
                      "Телефон": "79031234567"}, "import", "Сидоров Пётр Ильич",
                     id="csv-familiya-imya-otchestvo-columns"),
        pytest.param({"ФИО": "Сидоров Пётр", "Имя": "Пётр", "Телефон": "79031234567"},
                     "import", "Сидоров Пётр", id="full-name-beside-its-first-name"),
        pytest.param({"Имя": "Иван Петров", "Телефон": "89123456789"}, "form", "Иван Петров",
                     id="one-name-field-unchanged"),
    ],
)
def test_a_name_in_parts_becomes_the_full_name(submission_rules, record, channel, name):
    assert parse_submission(record, channel, submission_rules).name == name


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("9999-12-31T23:59:59-12:00", id="after-the-last-moment"),
        pytest.param("0001-01-01T00:00:00+14:00", id="before-the-first-moment"),
    ],
)
def test_a_date_that_is_no_real_moment_is_not_used(submission_rules, text):
    assert parse_datetime(text) == (None, False)
    received = datetime(2026, 5, 1, tzinfo=UTC)
    lead = parse_submission({"Телефон": "89123456789", "Дата": text}, "import",
                            submission_rules, fallback_time=received)
    assert lead.received_at == received
    assert lead.warnings == [f"date {text!r} is not a date and time LeadHub can use; the time "
                             "the item was received is used instead"]


def test_columns_that_match_no_field_are_named(submission_rules):
    lead = parse_submission({"Клиент": "Иван", "Мобила": "89123456789", "Заметка": ""},
                            "import", submission_rules)
    assert lead.phones == [] and lead.unrecognised == ["Мобила"]


def test_the_same_fields_in_another_order_have_one_fingerprint(submission_rules):
    first = parse_submission({"name": "Igor", "phone": "89991234567"}, "form", submission_rules)
    again = parse_submission({"phone": "89991234567", "name": "Igor"}, "form", submission_rules)
    other = parse_submission({"name": "Igor", "phone": "89991234568"}, "form", submission_rules)
    assert first.fingerprint == again.fingerprint != other.fingerprint


@pytest.mark.parametrize("label", ["phone", "contact.phone", "q3_name[first]", "contact.unknown",
                                   "[email]", "a..b[]", "Телефон", "form.data.Комментарий"])
def test_a_label_is_mapped_as_computed_for_each_field_map(label):
    maps = [FieldMap({"phone": ["телефон"], "first_name": ["first"]}), FieldMap({"email": []})]
    for field_map in maps:
        direct = label if field_map.field_for(label) else _last_part(label)
        assert _label_in(field_map, label) == direct


def test_lead_id_encodes_as_json_dumps_does():
    pairs = sorted([("Имя", 'Иван "Ваня"'), ("Телефон", "8\t912"), ("x", "😀\\")])
    digest = hashlib.sha256(json.dumps(pairs, ensure_ascii=False).encode()).hexdigest()
    assert _lead_id("import", "", "", pairs) == f"import:{digest[:24]}"
    assert _JSON.encode([("x", "\ud800")]) == json.dumps([("x", "\ud800")], ensure_ascii=False)
