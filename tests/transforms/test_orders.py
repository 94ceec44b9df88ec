from datetime import UTC, datetime
from decimal import Decimal

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
        pytest.param("1 234,50 ₽", Decimal("1234.50"), id="ru-with-rouble-sign"),
        pytest.param("1\u00a0234,5", Decimal("1234.5"), id="ru-no-break-space"),
        pytest.param("1,234.50", Decimal("1234.50"), id="en-thousands"),
        pytest.param("1.234,50", Decimal("1234.50"), id="de-thousands"),
        pytest.param("12,5", Decimal("12.5"), id="comma-decimal"),
        pytest.param("990 руб.", Decimal("990"), id="rub-word"),
        pytest.param("-15", Decimal("-15"), id="negative"),
        pytest.param("0,1", Decimal("0.1"), id="a-tenth-stays-a-tenth"),
    ],
)
def test_numbers_as_people_type_them_are_exact_decimals(text, number):
    parsed = parse_number(text)
    assert isinstance(parsed, Decimal) and parsed == number


@pytest.mark.parametrize("text", ["abc", "NaN", "Infinity", "1e5", "1" * 30])
def test_not_a_number_says_so(text):
    with pytest.raises(RowError, match="is not a number|too many digits"):
        parse_number(text)


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
    read = items_from_rows(rows, rules)
    assert [(i["order_id"], i["line"], i["product"], i["price"], i["cost"], i["quantity"])
            for i in read.items] == [
        ("A-1", 1, "Котёл", Decimal(45000), Decimal(30000), Decimal(1)),
        ("A-1", 2, "Монтаж", Decimal("5000.00"), Decimal(0), Decimal(2))]
    assert all(isinstance(i[key], Decimal)
               for i in read.items for key in ("price", "cost", "quantity"))
    kept = "; order 'A-2' keeps its stored lines until this row is fixed"
    assert read.problems == [(4, "an item needs an order number and a product" + kept),
                             (5, "'много' is not a number" + kept)]


def test_an_order_with_a_bad_row_is_left_out_whole(rules):
    """Storing A-1 without its bad line would drop a line the store had."""
    rows = [{"Заказ": "A-1", "Товар": "Котёл", "Цена": "45 000"},
            {"Заказ": "A-1", "Товар": "Монтаж", "Цена": "пять тысяч"},
            {"Заказ": "A-2", "Товар": "Фильтр", "Цена": "900"}]
    read = items_from_rows(rows, rules)
    assert [(i["order_id"], i["product"]) for i in read.items] == [("A-2", "Фильтр")]
    assert [number for number, _ in read.problems] == [3]


@pytest.mark.parametrize("column", ["ID позиции", "Item id", "item_id", "№ позиции"])
def test_an_item_id_column_identifies_lines_and_a_repeated_id_is_a_bad_row(rules, column):
    rows = [{"Заказ": "A-1", column: "17", "Товар": "Котёл", "Цена": "45 000"},
            {"Заказ": "A-1", column: "18", "Товар": "Монтаж", "Цена": "5 000"},
            {"Заказ": "A-1", column: "17", "Товар": "Котёл", "Цена": "44 000"},
            {"Заказ": "A-2", column: "17", "Товар": "Фильтр", "Цена": "900"}]
    read = items_from_rows(rows, rules)
    assert read.problems == [
        (4, "item id '17' of order 'A-1' is on row 2 already;"
            " order 'A-1' keeps its stored lines until this row is fixed")]
    # an id is an order's own: line 17 of A-2 is another line
    assert [(i["order_id"], i["line"], i["product"]) for i in read.items] == [("A-2", 1, "Фильтр")]


def test_without_an_item_id_two_equal_rows_are_two_lines(rules):
    rows = [{"Заказ": "A-1", "Товар": "Фильтр", "Цена": "900"}] * 2
    read = items_from_rows(rows, rules)
    assert [(i["line"], i["product"]) for i in read.items] == [(1, "Фильтр"), (2, "Фильтр")]
    assert read.problems == []
