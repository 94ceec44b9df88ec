"""`leadhub alert test|replay` and the alerts in `leadhub status`, run as a
user runs them, against local webhooks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

from connectors.ledger import Ledger
from flows.alerts import UNCONFIRMED
from leadhub import alerts_cli, status_cli
from leadhub.cli import app
from tests.connectors.test_notify import WebhookReceiver
from tests.store import rows
from transforms.alerts import Alert, alert_id

runner = CliRunner()
SECRET = "s3cretPassw0rd"
DEAD = f"json://bot:{SECRET}@127.0.0.1:1/{SECRET}"


@pytest.fixture(autouse=True)
def wide_console(monkeypatch):
    """Tables wider than a test runner's 80 columns, so cells are not wrapped."""
    for module in (alerts_cli, status_cli):
        monkeypatch.setattr(module.console, "width", 400)


@pytest.fixture
def webhook():
    with WebhookReceiver() as receiver:
        yield receiver


def write_config(tmp_path, channels: dict[str, str], store: str = "leadhub.db",
                 **sections: str) -> str:
    lines = [f"store: {store}", "delivery:", "  language: en", "channels:"]
    lines += [f"  {name}: {url}" for name, url in channels.items()]
    lines += ["alerts:",
              "  - {name: new-leads, events: [new_lead], channels: [team]}",
              "  - {name: health, events: [source_down], channels: [ops]}"]
    lines += [f"{key}: {value}" for key, value in sections.items()]
    config = tmp_path / "leadhub.yaml"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(config)


# --- leadhub alert test ---------------------------------------------------------------


def test_every_channel_is_tried_and_a_failure_says_why_without_its_secret(tmp_path, webhook):
    config = write_config(tmp_path, {"team": webhook.url, "ops": DEAD})
    result = runner.invoke(app, ["alert", "test", "--config", config])
    assert result.exit_code == 1, result.output
    lines = {line.split("│")[1].strip(): line for line in result.stdout.splitlines()
             if line.startswith("│")}
    assert "sent" in lines["team"]
    assert "failed" in lines["ops"] and "Connection error" in lines["ops"]
    assert SECRET not in result.output
    [post] = webhook.posts
    assert post["title"] == "LeadHub: test of channel team"
    assert "alerts of rule new-leads" in post["message"]


@pytest.mark.parametrize(
    ("target", "tried"),
    [pytest.param("new-leads", ["team"], id="a-rule's-channels"),
     pytest.param("office", ["office"], id="one-channel")],
)
def test_a_rule_or_a_channel_is_tried_alone(tmp_path, target, tried):
    with WebhookReceiver() as team, WebhookReceiver() as office:
        config = write_config(tmp_path, {"team": team.url, "office": office.url, "ops": DEAD})
        result = runner.invoke(app, ["alert", "test", target, "--config", config])
        assert result.exit_code == 0, result.output
        reached = [name for name, hook in (("team", team), ("office", office)) if hook.posts]
    assert reached == tried
    assert "channel(s) work" in result.stdout


def test_an_unknown_rule_or_channel_is_refused_with_the_known_ones(tmp_path, webhook):
    config = write_config(tmp_path, {"team": webhook.url, "ops": webhook.url})
    result = runner.invoke(app, ["alert", "test", "tem", "--config", config])
    assert result.exit_code == 2
    assert "'tem' is neither an alert rule nor a channel" in result.stderr
    assert "rules: new-leads, health; channels: team, ops" in result.stderr
    assert webhook.posts == []


def test_a_test_without_channels_says_where_they_go(tmp_path):
    result = runner.invoke(app, ["alert", "test"])
    assert result.exit_code == 2
    assert "the config has no channels: add one under channels:" in result.stderr


def test_a_test_leaves_the_alert_queue_alone(store, tmp_path, webhook):
    now = datetime.now(UTC)
    ledger = Ledger(store, create=True)
    ledger.queue_alerts([Alert(alert_id("new-leads", "lead-1", "team"), "new-leads", "team",
                               "new_lead", "lead-1", "New lead: Anna", "Anna", now)], now)
    ledger.close()
    config = write_config(tmp_path, {"team": webhook.url, "ops": webhook.url}, store=store)
    result = runner.invoke(app, ["alert", "test", "team", "--config", config])
    assert result.exit_code == 0, result.output
    assert [post["title"] for post in webhook.posts] == ["LeadHub: test of channel team"]
    assert rows(store, "SELECT state, attempts FROM alerts") == [("pending", 0)]


# --- the store's alerts: given up, waiting, replayed -------------------------------------

NOW = datetime.now(UTC).replace(microsecond=0)


def queue(ledger: Ledger, number: int, channel: str = "team", rule: str = "new-leads") -> str:
    key = alert_id(rule, f"lead-{number}", channel)
    ledger.queue_alerts([Alert(key, rule, channel, "new_lead", f"lead-{number}",
                               f"New lead: Client {number}", "text", NOW)], NOW)
    ledger.claim_alerts([key], NOW)
    return key


