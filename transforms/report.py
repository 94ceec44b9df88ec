"""The dashboard: BI tables rendered as one self-contained HTML page.

`render_report` takes the rows `transforms.bi` computes (KPIs, daily leads,
funnel, clients, products, RFM) and returns a single HTML document that opens
offline: inline CSS, charts drawn here as inline SVG, no scripts, fonts or
links to fetch. Labels come in Russian or English and numbers are written the
way people of that language read them. Every piece of data is HTML-escaped, so
a lead named `<script>` is shown as text.
"""

from __future__ import annotations

import html
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import ROUND_HALF_UP, Decimal

TOP_CLIENTS = 10
TOP_PRODUCTS_CHART = 12
TOP_PRODUCTS_TABLE = 20
ALL_SOURCES = "(all)"
CLIENT_STAGE = "client"

KPI_ORDER = (
    "leads", "contacts", "clients", "lead_to_client_conversion",
    "average_days_lead_to_first_order", "repeat_purchase_rate", "average_check", "revenue",
    "profit", "margin",
)
# KPIs the tiles leave out: weighted_margin is the margin tile's number.
_NOT_TILES = ("weighted_margin",)
_KPI_KINDS = {
    "leads": "count", "contacts": "count", "clients": "count",
    "lead_to_client_conversion": "percent", "average_days_lead_to_first_order": "days",
    "repeat_purchase_rate": "percent", "average_check": "money", "revenue": "money",
    "profit": "money", "margin": "percent",
}

LABELS: dict[str, dict[str, str]] = {
    "ru": {
        "subtitle": "Лиды, клиенты и продажи",
        "leads": "Лиды", "contacts": "Контакты", "clients": "Клиенты",
        "lead_to_client_conversion": "Конверсия лид → клиент",
        "average_days_lead_to_first_order": "Дней от лида до заказа",
        "repeat_purchase_rate": "Повторные покупки", "average_check": "Средний чек",
        "revenue": "Выручка", "profit": "Прибыль", "margin": "Маржа",
        "weekly_leads": "Лиды по неделям и источникам", "week_of": "Неделя с",
        "funnel": "Воронка (все источники)", "funnel_client": "Лиды клиентов",
        "funnel_client_title": "Лиды клиентов (у контакта есть заказ)",
        "of_all_leads": "от всех лидов",
        "from_previous": "от предыдущего этапа",
        "top_by_revenue": "Топ-10 клиентов по выручке",
        "top_by_profit": "Топ-10 клиентов по прибыли",
        "name": "Клиент", "phone": "Телефон", "orders": "Заказы",
        "products": "Прибыльность товаров", "product": "Товар", "quantity": "Кол-во",
        "products_shown": "Показаны {shown} из {total} товаров; все — в products.csv.",
        "rfm": "RFM-сегменты клиентов",
        "no_data": "Пока нет данных", "generated": "Сформировано", "as_of": "данные по",
        "days": "дн.",
        "stages": "Этапы воронки", "stage": "Этап", "reached": "Дошли",
        "to_next": "В следующий", "to_won": "В оплату", "lost_here": "Потеряны",
        "median_days": "Медиана, дн.",
        "losses": "Потери по этапам и причинам", "loss_reason": "Причина", "share": "Доля",
        "no_reason": "без причины",
        "forecast": "Прогноз по открытым лидам", "open_leads": "Открыто",
        "with_amount": "С суммой", "open_amount": "Сумма", "win_rate": "Доля выигранных",
        "forecast_value": "Прогноз", "total": "Итого",
        "managers": "Менеджеры", "owner": "Ответственный", "no_owner": "без ответственного",
        "won": "Оплачено", "lost": "Отказ", "conversion": "Конверсия",
        "overdue_tasks": "Просрочено задач",
    },
    "en": {
        "subtitle": "Leads, clients and sales",
        "leads": "Leads", "contacts": "Contacts", "clients": "Clients",
        "lead_to_client_conversion": "Lead → client conversion",
        "average_days_lead_to_first_order": "Days from lead to first order",
        "repeat_purchase_rate": "Repeat purchase rate", "average_check": "Average check",
        "revenue": "Revenue", "profit": "Profit", "margin": "Margin",
        "weekly_leads": "Leads per week by source", "week_of": "Week of",
        "funnel": "Funnel (all sources)", "funnel_client": "Leads of clients",
        "funnel_client_title": "Leads of clients (the contact has an order)",
        "of_all_leads": "of all leads",
        "from_previous": "from the previous stage",
        "top_by_revenue": "Top 10 clients by revenue",
        "top_by_profit": "Top 10 clients by profit",
        "name": "Client", "phone": "Phone", "orders": "Orders",
        "products": "Product profitability", "product": "Product", "quantity": "Qty",
        "products_shown": "Showing {shown} of {total} products; all of them are in "
                          "products.csv.",
        "rfm": "RFM segments of clients",
        "no_data": "No data yet", "generated": "Generated", "as_of": "figures as of",
        "days": "days",
        "stages": "Funnel stages", "stage": "Stage", "reached": "Reached",
        "to_next": "To next", "to_won": "To won", "lost_here": "Lost here",
        "median_days": "Median days",
        "losses": "Losses by stage and reason", "loss_reason": "Reason", "share": "Share",
        "no_reason": "no reason",
        "forecast": "Pipeline forecast", "open_leads": "Open",
        "with_amount": "With amount", "open_amount": "Amount", "win_rate": "Win rate",
        "forecast_value": "Forecast", "total": "Total",
        "managers": "Managers", "owner": "Owner", "no_owner": "no owner",
        "won": "Won", "lost": "Lost", "conversion": "Conversion",
        "overdue_tasks": "Overdue tasks",
    },
}

