"""BI tables shaped from ledger rows: stable column names and order, one header.

Rows come in as plain mappings (a column name -> a stored value) and go out
as lists of strings formatted for the chosen preset.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

CONTACT_COLUMNS = (
    "contact_key",
    "name",
    "phone",
    "phone_display",
    "email",
    "company",
    "legal_form",
    "position",
    "city",
    "source",
    "first_seen",
    "last_seen",
    "leads_count",
)
LEAD_COLUMNS = (
    "lead_id",
    "contact_key",
    "received_at",
    "channel",
    "source",
    "raw_source",
    "subject",
    "message",
    "name",
    "phone",
    "email",
    "company",
    "stage",
)
REVIEW_COLUMNS = (
    "item_id",
    "state",
    "reason",
    "source",
    "kind",
    "received_at",
    "origin",
    "preview",
)
_TIME_COLUMNS = {"first_seen", "last_seen", "received_at"}
_PREVIEW_CHARS = 300


@dataclass(frozen=True)
class ExportPreset:
    name: str
    encoding: str
    delimiter: str
    date_format: str


PRESETS = {
    # Looker Studio: UTF-8, comma, ISO dates that it recognises as date-times.
    "looker": ExportPreset("looker", "utf-8", ",", "%Y-%m-%d %H:%M:%S"),
}


def contact_rows(rows: Iterable[Mapping], preset: ExportPreset, tz: ZoneInfo) -> Iterator[list]:
    for row in rows:
        yield [_cell(column, row[column], preset, tz) for column in CONTACT_COLUMNS]


def lead_rows(rows: Iterable[Mapping], preset: ExportPreset, tz: ZoneInfo) -> Iterator[list]:
    for row in rows:
        values = dict(row)
        values["raw_source"] = _compact_source(values["raw_source"])
        yield [_cell(column, values[column], preset, tz) for column in LEAD_COLUMNS]


def review_rows(rows: Iterable[Mapping], preset: ExportPreset, tz: ZoneInfo) -> Iterator[list]:
    for row in rows:
        meta = json.loads(row["meta"] or "{}")
        values = {
            **dict(row),
            "origin": ":".join(v for v in (meta.get("path", ""), meta.get("row", "")) if v),
            "preview": preview(row["payload"]),
        }
        yield [_cell(column, values[column], preset, tz) for column in REVIEW_COLUMNS]


def preview(payload: bytes) -> str:
    text = payload[: _PREVIEW_CHARS * 4].decode("utf-8", "replace")
    return " ".join(text.split())[:_PREVIEW_CHARS]


def _compact_source(raw: str) -> str:
    """`{"utm_source": "yandex", "form": "callback"}` -> `form=callback; utm_source=yandex`."""
    values = json.loads(raw or "{}")
    return "; ".join(f"{key}={values[key]}" for key in sorted(values))


def _cell(column: str, value: object, preset: ExportPreset, tz: ZoneInfo) -> str:
    if value is None:
        return ""
    if column in _TIME_COLUMNS and value:
        return datetime.fromisoformat(str(value)).astimezone(tz).strftime(preset.date_format)
    return str(value)
