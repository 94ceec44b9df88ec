"""Web-form intake against the real endpoint on loopback: one commit per post
against group commit, requests/s and latency, every answered post counted in
the store; then POST -> lead latency.

For each case the script writes a config into a temporary folder of its own
(one form `bench`, preset generic, token auth, `web.requests_per_minute`
10,000,000 so the limiter never answers 429, `web.process_debounce_seconds`
0.2, and `web.group_commit` false or true) and starts the endpoint in a
separate process: alone (`create_app` without a processing worker, served by
uvicorn in a thread), or exactly as `leadhub serve` does (`flows.serve.
start_web`, which also processes what the endpoint stored through
`flows.intake.process_pending`, debounced, in a background thread of the same
process). The SQLite store is `synchronous=FULL`: a commit is fsynced before
the endpoint answers. The load generator runs in this process, so it does not
share the GIL with the server (it does share the machine's CPUs). Traffic goes
to 127.0.0.1 only (the sessions ignore proxy settings from the environment).
Each server is stopped after its case, also on Ctrl-C or an error.

A post is a small JSON object the generic preset reads: `id` (the submission
id), `name`, a distinct Russian mobile `phone` and a `message`. Before the
clock starts every client thread posts once (and, with processing, the
benchmark waits until those posts are leads): the server has then opened its
ledgers and loaded the processing rules.

It measures:

1. sustained intake, side by side: one commit per post (`web.group_commit:
   false`, how the endpoint wrote before group commit) and group commit, for
   each of `--clients` (default 16 and 64 client threads) and `--processing`
   (default off and on). `--requests` posts (default 3,000) per case, each
   client with its own `requests.Session` (keep-alive) taking the next post
   number from a shared queue. It reports requests/s (posts answered 202 /
   wall time), p50/p95/max latency of a request, the write transactions the
   endpoint's writer ran for them (its count, asked before and after), and
   the raw items in the store afterwards, which must equal the posts answered
   202 (the endpoint commits before it answers);
2. POST -> lead latency with group commit and processing:
   `--latency-submissions` posts (default 50), one at a time with `--pause`
   seconds (default 0.1) after each lead appeared. For each, the store is
   polled every 5 ms until the raw item with the returned submission_id has a
   `lead_id` in `leads`;
3. the SQLite statements one group of posts costs, traced on a scratch
   ledger in this process (`Ledger.store_submissions`, what the endpoint's
   writer calls), for 1 and for 10 posts.

Run from the repository root:

    PYTHONPATH=. .venv/bin/python benchmarks/webhook_intake.py
    PYTHONPATH=. .venv/bin/python benchmarks/webhook_intake.py --requests 5000 --clients 16 32 64
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
from sqlalchemy import event

from connectors.ledger import Ledger
from connectors.webhook import _raw_item
from leadhub.settings import Settings, WebhookSourceConfig, load_settings
from transforms.form_presets import parse_form_post

REPO = Path(__file__).resolve().parents[1]
FORM = "bench"
SECRET = "bench-secret-7f3a"
TOKEN_HEADER = "X-LeadHub-Token"
DEBOUNCE_SECONDS = 0.2
REQUESTS_PER_MINUTE = 10_000_000
DEFAULT_REQUESTS = 3_000
DEFAULT_CLIENTS = (16, 64)
DEFAULT_LATENCY_SUBMISSIONS = 50
DEFAULT_PAUSE = 0.1  # seconds after a lead appeared before the next post (test 2)
DEFAULT_TIME_LIMIT = 120.0  # seconds per case; nothing new is posted after it
REQUEST_TIMEOUT = 30.0
READY_TIMEOUT = 90.0  # for the server process to answer /healthz (imports Prefect)
DRAIN_TIMEOUT = 180.0  # for the processing backlog to empty
STATS_TIMEOUT = 30.0  # for the server process to say how many groups it wrote
LEAD_TIMEOUT = 15.0  # for one post of test 2 to become a lead
POLL_SECONDS = 0.005  # store polling in test 2
STOP_TIMEOUT = 45.0  # for the server process to stop after its stdin closes
ERROR_SAMPLES = 3
MODES = {False: "one commit per post", True: "group commit"}

# The server process: the endpoint as `leadhub serve` runs it. A line on its
# stdin asks how many groups (write transactions) the endpoint's writer has
# run; it answers `groups <line> <count>` on stdout. It stops when its stdin
# closes (the benchmark closed it, or died), on SIGTERM, or after its
# lifetime, whichever comes first.
SERVER_SCRIPT = textwrap.dedent(
    """
    import signal, sys, threading
    from pathlib import Path
    import uvicorn
    from connectors.webhook import create_app
    from flows.serve import WebServer, start_web
    from leadhub.settings import load_settings

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    closed = threading.Event()
    settings = load_settings(Path(sys.argv[1]))
    if sys.argv[3] == "processing":
        server = start_web(settings)
    else:  # the endpoint alone: the scheduled sweep (or another worker) processes
        server = WebServer(uvicorn.Config(create_app(settings, process=None),
                                          host=settings.web.host, port=settings.web.port,
                                          log_level="info", access_log=False))
        server.start()
    writer = server.config.app.state.writer

    def watch_stdin():
        for line in sys.stdin:
            print(f"groups {line.strip()} {writer.groups}", flush=True)
        closed.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
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


