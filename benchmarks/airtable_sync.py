"""Airtable sync against the local Airtable (tests/fakes/airtable.py), which
keeps the real limits: 5 requests per second per base, 10 records per write,
429 and a 30-second penalty past the limit.

It measures, for the Contacts table:

1. a first sync of `--contacts` new contacts (default 10,000): records/s
   against the physical ceiling of 50 records/s (5 requests x 10 records),
   write calls against the minimum ceil(n/10), read calls;
2. the next run with nothing changed (it reads back once the rows the first
   run wrote: edits people make during a sync are noticed that way);
3. a run after 100 contacts changed (a new inquiry each);
4. the same kind of load the way one-request-per-record tools do it (an n8n
   Airtable node: one upsert per record, no throttle, pyairtable's default
   retry), for `--naive-records` records (default 100): calls per record,
   records/s, 429s and records lost.

Then, for a whole sync of the base (every table LeadHub writes, and the
Orders tables read back) of `--base-rows` contacts with a lead each (default
10,000), the API calls of the syncs after the first on an unchanged base:
the second (it reads back once the rows the first wrote), then later ones
as the record people work in (their new rows, corrections and stages read)
and with `read_back: false` (nothing of people's read): reading people's
work costs only the reads of what changed since the last sync.

Run from the repository root:
    PYTHONPATH=. .venv/bin/python benchmarks/airtable_sync.py [--contacts 10000]
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import requests
from pyairtable import Api

from benchmarks.bench_output import Report, positive
from connectors.ledger import Ledger
from flows.sync import CLOCK_MARGIN, SyncRun, build_sink, sync_sink, sync_table
from leadhub.settings import load_settings
from tests.fakes.airtable import FakeAirtable
from tests.flows.crm_helpers import add_leads, make_lead, seed

BASE = "appTESTBASE000001"
TOKEN = "patTEST.secret"
CEILING = 50.0  # records/s: 5 requests/s x 10 records


def run_sync(settings, store: Path) -> tuple[Counter, Counter, float]:
    sink, config = build_sink(settings, "airtable")
    ledger = Ledger(store)
    stats: Counter = Counter()
    started = time.monotonic()
    try:
        run = SyncRun(settings, settings.is_record(config), datetime.now(UTC))
        sync_table(ledger, sink, config, sink.tables["contacts"], stats, run)
    finally:
        ledger.close()
    return stats, sink.calls, time.monotonic() - started


def row(label: str, records: int, calls: Counter, seconds: float, lost: int = 0) -> list[str]:
    writes, reads = calls["write"], calls["read"]
    rate = records / seconds if seconds else 0.0
    per_record = f"{writes / records:.2f}" if records else "-"
    return [label, f"{records:,}", f"{writes:,}", per_record, f"{reads:,}",
            f"{calls['rate_limited']:,}", f"{rate:.1f}", f"{100 * rate / CEILING:.0f}%",
            f"{lost:,}", f"{seconds:.1f}"]


def naive(fake: FakeAirtable, count: int) -> list[str]:
    """One upsert request per record, as fast as the client goes."""
    api = Api(TOKEN, endpoint_url=fake.url, timeout=(5, 30))  # pyairtable's default retry
    table = api.table(BASE, "Contacts")
    fake.reset_calls()
    lost = 0
    started = time.monotonic()
    for number in range(1, count + 1):
        record = {"fields": {"Contact key": f"+7913{number:07d}", "Name": f"Naive {number}"}}
        try:
            table.batch_upsert([record], key_fields=["Contact key"])
        except (requests.HTTPError, requests.exceptions.RetryError):
            lost += 1
    seconds = time.monotonic() - started
    calls = Counter(write=fake.calls["upsert"], read=0,
                    rate_limited=fake.calls["rate_limited"])
    return row("one request per record (n8n-style)", count, calls, seconds, lost)


def whole_sync(settings, store: Path) -> Counter:
    """One sync of every table of the sink: its API calls."""
    sink, config = build_sink(settings, "airtable")
    ledger = Ledger(store)
    try:
        sync_sink(ledger, sink, config, settings)
    finally:
        ledger.close()
    return sink.calls


def unchanged_base(rows: int) -> list[list[str]]:
    """The API calls of the syncs after the first of an unchanged base."""
    table = []
    with tempfile.TemporaryDirectory() as folder, FakeAirtable(TOKEN, bases=(BASE,)) as fake:
        store = Path(folder) / "leadhub.db"
        seed(store, rows)

        def settings_with(read_back: bool):
            return load_settings(store=str(store), sinks=[{
                "type": "airtable", "base": BASE, "token": TOKEN, "endpoint_url": fake.url,
                "read_back": read_back}])

        record, blind = settings_with(True), settings_with(False)
        build_sink(record, "airtable")[0].init_schema()
        whole_sync(record, store)
        runs = [("second sync, as the record", record, False),
                ("a later sync, as the record (people's work read)", record, True),
                ("a later sync, read_back: false (nothing read)", blind, True)]
        for label, settings, wait in runs:
            if wait:  # later runs look back CLOCK_MARGIN for clock differences
                time.sleep(CLOCK_MARGIN.total_seconds() + 1)
            calls = whole_sync(settings, store)
            reads, writes = calls["read"], calls["write"]
            table.append([label, f"{reads:,}", f"{writes:,}", f"{reads + writes:,}",
                          f"{calls['rate_limited']:,}"])
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=positive, default=10_000)
    parser.add_argument("--changed", type=positive, default=100)
    parser.add_argument("--naive-records", type=positive, default=100)
    parser.add_argument("--base-rows", type=positive, default=10_000)
    args = parser.parse_args()
    report = Report()
    rows = []
    with tempfile.TemporaryDirectory() as folder, FakeAirtable(TOKEN, bases=(BASE,)) as fake:
        store = Path(folder) / "leadhub.db"
        seed(store, args.contacts)
        settings = load_settings(store=str(store), sinks=[{
            "type": "airtable", "base": BASE, "token": TOKEN, "endpoint_url": fake.url}])
        build_sink(settings, "airtable")[0].init_schema()

        stats, calls, seconds = run_sync(settings, store)
        rows.append(row("LeadHub: first sync", stats["created"], calls, seconds))
        minimum = math.ceil(args.contacts / 10)
        stats, calls, seconds = run_sync(settings, store)
        rows.append(row("LeadHub: next run, nothing changed", stats["created"] + stats["updated"],
                        calls, seconds))
        # later runs look back CLOCK_MARGIN for clock differences: wait it out
        time.sleep(CLOCK_MARGIN.total_seconds() + 1)
        stats, calls, seconds = run_sync(settings, store)
        rows.append(row("LeadHub: the run after that", stats["created"] + stats["updated"],
                        calls, seconds))
        add_leads(store, [make_lead(args.contacts + n, phone_number=n * 7)
                          for n in range(1, args.changed + 1)])
        time.sleep(CLOCK_MARGIN.total_seconds() + 1)
        stats, calls, seconds = run_sync(settings, store)
        rows.append(row(f"LeadHub: {args.changed} of {args.contacts:,} changed",
                        stats["created"] + stats["updated"], calls, seconds))
        fake.penalty_seconds = 30.0
        rows.append(naive(fake, args.naive_records))
    report.table(
        f"Airtable sync of Contacts (minimum write calls for {args.contacts:,}: {minimum:,};"
        f" ceiling {CEILING:.0f} records/s)",
        ["run", "records written", "write calls", "calls/record", "read calls", "429s",
         "records/s", "of ceiling", "lost", "seconds"], rows, left=["run"])
    report.table(
        f"Airtable: a whole sync of an unchanged base of {args.base_rows:,} contacts and"
        f" {args.base_rows:,} leads (API calls)",
        ["run", "read calls", "write calls", "requests", "429s"],
        unchanged_base(args.base_rows), left=["run"])


if __name__ == "__main__":
    main()
