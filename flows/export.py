"""Export the ledger as BI tables (CSV) for Looker Studio / Power BI."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

from prefect import flow

import flows  # noqa: F401  (Prefect settings before prefect is imported)
from connectors.csv_export import write_csv
from connectors.ledger import Ledger
from leadhub.settings import Settings, load_settings
from transforms.exports import (
    CONTACT_COLUMNS,
    LEAD_COLUMNS,
    PRESETS,
    REVIEW_COLUMNS,
    contact_rows,
    lead_rows,
    review_rows,
)


def export_tables(settings: Settings, out: Path, preset_name: str = "looker") -> dict[str, Path]:
    """Write contacts.csv, leads.csv and needs_review.csv; returns the files."""
    preset = PRESETS[preset_name]
    tz = ZoneInfo(settings.timezone)
    ledger = Ledger(settings.store)
    try:
        tables = {
            "contacts": (CONTACT_COLUMNS, contact_rows(ledger.contacts(), preset, tz)),
            "leads": (LEAD_COLUMNS, lead_rows(ledger.leads(), preset, tz)),
            "needs_review": (REVIEW_COLUMNS, review_rows(ledger.review_items(), preset, tz)),
        }
        written = {}
        for name, (header, rows) in tables.items():
            path = out / f"{name}.csv"
            write_csv(path, header, rows, preset)
            written[name] = path
    finally:
        ledger.close()
    return written


@flow(name="export_bi")
def export_bi(
    out: str, config: str | None = None, store: str | None = None, preset: str = "looker"
) -> dict[str, str]:
    settings = load_settings(Path(config) if config else None, store=store)
    return {name: str(path) for name, path in export_tables(settings, Path(out), preset).items()}
