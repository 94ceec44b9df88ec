"""Shared fixtures: the default settings and the rules derived from them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")

CASES = Path(__file__).parent / "cases"


@pytest.fixture(scope="session")
def prefect_api():
    """One temporary local Prefect API for every test that runs a real flow."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


@pytest.fixture(scope="session")
def settings():
    from leadhub.settings import load_settings

    return load_settings()


@pytest.fixture(scope="session")
def mail_rules(settings):
    return settings.mail_rules()


@pytest.fixture(scope="session")
def submission_rules(settings):
    return settings.submission_rules()


@pytest.fixture(scope="session")
def normalize_rules(settings):
    return settings.normalize_rules()


# CI sets this: a server the tests need and cannot start is a failure there,
# not a skip (on a developer's machine without apt it is a skip that says why).
REQUIRE_SERVERS = os.environ.get("LEADHUB_REQUIRE_SERVERS") == "1"


def missing_server(reason: str):
    if REQUIRE_SERVERS:
        pytest.fail(f"{reason} (LEADHUB_REQUIRE_SERVERS=1)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres():
    """One real PostgreSQL server for the session; each test takes a database."""
    from tests.postgres import PostgresServer, binaries

    if binaries() is None:
        missing_server("PostgreSQL is not installed: make test installs Debian's postgresql")
    server = PostgresServer()
    server.start()
    yield server
    server.stop()


ENGINES = ("sqlite", "postgresql")


@pytest.fixture(params=ENGINES)
def store(request, tmp_path) -> str:
    """A new, empty store on each engine: a SQLite file, or a PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "leadhub.db")
    return request.getfixturevalue("postgres").new_database()


@pytest.fixture(scope="session")
def identity_rules(settings):
    return settings.identity_rules()
