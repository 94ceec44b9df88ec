"""Web-form posts stored in groups (`Ledger.store_submissions`), on SQLite and
PostgreSQL: repeats found inside a group, a refused post failing alone, and
endpoint replicas on one PostgreSQL store waiting for each other."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import exc

from connectors.ledger import Ledger
from tests.conditions import wait_until
from tests.store import lock_waits, query
from transforms.records import RawItem

WINDOW = 600
AT = datetime(2026, 5, 20, 9, 30, tzinfo=UTC)


def _post(item_id: str, content: str = "Анна +7 912 345 67 89", source: str | None = "form-site",
          at: datetime = AT) -> RawItem:
    return RawItem(item_id=item_id, source=source, kind="form",
                   payload=f'{{"name": "{content}"}}'.encode(), received_at=at,
                   meta={"form": "site", "webhook": "1"})


@pytest.fixture
def ledger(store):
    opened = Ledger(store, create=True)
    yield opened
    opened.close()


def _stored(store: str) -> list[str]:
    return sorted(row[0] for row in query(store, "SELECT item_id FROM raw_items"))


@pytest.mark.parametrize(
    ("second", "repeat"),
    [
        pytest.param(_post("form:site:777", content="Анна, второй раз"), True,
                     id="same-submission-id"),
        pytest.param(_post("form:site:hash-2"), True, id="same-content-same-source"),
        pytest.param(_post("form:site:hash-2", source="form-quiz"), False,
                     id="same-content-other-source"),
        pytest.param(_post("form:site:hash-2", at=AT + timedelta(seconds=WINDOW + 1)), False,
                     id="same-content-after-the-window"),
    ],
)
def test_two_copies_in_one_group_are_stored_once(ledger, store, second, repeat):
    first = _post("form:site:777")
    outcomes = ledger.store_submissions([first, second], WINDOW)
    if repeat:
        assert outcomes == [(first.item_id, False), (first.item_id, True)]
        assert _stored(store) == [first.item_id]
    else:
        assert outcomes == [(first.item_id, False), (second.item_id, False)]
        assert _stored(store) == sorted([first.item_id, second.item_id])


def test_a_group_finds_the_repeat_of_a_post_stored_before(ledger, store):
    earlier = _post("form:site:hash-1")
    ledger.store_submissions([earlier], WINDOW)
    retry = _post("form:site:hash-2", at=AT + timedelta(minutes=2))
    new = _post("form:site:hash-3", content="Олег +7 903 123 45 67")
    assert ledger.store_submissions([retry, new], WINDOW) == [
        (earlier.item_id, True), (new.item_id, False)]
    assert _stored(store) == [earlier.item_id, new.item_id]


def test_a_post_the_store_refuses_fails_alone(ledger, store):
    good = _post("form:site:1")
    refused = _post("form:site:2", content="без источника", source=None)  # NOT NULL
    other = _post("form:site:3", content="Олег +7 903 123 45 67")
    copy = _post("form:site:4")
    first, error, third, fourth = ledger.store_submissions([good, refused, other, copy], WINDOW)
    assert isinstance(error, exc.IntegrityError)
    assert (first, third, fourth) == ((good.item_id, False), (other.item_id, False),
                                      (good.item_id, True))
    assert _stored(store) == [good.item_id, other.item_id]


# --- endpoint replicas on one PostgreSQL store ------------------------------------------


@pytest.fixture
def replicas(postgres):
    """Three writers on one PostgreSQL store, as three endpoint processes have."""
    store = postgres.new_database()
    opened = [Ledger(store, create=True), Ledger(store), Ledger(store)]
    yield store, opened
    for ledger in opened:
        ledger.close()


def test_a_copy_at_another_replica_waits_for_the_first_and_is_a_repeat(replicas):
    store, (first_replica, second_replica, _) = replicas
    first, copy = _post("form:site:hash-a"), _post("form:site:hash-b")
    with ThreadPoolExecutor(1) as pool:
        with first_replica.transaction() as tx:
            assert first_replica.store_group(tx, [first], WINDOW) == [(first.item_id, False)]
            later = pool.submit(second_replica.store_submissions, [copy], WINDOW)
            wait_until(lambda: lock_waits(store) == 1)  # the copy waits for the group
        assert later.result(timeout=30) == [(first.item_id, True)]
    assert _stored(store) == [first.item_id]


def test_replicas_whose_groups_overlap_wait_for_each_other_instead_of_deadlocking(replicas):
    """Replica A stores p, r, q while r is held by another replica's group; B
    stores copies of q and p meanwhile. Taken post by post, A would hold p
    and wait for r, B would hold q and wait for p, and once r is free A
    would wait for q: each waiting for the other. Taken in one order, one of
    them waits and both get through."""
    store, (holder, replica_a, replica_b) = replicas
    p, r, q = (_post(f"form:site:{name}", content=name) for name in ("p", "r", "q"))
    copies = [_post(f"form:site:{name}-copy", content=name) for name in ("q", "p")]
    with ThreadPoolExecutor(2) as pool:
        with holder.transaction() as tx:
            holder.store_group(tx, [_post("form:site:r-first", content="r")], WINDOW)
            group_a = pool.submit(replica_a.store_submissions, [p, r, q], WINDOW)
            wait_until(lambda: lock_waits(store) == 1)  # A waits for r
            group_b = pool.submit(replica_b.store_submissions, copies, WINDOW)
            wait_until(lambda: group_b.done() or lock_waits(store) == 2)
        outcomes = group_a.result(timeout=60) + group_b.result(timeout=60)
    assert not [o for o in outcomes if isinstance(o, Exception)], outcomes
    assert sorted(repeat for _, repeat in outcomes) == [False, False, True, True, True]
    by_content = query(store, "SELECT content_hash, count(*) FROM raw_items GROUP BY 1")
    assert sorted(count for _, count in by_content) == [1, 1, 1]  # p, q and r once each