def fill_alerts(store: str) -> None:
    """One alert waiting for a retry, one given up after its window, one a
    crash left unconfirmed, one for a channel that has left the config."""
    ledger = Ledger(store, create=True)
    waiting = queue(ledger, 1)
    ledger.record_failed_send({waiting: NOW + timedelta(minutes=30)},
                              "error=500 for +7 912 345-67-89", NOW)
    given_up = queue(ledger, 2, channel="ops", rule="health")
    ledger.record_failed_send({given_up: None}, "Connection error", NOW)
    queue(ledger, 3)
    ledger.abandon_unconfirmed(NOW + timedelta(seconds=1), UNCONFIRMED)
    ledger.give_up_alerts([queue(ledger, 4, channel="old")], "channel 'old' is gone")
    ledger.close()


def test_status_shows_alerts_waiting_for_a_retry_and_given_up_with_what_to_do(store, tmp_path,
                                                                              webhook):
    fill_alerts(store)
    config = write_config(tmp_path, {"team": webhook.url, "ops": webhook.url})
    result = runner.invoke(app, ["status", "--db", store, "--config", config])
    assert result.exit_code == 0, result.output
    table_rows = {tuple(cell.strip() for cell in line.split("│")[1:-1])
                  for line in result.stdout.splitlines() if line.startswith("│")}
    assert "Alerts waiting for a retry (each is tried for 12 h" in result.stdout
    assert ("team", "new-leads", "New lead: Client 1", "1", status_cli.moment(NOW),
            status_cli.moment(NOW + timedelta(minutes=30)),
            "error=500 for +79*******89") in table_rows
    what_to_do = {row[2]: row[-1] for row in table_rows if len(row) == 6}
    assert what_to_do == {
        "New lead: Client 2": "fix the channel (`leadhub alert test ops`), then"
                              " `leadhub alert replay --channel ops`",
        "New lead: Client 3": "it may have arrived: look in team; to send it anyway,"
                              " `leadhub alert replay --channel team --unconfirmed`",
        "New lead: Client 4": "put channel old back under channels:, then"
                              " `leadhub alert replay --channel old`",
    }
    assert "912 345" not in result.stdout


def test_replay_queues_the_given_up_alerts_and_says_how_many(store, tmp_path, webhook):
    fill_alerts(store)
    config = write_config(tmp_path, {"team": webhook.url, "ops": webhook.url})
    result = runner.invoke(app, ["alert", "replay", "--db", store, "--config", config])
    assert result.exit_code == 0, result.output
    assert "1 alert(s) queued again" in result.stdout
    assert "1 alert(s) for channel old left as they are" in result.stdout
    assert rows(store, "SELECT event_key, state, attempts FROM alerts ORDER BY id") == [
        ("lead-1", "pending", 1), ("lead-2", "pending", 0), ("lead-3", "failed", 0),
        ("lead-4", "failed", 0)]


def test_replay_with_unconfirmed_takes_those_too(store, tmp_path, webhook):
    fill_alerts(store)
    config = write_config(tmp_path, {"team": webhook.url, "ops": webhook.url})
    result = runner.invoke(app, ["alert", "replay", "--unconfirmed", "--channel", "team",
                                 "--db", store, "--config", config])
    assert result.exit_code == 0, result.output
    assert "1 alert(s) queued again" in result.stdout
    assert rows(store, "SELECT state FROM alerts WHERE event_key = 'lead-3'") == [("pending",)]


@pytest.mark.parametrize("since", ["2026-13-01", "yesterday"])
def test_replay_since_a_day_that_is_not_one_says_how_to_write_it(tmp_path, since):
    result = runner.invoke(app, ["alert", "replay", "--since", since,
                                 "--db", str(tmp_path / "leadhub.db")])
    assert result.exit_code == 2
    assert "write the date as YYYY-MM-DD" in result.stderr


def test_replay_without_a_store_says_so(tmp_path):
    result = runner.invoke(app, ["alert", "replay", "--db", str(tmp_path / "none.db")])
    assert result.exit_code == 2
    assert "there is no store" in result.stderr


def test_run_retries_a_digest_that_failed(store, tmp_path, webhook):
    ledger = Ledger(store, create=True)
    day = queue(ledger, 1, rule="@digest")
    ledger.record_failed_send({day: NOW}, "error=500", NOW)
    ledger.close()
    (tmp_path / "inbox").mkdir()
    config = tmp_path / "leadhub.yaml"
    config.write_text(f"store: {store}\nsources:\n  - {{type: files, paths: [inbox]}}\n"
                      f"channels:\n  team: {webhook.url}\ndigest:\n  channels: [team]\n",
                      encoding="utf-8")
    result = runner.invoke(app, ["run", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert [post["title"] for post in webhook.posts] == ["New lead: Client 1"]