_MONTHS = {
    "ru": ("янв", "фев", "мар", "апр", "мая", "июн", "июл", "авг", "сен", "окт", "ноя", "дек"),
    "en": ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
}

SOURCE_COLOURS = (
    "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#bab0ac",
)
# By position in the segment table: for the built-in one champions, loyal, new,
# promising, at risk (red: act now), lost, hibernating.
SEGMENT_COLOURS = ("#7b4fc9", "#2e9d5b", "#3b82c4", "#76b7b2", "#e15759", "#9aa3ad", "#e0a030")
REVENUE_COLOUR = "#4e79a7"
PROFIT_COLOUR = "#59a14f"
LOSS_COLOUR = "#e15759"
FUNNEL_COLOUR = "#3b82c4"

NARROW_NBSP = "\u202f"
NBSP = "\u00a0"
MINUS = "\u2212"
NO_VALUE = "—"


@dataclass(frozen=True)
class ReportData:
    """The BI tables the dashboard shows, as rows from `transforms.bi` and
    `transforms.funnel`."""

    kpi: list[dict] = field(default_factory=list)
    leads_daily: list[dict] = field(default_factory=list)
    funnel: list[dict] = field(default_factory=list)
    clients: list[dict] = field(default_factory=list)
    products: list[dict] = field(default_factory=list)
    rfm: list[dict] = field(default_factory=list)
    # from `transforms.funnel`
    losses: list[dict] = field(default_factory=list)
    forecast: list[dict] = field(default_factory=list)
    managers: list[dict] = field(default_factory=list)
    # the RFM segment table's names in order: a bar each, empty ones too
    rfm_segments: tuple[str, ...] = ()


@dataclass(frozen=True)
class NumberStyle:
    thousands: str
    decimal: str
    money: str
    percent: str


NUMBER_STYLES = {
    "ru": NumberStyle(NARROW_NBSP, ",", "{}" + NBSP + "₽", "{}" + NBSP + "%"),
    "en": NumberStyle(",", ".", "₽{}", "{}%"),
}


@dataclass(frozen=True)
class Locale:
    language: str
    labels: Mapping[str, str]
    numbers: NumberStyle

    def text(self, key: str) -> str:
        return self.labels.get(key, key)


def locale_for(language: str) -> Locale:
    if language not in LABELS:
        raise ValueError(f"report language must be one of {sorted(LABELS)}, not {language!r}")
    return Locale(language, LABELS[language], NUMBER_STYLES[language])


# ---------------------------------------------------------------- numbers


def _is_missing(value: object) -> bool:
    if isinstance(value, Decimal):
        return not value.is_finite()
    return value is None or (isinstance(value, float) and not math.isfinite(value))


def _rounded(value: Decimal | float, decimals: int) -> Decimal:
    """Half up, as accountants round: 8 030,275 ₽ is 8 030,28 ₽ (a float would say ,27)."""
    return Decimal(str(value)).quantize(Decimal(1).scaleb(-decimals), ROUND_HALF_UP)


