"""How long each interactive `leadhub` command takes, as a whole process.

Each command runs as `.venv/bin/leadhub ...` in a process of its own, several
times; the table gives the median and the range of its wall time. Three
columns, side by side in one run, the rounds interleaved so that they share
the machine's load:

- before: the previous release (commit f710bba by default), checked out into
  a scratch worktree outside this repository with a venv of its own, and run
  there;
- today: this checkout's `.venv`, with no Prefect server configured;
- today, Prefect server: the same with PREFECT_API_URL pointing at a
  `prefect server start` that the benchmark runs on a free loopback port
  (analytics off, a temporary PREFECT_HOME) and stops at the end.

The commands: `ingest` of one small file (a new one each run) into an
existing store, `status` and `export` of the demo store, `check` of a small
config, `replay` with nothing quarantined, `run` of an unchanged files
source, `sync` with nothing to do (against the local Sheets server of
tests/fakes/sheets.py, run in a thread here) and `--help`. Each column makes
its own stores with its own code before the timed runs.

Then, per command and column, one run under `python -X importtime`: the time
spent importing the CLI (leadhub.cli) and everything the command imported,
and which heavy modules it loaded. Every command runs with HOME in a
temporary folder; the benchmark prints whether any command left a process
behind (they carry a marker in their environment) and whether a Prefect
database was written into that HOME.

Run from the repository root:
    PYTHONPATH=. .venv/bin/python benchmarks/cli_latency.py [--runs 5]
        [--baseline-dir DIR (keep the previous release's checkout and venv)]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.bench_output import Report, positive
from tests.fakes.sheets import FakeSheets

REPO = Path(__file__).resolve().parent.parent
BASELINE_COMMIT = "f710bba"
HEAVY = ("prefect", "fastapi", "uvicorn", "pandas", "alembic", "sqlalchemy")
MARK = "LEADHUB_CLI_LATENCY_RUN"
SERVER_START_SECONDS = 300
LEFTOVER_GRACE_SECONDS = 3.0
INGEST_NAMES = ("Анна Смирнова", "Олег Титов", "Вера Носова")
RUN_IMPORTED = "import sys; from leadhub.cli import app; sys.argv[0] = 'leadhub'; app()"
# The same command twice in one process: the second time costs the work
# alone, with everything imported and set up already.
RUN_TWICE = """
import json, sys, time
from leadhub.cli import app
report, first, second = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
seconds = []
for args in (first, second):
    started = time.perf_counter()
    try:
        app(args=args, prog_name="leadhub")
    except SystemExit as end:
        if end.code:
            raise
    seconds.append(time.perf_counter() - started)
with open(report, "w", encoding="utf-8") as out:
    json.dump(seconds, out)
