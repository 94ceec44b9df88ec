import sqlite3
from datetime import UTC, datetime

import pytest

from connectors.ledger import MIGRATIONS, Ledger
from leadhub.errors import FatalError
from transforms.records import RawItem


def _item(item_id: str, payload: bytes = b"hello") -> RawItem:
    return RawItem(item_id=item_id, source="files", kind="form", payload=payload,
                   received_at=datetime(2026, 1, 1, tzinfo=UTC))


@pytest.fixture
def ledger(tmp_path):
    store = Ledger(tmp_path / "leadhub.db")
    yield store
    store.close()


def test_new_store_is_wal_and_at_the_latest_schema(ledger):
    assert ledger.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert ledger.schema_version() == len(MIGRATIONS)


def test_reopening_does_not_migrate_again(tmp_path):
    Ledger(tmp_path / "a.db").close()
    again = Ledger(tmp_path / "a.db")
    assert again.db.execute("SELECT COUNT(*) FROM schema_version").fetchone()[0] == len(MIGRATIONS)
    again.close()


def test_store_from_a_newer_version_is_refused(tmp_path):
    Ledger(tmp_path / "a.db").close()
    db = sqlite3.connect(tmp_path / "a.db")
    db.execute("INSERT INTO schema_version VALUES (99, 'later')")
    db.commit()
    db.close()
    with pytest.raises(FatalError, match="newer LeadHub"):
        Ledger(tmp_path / "a.db")


def test_storing_the_same_item_twice_changes_nothing(ledger):
    assert ledger.store_raw_items([_item("file:a:1")]) == 1
    assert ledger.store_raw_items([_item("file:a:1")]) == 0
    assert ledger.counts()["items_new"] == 1


def test_changed_content_at_the_same_place_is_kept_as_a_revision(ledger):
    ledger.store_raw_items([_item("file:a:1", b"v1")])
    assert ledger.store_raw_items([_item("file:a:1", b"v2")]) == 1
    ids = sorted(row[0] for row in ledger.db.execute("SELECT item_id FROM raw_items"))
    assert ids[0] == "file:a:1" and ids[1].startswith("file:a:1@")


def test_items_and_checkpoint_commit_together(ledger):
    ledger.store_raw_items([_item("file:a:1")], checkpoint=("files", "/a.csv", "hash1"))
    assert ledger.checkpoint("files", "/a.csv") == "hash1"


def test_failure_mid_batch_leaves_neither_items_nor_checkpoint(ledger):
    def items():
        yield _item("file:a:1")
        raise OSError("disk gone")

    with pytest.raises(OSError):
        ledger.store_raw_items(items(), checkpoint=("files", "/a.csv", "hash1"))
    assert ledger.checkpoint("files", "/a.csv") is None
    assert ledger.counts().get("items_new", 0) == 0


def test_requeue_sends_quarantined_items_back(ledger):
    ledger.store_raw_items([_item("file:a:1")])
    with ledger.transaction() as db:
        ledger.mark_item(db, "file:a:1", "quarantined", "no phone or email")
    assert ledger.pending_items(10) == []
    assert ledger.requeue() == 1
    assert [item.item_id for item in ledger.pending_items(10)] == ["file:a:1"]


def test_unwritable_store_is_a_fatal_error_naming_it(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(FatalError, match="cannot open the store"):
        Ledger(blocker / "leadhub.db")
