"""What the exports and `leadhub status` read: whole tables streamed in time
order, for a period (from `since`, None: the first row; before `until`, None:
no end), and the store's counts."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from itertools import groupby

from sqlalchemy import select

from connectors.ledger.base import LedgerBase
from connectors.ledger.schema import contacts, lead_stages, leads, order_items, orders, raw_items

_JOURNEY_COLUMNS = (leads.c.lead_id, leads.c.contact_key, leads.c.received_at, leads.c.source,
                    leads.c.stage, leads.c.owner, leads.c.amount, leads.c.loss_reason)


def _within(query, column, since: datetime | None, until: datetime | None):
    if since is not None:
        query = query.where(column >= since)
    if until is not None:
        query = query.where(column < until)
    return query


class Reports(LedgerBase):
    def export_contacts(self, since: datetime | None = None,
                        until: datetime | None = None) -> Iterator[dict]:
        """Contacts seen in the period: last seen since its start, first seen before its end."""
        query = select(contacts).where(contacts.c.merged_into.is_(None))
        query = _within(query, contacts.c.last_seen, since, None)
        query = _within(query, contacts.c.first_seen, None, until)
        return self.iter_rows(query.order_by(contacts.c.first_seen, contacts.c.contact_key))

    def export_leads(self, since: datetime | None = None,
                     until: datetime | None = None) -> Iterator[dict]:
        query = _within(select(leads), leads.c.received_at, since, until)
        return self.iter_rows(query.order_by(leads.c.received_at, leads.c.lead_id))

    def export_lead_journeys(self, since: datetime | None = None,
                             until: datetime | None = None) -> Iterator[dict]:
        """Leads received in the period, each with its stage changes in time
        order (`history`: stage, reason, changed_at), what the funnel reads."""
        query = (select(*_JOURNEY_COLUMNS, lead_stages.c.stage.label("changed_to"),
                        lead_stages.c.reason, lead_stages.c.changed_at)
                 .select_from(leads.outerjoin(lead_stages,
                                              lead_stages.c.lead_id == leads.c.lead_id)))
        query = _within(query, leads.c.received_at, since, until).order_by(
            leads.c.lead_id, lead_stages.c.changed_at, lead_stages.c.id)
        rows = self.iter_rows(query)
        for _, changes in groupby(rows, key=lambda row: row["lead_id"]):
            first, *others = changes
            lead = {column.name: first[column.name] for column in _JOURNEY_COLUMNS}
            lead["history"] = [
                {"stage": row["changed_to"], "reason": row["reason"] or "",
                 "changed_at": row["changed_at"]}
                for row in (first, *others) if row["changed_at"] is not None]
            yield lead

    def export_orders(self, since: datetime | None = None,
                      until: datetime | None = None) -> Iterator[dict]:
        query = select(orders.c.order_id, orders.c.contact_key, orders.c.ordered_at,
                       orders.c.status, orders.c.comment)
        query = _within(query, orders.c.ordered_at, since, until)
        return self.iter_rows(query.order_by(orders.c.ordered_at, orders.c.order_id))

    def export_order_items(self, since: datetime | None = None,
                           until: datetime | None = None) -> Iterator[dict]:
        query = (select(order_items.c.order_id, order_items.c.product, order_items.c.price,
                        order_items.c.cost, order_items.c.quantity)
                 .select_from(order_items.join(orders,
                                               orders.c.order_id == order_items.c.order_id)))
        query = _within(query, orders.c.ordered_at, since, until)
        return self.iter_rows(query.order_by(order_items.c.order_id, order_items.c.line))

    def export_review_items(self, since: datetime | None = None,
                            until: datetime | None = None) -> Iterator[dict]:
        """Skipped and quarantined items received in the period."""
        query = select(raw_items.c.item_id, raw_items.c.source, raw_items.c.kind,
                       raw_items.c.received_at, raw_items.c.state, raw_items.c.reason,
                       raw_items.c.meta, raw_items.c.payload).where(
            raw_items.c.state.in_(("quarantined", "skipped")))
        query = _within(query, raw_items.c.received_at, since, until)
        return self.iter_rows(query.order_by(raw_items.c.state, raw_items.c.received_at,
                                             raw_items.c.item_id))

    def counts(self) -> dict[str, int]:
        return {**self.item_counts(), **self.contact_counts(), "leads": self.lead_count()}
