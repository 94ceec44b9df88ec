import random
import re
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from bs4 import BeautifulSoup

from transforms.report import ReportData, count_ticks, render_report

GENERATED_AT = datetime(2025, 3, 31, 9, 30, tzinfo=UTC)
HOSTILE_NAME = "<script>alert(1)</script>"
HOSTILE_PRODUCT = '<img src=x onerror="alert(2)">'
SOURCES = {"Сайт": 9, "Авито": 6, "Email": 4, "Реклама": 3, "Рекомендация": 2, "Другое": 1}
STAGES = [("Новый", 412), ("В работе", 268), ("КП отправлено", 141), ("Оплачен", 77),
          ("client", 64)]
# name, phone, orders, revenue, cost total
CLIENTS = [
    ("Игорь Смирнов", "+79123456789", 7, 412_300.00, 251_900.00),
    ("Игорь Смирнов", "+79031112233", 2, 58_400.00, 31_100.00),
    ("ООО Ромашка (Анна Кузнецова)", "+74951234567", 11, 1_234_567.89, 987_000.00),
    ("Мария Иванова", "+79265550011", 3, 96_750.50, 48_100.00),
    ("Пётр Васильев", "+79857770022", 1, 15_900.00, 9_800.00),
    ("Елена Соколова", "+79161234500", 5, 187_200.00, 101_300.00),
    ("Дмитрий Попов", "+79219876543", 4, 143_000.00, 92_500.00),
    ("Ольга Лебедева", "+79051230099", 2, 64_300.00, 30_050.00),
    ("Сергей Новиков", "+79998887766", 6, 302_450.00, 240_000.00),
    ("Наталья Морозова", "+79102223344", 1, 12_500.00, 13_900.00),
    ("Алексей Волков", "+79035556677", 3, 88_800.00, 41_000.00),
    ("Татьяна Фёдорова", "+79267778899", 2, 54_000.00, 27_600.00),
    ("Анна Белова", "+79001234567", 2, 120_000.00, 60_000.00),
]
# product, orders, quantity, revenue, cost total
PRODUCTS = [
    ("Настройка CRM", 18, 18, 1_080_000.00, 702_000.00),
    ("Интеграция с Airtable", 12, 12, 540_000.00, 297_000.00),
    ("Консультация, 1 час", 41, 63, 315_000.00, 94_500.00),
    ("Обучение сотрудников", 9, 27, 243_000.00, 170_100.00),
    ("Поддержка, месяц", 15, 22, 198_000.00, 118_800.00),
    ("Шаблон отчёта", 23, 25, 62_500.00, 12_500.00),
    ("Выезд специалиста", 4, 4, 36_000.00, 41_200.00),
]
RFM_SIZES = {"Чемпионы": 6, "Лояльные": 8, "Новые": 17, "Перспективные": 11, "Под угрозой": 0,
             "Потерянные": 14, "Спящие": 9}
KPI = {
    "leads": 412, "contacts": 356, "clients": 64, "lead_to_client_conversion": 0.15534,
    "average_days_lead_to_first_order": 12.46, "repeat_purchase_rate": 0.40625,
    "average_check": 19_090.24, "revenue": 2_474_500.00, "profit": 1_038_400.00,
    "margin": 0.41964, "weighted_margin": 0.41964,
}


def _leads_daily() -> list[dict]:
    """Twelve weeks from Monday 6 January 2025, quieter at weekends."""
    noise = random.Random(7)
    rows = []
    for offset in range(84):
        day = date(2025, 1, 6) + timedelta(days=offset)
        weekend = day.weekday() >= 5
        for source, weight in SOURCES.items():
            leads = noise.randint(0, weight) // (3 if weekend else 1)
            if leads:
                rows.append({"day": day, "source": source, "leads": leads})
    return rows


