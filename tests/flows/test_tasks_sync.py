"""Follow-up tasks through the sinks: a rule's task lands once in the Tasks
table of the local Airtable and Sheets, with its due time and contact; a
person ticks Done there, and the reminder stays silent for it."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from connectors.ledger import Ledger
from flows.alerts import run_alerts, run_reminders
from flows.sync import build_sink, sync_all
from leadhub.settings import load_settings
from tests.connectors.test_notify import WebhookReceiver
from tests.fakes.airtable import FakeAirtable
from tests.fakes.sheets import FakeSheets
from tests.flows.crm_helpers import START, add_leads, contact_of, make_lead

CALL_BACK = {"name": "call-back", "trigger": "new_lead", "title": "Перезвонить {name}",
             "due_in": "2h"}
NOW = START + timedelta(hours=1)


@pytest.fixture
def webhook():
    with WebhookReceiver() as receiver:
        yield receiver


def _airtable_sink(fake):
    return {"type": "airtable", "base": "appTESTBASE000001", "token": "patTEST.secret",
            "endpoint_url": fake.url, "rate_limit_wait_seconds": 0.5}


def _sheets_sink(fake):
    return {"type": "sheets", "spreadsheet": fake.create_spreadsheet("CRM"),
            "base_url": fake.url, "credentials": json.dumps(fake.service_account_key())}


def _tick_done(fake, sink_type: str, settings, task_title: str) -> None:
    """A person ticks Done on one task in the CRM."""
    if sink_type == "airtable":
        for record in fake.table_records("appTESTBASE000001", "Tasks"):
            if record["fields"].get("Task") == task_title:
                fake.person_edit("appTESTBASE000001", "Tasks", record["id"], {"Done": True})
        return
    spreadsheet = settings.sinks[0].spreadsheet
    grid = fake.grid(spreadsheet, "Tasks")
    header = grid[0]
    row = next(n for n, r in enumerate(grid[1:], start=2) if r[header.index("Task")] == task_title)
    column = chr(ord("A") + header.index("Done"))
    fake.person_edit(spreadsheet, "Tasks", f"{column}{row}", True)


def _tasks_in(fake, sink_type: str, settings) -> list[dict]:
    if sink_type == "airtable":
        return [r["fields"] for r in fake.table_records("appTESTBASE000001", "Tasks")]
    grid = fake.grid(settings.sinks[0].spreadsheet, "Tasks")
    return [dict(zip(grid[0], row, strict=False)) for row in grid[1:]]


@pytest.mark.parametrize("sink_type", ["sheets", "airtable"])
def test_tasks_land_once_and_done_in_the_crm_stops_the_reminder(store, webhook, sink_type):
    fake_class = FakeSheets if sink_type == "sheets" else FakeAirtable
    with (fake_class(penalty_seconds=0.5) if sink_type == "airtable" else fake_class()) as fake:
        sink = _airtable_sink(fake) if sink_type == "airtable" else _sheets_sink(fake)
        settings = load_settings(store=str(store), sinks=[sink], task_rules=[CALL_BACK],
                                 channels={"team": webhook.url},
                                 reminders={"channels": ["team"]})
        build_sink(settings, sink_type)[0].init_schema()
        Ledger(store, create=True).close()
        run_alerts(settings, now=NOW)  # the rule starts: only leads after this get tasks
        add_leads(store, [make_lead(100), make_lead(101)])
        for _ in range(2):  # a repeated run creates nothing twice
            run_alerts(settings, now=NOW + timedelta(minutes=1))
            sync_all(settings)

        tasks = _tasks_in(fake, sink_type, settings)
        assert sorted(t["Task"] for t in tasks) == ["Перезвонить Клиент 100",
                                                   "Перезвонить Клиент 101"]
        first = next(t for t in tasks if t["Task"] == "Перезвонить Клиент 100")
        if sink_type == "airtable":
            assert first["Due"] == "2026-11-01T12:40:00.000Z"  # received 10:40 + 2 h
            assert len(first["Contact"]) == 1
        else:
            assert first["Contact"] == contact_of(100)

        _tick_done(fake, sink_type, settings, "Перезвонить Клиент 100")
        sync_all(settings)
        ledger = Ledger(store)
        try:
            done = {row["title"]: row["done"] for row in ledger.task_rows()}
        finally:
            ledger.close()
        assert done == {"Перезвонить Клиент 100": True, "Перезвонить Клиент 101": False}

        run_reminders(settings, now=START + timedelta(hours=5))
        assert [post["title"] for post in webhook.posts] == ["Задача: Перезвонить Клиент 101"]
