import csv
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from connectors.files import FilesSource
from flows.intake import collect, process_pending
from leadhub import cli
from leadhub.cli import app, lead_samples
from leadhub.settings import load_settings

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
runner = CliRunner()


@pytest.fixture(scope="module")
def sample_store(tmp_path_factory):
    store = tmp_path_factory.mktemp("cli") / "leadhub.db"
    collect(FilesSource("files", lead_samples()), store)
    process_pending(load_settings(store=str(store)))
    return store


@pytest.fixture(autouse=True)
def wide_console(monkeypatch):
    """Tables wider than a test runner's 80 columns, so cells are not wrapped."""
    monkeypatch.setattr(cli.console, "width", 200)


def _numbers(output: str) -> dict[str, str]:
    return dict(re.findall(r"│ ([^│]+?)\s+│\s+(\d+) │", output))


def test_check_reports_bad_key_and_exits_non_zero(tmp_path):
    config = tmp_path / "leadhub.yaml"
    config.write_text("stor: x.db\n")
    result = runner.invoke(app, ["check", "--config", str(config)])
    assert result.exit_code == 2
    assert "stor: unknown key" in result.stderr


def test_check_accepts_the_example_and_names_what_a_run_would_miss():
    result = runner.invoke(app, ["check", "--config", "config/leadhub.example.yaml"])
    assert result.exit_code == 1, result.stderr
    assert "config/leadhub.example.yaml: 1 source(s)" in result.stdout
    assert "config/imports: no such file or folder" in result.stdout


def test_check_passes_a_config_whose_paths_exist(tmp_path):
    (tmp_path / "imports").mkdir()
    config = tmp_path / "leadhub.yaml"
    config.write_text("sources:\n  - {type: files, paths: [imports/]}\n", encoding="utf-8")
    result = runner.invoke(app, ["check", "--config", str(config)])
    assert result.exit_code == 0, result.stdout
    assert "none yet; the first run creates it" in result.stdout
    assert not (tmp_path / "leadhub.db").exists()  # checking creates nothing


def test_check_needs_a_config():
    result = runner.invoke(app, ["check"])
    assert result.exit_code == 2 and "check needs --config" in result.stderr


def test_ingest_of_a_missing_path_fails_clearly(tmp_path):
    result = runner.invoke(app, ["ingest", str(tmp_path / "nope"), "--db", str(tmp_path / "x.db")])
    assert result.exit_code == 2
    assert "no such file or folder" in result.stderr


def test_run_needs_a_config():
    result = runner.invoke(app, ["run"])
    assert result.exit_code == 2
    assert "run needs --config" in result.stderr