def _funnel() -> list[dict]:
    rows = []
    for source in ("(all)", "Сайт"):
        share = 1 if source == "(all)" else 0.5
        previous = first = None
        for order, (stage, reached) in enumerate(STAGES, start=1):
            reached = int(reached * share)
            # the client row is against all leads, as transforms.bi computes it
            base = first if stage == "client" else previous
            rows.append({"source": source, "stage_order": order, "stage": stage,
                         "leads_reached": reached,
                         "conversion_from_previous": reached / base if base else 1.0})
            previous = reached
            first = first or reached
    return rows


def _clients() -> list[dict]:
    rows = []
    for index, (name, phone, orders, revenue, cost) in enumerate(CLIENTS):
        first = datetime(2025, 1, 10, 12, tzinfo=UTC) + timedelta(days=index * 3)
        rows.append({
            "contact_key": phone, "name": name, "phone": phone, "email": f"client{index}@mail.ru",
            "orders": orders, "revenue": revenue, "cost_total": cost, "profit": revenue - cost,
            "margin": (revenue - cost) / revenue, "average_check": revenue / orders,
            "first_order": first, "last_order": first + timedelta(days=30),
            "lifetime_value": revenue,
        })
    return rows


def _products() -> list[dict]:
    return [{"product": product, "orders": orders, "quantity": quantity, "revenue": revenue,
             "cost_total": cost, "profit": revenue - cost, "margin": (revenue - cost) / revenue}
            for product, orders, quantity, revenue, cost in PRODUCTS]


def _rfm() -> list[dict]:
    rows = []
    for segment, size in RFM_SIZES.items():
        for index in range(size):
            rows.append({"contact_key": f"+7900{segment}{index}", "name": f"{segment} {index}",
                         "recency_days": 10 + index, "frequency": 1 + index % 4,
                         "monetary": 1000.0 * (index + 1), "r_score": 3, "f_score": 3,
                         "m_score": 3, "segment": segment})
    return rows


LOSSES = [
    {"stage_order": 1, "stage": "Новый", "loss_reason": "не дозвонились", "leads": 30,
     "share_of_lost": 0.6},
    {"stage_order": 3, "stage": "КП отправлено", "loss_reason": "", "leads": 20,
     "share_of_lost": 0.4},
]
FORECAST = [
    {"stage_order": 1, "stage": "Новый", "open_leads": 10, "leads_with_amount": 4,
     "open_amount": Decimal("40000.00"), "win_rate": 0.2, "forecast": Decimal("8000.00")},
    {"stage_order": 2, "stage": "В работе", "open_leads": 5, "leads_with_amount": 5,
     "open_amount": Decimal("100000.10"), "win_rate": 0.5, "forecast": Decimal("50000.05")},
    {"stage_order": 3, "stage": "КП отправлено", "open_leads": 0, "leads_with_amount": 0,
     "open_amount": Decimal(0), "win_rate": 0.0, "forecast": Decimal(0)},
]
MANAGERS = [
    {"owner": "Анна", "leads": 200, "open": 50, "won": 40, "lost": 110, "conversion": 0.2,
     "revenue": Decimal("1500000.50"), "forecast": Decimal("30000.025"), "overdue_tasks": 3},
    {"owner": "", "leads": 12, "open": 12, "won": 0, "lost": 0, "conversion": 0.0,
     "revenue": Decimal(0), "forecast": Decimal(0), "overdue_tasks": 0},
]


def realistic_report_data() -> ReportData:
    """Three months of a small agency: six sources, a funnel, clients, products."""
    return ReportData(
        kpi=[{"kpi": name, "value": value} for name, value in KPI.items()],
        leads_daily=_leads_daily(), funnel=_funnel(), clients=_clients(),
        products=_products(), rfm=_rfm(), rfm_segments=tuple(RFM_SIZES),
        losses=LOSSES, forecast=FORECAST, managers=MANAGERS,
    )


