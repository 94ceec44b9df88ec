"""BI export of a large synthetic ledger: time and peak memory per CSV preset.

It measures `flows.export.export_tables` (every BI CSV table plus report.html,
read from the SQLite ledger) on 1,000,000 leads / 100,000 contacts / 200,000
order items by default:

1. per preset (looker, powerbi, excel-ru): wall time (`time.perf_counter`),
   CPU time, lead rows written per second, the bytes of the CSVs written and
   the rows of every table. Each export runs in a child process of its own
   (this script with `--child`), which reports its peak RSS
   (`resource.getrusage(RUSAGE_SELF).ru_maxrss`) at the end and its RSS after
   the imports (the baseline), so the growth over the baseline is what the
   export itself needed. tracemalloc is not used: it would slow the export
   down several times over;
2. memory against size: the looker export again on a ledger with everything
   at `--memory-factor` (default 1/4) of the size, and on one with only the
   leads at that factor (contacts, orders and items as in step 1). The second
   pair shows what the leads cost in memory: they are streamed, so nothing;
3. ledger reads: the export runs once on a tiny ledger with
   `Ledger.iter_rows` wrapped, to count how many passes it makes over each
   query; then one pass of each query is timed on the full ledger, as rows
   (`sqlite3.Row`) and as the dicts `iter_rows` yields, with SQLite's
   `EXPLAIN QUERY PLAN` (a "TEMP B-TREE FOR ORDER BY" is a sort of the whole
   result on every pass).

The ledger is built straight into SQLite (`Ledger(path)` runs the
migrations, then one `executemany` per table in one transaction each); the
intake pipeline that fills a real ledger is measured by the other benchmarks.
Seeded and deterministic: contacts are `+7912xxxxxxx` phones with names from
a small Russian pool, about 70% with an email and 40% with a company; leads
arrive over two years (2023-2024) at random gaps, each a new contact (until
every contact has one) or a repeat of one already seen, with a source
category, a `raw_source` JSON that fits it, and a funnel stage ("" / Новый /
В работе / КП отправлено / Оплачен). 30% of the contacts buy: 2 orders per 5
order items (92% "Оплачен", 6% "Отменён", 2% "Отменен"), 1 to ~10 lines of
200 products each. 0.1% of the leads' count are raw items waiting for review
(the `needs_review` table); the raw items of the leads themselves are not
stored, as no table reads them. Every export gets the same `as_of` (the end
of the two years), so RFM scores do not depend on the day it runs.

The ledgers are built once per run in a temporary folder (or kept and reused
from `--workdir`); each export writes into a fresh folder that is deleted
after it is measured.

Run from the repository root (the defaults take several minutes):

    PYTHONPATH=. .venv/bin/python benchmarks/export.py
    PYTHONPATH=. .venv/bin/python benchmarks/export.py --scale 0.1
    PYTHONPATH=. .venv/bin/python benchmarks/export.py --presets looker --workdir /tmp/lh-bench
"""

from __future__ import annotations

import argparse
import csv
import gc
import hashlib
import json
import os
import platform
import random
import re
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench_output import Report, positive

from connectors.ledger import Ledger
from flows.export import export_tables
from leadhub.settings import load_settings
from transforms.exports import PRESETS, TABLES, preset_with

ROOT = Path(__file__).resolve().parent.parent

DEFAULT_LEADS = 1_000_000
DEFAULT_CONTACTS = 100_000
DEFAULT_ITEMS = 200_000
DEFAULT_SEED = 20240601
DEFAULT_MEMORY_FACTOR = 0.25
ORDERS_PER_ITEM = 0.4  # 80,000 orders for 200,000 items
BUYERS_PER_CONTACT = 0.3  # 30,000 of 100,000 contacts have an order
REVIEW_PER_LEAD = 0.001
MAX_CONTACTS = 10_000_000  # +7912 and 7 digits
PRODUCTS = 200
TINY = (1_000, 100, 200)  # leads, contacts, items of the ledger that counts passes

START = datetime(2023, 1, 1, tzinfo=UTC)
SPAN = timedelta(days=730)
AS_OF = START + SPAN
STAMP = AS_OF.isoformat(timespec="seconds")  # updated_at / ingested_at of every row

