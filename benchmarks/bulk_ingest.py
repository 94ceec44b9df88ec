"""Bulk import: `leadhub ingest FILE.csv` as a whole process, at 10k, 100k, 1M rows.

For each size it writes a CSV of Russian leads from `leadgen.py` (the
generator `dedupe_quality.py` uses: phones written many ways, office lines
with extensions, recased and misspelled emails, names with typos, repeat
customers), runs `leadhub ingest FILE --db STORE` in a fresh process on a
new store and prints:

- wall time and records/s of the whole command (start-up, reading,
  parsing, normalizing, matching, store writes), and the CPU seconds its
  processes used: on a machine others share, CPU time is the steadier figure
  (the title says the load average during the runs);
- peak memory: the largest resident set of the command's process tree,
  sampled every 50 ms from /proc (the parent and any workers together);
- the store's size on disk and bytes per lead;
- the time per record relative to the smallest size (1.00 = flat).

With `--baseline REF` (default `main`) the same files also go through the
code of that git revision (exported to a temporary folder and put first on
PYTHONPATH), so the speed-up is a ratio measured in the same run on the same
machine, and the two stores are compared table by table (every column but
the times things were written): "same store" says the new code gave the
result the old one did. The baseline is slow: `--baseline-sizes` limits it
(100k by default).

With `--profile N` it instead runs one ingest of N rows under cProfile (in
one process, `--workers 1`, so that the profiler sees all the work; with
`--baseline REF`, that revision's too) and prints where the time went: the
cumulative time of the functions that do each part of the work (a
function called from two parts, like the email check that matching also
uses, counts where it is listed).

With `--marginal ROWS` it measures what a row costs once the store is big:
it builds a store of ROWS rows (kept in `--keep` for the next time), then
ingests the `--tail` rows that follow them in the same generated file (the
same people come back) into a fresh copy of that store, and the same tail
into an empty store, `--repeats` times each, the codes taking turns (this
code, and `--baseline REF` when given) so that a slow spell of a shared
machine falls on all of them. It prints the median and the spread of each,
the CPU a tail row costs, and that against the empty store (1.00: a big
store costs a row nothing more). The one-off commands the README quoted for
the tail of a store of 571,000 leads are this mode now.

Run from the repository root:

    .venv/bin/python benchmarks/bulk_ingest.py
    .venv/bin/python benchmarks/bulk_ingest.py --sizes 10000,100000,1000000 --baseline main
    .venv/bin/python benchmarks/bulk_ingest.py --sizes 100000 --workers 1
    .venv/bin/python benchmarks/bulk_ingest.py --profile 100000 --baseline main
    .venv/bin/python benchmarks/bulk_ingest.py --marginal 500000 --tail 20000 --baseline main \
        --keep /tmp/bulk-ingest
"""

from __future__ import annotations

import argparse
import csv
import os
import pstats
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import leadgen
from bench_output import Report, positive

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SIZES = "10000,100000"
DEFAULT_SEED = 20240612
# People per lead: leadgen's own default mix (3,000 people, 5,000 leads).
PEOPLE_SHARE = 0.6
COLUMNS = ("Имя", "Телефон", "Email", "Компания", "Источник", "Дата")
SOURCES = ("Сайт", "Авито", "Яндекс Директ", "Рекомендация", "")
PAGE = 4096


@dataclass(frozen=True)
class Run:
    code: str
    size: int
    seconds: float
    cpu_seconds: float
    peak_rss: int
    store_bytes: int
    new_leads: int

    @property
    def per_record(self) -> float:
        return self.seconds / self.size

    @property
    def cpu_per_record(self) -> float:
        return self.cpu_seconds / self.size


def write_csv(path: Path, size: int, seed: int) -> None:
    """`size` leads as a CRM export: one row each, in time order."""
    leads = leadgen.generate(max(1, int(size * PEOPLE_SHARE)), size, seed)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for index, record in enumerate(leads.records):
            writer.writerow((record.name, ", ".join(record.phones), ", ".join(record.emails),
                             record.company, SOURCES[index % len(SOURCES)],
                             record.received_at.strftime("%Y-%m-%d %H:%M:%S")))


