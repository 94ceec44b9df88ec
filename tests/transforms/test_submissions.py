from datetime import UTC, datetime

import pytest

from transforms.submissions import flatten, parse_datetime, parse_submission


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
