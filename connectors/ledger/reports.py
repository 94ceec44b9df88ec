"""What the exports and `leadhub status` read: whole tables streamed in time
order, optionally from a moment on, and the store's counts."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from sqlalchemy import select

from connectors.ledger.base import LedgerBase
from connectors.ledger.schema import contacts, leads, order_items, orders


class Reports(LedgerBase):
    def export_contacts(self, since: datetime | None = None) -> Iterator[dict]:
        query = select(contacts).where(contacts.c.merged_into.is_(None))
        if since is not None:
            query = query.where(contacts.c.last_seen >= since)
        return self.iter_rows(query.order_by(contacts.c.first_seen, contacts.c.contact_key))

    def export_leads(self, since: datetime | None = None) -> Iterator[dict]:
        query = select(leads)
        if since is not None:
            query = query.where(leads.c.received_at >= since)
        return self.iter_rows(query.order_by(leads.c.received_at, leads.c.lead_id))

    def export_orders(self, since: datetime | None = None) -> Iterator[dict]:
        query = select(orders.c.order_id, orders.c.contact_key, orders.c.ordered_at,
                       orders.c.status, orders.c.comment)
        if since is not None:
            query = query.where(orders.c.ordered_at >= since)
        return self.iter_rows(query.order_by(orders.c.ordered_at, orders.c.order_id))

    def export_order_items(self, since: datetime | None = None) -> Iterator[dict]:
        query = (select(order_items.c.order_id, order_items.c.product, order_items.c.price,
                        order_items.c.cost, order_items.c.quantity)
                 .select_from(order_items.join(orders,
                                               orders.c.order_id == order_items.c.order_id)))
        if since is not None:
            query = query.where(orders.c.ordered_at >= since)
        return self.iter_rows(query.order_by(order_items.c.order_id, order_items.c.line))

    def counts(self) -> dict[str, int]:
        return {**self.item_counts(), **self.contact_counts(), "leads": self.lead_count()}