def split_csv(path: Path, head: Path, tail: Path, head_rows: int) -> None:
    """The first `head_rows` rows of a CSV into `head`, the rest into `tail`,
    each with the header."""
    with path.open(encoding="utf-8", newline="") as source, \
            head.open("w", encoding="utf-8", newline="") as first, \
            tail.open("w", encoding="utf-8", newline="") as rest:
        reader = csv.reader(source)
        header = next(reader)
        writers = csv.writer(first), csv.writer(rest)
        for writer in writers:
            writer.writerow(header)
        for index, row in enumerate(reader):
            writers[index >= head_rows].writerow(row)


def export_revision(ref: str, into: Path) -> Path:
    """The tree of git revision `ref`, as files, to run its code."""
    into.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def tree_rss(root_pid: int) -> int:
    """Resident bytes of a process and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rpartition(")")[2].split()
        except OSError:
            continue
        pid = int(entry)
        children.setdefault(int(fields[1]), []).append(pid)
        rss[pid] = int(fields[21]) * PAGE
    total, stack = 0, [root_pid]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack += children.get(pid, [])
    return total


class PeakSampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.done = pid, 0, threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.05):
            self.peak = max(self.peak, tree_rss(self.pid))


def run_ingest(csv_path: Path, store: Path, pythonpath: Path | None,
               extra: Sequence[str]) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds and peak tree RSS of one `leadhub ingest` process."""
    env = dict(os.environ, LEADHUB_LOG_LEVEL="WARNING")
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    command = [sys.executable, "-c", "from leadhub.cli import app; app()", "ingest",
               str(csv_path), "--db", str(store), "--quiet", *extra]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, cwd=pythonpath or ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    sampler = PeakSampler(process.pid)
    sampler.start()
    out, err = process.communicate()
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    sampler.done.set()
    sampler.join()
    if process.returncode != 0:
        raise SystemExit(f"leadhub ingest failed ({process.returncode}):\n"
                         f"{out.decode()}\n{err.decode()}")
    return seconds, cpu, sampler.peak


# The parts of an ingest and the functions (file, name) whose cumulative time is each.
PROFILE_PARTS = (
    ("reading and decoding the file", [("connectors/files.py", "_read")]),
    ("storing raw items", [("connectors/ledger/items.py", "store_raw_items")]),
    ("phone parsing", [("transforms/phones.py", "normalize_phone"),
                       ("transforms/phones.py", "find_phones")]),
    ("email validation", [("transforms/emails.py", "normalize_email")]),
    ("name and company normalization", [("transforms/names.py", "normalize_name"),
                                        ("transforms/companies.py", "split_company")]),
    ("parsing and normalizing in all (the three above in it)",
     [("transforms/items.py", "lead_from_item")]),
    ("identity matching", [("transforms/dedupe.py", "resolve"),
                           ("transforms/dedupe.py", "apply"),
                           ("transforms/dedupe.py", "lead_facts")]),
    ("store reads (claims, contact book)", [("connectors/ledger/items.py", "claim_pending"),
                                            ("connectors/ledger/contacts.py", "load_book")]),
    ("store writes (leads, contacts, marks)", [
        ("connectors/ledger/contacts.py", "save_book"),
        ("connectors/ledger/leads.py", "save_lead"),
        ("connectors/ledger/leads.py", "save_leads"),
        ("connectors/ledger/items.py", "mark_item"),
        ("connectors/ledger/items.py", "mark_items")]),
)
PROFILED = "from leadhub.cli import app; app()\n"


def profile_ingest(csv_path: Path, store: Path, pythonpath: Path | None, work: Path) -> Path:
    """One ingest under cProfile, in one process; the stats file."""
    script, stats = work / "profiled.py", store.with_suffix(".prof")
    script.write_text(PROFILED)
    for old in work.glob(store.name + "*"):
        old.unlink()
    env = dict(os.environ, PYTHONPATH=str(pythonpath)) if pythonpath else None
    # one process for both codes, or the baseline's parsing would run in
    # worker processes the profiler does not see (a revision from before
    # `--workers` cannot be profiled against)
    extra = ["--workers", "1"]
    subprocess.run([sys.executable, "-m", "cProfile", "-o", str(stats), str(script), "ingest",
                    str(csv_path), "--db", str(store), "--quiet", *extra],
                   env=env, cwd=pythonpath or ROOT, check=True, capture_output=True)
    return stats


def profile_split(stats_file: Path) -> tuple[float, list[tuple[str, float]]]:
    """The whole run's seconds, and each part's."""
    stats = pstats.Stats(str(stats_file)).stats  # type: ignore[attr-defined]
    total = max(cumulative for _, _, _, cumulative, _ in stats.values())
    parts = []
    for part, functions in PROFILE_PARTS:
        seconds = sum(cumulative for (path, _, name), (_, _, _, cumulative, _) in stats.items()
                      if any(path.endswith(file) and name == wanted
                             for file, wanted in functions))
        parts.append((part, seconds))
    return total, parts


