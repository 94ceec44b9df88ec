"""Scaling out, measured on this machine with real servers:

1. intake throughput: the same `--items` file rows processed by 1, 2 and 4
   worker processes at once (each runs `process_pending` on one PostgreSQL
   store, as Prefect workers' runs do), against 1 process on SQLite; leads/s
   from the first worker's start to the last one's end (imports excluded);
2. Airtable's 5 requests/s per base with 2 workers sending at once, against
   the local Airtable server (tests/fakes/airtable.py, the real limits):
   each worker with only its own limiter, then both sharing the Prefect rate
   limit on a real Prefect server; requests/s, 429s, and the most requests
   the server saw in any one second.

Run from the repository root (it starts PostgreSQL and a Prefect server):
    PYTHONPATH=. .venv/bin/python benchmarks/scale_out.py [--items 4000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path

from benchmarks.bench_output import Report, positive

ROOT = Path(__file__).resolve().parents[1]
WORKERS = (1, 2, 4)
BASE = "appBENCHBASE00001"
TOKEN = "patBENCH.secret"
PENALTY_SECONDS = 2.0  # the fake's and the sinks' penalty; Airtable's is 30 s

PROCESS = """
import json, sys, time
from flows.intake import process_pending
from leadhub.settings import load_settings
settings = load_settings(store=sys.argv[1])
start = time.time()
stats = process_pending(settings)
print(json.dumps({"start": start, "end": time.time(), "leads": stats.get("new_leads", 0)}))
"""

REQUESTS = """
import json, sys, time
from connectors.airtable import AirtableSink
from connectors.shared_limits import for_this_run
from leadhub.settings import AirtableSinkConfig
url, count, base, token, penalty = sys.argv[1:]
config = AirtableSinkConfig(type="airtable", base=base, token=token, endpoint_url=url,
                            rate_limit_wait_seconds=float(penalty))
sink = AirtableSink(config, {}, limits=for_this_run())
sink.schema()  # connections open, the shared limit made
start = time.time()
for _ in range(int(count)):
    sink.schema(refresh=True)
print(json.dumps({"start": start, "end": time.time(), "limited": sink.calls["rate_limited"]}))
"""


def _people_file(folder: Path, items: int) -> Path:
    names = ("Анна", "Борис", "Вера", "Глеб", "Дарья", "Егор", "Жанна", "Захар", "Инна")
    path = folder / "leads.csv"
    rows = [f"{names[n % 9]} Петрова,+7 916 {2_345_000 + n // 2:07d},p{n // 2}@mail.ru"
            for n in range(items)]  # each phone and mailbox twice, under two names: work to match
    path.write_text("Имя,Телефон,Email\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def _collected_store(store: str, rows: Path) -> None:
    from connectors.files import FilesSource
    from flows.intake import collect

    collect(FilesSource("bench", [rows]), store)


def _at_once(script: str, argv_of: list[list[str]], env: dict[str, str]) -> list[dict]:
    """Run the processes together; each prints its own start and end."""
    running = [subprocess.Popen([sys.executable, "-c", script, *argv], env=env, cwd=ROOT,
                                stdout=subprocess.PIPE, text=True) for argv in argv_of]
    results = []
    for process in running:
        out, _ = process.communicate()
        if process.returncode != 0:
            raise SystemExit(f"a benchmark process failed ({process.returncode})")
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def _span(results: list[dict]) -> float:
    return max(r["end"] for r in results) - min(r["start"] for r in results)


def intake_rows(postgres, items: int, folder: Path) -> list[list[str]]:
    rows = _people_file(folder, items)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("PREFECT_API_URL", None)
    measured: list[tuple[str, int, float, int]] = []
    sqlite = str(folder / "one.db")
    _collected_store(sqlite, rows)
    done = _at_once(PROCESS, [[sqlite]], env)
    measured.append(("SQLite", 1, _span(done), sum(r["leads"] for r in done)))
    for workers in WORKERS:
        store = postgres.new_database()
        _collected_store(store, rows)
        done = _at_once(PROCESS, [[store]] * workers, env)
        measured.append(("PostgreSQL", workers, _span(done), sum(r["leads"] for r in done)))
    base = next(seconds for engine, n, seconds, _ in measured if engine == "PostgreSQL")
    return [[engine, str(n), f"{leads}", f"{seconds:.1f}", f"{leads / seconds:.0f}",
             f"{base / seconds:.2f}x"] for engine, n, seconds, leads in measured]


class CountingAirtable:
    """The local Airtable, noting when each request arrived."""

    def __init__(self):
        from tests.fakes.airtable import FakeAirtable

        arrivals: deque[float] = deque()

        class Noting(FakeAirtable):
            def _admit(self, base_id):
                arrivals.append(time.monotonic())
                return super()._admit(base_id)

        self.fake = Noting(TOKEN, bases=(BASE,), penalty_seconds=PENALTY_SECONDS)
        self.arrivals = arrivals

    def busiest_second(self) -> int:
        times = sorted(self.arrivals)
        best, first = 0, 0
        for last, moment in enumerate(times):
            while moment - times[first] >= 1.0:
                first += 1
            best = max(best, last - first + 1)
        return best


def airtable_rows(requests: int, prefect_api: str | None) -> list[str]:
    counting = CountingAirtable()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("PREFECT_API_URL", None)
    if prefect_api:
        env["PREFECT_API_URL"] = prefect_api
    with counting.fake as fake:
        argv = [fake.url, str(requests), BASE, TOKEN, str(PENALTY_SECONDS)]
        done = _at_once(REQUESTS, [argv] * 2, env)
        refused = fake.calls["rate_limited"]
    seconds = _span(done)
    answered = 2 * requests
    return ["2 workers, " + ("a shared Prefect rate limit" if prefect_api else "own limiters"),
            f"{answered}", f"{seconds:.1f}", f"{answered / seconds:.2f}", f"{refused}",
            f"{counting.busiest_second()}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=positive, default=4000)
    parser.add_argument("--requests", type=positive, default=60,
                        help="Airtable requests each of the 2 workers sends")
    args = parser.parse_args()
    from tests.postgres import PostgresServer
    from tests.prefect_server import PrefectServer, asyncpg_url

    report = Report()
    postgres = PostgresServer()
    postgres.start()
    server = None
    try:
        with tempfile.TemporaryDirectory() as folder:
            report.table(f"Intake: {args.items} file rows processed into one store",
                         ["store", "workers", "leads", "seconds", "leads/s",
                          "vs 1 on PostgreSQL"],
                         intake_rows(postgres, args.items, Path(folder)), left=["store"])
        rows = [airtable_rows(args.requests, None)]
        server = PrefectServer(asyncpg_url(postgres.new_database()))
        server.start()
        rows.append(airtable_rows(args.requests, server.api_url))
        report.table("Airtable: one base, limit 5 requests/s (the local server's real limits)",
                     ["who sends", "requests", "seconds", "requests/s", "429s",
                      "most in 1 s"], rows, left=["who sends"])
    finally:
        if server is not None:
            server.stop()
        postgres.stop()


if __name__ == "__main__":
    main()
