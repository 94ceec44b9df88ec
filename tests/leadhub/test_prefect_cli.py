"""`leadhub limits`: the shared rate limits a config's sinks need, shown with
the command that makes each, and made on the Prefect server when missing."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from leadhub import cli_common
from leadhub.cli import app

runner = CliRunner()
BASE = "appLIMITSCLI00001"


@pytest.fixture
def config(tmp_path, monkeypatch):
    monkeypatch.setattr(cli_common.console, "width", 200)
    path = tmp_path / "leadhub.yaml"
    path.write_text(f"store: {tmp_path / 'leadhub.db'}\n"
                    f"sinks:\n  - {{type: airtable, base: {BASE}, token: pat}}\n",
                    encoding="utf-8")
    return path


def test_the_limits_of_the_sinks_are_listed_with_their_command(config):
    result = runner.invoke(app, ["limits", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert f"prefect gcl create airtable-{BASE} --limit 1 --slot-decay-per-second 3.9216" in (
        result.output)


def test_creating_them_needs_a_server(config, monkeypatch):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    result = runner.invoke(app, ["limits", "create", "--config", str(config)])
    assert result.exit_code == 2
    assert "set PREFECT_API_URL" in result.output


def test_missing_limits_are_made_once(config, monkeypatch, prefect_api):
    from prefect.settings import PREFECT_API_URL

    monkeypatch.setenv("PREFECT_API_URL", PREFECT_API_URL.value())
    first = runner.invoke(app, ["limits", "create", "--config", str(config)])
    again = runner.invoke(app, ["limits", "create", "--config", str(config)])
    assert f"created: airtable-{BASE} (limit 1, slot decay 3.9216/s)" in first.output
    assert f"exists: airtable-{BASE} (left as it is)" in again.output
