"""Orders and their items, imported from CSV or read back from a CRM table,
for the reports."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import delete

from connectors.ledger.base import LedgerBase, now, upsert
from connectors.ledger.schema import order_items, orders


class Orders(LedgerBase):
    def upsert_orders(self, rows: Iterable[dict]) -> int:
        stamp = now()
        count = 0
        with self.transaction() as tx:
            for order in rows:
                statement = upsert(tx, orders).values(**order, updated_at=stamp)
                tx.execute(statement.on_conflict_do_update(
                    index_elements=["order_id"],
                    set_={name: statement.excluded[name] for name in (
                        "contact_key", "ordered_at", "status", "comment", "updated_at")}))
                count += 1
        return count

    def replace_order_items(self, items: Iterable[dict]) -> int:
        """The lines of every order among `items` become exactly these: a line
        that disappeared from a re-imported file disappears here too."""
        items = list(items)
        stamp = now()
        with self.transaction() as tx:
            for order_id in sorted({item["order_id"] for item in items}):
                tx.execute(delete(order_items).where(order_items.c.order_id == order_id))
            if items:
                tx.execute(order_items.insert(), [{**item, "updated_at": stamp} for item in items])
        return len(items)
