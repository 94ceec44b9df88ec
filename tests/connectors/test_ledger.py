import hashlib
import sqlite3
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import bindparam, create_engine, exc, insert, text, update

from connectors.ledger import Ledger, locate, new_worker_id
from connectors.ledger.base import Bulk, upsert
from connectors.ledger.contacts import _KnownMembers
from connectors.ledger.database import VERSION_TABLE, as_utc, moment_text
from connectors.ledger.items import _item_row
from connectors.ledger.leads import LeadRows
from connectors.ledger.legacy import SCRIPTS
from connectors.ledger.migrate import HEAD, head_revision
from connectors.ledger.schema import identities, lead_stages, leads, metadata, raw_items
from leadhub.errors import FatalError
from tests.store import comparable, query
from transforms.dedupe import ContactBook, Member
from transforms.records import Contact, RawItem


def _item(item_id: str, payload: bytes = b"hello", day: int = 1) -> RawItem:
    return RawItem(item_id=item_id, source="files", kind="form", payload=payload,
                   received_at=datetime(2026, 1, day, tzinfo=UTC))


@pytest.fixture
def ledger(store):
    opened = Ledger(store, create=True)
    yield opened
    opened.close()


def _differences(connection) -> list:
    context = MigrationContext.configure(connection, opts={
        "version_table": VERSION_TABLE})
    return compare_metadata(context, metadata)


def test_the_head_revision_is_the_one_the_code_expects():
    assert head_revision() == HEAD


def test_a_new_store_has_exactly_the_schema_the_queries_use(ledger):
    with ledger.engine.connect() as connection:
        assert _differences(connection) == []


def test_a_new_sqlite_store_is_wal(tmp_path):
    Ledger(tmp_path / "a.db", create=True).close()
    assert query(str(tmp_path / "a.db"), "PRAGMA journal_mode") == [("wal",)]


def test_a_sqlite_store_syncs_every_commit_and_keeps_a_large_page_cache(tmp_path):
    ledger = Ledger(tmp_path / "a.db", create=True)
    with ledger.reading() as connection:
        pragma = connection.exec_driver_sql
        # FULL (2): a commit is on disk when it returns, even across a power loss
        assert pragma("PRAGMA synchronous").scalar() == 2
        assert pragma("PRAGMA cache_size").scalar() == -262144  # KiB
    ledger.close()


def test_reopening_does_not_migrate_again(store):
    Ledger(store, create=True).close()
    again = Ledger(store)
    assert (again.created, again.schema_version()) == (False, HEAD)
    again.close()


def test_store_from_a_newer_version_is_refused(store):
    Ledger(store, create=True).close()
    query(store, f"UPDATE {VERSION_TABLE} SET version_num = 'a-later-one'")
    with pytest.raises(FatalError, match="newer LeadHub"):
        Ledger(store)


def test_no_store_is_created_unless_the_command_may_create_one(tmp_path):
    with pytest.raises(FatalError, match="there is no store at .*typo"):
        Ledger(tmp_path / "mistyped.db")
    assert not (tmp_path / "mistyped.db").exists()


@pytest.mark.parametrize("create", [False, True], ids=["read", "create"])
def test_a_foreign_sqlite_file_is_refused_and_left_as_it_was(tmp_path, create):
    foreign = tmp_path / "photos.db"
    db = sqlite3.connect(foreign)
    db.execute("CREATE TABLE albums (name TEXT)")
    db.commit()
    db.close()
    before = foreign.read_bytes()
    with pytest.raises(FatalError, match="is not a LeadHub store .*albums"):
        Ledger(foreign, create=create)
    assert foreign.read_bytes() == before
    assert not (tmp_path / "photos.db-wal").exists()


@pytest.mark.parametrize("content", [b"not a database at all, just text" * 40,
                                     b"SQLite format 3\x00" + b"\xff" * 200],
                         ids=["text-file", "truncated-header"])
