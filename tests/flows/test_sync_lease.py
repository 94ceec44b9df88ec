"""One sync of a sink at a time, whatever process or machine runs it: a sync
finding another one's live lease on the sink leaves the sink alone, and a
lease its holder left behind (a killed run) runs out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from connectors.ledger import Ledger
from flows.sync import SYNC_LEASE, sync_all
from tests.flows import test_airtable_sync
from tests.flows.crm_helpers import seed
from tests.flows.test_airtable_sync import ready_base, records_by

LEASE = "sync:airtable"
# the local Airtable on a fake clock, as the Airtable sync tests have it
airtable = test_airtable_sync.airtable


def _held_by(store: str, holder: str, until: datetime) -> None:
    ledger = Ledger(store, create=True)
    try:
        assert ledger.take_lease(LEASE, holder, until, datetime.now(UTC)) is None
    finally:
        ledger.close()


def test_a_sink_another_sync_holds_is_left_to_it(airtable, store):
    seed(store, 3)
    settings = ready_base(airtable, store)
    _held_by(store, "worker-2:4242:abcd", datetime.now(UTC) + SYNC_LEASE)

    stats = sync_all(settings)["airtable"]

    assert stats["sink_busy"] == 1 and stats["created"] == 0
    assert airtable.write_calls == 0
    assert records_by(airtable, "Contacts", "Contact key") == {}


def test_a_lease_left_by_a_killed_sync_runs_out(airtable, store):
    seed(store, 3)
    settings = ready_base(airtable, store)
    _held_by(store, "killed:1:dead", datetime.now(UTC) - timedelta(seconds=1))

    stats = sync_all(settings)["airtable"]

    assert stats.get("sink_busy", 0) == 0 and stats["created"] == 6
    assert len(records_by(airtable, "Contacts", "Contact key")) == 3


def test_a_finished_sync_gives_the_sink_back(airtable, store):
    seed(store, 3)
    settings = ready_base(airtable, store)
    sync_all(settings)
    # another holder may take it at once: nothing of the finished run holds it
    _held_by(store, "next-run", datetime.now(UTC) + SYNC_LEASE)


def test_a_lease_is_one_holders_until_it_runs_out(store):
    ledger = Ledger(store, create=True)
    start = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    try:
        assert ledger.take_lease("x", "a", start + timedelta(minutes=10), start) is None
        assert ledger.take_lease("x", "b", start + timedelta(minutes=15),
                                 start + timedelta(minutes=5)) == "a"
        # the holder renews it; a release by someone else does nothing
        assert ledger.take_lease("x", "a", start + timedelta(minutes=20),
                                 start + timedelta(minutes=9)) is None
        ledger.release_lease("x", "b")
        assert ledger.take_lease("x", "b", start + timedelta(minutes=25),
                                 start + timedelta(minutes=15)) == "a"
        # once it runs out, it is anyone's
        assert ledger.take_lease("x", "b", start + timedelta(minutes=30),
                                 start + timedelta(minutes=21)) is None
        ledger.release_lease("x", "b")
        assert ledger.take_lease("x", "c", start + timedelta(minutes=40),
                                 start + timedelta(minutes=22)) is None
    finally:
        ledger.close()


def test_a_sync_killed_on_this_machine_leaves_no_wait(airtable, store):
    import socket
    import subprocess
    import sys

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    seed(store, 3)
    settings = ready_base(airtable, store)
    _held_by(store, f"{socket.gethostname()}:{gone}:dead", datetime.now(UTC) + SYNC_LEASE)

    stats = sync_all(settings)["airtable"]

    assert stats.get("sink_busy", 0) == 0 and stats["created"] == 6