def test_export_writes_the_three_tables(sample_store, tmp_path):
    result = runner.invoke(app, ["export", "--db", str(sample_store), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.stderr
    with (tmp_path / "contacts.csv").open(encoding="utf-8", newline="") as handle:
        contacts = list(csv.DictReader(handle))
    assert list(contacts[0])[:13] == [
        "contact_key", "name", "phone", "phone_display", "email", "company", "legal_form",
        "position", "city", "source", "first_seen", "last_seen", "leads_count"]
    assert len(contacts) == 43
    ivan = next(c for c in contacts if c["phone"] == "+79123456789")
    assert ivan["contact_key"].startswith("C-")
    assert (ivan["phone_display"], ivan["leads_count"]) == ("+7 (912) 345-67-89", "3")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", ivan["first_seen"])
    with (tmp_path / "leads.csv").open(encoding="utf-8", newline="") as handle:
        assert len(list(csv.DictReader(handle))) == 48
    with (tmp_path / "needs_review.csv").open(encoding="utf-8", newline="") as handle:
        review = list(csv.DictReader(handle))
    assert sorted(r["state"] for r in review) == ["quarantined"] + ["skipped"] * 4
    assert all(r["reason"] for r in review)


def test_export_rejects_an_unknown_preset(sample_store, tmp_path):
    result = runner.invoke(app, ["export", "--db", str(sample_store), "--out", str(tmp_path),
                                 "--preset", "tableau"])
    assert result.exit_code == 2
    assert "choose one of: looker" in result.stderr


def test_export_as_of_a_day_counts_nothing_after_it(sample_store, tmp_path):
    everything = runner.invoke(app, ["export", "--db", str(sample_store),
                                     "--out", str(tmp_path / "all")])
    early = runner.invoke(app, ["export", "--db", str(sample_store), "--out",
                                str(tmp_path / "early"), "--as-of", "2000-01-01"])
    assert everything.exit_code == early.exit_code == 0, early.stderr
    with (tmp_path / "early" / "leads.csv").open(encoding="utf-8", newline="") as handle:
        assert list(csv.DictReader(handle)) == []
    with (tmp_path / "all" / "leads.csv").open(encoding="utf-8", newline="") as handle:
        assert len(list(csv.DictReader(handle))) == 48


@pytest.mark.parametrize(
    ("options", "message"),
    [
        pytest.param(["--as-of", "30.11.2026"], "--as-of '30.11.2026': write the date as"
                     " YYYY-MM-DD", id="as-of-not-iso"),
        pytest.param(["--since", "2026-12-01", "--as-of", "2026-11-30"],
                     "--since 2026-12-01 is after --as-of 2026-11-30", id="since-after-as-of"),
    ],
)
def test_export_dates_that_cannot_work_say_why(sample_store, tmp_path, options, message):
    result = runner.invoke(app, ["export", "--db", str(sample_store), "--out", str(tmp_path),
                                 *options])
    assert result.exit_code == 2
    assert message in result.stderr


def test_status_shows_counts_and_review_reasons(sample_store):
    result = runner.invoke(app, ["status", "--db", str(sample_store)])
    assert result.exit_code == 0, result.stderr
    numbers = _numbers(result.stdout)
    assert (numbers["contacts"], numbers["contacts merged"], numbers["leads"],
            numbers["items quarantined"]) == ("43", "0", "48", "1")
    assert "no phone or email to reach the person" in result.stdout
    assert "bounce" in result.stdout


def test_status_of_a_missing_store_says_what_to_do(tmp_path):
    result = runner.invoke(app, ["status", "--db", str(tmp_path / "none.db")])
    assert result.exit_code == 2
    assert "run `leadhub ingest`" in result.stderr


@pytest.mark.slow
def test_demo_twice_gives_the_same_numbers(tmp_path):
    first = runner.invoke(app, ["demo", "--out", str(tmp_path)])
    second = runner.invoke(app, ["demo", "--out", str(tmp_path)])
    assert first.exit_code == second.exit_code == 0, first.stderr
    assert _numbers(first.stdout) == _numbers(second.stdout)
    assert _numbers(first.stdout)["new leads"] == "48"
    assert (tmp_path / "contacts.csv").exists() and (tmp_path / "leads.csv").exists()


def test_serve_needs_a_config():
    result = runner.invoke(app, ["serve"])
    assert result.exit_code == 2
    assert "serve needs --config" in result.stderr


@pytest.mark.slow
def test_serve_runs_the_intake_on_its_schedule(tmp_path, monkeypatch):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "a.jsonl").write_text('{"name": "Анна", "phone": "8 912 345 67 89"}\n')
    config = tmp_path / "leadhub.yaml"
    config.write_text("store: leadhub.db\nsources:\n  - type: files\n    paths: [inbox]\n")
    result = runner.invoke(app, ["serve", "--config", str(config), "--interval", "10",
                                 "--max-runs", "2"])
    assert result.exit_code == 0, result.stderr
    runs = re.findall(r"Run \d at", result.stdout)
    assert len(runs) == 2
    assert [n["new leads"] for n in map(_numbers, result.stdout.split("Run 2 at"))] == ["1", "0"]


def test_serve_only_web_needs_a_webhook_source(tmp_path):
    config = tmp_path / "leadhub.yaml"
    config.write_text("sources:\n  - type: files\n    paths: [inbox]\n")
    result = runner.invoke(app, ["serve", "--config", str(config), "--only", "web"])
    assert result.exit_code == 2
    assert "has no source of type webhook" in result.stderr
    result = runner.invoke(app, ["serve", "--config", str(config), "--only", "ftp"])
    assert result.exit_code == 2 and "use web or mail" in result.stderr


def _sheets_config(tmp_path, fake, spreadsheet, monkeypatch) -> Path:
    import json

    monkeypatch.setenv("TEST_SHEETS_KEY", json.dumps(fake.service_account_key()))
    config = tmp_path / "leadhub.yaml"
    config.write_text(
        "store: leadhub.db\nsinks:\n  - type: sheets\n"
        f"    spreadsheet: {spreadsheet}\n    credentials: ${{TEST_SHEETS_KEY}}\n"
        f"    base_url: {fake.url}\n", encoding="utf-8")
    return config


def test_check_then_schema_init_then_sync_a_sheet(tmp_path, monkeypatch):
    from tests.fakes.sheets import FakeSheets
    from tests.flows.crm_helpers import seed

    with FakeSheets() as fake:
        spreadsheet = fake.create_spreadsheet("CRM")
        config = _sheets_config(tmp_path, fake, spreadsheet, monkeypatch)
        seed(tmp_path / "leadhub.db", 5)

        before = runner.invoke(app, ["check", "--config", str(config)])
        assert before.exit_code == 1
        assert "worksheet 'Contacts' is missing" in before.stdout

        init = runner.invoke(app, ["schema", "init", "sheets", "--config", str(config)])
        assert init.exit_code == 0, init.stderr
        assert "+ worksheet Contacts" in init.stdout
        assert runner.invoke(app, ["check", "--config", str(config)]).exit_code == 0

        synced = runner.invoke(app, ["sync", "--config", str(config)])
        assert synced.exit_code == 0, synced.stderr
        numbers = _numbers(synced.stdout)
        assert numbers["rows created"] == "10"  # 5 contacts, 5 leads
        assert int(numbers["API calls"]) <= 10


def test_schema_init_of_a_sink_that_is_not_configured(tmp_path):
    config = tmp_path / "leadhub.yaml"
    config.write_text("store: leadhub.db\n", encoding="utf-8")
    result = runner.invoke(app, ["schema", "init", "airtable", "--config", str(config)])
    assert result.exit_code == 2
    assert "no airtable sink" in result.stderr