def test_a_damaged_file_is_one_clear_error(tmp_path, content):
    broken = tmp_path / "leadhub.db"
    broken.write_bytes(content)
    with pytest.raises(FatalError, match="cannot be used"):
        Ledger(broken)
    assert broken.read_bytes() == content


def test_a_foreign_postgres_database_is_refused(postgres):
    url = postgres.new_database()
    query(url, "CREATE TABLE albums (name TEXT)")
    with pytest.raises(FatalError, match="is not a LeadHub store"):
        Ledger(url, create=True)


def test_an_unreachable_postgres_is_one_clear_error():
    with pytest.raises(FatalError, match="cannot reach the store postgresql://nobody@127.0.0.1:1/x"):
        Ledger("postgresql://nobody:hunter2@127.0.0.1:1/x")


def test_a_postgres_password_never_shows_in_messages():
    location = locate("postgresql://sales:hunter2@db.example.ru/leads")
    assert "hunter2" not in location.describe()


def test_unwritable_store_is_a_fatal_error_naming_it(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(FatalError, match="cannot open the store"):
        Ledger(blocker / "leadhub.db", create=True)


def test_storing_the_same_item_twice_changes_nothing(ledger):
    assert ledger.store_raw_items([_item("file:a:1")]) == 1
    assert ledger.store_raw_items([_item("file:a:1")]) == 0
    assert ledger.counts()["items_new"] == 1


def test_changed_content_at_the_same_place_is_kept_as_a_revision(ledger, store):
    ledger.store_raw_items([_item("file:a:1", b"v1")])
    assert ledger.store_raw_items([_item("file:a:1", b"v2")]) == 1
    ids = sorted(row[0] for row in query(store, "SELECT item_id FROM raw_items"))
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
    with ledger.transaction() as tx:
        ledger.mark_item(tx, "file:a:1", "quarantined", "no phone or email")
    assert ledger.pending_items(10) == []
    assert ledger.requeue() == 1
    assert [item.item_id for item in ledger.pending_items(10)] == ["file:a:1"]


def test_two_workers_never_claim_the_same_item(ledger):
    ledger.store_raw_items([_item(f"file:a:{n}", day=1 + n % 20) for n in range(30)])
    first = ledger.claim_pending(new_worker_id(), 20)
    second = ledger.claim_pending(new_worker_id(), 20)
    assert len(first) == 20 and len(second) == 10
    assert not {i.item_id for i in first} & {i.item_id for i in second}
    assert [i.received_at for i in first] == sorted(i.received_at for i in first)


def test_a_worker_claiming_more_leaves_out_the_items_it_has_in_hand(ledger):
    ledger.store_raw_items([_item(f"file:a:{n}", day=1 + n) for n in range(12)])
    worker = new_worker_id()
    in_hand = {item.item_id for item in ledger.claim_pending(worker, 5)}
    more = ledger.claim_pending(worker, 5, excluding=in_hand)
    assert [item.item_id for item in more] == [f"file:a:{n}" for n in range(5, 10)]
    # without `excluding`, its own unprocessed claims come back first (a restart)
    assert {item.item_id for item in ledger.claim_pending(worker, 5)} == in_hand


def test_items_of_one_moment_are_claimed_in_the_order_they_were_stored(ledger):
    """A file's rows share one received_at, and their ids end in the row
    number as text: claimed by id, row 10 came before row 2."""
    first_file = [_item(f"file:a:{row}") for row in range(1, 13)]
    ledger.store_raw_items(first_file)
    ledger.store_raw_items([_item(f"file:b:{row}") for row in range(1, 4)]
                           + [_item("file:a:1"), _item("file:a:5")])  # known: not again
    ledger.store_submissions([_item("form:x:1", b"one"), _item("form:x:0", b"other")], 0)
    worker, claimed = new_worker_id(), []
    while batch := ledger.claim_pending(worker, 5):
        claimed += [item.item_id for item in batch]
        with ledger.transaction() as tx:
            for item in batch:
                ledger.mark_item(tx, item.item_id, "processed")
    assert claimed == [*(f"file:a:{row}" for row in range(1, 13)),
                       "file:b:1", "file:b:2", "file:b:3", "form:x:1", "form:x:0"]


def test_a_claimed_item_is_the_item_stored(ledger):
    stored = [RawItem(f"file:a:{n}", "files", "csv", bytes([n, 0, 255]), moment,
                      {"row": n, "файл": "лиды.csv"})
              for n, moment in enumerate([datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
                                          datetime(2026, 1, 1, 9, tzinfo=ZoneInfo("Asia/Omsk"))])]
    ledger.store_raw_items(stored)
    claimed = ledger.claim_pending(new_worker_id(), 10)
    assert claimed == [replace(item, received_at=as_utc(item.received_at))
                       for item in reversed(stored)]  # oldest first


def test_claims_of_a_dead_worker_are_taken_over(ledger):
    ledger.store_raw_items([_item("file:a:1")])
    ledger.claim_pending("this-host-is-elsewhere:1:x", 10)
    assert ledger.claim_pending(new_worker_id(), 10) == []  # a live claim elsewhere
    later = datetime.now(UTC) + timedelta(minutes=11)  # its lease has run out
    assert [i.item_id for i in ledger.claim_pending(new_worker_id(), 10, at=later)] == [
        "file:a:1"]


def test_claims_of_a_killed_local_process_are_void_at_once(ledger):
    from connectors.ledger.items import HOST

    ledger.store_raw_items([_item("file:a:1")])
    ledger.claim_pending(f"{HOST}:999999999:dead", 10)  # no such process
    assert len(ledger.claim_pending(new_worker_id(), 10)) == 1


def test_moments_compare_as_moments_whatever_zone_they_are_given_in(ledger):
    evening_utc = datetime(2026, 5, 19, 21, 30, tzinfo=UTC)  # 00:30 on May 20 in Moscow
    ledger.store_raw_items([RawItem("file:a:1", "files", "form", b"x", evening_utc)])
    with ledger.transaction() as tx:
        ledger.mark_item(tx, "file:a:1", "quarantined", "no phone")
    may_20_moscow = datetime(2026, 5, 20, tzinfo=ZoneInfo("Europe/Moscow"))
    assert [row["item_id"] for row in ledger.export_review_items(may_20_moscow)] == ["file:a:1"]
    assert [row["received_at"] for row in ledger.export_review_items()] == [evening_utc]


# Moments as callers hand them over: aware in UTC with microseconds, aware in
# another zone, naive (UTC), ISO text; and none.
GIVEN_MOMENTS = [datetime(2026, 5, 19, 21, 30, 15, 999, tzinfo=UTC),
                 datetime(2026, 5, 20, 0, 30, tzinfo=ZoneInfo("Europe/Moscow")),
                 datetime(2026, 5, 19, 21, 30), "2026-05-19T21:30:00Z"]


def _stored(store, table: str, key: str, prefix: str, skip: int) -> list[tuple]:
    """Every column but the first `skip` of the rows whose key starts with
    `prefix`, in key order, as the driver returns them (not normalised: the
    text "1" and the integer 1 differ)."""
    rows = query(store, f"SELECT * FROM {table} WHERE {key} LIKE :prefix ORDER BY {key}",
                 prefix=prefix + "%")
    return [row[skip:] for row in rows]


def _lead_row(lead_id: str, seq: int, received_at, valid: bool) -> dict:
    return dict(origin="", owner="", stage="Новый", lead_id=lead_id, seq=seq,
                contact_key="c1", first_contact_key="c1", match_reason="телефон",
                raw_item_id="file:a:1", received_at=received_at, channel="import",
                source="Сайт", source_matched=valid, raw_source='{"utm_source": "ya"}',
                name="Игорь", phone="+79123456789", phone_extension="12",
                phone_display="+7 (912) 345-67-89", phone_valid=valid, email="i@x.ru",
                company="Ромашка", legal_form="ООО", position="", city="Пермь",
                subject="", message="Перезвоните", warnings="[]", fingerprint="ab")


def test_bulk_written_leads_are_stored_as_sqlalchemy_stores_them(ledger, store):
    """The bulk path (compiled once, values converted in one pass) and a plain
    `execute` of the same rows leave the same values, on either engine."""
    given = [(moment, valid) for moment in GIVEN_MOMENTS for valid in (True, False)]
    bulk, plain = LeadRows(), LeadRows()
    for n, (moment, valid) in enumerate(given):
        bulk.leads.append(_lead_row(f"a{n:02}", n + 1, moment, valid))
        plain.leads.append(_lead_row(f"b{n:02}", n + 101, moment, valid))
        bulk.stages.append({"lead_id": f"a{n:02}", "stage": "Новый", "changed_at": moment,
                            "changed_by": "leadhub"})
        plain.stages.append({**bulk.stages[-1], "lead_id": f"b{n:02}"})
    with ledger.transaction() as tx:
        ledger.save_leads(tx, bulk)
        tx.execute(insert(leads), plain.leads)
        tx.execute(insert(lead_stages), plain.stages)
    stored = _stored(store, "leads", "lead_id", "a", skip=2)  # without id and position
    assert len(stored) == len(given)
    assert stored == _stored(store, "leads", "lead_id", "b", skip=2)
    stages = query(store, "SELECT lead_id, stage, reason, changed_at, changed_by"
                          " FROM lead_stages ORDER BY lead_id")
    assert [row[1:] for row in stages if row[0].startswith("a")] == [
        row[1:] for row in stages if row[0].startswith("b")]


def test_bulk_written_items_and_marks_are_stored_as_sqlalchemy_stores_them(ledger, store):
    items = [RawItem(f"file:a:{n}", "files", "csv", bytes([n, 0, 255]) + "Я".encode(), moment,
                     {"row": n, "файл": "лиды.csv"}) for n, moment in enumerate(GIVEN_MOMENTS)]
    twins = [replace(item, item_id=item.item_id.replace(":a:", ":b:")) for item in items]
    assert ledger.store_raw_items(items) == len(items)
    stamp = datetime(2026, 6, 1, 12, tzinfo=UTC)
    with ledger.transaction() as tx:
        tx.execute(insert(raw_items), [
            _item_row(item, item.item_id, hashlib.sha256(item.payload).hexdigest(), arrival,
                      stamp)
            for arrival, item in enumerate(twins, start=1)])  # the numbers the first got
        tx.execute(update(raw_items).values(ingested_at=stamp))
    assert _stored(store, "raw_items", "item_id", "file:a:", skip=1) == _stored(
        store, "raw_items", "item_id", "file:b:", skip=1)
    ledger.claim_pending("w:1:x", 100)  # marking takes the claims off
    marks = [{"marked_id": item.item_id, "state": "quarantined", "reason": "нет телефона",
              "lead_id": None, "processed_at": moment}
             for item, moment in zip(items, GIVEN_MOMENTS, strict=True)]
    with ledger.transaction() as tx:
        ledger.mark_items(tx, marks)
        tx.execute(update(raw_items).where(raw_items.c.item_id == bindparam("marked_id"))
                   .values(state=bindparam("state"), reason=bindparam("reason"),
                           lead_id=bindparam("lead_id"),
                           processed_at=bindparam("processed_at"), claimed_by=None,
                           claimed_at=None),
                   [{**mark, "marked_id": twin.item_id}
                    for mark, twin in zip(marks, twins, strict=True)])
    stored = _stored(store, "raw_items", "item_id", "file:a:", skip=1)
    assert stored == _stored(store, "raw_items", "item_id", "file:b:", skip=1)
    assert {row[6:8] for row in stored} == {("quarantined", "нет телефона")}
    assert {row[11:13] for row in stored} == {(None, None)}  # claimed by, claimed at


def _identities_upsert(tx, keys):
    statement = upsert(tx, identities)
    return statement.on_conflict_do_update(
        index_elements=["contact_key", "kind", "value"],
        set_={name: statement.excluded[name] for name in keys
              if name not in ("contact_key", "kind", "value")})


def test_a_bulk_upsert_updates_what_is_there_and_adds_what_is_not(ledger, store):
    """An INSERT ... ON CONFLICT DO UPDATE through Bulk (what contacts are
    written with) ends as the same statement through `execute` ends."""
    first = [{"contact_key": f"{prefix}1", "kind": "phone", "value": "+79123456789",
              "written": "8 912 345-67-89", "first_seen": GIVEN_MOMENTS[0],
              "last_seen": GIVEN_MOMENTS[0], "seen_in": "l1", "active": True}
             for prefix in "ab"]
    again = [{**row, "last_seen": GIVEN_MOMENTS[1], "active": False} for row in first] + [
        {**row, "value": "i@x.ru", "kind": "email"} for row in first]
    bulk = Bulk(_identities_upsert)
    with ledger.transaction() as tx:
        bulk.execute(tx, first[:1])
        bulk.execute(tx, [row for row in again if row["contact_key"] == "a1"])
        tx.execute(_identities_upsert(tx, tuple(first[1])), first[1:])
        tx.execute(_identities_upsert(tx, tuple(first[1])),
                   [row for row in again if row["contact_key"] == "b1"])
    stored = query(store, "SELECT contact_key, kind, value, written, first_seen, last_seen,"
                          " seen_in, active FROM identities ORDER BY contact_key, kind")
    assert len(stored) == 4
    assert [row[1:] for row in stored[:2]] == [row[1:] for row in stored[2:]]
    assert comparable(stored[1][5]) == "2026-05-19T21:30:00+00:00"  # phone: updated


@pytest.mark.parametrize("given", GIVEN_MOMENTS, ids=["utc", "moscow", "naive", "text"])
def test_a_moment_is_kept_as_the_same_text_however_often_it_is_written(given):
    assert moment_text(given) == moment_text(given) == as_utc(given).isoformat()
    assert moment_text(given) in ("2026-05-19T21:30:15+00:00", "2026-05-19T21:30:00+00:00")


def test_a_value_its_column_refuses_fails_a_bulk_write_as_it_fails_execute(ledger):
    """The same error, so that whoever falls back to writing rows one by one
    (a web-form group) still does."""
    row = {**_lead_row("a1", 1, "not a moment", True)}
    errors = []
    for write in (lambda tx: Bulk(lambda tx, keys: insert(leads)).execute(tx, [row, row]),
                  lambda tx: tx.execute(insert(leads), [row, row])):
        with pytest.raises(exc.StatementError) as raised, ledger.transaction() as tx:
            write(tx)
        errors.append(raised.value)
    assert [type(error) for error in errors] == [exc.StatementError] * 2
    assert [type(error.orig) for error in errors] == [ValueError] * 2
    assert ledger.lead_count() == 0


def test_a_bulk_write_refuses_a_parameter_its_rows_do_not_have(ledger):
    wrong = Bulk(lambda tx, keys: update(raw_items).where(
        raw_items.c.item_id == bindparam("marked_id")).values(state="new"))
    with ledger.transaction() as tx, pytest.raises(ValueError, match="state"):
        wrong.execute(tx, [{"marked_id": "file:a:1"}])


def test_money_comes_back_exact(ledger):
    ledger.upsert_orders([{"order_id": "1", "contact_key": "c", "status": "",
                           "comment": "", "ordered_at": datetime(2026, 1, 1, tzinfo=UTC)}])
    ledger.replace_order_items([{"order_id": "1", "line": 1, "product": "Стол",
                                 "price": Decimal("8030.275"), "cost": Decimal("0.1"),
                                 "quantity": Decimal("3")}])
    item = next(ledger.export_order_items())
    assert (item["price"], item["cost"], item["quantity"]) == (
        Decimal("8030.275"), Decimal("0.1"), Decimal("3"))


def test_replacing_an_orders_lines_drops_the_lines_gone_from_the_file(ledger):
    ledger.upsert_orders([{"order_id": "1", "contact_key": "c", "status": "",
                           "comment": "", "ordered_at": datetime(2026, 1, 1, tzinfo=UTC)}])
    line = {"order_id": "1", "product": "Стол", "price": 10, "cost": 5, "quantity": 1}
    ledger.replace_order_items([{**line, "line": n} for n in (1, 2, 3)])
    ledger.replace_order_items([{**line, "line": n} for n in (1, 2)])
    assert len(list(ledger.export_order_items())) == 2


# --- a store of LeadHub 0.1 is upgraded in place ------------------------------------


def _old_store(path, version: int = len(SCRIPTS)) -> None:
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at TEXT)")
    for number, script in enumerate(SCRIPTS[:version], start=1):
        db.executescript(script)
        db.execute("INSERT INTO schema_version VALUES (?, 'then')", (number,))
    db.commit()
    db.close()