def _render(language: str, data: ReportData | None = None) -> BeautifulSoup:
    document = render_report(data or realistic_report_data(), language=language,
                             generated_at=GENERATED_AT)
    return BeautifulSoup(document, "html.parser")


def _tiles(page: BeautifulSoup) -> dict[str, str]:
    return {tile.select_one(".tile-label").get_text(): tile.select_one(".tile-value").get_text()
            for tile in page.select(".tile")}


def _table_rows(page: BeautifulSoup, name: str) -> list[list[str]]:
    return [[cell.get_text() for cell in row.find_all("td")]
            for row in page.select(f'table[data-table="{name}"] tbody tr')]


NNBSP, NBSP = "\u202f", "\u00a0"


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        pytest.param("ru", {
            "Лиды": "412",
            "Конверсия лид → клиент": f"15,5{NBSP}%",
            "Дней от лида до заказа": f"12,5{NBSP}дн.",
            "Повторные покупки": f"40,6{NBSP}%",
            "Средний чек": f"19{NNBSP}090,24{NBSP}₽",
            "Выручка": f"2{NNBSP}474{NNBSP}500,00{NBSP}₽",
            "Прибыль": f"1{NNBSP}038{NNBSP}400,00{NBSP}₽",
            "Маржа": f"42,0{NBSP}%",
        }, id="ru-thin-spaces-comma-decimal"),
        pytest.param("en", {
            "Leads": "412",
            "Lead → client conversion": "15.5%",
            "Days from lead to first order": f"12.5{NBSP}days",
            "Repeat purchase rate": "40.6%",
            "Average check": "₽19,090.24",
            "Revenue": "₽2,474,500.00",
            "Profit": "₽1,038,400.00",
            "Margin": "42.0%",
        }, id="en-comma-thousands-dot-decimal"),
    ],
)
def test_kpi_tiles_show_numbers_the_way_readers_of_the_language_write_them(language, expected):
    tiles = _tiles(_render(language))
    assert len(tiles) == 10
    for label, value in expected.items():
        assert tiles[label] == value


@pytest.mark.parametrize("language", ["ru", "en"])
def test_every_chart_is_drawn_with_its_title_in_the_language(language):
    page = _render(language)
    charts = {svg["data-chart"] for svg in page.select("svg.chart")}
    assert charts == {"weekly-leads", "funnel", "products", "rfm"}
    titles = [h2.get_text() for h2 in page.select("h2")]
    if language == "ru":
        assert "Топ-10 клиентов по выручке" in titles and "RFM-сегменты клиентов" in titles
    else:
        assert "Top 10 clients by revenue" in titles and "RFM segments of clients" in titles
    assert not page.select(".no-data")


def test_weekly_chart_sums_days_into_iso_weeks_and_shows_every_source_in_the_legend():
    data = ReportData(leads_daily=[
        {"day": date(2025, 3, 3), "source": "Сайт", "leads": 2},    # Monday
        {"day": date(2025, 3, 9), "source": "Сайт", "leads": 3},    # Sunday, same week
        {"day": date(2025, 3, 10), "source": "Авито", "leads": 4},  # next Monday
    ])
    page = _render("ru", data)
    bars = [rect.title.get_text() for rect in page.select('svg[data-chart="weekly-leads"] rect')]
    assert bars == [f"Неделя с 3{NBSP}мар 2025 · Сайт: 5", f"Неделя с 10{NBSP}мар 2025 · Авито: 4"]
    assert [item.get_text() for item in page.select(".legend-item")] == ["Сайт", "Авито"]


@pytest.mark.parametrize(
    ("largest", "ticks"),
    [
        pytest.param(3, [0, 1, 2, 3], id="a-quiet-week"),
        pytest.param(79, [0, 20, 40, 60, 80], id="tens"),
        pytest.param(412, [0, 100, 200, 300, 400, 500], id="hundreds"),
    ],
)
def test_the_leads_axis_counts_in_whole_leads(largest, ticks):
    assert count_ticks(largest) == ticks