def format_number(value: Decimal | float | None, style: NumberStyle, decimals: int = 0) -> str:
    """`1234567.891` -> `1 234 567,89` (ru) or `1,234,567.89` (en)."""
    if _is_missing(value):
        return NO_VALUE
    rounded = _rounded(value, decimals)
    grouped = f"{abs(rounded):,.{decimals}f}"
    text = grouped.replace(",", "\0").replace(".", style.decimal).replace("\0", style.thousands)
    return MINUS + text if rounded < 0 else text


def format_money(value: Decimal | float | None, style: NumberStyle) -> str:
    if _is_missing(value):
        return NO_VALUE
    amount = style.money.format(format_number(abs(value), style, 2))
    return MINUS + amount if _rounded(value, 2) < 0 else amount


def format_percent(ratio: float | None, style: NumberStyle) -> str:
    """A fraction 0..1 as a percentage with one decimal: `0.1234` -> `12,3 %`."""
    if _is_missing(ratio):
        return NO_VALUE
    return style.percent.format(format_number(ratio * 100, style, 1))


def format_kpi(kpi: str, value: float | None, locale: Locale) -> str:
    kind = _KPI_KINDS.get(kpi, "number")
    style = locale.numbers
    if kind == "count":
        return format_number(value, style)
    if kind == "percent":
        return format_percent(value, style)
    if kind == "money":
        return format_money(value, style)
    if kind == "days" and not _is_missing(value):
        return f"{format_number(value, style, 1)}{NBSP}{locale.text('days')}"
    return format_number(value, style, 1)


def format_day(day: date, locale: Locale) -> str:
    """`6 янв 2025` / `Jan 6, 2025`: the week a bar stands for."""
    month = _MONTHS[locale.language][day.month - 1]
    if locale.language == "ru":
        return f"{day.day}{NBSP}{month} {day.year}"
    return f"{month}{NBSP}{day.day}, {day.year}"


def format_short_day(day: date, locale: Locale) -> str:
    month = _MONTHS[locale.language][day.month - 1]
    return f"{day.day}{NBSP}{month}" if locale.language == "ru" else f"{month}{NBSP}{day.day}"


def format_date(day: date, locale: Locale) -> str:
    return day.strftime("%d.%m.%Y" if locale.language == "ru" else "%Y-%m-%d")


def format_moment(moment: datetime, locale: Locale) -> str:
    shown = moment.strftime("%d.%m.%Y %H:%M" if locale.language == "ru" else "%Y-%m-%d %H:%M")
    zone = moment.tzname()
    return f"{shown} {zone}" if zone else shown


# ---------------------------------------------------------------- shaping the rows