def _old_rows(path) -> None:
    db = sqlite3.connect(path)
    db.executescript("""
        INSERT INTO raw_items (item_id, source, kind, received_at, payload, content_hash,
            state, lead_id, ingested_at)
            VALUES ('file:a:1', 'files', 'form', '2026-01-01T10:00:00+00:00', x'7b7d', 'h',
                    'processed', 'L1', '2026-01-01T10:00:01+00:00');
        INSERT INTO contacts (contact_key, name, phone, first_seen, last_seen, leads_count,
            updated_at) VALUES ('+79123456789', 'Иван', '+79123456789',
            '2026-01-01T10:00:00+00:00', '2026-01-02T10:00:00+00:00', 2, 'then');
        INSERT INTO contacts (contact_key, name, email, merged_into, updated_at)
            VALUES ('ivan@x.ru', 'Иван', 'ivan@x.ru', '+79123456789',
                    '2026-01-02T10:00:00+00:00');
        INSERT INTO contact_identities VALUES ('phone', '+79123456789', '+79123456789');
        INSERT INTO contact_identities VALUES ('email', 'ivan@x.ru', '+79123456789');
        INSERT INTO leads VALUES ('L1', '+79123456789', 'file:a:1',
            '2026-01-01T10:00:00+00:00', 'form', 'Сайт', 1, '{}', 'Иван', '+79123456789', '',
            '', '', 'Перезвоните', 'Новый', '[]');
        INSERT INTO orders VALUES ('7', '+79123456789', '2026-02-01T00:00:00+00:00', 'Оплачен',
            '', 'then');
        INSERT INTO order_items VALUES ('7', 1, 'Стол', 16060.55, 0.1, 2, 'then');
    """)
    db.commit()
    db.close()