MALE = (
    ("Иван", "Алексей", "Сергей", "Дмитрий", "Андрей", "Михаил", "Игорь", "Павел"),
    ("Иванов", "Петров", "Смирнов", "Кузнецов", "Попов", "Соколов", "Волков", "Зайцев"),
    ("Иванович", "Петрович", "Сергеевич", "Андреевич", "Олегович", "Викторович"),
)
FEMALE = (
    ("Анна", "Ольга", "Елена", "Мария", "Наталья", "Татьяна", "Ирина", "Светлана"),
    ("Иванова", "Петрова", "Смирнова", "Кузнецова", "Попова", "Соколова", "Волкова"),
    ("Ивановна", "Петровна", "Сергеевна", "Андреевна", "Олеговна", "Викторовна"),
)
LOGINS = ("ivan", "olga", "sales", "info", "manager", "zakaz", "office", "petrov", "anna", "buh")
EMAIL_DOMAINS = ("mail.ru", "yandex.ru", "gmail.com", "bk.ru", "list.ru", "company.ru")
COMPANY_NAMES = ("Ромашка", "Вектор", "СтройМир", "Альфа", "ТехноСнаб", "Север", "Гранит",
                 "Меридиан", "Лидер", "Импульс", "Радуга", "Восток")
LEGAL_FORMS = (("ООО", 0.5), ("ИП", 0.3), ("АО", 0.2))
CITIES = ("Москва", "Санкт-Петербург", "Казань", "Екатеринбург", "Новосибирск", "")
POSITIONS = ("", "", "директор", "менеджер по закупкам", "главный инженер")
CHANNELS = ("email", "form", "import")
# Source categories are config/defaults.yaml's; these weights go with its order
# (Сайт, Авито, Email, Реклама, Рекомендация, Соцсети, Звонок, Другое).
SOURCE_WEIGHTS = (30, 15, 8, 20, 8, 10, 5, 4)
RAW_SOURCES = {
    "Сайт": ({"form": "callback"}, {"utm_source": "google"}, {}),
    "Авито": ({"source": "Авито"},),
    "Реклама": ({"utm_source": "yandex", "utm_medium": "cpc"},
                {"utm_source": "yandex", "utm_medium": "cpc", "utm_campaign": "brand"}),
    "Рекомендация": ({"source": "по рекомендации"},),
    "Соцсети": ({"utm_source": "vk"}, {"utm_source": "telegram"}),
    "Звонок": ({"source": "звонок"},),
}
SUBJECTS = ("Заявка с сайта", "Запрос КП", "Вопрос по доставке", "Обратный звонок", "")
MESSAGES = (
    "Здравствуйте, пришлите прайс.",
    "Нужна консультация по оборудованию, перезвоните после обеда.",
    "Интересует оптовая поставка, объём около 50 штук.",
    "Какие сроки доставки в регион?",
    "Прошу выставить счёт на оплату.",
    "Есть ли в наличии? Нужно срочно.",
    "",
)
STAGES = (("", 30), ("Новый", 25), ("В работе", 20), ("КП отправлено", 15), ("Оплачен", 10))
ORDER_STATUSES = (("Оплачен", 92), ("Отменён", 6), ("Отменен", 2))
PRODUCT_KINDS = ("Кофемашина", "Чайник", "Фильтр", "Картридж", "Кабель", "Насос", "Датчик",
                 "Светильник", "Вентилятор", "Обогреватель", "Смеситель", "Замок", "Дрель",
                 "Шуруповёрт", "Перфоратор", "Лампа", "Розетка", "Выключатель", "Труба", "Кран")
QUANTITIES = ((1.0, 70), (2.0, 15), (3.0, 8), (5.0, 5), (10.0, 2))
REVIEW_REASONS = (("quarantined", "no phone or email"), ("quarantined", "cannot parse the row"),
                  ("skipped", "robot sender"))


# --- sizes ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Sizes:
    leads: int
    contacts: int
    items: int

    @property
    def orders(self) -> int:
        return min(self.items, max(1, round(self.items * ORDERS_PER_ITEM)))

    @property
    def buyers(self) -> int:
        return min(self.contacts, self.orders, max(1, round(self.contacts * BUYERS_PER_CONTACT)))

    @property
    def review(self) -> int:
        return round(self.leads * REVIEW_PER_LEAD)

    def scaled(self, factor: float, leads_only: bool = False) -> Sizes:
        def scale(value: int) -> int:
            return max(1, round(value * factor))

        if leads_only:
            return Sizes(max(scale(self.leads), self.contacts), self.contacts, self.items)
        return Sizes(scale(self.leads), scale(self.contacts), scale(self.items))

    def file_name(self, seed: int) -> str:
        return f"ledger-{self.leads}-{self.contacts}-{self.items}-seed{seed}.db"

    def describe(self) -> str:
        return (f"{self.leads:,} leads / {self.contacts:,} contacts / {self.orders:,} orders"
                f" / {self.items:,} order items")


