"""Export the ledger as BI tables (CSV) and a dashboard for Looker Studio / Power BI.

Every table streams from the ledger row by row (a fresh cursor per pass), so
memory stays bounded by the number of contacts and products, not of leads.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from connectors.csv_export import write_csv, write_text
from connectors.ledger import Ledger
from leadhub.errors import FatalError
from leadhub.settings import Settings
from transforms import bi, funnel
from transforms.exports import (
    TABLES,
    duplicate_rows,
    format_rows,
    lead_rows,
    preset_with,
    review_rows,
)
from transforms.report import ReportData, render_report


@dataclass
class ExportResult:
    files: dict[str, Path]
    kpi: list[dict]
    period: Period


@dataclass(frozen=True)
class Period:
    """What an export counts: rows from `since` (None: from the first) up to
    before `until`; `as_of` is its last day in the business's time zone, the
    "today" of recency."""

    since: datetime | None
    until: datetime
    as_of: date


def export_period(tz: ZoneInfo, since: date | None, as_of: date | datetime | None,
                  now: datetime) -> Period:
    """`since` and an as-of day are whole days in `tz`; an as-of moment (a
    datetime) ends the period there. No as-of: through today."""
    if isinstance(as_of, datetime):
        until, last_day = as_of, as_of.astimezone(tz).date()
    else:
        last_day = as_of or now.astimezone(tz).date()
        until = datetime.combine(last_day + timedelta(days=1), time(), tz)
    start = datetime.combine(since, time(), tz) if since else None
    if start and start >= until:
        raise FatalError(f"--since {since} is after --as-of {last_day}: nothing to export")
    return Period(start, until, last_day)


class _Source:
    """The store's rows of the period as the BI functions take them, each pass
    a new cursor."""

    def __init__(self, ledger: Ledger, period: Period):
        self.ledger = ledger
        self.bounds = (period.since, period.until)

    def contacts(self) -> Iterator[dict]:
        return self.ledger.export_contacts(*self.bounds)

    def leads(self) -> Iterator[dict]:
        return self.ledger.export_leads(*self.bounds)

    def journeys(self) -> Iterator[dict]:
        return self.ledger.export_lead_journeys(*self.bounds)

    def review(self) -> Iterator[dict]:
        return self.ledger.export_review_items(*self.bounds)

    def orders(self) -> Iterator[dict]:
        return self.ledger.export_orders(*self.bounds)

    def items(self) -> Iterator[dict]:
        return self.ledger.export_order_items(*self.bounds)


def bi_rules(settings: Settings, as_of: date) -> bi.BiRules:
    """The report rules of the config; the RFM table is `bi.rfm_segments` (or
    `export.rfm_segments`), else the built-in one in the export's language."""
    export = settings.export
    language = export.language
    segments = tuple(bi.RfmRule(**rule.model_dump()) for rule in settings.rfm_segments())
    return bi.BiRules(
        rfm_segments=segments or bi.RFM_SEGMENTS[language],
        rfm_fallback=settings.rfm_fallback() or bi.RFM_FALLBACK[language],
        as_of=as_of,
        tz=ZoneInfo(settings.timezone),
        cancelled_statuses=tuple(export.cancelled_statuses),
    )


def funnel_rules(settings: Settings) -> funnel.FunnelRules:
    return funnel.FunnelRules(tuple(settings.stages()), settings.funnel.lost_stage)


def funnel_tables(settings: Settings, ledger: Ledger, source: _Source,
                  with_orders: set[str], overdue_at: datetime) -> dict[str, list[dict]]:
    """The funnel, losses, forecast and managers tables, from one pass over
    the period's leads and their stage histories; a task is overdue when it
    is open and was due before `overdue_at`."""
    found = funnel.analyse(source.journeys(), with_orders, funnel_rules(settings))
    overdue = funnel.overdue_by_owner(ledger.export_tasks(), overdue_at)
    return {
        "funnel": funnel.funnel_table(found),
        "losses": funnel.loss_rows(found, settings.funnel.loss_reasons),
        "forecast": funnel.forecast_rows(found),
        "managers": funnel.manager_rows(found, [member.name for member in settings.team],
                                        overdue),
    }