def _same_affinity(difference) -> bool:
    """An upgraded 0.1 table keeps its declared types (TEXT where the schema
    says VARCHAR, INTEGER for BOOLEAN: the same SQLite affinity) and its text
    primary keys that SQLite lets be NULL; neither changes what it stores."""
    kind = difference[0]
    if kind == "modify_nullable":
        return True
    if kind == "modify_type":
        pairs = {(str(difference[5]), str(difference[6]).split("(")[0])}
        return pairs <= {("TEXT", "VARCHAR"), ("INTEGER", "BOOLEAN")}
    return False


@pytest.mark.parametrize("version", [1, 3, len(SCRIPTS)], ids=lambda v: f"v{v}")
def test_an_old_store_at_any_version_is_upgraded_in_place(tmp_path, version):
    store = tmp_path / "old.db"
    _old_store(store, version)
    Ledger(store).close()
    assert query(str(store), f"SELECT version_num FROM {VERSION_TABLE}") == [(HEAD,)]
    engine = create_engine(locate(store).url)
    with engine.connect() as connection:
        changes = [change for group in _differences(connection) for change in (
            group if isinstance(group, list) else [group])]
    engine.dispose()
    assert [change for change in changes if not _same_affinity(change)] == []


def test_an_upgraded_store_keeps_every_row_and_contact_key(tmp_path):
    store = tmp_path / "old.db"
    _old_store(store)
    _old_rows(store)
    ledger = Ledger(store)
    try:
        assert ledger.counts() == {"items_processed": 1, "contacts": 1, "contacts_merged": 1,
                                   "leads": 1}
        assert ledger.contact_key_for("email", "ivan@x.ru") == "+79123456789"
        lead = next(ledger.export_leads())
        assert (lead["seq"], lead["contact_key"], lead["first_contact_key"]) == (
            1, "+79123456789", "+79123456789")
        item = next(ledger.export_order_items())
        assert (item["price"], item["cost"], item["quantity"]) == (
            Decimal("16060.55"), Decimal("0.1"), Decimal("2.0"))
    finally:
        ledger.close()
    merges = query(str(store), "SELECT survivor, loser, decided_by FROM contact_merges")
    assert merges == [("+79123456789", "ivan@x.ru", "rule")]