def write_config(folder: Path, group_commit: bool) -> Path:
    path = folder / "leadhub.yaml"
    path.write_text(
        "store: leadhub.db\n"
        "web:\n"
        "  host: 127.0.0.1\n"
        f"  port: {free_port()}\n"
        f"  requests_per_minute: {REQUESTS_PER_MINUTE}\n"
        f"  process_debounce_seconds: {DEBOUNCE_SECONDS}\n"
        f"  group_commit: {str(group_commit).lower()}\n"
        "sources:\n"
        f"  - {{type: webhook, form: {FORM}, preset: generic, auth: token, secret: {SECRET}}}\n",
        encoding="utf-8",
    )
    return path


class ServerProcess:
    """`start_web` in a child process of its own; output goes to a log file."""

    def __init__(self, config: Path, settings: Settings, lifetime: float, log_path: Path,
                 processing: bool):
        self.url = f"http://{settings.web.host}:{settings.web.port}"
        self.log_path = log_path
        self._log = log_path.open("wb")
        self._asked = 0
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)}
        # A session of its own: Ctrl-C reaches only this process, which then
        # stops the server cleanly in its finally.
        self.process = subprocess.Popen(
            [sys.executable, "-c", SERVER_SCRIPT, str(config), f"{lifetime:.0f}",
             "processing" if processing else "alone"],
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

    def groups(self) -> int:
        """Write transactions the endpoint's writer has run so far."""
        self._asked += 1
        self.process.stdin.write(f"{self._asked}\n".encode())
        self.process.stdin.flush()
        answer = re.compile(rf"^groups {self._asked} (\d+)$", re.MULTILINE)
        deadline = time.monotonic() + STATS_TIMEOUT
        while time.monotonic() < deadline:
            found = answer.search(self.log_text())
            if found:
                return int(found.group(1))
            time.sleep(0.05)
        raise RuntimeError("the server process did not say how many groups it wrote:\n"
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

    def problems(self) -> list[str]:
        return [line for line in self.log_text().splitlines()
                if re.search(r"Traceback|ERROR|failed|Exception", line)]


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


def warm_up(server: ServerProcess, store: Store, sessions: Sequence[requests.Session],
            processing: bool) -> None:
    """One post per client session, in parallel, then (with processing) wait
    until they are leads."""
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
    if processing and store.wait_drained(DRAIN_TIMEOUT) is None:
        raise RuntimeError("the warm-up posts were not processed in time:\n" + server.log_tail())


@dataclass
class Intake:
    mode: str
    processing: bool
    requests: int
    clients: int
    answers: list[Answer]
    seconds: float
    groups: int
    stored: int
    missing: int
    drain_seconds: float | None
    leads: int
    server_cpu: float | None
    client_cpu: float
    timed_out: bool
    problems: list[str] = field(default_factory=list)

    @property
    def accepted(self) -> list[Answer]:
        return [a for a in self.answers if a.status == 202 and a.submission_id]

    @property
    def complete(self) -> bool:
        """Every post answered 202, and exactly those are in the store."""
        return (self.stored == len(self.accepted) == self.requests and not self.missing)


def sustained_intake(
    server: ServerProcess,
    store: Store,
    sessions: Sequence[requests.Session],
    count: int,
    time_limit: float,
    prefix: str,
) -> tuple[list[Answer], float, float | None, float, bool]:
    """Post `count` posts from every session at once: the answers in the order
    sent, wall seconds, server and client CPU seconds, whether time ran out."""
    url = f"{server.url}/forms/{FORM}"
    numbers: queue.SimpleQueue[int] = queue.SimpleQueue()
    for number in range(count):
        numbers.put(number)
    bodies = [post_body(prefix, number, "912") for number in range(count)]
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
    cpu = None if server_cpu is None or server_after is None else server_after - server_cpu
    return answers, seconds, cpu, client_cpu, len(answers) < count


@dataclass(frozen=True)
class Case:
    group_commit: bool
    processing: bool
    clients: int


def intake_case(folder: Path, case: Case, count: int, time_limit: float, lifetime: float,
                report: Report, latency: tuple[int, float] | None = None
                ) -> tuple[Intake, LeadLatency | None]:
    """One server with a store of its own: warm-up, sustained intake, and
    (when asked) the POST -> lead test on the same server afterwards."""
    folder.mkdir()
    config = write_config(folder, case.group_commit)
    settings = load_settings(config)
    server = ServerProcess(config, settings, lifetime, folder / "server.log", case.processing)
    clients = case.clients
    sessions: list[requests.Session] = []
    store = None
    lead_latency = None
    try:
        server.wait_ready(READY_TIMEOUT)
        store = Store(settings.store)
        sessions = [new_session() for _ in range(clients)]
        warm_up(server, store, sessions, case.processing)
        groups_before = server.groups()
        answers, seconds, server_cpu, client_cpu, timed_out = sustained_intake(
            server, store, sessions, count, time_limit, "p1")
        groups = server.groups() - groups_before
        returned = {a.submission_id for a in answers if a.status == 202 and a.submission_id}
        stored = store.item_ids("p1")
        drain = store.wait_drained(DRAIN_TIMEOUT) if case.processing else None
        intake = Intake(
            mode=MODES[case.group_commit], processing=case.processing, requests=count,
            clients=clients, answers=answers, seconds=seconds, groups=groups, stored=len(stored),
            missing=len(returned - stored), drain_seconds=drain, leads=store.leads("p1"),
            server_cpu=server_cpu, client_cpu=client_cpu, timed_out=timed_out)
        report.line(f"{intake.mode}, {clients} clients, processing"
                    f" {'on' if case.processing else 'off'}: {len(intake.accepted):,} of"
                    f" {count:,} answered 202 in {seconds:.1f} s")
        if latency:
            lead_latency = post_to_lead(server, store, sessions[0], *latency, time_limit)
    finally:
        for session in sessions:
            session.close()
        if store is not None:
            store.close()
        server.stop()
    intake.problems = server.problems()
    return intake, lead_latency


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


# --- 3. SQLite work per group ----------------------------------------------------------------

_LABEL = re.compile(
    r"^\s*(BEGIN(?: IMMEDIATE| EXCLUSIVE| DEFERRED)?|COMMIT|ROLLBACK|SAVEPOINT|RELEASE|"
    r"INSERT(?: OR \w+)? INTO \w+|UPDATE \w+|DELETE FROM \w+|SELECT|PRAGMA \w+)",
    re.IGNORECASE,
)


def statement_label(sql: str) -> str:
    match = _LABEL.match(sql)
    if not match:
        return " ".join(sql.split()[:2])
    label = " ".join(match.group(1).split()).upper()
    if label == "SELECT":
        table = re.search(r"\bFROM\s+(\w+)", sql, re.IGNORECASE)
        label += f" {table.group(1)}" if table else ""
    return label


@dataclass
class Traced:
    posts: int
    statements: list[str]

    def count(self, label: str) -> int:
        return sum(1 for s in self.statements if statement_label(s).startswith(label))


def sqlite_work(folder: Path, settings: Settings, sizes: Sequence[int]) -> list[Traced]:
    """Trace what store_submissions runs for a group of each size, on a
    scratch ledger built like the endpoint's (never a server's store)."""
    form = next(s for s in settings.sources if isinstance(s, WebhookSourceConfig))
    ledger = Ledger(folder / "trace.db", create=True)
    statements: list[str] = []
    ledger.engine.dispose()  # the next connection is a new one, traced from its start

    @event.listens_for(ledger.engine, "connect")
    def _trace(dbapi_connection, _record):
        dbapi_connection.set_trace_callback(statements.append)

    traced = []
    try:
        for size in sizes:
            items = []
            for number in range(size):
                decoded = json.loads(post_body(f"trace{size}", number, "903"))
                items.append(_raw_item(form, decoded,
                                       parse_form_post(form.preset, decoded).submission_id))
            statements.clear()
            ledger.store_submissions(items, settings.web.duplicate_window_seconds)
            traced.append(Traced(size, [s for s in statements
                                        if not s.lstrip().upper().startswith("PRAGMA")]))
    finally:
        ledger.close()
    return traced


# --- output -------------------------------------------------------------------------------


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile (share in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, math.ceil(share / 100 * len(ordered)))
    return ordered[rank - 1]


def ms(values: Sequence[float], share: float) -> str:
    return f"{percentile(values, share):.1f}" if values else "-"


INTAKE_COLUMNS = (
    "writes",
    "processing",
    "clients",
    "posts",
    "202",
    "other",
    "req/s",
    "p50 ms",
    "p95 ms",
    "max ms",
    "transactions",
    "posts per transaction",
    "raw items",
    "= 202s",
    "server CPU ms/post",
)
LATENCY_COLUMNS = ("interval", "posts", "min ms", "p50 ms", "p95 ms", "max ms")
SQLITE_COLUMNS = ("posts in the group", "transactions", "fsync'd commits", "statements")


def intake_row(intake: Intake) -> list[str]:
    accepted = intake.accepted
    latencies = [a.seconds * 1000 for a in intake.answers]
    return [
        intake.mode,
        "in the server" if intake.processing else "off",
        f"{intake.clients}",
        f"{intake.requests:,}",
        f"{len(accepted):,}",
        f"{len(intake.answers) - len(accepted):,}",
        f"{len(accepted) / intake.seconds:,.0f}",
        ms(latencies, 50),
        ms(latencies, 95),
        ms(latencies, 100),
        f"{intake.groups:,}",
        f"{len(accepted) / intake.groups:.1f}" if intake.groups else "-",
        f"{intake.stored:,}",
        "yes" if intake.complete else "NO",
        "-" if intake.server_cpu is None or not accepted
        else f"{intake.server_cpu / len(accepted) * 1000:.1f}",
    ]


def ratio_lines(intakes: Sequence[Intake]) -> list[str]:
    lines = []
    for processing, clients in sorted({(i.processing, i.clients) for i in intakes}):
        pair = {i.mode: i for i in intakes
                if (i.processing, i.clients) == (processing, clients)}
        single, grouped = pair.get(MODES[False]), pair.get(MODES[True])
        if single and grouped and single.accepted and grouped.groups:
            speedup = (len(grouped.accepted) / grouped.seconds) / (
                len(single.accepted) / single.seconds)
            fewer = single.groups / grouped.groups
            where = "in the server" if processing else "off"
            lines.append(f"{clients} clients, processing {where}: group commit answers"
                         f" {speedup:.1f}x the requests/s of one commit per"
                         f" post, in {fewer:.0f}x fewer transactions.")
    return lines


def intake_notes(intakes: Sequence[Intake], time_limit: float) -> list[str]:
    notes = [
        "[1] Each row is its own server process and store. Clients: threads of this process,"
        " one requests.Session each (keep-alive), after one untimed warm-up post per client."
        " req/s = posts answered 202 / wall time, from releasing the threads to the last"
        " answer; latency: time.perf_counter around Session.post, all posts.",
        "[1] transactions: the endpoint writer's groups during the test (each one BEGIN"
        " IMMEDIATE ... COMMIT, fsynced: synchronous=FULL). raw items: rows in raw_items with"
        " this test's ids right after the last answer; '= 202s' says they equal both the posts"
        " and the 202s, and every returned submission_id is among them.",
        "[1] processing off: the endpoint alone (create_app without a processing worker; the"
        " schedule's sweep would make the leads). in the server: as `leadhub serve` runs it,"
        " the debounced worker turning posts into leads meanwhile in the same process, sharing"
        " its GIL and the SQLite write lock with the endpoint (a post waits while a processing"
        " transaction holds the store). Server CPU: user + system of the server process over"
        " the test (/proc/PID/stat) per post answered. Client and server share the"
        f" {os.cpu_count()} CPU(s).",
    ]
    for intake in intakes:
        statuses = Counter(a.status for a in intake.answers)
        errors = [a.error for a in intake.answers if a.status != 202 or not a.submission_id]
        where = "in the server" if intake.processing else "off"
        line = (f"[1] {intake.mode}, processing {where}, {intake.clients} clients: answers"
                f" {dict(sorted(statuses.items()))}"
                f" (0 = no answer); missing submission ids: {intake.missing}; client CPU"
                f" {intake.client_cpu:.1f} s; server log lines with errors:"
                f" {len(intake.problems)}")
        if intake.processing:
            drained = ("did not empty" if intake.drain_seconds is None
                       else f"empty {intake.drain_seconds:.1f} s after the last answer")
            line += f"; leads {intake.leads:,}; processing backlog {drained}"
        if intake.problems:
            line += f" (first: {intake.problems[0].strip()})"
        if errors:
            line += f"; not 202, first {ERROR_SAMPLES}: " + "; ".join(errors[:ERROR_SAMPLES])
        if intake.timed_out:
            line += (f"; stopped by --time-limit {time_limit:g} s after"
                     f" {len(intake.answers):,} posts")
        notes.append(line + ".")
    return notes


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


def latency_notes(latency: LeadLatency, pause: float) -> list[str]:
    not_leads = [t for t in latency.timings if t.stored is None]
    notes = [
        f"[2] {len(latency.timings) + len(latency.failed)} posts one at a time on one session,"
        " on the group-commit server after its test [1]; the next is sent"
        f" {pause:g} s after the previous one became a lead. Test wall time:"
        f" {latency.seconds:.1f} s.",
        "[2] lead in the store: the first poll (every"
        f" {POLL_SECONDS * 1000:.0f} ms, a read-only SQLite connection in this process) that"
        " finds the raw item's lead_id in the leads table.",
        f"[2] Includes the debounce: the endpoint's worker sleeps process_debounce_seconds ="
        f" {DEBOUNCE_SECONDS:g} s after a post wakes it, then runs process_pending. A post"
        " alone is a group of one: the writer takes what has arrived and never waits for more.",
    ]
    if not_leads:
        states = Counter(t.state or "missing" for t in not_leads)
        notes.append(f"[2] Not a lead within {LEAD_TIMEOUT:g} s: {len(not_leads)}"
                     f" ({dict(states)}).")
    if latency.failed:
        notes.append(f"[2] Not 202 ({len(latency.failed)}): "
                     + "; ".join(a.error for a in latency.failed[:ERROR_SAMPLES]))
    return notes


def sqlite_rows(traced: Sequence[Traced]) -> list[list[str]]:
    rows = []
    for group in traced:
        counts = Counter(statement_label(s) for s in group.statements)
        rows.append([f"{group.posts}", f"{group.count('BEGIN')}", f"{group.count('COMMIT')}",
                     ", ".join(f"{label} x{n}" for label, n in counts.items())])
    return rows


# --- entry point ----------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=positive, default=DEFAULT_REQUESTS,
                        help=f"posts in each sustained-intake case (default {DEFAULT_REQUESTS:,})")
    parser.add_argument("--clients", type=positive, nargs="+", default=list(DEFAULT_CLIENTS),
                        help="client threads, one case of each mode for each (default"
                             f" {' '.join(map(str, DEFAULT_CLIENTS))})")
    parser.add_argument("--processing", nargs="+", choices=("off", "on"), default=["off", "on"],
                        help="without processing in the server, and/or with it (default both)")
    parser.add_argument("--latency-submissions", type=positive,
                        default=DEFAULT_LATENCY_SUBMISSIONS,
                        help="posts, one at a time, in the POST -> lead test (default"
                             f" {DEFAULT_LATENCY_SUBMISSIONS})")
    parser.add_argument("--pause", type=float, default=DEFAULT_PAUSE,
                        help="seconds between a lead appearing and the next post (default"
                             f" {DEFAULT_PAUSE})")
    parser.add_argument("--time-limit", type=float, default=DEFAULT_TIME_LIMIT,
                        help=f"seconds each case may post for (default {DEFAULT_TIME_LIMIT:g})")
    args = parser.parse_args(argv)
    args.processing = [choice == "on" for choice in dict.fromkeys(args.processing)]
    if max(args.clients) > 256:
        parser.error("--clients: at most 256")
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
                " the same interpreter for the server processes")
    report.line(f"Posts: {args.requests:,} per case from {', '.join(map(str, args.clients))}"
                f" client threads; POST -> lead: {args.latency_submissions} posts,"
                f" {args.pause:g} s pause; debounce {DEBOUNCE_SECONDS:g} s")
    started = time.perf_counter()
    # Long enough for a case and its waits; a server stops itself after it.
    lifetime = 2 * args.time_limit + READY_TIMEOUT + 2 * DRAIN_TIMEOUT + 300
    intakes: list[Intake] = []
    latency = None
    cases = [Case(group_commit, processing, clients)
             for processing in args.processing for clients in args.clients
             for group_commit in (False, True)]
    with tempfile.TemporaryDirectory(prefix="leadhub-webhook-bench-") as temp:
        folder = Path(temp)
        for number, case in enumerate(cases):
            wants_latency = case.processing and case.group_commit and latency is None
            intake, measured = intake_case(
                folder / f"case-{number}", case, args.requests, args.time_limit, lifetime,
                report, (args.latency_submissions, args.pause) if wants_latency else None)
            intakes.append(intake)
            latency = measured or latency
        settings = load_settings(write_config(folder, True))
        traced = sqlite_work(folder, settings, (1, 10))
    report.table(f"1. Sustained intake: {args.requests:,} posts to POST /forms/{FORM},"
                 " synchronous=FULL", INTAKE_COLUMNS, [intake_row(i) for i in intakes],
                 left=("writes", "processing"))
    for line in ratio_lines(intakes) + intake_notes(intakes, args.time_limit):
        report.line(line)
    if latency is not None:
        report.table("2. POST -> lead in the embedded store, one post at a time",
                     LATENCY_COLUMNS, latency_rows(latency), left=("interval",))
        for note in latency_notes(latency, args.pause):
            report.line(note)
    report.table("3. SQLite statements of one group (Ledger.store_submissions)",
                 SQLITE_COLUMNS, sqlite_rows(traced), left=("statements",))
    report.line("[3] The same statements whatever the group's size: one look-up of the"
                " group's ids, one of its contents (source + content hash within the window,"
                " by index), one insert of the new posts (one call; SQLite runs it once a"
                " row), in a savepoint (if the store refuses one post, the group is stored"
                " post by post and that one fails alone); one BEGIN IMMEDIATE ... COMMIT for"
                " the group.")
    report.line(f"Total wall time: {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit("interrupted; the server processes were stopped")
