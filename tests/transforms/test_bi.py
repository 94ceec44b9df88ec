from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from itertools import product

import pytest
from pytest import approx

from transforms.bi import (
    CLIENT_COLUMNS,
    DATE_COLUMNS,
    DEFAULT_RFM_SEGMENTS,
    KPI_COLUMNS,
    LEADS_DAILY_COLUMNS,
    ORDER_COLUMNS,
    ORDER_ITEM_COLUMNS,
    PRODUCT_COLUMNS,
    RFM_COLUMNS,
    RFM_SEGMENTS,
    BiRules,
    RfmRule,
    client_rows,
    date_rows,
    first_day,
    kpi_rows,
    leads_daily_rows,
    order_item_rows,
    order_rows,
    product_rows,
    rfm_rows,
    rfm_segment,
)

MSK = timezone(timedelta(hours=3))
IGOR_A = "+79123456789"
IGOR_B = "+79031112233"
ANNA = "anna@example.ru"
OLGA = "+79990001122"
PETR = "+79005554433"
STRANGER = "+79215550000"  # ordered, but not in contacts


def _at(month, day, hour=10):
    return datetime(2024, month, day, hour, tzinfo=MSK)


RULES = BiRules(
    as_of=date(2024, 6, 30),
    tz=MSK,
)


def _contact(key, name, phone="", email=""):
    return {"contact_key": key, "name": name, "phone": phone, "email": email, "company": "",
            "source": "Сайт", "first_seen": _at(1, 1), "last_seen": _at(6, 1), "leads_count": 1}


CONTACTS = [
    _contact(IGOR_A, "Игорь", phone=IGOR_A),
    _contact(IGOR_B, "Игорь", phone=IGOR_B),
    _contact(ANNA, "Анна", email=ANNA),
    _contact(OLGA, "Ольга", phone=OLGA),
    _contact(PETR, "Пётр", phone=PETR),
]


def _order(order_id, key, ordered_at, status="Оплачен", comment=""):
    return {"order_id": order_id, "contact_key": key, "ordered_at": ordered_at,
            "status": status, "comment": comment}


ORDERS = [
    _order("A1", IGOR_A, _at(6, 1), comment="самовывоз"),
    _order("A2", IGOR_A, _at(6, 10)),
    _order("A3", IGOR_A, _at(6, 25), status="Доставлен"),
    _order("B1", IGOR_B, _at(5, 1)),
    _order("B2", IGOR_B, _at(6, 20), status="отменён"),
    _order("C1", ANNA, _at(3, 1)),
    _order("U1", STRANGER, _at(6, 28), status="Новый"),
]


def _item(order_id, product_name, price, cost, quantity):
    return {"order_id": order_id, "product": product_name, "price": price, "cost": cost,
            "quantity": quantity}


ITEMS = [
    _item("A1", "Чай", 100.0, 60.0, 2),
    _item("A1", "Кружка", 300.0, 0.0, 1),  # no cost known
    _item("A2", "Чай", 100.0, 60.0, 1),
    _item("A3", "Кофе", 500.0, 350.0, 2),
    _item("B1", "Кофе", 500.0, 350.0, 1),
    _item("B2", "Кофе", 500.0, 350.0, 10),  # cancelled
    _item("C1", "Кружка", 300.0, 0.0, 5),
    _item("U1", "Чай", 100.0, 60.0, 3),
]


def _lead(lead_id, key, received_at, source, stage):
    return {"lead_id": lead_id, "contact_key": key, "received_at": received_at,
            "channel": "form", "source": source, "stage": stage}


LEADS = [
    _lead("L1", IGOR_A, _at(5, 20), "Сайт", "Новый"),
    _lead("L2", IGOR_A, _at(5, 25), "Сайт", "Оплачен"),
    _lead("L3", IGOR_B, _at(5, 3), "Авито", ""),  # after Igor B's first order
    _lead("L4", ANNA, _at(2, 20), "Сайт", "КП отправлено"),
    _lead("L5", OLGA, _at(6, 29), "Авито", "В работе"),
    _lead("L6", OLGA, datetime(2024, 6, 29, 22, 30, tzinfo=UTC), "Авито", " в работе "),
    _lead("L7", PETR, _at(6, 29, 12), "Сайт", "Непонятно"),
    _lead("L8", IGOR_B, _at(6, 15), "Авито", "Оплачен"),
]
CLIENT_KEYS = {IGOR_A, IGOR_B, ANNA, STRANGER}


def _table(columns, *rows):
    """Expected rows as dicts; computed fractions compare to within rounding."""
    return [
        {column: approx(value) if isinstance(value, float) else value
         for column, value in zip(columns, row, strict=True)}
        for row in rows
    ]