def test_funnel_shows_all_sources_together_with_conversion_between_stages():
    funnel = _render("ru").select_one('svg[data-chart="funnel"]')
    page_text = funnel.get_text(" ")
    assert [rect.title.get_text() for rect in funnel.select("rect")] == [
        "Новый: 412", "В работе: 268", "КП отправлено: 141", "Оплачен: 77",
        "Лиды клиентов (у контакта есть заказ): 64"]
    assert f"↓ 65,0{NBSP}%" in page_text  # 268 of 412


@pytest.mark.parametrize(
    ("language", "label", "note"),
    [pytest.param("ru", "Лиды клиентов", f"↓ 15,5{NBSP}% от всех лидов", id="ru"),
     pytest.param("en", "Leads of clients", "↓ 15.5% of all leads", id="en")],
)
def test_the_funnels_last_bar_says_it_counts_leads_of_clients_against_all_leads(language, label,
                                                                               note):
    """64 leads of 412 belong to clients: 15,5 % of all leads, not 83 % of the 77 paid."""
    funnel = _render(language).select_one('svg[data-chart="funnel"]')
    texts = [text.get_text() for text in funnel.select("text")]
    assert texts[-3:] == [note, label, "64"]


def test_the_forecast_shows_each_open_stage_and_the_total_to_the_kopeck():
    assert _table_rows(_render("ru"), "forecast") == [
        ["Новый", "10", "4", f"40{NNBSP}000,00{NBSP}₽", f"20,0{NBSP}%", f"8{NNBSP}000,00{NBSP}₽"],
        ["В работе", "5", "5", f"100{NNBSP}000,10{NBSP}₽", f"50,0{NBSP}%",
         f"50{NNBSP}000,05{NBSP}₽"],
        ["КП отправлено", "0", "0", f"0,00{NBSP}₽", f"0,0{NBSP}%", f"0,00{NBSP}₽"],
        ["Итого", "15", "9", f"140{NNBSP}000,10{NBSP}₽", "", f"58{NNBSP}000,05{NBSP}₽"],
    ]


def test_managers_and_losses_name_what_has_no_owner_or_reason():
    page = _render("ru")
    assert _table_rows(page, "managers") == [
        ["Анна", "200", "40", "110", f"20,0{NBSP}%", f"1{NNBSP}500{NNBSP}000,50{NBSP}₽",
         f"30{NNBSP}000,03{NBSP}₽", "3"],
        ["без ответственного", "12", "0", "0", f"0,0{NBSP}%", f"0,00{NBSP}₽", f"0,00{NBSP}₽",
         "0"],
    ]
    assert _table_rows(page, "losses") == [
        ["Новый", "не дозвонились", "30", f"60,0{NBSP}%"],
        ["КП отправлено", "без причины", "20", f"40,0{NBSP}%"],
    ]


def test_funnel_stages_table_shows_conversion_losses_and_days_per_stage():
    funnel = [{"source": "(all)", "stage_order": 1, "stage": "Новый", "leads_reached": 10,
               "conversion_from_previous": 1.0, "conversion_to_next": 0.5,
               "conversion_to_won": 0.1, "lost_at_stage": 4, "median_days_in_stage": 2.25},
              {"source": "(all)", "stage_order": 2, "stage": "Оплачен", "leads_reached": 1,
               "conversion_from_previous": 0.1, "conversion_to_next": None,
               "conversion_to_won": 1.0, "lost_at_stage": 0, "median_days_in_stage": None}]
    assert _table_rows(_render("en", ReportData(funnel=funnel)), "stages") == [
        ["Новый", "10", "50.0%", "10.0%", "4", "2.3"],
        ["Оплачен", "1", "—", "100.0%", "0", "—"],
    ]