def profile_rows(splits: dict[str, tuple[float, list[tuple[str, float]]]]) -> list[list[str]]:
    codes = list(splits)
    rows = []
    for index, (part, _) in enumerate(PROFILE_PARTS):
        row = [part]
        for code in codes:
            total, parts = splits[code]
            seconds = parts[index][1]
            row.append(f"{seconds:,.1f} s ({seconds / total:.0%})")
        rows.append(row)
    rows.append(["the whole run", *(f"{splits[code][0]:,.1f} s" for code in codes)])
    return rows


def store_bytes(store: Path) -> int:
    return sum(path.stat().st_size for path in store.parent.glob(store.name + "*"))


def count_leads(store: Path) -> int:
    import sqlite3

    with sqlite3.connect(store) as connection:
        return connection.execute("select count(*) from leads").fetchone()[0]


def measure(code: str, csv_path: Path, size: int, work: Path, pythonpath: Path | None,
            extra: Sequence[str]) -> Run:
    store = work / f"{code}-{size}.db"
    for old in work.glob(store.name + "*"):
        old.unlink()
    seconds, cpu, peak = run_ingest(csv_path, store, pythonpath, extra)
    return Run(code, size, seconds, cpu, peak, store_bytes(store), count_leads(store))


# Columns that say when a row was written, not what it holds.
WRITE_TIMES = {"updated_at", "ingested_at", "processed_at", "claimed_at", "claimed_by",
               "marked_at", "found_at", "merged_at", "last_success_at", "last_attempt_at"}
# Tables about the run itself (its id, its times), not what it stored.
RUN_TABLES = {"runs", "source_status", "alembic_version", "leadhub_schema"}
# Checkpoints about the run, not what it stored: the contact generation counts
# the transactions that took the contacts lock (how the code batched its work).
RUN_CHECKPOINTS = "NOT (source = 'contacts' AND scope = 'generation')"


