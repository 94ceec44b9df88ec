"""The scaled-out set-up for real: a Prefect server on PostgreSQL, the
deployments of prefect.yaml on a process work pool, two workers, and two
intake deployments (one source, and a group of two) running at once into
one PostgreSQL store, one worker killed with SIGKILL in the middle of its run.

Afterwards the store holds what one process on SQLite makes of the same files:
every lead once, no contact twice (the sources share people, so both workers
match the same people at once), and each run's summary artifact is on the
server. Nothing is timed: the test waits for states, with long deadlines.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from tests.conditions import wait_until
from tests.store import query

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
POOL = "leadhub"  # the work pool prefect.yaml deploys to
ROWS = {"sales": (0, 1200), "imports": (600, 600), "support": (1000, 400)}
SERVER_WAIT = 300.0  # a run on a loaded 2-core machine, server, workers and all
SURNAMES = ("Иванов", "Петров", "Смирнов", "Кузнецов", "Попов", "Соколов", "Лебедев")
NAMES = ("Анна", "Борис", "Вера", "Глеб", "Дарья", "Егор", "Жанна", "Захар", "Инна")


def _person(number: int) -> str:
    """One person: a name, a mobile and a mailbox of their own."""
    name = f"{NAMES[number % len(NAMES)]} {SURNAMES[number // len(NAMES) % len(SURNAMES)]}"
    line = 2_345_000 + number
    phone = f"+7 916 {line // 10000:03d}-{line // 100 % 100:02d}-{line % 100:02d}"
    return f"{name},{phone},person{number}@mail.ru"


def _config(folder, store: str):
    """Three files sources; `imports` and `support` share people with `sales`
    (each file's rows are inquiries of their own: a lead each)."""
    lines = [f"store: {store}", "sources:"]
    for name, (first, count) in ROWS.items():
        path = folder / f"{name}.csv"
        path.write_text("Имя,Телефон,Email,Комментарий\n" + "\n".join(
            f"{_person(number)},{name}: перезвоните" for number in range(first, first + count)
        ) + "\n", encoding="utf-8")
        lines += [f"  - {{type: files, name: {name}, paths: [{path}]}}"]
    config = folder / "leadhub.yaml"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return config


def _counts(store: str) -> dict[str, int]:
    return {
        "leads": query(store, "SELECT count(*) FROM leads")[0][0],
        "contacts": query(store, "SELECT count(DISTINCT contact_key) FROM leads")[0][0],
        "items left": query(store, "SELECT count(*) FROM raw_items WHERE state = 'new'")[0][0],
        "items": query(store, "SELECT count(*) FROM raw_items")[0][0],
        "leads of one item twice": query(
            store, "SELECT count(*) FROM (SELECT raw_item_id FROM leads GROUP BY raw_item_id"
                   " HAVING count(*) > 1) AS twice")[0][0],
    }


def _one_process_on_sqlite(config, folder) -> dict[str, int]:
    from flows.intake import run_intake
    from leadhub.settings import load_settings

    store = str(folder / "reference.db")
    run_intake(load_settings(config, store=store))
    return _counts(store)


def _run(client, deployment: str):
    found = client.read_deployment_by_name(f"intake/{deployment}")
    return client.create_flow_run_from_deployment(found.id).id


def _state(client, run_id) -> str:
    return client.read_flow_run(run_id).state.type.value


def _busy_worker(server) -> int | None:
    """A worker that is running a flow (a flow run is its child process)."""
    from tests.prefect_server import children

    for worker in server.workers:
        if worker.poll() is None and children(worker.pid):
            return worker.pid
    return None


def _artifact_rows(client, key: str) -> list[dict]:
    response = client.request("POST", "/artifacts/filter", json={
        "artifacts": {"key": {"any_": [key]}}, "limit": 10, "offset": 0,
        "sort": "UPDATED_DESC"})
    return [json.loads(artifact["data"]) for artifact in response.json()]


def test_two_workers_share_one_store_and_a_killed_worker_loses_and_doubles_nothing(
        cluster, postgres, tmp_path):
    from prefect.states import Crashed

    from connectors.ledger import Ledger
    from tests.prefect_server import kill_with_children, survives

    store = postgres.new_database()
    Ledger(store, create=True).close()  # `leadhub store migrate`, as the set-up does
    config = _config(tmp_path, store)
    expected = _one_process_on_sqlite(config, tmp_path)
    cluster.cli("work-pool", "create", POOL, "--type", "process")
    deploy_env = {"LEADHUB_HOME": str(ROOT), "LEADHUB_CONFIG": str(config),
                  "LEADHUB_EXPORT_DIR": str(tmp_path / "export")}
    cluster.deploy("--all", extra_env=deploy_env)
    for _ in range(2):
        cluster.start_worker(POOL)

    with cluster.client() as client:
        runs = {name: _run(client, name)
                for name in ("intake-sales", "intake-imports-and-support")}
        wait_until(lambda: query(store, "SELECT count(*) FROM raw_items")[0][0] > 0
                   and _busy_worker(cluster) is not None, SERVER_WAIT,
                   "items arriving from a running worker")
        kill_with_children(_busy_worker(cluster), signal.SIGKILL)
        # Prefect cannot tell a dead machine from a slow one; an operator (or
        # Prefect's heartbeat automation) marks the lost run crashed.
        lost = [run for run in runs.values() if _state(client, run) in ("RUNNING", "PENDING")
                and not survives(cluster, client, run)]
        for run in lost:
            client.set_flow_run_state(run, Crashed(message="its worker was killed"))
        cluster.start_worker(POOL)  # the machine comes back
        # The next round of the schedule: every intake deployment once more.
        again = [_run(client, name) for name in runs]
        final = [*again, *(run for run in runs.values()
                           if _state(client, run) not in ("CRASHED", "FAILED"))]
        wait_until(lambda: all(_state(client, run) in ("COMPLETED", "FAILED", "CRASHED")
                               for run in final), SERVER_WAIT, "the runs ending")
        assert {_state(client, run) for run in again} == {"COMPLETED"}
        summaries = _artifact_rows(client, "leadhub-intake")

    assert lost  # the worker was killed in the middle of a run
    assert _counts(store) == expected
    assert expected["leads"] == sum(count for _, count in ROWS.values())
    assert expected["contacts"] == 1400  # people 0..1399, many in two files
    assert any(row["what"] == "new_leads" for rows in summaries for row in rows)
