"""Fixtures of the connector tests: a real Dovecot IMAP server on loopback."""

from __future__ import annotations

import pytest

from tests.conftest import missing_server

from .dovecot import DOVECOT_BINARY, Dovecot


def _running_dovecot(base_dir):
    if not DOVECOT_BINARY.exists():
        missing_server("dovecot-imapd is not installed: make test installs it")
    server = Dovecot(base_dir)
    server.start()
    try:
        yield server
    finally:
        # kill, not stop: its folder is thrown away, and a graceful stop costs
        # a second while the master waits for its log process.
        server.kill()


@pytest.fixture
def dovecot(tmp_path):
    """A fresh Dovecot for one test, with the users sales/secret and support/secret2."""
    yield from _running_dovecot(tmp_path / "dovecot")


@pytest.fixture(scope="module")
def dovecot_module(tmp_path_factory):
    """One Dovecot shared by a module's tests: for heavy tests that use their own folders."""
    yield from _running_dovecot(tmp_path_factory.mktemp("dovecot"))