def store_contents(store: Path) -> dict[str, list[tuple]]:
    """Every table's rows, sorted, without write times and surrogate ids."""
    import sqlite3

    contents = {}
    with sqlite3.connect(store) as connection:
        tables = [name for (name,) in connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'") if name not in RUN_TABLES]
        for table in tables:
            columns = [row[1] for row in connection.execute(f"PRAGMA table_info({table})")
                       if row[1] not in WRITE_TIMES and not (row[5] and row[2] == "INTEGER")]
            if table == "raw_items":  # when the file was read: the run's own moment
                columns.remove("received_at")
            where = f" WHERE {RUN_CHECKPOINTS}" if table == "checkpoints" else ""
            contents[table] = sorted(connection.execute(
                f"SELECT {', '.join(columns)} FROM {table}{where}").fetchall(), key=repr)
    return contents


def different_tables(runs: Sequence[Run], work: Path) -> dict[int, list[str]]:
    """Per size run by both codes: the tables whose contents differ."""
    found = {}
    for run in runs:
        other = next((r for r in runs if r.code != run.code and r.size == run.size
                      and run.code == "this"), None)
        if other is not None:
            mine = store_contents(work / f"this-{run.size}.db")
            theirs = store_contents(work / f"{other.code}-{run.size}.db")
            found[run.size] = sorted(t for t in mine.keys() | theirs.keys()
                                     if mine.get(t) != theirs.get(t))
    return found


def mib(value: int) -> str:
    return f"{value / 2**20:,.0f} MiB"


def table_rows(runs: Sequence[Run]) -> list[list[str]]:
    rows = []
    for run in runs:
        smallest = min((r for r in runs if r.code == run.code), key=lambda r: r.size)
        other = next((r for r in runs if r.code != run.code and r.size == run.size
                      and run.code == "this"), None)
        faster = (f"{other.seconds / run.seconds:.1f}x / {other.cpu_seconds / run.cpu_seconds:.1f}x"
                  if other else "")
        rows.append([run.code, f"{run.size:,}", f"{run.seconds:,.1f} s",
                     f"{run.cpu_seconds:,.1f} s", f"{run.size / run.seconds:,.0f}", faster,
                     mib(run.peak_rss),
                     mib(run.store_bytes), f"{run.store_bytes / max(run.new_leads, 1):,.0f}",
                     f"{run.per_record / smallest.per_record:.2f} / "
                     f"{run.cpu_per_record / smallest.cpu_per_record:.2f}"])
    return rows


@dataclass(frozen=True)
class TailRun:
    code: str
    into: str  # "big" or "empty"
    seconds: float
    cpu_seconds: float
    peak_rss: int


def base_store(args: argparse.Namespace, work: Path, report: Report) -> tuple[Path, Path]:
    """The store of `--marginal` rows (built by this code unless kept from
    an earlier run with the same rows, tail and seed) and the tail's CSV."""
    name = f"marginal-{args.marginal}-{args.tail}-{args.seed}"
    store, tail = work / f"{name}.db", work / f"{name}-tail.csv"
    if store.exists() and tail.exists():
        report.line(f"the store of {args.marginal:,} rows kept in {store}")
        return store, tail
    whole, head = work / f"{name}-all.csv", work / f"{name}-head.csv"
    write_csv(whole, args.marginal + args.tail, args.seed)
    split_csv(whole, head, tail, args.marginal)
    whole.unlink()
    building = work / f"{name}.building.db"
    for old in work.glob(building.name + "*"):
        old.unlink()
    seconds, _, _ = run_ingest(head, building, None, [])
    for suffix in ("", "-wal", "-shm"):  # a whole store or none under the kept name
        if Path(f"{building}{suffix}").exists():
            os.replace(f"{building}{suffix}", f"{store}{suffix}")
    head.unlink()
    report.line(f"built the store of {args.marginal:,} rows in {seconds:,.0f} s")
    return store, tail


def copy_store_files(store: Path, into: Path) -> None:
    """A SQLite store's file and its WAL, over whatever `into` was."""
    for old in into.parent.glob(into.name + "*"):
        old.unlink()
    for suffix in ("", "-wal"):
        if Path(f"{store}{suffix}").exists():
            shutil.copyfile(f"{store}{suffix}", f"{into}{suffix}")


def marginal(args: argparse.Namespace, work: Path, baseline: Path | None,
             report: Report) -> None:
    store, tail = base_store(args, work, report)
    leads_before = count_leads(store)
    codes = [("this", None, ["--workers", str(args.workers)] if args.workers else [])]
    if baseline is not None:
        codes.append((args.baseline, baseline, []))
    runs: list[TailRun] = []
    for repeat in range(args.repeats):
        for code, pythonpath, extra in codes:
            for into in ("big", "empty"):
                target = work / f"tail-{into}.db"
                if into == "big":
                    copy_store_files(store, target)
                else:
                    for old in work.glob(target.name + "*"):
                        old.unlink()
                seconds, cpu, peak = run_ingest(tail, target, pythonpath, extra)
                runs.append(TailRun(code, into, seconds, cpu, peak))
                report.line(f"round {repeat + 1}, {code}, into the {into} store:"
                            f" {seconds:.1f} s, {cpu:.1f} s of CPU")
    load = os.getloadavg()[1]
    report.table(
        f"{args.tail:,} rows more into a store of {leads_before:,} leads ({args.marginal:,}"
        f" rows) and into an empty one, {args.repeats} rounds each, the codes taking turns"
        f" ({os.cpu_count()} cores, load average {load:.1f} over the last 5 minutes,"
        f" seed {args.seed})",
        ["code", "into", "wall, median (min-max)", "CPU, median (min-max)", "CPU/row",
         "CPU/row vs empty", "CPU speed-up vs " + (args.baseline or "-"), "peak RSS"],
        marginal_rows(runs, args.tail), left=["code", "into"])


def marginal_rows(runs: Sequence[TailRun], rows: int) -> list[list[str]]:
    """Per code and store: medians and spreads, the big store against the
    empty one, and this code against the baseline (CPU medians)."""
    def median_cpu(code: str, into: str) -> float:
        return statistics.median(r.cpu_seconds for r in runs if (r.code, r.into) == (code, into))

    table = []
    codes = list(dict.fromkeys(run.code for run in runs))
    for code in codes:
        for into in ("big", "empty"):
            mine = [r for r in runs if (r.code, r.into) == (code, into)]
            walls, cpus = [r.seconds for r in mine], [r.cpu_seconds for r in mine]
            cpu = statistics.median(cpus)
            against = (f"{median_cpu(codes[1], into) / cpu:.2f}x"
                       if code == "this" and len(codes) > 1 else "")
            table.append([
                code, into,
                f"{statistics.median(walls):,.1f} s ({min(walls):,.1f}-{max(walls):,.1f})",
                f"{cpu:,.1f} s ({min(cpus):,.1f}-{max(cpus):,.1f})",
                f"{cpu / rows * 1e3:,.2f} ms",
                f"{cpu / median_cpu(code, 'empty'):.2f}", against,
                mib(max(r.peak_rss for r in mine))])
    return table


def parse_sizes(text: str) -> list[int]:
    return sorted({positive(part) for part in text.split(",") if part.strip()})


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=parse_sizes, default=parse_sizes(DEFAULT_SIZES),
                        help=f"rows per run, comma-separated (default {DEFAULT_SIZES})")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--baseline", metavar="REF", default=None,
                        help="also run the code of this git revision (e.g. main)")
    parser.add_argument("--baseline-sizes", type=parse_sizes, default=parse_sizes("100000"),
                        help="the sizes the baseline runs (default 100000)")
    parser.add_argument("--workers", type=positive, default=None,
                        help="pass --workers N to this code's ingest")
    parser.add_argument("--profile", type=positive, metavar="ROWS", default=None,
                        help="profile one ingest of ROWS rows instead of timing the sizes")
    parser.add_argument("--marginal", type=positive, metavar="ROWS", default=None,
                        help="measure the rows that follow ROWS rows already stored")
    parser.add_argument("--tail", type=positive, default=20000,
                        help="with --marginal: the rows ingested into the big store"
                             " (default 20000)")
    parser.add_argument("--repeats", type=positive, default=3,
                        help="with --marginal: rounds of each code (default 3)")
    parser.add_argument("--keep", type=Path, default=None,
                        help="keep the CSVs and stores in this folder")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    report = Report()
    work = args.keep or Path(tempfile.mkdtemp(prefix="bulk-ingest-"))
    work.mkdir(parents=True, exist_ok=True)
    baseline = export_revision(args.baseline, work / "baseline") if args.baseline else None
    extra = ["--workers", str(args.workers)] if args.workers else []
    if args.profile or args.marginal:
        try:
            (profile if args.profile else marginal)(args, work, baseline, report)
        finally:
            if args.keep is None:
                shutil.rmtree(work, ignore_errors=True)
        return
    runs: list[Run] = []
    try:
        for size in args.sizes:
            csv_path = work / f"leads-{size}.csv"
            if not csv_path.exists():
                write_csv(csv_path, size, args.seed)
            runs.append(measure("this", csv_path, size, work, None, extra))
            report.line(f"{size:,} rows: {runs[-1].seconds:.1f} s")
            if baseline is not None and size in args.baseline_sizes:
                runs.append(measure(args.baseline, csv_path, size, work, baseline, []))
                report.line(f"{size:,} rows, {args.baseline}: {runs[-1].seconds:.1f} s")
        differences = different_tables(runs, work)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    load = os.getloadavg()[1]
    report.table(
        f"leadhub ingest FILE.csv, whole process ({os.cpu_count()} cores, load average"
        f" {load:.1f} over the last 5 minutes, seed {args.seed})",
        ["code", "rows", "wall", "CPU", "rows/s", "speed-up wall / CPU", "peak RSS", "store",
         "bytes/lead", "time/row vs smallest wall / CPU"], table_rows(runs), left=["code"])
    for size, tables in differences.items():
        report.line(f"{size:,} rows: the same store as {args.baseline}" if not tables else
                    f"{size:,} rows: the store differs from {args.baseline}'s in "
                    + ", ".join(tables))


def profile(args: argparse.Namespace, work: Path, baseline: Path | None, report: Report) -> None:
    csv_path = work / f"leads-{args.profile}.csv"
    if not csv_path.exists():
        write_csv(csv_path, args.profile, args.seed)
    splits = {"this": profile_split(profile_ingest(
        csv_path, work / f"profile-this-{args.profile}.db", None, work))}
    if baseline is not None:
        splits[args.baseline] = profile_split(profile_ingest(
            csv_path, work / f"profile-base-{args.profile}.db", baseline, work))
    report.table(f"Where the time of an ingest of {args.profile:,} rows goes (cProfile, one"
                 " process; cumulative time, parts overlap where one calls another)",
                 ["part", *splits], profile_rows(splits), left=["part"])


if __name__ == "__main__":
    main()
