"""Importing orders and order items from CSV files, again and again."""

from __future__ import annotations

from decimal import Decimal

import pytest

from connectors.ledger import Ledger
from flows.orders import import_table
from leadhub.settings import load_settings
from tests.store import query

ORDERS = "Номер заказа;Дата;Телефон\nZ-1;05.03.2026;+79120000001\nZ-2;06.03.2026;+79120000002\n"


@pytest.fixture
def settings(store, tmp_path):
    settings = load_settings(store=store, timezone="Europe/Moscow")
    _import(settings, tmp_path / "orders.csv", ORDERS, "orders")
    return settings


def _import(settings, path, text: str, table: str = "order_items"):
    path.write_text(text, encoding="utf-8")
    return import_table(settings, [path], table)


def _lines(settings) -> list[tuple]:
    """(order, line, product, revenue) as stored, money exact."""
    return [(order, line, product, Decimal(str(price)) * Decimal(str(quantity)))
            for order, line, product, price, quantity in query(
                settings.store, "SELECT order_id, line, product, price, quantity"
                " FROM order_items ORDER BY order_id, line")]


@pytest.mark.parametrize(
    ("header", "first", "corrected"),
    [
        pytest.param("Номер заказа;Товар;Цена", ["Z-1;Котёл;45000", "Z-1;Монтаж;5000",
                                                 "Z-1;Фильтр;900"],
                     ["Z-1;Котёл;45000", "Z-1;Фильтр;900"], id="by-position"),
        pytest.param("Номер заказа;ID позиции;Товар;Цена",
                     ["Z-1;a;Котёл;45000", "Z-1;b;Монтаж;5000", "Z-1;c;Фильтр;900"],
                     ["Z-1;c;Фильтр;900", "Z-1;a;Котёл;45000"], id="by-item-id-reordered"),
    ],
)
def test_a_corrected_items_file_makes_the_store_match_it(settings, tmp_path, header, first,
                                                         corrected):
    path = tmp_path / "items.csv"
    _import(settings, path, "\n".join([header, *first, "Z-2;Сервис;4500" if "ID" not in header
                                       else "Z-2;z;Сервис;4500"]) + "\n")

    result = _import(settings, path, "\n".join([header, *corrected]) + "\n")

    assert result.problems == [] and result.imported == 2
    lines = _lines(settings)
    # the deleted Монтаж line is gone; Z-2, not in the corrected file, keeps its line
    assert sorted(product for order, _, product, _ in lines if order == "Z-1") == [
        "Котёл", "Фильтр"]
    assert sum(revenue for order, _, _, revenue in lines if order == "Z-1") == 45900
    assert [product for order, _, product, _ in lines if order == "Z-2"] == ["Сервис"]


def test_a_bad_row_keeps_the_orders_stored_lines(settings, tmp_path):
    path = tmp_path / "items.csv"
    _import(settings, path, "Номер заказа;Товар;Цена\nZ-1;Котёл;45000\nZ-1;Монтаж;5000\n")

    result = _import(settings, path, "Номер заказа;Товар;Цена\nZ-1;Котёл;45000\n"
                                     "Z-1;Монтаж;пять тысяч\n")

    assert [(row, reason.split(";")[0]) for _, row, reason in result.problems] == [
        (3, "'пять тысяч' is not a number")]
    assert [product for _, _, product, _ in _lines(settings)] == ["Котёл", "Монтаж"]


def test_amounts_are_stored_as_the_file_writes_them(settings, tmp_path):
    _import(settings, tmp_path / "items.csv",
            "Номер заказа;Товар;Цена;Количество\nZ-1;Фильтр;0,10;3\n")
    ledger = Ledger(settings.store)
    try:
        item = next(ledger.export_order_items())
    finally:
        ledger.close()
    assert (item["price"], item["quantity"]) == (Decimal("0.10"), Decimal("3"))
    assert str(item["price"]) == "0.10"  # exact, as written: not the float 0.1