def test_order_items_carry_their_order_and_skip_cancelled_orders():
    assert list(order_item_rows(ITEMS, ORDERS)) == _table(
        ORDER_ITEM_COLUMNS,
        # order, ordered at, client, product, price, qty, revenue, cost, profit, margin
        ("A1", _at(6, 1), IGOR_A, "Чай", 100, 2, 200, 120, 80, 0.4),
        ("A1", _at(6, 1), IGOR_A, "Кружка", 300, 1, 300, 0, 300, 1.0),
        ("A2", _at(6, 10), IGOR_A, "Чай", 100, 1, 100, 60, 40, 0.4),
        ("A3", _at(6, 25), IGOR_A, "Кофе", 500, 2, 1000, 700, 300, 0.3),
        ("B1", _at(5, 1), IGOR_B, "Кофе", 500, 1, 500, 350, 150, 0.3),
        ("C1", _at(3, 1), ANNA, "Кружка", 300, 5, 1500, 0, 1500, 1.0),
        ("U1", _at(6, 28), STRANGER, "Чай", 100, 3, 300, 180, 120, 0.4),
    )


def test_orders_list_every_order_with_its_status_and_a_cancelled_flag():
    assert list(order_rows(ORDERS, ITEMS)) == _table(
        ORDER_COLUMNS,
        # order, client, ordered at, status, cancelled, lines, revenue, cost, profit, margin,
        # comment
        ("A1", IGOR_A, _at(6, 1), "Оплачен", False, 2, 500, 120, 380, 0.76, "самовывоз"),
        ("A2", IGOR_A, _at(6, 10), "Оплачен", False, 1, 100, 60, 40, 0.4, ""),
        ("A3", IGOR_A, _at(6, 25), "Доставлен", False, 1, 1000, 700, 300, 0.3, ""),
        ("B1", IGOR_B, _at(5, 1), "Оплачен", False, 1, 500, 350, 150, 0.3, ""),
        ("B2", IGOR_B, _at(6, 20), "отменён", True, 1, 5000, 3500, 1500, 0.3, ""),
        ("C1", ANNA, _at(3, 1), "Оплачен", False, 1, 1500, 0, 1500, 1.0, ""),
        ("U1", STRANGER, _at(6, 28), "Новый", False, 1, 300, 180, 120, 0.4, ""),
    )


def test_summing_the_live_orders_gives_the_kpi_revenue():
    live = sum(row["revenue"] for row in order_rows(ORDERS, ITEMS) if not row["is_cancelled"])
    kpi = {row["kpi"]: row["value"] for row in kpi_rows(CONTACTS, LEADS, ORDERS, ITEMS, RULES)}
    assert live == kpi["revenue"] == 3900


def test_an_order_without_items_has_zero_money_and_zero_margin():
    rows = list(order_rows([_order("X1", ANNA, _at(6, 1))], []))
    assert (rows[0]["items"], rows[0]["revenue"], rows[0]["margin"]) == (0, 0.0, 0.0)


def test_clients_by_revenue_with_unknown_contact_kept_and_cancelled_ignored():
    assert client_rows(CONTACTS, ORDERS, ITEMS) == _table(
        CLIENT_COLUMNS,
        # key, name, phone, email, orders, revenue, cost, profit, margin, weighted margin
        # (all clients' profit / revenue), avg check, first order, last order, lifetime value
        (IGOR_A, "Игорь", IGOR_A, "", 3, 1600, 880, 720, 0.45, 2490 / 3900, Decimal(1600) / 3,
         _at(6, 1), _at(6, 25), 720),
        (ANNA, "Анна", "", ANNA, 1, 1500, 0, 1500, 1.0, 2490 / 3900, 1500, _at(3, 1), _at(3, 1),
         1500),
        (IGOR_B, "Игорь", IGOR_B, "", 1, 500, 350, 150, 0.3, 2490 / 3900, 500, _at(5, 1),
         _at(5, 1), 150),
        (STRANGER, "", "", "", 1, 300, 180, 120, 0.4, 2490 / 3900, 300, _at(6, 28), _at(6, 28),
         120),
    )


def test_two_igors_with_different_phones_stay_two_clients():
    igors = [row for row in client_rows(CONTACTS, ORDERS, ITEMS) if row["name"] == "Игорь"]
    assert [(row["contact_key"], row["orders"], row["revenue"]) for row in igors] == [
        (IGOR_A, 3, 1600),
        (IGOR_B, 1, 500),
    ]
    rfm = rfm_rows(CONTACTS, ORDERS, ITEMS, RULES)
    segments = {row["contact_key"]: row["segment"] for row in rfm}
    assert (segments[IGOR_A], segments[IGOR_B]) == ("Чемпионы", "Перспективные")


