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


@pytest.fixture(scope="session")
def identity_rules(settings):
    return settings.identity_rules()
