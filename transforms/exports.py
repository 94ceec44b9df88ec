"""BI tables as CSV cells: presets for Looker Studio, Power BI and Russian Excel.

Rows come in as mappings (column -> value) and go out as lists of strings in
the preset's dialect: its decimal separator and date format, numbers without
thousands separators, money to the kopeck rounded half up, stable snake_case
columns in a fixed order, and every text cell that a spreadsheet would run as a
formula neutralised.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, fields, replace
from datetime import date, datetime, time
from decimal import Decimal
from zoneinfo import ZoneInfo

from transforms import bi, funnel
from transforms.mail import looks_like_mail, mail_excerpt

# New columns go at the end: a BI tool's mapping of the old ones keeps working.
CONTACT_COLUMNS = (
    "contact_key", "name", "phone", "phone_display", "email", "company", "legal_form",
    "position", "city", "source", "first_seen", "last_seen", "leads_count", "status", "owner",
    "origin",
)
LEAD_COLUMNS = (
    "lead_id", "contact_key", "received_at", "channel", "source", "raw_source", "subject",
    "message", "name", "phone", "email", "company", "stage", "loss_reason", "owner", "amount",
    "origin",
)
TASK_COLUMNS = ("task_id", "title", "contact_key", "name", "phone", "due_at", "done", "owner",
                "rule", "origin", "created_at")
REVIEW_COLUMNS = ("item_id", "state", "reason", "source", "kind", "received_at", "origin",
                  "preview")
# Pairs of contacts that may be one person: for people to decide.
DUPLICATE_COLUMNS = ("contact_a", "name_a", "phone_a", "email_a", "company_a", "contact_b",
                     "name_b", "phone_b", "email_b", "company_b", "score", "reasons", "state",
                     "decided_by")

# Every table of an export, in the order it is written, with its columns.
TABLES: dict[str, tuple[str, ...]] = {
    "contacts": CONTACT_COLUMNS,
    "leads": LEAD_COLUMNS,
    "needs_review": REVIEW_COLUMNS,
    "possible_duplicates": DUPLICATE_COLUMNS,
    "tasks": TASK_COLUMNS,
    "orders": bi.ORDER_COLUMNS,
    "order_items": bi.ORDER_ITEM_COLUMNS,
    "clients": bi.CLIENT_COLUMNS,
    "products": bi.PRODUCT_COLUMNS,
    "funnel": funnel.FUNNEL_COLUMNS,
    "losses": funnel.LOSS_COLUMNS,
    "forecast": funnel.FORECAST_COLUMNS,
    "managers": funnel.MANAGER_COLUMNS,
    "leads_daily": bi.LEADS_DAILY_COLUMNS,
    "rfm": bi.RFM_COLUMNS,
    "kpi": bi.KPI_COLUMNS,
    "dates": bi.DATE_COLUMNS,
}

# Stored as ISO text in the ledger; written in the preset's date-time format.
_TIME_COLUMNS = {"first_seen", "last_seen", "received_at", "ordered_at", "first_order",
                 "last_order", "due_at", "created_at"}
_RATIO_COLUMNS = {"margin", "weighted_margin", "conversion_from_previous", "conversion_to_next",
                  "conversion_to_won", "conversion", "share_of_lost", "value", "score"}
_PHONE_COLUMNS = {"phone", "phone_display", "contact_key", "phone_a", "phone_b"}
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# A phone as LeadHub writes it (`+79123456789`, `+7 (912) 345-67-89`) holds
# no function or reference, so it is left readable as a phone.
_PHONE_ONLY = re.compile(r"^\+\d[\d ()\-]{6,24}$")
_PREVIEW_CHARS = 300


@dataclass(frozen=True)
class ExportPreset:
    name: str
    encoding: str
    delimiter: str
    decimal: str
    date_format: str
    datetime_format: str
    # "day": a time of exactly 00:00:00 (local) is written as the date alone,
    # since it came as a date (an order dated 05.03.2026); "time": with 00:00:00
    midnight: str = "time"


MIDNIGHT_CHOICES = ("time", "day")
PRESETS = {
    # Looker Studio: UTF-8, comma, dot decimal, ISO dates.
    "looker": ExportPreset("looker", "utf-8", ",", ".", "%Y-%m-%d", "%Y-%m-%d %H:%M:%S"),
    # Power BI and Excel in a Russian locale: BOM so Excel reads UTF-8,
    # semicolon because the comma is the decimal separator. Power BI types a
    # column by its values, so its times keep 00:00:00; Excel shows a day as a day.
    "powerbi": ExportPreset("powerbi", "utf-8-sig", ";", ",", "%d.%m.%Y", "%d.%m.%Y %H:%M:%S"),
    "excel-ru": ExportPreset("excel-ru", "utf-8-sig", ";", ",", "%d.%m.%Y", "%d.%m.%Y %H:%M:%S",
                             midnight="day"),
}
PRESET_OPTIONS = tuple(f.name for f in fields(ExportPreset) if f.name != "name")


def preset_with(name: str, overrides: Mapping[str, str] | None = None) -> ExportPreset:
    """A preset with some options changed one by one (config `export.presets`)."""
    return replace(PRESETS[name], **dict(overrides or {}))


def neutralize(column: str, text: str) -> str:
    """A text cell starting with = + - @ tab or CR gets a leading apostrophe, so
    Excel, Sheets and LibreOffice show it instead of running it as a formula.
    Phone columns holding just a phone keep their `+`."""
    if not text.startswith(_FORMULA_START):
        return text
    if column in _PHONE_COLUMNS and _PHONE_ONLY.match(text):
        return text
    return "'" + text


def format_cell(column: str, value: object, preset: ExportPreset, tz: ZoneInfo) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        return format(bi.round_money(value), "f").replace(".", preset.decimal)
    if isinstance(value, float):
        digits = 4 if column in _RATIO_COLUMNS or column.endswith(("_rate", "_conversion")) else 2
        return f"{value:.{digits}f}".replace(".", preset.decimal)
    if isinstance(value, datetime):
        return format_moment(value, preset, tz)
    if isinstance(value, date):
        return value.strftime(preset.date_format)
    text = str(value)
    if column in _TIME_COLUMNS and text:
        return format_moment(datetime.fromisoformat(text), preset, tz)
    return neutralize(column, text)


def format_moment(moment: datetime, preset: ExportPreset, tz: ZoneInfo) -> str:
    local = moment.astimezone(tz)
    if preset.midnight == "day" and local.time() == time():
        return local.strftime(preset.date_format)
    return local.strftime(preset.datetime_format)


def format_rows(
    rows: Iterable[Mapping], columns: tuple[str, ...], preset: ExportPreset, tz: ZoneInfo
) -> Iterator[list[str]]:
    for row in rows:
        yield [format_cell(column, row.get(column), preset, tz) for column in columns]


def lead_rows(rows: Iterable[Mapping]) -> Iterator[dict]:
    """Ledger lead rows with the raw source flattened to `key=value; ...`."""
    for row in rows:
        values = json.loads(row["raw_source"] or "{}")
        yield {**row, "raw_source": "; ".join(f"{k}={values[k]}" for k in sorted(values))}


def review_rows(rows: Iterable[Mapping]) -> Iterator[dict]:
    for row in rows:
        meta = json.loads(row["meta"] or "{}")
        origin = ":".join(v for v in (meta.get("path", ""), meta.get("row", "")) if v)
        yield {**row, "origin": origin, "preview": preview(row["payload"])}


def duplicate_rows(rows: Iterable[Mapping]) -> Iterator[dict]:
    """Possible duplicates with their reasons on one line."""
    for row in rows:
        yield {**row, "reasons": "; ".join(row["reasons"])}


def preview(payload: bytes) -> str:
    """The start of an item as a reviewer reads it: a mail decoded (sender,
    subject, text; never its base64), anything else as text."""
    text = mail_excerpt(payload) if looks_like_mail(payload) else ""
    text = text or payload[: _PREVIEW_CHARS * 4].decode("utf-8", "replace")
    return " ".join(text.split())[:_PREVIEW_CHARS]