@dataclass
class BuiltLedger:
    path: Path
    sizes: Sizes
    seconds: dict[str, float] = field(default_factory=dict)  # table -> insert seconds
    reused: bool = False

    @property
    def megabytes(self) -> float:
        return self.path.stat().st_size / 2**20


# --- the synthetic ledger ------------------------------------------------------------


@dataclass(slots=True)
class _Person:
    key: str
    name: str
    email: str
    company: str
    legal_form: str
    position: str
    city: str
    source: str
    first_seen: float = 0.0  # POSIX seconds of the first and last lead
    last_seen: float = 0.0
    leads: int = 0


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(int(seconds), UTC).isoformat(timespec="seconds")


def _weighted(rng: random.Random, pairs: Sequence[tuple[object, int | float]]) -> object:
    return rng.choices([value for value, _ in pairs], weights=[w for _, w in pairs])[0]


def _people(sizes: Sizes, categories: Sequence[str], rng: random.Random) -> list[_Person]:
    numbers = rng.sample(range(MAX_CONTACTS), sizes.contacts)
    weights = SOURCE_WEIGHTS if len(SOURCE_WEIGHTS) == len(categories) else None
    people = []
    for index, number in enumerate(numbers):
        first_names, last_names, middle_names = MALE if rng.random() < 0.5 else FEMALE
        first, last = rng.choice(first_names), rng.choice(last_names)
        if rng.random() < 0.6:
            name = f"{first} {last}"
        else:
            name = f"{last} {first} {rng.choice(middle_names)}"
        email = ""
        if rng.random() < 0.7:
            email = f"{rng.choice(LOGINS)}{index}@{rng.choice(EMAIL_DOMAINS)}"
        company = legal_form = ""
        if rng.random() < 0.4:
            legal_form = str(_weighted(rng, LEGAL_FORMS))
            company = f"{last} {first[0]}." if legal_form == "ИП" else rng.choice(COMPANY_NAMES)
        people.append(_Person(
            key=f"+7912{number:07d}",
            name=name,
            email=email,
            company=company,
            legal_form=legal_form,
            position=rng.choice(POSITIONS),
            city=rng.choice(CITIES),
            source=rng.choices(categories, weights=weights)[0],
        ))
    return people


def _pretty(key: str) -> str:
    """+79123456789 -> +7 912 345-67-89"""
    return f"{key[:2]} {key[2:5]} {key[5:8]}-{key[8:10]}-{key[10:]}"


def _lead_rows(
    sizes: Sizes, people: list[_Person], categories: Sequence[str], rng: random.Random
) -> Iterator[tuple]:
    """Leads in time order; each is a new contact with probability (contacts
    not seen yet) / (leads left), so every contact gets at least one and first
    contacts are spread over the two years. Fills in the people's first/last
    seen and lead counts as it goes."""
    appearance = list(range(len(people)))
    rng.shuffle(appearance)
    weights = SOURCE_WEIGHTS if len(SOURCE_WEIGHTS) == len(categories) else None
    raw_sources = {
        source: [json.dumps(value, ensure_ascii=False, sort_keys=True) for value in values]
        for source, values in RAW_SOURCES.items()
    }
    stages, stage_weights = zip(*STAGES, strict=True)
    mean_gap = SPAN.total_seconds() / sizes.leads
    moment = START.timestamp()
    seen = 0
    for index in range(sizes.leads):
        moment += rng.random() * 2 * mean_gap
        left = sizes.leads - index
        if seen < len(people) and (seen == 0 or rng.random() * left < len(people) - seen):
            person = people[appearance[seen]]
            seen += 1
            person.first_seen = moment
            source = person.source
        else:
            person = people[appearance[int(rng.random() * seen)]]
            source = person.source if rng.random() < 0.8 else rng.choices(
                categories, weights=weights)[0]
        person.last_seen = moment
        person.leads += 1
        yield (
            f"bench-{index:07d}",
            person.key,
            f"bench:lead:{index:07d}",
            _iso(moment),
            CHANNELS[index % len(CHANNELS)],
            source,
            1,
            rng.choice(raw_sources.get(source, ["{}"])),
            person.name,
            person.key,
            person.email,
            person.company,
            rng.choice(SUBJECTS),
            rng.choice(MESSAGES),
            rng.choices(stages, weights=stage_weights)[0],
            "[]",
        )


def _contact_rows(people: list[_Person]) -> Iterator[tuple]:
    for person in people:
        yield (
            person.key, person.name, person.key, _pretty(person.key), person.email,
            person.company, person.legal_form, person.position, person.city, person.source,
            _iso(person.first_seen), _iso(person.last_seen), person.leads, "", None, STAMP,
        )


