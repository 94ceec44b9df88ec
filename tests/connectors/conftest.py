"""Fixtures of the connector tests: a real Dovecot IMAP server on loopback."""

from __future__ import annotations

import threading

import pytest
from imapclient import IMAPClient

from tests.conftest import missing_server

from .dovecot import DOVECOT_BINARY, Dovecot, folder_outside_pytest


def _running_dovecot():
    if not DOVECOT_BINARY.exists():
        missing_server("dovecot-imapd is not installed: make test installs it")
    with folder_outside_pytest() as base_dir:
        server = Dovecot(base_dir)
        server.start()
        try:
            yield server
        finally:
            # kill, not stop: its folder is thrown away, and a graceful stop costs
            # a second while the master waits for its log process.
            server.kill()


@pytest.fixture
def dovecot():
    """A fresh Dovecot for one test, with the users sales/secret and support/secret2."""
    yield from _running_dovecot()


@pytest.fixture(scope="module")
def dovecot_module():
    """One Dovecot shared by a module's tests: for heavy tests that use their own folders."""
    yield from _running_dovecot()


@pytest.fixture
def dovecot_dir():
    """A folder for a Dovecot the test starts itself."""
    with folder_outside_pytest() as folder:
        yield folder


@pytest.fixture
def idle_entered(monkeypatch):
    """Set whenever a client has entered IDLE: from then on the server announces
    new mail to it. Tests wait for this instead of sleeping and hoping."""
    entered = threading.Event()
    real_idle = IMAPClient.idle

    def idle(client):
        answer = real_idle(client)
        entered.set()
        return answer

    monkeypatch.setattr(IMAPClient, "idle", idle)
    return entered