# --- a store at schema 0001 gets the alerts' retry window and reasons -----------------


def _store_at(store: str, revision: str) -> None:
    from connectors.ledger.database import create_store_engine
    from connectors.ledger.migrate import upgrade

    engine = create_store_engine(locate(store))
    upgrade(engine, revision)
    engine.dispose()


def test_alerts_a_crash_left_unconfirmed_before_0003_are_not_replayed(store):
    _store_at(store, "0001")
    errors = {"a1": "the run stopped while sending it, so it may or may not have arrived",
              "a2": "channel 'old' is no longer in the config", "a3": "error=500"}
    for alert, error in errors.items():
        query(store, "INSERT INTO alerts (alert_id, rule, channel, event_kind, event_key,"
                     " title, message, state, attempts, last_error, created_at, send_after)"
                     " VALUES (:id, 'r', 'team', 'new_lead', :id, 't', 'm', 'failed', 1, :error,"
                     " :at, :at)", id=alert, error=error,
              at=datetime(2026, 11, 1, tzinfo=UTC) if "postgresql" in store
              else "2026-11-01T00:00:00+00:00")
    ledger = Ledger(store)
    try:
        assert ledger.requeue_alerts(datetime.now(UTC), ["team"]) == (2, {})
    finally:
        ledger.close()
    assert query(store, "SELECT alert_id, state, given_up FROM alerts ORDER BY alert_id") == [
        ("a1", "failed", "unconfirmed"), ("a2", "pending", ""), ("a3", "pending", "")]