def _identity_rows(people: list[_Person]) -> Iterator[tuple]:
    for person in people:
        yield ("phone", person.key, person.key)
        if person.email:
            yield ("email", person.email, person.key)


def _order_rows(sizes: Sizes, people: list[_Person], rng: random.Random) -> Iterator[tuple]:
    """Orders of 30% of the contacts, each after the buyer's first lead; every
    buyer has at least one."""
    buyers = rng.sample(people, sizes.buyers)
    end = AS_OF.timestamp()
    for index in range(sizes.orders):
        person = buyers[index] if index < len(buyers) else rng.choice(buyers)
        ordered_at = person.first_seen + rng.random() * (end - person.first_seen)
        comment = "доставка курьером" if rng.random() < 0.1 else ""
        yield (f"ord-{index:07d}", person.key, _iso(ordered_at),
               _weighted(rng, ORDER_STATUSES), comment, STAMP)


def _products(rng: random.Random) -> list[tuple[str, float, float]]:
    products = []
    for index in range(PRODUCTS):
        kind = PRODUCT_KINDS[index % len(PRODUCT_KINDS)]
        price = float(rng.randrange(5, 500) * 100)
        products.append((f"{kind} М-{100 + index}", price, round(price * rng.uniform(0.5, 0.8), 2)))
    return products


def _item_rows(sizes: Sizes, rng: random.Random) -> Iterator[tuple]:
    """One line per order, the rest spread at random; popular products first
    (weight 1/rank)."""
    lines = [1] * sizes.orders
    for _ in range(sizes.items - sizes.orders):
        lines[rng.randrange(sizes.orders)] += 1
    products = _products(rng)
    cumulative = []
    total = 0.0
    for rank in range(len(products)):
        total += 1 / (rank + 1)
        cumulative.append(total)
    quantities, quantity_weights = zip(*QUANTITIES, strict=True)
    for index, count in enumerate(lines):
        for line in range(1, count + 1):
            product, price, cost = rng.choices(products, cum_weights=cumulative)[0]
            quantity = rng.choices(quantities, weights=quantity_weights)[0]
            yield (f"ord-{index:07d}", line, product, price, cost, quantity, STAMP)


def _review_rows(sizes: Sizes, rng: random.Random) -> Iterator[tuple]:
    for index in range(sizes.review):
        state, reason = rng.choice(REVIEW_REASONS)
        payload = (f"Имя: Клиент {index}\nКомментарий: {rng.choice(MESSAGES)}\n").encode()
        received = START.timestamp() + rng.random() * SPAN.total_seconds()
        meta = json.dumps({"path": "imports/leads.csv", "row": str(index + 2)})
        yield (f"bench:review:{index:07d}", "import", "csv_row", _iso(received), payload,
               hashlib.sha256(payload).hexdigest(), meta, state, reason, None, STAMP, STAMP)