def export_tables(
    settings: Settings,
    out: Path,
    preset_name: str = "looker",
    since: date | None = None,
    as_of: date | datetime | None = None,
) -> ExportResult:
    """Write every table of `TABLES` as `<name>.csv` and the dashboard
    `report.html` into `out`: what happened from `since` through the as-of day
    (default today); nothing later counts, so an as-of export repeats."""
    preset = preset_with(preset_name, settings.export.presets.get(preset_name))
    tz = ZoneInfo(settings.timezone)
    now = datetime.now(UTC)
    period = export_period(tz, since, as_of, now)
    rules = bi_rules(settings, period.as_of)
    ledger = Ledger(settings.store)
    try:
        source = _Source(ledger, period)
        cancelled = rules.cancelled_statuses
        clients = bi.client_rows(source.contacts(), source.orders(), source.items(),
                                 cancelled_statuses=cancelled)
        with_orders = {row["contact_key"] for row in clients}
        computed = {
            "clients": clients,
            "products": bi.product_rows(source.items(), source.orders(),
                                        cancelled_statuses=cancelled),
            **funnel_tables(settings, ledger, source, with_orders, min(now, period.until)),
            "leads_daily": bi.leads_daily_rows(source.leads(), tz=tz),
            "rfm": bi.rfm_rows(source.contacts(), source.orders(), source.items(), rules),
            "kpi": bi.kpi_rows(source.contacts(), source.leads(), source.orders(),
                               source.items(), rules),
        }
        streamed = {
            "contacts": source.contacts,
            "leads": lambda: lead_rows(source.leads()),
            "needs_review": lambda: review_rows(source.review()),
            "possible_duplicates": lambda: duplicate_rows(ledger.duplicate_pairs(
                ("open", "same", "different", "merged"))),
            "tasks": ledger.export_tasks,
            "orders": lambda: bi.order_rows(source.orders(), source.items(),
                                            cancelled_statuses=cancelled),
            "order_items": lambda: bi.order_item_rows(source.items(), source.orders(),
                                                      cancelled_statuses=cancelled),
            "dates": lambda: _calendar(computed["leads_daily"], source, period, tz,
                                       settings.export.language),
        }
        files: dict[str, Path] = {}
        for name, columns in TABLES.items():
            rows = computed[name] if name in computed else streamed[name]()
            files[name] = out / f"{name}.csv"
            write_csv(files[name], columns, format_rows(rows, columns, preset, tz), preset)
        report = ReportData(kpi=computed["kpi"], leads_daily=computed["leads_daily"],
                            funnel=computed["funnel"], losses=computed["losses"],
                            forecast=computed["forecast"], managers=computed["managers"],
                            clients=clients,
                            products=computed["products"], rfm=computed["rfm"],
                            rfm_segments=tuple(rule.segment for rule in rules.rfm_segments))
        files["report"] = out / "report.html"
        write_text(files["report"], render_report(report, language=settings.export.language,
                                                  generated_at=now, tz=tz,
                                                  as_of=period.as_of))
    finally:
        ledger.close()
    return ExportResult(files=files, kpi=computed["kpi"], period=period)


def _calendar(leads_daily: list[dict], source: _Source, period: Period, tz: ZoneInfo,
              language: str) -> Iterator[dict]:
    """Every day from the first lead or order of the period to its as-of day."""
    first = bi.first_day(leads_daily, source.orders(), tz)
    return bi.date_rows(first, period.as_of, language) if first else iter(())


def kpi_markdown(kpi: list[dict], preset: str, out: Path, as_of: date) -> str:
    lines = [f"# LeadHub export ({preset}), as of {as_of.isoformat()}", "", f"Files in `{out}`.",
             "", "| KPI | value |", "|---|---:|"]
    for row in kpi:
        value = row["value"]
        if isinstance(value, Decimal):
            value = bi.round_money(value)
        shown = f"{value:,.2f}" if isinstance(value, float | Decimal) else str(value)
        lines.append(f"| {row['kpi'].replace('_', ' ')} | {shown} |")
    return "\n".join(lines)