def test_products_by_revenue_count_distinct_live_orders():
    assert product_rows(ITEMS, ORDERS) == _table(
        PRODUCT_COLUMNS,
        # product, orders, quantity, revenue, cost, profit, margin, weighted margin
        ("Кружка", 2, 6, 1800, 0, 1800, 1.0, 2490 / 3900),
        ("Кофе", 2, 3, 1500, 1050, 450, 0.3, 2490 / 3900),
        ("Чай", 3, 6, 600, 360, 240, 0.4, 2490 / 3900),
    )


def test_leads_per_day_and_source_in_each_timestamps_zone():
    assert leads_daily_rows(LEADS) == [
        dict(zip(LEADS_DAILY_COLUMNS, row, strict=True))
        for row in [
            (date(2024, 2, 20), "Сайт", 1),
            (date(2024, 5, 3), "Авито", 1),
            (date(2024, 5, 20), "Сайт", 1),
            (date(2024, 5, 25), "Сайт", 1),
            (date(2024, 6, 15), "Авито", 1),
            (date(2024, 6, 29), "Авито", 2),
            (date(2024, 6, 29), "Сайт", 1),
        ]
    ]


def test_a_late_evening_utc_lead_counts_on_the_next_moscow_day():
    tail = leads_daily_rows(LEADS, tz=MSK)[-3:]
    assert [(row["day"], row["source"], row["leads"]) for row in tail] == [
        (date(2024, 6, 29), "Авито", 1),
        (date(2024, 6, 29), "Сайт", 1),
        (date(2024, 6, 30), "Авито", 1),
    ]


def test_rfm_scores_clients_by_rank_and_ties_share_a_score():
    assert rfm_rows(CONTACTS, ORDERS, ITEMS, RULES) == _table(
        RFM_COLUMNS,
        # key, name, recency days, frequency, monetary, R, F, M, segment
        # four clients: rank 1..4 -> scores 2, 3, 4, 5; the three one-order
        # clients tie at rank 1 -> F 2
        (IGOR_A, "Игорь", 5, 3, 1600, 4, 5, 5, "Чемпионы"),
        (ANNA, "Анна", 121, 1, 1500, 2, 2, 4, "Спящие"),
        (IGOR_B, "Игорь", 60, 1, 500, 3, 2, 3, "Перспективные"),
        (STRANGER, "", 2, 1, 300, 5, 2, 2, "Перспективные"),
    )


@pytest.mark.parametrize(
    ("scores", "segment"),
    [
        pytest.param((5, 5, 5), "Чемпионы", id="all-top-are-champions"),
        pytest.param((4, 4, 4), "Чемпионы", id="all-four-are-champions"),
        pytest.param((3, 4, 5), "Лояльные", id="regular-big-spender-not-so-recent-is-loyal"),
        pytest.param((5, 1, 5), "Новые", id="recent-single-order-is-new"),
        pytest.param((4, 1, 1), "Новые", id="recent-small-single-order-is-new"),
        pytest.param((5, 5, 2), "Перспективные", id="recent-frequent-but-small-is-promising"),
        pytest.param((3, 1, 1), "Перспективные", id="mid-recency-single-order-is-promising"),
        pytest.param((2, 5, 5), "Под угрозой", id="big-regular-gone-quiet-is-at-risk"),
        pytest.param((1, 5, 5), "Под угрозой", id="big-regular-long-gone-is-at-risk-not-lost"),
        pytest.param((1, 4, 3), "Под угрозой", id="regular-long-gone-is-at-risk"),
        pytest.param((1, 1, 5), "Спящие", id="one-big-order-long-ago-is-hibernating"),
        pytest.param((2, 5, 1), "Спящие", id="frequent-small-gone-quiet-is-hibernating"),
        pytest.param((2, 2, 2), "Потерянные", id="low-on-all-three-is-lost"),
        pytest.param((1, 1, 1), "Потерянные", id="all-bottom-is-lost"),
    ],
)
def test_default_rfm_segments_read_all_three_scores(scores, segment):
    assert rfm_segment(*scores, RULES) == segment


def test_the_english_table_has_the_same_segments_in_english():
    rules = BiRules(rfm_segments=RFM_SEGMENTS["en"], as_of=date(2024, 6, 30))
    assert [rfm_segment(*scores, rules) for scores in ((5, 5, 5), (1, 5, 5), (1, 1, 1))] == [
        "Champions", "At risk", "Lost"]


