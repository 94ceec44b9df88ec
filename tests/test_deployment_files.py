"""docker-compose.yml and prefect.yaml, read the way Docker and Prefect read
them (Docker cannot run here): every command a service runs is a real
leadhub, prefect or uvicorn command with options that exist, every variable
the deployments need is set, and every deployment names a flow and its
parameters as flows/deployments.py has them."""

from __future__ import annotations

import inspect
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
PREFECT = yaml.safe_load((ROOT / "prefect.yaml").read_text(encoding="utf-8"))
SERVICES = COMPOSE["services"]
LEADHUB_SERVICES = ("setup", "worker", "web")


def _commands(service: dict) -> list[list[str]]:
    """The commands a service runs: its command, or each step of an `sh -c`."""
    command = service["command"]
    if command[:2] == ["sh", "-c"]:
        steps = re.split(r"&&|\|\|", command[2])
        return [shlex.split(step.strip(" ()\n").split(">")[0]) for step in steps]
    return [command]


def _leadhub_parses(args: list[str]) -> None:
    """The command and its options exist (`--help` after them: nothing runs)."""
    from typer.testing import CliRunner

    from leadhub.cli import app

    result = CliRunner().invoke(app, [*args, "--help"])
    assert result.exit_code == 0, f"leadhub {' '.join(args)}: {result.output}"


def _prefect_help(args: list[str]) -> str:
    subcommand = [word for word in args if not word.startswith("-")][:2]
    done = subprocess.run([sys.executable, "-m", "prefect", *subcommand, "--help"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"prefect {' '.join(subcommand)}: {done.stderr}"
    return done.stdout


def test_the_set_up_has_its_services():
    assert {"postgres", "prefect-server", "setup", "worker", "web", "proxy"} <= set(SERVICES)
    assert SERVICES["worker"]["deploy"]["replicas"] >= 2
    assert SERVICES["web"]["deploy"]["replicas"] >= 2  # the endpoint runs as replicas
    assert "ports" not in SERVICES["web"]  # replicas cannot share a host port: the proxy has it


@pytest.mark.parametrize("service", LEADHUB_SERVICES)
def test_leadhub_commands_of_a_service_exist_with_their_options(service):
    for command in _commands(SERVICES[service]):
        if command[0] == "leadhub":
            _leadhub_parses(command[1:])


@pytest.mark.slow
@pytest.mark.parametrize("service", ("prefect-server", "setup", "worker"))
def test_prefect_commands_of_a_service_exist_with_their_options(service):
    for command in _commands(SERVICES[service]):
        if command[0] != "prefect":
            continue
        args = [word for word in command[1:] if word != "--no-prompt"]
        text = _prefect_help(args)
        for option in (word for word in args if word.startswith("--")):
            assert option in text, f"prefect {' '.join(args)}: no option {option}"


def test_the_web_replicas_run_the_form_endpoint_from_the_config():
    from connectors.webhook import app_for

    command = SERVICES["web"]["command"]
    assert command[:3] == ["uvicorn", "--factory", "connectors.webhook:app_for"]
    assert callable(app_for)
    config = SERVICES["web"]["environment"]["LEADHUB_CONFIG"]
    assert f"{Path(config).parent}" in {volume.split(":")[1].rsplit("/", 1)[0]
                                        for volume in SERVICES["web"]["volumes"]}


@pytest.mark.parametrize("service", LEADHUB_SERVICES)
def test_every_variable_prefect_yaml_needs_is_set(service):
    needed = set(re.findall(r"\{\{ \$(\w+) \}\}", (ROOT / "prefect.yaml").read_text()))
    assert needed <= set(SERVICES[service]["environment"])


def test_workers_reach_the_server_and_the_pool_of_the_deployments():
    api = SERVICES["worker"]["environment"]["PREFECT_API_URL"]
    server = SERVICES["prefect-server"]["command"]
    assert api == f"http://prefect-server:{server[server.index('--port') + 1]}/api"
    pools = {deployment["work_pool"]["name"] for deployment in PREFECT["deployments"]}
    assert pools == {SERVICES["worker"]["command"][SERVICES["worker"]["command"].index(
        "--pool") + 1]}


def test_prefect_runs_on_the_postgres_service_with_its_own_database():
    url = SERVICES["prefect-server"]["environment"]["PREFECT_API_DATABASE_CONNECTION_URL"]
    assert url.startswith("postgresql+asyncpg://leadhub:") and "@postgres:5432/prefect" in url
    init = (ROOT / "deploy" / "postgres-init.sql").read_text()
    assert "CREATE DATABASE prefect" in init


@pytest.mark.parametrize("deployment", PREFECT["deployments"], ids=lambda d: d["name"])
def test_each_deployment_names_a_flow_and_its_parameters(deployment):
    import flows.deployments

    path, _, name = deployment["entrypoint"].partition(":")
    assert path == "flows/deployments.py"
    flow = getattr(flows.deployments, name)
    accepted = set(inspect.signature(flow.fn).parameters)
    assert set(deployment["parameters"]) <= accepted
    assert deployment["work_pool"]["name"] == "leadhub"


def test_a_source_reads_alone_and_syncs_have_deployments_of_their_own():
    intakes = [d for d in PREFECT["deployments"] if d["entrypoint"].endswith(":intake")]
    assert intakes and all(d["parameters"].get("follow_up") is False for d in intakes)
    assert all("source" in d["parameters"] or "sources" in d["parameters"] for d in intakes)
    assert {d["parameters"]["sink"] for d in PREFECT["deployments"]
            if d["entrypoint"].endswith(":sync")} == {"airtable", "sheets"}
