"""What follows processing: the sinks' sync, then alerts. A web-form lead gets
there from the endpoint's own background processing, not only at the next
scheduled run; a scheduled run does it after its intake."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from connectors.ledger import Ledger
from flows.alerts import run_alerts
from flows.intake import process_then_follow_up, run_intake
from flows.sync import build_sink
from leadhub.settings import load_settings
from tests.connectors.test_notify import WebhookReceiver
from tests.fakes.sheets import FakeSheets
from transforms.records import RawItem


def test_a_form_post_is_synced_and_alerted_right_after_processing(tmp_path):
    with FakeSheets() as sheets, WebhookReceiver() as webhook:
        spreadsheet = sheets.create_spreadsheet("CRM")
        settings = load_settings(
            store=str(tmp_path / "leadhub.db"),
            sources=[{"type": "webhook", "form": "callback", "auth": "none"}],
            sinks=[{"type": "sheets", "spreadsheet": spreadsheet, "base_url": sheets.url,
                    "credentials": json.dumps(sheets.service_account_key())}],
            channels={"team": webhook.url},
            alerts=[{"name": "new-leads", "events": ["new_lead"], "channels": ["team"]}])
        build_sink(settings, "sheets")[0].init_schema()
        Ledger(settings.store, create=True).close()  # as the endpoint does when it starts
        run_alerts(settings)  # the rule starts before the post arrives
        post = {"name": "Анна", "phone": "8 912 555-44-33", "message": "Перезвоните"}
        ledger = Ledger(settings.store)
        try:
            ledger.store_raw_items([RawItem(
                "form:callback:1", "form-callback", "form", json.dumps(post).encode(),
                datetime.now(UTC), {"form": "callback", "preset": "generic", "webhook": "1"})])
        finally:
            ledger.close()

        process_then_follow_up(settings)

        grid = sheets.grid(spreadsheet, "Contacts")
        assert grid[1][grid[0].index("Phone")] == "+7 (912) 555-44-33"
        assert len(webhook.posts) == 1
        assert "+7 (912) 555-44-33" in webhook.posts[0]["message"]


def test_a_scheduled_run_syncs_after_its_intake(tmp_path, monkeypatch):
    with FakeSheets() as sheets:
        spreadsheet = sheets.create_spreadsheet("CRM")
        monkeypatch.setenv("TEST_SHEETS_KEY", json.dumps(sheets.service_account_key()))
        mail = tmp_path / "mail"
        mail.mkdir()
        (mail / "lead.eml").write_text(
            "From: Ivan <ivan@example.ru>\nTo: sales@example.ru\nSubject: Заявка\n"
            "Message-ID: <1@example.ru>\nDate: Mon, 23 Nov 2026 10:00:00 +0300\n"
            "Content-Type: text/plain; charset=utf-8\n\nПерезвоните: 8 912 345-67-89\n",
            encoding="utf-8")
        config = tmp_path / "leadhub.yaml"
        config.write_text(
            f"store: leadhub.db\nsources:\n  - type: files\n    paths: [{mail}]\n"
            f"sinks:\n  - type: sheets\n    spreadsheet: {spreadsheet}\n"
            f"    credentials: ${{TEST_SHEETS_KEY}}\n    base_url: {sheets.url}\n",
            encoding="utf-8")
        build_sink(load_settings(config), "sheets")[0].init_schema()

        stats = run_intake(load_settings(config))

        assert stats["new_leads"] == 1
        assert stats["sinks"]["sheets"]["created"] == 2  # the contact and the lead
        grid = sheets.grid(spreadsheet, "Leads")
        assert grid[1][grid[0].index("Subject")] == "Заявка"
