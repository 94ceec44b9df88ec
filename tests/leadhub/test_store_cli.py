"""`leadhub store migrate` and `leadhub store copy`: moving a user from SQLite
to PostgreSQL without losing a row."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from connectors.files import FilesSource
from connectors.ledger import Ledger
from connectors.ledger.migrate import HEAD
from connectors.ledger.schema import metadata
from flows.intake import collect, process_pending
from leadhub.cli import app, lead_samples
from leadhub.settings import load_settings
from tests.connectors.test_ledger import _old_rows, _old_store
from tests.flows.helpers import snapshot
from tests.store import rows

runner = CliRunner()


@pytest.fixture(scope="module")
def sample_store(tmp_path_factory):
    store = tmp_path_factory.mktemp("copy") / "leadhub.db"
    collect(FilesSource("files", lead_samples()), store)
    process_pending(load_settings(store=str(store)))
    ledger = Ledger(store)
    ledger.finish_run(ledger.start_run("intake"), {"new_leads": 48})
    ledger.close()
    return store


def _every_row(store) -> dict[str, list[tuple]]:
    return {table.name: sorted(rows(store, f"SELECT * FROM {table.name}"), key=repr)
            for table in metadata.sorted_tables}


def test_copy_to_postgres_moves_every_row(sample_store, postgres):
    target = postgres.new_database()
    result = runner.invoke(app, ["store", "copy", "--db", str(sample_store), "--to", target])
    assert result.exit_code == 0, result.stderr
    assert "Every row arrived" in result.stdout
    assert _every_row(target) == _every_row(sample_store)
    assert snapshot(target) == snapshot(sample_store)


def test_the_copy_goes_on_working_where_the_original_stopped(sample_store, postgres):
    """New rows after the copy number on from the copied ones (PostgreSQL's
    sequences were moved past them)."""
    target = postgres.new_database()
    runner.invoke(app, ["store", "copy", "--db", str(sample_store), "--to", target])
    ledger = Ledger(target)
    try:
        run_id = ledger.start_run("after the copy")
    finally:
        ledger.close()
    assert run_id > max(row[0] for row in rows(sample_store, "SELECT run_id FROM runs"))


def test_copy_back_to_sqlite(sample_store, postgres, tmp_path):
    middle = postgres.new_database()
    runner.invoke(app, ["store", "copy", "--db", str(sample_store), "--to", middle])
    back = tmp_path / "back.db"
    result = runner.invoke(app, ["store", "copy", "--db", middle, "--to", str(back)])
    assert result.exit_code == 0, result.stderr
    assert _every_row(back) == _every_row(sample_store)


def test_copy_into_a_store_with_rows_is_refused(sample_store, tmp_path):
    busy = tmp_path / "busy.db"
    collect(FilesSource("files", lead_samples()[:1]), busy)
    result = runner.invoke(app, ["store", "copy", "--db", str(sample_store), "--to", str(busy)])
    assert result.exit_code == 2
    assert "already has rows" in result.stderr


def test_copy_from_a_mistyped_store_is_refused_and_creates_nothing(tmp_path):
    result = runner.invoke(app, ["store", "copy", "--db", str(tmp_path / "typo.db"),
                                 "--to", str(tmp_path / "new.db")])
    assert result.exit_code == 2
    assert "there is no store" in result.stderr
    assert not (tmp_path / "typo.db").exists() and not (tmp_path / "new.db").exists()


def test_migrate_upgrades_an_old_store_and_says_so(tmp_path):
    old = tmp_path / "old.db"
    _old_store(old)
    _old_rows(old)
    result = runner.invoke(app, ["store", "migrate", "--db", str(old)])
    assert result.exit_code == 0, result.stderr
    assert f"upgraded from LeadHub 0.1 schema 6 to schema {HEAD}" in result.stdout
    again = runner.invoke(app, ["store", "migrate", "--db", str(old)])
    assert f"already at schema {HEAD}" in again.stdout
