"""A real Prefect server and process workers on loopback, for the scale-out
test and benchmark: `prefect server start` on a free port with its database
in PostgreSQL (or its own SQLite), a temporary PREFECT_HOME, analytics off
and no scheduler (the test starts the runs it waits for), and `prefect worker
start` processes that can be killed like a machine that dies.

Everything is waited for by condition, with deadlines generous enough for a
busy 2-core machine: the server alone can take a minute and a half to start.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT = 240.0
POLL_SECONDS = 0.5


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def asyncpg_url(postgres_url: str) -> str:
    """A store URL of the tests' PostgreSQL, as Prefect's server takes it."""
    return postgres_url.replace("postgresql://", "postgresql+asyncpg://", 1)


class PrefectServer:
    def __init__(self, database_url: str | None = None) -> None:
        self.port = _free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="leadhub-prefect-"))
        self.api_url = f"http://{HOST}:{self.port}/api"
        self.env = {
            **os.environ,
            "PREFECT_HOME": str(self.folder / "home"),
            "PREFECT_API_URL": self.api_url,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1",
            "PREFECT_SERVER_UI_ENABLED": "false",
            "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false",
            # Prefect's default, not its shortest (30 s): a run's process must
            # renew its deployment slot's first lease within this, and on a busy
            # machine starting it can take longer; a run that misses it is
            # terminated (Crashed). A run marked crashed gives its slot back at once.
            "PREFECT_SERVER_CONCURRENCY_INITIAL_DEPLOYMENT_LEASE_DURATION": "300",
            "PREFECT_WORKER_QUERY_SECONDS": "1",
            "PREFECT_LOGGING_LEVEL": "WARNING",
        }
        if database_url:
            self.env["PREFECT_API_DATABASE_CONNECTION_URL"] = database_url
        self.process: subprocess.Popen | None = None
        self.workers: list[subprocess.Popen] = []

    def _log(self, name: str):
        return open(self.folder / f"{name}.log", "ab")

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--host", HOST,
             "--port", str(self.port), "--no-ui", "--no-scheduler", "--analytics-off"],
            env=self.env, cwd=self.folder, stdout=self._log("server"), stderr=subprocess.STDOUT,
            start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while not self._healthy():
            if self.process.poll() is not None:
                raise RuntimeError("prefect server exited:\n" + self.log_tail("server"))
            if time.monotonic() > deadline:
                raise RuntimeError(f"prefect server did not answer in {START_TIMEOUT:g} s:\n"
                                   + self.log_tail("server"))
            time.sleep(POLL_SECONDS)

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"{self.api_url}/health", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    def cli(self, *args: str, extra_env: dict[str, str] | None = None) -> str:
        """A `prefect` command against this server; its output."""
        return self._run(["-m", "prefect", "--no-prompt", *args], extra_env)

    def deploy(self, *args: str, extra_env: dict[str, str] | None = None) -> str:
        """prefect.yaml's deployments, as `prefect deploy` (flows/prefect_deploy.py)."""
        return self._run(["-m", "flows.prefect_deploy", *args], extra_env)

    def _run(self, args: list[str], extra_env: dict[str, str] | None) -> str:
        done = subprocess.run([sys.executable, *args], env={**self.env, **(extra_env or {})},
                              cwd=ROOT, capture_output=True, text=True, timeout=START_TIMEOUT)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def start_worker(self, pool: str, extra_env: dict[str, str] | None = None,
                     limit: int | None = None) -> subprocess.Popen:
        """A worker of the pool; `limit`: the most flow runs it runs at once (a
        worker without one takes every scheduled run it sees)."""
        worker = subprocess.Popen(
            [sys.executable, "-m", "prefect", "worker", "start", "--pool", pool,
             "--type", "process", "--name", f"worker-{len(self.workers) + 1}",
             *(["--limit", str(limit)] if limit else [])],
            env={**self.env, **(extra_env or {})}, cwd=ROOT,
            stdout=self._log(f"worker-{len(self.workers) + 1}"), stderr=subprocess.STDOUT,
            start_new_session=True)
        self.workers.append(worker)
        return worker

    @contextmanager
    def client(self) -> Iterator:
        """Prefect's own client, talking to this server."""
        from prefect.client.orchestration import get_client
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings({PREFECT_API_URL: self.api_url}):
            with get_client(sync_client=True) as client:
                yield client

    def log_tail(self, name: str, lines: int = 40) -> str:
        try:
            text = (self.folder / f"{name}.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        for process in [*self.workers, self.process]:
            if process is not None and process.poll() is None:
                kill_with_children(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    kill_with_children(process.pid, signal.SIGKILL)
                    process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


def children(pid: int) -> list[int]:
    """Every process `pid` started, and theirs (Linux /proc)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rpartition(")")[2].split()[1])
        parents.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def survives(server: PrefectServer, client, run_id) -> bool:
    """Whether a live worker of `server` still runs this flow run (its process
    is alive)."""
    pid = (client.read_flow_run(run_id).infrastructure_pid or "").rpartition(":")[2]
    return pid.isdigit() and any(int(pid) in children(worker.pid)
                                 for worker in server.workers if worker.poll() is None)


def kill_with_children(pid: int, sig: int) -> None:
    """A process and all it started, as a machine that loses power (SIGKILL)
    or is shut down (SIGTERM). Flow runs start in sessions of their own, so a
    process group is not enough."""
    for each in [pid, *children(pid)]:
        try:
            os.kill(each, sig)
        except ProcessLookupError:
            pass