INSERTS = {
    "leads": "INSERT INTO leads (lead_id, contact_key, raw_item_id, received_at, channel, source,"
             " source_matched, raw_source, name, phone, email, company, subject, message, stage,"
             " warnings) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "contacts": "INSERT INTO contacts (contact_key, name, phone, phone_display, email, company,"
                " legal_form, position, city, source, first_seen, last_seen, leads_count, segment,"
                " merged_into, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "contact_identities": "INSERT INTO contact_identities VALUES (?, ?, ?)",
    "orders": "INSERT INTO orders (order_id, contact_key, ordered_at, status, comment, updated_at)"
              " VALUES (?, ?, ?, ?, ?, ?)",
    "order_items": "INSERT INTO order_items (order_id, line, product, price, cost, quantity,"
                   " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
    "raw_items": "INSERT INTO raw_items (item_id, source, kind, received_at, payload,"
                 " content_hash, meta, state, reason, lead_id, ingested_at, processed_at)"
                 " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
}


def build_ledger(workdir: Path, sizes: Sizes, seed: int, categories: Sequence[str]) -> BuiltLedger:
    """The ledger of these sizes, built in `workdir`, or the one built there
    before (a `.ok` file next to it marks a finished build)."""
    path = workdir / sizes.file_name(seed)
    done = path.with_suffix(".ok")
    if path.exists() and done.exists():
        return BuiltLedger(path, sizes, reused=True)
    for stale in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        stale.unlink(missing_ok=True)
    built = BuiltLedger(path, sizes)
    rng = random.Random(seed)
    ledger = Ledger(path)
    try:
        ledger.db.execute("PRAGMA synchronous=OFF")  # a bulk load; nothing to lose on a crash
        people = _people(sizes, categories, rng)
        tables = (
            ("leads", lambda: _lead_rows(sizes, people, categories, rng)),
            ("contacts", lambda: _contact_rows(people)),
            ("contact_identities", lambda: _identity_rows(people)),
            ("orders", lambda: _order_rows(sizes, people, rng)),
            ("order_items", lambda: _item_rows(sizes, rng)),
            ("raw_items", lambda: _review_rows(sizes, rng)),
        )
        for table, rows in tables:
            started = time.perf_counter()
            with ledger.transaction() as db:
                db.executemany(INSERTS[table], rows())
            built.seconds[table] = time.perf_counter() - started
        ledger.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        ledger.close()
    done.write_text("built\n", encoding="utf-8")
    return built


# --- one export in a child process ---------------------------------------------------


def current_rss_kib() -> int:
    """The resident set now, from /proc (Linux); else the peak so far."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return peak_rss_kib()
    return pages * os.sysconf("SC_PAGE_SIZE") // 1024


def peak_rss_kib() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak  # bytes on macOS, KiB on Linux


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child_main(args: argparse.Namespace) -> None:
    """One export, with every import done before the baseline is taken."""
    settings = load_settings(store=str(args.store))
    gc.collect()
    baseline_kib = current_rss_kib()
    import_peak_kib = peak_rss_kib()
    cpu_before = cpu_seconds()
    started = time.perf_counter()
    export_tables(settings, args.out, args.preset, as_of=datetime.fromisoformat(args.as_of))
    wall = time.perf_counter() - started
    print(json.dumps({
        "wall_seconds": wall,
        "cpu_seconds": cpu_seconds() - cpu_before,
        "baseline_kib": baseline_kib,
        "import_peak_kib": import_peak_kib,
        "peak_kib": peak_rss_kib(),
    }), flush=True)


@dataclass
class ExportRun:
    preset: str
    sizes: Sizes
    wall_seconds: float
    cpu_seconds: float
    baseline_kib: int
    import_peak_kib: int
    peak_kib: int
    table_rows: dict[str, int]
    table_bytes: dict[str, int]
    report_bytes: int

    @property
    def growth_kib(self) -> int:
        return self.peak_kib - self.baseline_kib

    @property
    def csv_bytes(self) -> int:
        return sum(self.table_bytes.values())


def count_rows(path: Path, preset_name: str) -> int:
    preset = preset_with(preset_name)
    with path.open(encoding=preset.encoding, newline="") as handle:
        return sum(1 for _ in csv.reader(handle, delimiter=preset.delimiter)) - 1  # the header


def run_export(built: BuiltLedger, preset: str, workdir: Path) -> ExportRun:
    out = workdir / f"export-{preset}-{built.sizes.leads}-{built.sizes.contacts}"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    paths = [str(ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    command = [sys.executable, str(Path(__file__).resolve()), "--child", "--store",
               str(built.path), "--out", str(out), "--preset", preset, "--as-of", AS_OF.isoformat()]
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, check=False)
    if done.returncode:
        sys.exit(f"the {preset} export failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    try:
        rows = {name: count_rows(out / f"{name}.csv", preset) for name in TABLES}
        sizes = {name: (out / f"{name}.csv").stat().st_size for name in TABLES}
        report_bytes = (out / "report.html").stat().st_size
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return ExportRun(preset=preset, sizes=built.sizes, table_rows=rows, table_bytes=sizes,
                     report_bytes=report_bytes, **measured)


# --- ledger reads --------------------------------------------------------------------


@dataclass
class ReadPass:
    query: str
    passes: int
    rows: int
    sql_seconds: float  # one pass, rows as sqlite3.Row
    dict_seconds: float  # one pass through Ledger.iter_rows (dicts)
    plan: str


def count_passes(tiny: BuiltLedger, workdir: Path) -> tuple[Counter[str], dict[str, tuple]]:
    """Each query `export_tables` runs through `Ledger.iter_rows`, and how
    often: one looker export of the tiny ledger with iter_rows wrapped."""
    passes: Counter[str] = Counter()
    params: dict[str, tuple] = {}
    original = Ledger.iter_rows

    def recording(self: Ledger, query: str, values: tuple = ()) -> Iterator[dict]:
        passes[query] += 1
        params[query] = values
        return original(self, query, values)

    out = workdir / "export-passes"
    Ledger.iter_rows = recording  # type: ignore[method-assign]
    try:
        export_tables(load_settings(store=str(tiny.path)), out, "looker", as_of=AS_OF)
    finally:
        Ledger.iter_rows = original  # type: ignore[method-assign]
        shutil.rmtree(out, ignore_errors=True)
    return passes, params


def time_reads(
    built: BuiltLedger, passes: Counter[str], params: dict[str, tuple]
) -> list[ReadPass]:
    ledger = Ledger(built.path)
    results = []
    try:
        for query, count in passes.items():
            values = params[query]
            started = time.perf_counter()
            rows = sum(1 for _ in ledger.db.execute(query, values))
            sql_seconds = time.perf_counter() - started
            started = time.perf_counter()
            for _ in ledger.iter_rows(query, values):
                pass
            dict_seconds = time.perf_counter() - started
            plan = "; ".join(row[3] for row in ledger.db.execute(f"EXPLAIN QUERY PLAN {query}",
                                                                 values))
            results.append(ReadPass(query, count, rows, sql_seconds, dict_seconds, plan))
    finally:
        ledger.close()
    return results


def query_label(query: str) -> str:
    match = re.search(r"FROM (\w+)(?: \w+)?(?: JOIN (\w+))?", query)
    if not match:
        return query[:40]
    label = match.group(1) + (f" JOIN {match.group(2)}" if match.group(2) else "")
    order = re.search(r"ORDER BY (.+)$", query)
    return f"{label} (ORDER BY {order.group(1)})" if order else label


# --- output --------------------------------------------------------------------------


def mib(kib_or_bytes: float, unit: str = "KiB") -> str:
    value = kib_or_bytes / 1024 if unit == "KiB" else kib_or_bytes / 2**20
    return f"{value:,.1f}"


PRESET_COLUMNS = ("preset", "wall s", "CPU s", "lead rows/s", "peak RSS MiB", "baseline MiB",
                  "growth MiB", "CSV MiB", "report KiB")


def preset_row(run: ExportRun) -> list[str]:
    return [
        run.preset,
        f"{run.wall_seconds:,.1f}",
        f"{run.cpu_seconds:,.1f}",
        f"{run.table_rows['leads'] / run.wall_seconds:,.0f}",
        mib(run.peak_kib),
        mib(run.baseline_kib),
        mib(run.growth_kib),
        mib(run.csv_bytes, "B"),
        f"{run.report_bytes / 1024:,.0f}",
    ]


def table_rows(runs: Sequence[ExportRun]) -> tuple[list[str], list[list[str]]]:
    columns = ["table", "rows", *(f"{run.preset} MiB" for run in runs)]
    rows = []
    for name in TABLES:
        counts = {run.table_rows[name] for run in runs}
        shown = f"{runs[0].table_rows[name]:,}" if len(counts) == 1 else " / ".join(
            f"{run.table_rows[name]:,}" for run in runs)
        rows.append([name, shown, *(mib(run.table_bytes[name], "B") for run in runs)])
    return columns, rows


MEMORY_COLUMNS = ("ledger", "leads", "contacts", "orders", "items", "wall s", "lead rows/s",
                  "peak RSS MiB", "growth MiB")


def memory_row(label: str, run: ExportRun) -> list[str]:
    sizes = run.sizes
    return [label, f"{sizes.leads:,}", f"{sizes.contacts:,}", f"{sizes.orders:,}",
            f"{sizes.items:,}", f"{run.wall_seconds:,.1f}",
            f"{run.table_rows['leads'] / run.wall_seconds:,.0f}", mib(run.peak_kib),
            mib(run.growth_kib)]


READ_COLUMNS = ("query", "passes", "rows", "SQL s/pass", "dicts s/pass", "passes x dicts s",
                "query plan")


def read_row(read: ReadPass) -> list[str]:
    return [query_label(read.query), str(read.passes), f"{read.rows:,}",
            f"{read.sql_seconds:,.2f}", f"{read.dict_seconds:,.2f}",
            f"{read.passes * read.dict_seconds:,.1f}", read.plan]


def per_row_bytes(big: ExportRun, small: ExportRun, attribute: str) -> str:
    rows = getattr(big.sizes, attribute) - getattr(small.sizes, attribute)
    if rows <= 0:
        return "n/a"
    return f"{(big.growth_kib - small.growth_kib) * 1024 / rows:,.0f} B"


def footnotes(runs: Sequence[ExportRun], memory: dict[str, ExportRun]) -> list[str]:
    notes = [
        "wall s: time.perf_counter around export_tables (all 11 CSV tables + report.html) in"
        " the child; CPU s: its user + system CPU time; lead rows/s: rows of leads.csv / wall s"
        " (the whole export, not the leads table alone).",
        "peak RSS: ru_maxrss of the child at the end (the whole process: Python, Prefect and"
        " the other imports, SQLite's page cache); baseline: its RSS after the imports and"
        " load_settings; growth = peak - baseline, what the export added at its worst moment.",
        "CSV MiB: the bytes of the 11 CSV files; report KiB: report.html. The BOM and the"
        " ';'/',' presets differ by bytes only; rows are counted with the csv module, per"
        " preset, and shown once when every preset agrees.",
    ]
    if any(run.peak_kib <= run.import_peak_kib for run in runs):
        notes.append("A child's peak was not above its peak during the imports: its growth is"
                     " then a lower bound.")
    full, small, few_leads = (memory.get(k) for k in ("full", "small", "few_leads"))
    if full and few_leads:
        notes.append(
            f"memory vs size: from {few_leads.sizes.leads:,} to {full.sizes.leads:,} leads (the"
            f" rest unchanged) the growth changes by {per_row_bytes(full, few_leads, 'leads')}"
            " per extra lead: leads are streamed row by row, and per lead only counters keyed"
            " by (day, source), (source, stage) and a set of contact keys are kept.")
    if few_leads and small:
        notes.append(
            f"With contacts, orders and items at the factor too, the growth moves by"
            f" {per_row_bytes(few_leads, small, 'items')} per extra order item (with its share"
            " of orders and contacts): what grows is held per contact, order and item.")
    notes += [
        "What the export holds (flows/export.py, transforms/bi.py): clients, rfm and kpi each"
        " rebuild a dict of every live order (_live_orders keeps the whole order row) and a"
        " _Totals per order, then one _Client per buyer; rfm/clients keep the buyers' contact"
        " rows; kpi keeps a set of every contact key with a lead and each client's first lead;"
        " products keeps a set of order ids per product. funnel and leads_daily are small"
        " (stages x sources, days x sources). contacts, leads and needs_review are streamed to"
        " the CSV writer. orders and order_items are NOT streamed: bi.order_rows and"
        " bi.order_item_rows build and return a list of every row"
        f" ({runs[0].table_rows['orders']:,} and {runs[0].table_rows['order_items']:,} dicts"
        " here) before the CSV writer sees the first one.",
        "passes: how often export_tables reads each query (counted on a tiny ledger); each"
        " pass is a new cursor. SQL s: one pass as sqlite3.Row; dicts s: one pass through"
        " Ledger.iter_rows; _Source also parses the time columns, which is not in this figure."
        " A 'USE TEMP B-TREE FOR ORDER BY' in the plan means SQLite sorts the whole result on"
        " every pass (no index on that ORDER BY).",
    ]
    return notes


# --- entry point ---------------------------------------------------------------------




def factor(text: str) -> float:
    value = float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a factor in (0, 1]")
    return value


def presets(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in PRESETS]
    if not names or unknown:
        raise argparse.ArgumentTypeError(f"use a comma-separated list of {', '.join(PRESETS)}")
    return names


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=positive, default=DEFAULT_LEADS,
                        help=f"leads in the ledger (default {DEFAULT_LEADS:,})")
    parser.add_argument("--contacts", type=positive, default=DEFAULT_CONTACTS,
                        help=f"contacts (default {DEFAULT_CONTACTS:,})")
    parser.add_argument("--items", type=positive, default=DEFAULT_ITEMS,
                        help=f"order items (default {DEFAULT_ITEMS:,}); orders are"
                        f" {ORDERS_PER_ITEM:g} of them, for {BUYERS_PER_CONTACT:.0%} of contacts")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="multiply the three sizes, e.g. 0.1 for a quick run (default 1)")
    parser.add_argument("--presets", type=presets, default=list(PRESETS),
                        help=f"presets to export (default {','.join(PRESETS)})")
    parser.add_argument("--memory-factor", type=factor, default=DEFAULT_MEMORY_FACTOR,
                        help="size of the smaller ledgers of the memory comparison"
                        f" (default {DEFAULT_MEMORY_FACTOR})")
    parser.add_argument("--skip-memory-scaling", action="store_true",
                        help="do not export the smaller ledgers")
    parser.add_argument("--skip-reads", action="store_true",
                        help="do not time the ledger queries")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED,
                        help=f"random seed (default {DEFAULT_SEED})")
    parser.add_argument("--workdir", type=Path,
                        help="keep the ledgers here and reuse them (default: a temporary folder)")
    # The child mode: one export, measured; used by the script itself.
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--store", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--preset", help=argparse.SUPPRESS)
    parser.add_argument("--as-of", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return args
    if args.scale <= 0:
        parser.error("--scale must be above 0")
    args.sizes = Sizes(args.leads, args.contacts, args.items).scaled(args.scale)
    if args.sizes.contacts > MAX_CONTACTS:
        parser.error(f"at most {MAX_CONTACTS:,} contacts (+7912 and 7 digits)")
    if args.sizes.leads < args.sizes.contacts:
        parser.error("every contact needs a lead: use at least as many leads as contacts")
    return args


def describe_build(built: BuiltLedger) -> str:
    if built.reused:
        return f"ledger {built.path.name} reused ({built.megabytes:,.0f} MiB)"
    parts = ", ".join(f"{table} {seconds:.1f} s" for table, seconds in built.seconds.items())
    return (f"built {built.sizes.describe()} in {sum(built.seconds.values()):.1f} s"
            f" ({parts}); {built.megabytes:,.0f} MiB")


def run(args: argparse.Namespace, workdir: Path, report: Report) -> None:
    started = time.perf_counter()
    categories = load_settings().source_categories

    def progress(text: str) -> None:
        report.line(f"[{time.perf_counter() - started:6.1f} s] {text}")

    full = build_ledger(workdir, args.sizes, args.seed, categories)
    progress(describe_build(full))

    runs = []
    for preset in args.presets:
        result = run_export(full, preset, workdir)
        runs.append(result)
        progress(f"{preset}: {result.wall_seconds:.1f} s, peak RSS {mib(result.peak_kib)} MiB")

    memory: dict[str, ExportRun] = {}
    if not args.skip_memory_scaling and args.memory_factor < 1:
        looker = next((r for r in runs if r.preset == "looker"), None)
        memory["full"] = looker or run_export(full, "looker", workdir)
        for key, leads_only in (("few_leads", True), ("small", False)):
            sizes = args.sizes.scaled(args.memory_factor, leads_only=leads_only)
            built = build_ledger(workdir, sizes, args.seed, categories)
            progress(describe_build(built))
            memory[key] = run_export(built, "looker", workdir)
            progress(f"looker on {sizes.describe()}: {memory[key].wall_seconds:.1f} s,"
                     f" peak RSS {mib(memory[key].peak_kib)} MiB")

    reads: list[ReadPass] = []
    if not args.skip_reads:
        tiny = build_ledger(workdir, Sizes(*TINY), args.seed, categories)
        passes, params = count_passes(tiny, workdir)
        reads = time_reads(full, passes, params)
        progress(f"ledger queries timed: {sum(passes.values())} passes over"
                 f" {len(passes)} queries per export")

    title = f"BI export of {full.sizes.describe()}, per preset (child process each)"
    report.table(title, PRESET_COLUMNS, [preset_row(r) for r in runs], left=("preset",))
    columns, rows = table_rows(runs)
    report.table("Rows and bytes per table", columns, rows, left=("table",))
    if memory:
        labels = {"full": "full",
                  "few_leads": f"leads x{args.memory_factor:g}",
                  "small": f"all x{args.memory_factor:g}"}
        report.table("Memory vs size (looker)", MEMORY_COLUMNS,
                     [memory_row(labels[key], run) for key, run in memory.items()],
                     left=("ledger",))
    if reads:
        report.table(f"Ledger reads of one export, timed on the {full.sizes.leads:,}-lead ledger",
                     READ_COLUMNS, [read_row(read) for read in reads],
                     left=("query", "query plan"))
        total = sum(read.passes * read.dict_seconds for read in reads)
        wall = runs[0].wall_seconds
        report.line(f"Reads alone: {total:.1f} s of the {runs[0].preset} export's {wall:.1f} s"
                    f" ({total / wall:.0%}); the rest is the BI arithmetic, the time columns"
                    " parsed, the cells formatted and the CSV written.")
    for note in footnotes(runs, memory):
        report.line(note)
    progress("done")


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.child:
        child_main(args)
        return
    report = Report()
    report.line(f"CPU count: {os.cpu_count()}")
    report.line(f"Python: {platform.python_version()} ({platform.python_implementation()});"
                f" SQLite {sqlite3.sqlite_version}")
    report.line(f"Seed: {args.seed}; ledger: {args.sizes.describe()};"
                f" presets: {', '.join(args.presets)}")
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
        run(args, args.workdir, report)
        return
    with tempfile.TemporaryDirectory(prefix="leadhub-export-bench-") as temp:
        run(args, Path(temp), report)


if __name__ == "__main__":
    main()