def test_top_clients_are_ranked_and_namesakes_stay_two_rows():
    page = _render("ru")
    by_revenue = _table_rows(page, "top-clients-by-revenue")
    assert len(by_revenue) == 10
    assert by_revenue[0] == ["ООО Ромашка (Анна Кузнецова)", "+74951234567", "11",
                             f"1{NNBSP}234{NNBSP}567,89{NBSP}₽", f"247{NNBSP}567,89{NBSP}₽"]
    namesakes = [row[1] for row in by_revenue if row[0] == "Игорь Смирнов"]
    assert namesakes == ["+79123456789", "+79031112233"]
    by_profit = _table_rows(page, "top-clients-by-profit")
    assert by_profit[0][0] == "ООО Ромашка (Анна Кузнецова)"
    assert by_profit[1][0] == "Игорь Смирнов"


def test_products_show_revenue_profit_margin_and_a_loss_in_red():
    page = _render("en")
    rows = _table_rows(page, "products")
    assert rows[0] == ["Настройка CRM", "18", "18", "₽1,080,000.00", "₽378,000.00", "35.0%"]
    assert rows[-1] == ["Выезд специалиста", "4", "4", "₽36,000.00", "−₽5,200.00", "−14.4%"]
    loss = page.select_one('svg[data-chart="products"] rect[fill="#e15759"]')
    assert loss.title.get_text() == "Выезд специалиста · Profit: −₽5,200.00"


def test_rfm_chart_has_a_bar_per_segment_of_the_table_in_its_order():
    chart = _render("ru").select_one('svg[data-chart="rfm"]')
    assert [rect.title.get_text() for rect in chart.select("rect")] == [
        "Чемпионы: 6", "Лояльные: 8", "Новые: 17", "Перспективные: 11", "Под угрозой: 0",
        "Потерянные: 14", "Спящие: 9"]


def test_seven_segment_labels_take_turns_on_two_lines_so_none_overlap():
    chart = _render("ru").select_one('svg[data-chart="rfm"]')
    labels = [text for text in chart.select("text") if "value" not in text.get("class", [])]
    assert [label.get_text() for label in labels] == list(RFM_SIZES)
    lines = [float(label["y"]) for label in labels]
    assert lines[0::2] == [lines[0]] * 4 and lines[1::2] == [lines[0] + 16] * 3


def test_a_segment_outside_the_table_gets_a_bar_after_it():
    data = replace(realistic_report_data(), rfm=[
        *realistic_report_data().rfm,
        {"contact_key": "+79000000000", "name": "x", "segment": "Прочие"}])
    chart = _render("ru", data).select_one('svg[data-chart="rfm"]')
    assert chart.select("rect")[-1].title.get_text() == "Прочие: 1"


def with_hostile_names(data: ReportData) -> ReportData:
    """`data` plus a top client and a product whose names are HTML."""
    hostile_client = {**data.clients[0], "contact_key": "+79001110000", "name": HOSTILE_NAME,
                      "phone": "+79001110000"}
    hostile_product = {**data.products[0], "product": HOSTILE_PRODUCT}
    return replace(data, clients=[*data.clients, hostile_client],
                   products=[*data.products, hostile_product])


def test_a_script_in_a_name_is_shown_as_text_and_never_runs():
    data = with_hostile_names(realistic_report_data())
    document = render_report(data, generated_at=GENERATED_AT)
    assert "<script" not in document
    assert "<img" not in document
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in document
    page = BeautifulSoup(document, "html.parser")
    assert HOSTILE_NAME in [row[0] for row in _table_rows(page, "top-clients-by-revenue")]
    assert HOSTILE_PRODUCT in [row[0] for row in _table_rows(page, "products")]


@pytest.mark.parametrize("language", ["ru", "en"])
def test_the_report_opens_offline(language):
    document = render_report(realistic_report_data(), language=language)
    external = re.compile(r'src\s*=\s*"?http|href\s*=\s*"?http|@import|url\(\s*["\']?http|'
                          r"<link|<script", re.IGNORECASE)
    assert not external.findall(document)


