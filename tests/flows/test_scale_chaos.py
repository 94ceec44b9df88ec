"""Issue #15's scale test: four workers of a real Prefect server (on
PostgreSQL) ingest LEADHUB_SCALE_ITEMS file rows (100,000 by hand, fewer in
CI) from eight sources that share people into one PostgreSQL store, while
four Airtable sinks in one base of the local Airtable sync on the workers
too. Two workers are killed with SIGKILL at random moments (the moments and
the victims come from a seed, LEADHUB_SCALE_SEED, printed so a failure can
be replayed) and come back.

Afterwards no item is lost, no lead is there twice, no person is two
contacts, every alert reached the local webhook once (alerts on quarantined
rows one by one, alerts on one source's leads combined into bursts), and the
Airtable server never answered 429 although four syncs sent at once (they
share the Prefect rate limit). Nothing is timed: the test waits for states
and counts, with deadlines long enough for a busy 2-core machine.
"""

from __future__ import annotations

import os
import random
import re
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml
from sqlalchemy import create_engine, text

from tests.conditions import wait_until
from tests.connectors.test_notify import WebhookReceiver
from tests.fakes.airtable import FakeAirtable
from tests.flows.test_scale_out import _person

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
POOL = "leadhub"
ITEMS = int(os.environ.get("LEADHUB_SCALE_ITEMS", "8000"))
SEED = int(os.environ.get("LEADHUB_SCALE_SEED") or random.SystemRandom().randrange(10**6))
SOURCES = tuple(f"s{number}" for number in range(1, 9))
SINKS = tuple(f"crm-{number}" for number in range(1, 5))
WORKERS = 4
RUNS_PER_WORKER = 4  # 8 intakes and 4 syncs at once fit in the 4 workers, with room
KILLS = 2
NO_CONTACT_EVERY = 250  # every 250th row has neither phone nor email: quarantined
ALERTED_SOURCE = "s1"  # its leads are alerted on (in bursts, combined)
BASE = "appSCALEBASE00001"
TOKEN = "patSCALE.secret"
REVIEW_TITLE = "На разбор: "
POLL_SECONDS = 0.5
# a run on a loaded 2-core machine: at worst 20 items a second, and a start
WAIT = 900.0 + ITEMS / 20
TABLES = ("contacts", "leads", "needs_review", "orders", "order_items", "tasks",
          "possible_duplicates")


def _source_rows(index: int) -> list[tuple[int | None, str]]:
    """One source's rows: (person number or None, CSV line). Source i starts
    half a source further on in the people than source i-1, so each person
    writes from two or three sources."""
    per_source, people = ITEMS // len(SOURCES), ITEMS // 2
    rows = []
    for row in range(per_source):
        if row % NO_CONTACT_EVERY == NO_CONTACT_EVERY - 1:
            rows.append((None, f"Без контакта {index}-{row},,,{SOURCES[index]}: позвоните"))
            continue
        person = (index * per_source // 2 + row) % people
        rows.append((person, f"{_person(person)},{SOURCES[index]}: перезвоните"))
    return rows


def _config(folder: Path, store: str, airtable: str, webhook: str) -> tuple[Path, dict]:
    """The sources, the four sinks, the channels and the alert rules; and
    what the store must end up holding."""
    sources, people, leads = [], set(), Counter()
    for index, name in enumerate(SOURCES):
        rows = _source_rows(index)
        path = folder / f"{name}.csv"
        path.write_text("Имя,Телефон,Email,Комментарий\n"
                        + "\n".join(line for _, line in rows) + "\n", encoding="utf-8")
        sources.append({"type": "files", "name": name, "paths": [str(path)]})
        people |= {person for person, _ in rows if person is not None}
        leads[name] = sum(person is not None for person, _ in rows)
    sinks = [{"type": "airtable", "name": sink, "base": BASE, "token": "${AIRTABLE_TOKEN}",
              "endpoint_url": airtable,
              "tables": {table: {"title": f"{table} {sink}"} for table in TABLES}}
             for sink in SINKS]
    config = {
        "store": store, "sources": sources, "sinks": sinks,
        "channels": {"review": {"url": webhook, "batch_over": ITEMS}, "team": webhook},
        "alerts": [
            {"name": "review", "events": ["quarantined"], "channels": ["review"],
             "title": REVIEW_TITLE + "{item_id}"},
            {"name": "leads-of-s1", "events": ["new_lead"], "channels": ["team"],
             "sources": [ALERTED_SOURCE]},
        ],
    }
    path = folder / "leadhub.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    expected = {"items": len(SOURCES) * (ITEMS // len(SOURCES)),
                "leads": sum(leads.values()), "contacts": len(people),
                "alerted leads": leads[ALERTED_SOURCE]}
    expected["quarantined"] = expected["items"] - expected["leads"]
    return path, expected


