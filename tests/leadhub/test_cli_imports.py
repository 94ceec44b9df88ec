"""Each command loads only what it needs, so it starts in about a second: no
Prefect, server or pandas without --prefect, and no client library of a
source, sink or channel the config does not have. Each command runs as
`leadhub` would, in a fresh interpreter, which then names what it loaded."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from leadhub.cli import app

pytestmark = pytest.mark.slow

PROBE = """
import json, sys
from leadhub.cli import app
report, sys.argv = sys.argv[1], ["leadhub", *sys.argv[2:]]
code = 0
try:
    app()
except SystemExit as end:
    code = end.code or 0
with open(report, "w", encoding="utf-8") as out:
    json.dump({"exit": code, "modules": sorted(sys.modules)}, out)
"""
# A Prefect server's stack and pandas: seconds of start-up between them.
SERVER_STACK = ("prefect", "fastapi", "uvicorn", "pandas")
CLIENTS = ("pyairtable", "gspread", "imapclient", "apprise")


def loaded(tmp_path: Path, *args: str) -> set[str]:
    """The modules a `leadhub` command loaded, run without a Prefect server configured."""
    report = tmp_path / "modules.json"
    env = {name: value for name, value in os.environ.items() if not name.startswith("PREFECT_")}
    done = subprocess.run([sys.executable, "-c", PROBE, str(report), *args], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=120)
    result = json.loads(report.read_text(encoding="utf-8"))
    assert result["exit"] == 0, done.stderr
    return set(result["modules"])


def imported(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return [name for name in names
            if any(module == name or module.startswith(name + ".") for module in modules)]


@pytest.fixture
def workspace(tmp_path) -> Path:
    """A store with a few leads, a CSV to ingest, and a config with a files source."""
    leads = tmp_path / "leads.csv"
    leads.write_text("Name,Phone,Email\nАнна Смирнова,+79131234567,anna@example.ru\n",
                     encoding="utf-8")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "more.csv").write_text("Name,Phone\nОлег Титов,+79137654321\n", encoding="utf-8")
    (tmp_path / "files.yaml").write_text(
        "store: leadhub.db\nsources:\n  - {type: files, name: inbox, paths: [inbox/]}\n",
        encoding="utf-8")
    result = CliRunner().invoke(app, ["ingest", str(leads), "--db", str(tmp_path / "leadhub.db")])
    assert result.exit_code == 0, result.stderr
    return tmp_path


@pytest.mark.parametrize(("args", "not_loaded"), [
    pytest.param(["--help"], (*SERVER_STACK, "sqlalchemy", "leadhub.settings"), id="help"),
    pytest.param(["status", "--db", "leadhub.db"],
                 (*SERVER_STACK, *CLIENTS, "alembic", "bs4", "sqlalchemy.orm",
                  "sqlalchemy.dialects.postgresql"), id="status"),
    pytest.param(["check", "--config", "files.yaml"], (*SERVER_STACK, *CLIENTS), id="check"),
    pytest.param(["ingest", "leads.csv", "--db", "leadhub.db"],
                 (*SERVER_STACK, *CLIENTS, "bs4"), id="ingest-csv"),
    pytest.param(["run", "--config", "files.yaml"], (*SERVER_STACK, *CLIENTS), id="run-files"),
    pytest.param(["replay", "--db", "leadhub.db"], (*SERVER_STACK, *CLIENTS), id="replay"),
    pytest.param(["export", "--db", "leadhub.db", "--out", "bi"], (*SERVER_STACK, *CLIENTS),
                 id="export"),
])
def test_a_command_loads_only_what_it_needs(workspace, args, not_loaded):
    assert imported(loaded(workspace, *args), not_loaded) == []


def test_sync_to_a_sheet_loads_no_airtable_client(tmp_path, monkeypatch):
    from tests.fakes.sheets import FakeSheets

    with FakeSheets() as fake:
        monkeypatch.setenv("TEST_SHEETS_KEY", json.dumps(fake.service_account_key()))
        (tmp_path / "sheets.yaml").write_text(
            "store: leadhub.db\nsinks:\n  - type: sheets\n"
            f"    spreadsheet: {fake.create_spreadsheet('CRM')}\n"
            f"    credentials: ${{TEST_SHEETS_KEY}}\n    base_url: {fake.url}\n",
            encoding="utf-8")
        runner = CliRunner()
        config = str(tmp_path / "sheets.yaml")
        assert runner.invoke(app, ["schema", "init", "sheets", "--config", config]).exit_code == 0
        (tmp_path / "leads.csv").write_text("Name,Phone\nОлег Титов,+79137654321\n",
                                            encoding="utf-8")
        ingest = ["ingest", str(tmp_path / "leads.csv"), "--db", str(tmp_path / "leadhub.db")]
        assert runner.invoke(app, ingest).exit_code == 0
        modules = loaded(tmp_path, "sync", "--config", "sheets.yaml")
    assert "gspread" in modules  # the sync really reached the sheet's client
    assert imported(modules, (*SERVER_STACK, "pyairtable", "imapclient", "apprise")) == []
