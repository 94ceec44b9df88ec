"""People's Orders and Order items tables read back from Airtable (flows/sync.py
`read_back_orders`): a day is a day in the business's time zone, and the store's
lines of an order are the table's."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from connectors.ledger import Ledger
from flows.sync import build_sink, read_back_orders, sync_all
from leadhub.settings import load_settings
from tests.fakes.airtable import FakeAirtable
from tests.flows.crm_helpers import contact_of, seed

BASE = "appTESTBASE000001"
TOKEN = "patTEST.secret"
MOSCOW = ZoneInfo("Europe/Moscow")


@pytest.fixture
def base(store):
    """A synced Airtable base whose contact +79120000002 has an order, A-1,
    typed by a person with two lines."""
    with FakeAirtable(TOKEN, bases=(BASE,), penalty_seconds=0.5) as fake:
        seed(store, 3)
        settings = load_settings(store=str(store), timezone="Europe/Moscow", sinks=[{
            "type": "airtable", "base": BASE, "token": TOKEN, "endpoint_url": fake.url,
            "rate_limit_wait_seconds": fake.penalty_seconds}])
        sink, _ = build_sink(settings, "airtable")
        sink.init_schema()
        sync_all(settings)
        contact = next(record["id"] for record in fake.table_records(BASE, "Contacts")
                       if record["fields"].get("Contact key") == contact_of(2))
        order = fake.person_create(BASE, "Orders", {
            "Order": "A-1", "Date": "2026-11-20", "Status": "Оплачен", "Contact": [contact]})
        lines = [fake.person_create(BASE, "Order items", {
            "Item": item, "Order": [order], "Product": product, "Price": price, "Quantity": 1})
            for item, product, price in (("1", "Диван", 1000.1), ("2", "Доставка", 500))]
        yield fake, settings, lines


def _read_back(settings) -> tuple[list[tuple], list[tuple]]:
    sink, _ = build_sink(settings, "airtable")
    ledger = Ledger(settings.store)
    try:
        read_back_orders(ledger, sink, tz=MOSCOW)
        orders = [(row["order_id"], row["ordered_at"].isoformat())
                  for row in ledger.export_orders()]
        items = [(row["product"], row["price"]) for row in ledger.export_order_items()]
    finally:
        ledger.close()
    return orders, items


def test_an_order_typed_for_a_day_is_that_day_at_midnight_in_the_business_zone(base):
    _, settings, _ = base

    orders, _ = _read_back(settings)

    (order_id, ordered_at), = orders
    moment = datetime.fromisoformat(ordered_at).astimezone(MOSCOW)
    assert (order_id, moment.date().isoformat(), moment.hour) == ("A-1", "2026-11-20", 0)


def test_a_line_deleted_in_airtable_leaves_the_store(base):
    fake, settings, lines = base
    _read_back(settings)
    fake.person_delete(BASE, "Order items", lines[1])

    _, items = _read_back(settings)

    assert [(product, Decimal(str(price))) for product, price in items] == [
        ("Диван", Decimal("1000.1"))]