def test_every_score_combination_gets_a_default_segment():
    segments = {rfm_segment(*scores, RULES) for scores in product(range(1, 6), repeat=3)}
    assert segments == {rule.segment for rule in DEFAULT_RFM_SEGMENTS}


@pytest.mark.parametrize(
    ("scores", "segment"),
    [
        pytest.param((5, 5, 5), "Лучшие", id="first-matching-rule-wins"),
        pytest.param((5, 2, 5), "Крупные", id="second-rule-when-first-misses"),
        pytest.param((1, 1, 1), "Прочие", id="fallback-when-none-match"),
    ],
)
def test_configured_rfm_segments_first_match_wins(scores, segment):
    rules = BiRules(
        rfm_segments=(RfmRule("Лучшие", f_min=4, m_min=4), RfmRule("Крупные", m_min=5)),
        rfm_fallback="Прочие",
        as_of=date(2024, 6, 30),
    )
    assert rfm_segment(*scores, rules) == segment


def test_kpis_over_live_orders():
    assert kpi_rows(CONTACTS, LEADS, ORDERS, ITEMS, RULES) == _table(
        KPI_COLUMNS,
        ("leads", 8),
        ("contacts", 5),
        ("clients", 4),
        # Igor A, Igor B, Anna of the five contacts with a lead
        ("lead_to_client_conversion", 3 / 5),
        # Igor A 12 days, Anna 10 (2024 is a leap year); Igor B's lead came after
        ("average_days_lead_to_first_order", 11.0),
        ("repeat_purchase_rate", 1 / 4),
        ("average_check", Decimal(3900) / 6),
        ("revenue", 3900),
        ("profit", 2490),
        ("margin", 2490 / 3900),
        ("weighted_margin", 2490 / 3900),
    )


def test_kpis_with_no_data_are_zero_not_errors():
    values = {row["kpi"]: row["value"] for row in kpi_rows([], [], [], [], RULES)}
    assert set(values.values()) == {0}


@pytest.mark.parametrize(
    "status",
    [
        pytest.param("Отменён", id="as-configured"),
        pytest.param("ОТМЕНЁН", id="upper-case"),
        pytest.param("отменен", id="e-for-yo"),
        pytest.param(" Cancelled ", id="english-with-spaces"),
    ],
)
def test_cancelled_order_spellings_earn_nothing(status):
    orders = [_order("A1", ANNA, _at(6, 1), status=status), _order("A2", ANNA, _at(6, 2))]
    items = [_item("A1", "Чай", 100.0, 60.0, 1), _item("A2", "Чай", 100.0, 60.0, 1)]
    revenue = {row["kpi"]: row["value"] for row in kpi_rows([], [], orders, items, RULES)}
    assert revenue["revenue"] == 100.0
    assert [row["order_id"] for row in order_item_rows(items, orders)] == ["A2"]


@pytest.mark.parametrize(
    ("rows", "columns"),
    [
        pytest.param(order_item_rows(ITEMS, ORDERS), ORDER_ITEM_COLUMNS, id="order-items"),
        pytest.param(order_rows(ORDERS, ITEMS), ORDER_COLUMNS, id="orders"),
        pytest.param(client_rows(CONTACTS, ORDERS, ITEMS), CLIENT_COLUMNS, id="clients"),
        pytest.param(product_rows(ITEMS, ORDERS), PRODUCT_COLUMNS, id="products"),
        pytest.param(leads_daily_rows(LEADS), LEADS_DAILY_COLUMNS, id="leads-daily"),
        pytest.param(rfm_rows(CONTACTS, ORDERS, ITEMS, RULES), RFM_COLUMNS, id="rfm"),
        pytest.param(kpi_rows(CONTACTS, LEADS, ORDERS, ITEMS, RULES), KPI_COLUMNS, id="kpi"),
    ],
)
def test_every_row_has_the_documented_columns_in_order(rows, columns):
    assert rows
    assert all(tuple(row) == columns for row in rows)


def test_inputs_are_read_once_so_generators_work():
    rows = client_rows(iter(CONTACTS), iter(ORDERS), iter(ITEMS))
    assert [row["contact_key"] for row in rows] == [IGOR_A, ANNA, IGOR_B, STRANGER]


