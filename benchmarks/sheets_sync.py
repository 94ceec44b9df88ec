"""Google Sheets sync against the local Sheets server (tests/fakes/sheets.py).

For the Contacts sheet it counts the API requests of:

1. a first sync of `--rows` new rows (default 10,000) into the empty sheet;
2. the next run with nothing changed;
3. a run after `--changed` of them changed (default 100);

and the same first sync and change the way "append or update" tools do it
(n8n's Sheets node): read the whole sheet, then one request per row (an
update for a known row, an append for a new one). The naive first sync is
run for `--naive-rows` rows (default 300) and scaled to `--rows`: its cost is
linear by construction.

Then, for a whole sync of the spreadsheet (every sheet LeadHub writes, and
the Orders sheets read back) of `--base-rows` contacts with a lead each
(default 10,000), the requests of the syncs after the first on an unchanged
spreadsheet: the second, and a later one as the record people work in (their
new rows, corrections and stages read) and with `read_back: false` (nothing
of people's read).

Google allows 60 write requests per minute per user, so the last column is
the least time the writes take against the real service. The local server's
quota is raised for this run: the counts are the point, not the waiting.

Run from the repository root:
    PYTHONPATH=. .venv/bin/python benchmarks/sheets_sync.py [--rows 10000]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.bench_output import Report, positive
from connectors.ledger import Ledger
from flows.sync import CLOCK_MARGIN, SyncRun, build_sink, sync_sink, sync_table
from leadhub.settings import load_settings
from tests.fakes.sheets import FakeSheets
from tests.flows.crm_helpers import add_leads, make_lead, seed

WRITES_PER_MINUTE = 60


def run_sync(settings, store: Path, fake: FakeSheets) -> tuple[int, Counter, float]:
    sink, config = build_sink(settings, "sheets")
    ledger = Ledger(store)
    stats: Counter = Counter()
    fake.reset_calls()
    started = time.monotonic()
    try:
        run = SyncRun(settings, settings.is_record(config), datetime.now(UTC))
        sync_table(ledger, sink, config, sink.tables["contacts"], stats, run)
    finally:
        ledger.close()
    calls = Counter(read=fake.read_calls, write=fake.write_calls)
    return stats["created"] + stats["updated"], calls, time.monotonic() - started


def naive(fake: FakeSheets, spreadsheet: str, rows: int, changed: int) -> tuple[Counter, Counter]:
    """Read the whole sheet; then update known rows one by one and append new ones one by one."""
    from google.oauth2 import credentials as user_credentials
    from gspread import Client

    from connectors.sheets import SheetsHttp

    creds = user_credentials.Credentials("ya29.naive-benchmark")
    client = Client(auth=creds, http_client=lambda auth, session: SheetsHttp(
        auth, session, base_url=fake.url, account="naive", calls=Counter(),
        writes_per_minute=100_000, reads_per_minute=100_000))
    http = client.http_client
    header = ["Contact key", "Name", "Phone"]
    http.values_update(spreadsheet, "Naive!A1", params={"valueInputOption": "RAW"},
                       body={"values": [header]})

    def one_pass(new: bool) -> Counter:
        fake.reset_calls()
        sheet = http.values_get(spreadsheet, "Naive!A:Z").get("values", [])
        keys = {r[0]: n for n, r in enumerate(sheet[1:], start=2) if r}
        for number in range(1, (rows if new else changed) + 1):
            key = f"+7914{number:07d}"
            values = [[key, f"Naive {number} {'v2' if not new else ''}", key]]
            if key in keys:
                http.values_update(spreadsheet, f"Naive!A{keys[key]}",
                                   params={"valueInputOption": "RAW"}, body={"values": values})
            else:
                http.values_append(spreadsheet, "Naive!A1",
                                   params={"valueInputOption": "RAW"}, body={"values": values})
        return Counter(read=fake.read_calls, write=fake.write_calls)

    return one_pass(new=True), one_pass(new=False)


def whole_sync(settings, store: Path, fake: FakeSheets) -> Counter:
    """One sync of every sheet of the sink: its requests."""
    sink, config = build_sink(settings, "sheets")
    ledger = Ledger(store)
    fake.reset_calls()
    try:
        sync_sink(ledger, sink, config, settings)
    finally:
        ledger.close()
    return Counter(read=fake.read_calls, write=fake.write_calls)


def unchanged_base(rows: int) -> list[list[str]]:
    """The requests of the syncs after the first of an unchanged spreadsheet."""
    table = []
    with tempfile.TemporaryDirectory() as folder, FakeSheets(
            writes_per_minute=100_000, reads_per_minute=100_000) as fake:
        store = Path(folder) / "leadhub.db"
        seed(store, rows)
        spreadsheet = fake.create_spreadsheet("CRM")

        def settings_with(read_back: bool):
            return load_settings(store=str(store), sinks=[{
                "type": "sheets", "spreadsheet": spreadsheet, "base_url": fake.url,
                "credentials": json.dumps(fake.service_account_key()),
                "read_back": read_back}])

        record, blind = settings_with(True), settings_with(False)
        build_sink(record, "sheets")[0].init_schema()
        whole_sync(record, store, fake)
        runs = [("second sync, as the record", record, False),
                ("a later sync, as the record (people's work read)", record, True),
                ("a later sync, read_back: false (nothing read)", blind, True)]
        for label, settings, wait in runs:
            if wait:  # later runs look back CLOCK_MARGIN for clock differences
                time.sleep(CLOCK_MARGIN.total_seconds() + 1)
            calls = whole_sync(settings, store, fake)
            table.append([label, f"{calls['read']:,}", f"{calls['write']:,}",
                          f"{calls['read'] + calls['write']:,}"])
    return table


def row(label: str, rows: int, calls: Counter, seconds: float | None) -> list[str]:
    minutes = calls["write"] / WRITES_PER_MINUTE
    return [label, f"{rows:,}", f"{calls['read']:,}", f"{calls['write']:,}",
            f"{calls['read'] + calls['write']:,}",
            "-" if seconds is None else f"{seconds:.1f}",
            f"{minutes:.2f} min" if minutes >= 1 else f"{minutes * 60:.0f} s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=positive, default=10_000)
    parser.add_argument("--changed", type=positive, default=100)
    parser.add_argument("--naive-rows", type=positive, default=300)
    parser.add_argument("--base-rows", type=positive, default=10_000)
    args = parser.parse_args()
    table = []
    with tempfile.TemporaryDirectory() as folder, FakeSheets(
            writes_per_minute=100_000, reads_per_minute=100_000) as fake:
        store = Path(folder) / "leadhub.db"
        seed(store, args.rows)
        spreadsheet = fake.create_spreadsheet("CRM", sheets=("Naive",))
        settings = load_settings(store=str(store), sinks=[{
            "type": "sheets", "spreadsheet": spreadsheet, "base_url": fake.url,
            "credentials": json.dumps(fake.service_account_key())}])
        build_sink(settings, "sheets")[0].init_schema()

        written, calls, seconds = run_sync(settings, store, fake)
        table.append(row("LeadHub: first sync", written, calls, seconds))
        written, calls, seconds = run_sync(settings, store, fake)
        table.append(row("LeadHub: next run, nothing changed", written, calls, seconds))
        add_leads(store, [make_lead(args.rows + n, phone_number=n * 7)
                          for n in range(1, args.changed + 1)])
        written, calls, seconds = run_sync(settings, store, fake)
        table.append(row(f"LeadHub: {args.changed} of {args.rows:,} changed", written, calls,
                         seconds))

        first, changes = naive(fake, spreadsheet, args.naive_rows, args.changed)
        scale = args.rows / args.naive_rows
        scaled = Counter(read=first["read"], write=round(first["write"] * scale))
        table.append(row("read all + row by row: first sync (scaled)", args.rows, scaled, None))
        table.append(row(f"read all + row by row: {args.changed} changed", args.changed,
                         changes, None))
    report = Report()
    report.table(
        "Google Sheets sync of Contacts (API requests; least time at 60 writes/min per user)",
        ["run", "rows written", "reads", "writes", "requests", "seconds here",
         "least time at quota"], table, left=["run"])
    report.table(
        f"Google Sheets: a whole sync of an unchanged spreadsheet of {args.base_rows:,}"
        f" contacts and {args.base_rows:,} leads (API requests)",
        ["run", "reads", "writes", "requests"], unchanged_base(args.base_rows), left=["run"])


if __name__ == "__main__":
    main()