def _person_lead(lead_id: str, phone: str = "", email: str = "", name: str = "Иван Петров"):
    from leadhub.settings import load_settings
    from transforms.normalize import normalize_lead
    from transforms.records import ParsedLead

    parsed = ParsedLead(lead_id=lead_id, channel="form", received_at=datetime(2026, 1, 1,
                                                                              tzinfo=UTC),
                        name=name, phones=[phone] if phone else [],
                        emails=[email] if email else [])
    return normalize_lead(parsed, load_settings().normalize_rules())


def _book_for(ledger, lead):
    from leadhub.settings import load_settings
    from transforms.dedupe import lookups_of, query_keys_of

    rules = load_settings().identity_rules()
    with ledger.transaction() as tx:
        return ledger.load_book(tx, rules, lookups_of(lead, rules), query_keys_of(lead, rules))


def _book_of(*keys: str) -> ContactBook:
    book = ContactBook()
    for key in keys:
        book.load(Member(Contact(contact_key=key)))
    return book


def test_the_contacts_a_ledger_keeps_between_batches_lose_the_least_recently_used_first(
        monkeypatch):
    monkeypatch.setattr("connectors.ledger.contacts.KNOWN_MEMBERS", 3)
    kept = _KnownMembers()
    kept.fresh(0, 1)
    kept.committed(_book_of("a", "b", "c"))
    kept.fresh(1, 2)
    # "a" is read again by the next batch: it is the most recently used now
    assert [member.key for member, _ in kept.copies(["a", "zz"])] == ["a"]
    kept.committed(_book_of("d"))
    assert list(kept.members) == ["c", "a", "d"]
    kept.fresh(2, 3)
    kept.committed(_book_of("c", "e", "f"))
    assert list(kept.members) == ["c", "e", "f"]
    # what a copy is: the same contact, not the one kept (a book changes its members)
    copy, _ = kept.copies(["e"])[0]
    assert copy.contact == kept.members["e"].contact and copy is not kept.members["e"]


