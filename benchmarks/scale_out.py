"""Scaling out, measured on this machine with real servers:

1. intake throughput: the same `--items` file rows processed by 1, 2 and 4
   worker processes at once (each runs `process_pending` on one PostgreSQL
   store, as Prefect workers' runs do), against 1 process on SQLite; leads/s
   from the first worker's start to the last one's end (imports excluded);
2. Airtable's 5 requests/s per base with 2 workers sending at once, against
   the local Airtable server (tests/fakes/airtable.py, the real limits):
   each worker with only its own limiter, then both sharing the Prefect rate
   limit on a real Prefect server; requests/s, 429s, and the most requests
   the server saw in any one second;
3. with `--growth 10000,100000,1000000`: how the cost per item grows with the
   store. A PostgreSQL store is filled with N leads of benchmarks/leadgen.py
   (`leadhub ingest`, the ledger's own write path: contacts, identities, block
   keys, stages), then one process (as one worker's run) processes the next
   `--batch` leads of the same people and newcomers; µs per item, wall and CPU
   of that process, and the ratio to the smallest store. A store of 1,000,000
   is the 100,000 one (made if not asked for) copied nine more times in SQL,
   each copy with phones, mailboxes and companies of its own (`clone_store`):
   ingesting a million rows takes hours on two cores.

Run from the repository root (it starts PostgreSQL and a Prefect server):
    PYTHONPATH=. .venv/bin/python benchmarks/scale_out.py [--items 4000]
    PYTHONPATH=. .venv/bin/python benchmarks/scale_out.py --growth 10000,100000,1000000
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


GROWTH_SEED = 20240612
PEOPLE_SHARE = 0.6  # people per lead, as benchmarks/bulk_ingest.py has it
CLONED_FROM = 100_000
COLUMNS = ("Имя", "Телефон", "Email", "Компания", "Источник", "Дата")
CATEGORIES = ("Сайт", "Авито", "Яндекс Директ", "Рекомендация", "")

BATCH = """
import json, resource, sys, time
from flows.intake import process_pending
from leadhub.settings import load_settings
settings = load_settings(store=sys.argv[1])
start, cpu = time.perf_counter(), time.process_time()
stats = process_pending(settings, workers=1)
print(json.dumps({"seconds": time.perf_counter() - start, "cpu": time.process_time() - cpu,
                  "leads": stats.get("new_leads", 0)}))
