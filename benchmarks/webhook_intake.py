"""Web-form intake against the real endpoint on loopback: requests/s, POST -> lead latency.

The script writes a config into a temporary folder (one form `bench`, preset
generic, token auth, `web.requests_per_minute` 10,000,000 so the limiter never
answers 429, `web.process_debounce_seconds` 0.2) and starts the endpoint in a
separate process, exactly as `leadhub serve` does: `flows.serve.start_web`,
which runs uvicorn in a thread and processes what the endpoint stored through
`flows.intake.process_pending` (debounced, in a background thread of the
server process). The load generator runs in this process, so it does not share
the GIL with the server (it does share the machine's CPUs). Traffic goes to
127.0.0.1 only (the sessions ignore proxy settings from the environment). The
server is stopped at the end, also on Ctrl-C or an error.

A post is a small JSON object the generic preset reads: `id` (the submission
id), `name`, a distinct Russian mobile `phone` and a `message`. Before the
clock starts every client thread posts once and the benchmark waits until
those posts are leads: the server has then opened its per-thread ledgers and
loaded the processing rules.

It measures:

1. sustained intake: `--requests` posts (default 2,000) from `--concurrency`
   client threads (default 16), each with its own `requests.Session`
   (keep-alive), taking the next post number from a shared queue. It reports
   requests/s (every post must be answered 202), p50/p95/max latency of a
   request, and the raw items in the ledger afterwards, which must equal the
   posts answered 202 (the endpoint commits before it answers). Processing
   runs meanwhile, as in production; the table also says how long after the
   last 202 the processing backlog was empty;
2. POST -> lead latency: `--latency-submissions` posts (default 100), one at a
   time with `--pause` seconds (default 0.1) after each lead appeared. For
   each, the SQLite store is polled every 5 ms until the raw item with the
   returned submission_id has a `lead_id` that is in the `leads` table;
3. SQLite work per request: the transactions `Ledger.store_submission` (what
   the endpoint calls) runs for a new post and for a repeat, traced with
   `sqlite3.Connection.set_trace_callback` on a scratch ledger in this
   process, and the query plan of its repeat check.

Run from the repository root:

    PYTHONPATH=. .venv/bin/python benchmarks/webhook_intake.py
    PYTHONPATH=. .venv/bin/python benchmarks/webhook_intake.py --requests 5000 --concurrency 32
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import queue
import re
import socket
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import requests
from bench_output import Report, positive

from connectors.ledger import Ledger
from connectors.webhook import _raw_item
from flows.intake import PROCESS_BATCH
from leadhub.settings import Settings, WebhookSourceConfig, load_settings
from transforms.form_presets import parse_form_post

REPO = Path(__file__).resolve().parents[1]
FORM = "bench"
SECRET = "bench-secret-7f3a"
TOKEN_HEADER = "X-LeadHub-Token"
DEBOUNCE_SECONDS = 0.2
REQUESTS_PER_MINUTE = 10_000_000
DEFAULT_REQUESTS = 2_000
DEFAULT_CONCURRENCY = 16
DEFAULT_LATENCY_SUBMISSIONS = 100
DEFAULT_PAUSE = 0.1  # seconds after a lead appeared before the next post (test 2)
DEFAULT_TIME_LIMIT = 180.0  # seconds per test; nothing new is posted after it
REQUEST_TIMEOUT = 10.0
READY_TIMEOUT = 90.0  # for the server process to answer /healthz (imports Prefect)
DRAIN_TIMEOUT = 120.0  # for the processing backlog to empty
LEAD_TIMEOUT = 15.0  # for one post of test 2 to become a lead
POLL_SECONDS = 0.005  # store polling in test 2
STOP_TIMEOUT = 45.0  # for the server process to stop after its stdin closes
ERROR_SAMPLES = 3

# The server process: the endpoint as `leadhub serve` runs it. It stops when
# its stdin closes (the benchmark closed it, or died), on SIGTERM, or after
# its lifetime, whichever comes first.
SERVER_SCRIPT = textwrap.dedent(
    """
    import signal, sys, threading
    from pathlib import Path
    from flows.serve import start_web
    from leadhub.settings import load_settings

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    closed = threading.Event()

    def watch_stdin():
        sys.stdin.read()
        closed.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    server = start_web(load_settings(Path(sys.argv[1])))
    print("bench server ready", flush=True)
    try:
        closed.wait(float(sys.argv[2]))
    finally:
        server.stop()
    """
)


# --- the server process ---------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def write_config(folder: Path) -> Path:
    path = folder / "leadhub.yaml"
    path.write_text(
        "store: leadhub.db\n"
        "web:\n"
        "  host: 127.0.0.1\n"
        f"  port: {free_port()}\n"
        f"  requests_per_minute: {REQUESTS_PER_MINUTE}\n"
        f"  process_debounce_seconds: {DEBOUNCE_SECONDS}\n"
        "sources:\n"
        f"  - {{type: webhook, form: {FORM}, preset: generic, auth: token, secret: {SECRET}}}\n",
        encoding="utf-8",
    )
    return path


class ServerProcess:
    """`start_web` in a child process of its own; output goes to a log file."""

    def __init__(self, config: Path, settings: Settings, lifetime: float, log_path: Path):
        self.url = f"http://{settings.web.host}:{settings.web.port}"
        self.log_path = log_path
        self._log = log_path.open("wb")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)}
        # A session of its own: Ctrl-C reaches only this process, which then
        # stops the server cleanly in its finally.
        self.process = subprocess.Popen(
            [sys.executable, "-c", SERVER_SCRIPT, str(config), f"{lifetime:.0f}"],
            cwd=REPO,
            env=env,
            stdin=subprocess.PIPE,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_ready(self, timeout: float) -> float:
        """Seconds until /healthz answered 200."""
        started = time.perf_counter()
        deadline = time.monotonic() + timeout
        with requests.Session() as session:
            session.trust_env = False
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(
                        f"the server process exited with {self.process.returncode}:\n"
                        + self.log_tail())
                try:
                    if session.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                        return time.perf_counter() - started
                except requests.RequestException:
                    pass
                time.sleep(0.1)
        raise RuntimeError(f"the server did not answer /healthz in {timeout:.0f} s:\n"
                           + self.log_tail())

    def cpu_seconds(self) -> float | None:
        """User + system CPU of the server process (all its threads), Linux only."""
        try:
            stat = Path(f"/proc/{self.pid}/stat").read_text()
        except OSError:
            return None
        fields = stat.rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> int | None:
        if self.process.poll() is None:
            try:
                self.process.stdin.close()
            except OSError:
                pass
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.terminate()
                try:
                    self.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(timeout=10)
        self._log.close()
        return self.process.returncode

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])


# --- posting ----------------------------------------------------------------------------


def post_body(prefix: str, number: int, mobile_code: str) -> bytes:
    """A generic-preset post with a distinct phone for every (mobile_code, number)."""
    return json.dumps(
        {
            "id": f"{prefix}-{number:06d}",
            "name": f"Клиент {prefix}-{number}",
            "phone": f"+7 {mobile_code} {number:07d}",
            "message": f"Заявка {number}: интересует поставка, перезвоните после обеда",
        },
        ensure_ascii=False,
    ).encode()


def new_session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # no proxies from the environment: loopback only
    session.headers.update({TOKEN_HEADER: SECRET, "Content-Type": "application/json"})
    return session


@dataclass
class Answer:
    number: int
    status: int  # 0: no answer (an exception)
    seconds: float
    sent: float  # time.perf_counter when the call was made
    submission_id: str = ""
    error: str = ""


def post(session: requests.Session, url: str, number: int, body: bytes) -> Answer:
    sent = time.perf_counter()
    try:
        response = session.post(url, data=body, timeout=REQUEST_TIMEOUT)
    except requests.RequestException as error:
        return Answer(number, 0, time.perf_counter() - sent, sent, error=type(error).__name__)
    seconds = time.perf_counter() - sent
    answer = Answer(number, response.status_code, seconds, sent)
    if response.status_code == 202:
        try:
            answer.submission_id = response.json()["submission_id"]
        except (ValueError, KeyError):
            answer.error = f"202 without a submission_id: {response.text[:200]!r}"
    else:
        answer.error = f"{response.status_code}: {response.text[:200]}"
    return answer


# --- the store, read from this process ------------------------------------------------


class Store:
    """Read-only looks at the server's SQLite store (WAL: readers never block it)."""

    def __init__(self, path: Path):
        self.db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10,
                                  isolation_level=None, check_same_thread=False)

    def close(self) -> None:
        self.db.close()

    def item_ids(self, prefix: str) -> set[str]:
        rows = self.db.execute("SELECT item_id FROM raw_items WHERE item_id LIKE ?",
                               (f"form:{FORM}:{prefix}-%",))
        return {row[0] for row in rows}

    def pending(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM raw_items WHERE state = 'new'").fetchone()[0]

    def states(self, prefix: str) -> Counter:
        rows = self.db.execute(
            "SELECT state, COUNT(*) FROM raw_items WHERE item_id LIKE ? GROUP BY state",
            (f"form:{FORM}:{prefix}-%",))
        return Counter(dict(rows.fetchall()))

    def leads(self, prefix: str) -> int:
        return self.db.execute(
            "SELECT COUNT(*) FROM raw_items r JOIN leads l ON l.lead_id = r.lead_id"
            " WHERE r.item_id LIKE ?", (f"form:{FORM}:{prefix}-%",)).fetchone()[0]

    def lead_of(self, item_id: str) -> tuple[str, bool]:
        """(state of the raw item or '' when missing, whether its lead is in `leads`)."""
        row = self.db.execute(
            "SELECT r.state, EXISTS (SELECT 1 FROM leads l WHERE l.lead_id = r.lead_id)"
            " FROM raw_items r WHERE r.item_id = ?", (item_id,)).fetchone()
        return (row[0], bool(row[1])) if row else ("", False)

    def wait_drained(self, timeout: float) -> float | None:
        """Seconds until no raw item is new, None if it did not happen in time."""
        started = time.perf_counter()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.pending():
                return time.perf_counter() - started
            time.sleep(0.05)
        return None


# --- warm-up and 1. sustained intake ------------------------------------------------------


def warm_up(server: ServerProcess, store: Store, sessions: Sequence[requests.Session]) -> None:
    """One post per client session, in parallel, then wait until they are leads."""
    url = f"{server.url}/forms/{FORM}"
    answers: list[Answer] = []

    def one(index: int, session: requests.Session) -> None:
        answers.append(post(session, url, index, post_body("warm", index, "925")))

    threads = [threading.Thread(target=one, args=(i, s), daemon=True)
               for i, s in enumerate(sessions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=REQUEST_TIMEOUT + 5)
    bad = [a for a in answers if a.status != 202]
    if bad or len(answers) != len(sessions):
        raise RuntimeError(f"warm-up posts failed: {[a.error for a in bad][:ERROR_SAMPLES]}\n"
                           + server.log_tail())
    if store.wait_drained(DRAIN_TIMEOUT) is None:
        raise RuntimeError("the warm-up posts were not processed in time:\n" + server.log_tail())


@dataclass
class Intake:
    requests: int
    concurrency: int
    answers: list[Answer]
    seconds: float
    stored: int
    missing: int
    drain_seconds: float | None
    leads: int
    states: Counter
    server_cpu: float | None
    client_cpu: float
    timed_out: bool

    @property
    def accepted(self) -> list[Answer]:
        return [a for a in self.answers if a.status == 202 and a.submission_id]


def sustained_intake(
    server: ServerProcess,
    store: Store,
    sessions: Sequence[requests.Session],
    count: int,
    time_limit: float,
) -> Intake:
    url = f"{server.url}/forms/{FORM}"
    numbers: queue.SimpleQueue[int] = queue.SimpleQueue()
    for number in range(count):
        numbers.put(number)
    bodies = [post_body("p1", number, "912") for number in range(count)]
    results: list[list[Answer]] = [[] for _ in sessions]
    start = threading.Barrier(len(sessions) + 1)
    stop = threading.Event()
    deadline: list[float] = []

    def client(index: int, session: requests.Session) -> None:
        try:
            start.wait(timeout=60)
        except threading.BrokenBarrierError:
            return
        mine = results[index]
        while not stop.is_set() and time.monotonic() < deadline[0]:
            try:
                number = numbers.get_nowait()
            except queue.Empty:
                return
            mine.append(post(session, url, number, bodies[number]))

    threads = [threading.Thread(target=client, args=(i, s), name=f"client-{i}", daemon=True)
               for i, s in enumerate(sessions)]
    for thread in threads:
        thread.start()
    server_cpu = server.cpu_seconds()
    client_cpu = time.process_time()
    deadline.append(time.monotonic() + time_limit)
    began = time.perf_counter()
    start.wait(timeout=60)
    try:
        for thread in threads:
            thread.join(timeout=max(0.0, deadline[0] - time.monotonic()) + REQUEST_TIMEOUT + 5)
    finally:
        stop.set()
    seconds = time.perf_counter() - began
    server_after = server.cpu_seconds()
    client_cpu = time.process_time() - client_cpu
    answers = sorted((a for mine in results for a in mine), key=lambda a: a.sent)
    returned = {a.submission_id for a in answers if a.status == 202 and a.submission_id}
    stored = store.item_ids("p1")
    drain = store.wait_drained(DRAIN_TIMEOUT)
    return Intake(
        requests=count,
        concurrency=len(sessions),
        answers=answers,
        seconds=seconds,
        stored=len(stored),
        missing=len(returned - stored),
        drain_seconds=drain,
        leads=store.leads("p1"),
        states=store.states("p1"),
        server_cpu=None if server_cpu is None or server_after is None
        else server_after - server_cpu,
        client_cpu=client_cpu,
        timed_out=len(answers) < count,
    )


# --- 2. POST -> lead ----------------------------------------------------------------------


@dataclass
class LeadTiming:
    number: int
    sent: float
    answered: float
    stored: float | None  # None: not a lead within LEAD_TIMEOUT
    state: str


@dataclass
class LeadLatency:
    timings: list[LeadTiming] = field(default_factory=list)
    failed: list[Answer] = field(default_factory=list)
    seconds: float = 0.0

    def series_ms(self, since: str) -> list[float]:
        return [(t.stored - getattr(t, since)) * 1000 for t in self.timings if t.stored]

    def answer_ms(self) -> list[float]:
        return [(t.answered - t.sent) * 1000 for t in self.timings]


def post_to_lead(
    server: ServerProcess,
    store: Store,
    session: requests.Session,
    count: int,
    pause: float,
    time_limit: float,
) -> LeadLatency:
    url = f"{server.url}/forms/{FORM}"
    result = LeadLatency()
    began = time.perf_counter()
    deadline = time.monotonic() + time_limit
    for number in range(count):
        if time.monotonic() > deadline:
            break
        answer = post(session, url, number, post_body("p2", number, "916"))
        answered = time.perf_counter()
        if answer.status != 202 or not answer.submission_id:
            result.failed.append(answer)
            continue
        stored, state = None, ""
        wait_until = time.monotonic() + LEAD_TIMEOUT
        while time.monotonic() < wait_until:
            state, is_lead = store.lead_of(answer.submission_id)
            if is_lead:
                stored = time.perf_counter()
                break
            if state in ("skipped", "quarantined"):
                break
            time.sleep(POLL_SECONDS)
        result.timings.append(LeadTiming(number, answer.sent, answered, stored, state))
        time.sleep(pause)
    result.seconds = time.perf_counter() - began
    return result


# --- 3. SQLite work per request --------------------------------------------------------------

_LABEL = re.compile(
    r"^\s*(BEGIN(?: IMMEDIATE| EXCLUSIVE| DEFERRED)?|COMMIT|ROLLBACK|SAVEPOINT|RELEASE|"
    r"INSERT(?: OR \w+)? INTO \w+|UPDATE \w+|DELETE FROM \w+|SELECT|PRAGMA \w+)",
    re.IGNORECASE,
)


def statement_label(sql: str) -> str:
    match = _LABEL.match(sql)
    if not match:
        return " ".join(sql.split()[:2])
    label = " ".join(match.group(1).split())  # as the code writes it
    if label.upper() == "SELECT":
        table = re.search(r"\bFROM\s+(\w+)", sql, re.IGNORECASE)
        label += f" {table.group(1)}" if table else ""
    return label


@dataclass
class Traced:
    case: str
    statements: list[str]

    @property
    def transactions(self) -> int:
        return sum(1 for s in self.statements if s.upper().startswith("BEGIN"))


@dataclass
class SqliteWork:
    traced: list[Traced]
    repeat_check_plan: list[str]


def sqlite_work(folder: Path, settings: Settings) -> SqliteWork:
    """Trace what store_submission runs for a new post and for its repeat, on a
    scratch ledger built like the endpoint's (never the server's store)."""
    form = next(s for s in settings.sources if isinstance(s, WebhookSourceConfig))
    decoded = json.loads(post_body("trace", 1, "903"))
    item = _raw_item(form, decoded, parse_form_post(form.preset, decoded).submission_id)
    ledger = Ledger(folder / "trace.db")
    statements: list[str] = []
    traced = []
    try:
        ledger.db.set_trace_callback(statements.append)
        for case in ("new post (202)", "repeat of it (200 duplicate)"):
            statements.clear()
            ledger.store_submission(item, settings.web.duplicate_window_seconds)
            traced.append(Traced(case, list(statements)))
        ledger.db.set_trace_callback(None)
        check = next((s for s in traced[0].statements if s.lstrip().upper().startswith("SELECT")),
                     "")
        plan = [row[3] for row in ledger.db.execute(f"EXPLAIN QUERY PLAN {check}")] if check \
            else []
    finally:
        ledger.close()
    return SqliteWork(traced, plan)


# --- output -------------------------------------------------------------------------------


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile (share in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, math.ceil(share / 100 * len(ordered)))
    return ordered[rank - 1]


def ms(values: Sequence[float], share: float) -> str:
    return f"{percentile(values, share):.1f}" if values else "-"


INTAKE_COLUMNS = (
    "posts",
    "threads",
    "202",
    "other",
    "wall s",
    "req/s",
    "p50 ms",
    "p95 ms",
    "max ms",
    "raw items",
    "= 202s",
    "backlog empty s",
    "server CPU s",
    "client CPU s",
)
LATENCY_COLUMNS = ("interval", "posts", "min ms", "p50 ms", "p95 ms", "max ms")
SQLITE_COLUMNS = ("case", "transactions", "statements, in order")


def intake_row(intake: Intake) -> list[str]:
    accepted = intake.accepted
    latencies = [a.seconds * 1000 for a in intake.answers]
    return [
        f"{intake.requests:,}",
        f"{intake.concurrency}",
        f"{len(accepted):,}",
        f"{len(intake.answers) - len(accepted):,}",
        f"{intake.seconds:.2f}",
        f"{len(accepted) / intake.seconds:,.0f}",
        ms(latencies, 50),
        ms(latencies, 95),
        ms(latencies, 100),
        f"{intake.stored:,}",
        "yes" if intake.stored == len(accepted) == intake.requests and not intake.missing
        else "NO",
        "-" if intake.drain_seconds is None else f"{intake.drain_seconds:.2f}",
        "-" if intake.server_cpu is None else f"{intake.server_cpu:.1f}",
        f"{intake.client_cpu:.1f}",
    ]


def latency_rows(latency: LeadLatency) -> list[list[str]]:
    rows = []
    for label, values in (
        ("POST sent -> lead in the store", latency.series_ms("sent")),
        ("202 received -> lead in the store", latency.series_ms("answered")),
        ("POST sent -> 202 received", latency.answer_ms()),
    ):
        rows.append([label, f"{len(values)}", ms(values, 0), ms(values, 50), ms(values, 95),
                     ms(values, 100)])
    return rows


def sqlite_rows(work: SqliteWork) -> list[list[str]]:
    rows = [[t.case, f"{t.transactions}", " > ".join(statement_label(s) for s in t.statements)]
            for t in work.traced]
    rows.append(["first post on a new threadpool thread (extra)", "0 explicit",
                 "connect > PRAGMA journal_mode > PRAGMA synchronous > PRAGMA foreign_keys >"
                 " CREATE TABLE IF NOT EXISTS schema_version > SELECT schema_version"])
    rows.append(["processing, per run of the worker", "1 per batch",
                 f"up to {PROCESS_BATCH:,} pending items per write transaction"])
    return rows


def tenths_ms(answers: Sequence[Answer]) -> tuple[str, str]:
    """p50 of the first and the last tenth of the posts, in the order they were sent."""
    tenth = max(1, len(answers) // 10)
    first = [a.seconds * 1000 for a in answers[:tenth]]
    last = [a.seconds * 1000 for a in answers[-tenth:]]
    return ms(first, 50), ms(last, 50)


def intake_notes(intake: Intake, time_limit: float) -> list[str]:
    statuses = Counter(a.status for a in intake.answers)
    errors = [a.error for a in intake.answers if a.status != 202 or not a.submission_id]
    first, last = tenths_ms(intake.answers)
    slow = sum(1 for a in intake.answers if a.seconds > 0.1)
    slowest = ", ".join(f"{a.seconds * 1000:.0f}" for a in
                        sorted(intake.answers, key=lambda a: a.seconds, reverse=True)[:12])
    server_share = ""
    if intake.server_cpu is not None and intake.accepted:
        server_share = (
            f" Server: {intake.server_cpu / intake.seconds:.0%} of one CPU over the test"
            f" (its Python code runs under one GIL; only SQLite calls and I/O run beside it),"
            f" {intake.server_cpu / len(intake.accepted) * 1000:.1f} ms CPU per post,"
            " endpoint and processing together."
        )
    notes = [
        f"[1] {intake.concurrency} client threads, one requests.Session each (keep-alive), after"
        " one untimed warm-up post per session (processed before the clock starts). wall s:"
        " from releasing the threads to the last answer; req/s = posts answered 202 / wall s;"
        " latency: time.perf_counter around Session.post, all posts.",
        "[1] raw items: rows in raw_items with this test's ids right after the last answer;"
        " '= 202s' says they equal both the posts and the 202s, and every returned"
        f" submission_id is among them (missing: {intake.missing}).",
        "[1] backlog empty s: after the last answer, until no raw item is 'new' (the debounced"
        " worker runs process_pending in the server process during the test, sharing its"
        f" GIL and the SQLite write lock with the endpoint). Leads from this test's posts:"
        f" {intake.leads:,}; raw item states: "
        + ", ".join(f"{state} {n:,}" for state, n in sorted(intake.states.items())) + ".",
        "[1] server CPU s: user + system CPU of the server process during the test"
        " (/proc/PID/stat); client CPU s: this process (time.process_time). Both run on the"
        f" same {os.cpu_count()} CPU(s), so the client's share is taken from the server."
        + server_share,
        f"[1] Latency p50 of the first / last tenth of the posts (in the order sent): {first} /"
        f" {last} ms (the repeat check scans all of raw_items, see [3]: later posts read more"
        f" rows). Posts over"
        f" 100 ms: {slow:,}; the slowest: {slowest} ms. Every threadpool thread has its own"
        " SQLite connection and starts with BEGIN IMMEDIATE: one that finds the write lock"
        " taken (by another post or the processing transaction) is not queued but sleeps and"
        " retries in SQLite's default busy handler (1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50 ms,"
        " 228 ms in all, then 100 ms a try, up to the 30 s timeout), so the tail comes in"
        " steps of about 100 ms above ~230 ms, and a post can lose several rounds.",
        f"[1] Answers by status: {dict(sorted(statuses.items()))} (0 = no answer).",
    ]
    if errors:
        notes.append(f"[1] Not 202 ({len(errors)}), first {ERROR_SAMPLES}: "
                     + "; ".join(errors[:ERROR_SAMPLES]))
    if intake.timed_out:
        notes.append(f"[1] Stopped by --time-limit {time_limit:g} s after"
                     f" {len(intake.answers):,} of {intake.requests:,} posts.")
    return notes


def latency_notes(latency: LeadLatency, pause: float) -> list[str]:
    not_leads = [t for t in latency.timings if t.stored is None]
    notes = [
        f"[2] {len(latency.timings) + len(latency.failed)} posts one at a time on one session;"
        f" the next is sent {pause:g} s after the previous one became a lead. Test wall time:"
        f" {latency.seconds:.1f} s.",
        "[2] lead in the store: the first poll (every"
        f" {POLL_SECONDS * 1000:.0f} ms, a read-only SQLite connection in this process) that"
        " finds the raw item's lead_id in the leads table; add up to one poll interval of"
        " resolution.",
        f"[2] Includes the debounce: the endpoint's worker sleeps process_debounce_seconds ="
        f" {DEBOUNCE_SECONDS:g} s after a post wakes it, then runs process_pending (open a"
        " Ledger, build the rules, parse/normalize/dedupe, one write transaction). A figure"
        f" under {DEBOUNCE_SECONDS * 1000:.0f} ms is a post the worker's current run picked up"
        " without a new wake-up.",
        "[2] POST sent -> 202 received: the endpoint unloaded (one post at a time), with the"
        " processing of the previous post already done.",
    ]
    if not_leads:
        states = Counter(t.state or "missing" for t in not_leads)
        notes.append(f"[2] Not a lead within {LEAD_TIMEOUT:g} s: {len(not_leads)}"
                     f" ({dict(states)}).")
    if latency.failed:
        notes.append(f"[2] Not 202 ({len(latency.failed)}): "
                     + "; ".join(a.error for a in latency.failed[:ERROR_SAMPLES]))
    return notes


def sqlite_notes(work: SqliteWork) -> list[str]:
    plan = "; ".join(work.repeat_check_plan) or "-"
    return [
        "[3] Traced with sqlite3 set_trace_callback while Ledger.store_submission (the call the"
        " endpoint makes in its threadpool) stored a post built by connectors.webhook._raw_item,"
        " then the same post again, on a scratch ledger. From the code: Ledger.transaction is"
        " BEGIN IMMEDIATE ... COMMIT, and store_submission runs the repeat check and the insert"
        " in one, so every stored submission is one write transaction (one WAL commit) before"
        " the 202. A repeat returns from inside the block, which commits too: it also takes the"
        " write lock, for a read.",
        "[3] Each threadpool thread (anyio's default limiter: 40) opens its own Ledger at its first"
        " post: connection, PRAGMAs and the schema check, in autocommit (no migration on an"
        " up-to-date store). The processing worker adds one write transaction per batch of up to"
        f" {PROCESS_BATCH:,} pending items per run, shared by every post the debounce gathered.",
        "[3] journal_mode=WAL, synchronous=NORMAL: a commit survives a crash of the server"
        " process, but is fsynced only at a WAL checkpoint, so a power loss can undo the last"
        " commits.",
        f"[3] Query plan of the repeat check: {plan}. The OR (item_id = ? OR (source, content_hash,"
        " received_at)) cannot use the primary key alone and no index covers the other branch,"
        " so every post reads the whole raw_items table: its cost grows with the ledger.",
    ]


# --- entry point ----------------------------------------------------------------------------




def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--requests",
        type=positive,
        default=DEFAULT_REQUESTS,
        help=f"posts in the sustained-intake test (default {DEFAULT_REQUESTS:,})",
    )
    parser.add_argument(
        "--concurrency",
        type=positive,
        default=DEFAULT_CONCURRENCY,
        help=f"client threads in the sustained-intake test (default {DEFAULT_CONCURRENCY})",
    )
    parser.add_argument(
        "--latency-submissions",
        type=positive,
        default=DEFAULT_LATENCY_SUBMISSIONS,
        help=f"posts, one at a time, in the POST -> lead test (default"
        f" {DEFAULT_LATENCY_SUBMISSIONS})",
    )
    parser.add_argument(
        "--pause",
        type=float,
        default=DEFAULT_PAUSE,
        help=f"seconds between a lead appearing and the next post (default {DEFAULT_PAUSE})",
    )
    parser.add_argument(
        "--time-limit",
        type=float,
        default=DEFAULT_TIME_LIMIT,
        help=f"seconds each test may post for (default {DEFAULT_TIME_LIMIT:g})",
    )
    args = parser.parse_args(argv)
    if args.concurrency > 256:
        parser.error("--concurrency: at most 256")
    if not 0 <= args.pause <= 10:
        parser.error("--pause: 0 to 10 seconds")
    if not 1 <= args.time_limit <= 3600:
        parser.error("--time-limit: 1 to 3600 seconds")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    report = Report()
    report.line(f"CPU count: {os.cpu_count()}")
    report.line(f"Python: {platform.python_version()} ({platform.python_implementation()}),"
                " the same interpreter for the server process")
    report.line(
        f"Posts: {args.requests:,} from {args.concurrency} threads; POST -> lead:"
        f" {args.latency_submissions} posts, {args.pause:g} s pause; debounce"
        f" {DEBOUNCE_SECONDS:g} s"
    )
    started = time.perf_counter()
    # Long enough for both tests and their waits; the server stops itself after it.
    lifetime = 2 * args.time_limit + READY_TIMEOUT + 2 * DRAIN_TIMEOUT + 300
    with tempfile.TemporaryDirectory(prefix="leadhub-webhook-bench-") as temp:
        folder = Path(temp)
        config = write_config(folder)
        settings = load_settings(config)
        work = sqlite_work(folder, settings)
        server = ServerProcess(config, settings, lifetime, folder / "server.log")
        sessions: list[requests.Session] = []
        store = None
        try:
            ready = server.wait_ready(READY_TIMEOUT)
            report.line(f"server process {server.pid} answered /healthz after {ready:.1f} s"
                        f" at {server.url}")
            store = Store(settings.store)
            sessions = [new_session() for _ in range(args.concurrency)]
            warm_up(server, store, sessions)
            intake = sustained_intake(server, store, sessions, args.requests, args.time_limit)
            report.line(f"sustained intake done in {time.perf_counter() - started:.1f} s")
            latency = post_to_lead(server, store, sessions[0], args.latency_submissions,
                                   args.pause, args.time_limit)
            report.line(f"POST -> lead done in {time.perf_counter() - started:.1f} s")
        finally:
            for session in sessions:
                session.close()
            if store is not None:
                store.close()
            code = server.stop()
            log = server.log_text()
        problems = [line for line in log.splitlines()
                    if re.search(r"Traceback|ERROR|failed|Exception", line)]
    report.table(
        f"1. Sustained intake: {args.requests:,} posts to POST /forms/{FORM} from"
        f" {args.concurrency} threads",
        INTAKE_COLUMNS,
        [intake_row(intake)],
    )
    for note in intake_notes(intake, args.time_limit):
        report.line(note)
    report.table(
        "2. POST -> lead in the embedded store, one post at a time",
        LATENCY_COLUMNS,
        latency_rows(latency),
        left=("interval",),
    )
    for note in latency_notes(latency, args.pause):
        report.line(note)
    report.table(
        "3. SQLite work of the endpoint per request",
        SQLITE_COLUMNS,
        sqlite_rows(work),
        left=("case", "statements, in order"),
    )
    for note in sqlite_notes(work):
        report.line(note)
    report.line(f"Server process exit code: {code}; log lines with errors:"
                f" {len(problems)}" + (f" (first: {problems[0].strip()})" if problems else ""))
    report.line(f"Total wall time: {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit("interrupted; the server process was stopped")