def test_a_ledger_keeps_no_contacts_of_an_older_generation():
    kept = _KnownMembers()
    kept.fresh(0, 1)
    kept.committed(_book_of("a"))
    kept.fresh(5, 6)  # another worker wrote contacts in between
    assert kept.copies(["a"]) == []


def test_a_full_block_brings_none_of_its_contacts_into_the_book(ledger):
    """A common name's key finds no one, in the store as in the book: a
    batch does not read the namesakes only to leave them aside."""
    from transforms.dedupe import BLOCK_LIMIT

    namesakes = [_person_lead(f"l{n}", phone=f"+7 912 000-00-{n:02d}")
                 for n in range(BLOCK_LIMIT)]
    book = _book_for(ledger, namesakes[0])
    for lead in namesakes:
        book.add(lead)
    with ledger.transaction() as tx:
        ledger.save_book(tx, book)
    assert len(book.members) == BLOCK_LIMIT  # namesakes with their own phones: people apart
    by_email = _book_for(ledger, _person_lead("new", email="ivan@example.ru"))
    assert by_email.members == {} and by_email.full_blocks
    by_phone = _book_for(ledger, _person_lead("again", phone="+7 912 000-00-03"))
    assert len(by_phone.members) == 1


def test_a_block_a_batch_only_files_leads_under_fills_up_at_its_limit(ledger):
    """The batch reads none of the key's contacts (none of its leads looks
    it up), but counts them: the key takes leads up to its limit and no
    more, as it would had each lead come in a batch of its own."""
    from leadhub.settings import load_settings
    from transforms.dedupe import BLOCK_LIMIT, block_keys_of, lookups_of

    rules = load_settings().identity_rules()
    namesakes = [_person_lead(f"l{n}", phone=f"+7 912 000-00-{n:02d}")
                 for n in range(BLOCK_LIMIT - 1)]
    book = _book_for(ledger, namesakes[0])
    for lead in namesakes:
        book.add(lead)
    with ledger.transaction() as tx:
        ledger.save_book(tx, book)
    later = [_person_lead(f"m{n}", phone=f"+7 913 000-00-{n:02d}") for n in range(2)]
    shared = set.intersection(*(block_keys_of(lead, rules) for lead in [*namesakes, *later]))
    assert shared  # the name's key: filed under, never a query key of these leads' book
    with ledger.transaction() as tx:
        book = ledger.load_book(tx, rules, [i for lead in later for i in lookups_of(lead, rules)],
                                filed=[k for lead in later for k in block_keys_of(lead, rules)])
        assert book.members == {}
        for lead in later:
            book.add(lead)
        ledger.save_book(tx, book)
    with ledger.transaction() as tx:
        filed = {key: tx.execute(text("SELECT count(*) FROM block_keys WHERE key = :key"),
                                 {"key": key}).scalar_one() for key in shared}
    assert set(filed.values()) == {BLOCK_LIMIT}