"""


@dataclass
class Column:
    """One way of running the commands: which code, which environment."""

    key: str
    title: str
    code: Path
    env: dict[str, str]
    workspace: Path
    unavailable: str = ""
    leftovers: list[str] = field(default_factory=list)
    ingested: int = 0

    @property
    def leadhub(self) -> Path:
        return self.code / ".venv" / "bin" / "leadhub"

    @property
    def python(self) -> Path:
        return self.code / ".venv" / "bin" / "python"

    @property
    def home(self) -> Path:
        return self.workspace / "home"


@dataclass
class Outcome:
    seconds: float
    cpu_seconds: float
    code: int
    tail: str


@dataclass(frozen=True)
class Command:
    label: str
    args: Callable[[Column], list[str]]


def next_ingest_file(column: Column) -> str:
    """A small CSV of three leads nobody has sent before: a new file per run."""
    column.ingested += 1
    number = column.ingested
    path = column.workspace / "incoming" / f"leads-{number:04d}.csv"
    path.parent.mkdir(exist_ok=True)
    rows = [f"{name},+7913{number:04d}{k:03d},buyer{number}.{k}@example.ru"
            for k, name in enumerate(INGEST_NAMES)]
    path.write_text("Name,Phone,Email\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return str(path)


COMMANDS = (
    Command("ingest one small file", lambda c: ["ingest", next_ingest_file(c), "--db", "work.db"]),
    Command("status (demo store)", lambda c: ["status", "--db", "demo/leadhub.db"]),
    Command("export (demo store)",
            lambda c: ["export", "--db", "demo/leadhub.db", "--out", "export"]),
    Command("check (small config)", lambda c: ["check", "--config", "files.yaml"]),
    Command("replay, nothing quarantined", lambda c: ["replay", "--db", "work.db"]),
    Command("run, files source unchanged", lambda c: ["run", "--config", "files.yaml"]),
    Command("sync, nothing to do (Sheets)", lambda c: ["sync", "--config", "sheets.yaml"]),
    Command("--help", lambda c: ["--help"]),
)


# --- running one command ------------------------------------------------------------


def run_leadhub(column: Column, args: list[str], python_flags: tuple[str, ...] = ()) -> Outcome:
    """One command in a process of its own; output to files, so that a process
    left behind holding them cannot stall the wait."""
    command = ([str(column.python), *python_flags, "-c", RUN_IMPORTED, *args] if python_flags
               else [str(column.leadhub), *args])
    return run_process(column, command, args[0])


def run_process(column: Column, command: list[str], name: str) -> Outcome:
    logs = column.workspace / "logs"
    logs.mkdir(exist_ok=True)
    with (logs / "stdout").open("wb") as out, (logs / "stderr").open("wb") as err:
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=column.workspace, env=column.env,
                                   stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = code = os.waitstatus_to_exitcode(status)
    left = processes_left(column.env[MARK])
    if left:
        column.leftovers.append(f"{name}: {', '.join(left)}")
    stderr = (logs / "stderr").read_text(encoding="utf-8", errors="replace")
    tail = " ".join(line for line in stderr.splitlines()
                    if not line.startswith("import time:"))[-300:]
    return Outcome(seconds, usage.ru_utime + usage.ru_stime, code, tail)


def processes_left(mark: str) -> list[str]:
    """Processes still alive that a command started (they inherited its marker),
    given a moment to end by themselves; those left are ended and named."""
    deadline = time.monotonic() + LEFTOVER_GRACE_SECONDS
    while (found := marked_processes(mark)) and time.monotonic() < deadline:
        time.sleep(0.1)
    named = []
    for pid, command in found.items():
        named.append(f"pid {pid} ({command[:80]})")
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return named


def marked_processes(mark: str) -> dict[int, str]:
    wanted = f"{MARK}={mark}".encode()
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if wanted in (entry / "environ").read_bytes().split(b"\0"):
                found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(
                    b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
    return found


def must_run(column: Column, args: list[str]) -> None:
    """A setup step; the benchmark cannot go on without it."""
    outcome = run_leadhub(column, args)
    if outcome.code != 0:
        raise SystemExit(f"{column.title}: leadhub {' '.join(args)} exited {outcome.code}:"
                         f" {outcome.tail}")


# --- the columns ------------------------------------------------------------------


def environment(workspace: Path, mark: str, extra: dict[str, str]) -> dict[str, str]:
    """The caller's environment with HOME in the workspace and no Prefect setting
    of the caller's."""
    home = workspace / "home"
    home.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PREFECT_") and k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(HOME=str(home), XDG_STATE_HOME=str(home / ".local" / "state"),
               XDG_CACHE_HOME=str(home / ".cache"), XDG_CONFIG_HOME=str(home / ".config"),
               COLUMNS="120", NO_COLOR="1", **{MARK: mark}, **extra)
    return env


