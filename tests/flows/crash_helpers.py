"""Killing a sync at a write of our choosing, and checking the sink afterwards.

The local Airtable and Sheets servers are extended here with a hold: the Nth
write request is applied (or, with `before_apply`, not) and its answer is held
back until the test has killed the sync with SIGKILL, so the sync dies exactly
between a request and the state it keeps of it. Nothing waits on the clock:
the test waits for the hold to be reached or for the sync to end.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connectors.ledger import Ledger
from tests.fakes.airtable import WRITE_KINDS as AIRTABLE_WRITES
from tests.fakes.airtable import FakeAirtable
from tests.fakes.sheets import WRITE_KINDS as SHEETS_WRITES
from tests.fakes.sheets import ApiError, FakeSheets
from transforms.crm import canonical, contact_values, desired_row, lead_values

ROOT = Path(__file__).resolve().parents[2]
# A hold that is never reached, or a sync that never ends, fails the test
# instead of hanging it; neither happens in a passing run.
STUCK_SECONDS = 120


@dataclass
class Hold:
    """Stop at write request number `write` (from 1). `while_held` runs in the
    server at that moment, as a person working in the CRM while the sync waits
    for its answer."""

    write: int
    before_apply: bool = False
    while_held: Callable[[], None] = lambda: None
    seen: int = 0
    reached: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)

    def wait_here(self) -> None:
        self.while_held()
        self.reached.set()
        self.released.wait(STUCK_SECONDS)


class HoldingAirtable(FakeAirtable):
    hold: Hold | None = None

    def _answer_route(self, request, route):
        hold = self.hold
        if hold is None or route.kind not in AIRTABLE_WRITES or hold.reached.is_set():
            return super()._answer_route(request, route)
        if hold.before_apply and hold.seen == hold.write - 1:
            hold.wait_here()
            return 503, "application/json", b'{"error": "held, not applied"}'
        applied_before = self.write_calls
        answer = super()._answer_route(request, route)
        if self.write_calls > applied_before:  # not refused by the rate limit
            hold.seen += 1
            if hold.seen == hold.write:
                hold.wait_here()
        return answer


class HoldingSheets(FakeSheets):
    hold: Hold | None = None

    def _api(self, kind, groups, query, headers, body):
        hold = self.hold
        if hold is None or kind not in SHEETS_WRITES or hold.reached.is_set():
            return super()._api(kind, groups, query, headers, body)
        if hold.before_apply and hold.seen == hold.write - 1:
            hold.wait_here()
            raise ApiError(503, "held, not applied")
        answer = super()._api(kind, groups, query, headers, body)
        hold.seen += 1
        if hold.seen == hold.write:
            hold.wait_here()
        return answer


def sync_killed_at(fake: HoldingAirtable | HoldingSheets, hold: Hold, store: Path,
                   sink_config: dict[str, Any]) -> bool:
    """Run `leadhub sync` in its own process and SIGKILL it at the hold.
    False when the run wrote fewer requests and finished first."""
    fake.hold = hold
    script = (
        "from leadhub.settings import load_settings; from flows.sync import sync_all;"
        f"sync_all(load_settings(store={str(store)!r}, sinks=[{sink_config!r}]))")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, "-c", script], env=env, cwd=ROOT)
    try:
        while not hold.reached.wait(0.05):
            if process.poll() is not None:
                assert process.returncode == 0, "the sync failed before the hold"
                return False
        os.kill(process.pid, signal.SIGKILL)
        process.wait(STUCK_SECONDS)
        return True
    finally:
        hold.released.set()
        fake.hold = None


def store_rows(store: Path) -> dict[str, dict[str, dict]]:
    """What the store says each row of Contacts and Leads holds, by key."""
    ledger = Ledger(store)
    try:
        return {
            "contacts": {row["contact_key"]: contact_values(row)
                         for row in ledger.sink_rows("contacts")},
            "leads": {row["lead_id"]: lead_values(row) for row in ledger.sink_rows("leads")},
        }
    finally:
        ledger.close()


def sink_rows(sink) -> dict[str, dict[str, list[dict]]]:
    """Every row of Contacts and Leads as the sink reads them, by key."""
    found: dict[str, dict[str, list[dict]]] = {}
    contacts = list(sink.read(sink.tables["contacts"]))
    sink.set_links("contacts", {row.key: row.remote_id for row in contacts})
    for name, rows in (("contacts", contacts), ("leads", sink.read(sink.tables["leads"]))):
        found[name] = {}
        for row in rows:
            found[name].setdefault(row.key, []).append(row.values)
    return found


def differences(sink, store: Path, person: dict[tuple[str, str, str], Any]) -> list[str]:
    """Every cell of the sink that is not what it should be: the store's value
    in LeadHub's fields, the person's where they typed one, and the default
    (or nothing) in people's own fields. Empty when the sink is right."""
    wanted = store_rows(store)
    held = sink_rows(sink)
    wrong = []
    for name, rows in wanted.items():
        table = sink.tables[name]
        if set(held[name]) != set(rows):
            wrong.append(f"{name}: missing {sorted(set(rows) - set(held[name]))},"
                         f" extra {sorted(set(held[name]) - set(rows))}")
        for key, values in rows.items():
            copies = held[name].get(key, [])
            if len(copies) > 1:
                wrong.append(f"{name} {key}: {len(copies)} rows")
            if not copies:
                continue
            expected = {**desired_row(table, values),
                        **{f.name: canonical(f, f.default) for f in table.owned_by("people")}}
            expected.update({f: v for (t, k, f), v in person.items() if (t, k) == (name, key)})
            wrong += [f"{name} {key} {f}: {copies[0].get(f)!r}, not {v!r}"
                      for f, v in expected.items() if copies[0].get(f) != v]
    return wrong


def expected_counts(sink, store: Path, person: dict[tuple[str, str, str], Any]) -> dict:
    """What the next run should report, from what the sink holds now: rows
    missing from it are created, rows whose LeadHub fields differ from the
    store (a person's own values aside) updated, the rest unchanged."""
    held = sink_rows(sink)
    counts = dict.fromkeys(("created", "updated", "unchanged"), 0)
    for name, rows in store_rows(store).items():
        for key, values in rows.items():
            if key not in held[name]:
                counts["created"] += 1
                continue
            row = held[name][key][0]
            stale = any(row.get(f) != v
                        for f, v in desired_row(sink.tables[name], values).items()
                        if (name, key, f) not in person)
            counts["updated" if stale else "unchanged"] += 1
    return counts


def edited_fields(store: Path, sink_name: str) -> dict[str, dict[str, frozenset]]:
    """The fields LeadHub holds for people's, per table and key (only non-empty)."""
    ledger = Ledger(store)
    try:
        return {name: {key: state.edited
                       for key, state in ledger.sink_states(sink_name, name).items()
                       if state.edited}
                for name in ("contacts", "leads")}
    finally:
        ledger.close()