"""


def _leads_csv(path: Path, records) -> None:
    import csv

    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for index, record in enumerate(records):
            writer.writerow((record.name, ", ".join(record.phones), ", ".join(record.emails),
                             record.company, CATEGORIES[index % len(CATEGORIES)],
                             record.received_at.strftime("%Y-%m-%d %H:%M:%S")))


def _ingest(store: str, rows: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LEADHUB_LOG_LEVEL": "WARNING"}
    env.pop("PREFECT_API_URL", None)
    subprocess.run([sys.executable, "-c", "from leadhub.cli import app; app()", "ingest",
                    str(rows), "--db", store, "--quiet"], env=env, cwd=ROOT, check=True)


def filled_store(postgres, size: int, batch: int, folder: Path) -> tuple[str, Path]:
    """A store of `size` leads written by `leadhub ingest`, and a file of the
    `batch` leads that come next (repeat customers and new people)."""
    from benchmarks.leadgen import generate

    leads = generate(max(1, int((size + batch) * PEOPLE_SHARE)), size + batch, GROWTH_SEED)
    before, after = folder / f"fill-{size}.csv", folder / f"batch-{size}.csv"
    _leads_csv(before, leads.records[:size])
    _leads_csv(after, leads.records[size:])
    store = postgres.new_database()
    _ingest(store, before)
    return store, after


# A copy's people of their own: a phone's digits shifted, a mailbox of its own,
# a company (and its block key) with the copy's number, every key suffixed.
# Names and their block keys stay: a bigger book has more namesakes, as a real
# one does (in other firms, with other phones and mailboxes).
def _phone(column: str, copy: int) -> str:
    return (f"CASE WHEN {column} ~ '^[+]7[0-9]{{10}}$' THEN '+7' || lpad(((substr({column}, 3)"
            f"::bigint + {copy} * 1234567) % 10000000000)::text, 10, '0')"
            f" WHEN {column} = '' THEN '' ELSE {column} || '~{copy}' END")


FREE_MAIL = ("mail.ru", "yandex.ru", "ya.ru", "gmail.com", "rambler.ru", "bk.ru", "inbox.ru",
             "list.ru", "yahoo.com", "outlook.com", "icloud.com")


def _email(column: str, copy: int) -> str:
    """A mailbox of the copy's own, nothing like the original (the matcher
    forgives typos and Gmail's dots): a hashed name, and a hashed domain unless
    it is free mail; one original mailbox stays one (a shared one stays shared)."""
    domain = f"split_part({column}, '@', 2)"
    free = ", ".join(f"'{name}'" for name in FREE_MAIL)
    return (f"CASE WHEN {column} = '' THEN '' ELSE 'u' || substr(md5({column} || '{copy}'), 1, 12)"
            f" || '@' || CASE WHEN {domain} IN ({free}) THEN {domain}"
            f" ELSE 'f' || substr(md5({domain} || '{copy}'), 1, 10) || '.ru' END END")


def _identity(column: str, copy: int) -> str:
    return f"CASE WHEN kind = 'phone' THEN {_phone(column, copy)} ELSE {_email(column, copy)} END"


def _company(column: str, copy: int) -> str:
    return f"CASE WHEN {column} = '' THEN '' ELSE {column} || ' {copy}' END"


def _block_key(column: str, copy: int) -> str:
    return (f"CASE WHEN {column} LIKE 't:%' THEN 't:' || {_phone(f'substr({column}, 3)', copy)}"
            f" WHEN {column} LIKE 'c:%' THEN {column} || '|c{copy}' ELSE {column} END")


def _key(column: str, copy: int) -> str:
    return f"CASE WHEN coalesce({column}, '') = '' THEN {column} ELSE {column} || '~{copy}' END"


def _copied(table: str, copy: int, max_seq: int) -> str:
    from sqlalchemy import Integer

    from connectors.ledger.schema import metadata

    columns = [column for column in metadata.tables[table].columns
               if not (column.primary_key and isinstance(column.type, Integer)
                       and column.autoincrement is not False and table != "leads")]
    changes = {
        "contacts": {"contact_key": _key, "merged_into": _key, "phone": _phone, "email": _email,
                     "company": _company},
        # as written: the copy's value (the matcher reads it too)
        "identities": {"contact_key": _key, "value": _identity,
                       "written": lambda c, k: _identity('"value"', k)},
        "shared_identities": {"value": _identity},
        "block_keys": {"contact_key": _key, "key": _block_key},
        "leads": {"lead_id": _key, "contact_key": _key, "first_contact_key": _key,
                  "raw_item_id": _key, "phone": _phone, "email": _email, "company": _company,
                  "seq": lambda c, k: f"{c} + {k * max_seq}"},
        "raw_items": {"item_id": _key, "lead_id": _key, "content_hash": _key},
        "lead_stages": {"lead_id": _key},
        "contact_merges": {"survivor": _key, "loser": _key},
        "duplicate_pairs": {"contact_a": _key, "contact_b": _key},
    }[table]
    names = ", ".join(f'"{column.name}"' for column in columns)
    values = ", ".join(changes[column.name](f'"{column.name}"', copy)
                       if column.name in changes else f'"{column.name}"' for column in columns)
    return f'INSERT INTO "{table}" ({names}) SELECT {values} FROM "first_{table}"'


CLONED_TABLES = ("raw_items", "contacts", "identities", "shared_identities", "block_keys",
                 "leads", "lead_stages", "contact_merges", "duplicate_pairs")


def clone_store(postgres, source: str, copies: int) -> str:
    """A new store holding `source` `copies` times over, each copy people of
    its own (a PostgreSQL template copy, then INSERT ... SELECT per table)."""
    import psycopg

    name = source.rpartition("/")[2]
    store = postgres.new_database()
    target = store.rpartition("/")[2]
    with psycopg.connect(postgres.url("postgres"), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE "{target}"')
        admin.execute(f'CREATE DATABASE "{target}" TEMPLATE "{name}"')
    with psycopg.connect(store) as connection:
        max_seq = connection.execute("SELECT coalesce(max(seq), 0) FROM leads").fetchone()[0]
        for table in CLONED_TABLES:
            connection.execute(f'CREATE TEMP TABLE "first_{table}" AS SELECT * FROM "{table}"')
        for copy in range(1, copies):
            for table in CLONED_TABLES:
                connection.execute(_copied(table, copy, max_seq))
        connection.commit()
    with psycopg.connect(store, autocommit=True) as connection:
        connection.execute("VACUUM ANALYZE")
    return store


def _store_size(store: str) -> tuple[int, int, int]:
    import psycopg

    with psycopg.connect(store) as connection:
        return tuple(connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                     for table in ("leads", "contacts", "identities"))


def growth_rows(postgres, sizes: list[int], batch: int, folder: Path,
                ingested: int = CLONED_FROM) -> list[list[str]]:
    """A row per store size; stores over `ingested` leads are copies of that one."""
    measured = []
    stores: dict[int, tuple[str, Path]] = {}
    for size in sorted(sizes):
        filled = min(size, ingested)
        if filled not in stores:
            stores[filled] = filled_store(postgres, filled, batch, folder)
        base, rows = stores[filled]
        # measured on a copy: the filled store stays as it was for bigger ones
        store = clone_store(postgres, base, max(1, size // filled))
        leads, contacts, identities = _store_size(store)
        _collected_store(store, rows)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        env.pop("PREFECT_API_URL", None)
        [done] = _at_once(BATCH, [[store]], env)
        load = os.getloadavg()[0]
        measured.append((size, leads, contacts, identities, done, load))
    base_wall = measured[0][4]["seconds"] / batch
    base_cpu = measured[0][4]["cpu"] / batch
    return [[f"{size:,}", f"{leads:,} / {contacts:,} / {identities:,}", f"{done['leads']:,}",
             f"{done['seconds'] / batch * 1e6:,.0f}", f"{done['cpu'] / batch * 1e6:,.0f}",
             f"{done['seconds'] / batch / base_wall:.2f}x",
             f"{done['cpu'] / batch / base_cpu:.2f}x", f"{load:.1f}"]
            for size, leads, contacts, identities, done, load in measured]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=positive, default=4000)
    parser.add_argument("--requests", type=positive, default=60,
                        help="Airtable requests each of the 2 workers sends")
    parser.add_argument("--growth", type=lambda text: [positive(x) for x in text.split(",")],
                        help="only the growth table, for stores of these sizes (10000,100000)")
    parser.add_argument("--batch", type=positive, default=5000,
                        help="items processed against each store of --growth")
    parser.add_argument("--ingested", type=positive, default=CLONED_FROM,
                        help="the largest store --growth ingests; bigger ones are its copies")
    args = parser.parse_args()
    from tests.postgres import PostgresServer
    from tests.prefect_server import PrefectServer, asyncpg_url

    report = Report()
    postgres = PostgresServer()
    postgres.start()
    server = None
    if args.growth:
        try:
            with tempfile.TemporaryDirectory() as folder:
                report.table(f"Cost per item: {args.batch:,} items processed by one process"
                             " against a PostgreSQL store already holding N leads",
                             ["N", "leads / contacts / identities", "new leads", "µs/item wall",
                              "µs/item CPU", "wall vs first", "CPU vs first", "load avg"],
                             growth_rows(postgres, args.growth, args.batch, Path(folder),
                                         args.ingested))
        finally:
            postgres.stop()
        return
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