@contextmanager
def baseline_checkout(commit: str, keep: Path | None, report: Report) -> Iterator[Path]:
    """The previous release in a worktree outside the repository, with its own
    venv; removed at the end unless --baseline-dir keeps it for next time."""
    where = keep or Path(tempfile.mkdtemp(prefix="leadhub-baseline-")) / commit
    stamp = where / ".venv" / ".installed"
    wanted = git("rev-parse", f"{commit}^{{commit}}")
    if not (stamp.exists() and stamp.read_text() == wanted):
        if where.exists():
            git("worktree", "remove", "--force", str(where), check=False)
            shutil.rmtree(where, ignore_errors=True)
        report.line(f"checking out {commit} into {where} and installing it (a minute or two)")
        git("worktree", "add", "--detach", str(where), wanted)
        subprocess.run([sys.executable, "-m", "venv", str(where / ".venv")], check=True)
        subprocess.run([str(where / ".venv" / "bin" / "pip"), "install", "--quiet",
                        "-c", "constraints.txt", "-e", "."], cwd=where, check=True,
                       stderr=subprocess.DEVNULL)
        stamp.write_text(wanted)
    try:
        yield where
    finally:
        if keep is None:
            git("worktree", "remove", "--force", str(where), check=False)
            shutil.rmtree(where.parent, ignore_errors=True)


