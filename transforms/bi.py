"""The BI tables a small business asks for, computed from plain row dicts.

Order lines, orders, clients, products, leads per day, RFM segments,
headline KPIs and a calendar of days (the lead funnel is transforms/funnel.py).
Each function returns a list of dicts (or yields them) whose keys follow the
matching `*_COLUMNS` tuple; values stay typed (int, float, Decimal, datetime,
date) because formatting for a CSV preset happens where the files are written.

Money (prices, costs, revenue, profit, average check, monetary) is an exact
`Decimal`; an amount that comes as a float (a REAL column) or an int is read
through its text, so 0.1 stays 0.1. Only the cell rounds it, half up
(`round_money`). Ratios (margins, conversions, rates) are floats.

People are grouped by `contact_key` (the E.164 phone, else the email), never by
name: two "Игорь"s with different keys are two clients.

Money metrics skip cancelled orders (a status in `cancelled_statuses`, compared
case-insensitively with "ё" read as "е") and items whose order is not in the
orders table. Only `order_rows` lists every order, with its status and an
`is_cancelled` flag, so a report can show what was cancelled and a sum over
the live ones matches the KPIs.

`margin` is each row's own (its profit / its revenue); the mean of a column of
them is not the business's margin. `weighted_margin`, the same on every row of
clients and products (and a KPI), is the table's total profit / total revenue:
the margin to show for a group of rows.

Each function reads its inputs once and keeps one accumulator per order,
contact, product or source, never a list per lead: it runs over a million
leads and a few hundred thousand order items.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo
from decimal import ROUND_HALF_UP, Decimal
from itertools import chain
from typing import Any

Row = Mapping[str, Any]

ORDER_ITEM_COLUMNS = (
    "order_id",
    "ordered_at",
    "contact_key",
    "product",
    "price",
    "quantity",
    "revenue",
    "cost_total",
    "profit",
    "margin",
)
ORDER_COLUMNS = (
    "order_id",
    "contact_key",
    "ordered_at",
    "status",
    "is_cancelled",
    "items",
    "revenue",
    "cost_total",
    "profit",
    "margin",
    "comment",
)
CLIENT_COLUMNS = (
    "contact_key",
    "name",
    "phone",
    "email",
    "orders",
    "revenue",
    "cost_total",
    "profit",
    "margin",
    "weighted_margin",
    "average_check",
    "first_order",
    "last_order",
    "lifetime_value",
)
PRODUCT_COLUMNS = ("product", "orders", "quantity", "revenue", "cost_total", "profit", "margin",
                   "weighted_margin")
LEADS_DAILY_COLUMNS = ("day", "source", "leads")
RFM_COLUMNS = (
    "contact_key",
    "name",
    "recency_days",
    "frequency",
    "monetary",
    "r_score",
    "f_score",
    "m_score",
    "segment",
)
KPI_COLUMNS = ("kpi", "value")
DATE_COLUMNS = (
    "date",
    "year",
    "quarter",
    "month",
    "month_name",
    "month_start",
    "week",
    "week_start",
    "weekday",
    "weekday_number",
    "is_weekend",
)
_MONTH_NAMES = {
    "ru": ("Январь", "Февраль", "Март", "Апрель", "Май", "Июнь", "Июль", "Август", "Сентябрь",
           "Октябрь", "Ноябрь", "Декабрь"),
    "en": ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December"),
}
_WEEKDAY_NAMES = {
    "ru": ("Понедельник", "Вторник", "Среда", "Четверг", "Пятница", "Суббота", "Воскресенье"),
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
}

DEFAULT_CANCELLED_STATUSES = ("Отменён", "Cancelled", "Canceled")
_SCORE_LEVELS = 5
ZERO = Decimal(0)
CENT = Decimal("0.01")


def exact(number: Decimal | float | int) -> Decimal:
    """A number as an exact Decimal: a float through its shortest text (0.1 -> 0.1)."""
    return number if isinstance(number, Decimal) else Decimal(str(number))


def round_money(amount: Decimal) -> Decimal:
    """To the kopeck, half up as accountants round (8 030,275 -> 8 030,28); never -0.00."""
    rounded = exact(amount).quantize(CENT, ROUND_HALF_UP)
    return rounded if rounded else abs(rounded)


@dataclass(frozen=True)
class RfmRule:
    """A segment for clients whose R, F and M scores (1..5) all fall in these ranges."""

    segment: str
    r_min: int = 1
    r_max: int = 5
    f_min: int = 1
    f_max: int = 5
    m_min: int = 1
    m_max: int = 5

    def matches(self, r_score: int, f_score: int, m_score: int) -> bool:
        return (
            self.r_min <= r_score <= self.r_max
            and self.f_min <= f_score <= self.f_max
            and self.m_min <= m_score <= self.m_max
        )


# The RFM segments of CRM practice (the Champions / Loyal / At risk / Lost
# table), chosen by all three scores, first match wins: "high" is 3-5 (4-5 for
# champions), "low" is 1-2. A big regular client gone quiet is at risk (win
# them back), not lost; lost is low on all three. Every combination matches a row.
_RFM_TABLE = (
    # Russian, English, R range, F range, M range
    ("Чемпионы", "Champions", (4, 5), (4, 5), (4, 5)),
    ("Лояльные", "Loyal", (3, 5), (3, 5), (3, 5)),
    ("Новые", "New", (4, 5), (1, 1), (1, 5)),
    ("Перспективные", "Promising", (3, 5), (1, 5), (1, 5)),
    ("Под угрозой", "At risk", (1, 2), (3, 5), (3, 5)),
    ("Потерянные", "Lost", (1, 2), (1, 2), (1, 2)),
    ("Спящие", "Hibernating", (1, 2), (1, 5), (1, 5)),
)
RFM_SEGMENTS = {
    language: tuple(RfmRule(names[index], *r, *f, *m) for *names, r, f, m in _RFM_TABLE)
    for index, language in enumerate(("ru", "en"))
}
DEFAULT_RFM_SEGMENTS = RFM_SEGMENTS["ru"]
RFM_FALLBACK = {"ru": "Прочие", "en": "Other"}


@dataclass(frozen=True, kw_only=True)
class BiRules:
    """`rfm_segments` are tried in order, first match wins, `rfm_fallback`
    otherwise; `as_of` is "today" for recency, a day in the business's time
    zone `tz`."""

    rfm_segments: tuple[RfmRule, ...] = DEFAULT_RFM_SEGMENTS
    rfm_fallback: str = RFM_FALLBACK["ru"]
    as_of: date
    tz: tzinfo = UTC
    cancelled_statuses: tuple[str, ...] = DEFAULT_CANCELLED_STATUSES


@dataclass
class _Totals:
    lines: int = 0
    quantity: Decimal = ZERO
    revenue: Decimal = ZERO
    cost_total: Decimal = ZERO

    def add_item(self, item: Row) -> None:
        quantity = exact(item["quantity"])
        self.lines += 1
        self.quantity += quantity
        self.revenue += exact(item["price"]) * quantity
        self.cost_total += exact(item["cost"]) * quantity

    def add(self, other: _Totals) -> None:
        self.lines += other.lines
        self.quantity += other.quantity
        self.revenue += other.revenue
        self.cost_total += other.cost_total

    def money(self) -> dict[str, Decimal | float]:
        """revenue, cost_total, profit, margin: in the order every table lists them."""
        profit = self.revenue - self.cost_total
        return {
            "revenue": self.revenue,
            "cost_total": self.cost_total,
            "profit": profit,
            "margin": _margin(profit, self.revenue),
        }


@dataclass
class _Client:
    first_order: datetime
    last_order: datetime
    orders: int = 0
    totals: _Totals = field(default_factory=_Totals)


def order_item_rows(
    items: Iterable[Row],
    orders: Iterable[Row],
    *,
    cancelled_statuses: Collection[str] = DEFAULT_CANCELLED_STATUSES,
) -> Iterator[dict]:
    """One row per item of a live order, in input order, yielded one at a time
    (an export streams them); cost is the unit cost (0 when unknown, which
    makes that line's margin 100%)."""
    live = _live_orders(orders, cancelled_statuses)
    for item in items:
        order = live.get(item["order_id"])
        if order is None:
            continue
        line = _Totals()
        line.add_item(item)
        yield {
            "order_id": item["order_id"],
            "ordered_at": order["ordered_at"],
            "contact_key": order["contact_key"],
            "product": item["product"],
            "price": exact(item["price"]),
            "quantity": exact(item["quantity"]),
            **line.money(),
        }


def order_rows(
    orders: Iterable[Row],
    items: Iterable[Row],
    *,
    cancelled_statuses: Collection[str] = DEFAULT_CANCELLED_STATUSES,
) -> Iterator[dict]:
    """Every order, cancelled ones too (`is_cancelled`), in input order,
    yielded one at a time; `items` is the number of item lines."""
    by_order = _totals_by_order(items)
    cancelled = _folded(cancelled_statuses)
    for order in orders:
        totals = by_order.get(order["order_id"], _Totals())
        yield {
            "order_id": order["order_id"],
            "contact_key": order["contact_key"],
            "ordered_at": order["ordered_at"],
            "status": order["status"],
            "is_cancelled": _fold(order["status"]) in cancelled,
            "items": totals.lines,
            **totals.money(),
            "comment": order["comment"],
        }


def client_rows(
    contacts: Iterable[Row],
    orders: Iterable[Row],
    items: Iterable[Row],
    *,
    cancelled_statuses: Collection[str] = DEFAULT_CANCELLED_STATUSES,
) -> list[dict]:
    """One row per contact key with a live order, highest revenue first.

    `lifetime_value` is historic-margin CLV: the client's total profit to date,
    with no forecast. A key missing from `contacts` (an order for someone
    LeadHub has not seen) still gets a row, with empty name, phone and email.
    """
    clients = _clients(orders, items, cancelled_statuses)
    known = _contacts_among(contacts, clients)
    weighted = _overall([client.totals for client in clients.values()])
    rows = []
    for key, client in _by_revenue(clients):
        contact = known.get(key, {})
        money = client.totals.money()
        rows.append({
            "contact_key": key,
            "name": contact.get("name", ""),
            "phone": contact.get("phone", ""),
            "email": contact.get("email", ""),
            "orders": client.orders,
            **money,
            "weighted_margin": weighted,
            "average_check": client.totals.revenue / client.orders,
            "first_order": client.first_order,
            "last_order": client.last_order,
            "lifetime_value": money["profit"],
        })
    return rows


def product_rows(
    items: Iterable[Row],
    orders: Iterable[Row],
    *,
    cancelled_statuses: Collection[str] = DEFAULT_CANCELLED_STATUSES,
) -> list[dict]:
    """One row per product name, highest revenue first; `orders` counts the
    distinct live orders that include it."""
    live = _live_orders(orders, cancelled_statuses)
    totals: defaultdict[str, _Totals] = defaultdict(_Totals)
    order_ids: defaultdict[str, set[str]] = defaultdict(set)
    for item in items:
        if item["order_id"] in live:
            totals[item["product"]].add_item(item)
            order_ids[item["product"]].add(item["order_id"])
    ranked = sorted(totals.items(), key=lambda pair: (-pair[1].revenue, pair[0]))
    weighted = _overall(totals.values())
    return [
        {
            "product": product,
            "orders": len(order_ids[product]),
            "quantity": product_totals.quantity,
            **product_totals.money(),
            "weighted_margin": weighted,
        }
        for product, product_totals in ranked
    ]


def leads_daily_rows(leads: Iterable[Row], *, tz: tzinfo | None = None) -> list[dict]:
    """Leads per day and source, by day then source. The day is taken in `tz`,
    or in each timestamp's own zone when `tz` is None."""
    counts = Counter((_day(lead["received_at"], tz), lead["source"]) for lead in leads)
    return [
        {"day": day, "source": source, "leads": leads_count}
        for (day, source), leads_count in sorted(counts.items())
    ]


def rfm_rows(
    contacts: Iterable[Row], orders: Iterable[Row], items: Iterable[Row], rules: BiRules
) -> list[dict]:
    """Recency, frequency and monetary value per client, highest revenue first.

    recency_days: calendar days in `rules.tz` from the last live order's day
    to `rules.as_of` (0 for an order that day or after); frequency: live
    orders; monetary: revenue. Each score
    is 1..5 by rank among all clients: score = ceil(5 * rank / n), where rank
    is 1 + the number of clients with a strictly worse value (more days, fewer
    orders, less revenue). Ties share the rank of the group's worst position,
    so a tie never lifts a score: when most clients bought once, they all get
    the lowest F score.
    """
    clients = _clients(orders, items, rules.cancelled_statuses)
    known = _contacts_among(contacts, clients)
    recency = {key: max((rules.as_of - _day(c.last_order, rules.tz)).days, 0)
               for key, c in clients.items()}
    r_scores = _scores({key: -days for key, days in recency.items()})
    f_scores = _scores({key: c.orders for key, c in clients.items()})
    m_scores = _scores({key: c.totals.revenue for key, c in clients.items()})
    return [
        {
            "contact_key": key,
            "name": known.get(key, {}).get("name", ""),
            "recency_days": recency[key],
            "frequency": client.orders,
            "monetary": client.totals.revenue,
            "r_score": r_scores[key],
            "f_score": f_scores[key],
            "m_score": m_scores[key],
            "segment": rfm_segment(r_scores[key], f_scores[key], m_scores[key], rules),
        }
        for key, client in _by_revenue(clients)
    ]


def rfm_segment(r_score: int, f_score: int, m_score: int, rules: BiRules) -> str:
    return next(
        (rule.segment for rule in rules.rfm_segments if rule.matches(r_score, f_score, m_score)),
        rules.rfm_fallback,
    )


def kpi_rows(
    contacts: Iterable[Row],
    leads: Iterable[Row],
    orders: Iterable[Row],
    items: Iterable[Row],
    rules: BiRules,
) -> list[dict]:
    """Headline numbers, one row each, over live orders:

    - leads, contacts (rows of `contacts`), clients (keys with a live order);
    - lead_to_client_conversion: clients with a lead / contacts with a lead;
    - average_days_lead_to_first_order: over clients whose first lead came
      before their first order, the mean days (fractional) between the two;
    - repeat_purchase_rate: clients with 2+ orders / clients;
    - average_check: revenue / orders; revenue, profit;
    - margin and weighted_margin, the same number: total profit / total revenue.

    A ratio with nothing to divide by is 0.
    """
    clients = _clients(orders, items, rules.cancelled_statuses)
    lead_count, contacts_with_lead, first_lead = _lead_summary(leads, clients)
    days_to_order = [
        (client.first_order - first_lead[key]).total_seconds() / 86400
        for key, client in clients.items()
        if key in first_lead and first_lead[key] < client.first_order
    ]
    totals = _Totals()
    for client in clients.values():
        totals.add(client.totals)
    order_count = sum(client.orders for client in clients.values())
    money = totals.money()
    values = {
        "leads": lead_count,
        "contacts": sum(1 for _ in contacts),
        "clients": len(clients),
        "lead_to_client_conversion": _ratio(len(first_lead), contacts_with_lead),
        "average_days_lead_to_first_order": _ratio(sum(days_to_order), len(days_to_order)),
        "repeat_purchase_rate": _ratio(
            sum(1 for client in clients.values() if client.orders >= 2), len(clients)
        ),
        "average_check": totals.revenue / order_count if order_count else ZERO,
        "revenue": money["revenue"],
        "profit": money["profit"],
        "margin": money["margin"],
        "weighted_margin": money["margin"],
    }
    return [{"kpi": kpi, "value": value} for kpi, value in values.items()]


def date_rows(first: date, last: date, language: str = "ru") -> Iterator[dict]:
    """The calendar table: one row per day from `first` to `last`, empty days
    too, so a BI chart joined on `date` shows a quiet day as zero instead of
    drawing a line across it. `week` is the ISO week (`2026-W10`, its year the
    ISO year), `weekday_number` 1 (Monday) to 7 sorts the weekday names."""
    for ordinal in range(first.toordinal(), last.toordinal() + 1):
        day = date.fromordinal(ordinal)
        iso_year, iso_week, weekday = day.isocalendar()
        yield {
            "date": day,
            "year": day.year,
            "quarter": (day.month - 1) // 3 + 1,
            "month": day.month,
            "month_name": _MONTH_NAMES[language][day.month - 1],
            "month_start": day.replace(day=1),
            "week": f"{iso_year}-W{iso_week:02d}",
            "week_start": date.fromordinal(ordinal - weekday + 1),
            "weekday": _WEEKDAY_NAMES[language][weekday - 1],
            "weekday_number": weekday,
            "is_weekend": weekday >= 6,
        }


def first_day(leads_daily: Iterable[Row], orders: Iterable[Row], tz: tzinfo) -> date | None:
    """The day of the first lead (from `leads_daily_rows`) or order, in `tz`."""
    lead_days = (row["day"] for row in leads_daily)
    order_days = (_day(order["ordered_at"], tz) for order in orders)
    return min(chain(lead_days, order_days), default=None)


def _fold(text: str) -> str:
    """How people's spellings of one status or stage compare: «Отменен» is «ОТМЕНЁН»."""
    return (text or "").strip().casefold().replace("ё", "е")


def _folded(statuses: Collection[str]) -> set[str]:
    return {_fold(status) for status in statuses}


def _live_orders(orders: Iterable[Row], cancelled_statuses: Collection[str]) -> dict[str, Row]:
    cancelled = _folded(cancelled_statuses)
    return {order["order_id"]: order for order in orders if _fold(order["status"]) not in cancelled}


def _overall(parts: Iterable[_Totals]) -> float:
    """Total profit / total revenue of the parts: the margin a group of rows has."""
    total = _Totals()
    for part in parts:
        total.add(part)
    return _margin(total.revenue - total.cost_total, total.revenue)


def _totals_by_order(items: Iterable[Row]) -> dict[str, _Totals]:
    totals: defaultdict[str, _Totals] = defaultdict(_Totals)
    for item in items:
        totals[item["order_id"]].add_item(item)
    return totals


def _clients(
    orders: Iterable[Row], items: Iterable[Row], cancelled_statuses: Collection[str]
) -> dict[str, _Client]:
    live = _live_orders(orders, cancelled_statuses)
    by_order = _totals_by_order(items)
    clients: dict[str, _Client] = {}
    for order_id, order in live.items():
        ordered_at = order["ordered_at"]
        client = clients.setdefault(order["contact_key"], _Client(ordered_at, ordered_at))
        client.orders += 1
        client.first_order = min(client.first_order, ordered_at)
        client.last_order = max(client.last_order, ordered_at)
        if order_id in by_order:
            client.totals.add(by_order[order_id])
    return clients


def _contacts_among(contacts: Iterable[Row], keys: Collection[str]) -> dict[str, Row]:
    return {
        contact["contact_key"]: contact for contact in contacts if contact["contact_key"] in keys
    }


def _by_revenue(clients: dict[str, _Client]) -> list[tuple[str, _Client]]:
    return sorted(clients.items(), key=lambda pair: (-pair[1].totals.revenue, pair[0]))


def _day(moment: datetime, tz: tzinfo | None) -> date:
    return (moment.astimezone(tz) if tz else moment).date()


def _scores(values: Mapping[str, float]) -> dict[str, int]:
    """Quintile scores, higher value = higher score; see `rfm_rows` for ties."""
    ordered = sorted(values.values())
    count = len(ordered)
    return {
        key: -(-_SCORE_LEVELS * (bisect_left(ordered, value) + 1) // count)
        for key, value in values.items()
    }


def _lead_summary(
    leads: Iterable[Row], clients: Collection[str]
) -> tuple[int, int, dict[str, datetime]]:
    """The number of leads, of contacts with a lead, and each client's first lead time."""
    lead_count = 0
    contacts_with_lead: set[str] = set()
    first_lead: dict[str, datetime] = {}
    for lead in leads:
        lead_count += 1
        key = lead["contact_key"]
        contacts_with_lead.add(key)
        if key in clients and (key not in first_lead or lead["received_at"] < first_lead[key]):
            first_lead[key] = lead["received_at"]
    return lead_count, len(contacts_with_lead), first_lead


def _ratio(part: float, whole: float) -> float:
    return part / whole if whole else 0.0


def _margin(profit: Decimal, revenue: Decimal) -> float:
    return float(profit / revenue) if revenue else 0.0
