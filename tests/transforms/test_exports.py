import json
import re
from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from transforms.exports import PRESETS, format_cell, neutralize, preset_with

MOSCOW = ZoneInfo("Europe/Moscow")


@pytest.mark.parametrize(
    ("column", "text", "shown"),
    [
        pytest.param("name", "=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")",
                     id="formula-in-name"),
        pytest.param("message", "+1 cmd|' /C calc'!A0", "'+1 cmd|' /C calc'!A0",
                     id="dde-in-message"),
        pytest.param("message", "-2+3", "'-2+3", id="minus"),
        pytest.param("company", "@SUM(A1)", "'@SUM(A1)", id="at-sign"),
        pytest.param("message", "\t=1", "'\t=1", id="tab"),
        pytest.param("message", "\r=1", "'\r=1", id="carriage-return"),
        pytest.param("phone", "+79123456789", "+79123456789", id="e164-phone-kept"),
        pytest.param("phone_display", "+7 (912) 345-67-89", "+7 (912) 345-67-89",
                     id="display-phone-kept"),
        pytest.param("contact_key", "+79123456789", "+79123456789", id="key-phone-kept"),
        pytest.param("phone", "+7=1+cmd", "'+7=1+cmd", id="formula-in-phone-column"),
        pytest.param("name", "Иван", "Иван", id="plain-text"),
    ],
)
def test_formula_like_text_is_neutralised(column, text, shown):
    assert neutralize(column, text) == shown


@pytest.mark.parametrize(
    ("preset", "number", "ratio", "moment", "day"),
    [
        pytest.param("looker", "1234.50", "0.3333", "2026-03-05 13:30:00", "2026-03-05",
                     id="looker"),
        pytest.param("powerbi", "1234,50", "0,3333", "05.03.2026 13:30:00", "05.03.2026",
                     id="powerbi"),
        pytest.param("excel-ru", "1234,50", "0,3333", "05.03.2026 13:30:00", "05.03.2026",
                     id="excel-ru"),
    ],
)
def test_presets_write_numbers_and_dates_their_way(preset, number, ratio, moment, day):
    chosen = PRESETS[preset]
    assert format_cell("revenue", 1234.5, chosen, MOSCOW) == number
    assert format_cell("margin", 1 / 3, chosen, MOSCOW) == ratio
    assert format_cell("ordered_at", datetime(2026, 3, 5, 10, 30, tzinfo=UTC), chosen,
                       MOSCOW) == moment
    assert format_cell("day", date(2026, 3, 5), chosen, MOSCOW) == day
    assert format_cell("orders", 1200, chosen, MOSCOW) == "1200"  # no thousands separator


def test_negative_numbers_stay_numbers():
    assert format_cell("profit", -12.5, PRESETS["looker"], MOSCOW) == "-12.50"


def test_an_option_can_be_overridden_alone():
    custom = preset_with("powerbi", {"delimiter": "\t"})
    assert (custom.delimiter, custom.decimal, custom.encoding) == ("\t", ",", "utf-8-sig")


@pytest.mark.parametrize(
    ("case", "shown"),
    [
        pytest.param("direct_inquiry_base64_utf8_body.eml", "экскаватор-погрузчик",
                     id="base64-utf8"),
        pytest.param("direct_inquiry_base64_cp1251_body.eml", None, id="base64-cp1251"),
        pytest.param("direct_inquiry_koi8r_declared_quoted_printable.eml", None,
                     id="quoted-printable-koi8r"),
    ],
)
def test_a_mail_in_review_shows_its_decoded_text(case, shown):
    from tests.conftest import CASES
    from transforms.exports import preview

    raw = (CASES / "mail" / case).read_bytes()
    text = preview(raw)
    expected = json.loads((CASES / "mail" / case).with_suffix(".expected.json").read_text(
        encoding="utf-8"))
    assert f"Subject: {expected['subject']}" in text
    assert (shown or expected["name"]) in text
    assert not re.search(r"[A-Za-z0-9+/=]{60}", text)  # no base64 line
    assert "=D0" not in text and "=C" not in text  # no quoted-printable


def test_a_row_in_review_shows_its_fields():
    from transforms.exports import preview

    assert preview('{"ФИО": "Иван", "Телефон": ""}'.encode()) == '{"ФИО": "Иван", "Телефон": ""}'


@pytest.mark.parametrize(
    ("amount", "shown"),
    [
        pytest.param(Decimal("8030.275"), "8030.28", id="half-up-not-half-even"),
        pytest.param(Decimal("0.125"), "0.13", id="half-up-below-one"),
        pytest.param(Decimal("-0.125"), "-0.13", id="negative-half-away-from-zero"),
        pytest.param(Decimal("-0.001"), "0.00", id="no-negative-zero"),
        pytest.param(Decimal("1E+3"), "1000.00", id="no-exponent"),
    ],
)
def test_money_cells_round_half_up_as_accountants_do(amount, shown):
    assert format_cell("average_check", amount, PRESETS["looker"], MOSCOW) == shown


@pytest.mark.parametrize(
    ("preset", "moment", "shown"),
    [
        pytest.param("excel-ru", datetime(2026, 3, 4, 21, 0, tzinfo=UTC), "05.03.2026",
                     id="excel-ru-a-day-is-a-day"),
        pytest.param("excel-ru", datetime(2026, 3, 5, 10, 30, tzinfo=UTC), "05.03.2026 13:30:00",
                     id="excel-ru-a-time-where-there-is-one"),
        pytest.param("powerbi", datetime(2026, 3, 4, 21, 0, tzinfo=UTC), "05.03.2026 00:00:00",
                     id="powerbi-keeps-one-type-per-column"),
        pytest.param("looker", datetime(2026, 3, 4, 21, 0, tzinfo=UTC), "2026-03-05 00:00:00",
                     id="looker-keeps-one-type-per-column"),
    ],
)
def test_a_day_without_a_time_is_written_as_a_day_in_excel_ru(preset, moment, shown):
    assert format_cell("ordered_at", moment, PRESETS[preset], MOSCOW) == shown
    assert format_cell("ordered_at", moment.isoformat(), PRESETS[preset], MOSCOW) == shown