def test_money_is_exact_decimal_even_from_a_real_column():
    # a REAL column gives 0.1 back as the float nearest to it; money reads its text
    orders = [_order("A1", ANNA, _at(6, 1)), _order("A2", ANNA, _at(6, 2))]
    items = [_item("A1", "Фильтр", 0.1, 0.05, 3), _item("A2", "Котёл", 16060.45, 0, 1)]
    client = client_rows([], orders, items)[0]
    assert client["revenue"] == Decimal("16060.75") and client["cost_total"] == Decimal("0.15")
    assert client["average_check"] == Decimal("8030.375")
    money = [row[column] for row in order_item_rows(items, orders)
             for column in ("price", "revenue", "cost_total", "profit")]
    assert money[:4] == [Decimal("0.1"), Decimal("0.3"), Decimal("0.15"), Decimal("0.15")]
    assert all(isinstance(value, Decimal) for value in money)
    kpi = {row["kpi"]: row["value"] for row in kpi_rows([], [], orders, items, RULES)}
    assert (kpi["revenue"], kpi["average_check"]) == (Decimal("16060.75"), Decimal("8030.375"))
    assert isinstance(kpi["margin"], float)  # a ratio, not money


def test_the_weighted_margin_is_what_the_average_of_row_margins_is_not():
    """Кружка at 100% on 1 800 and Чай at 40% on 600: the plain mean of the rows
    says 70%; the money says 2 040 / 2 400 = 85%."""
    orders = [_order("A1", ANNA, _at(6, 1))]
    items = [_item("A1", "Кружка", 300.0, 0.0, 6), _item("A1", "Чай", 100.0, 60.0, 6)]
    products = product_rows(items, orders)
    assert sum(row["margin"] for row in products) / len(products) == approx(0.7)
    assert [row["weighted_margin"] for row in products] == [approx(0.85)] * 2
    assert client_rows([], orders, items)[0]["weighted_margin"] == approx(0.85)


@pytest.mark.parametrize(
    ("ordered_at", "days"),
    [
        pytest.param(datetime(2024, 6, 29, 23, 30, tzinfo=MSK), 1, id="late-yesterday-is-1"),
        pytest.param(datetime(2024, 6, 29, 21, 30, tzinfo=UTC), 0,
                     id="utc-evening-is-today-in-moscow"),
        pytest.param(datetime(2024, 6, 30, 0, 0, tzinfo=MSK), 0, id="the-as-of-day-is-0"),
        pytest.param(datetime(2024, 7, 3, tzinfo=MSK), 0, id="after-the-as-of-day-is-0"),
    ],
)
def test_recency_counts_calendar_days_to_the_as_of_day_in_the_business_zone(ordered_at, days):
    orders = [_order("A1", ANNA, ordered_at)]
    rfm = rfm_rows([], orders, [_item("A1", "Чай", 100.0, 60.0, 1)], RULES)
    assert rfm[0]["recency_days"] == days


def test_the_calendar_has_every_day_with_its_iso_week_across_new_year():
    rows = list(date_rows(date(2024, 12, 28), date(2025, 1, 6)))
    assert [row["date"] for row in rows] == [date(2024, 12, 28) + timedelta(days=n)
                                             for n in range(10)]
    assert all(tuple(row) == DATE_COLUMNS for row in rows)
    saturday, monday, new_year = rows[0], rows[2], rows[4]
    assert (saturday["weekday"], saturday["weekday_number"], saturday["is_weekend"]) == (
        "Суббота", 6, True)
    assert (saturday["week"], saturday["week_start"]) == ("2024-W52", date(2024, 12, 23))
    # 30 December 2024 starts ISO week 1 of 2025
    assert (monday["week"], monday["week_start"], monday["is_weekend"]) == (
        "2025-W01", date(2024, 12, 30), False)
    assert (monday["year"], monday["quarter"], monday["month_name"]) == (2024, 4, "Декабрь")
    assert (new_year["year"], new_year["quarter"], new_year["month"], new_year["month_name"],
            new_year["month_start"], new_year["weekday"]) == (
        2025, 1, 1, "Январь", date(2025, 1, 1), "Среда")


def test_the_calendar_speaks_english_too():
    row = next(date_rows(date(2025, 3, 1), date(2025, 3, 1), "en"))
    assert (row["month_name"], row["weekday"]) == ("March", "Saturday")


def test_the_calendar_starts_at_the_first_lead_or_order_in_the_business_zone():
    leads = leads_daily_rows(LEADS, tz=MSK)
    assert first_day(leads, ORDERS, MSK) == date(2024, 2, 20)  # Anna's lead
    early = [_order("Z0", ANNA, datetime(2024, 1, 31, 21, 30, tzinfo=UTC))]
    assert first_day(leads, early, MSK) == date(2024, 2, 1)  # 00:30 in Moscow
    assert first_day([], [], MSK) is None