def _as_date(value: date | datetime | str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def week_start(day: date) -> date:
    """The Monday of the ISO week `day` belongs to."""
    return day - timedelta(days=day.weekday())


def weekly_leads(leads_daily: Iterable[Mapping]) -> dict[date, Counter]:
    """Leads per ISO week (keyed by its Monday) and source, with empty weeks
    between the first and the last one kept, so the time axis has no gaps."""
    weeks: dict[date, Counter] = defaultdict(Counter)
    for row in leads_daily:
        weeks[week_start(_as_date(row["day"]))][str(row["source"])] += int(row["leads"] or 0)
    if not weeks:
        return {}
    monday, last = min(weeks), max(weeks)
    filled: dict[date, Counter] = {}
    while monday <= last:
        filled[monday] = weeks.get(monday, Counter())
        monday += timedelta(weeks=1)
    return filled


def sources_by_volume(weeks: Mapping[date, Counter]) -> list[str]:
    totals: Counter = Counter()
    for counts in weeks.values():
        totals.update(counts)
    return sorted((s for s, n in totals.items() if n > 0), key=lambda s: (-totals[s], s))


def funnel_stages(funnel: Iterable[Mapping]) -> list[Mapping]:
    """The stages of all sources together, in funnel order."""
    return sorted((row for row in funnel if row["source"] == ALL_SOURCES),
                  key=lambda row: row["stage_order"])


def top_clients(clients: Iterable[Mapping], by: str, limit: int = TOP_CLIENTS) -> list[Mapping]:
    """The best clients by `by`; each client (contact key) is its own row,
    so two people with the same name stay two rows."""
    return sorted(clients, key=lambda row: (-(row[by] or 0), str(row["contact_key"])))[:limit]


def products_by_revenue(products: Iterable[Mapping]) -> list[Mapping]:
    return sorted(products, key=lambda row: (-(row["revenue"] or 0), str(row["product"])))


def segment_sizes(rfm: Iterable[Mapping], segments: Sequence[str] = ()) -> list[tuple[str, int]]:
    """Clients per RFM segment: the table's segments in its order (even when
    empty), then any other segment (the fallback), by size."""
    counts = Counter(str(row["segment"]) for row in rfm)
    extra = sorted((s for s in counts if s not in segments), key=lambda s: (-counts[s], s))
    return [(segment, counts[segment]) for segment in (*segments, *extra)]


def kpi_values(kpi: Iterable[Mapping]) -> dict[str, float | None]:
    return {str(row["kpi"]): row["value"] for row in kpi}


# ---------------------------------------------------------------- SVG drawing


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _num(value: float) -> str:
    """A coordinate, short: `12.5`, `40`."""
    return f"{value:.1f}".rstrip("0").rstrip(".")


def count_ticks(largest: float, wanted: int = 5) -> list[int]:
    """Whole-number axis ticks from 0 past `largest`, about `wanted` steps of
    1, 2 or 5 x 10^k, so an axis of lead counts never shows `1,25`."""
    rough = max(largest / wanted, 1)
    power = 10 ** math.floor(math.log10(rough))
    step = next(m * power for m in (1, 2, 5, 10) if rough <= m * power)
    return [step * i for i in range(max(math.ceil(largest / step), 1) + 1)]


def _rect(x: float, y: float, width: float, height: float, colour: str, title: str) -> str:
    return (f'<rect x="{_num(x)}" y="{_num(y)}" width="{_num(max(width, 0))}" '
            f'height="{_num(max(height, 0))}" fill="{colour}"><title>{_e(title)}</title></rect>')


def _text(x: float, y: float, content: str, anchor: str = "start", css: str = "") -> str:
    css_class = f' class="{css}"' if css else ""
    return (f'<text x="{_num(x)}" y="{_num(y)}" text-anchor="{anchor}"{css_class}>'
            f"{_e(content)}</text>")


def _svg(name: str, width: int, height: float, label: str, body: Iterable[str]) -> str:
    return (f'<svg class="chart" data-chart="{name}" viewBox="0 0 {width} {_num(height)}" '
            f'role="img" aria-label="{_e(label)}">{"".join(body)}</svg>')


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _legend(items: Iterable[tuple[str, str]]) -> str:
    entries = "".join(f'<span class="legend-item"><i style="background:{colour}"></i>'
                      f"{_e(label)}</span>" for label, colour in items)
    return f'<div class="legend">{entries}</div>'


def _y_axis(top: float, height: float, left: float, right: float, ticks: Sequence[int],
            style: NumberStyle) -> list[str]:
    parts = []
    for tick in ticks:
        y = top + height - height * tick / ticks[-1]
        parts.append(f'<line class="grid" x1="{_num(left)}" x2="{_num(right)}" '
                     f'y1="{_num(y)}" y2="{_num(y)}"/>')
        parts.append(_text(left - 8, y + 4, format_number(tick, style), "end"))
    return parts


def weekly_leads_chart(leads_daily: Iterable[Mapping], locale: Locale) -> str:
    weeks = weekly_leads(leads_daily)
    sources = sources_by_volume(weeks)
    if not sources:
        return _no_data(locale)
    colours = {s: SOURCE_COLOURS[i % len(SOURCE_COLOURS)] for i, s in enumerate(sources)}
    width, height, left, right, top, bottom = 1100, 300, 56, 12, 12, 40
    plot_width, plot_height = width - left - right, height - top - bottom
    ticks = count_ticks(max(sum(counts.values()) for counts in weeks.values()))
    ceiling = ticks[-1]
    slot = plot_width / len(weeks)
    # across a new year every label carries its year, so fewer fit
    spans_years = len({monday.year for monday in weeks}) > 1
    label_every = max(1, math.ceil(len(weeks) / (10 if spans_years else 14)))
    label = format_day if spans_years else format_short_day
    parts = _y_axis(top, plot_height, left, width - right, ticks, locale.numbers)
    for index, (monday, counts) in enumerate(weeks.items()):
        x = left + slot * index + slot * 0.15
        y = top + plot_height
        for source in sources:
            bar = plot_height * counts[source] / ceiling
            if bar > 0:
                y -= bar
                title = (f"{locale.text('week_of')} {format_day(monday, locale)} · "
                         f"{source}: {counts[source]}")
                parts.append(_rect(x, y, slot * 0.7, bar, colours[source], title))
        if index % label_every == 0:
            parts.append(_text(x + slot * 0.35, height - bottom + 18, label(monday, locale),
                               "middle"))
    chart = _svg("weekly-leads", width, height, locale.text("weekly_leads"), parts)
    return chart + _legend((source, colours[source]) for source in sources)


def funnel_chart(funnel: Iterable[Mapping], locale: Locale) -> str:
    """The stages, then a last bar that is not a stage: the leads whose contact
    has an order, as a share of all leads (the lead-to-client rate)."""
    stages = funnel_stages(funnel)
    widest = max((int(row["leads_reached"] or 0) for row in stages), default=0)
    if widest == 0:
        return _no_data(locale)
    width, left, bar_area, row_height, gap = 560, 150, 330, 30, 26
    parts = []
    y = 4.0
    for index, row in enumerate(stages):
        clients = row["stage"] == "client"
        if index:
            conversion = format_percent(row["conversion_from_previous"], locale.numbers)
            note = f"↓ {conversion} {locale.text('of_all_leads')}" if clients else f"↓ {conversion}"
            parts.append(_text(left + bar_area / 2, y + gap / 2 + 4, note, "middle", "muted"))
            y += gap
        reached = int(row["leads_reached"] or 0)
        bar = max(bar_area * reached / widest, 2)
        stage = locale.text("funnel_client") if clients else str(row["stage"])
        title = f"{locale.text('funnel_client_title') if clients else stage}: {reached}"
        parts.append(_rect(left + (bar_area - bar) / 2, y, bar, row_height, FUNNEL_COLOUR, title))
        parts.append(_text(left - 10, y + row_height / 2 + 4, _shorten(stage, 20), "end"))
        parts.append(_text(left + bar_area + 10, y + row_height / 2 + 4,
                           format_number(reached, locale.numbers), "start", "value"))
        y += row_height
    return _svg("funnel", width, y + 4, locale.text("funnel"), parts)


def rfm_chart(rfm: Sequence[Mapping], segments: Sequence[str], locale: Locale) -> str:
    sizes = segment_sizes(rfm, segments)
    largest = max((count for _, count in sizes), default=0)
    if largest == 0:
        return _no_data(locale)
    # more than five bars: the labels take turns on two lines, so none overlap
    staggered = len(sizes) > 5
    width, height, top, bottom, left = 560, 300, 24, 50 if staggered else 36, 10
    plot_height = height - top - bottom
    slot = (width - 2 * left) / len(sizes)
    parts = [f'<line class="axis" x1="{left}" x2="{width - left}" '
             f'y1="{top + plot_height}" y2="{top + plot_height}"/>']
    palette = (*SEGMENT_COLOURS[: len(segments)], *SOURCE_COLOURS)
    for index, (label, count) in enumerate(sizes):
        bar = plot_height * count / largest
        x = left + slot * index + slot * 0.18
        colour = palette[index % len(palette)]
        parts.append(_rect(x, top + plot_height - bar, slot * 0.64, bar, colour,
                           f"{label}: {count}"))
        centre = x + slot * 0.32
        parts.append(_text(centre, top + plot_height - bar - 6,
                           format_number(count, locale.numbers), "middle", "value"))
        line = 16 * (index % 2) if staggered else 0
        parts.append(_text(centre, height - bottom + 20 + line, _shorten(label, 14), "middle"))
    return _svg("rfm", width, height, locale.text("rfm"), parts)


def products_chart(products: Sequence[Mapping], locale: Locale) -> str:
    shown = products_by_revenue(products)[:TOP_PRODUCTS_CHART]
    if not shown:
        return _no_data(locale)
    width, left, right, row_height = 1100, 230, 110, 36
    values = [float(row[key] or 0) for row in shown for key in ("revenue", "profit")]
    low, high = min(0.0, *values), max(0.0, *values)
    span = (high - low) or 1.0
    plot_width = width - left - right

    def x_of(value: float) -> float:
        return left + plot_width * (value - low) / span

    style = locale.numbers
    parts = [_text(width - 4, 14, locale.text("margin"), "end", "muted")]
    for index, row in enumerate(shown):
        y = 22 + index * row_height
        product = str(row["product"])
        parts.append(_text(left - 10, y + row_height / 2 + 2, _shorten(product, 30), "end"))
        for offset, key, colour in ((4, "revenue", REVENUE_COLOUR), (17, "profit", PROFIT_COLOUR)):
            value = float(row[key] or 0)
            colour = LOSS_COLOUR if value < 0 else colour
            start, end = sorted((x_of(0), x_of(value)))
            title = f"{product} · {locale.text(key)}: {format_money(value, style)}"
            parts.append(_rect(start, y + offset, end - start, 11, colour, title))
        parts.append(_text(width - 4, y + row_height / 2 + 2,
                           format_percent(row["margin"], style), "end", "value"))
    parts.append(f'<line class="axis" x1="{_num(x_of(0))}" x2="{_num(x_of(0))}" y1="18" '
                 f'y2="{22 + len(shown) * row_height}"/>')
    chart = _svg("products", width, 26 + len(shown) * row_height, locale.text("products"), parts)
    legend = _legend(((locale.text("revenue"), REVENUE_COLOUR),
                      (locale.text("profit"), PROFIT_COLOUR)))
    return chart + legend


# ---------------------------------------------------------------- HTML pieces


def _no_data(locale: Locale) -> str:
    return f'<p class="no-data">{_e(locale.text("no_data"))}</p>'


def _section(title: str, content: str) -> str:
    return f'<section class="card"><h2>{_e(title)}</h2>{content}</section>'


def kpi_tiles(kpi: Iterable[Mapping], locale: Locale) -> str:
    values = kpi_values(kpi)
    names = [*KPI_ORDER, *(name for name in values if name not in (*KPI_ORDER, *_NOT_TILES))]
    tiles = "".join(
        f'<div class="tile" data-kpi="{_e(name)}"><div class="tile-label">'
        f'{_e(locale.text(name))}</div><div class="tile-value">'
        f"{_e(format_kpi(name, values.get(name), locale))}</div></div>"
        for name in names
    )
    return f'<div class="tiles">{tiles}</div>'


def _cell(tag: str, content: str, css: str) -> str:
    css_class = f' class="{css}"' if css else ""
    return f"<{tag}{css_class}>{_e(content)}</{tag}>"


def _table(columns: Sequence[tuple[str, str]], rows: Iterable[Sequence[str]],
           name: str) -> str:
    """`columns` are (header, CSS class): `num` right-aligns, `phone` never wraps."""
    head = "".join(_cell("th", header, css) for header, css in columns)
    body = "".join(
        "<tr>" + "".join(_cell("td", value, css)
                         for value, (_, css) in zip(row, columns, strict=True)) + "</tr>"
        for row in rows
    )
    return (f'<table data-table="{name}"><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table>")


def _format_quantity(value: float, style: NumberStyle) -> str:
    return format_number(value, style, 0 if float(value or 0).is_integer() else 2)


def _client_name(row: Mapping) -> str:
    return str(row.get("name") or row.get("email") or row.get("contact_key") or NO_VALUE)


def clients_table(clients: Sequence[Mapping], by: str, locale: Locale) -> str:
    best = top_clients(clients, by)
    if not best:
        return _no_data(locale)
    style = locale.numbers
    columns = [(locale.text("name"), ""), (locale.text("phone"), "phone"),
               (locale.text("orders"), "num"), (locale.text("revenue"), "num"),
               (locale.text("profit"), "num")]
    rows = ([_client_name(row), str(row.get("phone") or NO_VALUE),
             format_number(row["orders"], style), format_money(row["revenue"], style),
             format_money(row["profit"], style)] for row in best)
    return _table(columns, rows, f"top-clients-by-{by}")


def products_table(products: Sequence[Mapping], locale: Locale) -> str:
    ranked = products_by_revenue(products)
    if not ranked:
        return ""
    style = locale.numbers
    columns = [(locale.text("product"), ""), (locale.text("orders"), "num"),
               (locale.text("quantity"), "num"), (locale.text("revenue"), "num"),
               (locale.text("profit"), "num"), (locale.text("margin"), "num")]
    rows = ([str(row["product"]), format_number(row["orders"], style),
             _format_quantity(row["quantity"], style),
             format_money(row["revenue"], style), format_money(row["profit"], style),
             format_percent(row["margin"], style)] for row in ranked[:TOP_PRODUCTS_TABLE])
    table = _table(columns, rows, "products")
    if len(ranked) > TOP_PRODUCTS_TABLE:
        note = locale.text("products_shown").format(shown=TOP_PRODUCTS_TABLE, total=len(ranked))
        table += f'<p class="note">{_e(note)}</p>'
    return table


def _days(value: float | None, style: NumberStyle) -> str:
    return format_number(value, style, 1)


def stages_table(funnel: Iterable[Mapping], locale: Locale) -> str:
    """Each stage of all sources: how many reached it, went on, were won or lost there."""
    stages = [row for row in funnel_stages(funnel) if row["stage"] != CLIENT_STAGE]
    if not stages:
        return _no_data(locale)
    style = locale.numbers
    columns = [(locale.text(key), css) for key, css in (
        ("stage", ""), ("reached", "num"), ("to_next", "num"), ("to_won", "num"),
        ("lost_here", "num"), ("median_days", "num"))]
    rows = ([str(row["stage"]), format_number(row["leads_reached"], style),
             format_percent(row.get("conversion_to_next"), style),
             format_percent(row.get("conversion_to_won"), style),
             format_number(row.get("lost_at_stage"), style),
             _days(row.get("median_days_in_stage"), style)] for row in stages)
    return _table(columns, rows, "stages")


def losses_table(losses: Sequence[Mapping], locale: Locale) -> str:
    if not losses:
        return _no_data(locale)
    style = locale.numbers
    columns = [(locale.text("stage"), ""), (locale.text("loss_reason"), ""),
               (locale.text("leads"), "num"), (locale.text("share"), "num")]
    rows = ([str(row["stage"]), str(row["loss_reason"] or locale.text("no_reason")),
             format_number(row["leads"], style), format_percent(row["share_of_lost"], style)]
            for row in losses)
    return _table(columns, rows, "losses")


def forecast_table(forecast: Sequence[Mapping], locale: Locale) -> str:
    """Open leads by stage and what they are likely worth, with a total line."""
    if not any(row["open_leads"] for row in forecast):
        return _no_data(locale)
    style = locale.numbers
    columns = [(locale.text(key), css) for key, css in (
        ("stage", ""), ("open_leads", "num"), ("with_amount", "num"), ("open_amount", "num"),
        ("win_rate", "num"), ("forecast_value", "num"))]
    rows = [[str(row["stage"]), format_number(row["open_leads"], style),
             format_number(row["leads_with_amount"], style),
             format_money(row["open_amount"], style), format_percent(row["win_rate"], style),
             format_money(row["forecast"], style)] for row in forecast]
    rows.append([locale.text("total"),
                 format_number(sum(row["open_leads"] for row in forecast), style),
                 format_number(sum(row["leads_with_amount"] for row in forecast), style),
                 format_money(sum((row["open_amount"] for row in forecast), Decimal(0)), style),
                 "", format_money(sum((row["forecast"] for row in forecast), Decimal(0)),
                                  style)])
    return _table(columns, rows, "forecast")


def managers_table(managers: Sequence[Mapping], locale: Locale) -> str:
    if not managers:
        return _no_data(locale)
    style = locale.numbers
    columns = [(locale.text(key), css) for key, css in (
        ("owner", ""), ("leads", "num"), ("won", "num"), ("lost", "num"), ("conversion", "num"),
        ("revenue", "num"), ("forecast_value", "num"), ("overdue_tasks", "num"))]
    rows = ([str(row["owner"] or locale.text("no_owner")), format_number(row["leads"], style),
             format_number(row["won"], style), format_number(row["lost"], style),
             format_percent(row["conversion"], style), format_money(row["revenue"], style),
             format_money(row["forecast"], style), format_number(row["overdue_tasks"], style)]
            for row in managers)
    return _table(columns, rows, "managers")


def _footer(moment: datetime, as_of: date | None, title: str, locale: Locale) -> str:
    parts = [f"{locale.text('generated')} {format_moment(moment, locale)}"]
    if as_of:
        parts.append(f"{locale.text('as_of')} {format_date(as_of, locale)}")
    return f"<footer>{_e(' · '.join((*parts, title)))}</footer>"


STYLE = """
*{box-sizing:border-box}
body{margin:0;background:#f3f5f8;color:#1f2933;
 font:14px/1.45 "Segoe UI",Roboto,"Helvetica Neue","DejaVu Sans","Liberation Sans",Arial,
 sans-serif}
main{max-width:1200px;margin:0 auto;padding:24px 20px}
header{display:flex;align-items:baseline;gap:16px;margin-bottom:16px}
h1{margin:0;font-size:26px}
header p{margin:0;color:#52606d}
h2{margin:0 0 12px;font-size:16px}
.tiles{display:grid;grid-template-columns:repeat(auto-fill,minmax(210px,1fr));gap:12px;
 margin-bottom:16px}
.tile,.card{background:#fff;border:1px solid #e1e6ec;border-radius:10px}
.tile{padding:12px 14px}
.tile-label{color:#52606d;font-size:12px}
.tile-value{font-size:22px;font-weight:600;margin-top:2px;white-space:nowrap;
 font-variant-numeric:tabular-nums}
.card{padding:16px 18px;margin-bottom:16px;min-width:0}
.row{display:grid;grid-template-columns:1fr 1fr;gap:16px}
.row>.card{margin-bottom:0}
.row{margin-bottom:16px}
svg.chart{display:block;width:100%;height:auto}
svg text{font-size:12px;fill:#3e4c59}
svg text.value{font-weight:600;fill:#1f2933}
svg text.muted{fill:#7b8794}
svg .grid{stroke:#e6eaef;stroke-width:1}
svg .axis{stroke:#9aa5b1;stroke-width:1}
.legend{display:flex;flex-wrap:wrap;gap:6px 16px;margin-top:8px;font-size:13px}
.legend i{display:inline-block;width:12px;height:12px;border-radius:2px;margin-right:6px;
 vertical-align:-1px}
table{width:100%;border-collapse:collapse;font-size:13px;font-variant-numeric:tabular-nums}
th,td{padding:6px 8px;border-bottom:1px solid #edf0f3;text-align:left}
th{color:#52606d;font-weight:600;font-size:12px}
td.num,th.num{text-align:right;white-space:nowrap}
td{overflow-wrap:anywhere}
td.phone{white-space:nowrap}
.products-table{margin-top:16px}
.no-data{margin:0;padding:28px 0;text-align:center;color:#7b8794}
.note{color:#7b8794;font-size:12px;margin:8px 0 0}
footer{color:#7b8794;font-size:12px;text-align:center;padding:8px 0 24px}
@media (max-width:800px){.row{grid-template-columns:1fr}}
"""


def render_report(
    tables: ReportData,
    language: str = "ru",
    title: str = "LeadHub",
    *,
    generated_at: datetime | None = None,
    tz: tzinfo = UTC,
    as_of: date | None = None,
) -> str:
    """The dashboard as one HTML document that needs nothing else to open.

    The footer says when it was made (`generated_at`, default now) in the
    business's time zone `tz`, and the last day its numbers count (`as_of`).
    """
    locale = locale_for(language)
    moment = (generated_at or datetime.now(UTC)).astimezone(tz)
    text = locale.text
    products_block = (products_chart(tables.products, locale)
                      + f'<div class="products-table">'
                        f"{products_table(tables.products, locale)}</div>")
    body = "".join((
        f"<header><h1>{_e(title)}</h1><p>{_e(text('subtitle'))}</p></header>",
        kpi_tiles(tables.kpi, locale),
        _section(text("weekly_leads"), weekly_leads_chart(tables.leads_daily, locale)),
        '<div class="row">',
        _section(text("funnel"), funnel_chart(tables.funnel, locale)),
        _section(text("rfm"), rfm_chart(tables.rfm, tables.rfm_segments, locale)),
        '</div><div class="row">',
        _section(text("stages"), stages_table(tables.funnel, locale)),
        _section(text("losses"), losses_table(tables.losses, locale)),
        "</div>",
        _section(text("forecast"), forecast_table(tables.forecast, locale)),
        _section(text("managers"), managers_table(tables.managers, locale)),
        '<div class="row">',
        _section(text("top_by_revenue"), clients_table(tables.clients, "revenue", locale)),
        _section(text("top_by_profit"), clients_table(tables.clients, "profit", locale)),
        "</div>",
        _section(text("products"), products_block),
        _footer(moment, as_of, title, locale),
    ))
    return (
        f'<!DOCTYPE html>\n<html lang="{locale.language}"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)} · {_e(text('subtitle'))}</title><style>{STYLE}</style></head>"
        f"<body><main>{body}</main></body></html>\n"
    )
