"""A real PostgreSQL server on loopback for the store's tests (Debian's
`postgresql` package), started by the tests in a folder of their own.

`PostgresServer()` runs `initdb` and `postgres` as the `postgres` user when the
tests run as root (the server refuses root), listening on a free port of
127.0.0.1 with trust authentication. Each test gets a fresh database of its
own (`new_database()`), so tests never see each other's rows. Durability
settings are off: no test simulates a power loss, and fsync would only slow
the suite down.
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from itertools import count
from pathlib import Path

HOST = "127.0.0.1"
SUPERUSER = "leadhub"
START_TIMEOUT = 60.0


def binaries() -> Path | None:
    """The folder with Debian's initdb and postgres, newest version first."""
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(folder) / "postgres").exists() and (Path(folder) / "initdb").exists():
            return Path(folder)
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


class PostgresServer:
    def __init__(self) -> None:
        self.bin = binaries()
        if self.bin is None:
            raise RuntimeError("PostgreSQL is not installed")
        self.port = _free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="leadhub-pg-"))
        self.data = self.folder / "data"
        self.process: subprocess.Popen | None = None
        self._names = count(1)
        self._owner = pwd.getpwnam("postgres") if os.geteuid() == 0 else None

    def _as_owner(self) -> None:
        if self._owner is not None:
            os.setgid(self._owner.pw_gid)
            os.setuid(self._owner.pw_uid)

    def start(self) -> None:
        if self._owner is not None:
            os.chown(self.folder, self._owner.pw_uid, self._owner.pw_gid)
        subprocess.run(
            [self.bin / "initdb", "-D", self.data, "-U", SUPERUSER, "--auth=trust",
             "-E", "UTF8", "--locale=C", "--no-sync"],
            check=True, capture_output=True, preexec_fn=self._as_owner)
        self.process = subprocess.Popen(
            [self.bin / "postgres", "-D", self.data, "-p", str(self.port), "-k", self.folder,
             "-c", f"listen_addresses={HOST}", "-c", "fsync=off",
             "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
             "-c", "max_connections=200"],
            stdout=subprocess.DEVNULL, stderr=open(self.folder / "server.log", "wb"),
            preexec_fn=self._as_owner, start_new_session=True)
        atexit.register(self.stop)
        self._wait_until_ready()

    def _wait_until_ready(self) -> None:
        import psycopg

        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.process.poll() is not None:
                raise RuntimeError("postgres exited:\n" + self.log_tail())
            try:
                psycopg.connect(self.url("postgres"), connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise RuntimeError("postgres did not start:\n" + self.log_tail()) from None
                time.sleep(0.1)

    def url(self, database: str) -> str:
        return f"postgresql://{SUPERUSER}@{HOST}:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh empty database; its URL."""
        import psycopg

        name = f"t{os.getpid()}_{next(self._names)}"
        with psycopg.connect(self.url("postgres"), autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = (self.folder / "server.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            # SIGINT: PostgreSQL's fast shutdown (disconnect everyone, stop).
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)