def _prefect_file(folder: Path) -> Path:
    """prefect.yaml with a deployment per source and per sink, as the README
    tells an agency to name them; the alerts deployment as it is."""
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text(encoding="utf-8"))
    intake = spec.pop("definitions")["intake"]
    sync = next(d for d in spec["deployments"] if d["name"] == "sync-airtable")
    alerts = next(d for d in spec["deployments"] if d["name"].startswith("alerts"))
    spec["deployments"] = [
        *({**intake, "name": f"intake-{source}", "parameters": {
            "config": "{{ $LEADHUB_CONFIG }}", "source": source, "follow_up": False}}
          for source in SOURCES),
        *({**sync, "name": f"sync-{sink}", "parameters": {**sync["parameters"], "sink": sink}}
          for sink in SINKS),
        {**alerts, "name": "alerts"},
    ]
    path = folder / "prefect.yaml"
    path.write_text(yaml.safe_dump(spec, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


class CountingAirtable(FakeAirtable):
    """The local Airtable on the real clock with Airtable's own penalty,
    noting when each request arrived."""

    def __init__(self) -> None:
        super().__init__(TOKEN, bases=(BASE,), penalty_seconds=30.0)
        self.arrivals: list[float] = []
        self._noting = threading.Lock()

    def _admit(self, base_id):
        with self._noting:
            self.arrivals.append(time.monotonic())
        return super()._admit(base_id)

    def busiest_second(self) -> int:
        times, best, first = sorted(self.arrivals), 0, 0
        for last, moment in enumerate(times):
            while moment - times[first] >= 1.0:
                first += 1
            best = max(best, last - first + 1)
        return best


class Cluster:
    """The test's view of the server, its workers and the store, polled at
    most every POLL_SECONDS: which run each deployment has, and keeping the
    four syncs going while the intake lasts."""

    def __init__(self, server, client, store: str, worker_env: dict[str, str]):
        self.server, self.client, self.worker_env = server, client, worker_env
        self.engine = create_engine(store.replace("postgresql://", "postgresql+psycopg://", 1))
        self.latest: dict[str, object] = {}
        self.deployments = {}
        self.keep_syncing = False
        self.most_syncing = 0
        self._polled = 0.0

    def start(self, name: str):
        if name not in self.deployments:
            flow = name.split("-")[0]  # intake-s1 of the flow intake, sync-crm-1 of sync
            self.deployments[name] = self.client.read_deployment_by_name(f"{flow}/{name}").id
        self.latest[name] = self.client.create_flow_run_from_deployment(
            self.deployments[name]).id
        return self.latest[name]

    def state(self, run_id) -> str:
        return self.client.read_flow_run(run_id).state.type.value

    def finished(self, name: str) -> bool:
        return self.state(self.latest[name]) in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")

    def count(self, sql: str) -> int:
        with self.engine.connect() as connection:
            return connection.execute(text(sql)).scalar_one()

    def processed(self) -> int:
        return self.count("SELECT count(*) FROM raw_items WHERE state <> 'new'")

    def tick(self) -> bool:
        """False until POLL_SECONDS have passed since the last look; then
        one look: the syncs are started again while they are to keep going."""
        if time.monotonic() - self._polled < POLL_SECONDS:
            return False
        self._polled = time.monotonic()
        syncing = 0
        for name in (f"sync-{sink}" for sink in SINKS if f"sync-{sink}" in self.latest):
            if self.keep_syncing and self.finished(name):
                self.start(name)
            syncing += self.state(self.latest[name]) == "RUNNING"
        self.most_syncing = max(self.most_syncing, syncing)
        return True

    def until(self, condition, what: str, timeout: float = WAIT) -> None:
        wait_until(lambda: self.tick() and condition(), timeout, what)

    def intake_workers(self) -> list:
        """The live workers running an intake run's process."""
        from tests.prefect_server import children

        pids = set()
        for name in SOURCES:
            run = self.client.read_flow_run(self.latest[f"intake-{name}"])
            pid = (run.infrastructure_pid or "").rpartition(":")[2]
            if run.state.type.value == "RUNNING" and pid.isdigit():
                pids.add(int(pid))
        return [worker for worker in self.server.workers
                if worker.poll() is None and pids & set(children(worker.pid))]

    def kill(self, worker) -> list[str]:
        """SIGKILL a worker and its runs; mark the runs it lost crashed (as an
        operator does), bring a worker back, and start the lost runs again."""
        from prefect.states import Crashed

        from tests.prefect_server import kill_with_children, survives

        kill_with_children(worker.pid, signal.SIGKILL)
        worker.wait()
        lost = [name for name, run in self.latest.items()
                if self.state(run) in ("RUNNING", "PENDING")
                and not survives(self.server, self.client, run)]
        for name in lost:
            self.client.set_flow_run_state(self.latest[name],
                                           Crashed(message="its worker was killed"), force=True)
        self.server.start_worker(POOL, self.worker_env, limit=RUNS_PER_WORKER)
        for name in lost:
            self.start(name)
        return lost

    def stop_syncs(self) -> None:
        """Cancel the syncs still running: with the whole store to write at
        5 requests a second they would go on for hours."""
        from prefect.states import Cancelling

        self.keep_syncing = False
        for sink in SINKS:
            run = self.latest[f"sync-{sink}"]
            if not self.finished(f"sync-{sink}"):
                self.client.set_flow_run_state(run, Cancelling(), force=True)
        self.until(lambda: all(self.finished(f"sync-{sink}") for sink in SINKS),
                   "the syncs stopping", 600.0)


def _store_counts(store_engine) -> dict[str, int]:
    one = {
        "items": "SELECT count(*) FROM raw_items",
        "items left": "SELECT count(*) FROM raw_items WHERE state = 'new'",
        "quarantined": "SELECT count(*) FROM raw_items WHERE state = 'quarantined'",
        "leads": "SELECT count(*) FROM leads",
        "leads of one item twice": "SELECT count(*) FROM (SELECT raw_item_id FROM leads"
                                   " GROUP BY raw_item_id HAVING count(*) > 1) AS twice",
        "contacts": "SELECT count(*) FROM contacts WHERE merged_into IS NULL",
        "contacts of the leads": "SELECT count(DISTINCT contact_key) FROM leads",
        "phones of two contacts": (
            "SELECT count(*) FROM (SELECT i.value FROM identities i JOIN contacts c"
            " ON c.contact_key = i.contact_key WHERE c.merged_into IS NULL AND i.kind = 'phone'"
            " GROUP BY i.value HAVING count(DISTINCT i.contact_key) > 1) AS shared"),
        "alerts not sent": "SELECT count(*) FROM alerts WHERE state <> 'sent'",
    }
    with store_engine.connect() as connection:
        return {what: connection.execute(text(sql)).scalar_one() for what, sql in one.items()}


def _received(webhook) -> tuple[Counter, int]:
    """The quarantined items' alerts by item id, and how many lead alerts
    came (a burst is one message that counts its alerts in the title)."""
    review, leads = Counter(), 0
    for post in webhook.posts:
        title = post["title"]
        if title.startswith(REVIEW_TITLE):
            review[title.removeprefix(REVIEW_TITLE)] += 1
        elif burst := re.search(r"\((\d+)\)$", title):
            leads += int(burst.group(1))
        else:
            leads += 1
    return review, leads


def test_four_workers_two_killed_lose_and_double_nothing_and_never_pass_airtable_limit(
        cluster, postgres, tmp_path, monkeypatch):
    from connectors.ledger import Ledger
    from flows.sync import build_sink
    from leadhub.settings import load_settings

    rng = random.Random(SEED)
    moments = sorted(rng.uniform(0.15, 0.75) for _ in range(KILLS))
    print(f"LEADHUB_SCALE_SEED={SEED} LEADHUB_SCALE_ITEMS={ITEMS}: kills when"
          f" {', '.join(f'{m:.3f}' for m in moments)} of the items are processed")
    store = postgres.new_database()
    Ledger(store, create=True).close()
    with CountingAirtable() as airtable, WebhookReceiver() as webhook:
        config, expected = _config(tmp_path, store, airtable.url, webhook.url)
        monkeypatch.setenv("AIRTABLE_TOKEN", TOKEN)  # the config names it, as a user's does
        settings = load_settings(config)
        for sink in SINKS:  # `leadhub schema init airtable`, once per sink
            build_sink(settings, sink)[0].init_schema()
        airtable.reset_calls()
        airtable.arrivals.clear()
        cluster.cli("work-pool", "create", POOL, "--type", "process")
        cluster.deploy("--all", "--prefect-file", str(_prefect_file(tmp_path)), extra_env={
            "LEADHUB_HOME": str(ROOT), "LEADHUB_CONFIG": str(config),
            "LEADHUB_EXPORT_DIR": str(tmp_path / "export")})
        worker_env = {"AIRTABLE_TOKEN": TOKEN}
        for _ in range(WORKERS):
            cluster.start_worker(POOL, worker_env, limit=RUNS_PER_WORKER)

        with cluster.client() as client:
            view = Cluster(cluster, client, store, worker_env)
            view.start("alerts")  # the rules' marks, on the empty store
            view.until(lambda: view.finished("alerts"), "the first alerts run")
            for source in SOURCES:
                view.start(f"intake-{source}")
            for sink in SINKS:
                view.start(f"sync-{sink}")
            view.keep_syncing = True
            kills = []
            for moment in moments:
                busy = []

                def due(moment=moment, busy=busy):
                    if view.processed() < moment * expected["items"]:
                        return False
                    busy[:] = sorted(view.intake_workers(), key=lambda worker: worker.pid)
                    return bool(busy)

                view.until(due, f"{moment:.0%} of the items processed")
                victim = rng.choice(busy)
                kills.append((view.processed(), cluster.workers.index(victim) + 1,
                              view.kill(victim)))
            view.start("alerts")  # while the intake goes on
            view.until(lambda: all(view.finished(f"intake-{s}") for s in SOURCES),
                       "the intake runs ending")
            intake_states = {s: client.read_flow_run(view.latest[f"intake-{s}"]).state
                             for s in SOURCES}
            for _ in range(2):  # what came after the last alerts run; then nothing more
                view.until(lambda: view.finished("alerts"), "the alerts run ending")
                view.start("alerts")
            view.until(lambda: view.finished("alerts"), "the last alerts run ending")
            alert_states = view.state(view.latest["alerts"])
            # every sink has written some contacts: a sync a kill lost starts
            # again and may not have sent anything yet when the intake ends
            view.until(lambda: all(airtable.record_count(BASE, f"contacts {sink}")
                                   for sink in SINKS), "every sink syncing contacts")
            view.stop_syncs()
        counts = _store_counts(view.engine)
        view.engine.dispose()
        synced = {sink: len(airtable.table_records(BASE, f"contacts {sink}")) for sink in SINKS}
        refused, busiest = airtable.calls["rate_limited"], airtable.busiest_second()
        requests = len(airtable.arrivals)
        review, lead_alerts = _received(webhook)
    print(f"kills (items processed, worker, runs lost): {kills}; store: {counts};"
          f" Airtable: {requests} requests, {refused} refused, at most {busiest} in a second,"
          f" contacts synced per sink {synced}, {view.most_syncing} syncs at once;"
          f" alerts: {sum(review.values())} on quarantined items, {lead_alerts} on leads")

    assert len(kills) == KILLS and all(lost for _, _, lost in kills)
    assert {state.type.value for state in intake_states.values()} == {"COMPLETED"}, {
        source: (state.type.value, state.message) for source, state in intake_states.items()}
    assert alert_states == "COMPLETED"
    assert counts == {
        "items": expected["items"], "items left": 0, "quarantined": expected["quarantined"],
        "leads": expected["leads"], "leads of one item twice": 0,
        "contacts": expected["contacts"], "contacts of the leads": expected["contacts"],
        "phones of two contacts": 0, "alerts not sent": 0}
    assert len(review) == expected["quarantined"] and set(review.values()) == {1}
    assert lead_alerts == expected["alerted leads"]
    assert refused == 0 and busiest <= 5
    assert view.most_syncing == len(SINKS) and all(synced.values())
