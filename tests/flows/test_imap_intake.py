"""The intake flow with a mailbox: a real Dovecot on loopback, into a store on
each engine (SQLite, PostgreSQL)."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from connectors.imap import ImapSource
from flows.intake import collect, process_pending, run_intake
from flows.serve import serve_locally
from leadhub.cli import app
from leadhub.settings import load_settings
from tests.connectors.dovecot import make_message
from tests.store import query

from .helpers import snapshot

# A deadline for another thread's work: it ends as soon as that is done, and is
# long because a busy machine can be very slow (and far below serve's interval).
WAIT = 300.0


def _config(tmp_path: Path, server, store: str, **extra: str) -> Path:
    lines = [
        f"store: {store}",
        "sources:",
        "  - type: imap",
        "    name: sales",
        f"    host: {server.host}",
        f"    port: {server.port}",
        "    tls: none",
        "    username: sales",
        "    password: ${LEADHUB_TEST_IMAP_PASSWORD}",
        "    timeout: 10",
        *(f"    {key}: {value}" for key, value in extra.items()),
    ]
    path = tmp_path / "leadhub.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def imap_password(monkeypatch):
    monkeypatch.setenv("LEADHUB_TEST_IMAP_PASSWORD", "secret")


def _steps(config: Path) -> None:
    settings = load_settings(config)
    for source in settings.sources:
        collect(ImapSource(source), settings.store)
    process_pending(settings)


def test_recreated_folder_gives_no_duplicate_leads(dovecot, tmp_path, store):
    dovecot.create_folder("sales", "Leads")
    dovecot.append_many("sales", "Leads", [make_message(i) for i in range(5)])
    config = _config(tmp_path, dovecot, store, folders="[Leads]")
    _steps(config)
    dovecot.delete_folder("sales", "Leads")
    dovecot.create_folder("sales", "Leads")
    dovecot.append_many("sales", "Leads", [make_message(i) for i in range(3, 8)])
    _steps(config)
    state = snapshot(store)
    assert len(state["leads"]) == 8  # messages 0..7, each once
    assert len(state["items"]) == 10  # every fetched message is kept


def test_the_intake_reads_the_mailbox_and_records_its_health(dovecot, tmp_path, store):
    dovecot.append_many("sales", "INBOX", [make_message(i) for i in range(20)])
    stats = run_intake(load_settings(_config(tmp_path, dovecot, store)))
    assert (stats["new_items"], stats["new_leads"]) == (20, 20)
    [row] = query(store, "SELECT scope, last_success_at, failing_since FROM source_status")
    assert row[0] == "INBOX" and row[1] and row[2] is None


def test_wrong_password_fails_the_run_with_one_line_and_status_shows_it(dovecot, tmp_path, store,
                                                                        monkeypatch):
    dovecot.append("sales", "INBOX", make_message(1))
    config = _config(tmp_path, dovecot, store)
    monkeypatch.setenv("LEADHUB_TEST_IMAP_PASSWORD", "wrong")
    runner = CliRunner()
    result = runner.invoke(app, ["run", "--config", str(config)])
    assert result.exit_code == 2
    assert "mailbox 'sales'" in result.stderr and "check the password" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    status = runner.invoke(app, ["status", "--config", str(config)], terminal_width=250)
    assert "failing" in status.stdout
    assert query(store, "SELECT COUNT(*) FROM checkpoints") == [(0,)]


def test_serve_ingests_mail_announced_by_idle_within_seconds(dovecot, tmp_path, store,
                                                             idle_entered, caplog):
    config = _config(tmp_path, dovecot, store)
    settings = load_settings(config)
    first_run_done = threading.Event()
    finished = []

    def run_once(number: int) -> None:
        run_intake(settings)
        finished.append(number)
        first_run_done.set()

    stop = threading.Event()
    server = threading.Thread(
        target=serve_locally, args=(settings, run_once),
        kwargs={"interval": 3600, "max_runs": 2, "stop": stop},
    )
    caplog.set_level(logging.INFO, logger="leadhub.serve")
    server.start()
    try:
        assert first_run_done.wait(WAIT) and idle_entered.wait(WAIT)
        dovecot.append("sales", "INBOX", make_message(42))
        # far less than the hour-long interval: only the announcement can end it
        server.join(timeout=WAIT)
    finally:
        stop.set()
        server.join(timeout=WAIT)
    assert len(finished) == 2
    assert "new mail announced; running the intake" in caplog.messages  # not the interval
    leads = snapshot(store)["leads"]
    assert len(leads) == 1 and leads[0][7] == "+79120000042"