def git(*args: str, check: bool = True) -> str:
    done = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True,
                          check=check)
    return done.stdout.strip()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def prefect_server(scratch: Path, report: Report) -> Iterator[str]:
    """`prefect server start` on a free loopback port, analytics off, its own
    PREFECT_HOME; yields its API URL, or '' when it did not start."""
    home = scratch / "prefect-server"
    home.mkdir()
    port = free_port()
    env = environment(home, "prefect-server", {
        "PREFECT_HOME": str(home / "prefect-home"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1"})
    del env[MARK]
    with (home / "server.log").open("wb") as log:
        server = subprocess.Popen(
            [str(REPO / ".venv" / "bin" / "prefect"), "server", "start", "--host", "127.0.0.1",
             "--port", str(port)], env=env, stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/api"
    started = time.monotonic()
    try:
        ready = wait_healthy(url, server)
        if ready:
            report.line(f"Prefect server at {url}: ready after {time.monotonic() - started:.0f} s")
        else:
            tail = (home / "server.log").read_text(errors="replace")[-400:]
            report.line(f"Prefect server did not start within {SERVER_START_SECONDS} s: {tail}")
        yield url if ready else ""
    finally:
        stop_group(server)


def wait_healthy(url: str, server: subprocess.Popen) -> bool:
    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline and server.poll() is None:
        with suppress(OSError), urllib.request.urlopen(f"{url}/health", timeout=5) as answer:
            if answer.status == 200:
                return True
        time.sleep(1)
    return False


def stop_group(process: subprocess.Popen) -> None:
    """End the server and whatever it started (its own process group)."""
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


# --- the stores and configs each column's commands use ----------------------------------


def make_fixtures(column: Column, sheets: FakeSheets) -> None:
    """The demo store, a store to ingest into, an unchanged files source already
    run once, and a Sheets sink already in step: made by the column's own code."""
    ws = column.workspace
    must_run(column, ["demo", "--out", "demo"])
    must_run(column, ["ingest", next_ingest_file(column), "--db", "work.db"])
    inbox = ws / "inbox"
    inbox.mkdir()
    shutil.copy(next_ingest_file(column), inbox / "leads.csv")
    store = f"store: {ws / 'run.db'}\n"
    (ws / "files.yaml").write_text(
        store + f"sources:\n  - {{type: files, name: inbox, paths: ['{inbox}']}}\n")
    key = ws / "sheets-key.json"
    key.write_text(json.dumps(sheets.service_account_key()))
    spreadsheet = sheets.create_spreadsheet(f"CRM {column.key}")
    (ws / "sheets.yaml").write_text(
        store + f"sinks:\n  - {{type: sheets, spreadsheet: '{spreadsheet}',"
                f" base_url: '{sheets.url}', credentials: '{key}'}}\n")
    must_run(column, ["run", "--config", "files.yaml"])
    must_run(column, ["schema", "init", "sheets", "--config", "sheets.yaml"])
    for _ in range(2):  # the run after a first sync reads back what it wrote
        must_run(column, ["sync", "--config", "sheets.yaml"])


# --- measuring ---------------------------------------------------------------------


def time_commands(columns: list[Column], runs: int) -> dict[tuple[str, str], list[Outcome]]:
    """Every command in every column, round by round, so the columns share the
    load; and today's work alone (key "work")."""
    timings: dict[tuple[str, str], list[Outcome]] = {}
    for _ in range(runs):
        for command in COMMANDS:
            for column in columns:
                if not column.unavailable:
                    timings.setdefault((command.label, column.key), []).append(
                        run_leadhub(column, command.args(column)))
                if column.key == "today":
                    timings.setdefault((command.label, "work"), []).append(
                        work_alone(column, command))
    return timings


def work_alone(column: Column, command: Command) -> Outcome:
    """The command's second run in a process that has run it once: its work,
    without the start-up (ingest gets a new file each time)."""
    report = column.workspace / "logs" / "twice.json"
    report.unlink(missing_ok=True)
    outcome = run_process(column, [str(column.python), "-c", RUN_TWICE, str(report),
                                   json.dumps(command.args(column)),
                                   json.dumps(command.args(column))], "twice")
    if outcome.code == 0:
        outcome.seconds = json.loads(report.read_text(encoding="utf-8"))[1]
    return outcome


@dataclass
class Imports:
    cli_seconds: float
    all_seconds: float
    heavy: list[str]
    code: int


def import_profile(column: Column, command: Command) -> Imports:
    """One run under -X importtime: what the command imported, and how long that took."""
    outcome = run_leadhub(column, command.args(column), python_flags=("-X", "importtime"))
    lines = (column.workspace / "logs" / "stderr").read_text(errors="replace").splitlines()
    cli = total = 0.0
    loaded: set[str] = set()
    for line in lines:
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        _, cumulative, name = line.removeprefix("import time:").split("|")
        module = name.strip()
        loaded.add(module.split(".")[0])
        if not name.startswith("  "):  # a top-level import: its time includes its children's
            total += int(cumulative) / 1e6
        if module == "leadhub.cli":
            cli = int(cumulative) / 1e6
    return Imports(cli, total, [name for name in HEAVY if name in loaded], outcome.code)


def cell(outcomes: list[Outcome] | None, why_not: str) -> str:
    if outcomes is None:
        return why_not
    failed = [o for o in outcomes if o.code != 0]
    if failed:
        return f"failed {len(failed)}/{len(outcomes)} (exit {failed[0].code})"
    seconds = [o.seconds for o in outcomes]
    return f"{statistics.median(seconds):.2f} ({min(seconds):.2f}-{max(seconds):.2f})"


def beyond_the_work(timings, command: Command) -> list[str]:
    """Today's work alone (median of the warm runs), and the whole process's
    median less that: the start-up."""
    work, whole = timings.get((command.label, "work")), timings.get((command.label, "today"))
    if not work or not whole or any(o.code for o in work + whole):
        return ["-", "-"] if work else []
    alone = statistics.median(o.seconds for o in work)
    return [f"{alone:.2f}", f"{statistics.median(o.seconds for o in whole) - alone:.2f}"]


def cpu_cell(outcomes: list[Outcome] | None, why_not: str) -> str:
    if outcomes is None:
        return why_not
    return f"{statistics.median(o.cpu_seconds for o in outcomes):.2f}"


def prefect_files_in_home(column: Column) -> str:
    folder = column.home / ".prefect"
    if not folder.exists():
        return "nothing written to ~/.prefect"
    databases = sorted(folder.rglob("*.db"))
    if databases:
        return "Prefect database written into HOME: " + ", ".join(
            f"~/{p.relative_to(column.home)} ({p.stat().st_size / 2**20:.1f} MiB)"
            for p in databases)
    files = sum(1 for p in folder.rglob("*") if p.is_file())
    return f"no Prefect database in HOME (~/.prefect: {files} file(s))"


# --- the report ---------------------------------------------------------------------


def print_report(report: Report, columns: list[Column], timings, imports, runs: int) -> None:
    titles = ["command", *[c.title for c in columns]]
    rows = [[command.label, *[cell(timings.get((command.label, c.key)), c.unavailable)
                              for c in columns], *beyond_the_work(timings, command)]
            for command in COMMANDS]
    extra = ["today: the work alone", "today: beyond the work"] if any(
        c.key == "today" for c in columns) else []
    report.table(f"Wall time of the whole process, s: median (min-max) of {runs} runs",
                 [*titles, *extra], rows, left=["command"])
    rows = [[command.label, *[cpu_cell(timings.get((command.label, c.key)), c.unavailable)
                              for c in columns]] for command in COMMANDS]
    report.table("CPU time of the process and its children (user + system), s: median",
                 titles, rows, left=["command"])
    rows = []
    for command in COMMANDS:
        row = [command.label]
        for column in columns:
            found = imports.get((command.label, column.key))
            row.append(column.unavailable if found is None else
                       f"{found.cli_seconds:.2f} / {found.all_seconds:.2f}"
                       + ("" if found.code == 0 else f" (exit {found.code})"))
        rows.append(row)
    report.table("Imports (-X importtime, one run): leadhub.cli / everything the command"
                 " imported, s", titles, rows, left=["command"])
    rows = [[command.label, *["-" if (found := imports.get((command.label, c.key))) is None
                              else ", ".join(found.heavy) or "none" for c in columns]]
            for command in COMMANDS]
    report.table(f"Heavy modules loaded (of {', '.join(HEAVY)})", titles, rows,
                 left=titles)
    for column in columns:
        if column.unavailable:
            report.line(f"{column.title}: {column.unavailable}")
            continue
        left = "; ".join(column.leftovers) or "none"
        report.line(f"{column.title}: processes left behind by a command: {left};"
                    f" {prefect_files_in_home(column)}")


COLUMNS = ("before", "today", "server")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=positive, default=5, help="timed runs per command")
    parser.add_argument("--baseline", default=BASELINE_COMMIT, help="the previous release")
    parser.add_argument("--baseline-dir", type=Path,
                        help="keep the previous release's checkout and venv here (reused)")
    parser.add_argument("--columns", default=",".join(COLUMNS),
                        help=f"which of {', '.join(COLUMNS)} to measure")
    args = parser.parse_args()
    wanted = args.columns.split(",")
    if not set(wanted) <= set(COLUMNS):
        parser.error(f"--columns: choose from {', '.join(COLUMNS)}")
    report = Report()
    report.line(f"load average at the start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    with (tempfile.TemporaryDirectory(prefix="leadhub-cli-latency-") as scratch,
          ExitStack() as stack):
        sheets = stack.enter_context(
            FakeSheets(writes_per_minute=100_000, reads_per_minute=100_000))
        columns = []
        for key in (each for each in COLUMNS if each in wanted):
            column = new_column(key, Path(scratch), args, stack, report)
            if not column.unavailable:
                make_fixtures(column, sheets)
            columns.append(column)
        timings = time_commands(columns, args.runs)
        imports = {(command.label, column.key): import_profile(column, command)
                   for command in COMMANDS for column in columns if not column.unavailable}
        print_report(report, columns, timings, imports, args.runs)
        report_failures(report, timings)
    report.line(f"load average at the end: {os.getloadavg()[0]:.1f}")


def new_column(key: str, scratch: Path, args, stack: ExitStack, report: Report) -> Column:
    """A column with its workspace; the previous release checked out, or the
    Prefect server started, for the columns that need them."""
    workspace = scratch / key
    workspace.mkdir()
    code, extra, title, unavailable = REPO, {}, "today", ""
    if key == "before":
        code = stack.enter_context(baseline_checkout(args.baseline, args.baseline_dir, report))
        title = f"before ({args.baseline})"
        report.line(f"before: commit {args.baseline}, checked out in {code} (its own venv)")
    elif key == "server":
        url = stack.enter_context(prefect_server(scratch, report))
        extra, title = {"PREFECT_API_URL": url}, "today, Prefect server"
        unavailable = "" if url else "the Prefect server did not start"
    env = environment(workspace, f"{key}-{os.getpid()}", extra)
    return Column(key, title, code, env, workspace, unavailable)


def report_failures(report: Report, timings: dict[tuple[str, str], list[Outcome]]) -> None:
    for (label, key), outcomes in timings.items():
        failed = next((outcome for outcome in outcomes if outcome.code != 0), None)
        if failed:
            report.line(f"{key} / {label} exited {failed.code}: {failed.tail}")


if __name__ == "__main__":
    main()