@pytest.mark.parametrize(
    ("language", "note"),
    [pytest.param("ru", "Пока нет данных", id="ru"), pytest.param("en", "No data yet", id="en")],
)
def test_a_report_before_the_first_order_says_no_data_yet_per_chart(language, note):
    data = ReportData(kpi=[{"kpi": "leads", "value": 0}, {"kpi": "revenue", "value": 0.0},
                           {"kpi": "average_days_lead_to_first_order", "value": None}])
    page = _render(language, data)
    notes = [p.get_text() for p in page.select(".no-data")]
    # weekly leads, funnel, RFM, funnel stages, losses, forecast, managers, two
    # top-client tables, products
    assert notes == [note] * 10
    assert not page.select("svg.chart")
    tiles = _tiles(page)
    assert tiles["Лиды" if language == "ru" else "Leads"] == "0"
    assert "—" in tiles.values()


def test_footer_says_when_the_report_was_made():
    footer = _render("ru").select_one("footer").get_text()
    assert footer.startswith("Сформировано 31.03.2025 09:30 UTC")


@pytest.mark.parametrize(
    ("language", "shown"),
    [pytest.param("ru", "Сформировано 31.03.2025 12:30 MSK · данные по 30.03.2025 · LeadHub",
                  id="ru"),
     pytest.param("en", "Generated 2025-03-31 12:30 MSK · figures as of 2025-03-30 · LeadHub",
                  id="en")],
)
def test_footer_is_in_the_business_time_zone_and_names_the_as_of_day(language, shown):
    document = render_report(realistic_report_data(), language=language,
                             generated_at=GENERATED_AT, tz=ZoneInfo("Europe/Moscow"),
                             as_of=date(2025, 3, 30))
    assert BeautifulSoup(document, "html.parser").select_one("footer").get_text() == shown


def test_an_unknown_language_is_refused_with_the_choices():
    with pytest.raises(ValueError, match=r"\['en', 'ru'\].*'de'"):
        render_report(ReportData(), language="de")


@pytest.mark.parametrize(
    ("language", "shown"),
    [pytest.param("ru", f"8{NNBSP}030,28{NBSP}₽", id="ru"),
     pytest.param("en", "₽8,030.28", id="en")],
)
def test_money_on_the_dashboard_rounds_half_up(language, shown):
    from decimal import Decimal

    data = ReportData(kpi=[{"kpi": "average_check", "value": Decimal("8030.275")}])
    tiles = _tiles(_render(language, data))
    assert tiles["Средний чек" if language == "ru" else "Average check"] == shown


def _axis_labels(page: BeautifulSoup) -> list[str]:
    chart = page.select_one('svg[data-chart="weekly-leads"]')
    return [text.get_text() for text in chart.select("text[text-anchor=middle]")]


def test_axis_labels_carry_the_year_when_the_chart_spans_years():
    data = ReportData(leads_daily=[{"day": date(2024, 12, 16) + timedelta(weeks=n),
                                    "source": "Сайт", "leads": 1} for n in range(5)])
    assert _axis_labels(_render("ru", data)) == [
        f"16{NBSP}дек 2024", f"23{NBSP}дек 2024", f"30{NBSP}дек 2024", f"6{NBSP}янв 2025",
        f"13{NBSP}янв 2025"]
    assert _axis_labels(_render("en", data))[3] == f"Jan{NBSP}6, 2025"


def test_axis_labels_within_one_year_leave_it_out():
    data = ReportData(leads_daily=[{"day": date(2025, 3, 3), "source": "Сайт", "leads": 1},
                                   {"day": date(2025, 3, 10), "source": "Сайт", "leads": 1}])
    assert _axis_labels(_render("ru", data)) == [f"3{NBSP}мар", f"10{NBSP}мар"]
