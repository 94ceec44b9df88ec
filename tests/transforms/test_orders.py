from datetime import UTC, datetime

import pytest

from transforms.orders import (
    OrderRules,
    RowError,
    items_from_rows,
    order_field_map,
    order_from_row,
    parse_number,
)


@pytest.fixture
def rules():
    known = {("phone", "+79123456789"): "olga@example.ru"}  # Ольга was merged under her email
    return OrderRules(order_field_map(), "RU", lambda kind, value: known.get((kind, value)))


@pytest.mark.parametrize(
    ("text", "number"),
    [
        pytest.param("1 234,50 ₽", 1234.5, id="ru-with-rouble-sign"),
        pytest.param("1\u00a0234,5", 1234.5, id="ru-no-break-space"),
        pytest.param("1,234.50", 1234.5, id="en-thousands"),
        pytest.param("1.234,50", 1234.5, id="de-thousands"),
        pytest.param("12,5", 12.5, id="comma-decimal"),
        pytest.param("990 руб.", 990.0, id="rub-word"),
        pytest.param("-15", -15.0, id="negative"),
    ],
)
def test_numbers_as_people_type_them(text, number):
    assert parse_number(text) == number


def test_not_a_number_says_so():
    with pytest.raises(RowError, match="'abc' is not a number"):
        parse_number("abc")


def test_order_row_finds_the_contact_by_phone_in_any_format(rules):
    order = order_from_row({"Номер заказа": "A-17", "Дата": "05.03.2026", "Статус": "Оплачен",
                            "Телефон": "8 912 345-67-89"}, rules)
    assert order == {"order_id": "A-17", "contact_key": "olga@example.ru",
                     "ordered_at": datetime(2026, 3, 5, tzinfo=UTC), "status": "Оплачен",
                     "comment": ""}


def test_order_for_an_unknown_person_is_keyed_by_the_phone(rules):
    order = order_from_row({"Order ID": "7", "Date": "2026-03-05", "Phone": "+7 903 111 22 33"},
                           rules)
    assert order["contact_key"] == "+79031112233"


@pytest.mark.parametrize(
    ("row", "message"),
    [
        pytest.param({"Дата": "05.03.2026", "Телефон": "89123456789"}, "no order number",
                     id="no-order-number"),
        pytest.param({"Номер заказа": "1", "Дата": "вчера", "Телефон": "89123456789"},
                     "no readable order date", id="bad-date"),
        pytest.param({"Номер заказа": "1", "Дата": "05.03.2026"}, "no client phone or email",
                     id="no-client"),
    ],
)
def test_bad_order_rows_say_what_to_fix(rules, row, message):
    with pytest.raises(RowError, match=message):
        order_from_row(row, rules)


def test_items_get_a_line_per_order_and_bad_rows_their_reason(rules):
    rows = [
        {"Заказ": "A-1", "Товар": "Котёл", "Цена": "45 000", "Количество": "1",
         "Себестоимость": "30 000"},
        {"Заказ": "A-1", "Товар": "Монтаж", "Цена": "5 000,00", "Количество": "2"},
        {"Заказ": "A-2", "Товар": "", "Цена": "1"},
        {"Заказ": "A-2", "Товар": "Фильтр", "Цена": "много"},
    ]
    results = list(items_from_rows(rows, rules))
    good = [item for _, item in results if isinstance(item, dict)]
    assert [(i["order_id"], i["line"], i["product"], i["price"], i["cost"], i["quantity"])
            for i in good] == [("A-1", 1, "Котёл", 45000.0, 30000.0, 1.0),
                               ("A-1", 2, "Монтаж", 5000.0, 0.0, 2.0)]
    bad = [(number, str(item)) for number, item in results if isinstance(item, RowError)]
    assert bad == [(4, "an item needs an order number and a product"),
                   (5, "'много' is not a number")]
