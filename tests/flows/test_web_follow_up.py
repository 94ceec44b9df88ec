"""A web-form lead reaches the CRM and the alert channel from the endpoint's own
background processing, not only at the next scheduled run."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from connectors.ledger import Ledger
from flows.alerts import run_alerts
from flows.intake import process_then_follow_up
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
        assert grid[1][grid[0].index("Phone")] == "+79125554433"
        assert len(webhook.posts) == 1
        assert "+7 (912) 555-44-33" in webhook.posts[0]["message"]
