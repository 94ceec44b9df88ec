import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from connectors.files import FilesSource
from connectors.ledger import Ledger
from flows import intake
from flows.intake import collect, process_pending, run_intake
from leadhub.progress import listen
from leadhub.settings import load_settings
from tests.store import comparable, query, rows

from .helpers import LEAD_SAMPLES, SAMPLES, people, snapshot

EXPECTED_SAMPLE_TOTALS = {  # samples/EXPECTED.md
    "read": 54, "new_items": 54, "new_leads": 48, "new_contacts": 43, "merged_contacts": 0,
    "duplicate_items": 1, "skipped": 4, "quarantined": 1,
}


def _steps(store: str | Path, batch_size: int = 1000) -> None:
    """The flow's two steps without the Prefect API, as a crash test needs."""
    settings = load_settings(store=str(store))
    collect(FilesSource("files", LEAD_SAMPLES), store)
    process_pending(settings, batch_size=batch_size)


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory):
    store = tmp_path_factory.mktemp("clean") / "leadhub.db"
    _steps(store)
    return snapshot(store)


def test_the_intake_ingests_the_samples_with_the_expected_totals(store, clean_run):
    stats = run_intake(load_settings(store=store), LEAD_SAMPLES)
    assert {key: stats.get(key, 0) for key in EXPECTED_SAMPLE_TOTALS} == EXPECTED_SAMPLE_TOTALS
    assert len(snapshot(store)["leads"]) == 48
    assert snapshot(store) == clean_run


def test_every_sample_has_a_date_of_its_own_so_the_demo_is_the_same_every_day(store):
    collect(FilesSource("files", LEAD_SAMPLES, clock=lambda: datetime(2031, 1, 1, tzinfo=UTC)),
            store)
    process_pending(load_settings(store=store))
    [(first, last, count)] = rows(store, "SELECT MIN(received_at), MAX(received_at), COUNT(*)"
                                         " FROM leads")
    assert count == 48
    assert "2024-03-01" <= first[:10] and last[:10] <= "2024-03-31", (first, last)


def test_an_undated_row_keeps_the_time_leadhub_first_saw_it(store, tmp_path):
    leads = tmp_path / "leads.csv"
    leads.write_text("Name,Phone\nАнна Смирнова,+79131234567\n", encoding="utf-8")
    first_seen, next_day = (datetime(2026, 5, 4, 9, 30, tzinfo=UTC),
                            datetime(2026, 5, 5, 9, 30, tzinfo=UTC))
    settings = load_settings(store=store)
    collect(FilesSource("files", [leads], clock=lambda: first_seen), store)
    process_pending(settings)
    # the file changes and is read again a day later: the known row keeps its time
    leads.write_text("Name,Phone\nАнна Смирнова,+79131234567\nОлег Титов,+79137654321\n",
                     encoding="utf-8")
    collect(FilesSource("files", [leads], clock=lambda: next_day), store)
    process_pending(settings)
    ledger = Ledger(store)
    try:
        ledger.requeue()
    finally:
        ledger.close()
    process_pending(settings)

    received = dict(rows(store, "SELECT name, received_at FROM leads"))
    assert received == {"Анна Смирнова": comparable(first_seen),
                        "Олег Титов": comparable(next_day)}


def test_second_run_changes_nothing(store):
    run_intake(load_settings(store=store), LEAD_SAMPLES)
    before = snapshot(store)
    stats = run_intake(load_settings(store=store), LEAD_SAMPLES)
    assert stats.get("new_items", 0) == 0 and stats.get("new_leads", 0) == 0
    assert snapshot(store) == before


def test_reingest_after_lost_checkpoints_changes_nothing(store, clean_run):
    _steps(store)
    query(store, "DELETE FROM checkpoints")
    _steps(store)
    assert snapshot(store) == clean_run


def test_order_of_inputs_does_not_change_who_is_who(store, tmp_path):
    in_order = tmp_path / "in-order.db"
    _steps(in_order)
    settings = load_settings(store=str(store))
    for part in reversed(LEAD_SAMPLES):
        collect(FilesSource("files", [part]), store)
        process_pending(settings)
    assert people(store) == people(in_order)


@pytest.mark.parametrize("dated, newest_first", [(True, False), (False, False), (True, True)],
                         ids=["dated", "undated", "newest-first"])
def test_a_files_rows_end_on_the_same_contacts_whatever_the_batch_size(
        tmp_path, monkeypatch, dated, newest_first):
    """A file's rows are processed in the file's order: claimed by item id
    (`…:10` before `…:2`), or each batch sorted by the rows' dates, every
    batch size cut and ordered them otherwise, and the order-sensitive
    matching put some rows on other contacts (10,000 rows: 1.7% of them)."""
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2] / "benchmarks"))
    import leadgen

    generated = leadgen.generate(300, 600, seed=16)
    lines = ["Имя,Телефон,Email,Компания" + (",Дата" if dated else "")]
    for record in reversed(generated.records) if newest_first else generated.records:
        cells = [record.name, ", ".join(record.phones), ", ".join(record.emails),
                 record.company]
        if dated:
            cells.append(record.received_at.strftime("%Y-%m-%d %H:%M:%S"))
        lines.append(",".join(f'"{cell}"' for cell in cells))
    leads = tmp_path / "leads.csv"
    leads.write_text("\n".join(lines) + "\n", encoding="utf-8")
    people_of = {}
    for size in (7, 1000):  # 1000: the whole file in one batch
        where = tmp_path / f"batches-of-{size}.db"
        collect(FilesSource("files", [leads]), str(where))
        process_pending(load_settings(store=str(where)), batch_size=size, workers=1)
        people_of[size] = {
            "leads": rows(where, "SELECT raw_item_id, contact_key, match_reason FROM leads"
                                 " ORDER BY raw_item_id"),
            "contacts": rows(where, "SELECT contact_key, merged_into, leads_count FROM contacts"
                                    " ORDER BY contact_key"),
            # a pair found and merged in one batch is kept closed, as when it
            # was found a batch before the merge
            "pairs": rows(where, "SELECT contact_a, contact_b, state FROM duplicate_pairs"
                                 " ORDER BY contact_a, contact_b"),
            # a key fills up at the same lead (the store's contacts counted)
            "block keys": rows(where, "SELECT key, contact_key FROM block_keys"
                                      " ORDER BY key, contact_key")}
    assert len(people_of[7]["contacts"]) > 200 and people_of[7]["pairs"]
    assert people_of[7] == people_of[1000]


def test_crash_between_collect_and_process_loses_nothing(store, clean_run):
    collect(FilesSource("files", LEAD_SAMPLES), store)  # then the process "dies"
    _steps(store)
    assert snapshot(store) == clean_run


def test_crash_inside_a_processing_batch_rolls_the_batch_back(store, clean_run, monkeypatch):
    calls = {"n": 0}
    original = Ledger.save_lead

    def failing_save_lead(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 20:
            raise RuntimeError("power cut")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Ledger, "save_lead", failing_save_lead)
    with pytest.raises(RuntimeError, match="power cut"):
        _steps(store, batch_size=15)
    partial = snapshot(store)
    assert 0 < len(partial["leads"]) < 48  # the first batch was committed, the second was not
    monkeypatch.setattr(Ledger, "save_lead", original)
    _steps(store)
    assert snapshot(store) == clean_run


def test_worker_processes_give_the_store_one_process_gives(store, tmp_path):
    one_process = tmp_path / "one-process.db"
    found = {}
    for where, workers in ((one_process, 1), (store, 2)):
        collect(FilesSource("files", LEAD_SAMPLES), where)
        found[workers] = process_pending(load_settings(store=str(where)), batch_size=5,
                                         workers=workers)
    assert found[2] == found[1]
    assert snapshot(store) == snapshot(one_process)


def test_with_workers_the_next_half_window_is_claimed_while_the_writer_is_in_the_middle(
        store, monkeypatch):
    """The workers parse ahead of the writer without a pause: when half the
    window is recorded, the next half is claimed (leaving out the items in
    hand), so the writer never waits for a fresh window's first batch."""
    events, claimed_ids = [], []
    claim_pending, record_batch = Ledger.claim_pending, intake._record_batch

    def claiming(ledger, worker, limit, at=None, excluding=frozenset()):
        items = claim_pending(ledger, worker, limit, at, excluding)
        events.append(("claim", limit, len(excluding)))
        claimed_ids.extend(item.item_id for item in items)
        return items

    def recording(ledger, outcomes, *args):
        events.append(("record", len(outcomes)))
        return record_batch(ledger, outcomes, *args)

    monkeypatch.setattr(Ledger, "claim_pending", claiming)
    monkeypatch.setattr(intake, "_record_batch", recording)
    collect(FilesSource("files", LEAD_SAMPLES), store)  # 54 items: 11 batches of 5
    stats = process_pending(load_settings(store=store), batch_size=5, workers=2)
    assert stats["processed_items"] == 54 and stats["new_leads"] == 48
    assert len(claimed_ids) == len(set(claimed_ids)) == 54  # none claimed twice
    half = intake.PROCESS_WINDOW // 2
    assert events[:half + 2] == [("claim", 30, 0), *[("record", 5)] * half,
                                 ("claim", 15, 15)]
    claims = [index for index, event in enumerate(events) if event[0] == "claim"]
    for index in claims[1:-1]:  # each later claim comes with half a window still in hand
        assert events[index][2] == 5 * half


def _refused_by_the_code(rows, refused_id):
    if any(row["lead_id"] == refused_id for row in rows.leads):
        raise ValueError("a value the store cannot hold")


def _refused_by_its_column(rows, refused_id):
    """A value the column's type cannot bind: SQLAlchemy's StatementError,
    not the driver's DBAPIError."""
    for row in rows.leads:
        if row["lead_id"] == refused_id:
            row["received_at"] = "a value the store cannot hold"


@pytest.mark.parametrize("refusal, reason", [
    (_refused_by_the_code, "ValueError: a value the store cannot hold"),
    (_refused_by_its_column, "StatementError: Invalid isoformat string")], ids=["code", "column"])
def test_a_lead_the_store_refuses_is_quarantined_and_its_batch_goes_on(
        store, clean_run, monkeypatch, refusal, reason):
    refused_id = clean_run["leads"][0][0]
    original = Ledger.save_leads

    def refusing_save_leads(self, tx, rows):
        refusal(rows, refused_id)
        return original(self, tx, rows)

    monkeypatch.setattr(Ledger, "save_leads", refusing_save_leads)
    stats = process_pending(_collected(store))
    assert (stats["new_leads"], stats["quarantined"]) == (47, 2)
    leads = snapshot(store)["leads"]
    assert [lead[0] for lead in leads] == [lead[0] for lead in clean_run["leads"][1:]]
    refused = [item for item in snapshot(store)["items"]
               if item[2].startswith("the store cannot keep it")]
    assert [state for _, state, _, _ in refused] == ["quarantined"]
    assert refused[0][2].startswith(f"the store cannot keep it ({reason}")


def _collected(store: str | Path):
    collect(FilesSource("files", LEAD_SAMPLES), store)
    return load_settings(store=str(store))


# Processing stops for good after two batches of 4, so the kill lands in the
# middle however slowly the machine runs.
KILLABLE = textwrap.dedent(
    """
    import sys, threading
    from pathlib import Path
    import flows.intake as intake
    original = intake._record_batch
    batches = []

    def batch_then_hang_after_two(*args, **kwargs):
        original(*args, **kwargs)
        batches.append(1)
        if len(batches) == 2:
            threading.Event().wait()

    intake._record_batch = batch_then_hang_after_two
    from connectors.files import FilesSource
    from leadhub.cli import lead_samples
    from leadhub.settings import load_settings
    store = sys.argv[1]
    intake.collect(FilesSource("files", lead_samples()), store)
    intake.process_pending(load_settings(store=str(store)), batch_size=4)
    """
)


@pytest.mark.slow
def test_process_killed_mid_run_then_run_again_loses_and_doubles_nothing(store, clean_run):
    child = subprocess.Popen(
        [sys.executable, "-c", KILLABLE, store],
        env={**os.environ, "PYTHONPATH": str(SAMPLES.parent)},
    )
    deadline = time.monotonic() + 300
    processed = 0
    while time.monotonic() < deadline and child.poll() is None:
        processed = _processed(store)
        if processed >= 8:
            break
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert 8 <= processed < 54, "the kill should land in the middle of processing"
    _steps(store)
    assert snapshot(store) == clean_run


def _processed(store: str) -> int:
    """Items processed so far, 0 while the store is still being created."""
    from sqlalchemy.exc import DBAPIError

    try:
        return query(store, "SELECT COUNT(*) FROM raw_items WHERE state != 'new'")[0][0]
    except DBAPIError:
        return 0


def test_replay_after_config_fix_turns_quarantine_into_a_lead(store, tmp_path):
    (tmp_path / "crm.csv").write_text("Клиент;Мобильник\nИван;8 912 345-67-89\n", encoding="utf-8")
    settings = load_settings(store=str(store))
    collect(FilesSource("files", [tmp_path / "crm.csv"]), store)
    assert process_pending(settings)["quarantined"] == 1

    config = tmp_path / "leadhub.yaml"
    config.write_text("field_aliases:\n  phone: [Мобильник]\n", encoding="utf-8")
    fixed = load_settings(config, store=str(store))
    ledger = Ledger(store)
    assert ledger.requeue() == 1
    ledger.close()
    stats = process_pending(fixed)
    assert (stats["new_leads"], stats.get("quarantined", 0)) == (1, 0)
    assert snapshot(store)["leads"][0][7] == "+79123456789"  # its phone, read from the column


def _hostile_folder(folder: Path) -> dict[str, str]:
    """Files that each stopped an ingest or failed their batch, beside good ones:
    name -> what a person sees for it afterwards (a lead's phone, or the reason)."""
    mail = "From: Иван <ivan@mail.ru>\nSubject: Заявка\n{headers}\n\nЗвоните: 8 912 345-67-89\n"
    files = {
        "empty.csv": (b"", "quarantined: empty.csv: the file is empty"),
        "blank.csv": (b"\n\n", "quarantined: blank.csv: the file is empty"),
        "phones.csv": (b"89161112233\n", "lead: +79161112233"),
        "names.csv": ("ФИО\nИван\n".encode(), "quarantined: names.csv: only one column"),
        "big-cell.csv": (b'a,b\n1,"' + b"x" * 140_000, "quarantined: big-cell.csv: line 2"),
        "noise.csv": (random.Random(5).randbytes(10_000), "quarantined: noise.csv: not a CSV"),
        "mobila.csv": ("Клиент;Мобила\nОльга;89031234567\n".encode(),
                       "quarantined: no phone or email to reach the person (columns LeadHub "
                       "did not recognise: 'Мобила'"),
        "date.csv": ("Телефон,Дата\n89162223344,9999-12-31T23:59:59-12:00\n".encode(),
                     "lead: +79162223344"),
        "deep.json": (b"[" * 1000 + b"]" * 1000, "quarantined: JSON nested too deep"),
        "number.json": (b'{"phone": ' + b"9" * 5000 + b"}", "quarantined: a number in the JSON"),
        "half-emoji.jsonl": (b'{"name": "\\ud83d", "phone": "89163334455"}\n',
                             "lead: +79163334455"),
        "saved.mbox": (mail.format(headers="X-A: 1").encode(), "lead: +79123456789"),
        "date.eml": (mail.format(headers="Date: Fri, 31 Dec 9999 23:59:59 -1200").encode(),
                     "lead: +79123456789"),
        "parens.eml": (mail.replace("Иван <ivan@mail.ru>", "(" * 1000 + "ivan@mail.ru" + ")" * 1000)
                       .format(headers="X-A: 1").encode(), "lead: +79123456789"),
        "charset.eml": (mail.format(headers='Content-Type: text/plain; charset="utf\x00-8"')
                        .encode(), "lead: +79123456789"),
    }
    for name, (content, _) in files.items():
        (folder / name).write_bytes(content)
    (folder / "notes.txt").write_text("not read")
    return {name: outcome for name, (_, outcome) in files.items()}


def test_a_folder_of_hostile_files_is_read_to_the_end_and_each_is_its_own_unit(store, tmp_path):
    folder = tmp_path / "imports"
    folder.mkdir()
    expected = _hostile_folder(folder)
    settings = load_settings(store=str(store))
    source = FilesSource("files", [folder])
    stats = collect(source, store)
    assert stats["read"] == len(expected) and source.summary()["ignored"] == [
        str(folder / "notes.txt")]
    process_pending(settings)
    rows = query(store, "SELECT r.meta, r.state, r.reason, l.phone FROM raw_items r"
                        " LEFT JOIN leads l ON l.raw_item_id = r.item_id")
    seen = {json.loads(meta)["path"].rsplit("/", 1)[1]: (
        f"lead: {phone}" if state == "processed" else f"{state}: {reason}")
        for meta, state, reason, phone in rows}
    assert seen.keys() == expected.keys()
    for name, outcome in expected.items():
        assert seen[name].startswith(outcome), (name, seen[name])
    assert collect(FilesSource("files", [folder]), store)["read"] == 0  # all checkpointed


MAIL = """From: =?utf-8?b?0JjQstCw0L0=?= <ivan@mail.ru>
To: sales@example.ru
Subject: Заявка
Message-ID: <reused@mail.ru>
Date: Mon, 02 Nov 2026 10:00:00 +0300
Content-Type: text/plain; charset=utf-8

{body}
"""


def test_a_second_mail_reusing_a_message_id_is_a_lead_of_its_own(store, tmp_path):
    mails = {"first.eml": "Нужен диван, перезвоните 8 912 345-67-89",
             "copy.eml": "Нужен диван, перезвоните 8 912 345-67-89",
             "other.eml": "Нужен стол, звоните 8 912 345-67-89",
             "cut.eml": "Нужен стол"}
    for name, body in mails.items():
        (tmp_path / name).write_text(MAIL.format(body=body), encoding="utf-8")
    collect(FilesSource("files", [tmp_path / name for name in mails]), store)
    stats = process_pending(load_settings(store=str(store)))
    assert (stats["new_leads"], stats["duplicate_items"]) == (3, 1)
    messages = sorted(row[0] for row in query(store, "SELECT message FROM leads"))
    assert messages == sorted({body for body in mails.values()})


def test_reading_and_processing_report_a_rising_count_of_a_known_total(store, tmp_path):
    leads = tmp_path / "leads.csv"
    leads.write_text("Имя,Телефон\n" + "".join(f"Иван {n},+7913{n:07d}\n" for n in range(2500)),
                     encoding="utf-8")
    heard: list[tuple[str, int, int | None]] = []
    stop = listen(lambda stage, done, total: heard.append((stage, done, total)))
    try:
        collect(FilesSource("files", [leads]), store)
        process_pending(load_settings(store=store), batch_size=1000, workers=1)
    finally:
        stop()
    assert [(done, total) for stage, done, total in heard if stage == "read"] == [
        (1000, 2500), (2000, 2500), (2500, 2500)]
    assert [(done, total) for stage, done, total in heard if stage == "process"] == [
        (1000, 2500), (2000, 2500), (2500, 2500)]


def _owner_changed_after_batch(store, batch: int, owner: str):
    """A `report` that, once batch `batch` is done, sets the owner of every
    contact in the store as a person would in the CRM (another writer)."""
    def report(stage: str, done: int, total: int | None = None) -> None:
        if stage == "process" and done == batch:
            other = Ledger(store)
            try:
                keys = [key for (key,) in query(store, "SELECT contact_key FROM contacts")]
                other.save_people_values("sheets", "contacts",
                                         {key: {"owner": owner} for key in keys})
            finally:
                other.close()
    return report


@pytest.mark.parametrize("changed", [False, True], ids=["nobody-else", "a-person-meanwhile"])
def test_contacts_a_run_wrote_are_not_read_again_unless_someone_else_changed_them(
        store, tmp_path, monkeypatch, changed):
    # one row a batch: Ivan's contact, then a namesake who meets it in its
    # block but stays apart (Ivan is matched against, left unchanged), then
    # Ivan again: the run wrote his contact and has it, until a person changes
    # contacts in between
    leads = tmp_path / "leads.csv"
    leads.write_text("Имя,Телефон,Дата\nИван Петров,+79131234567,2026-05-01\n"
                     "Иван Петров,+79167654321,2026-05-02\nИван Петров,+79131234567,2026-05-03\n",
                     encoding="utf-8")
    read: list[list[str]] = []
    real_members = Ledger._members
    monkeypatch.setattr(Ledger, "_members", lambda self, tx, keys: (
        read.append(list(keys)), real_members(self, tx, keys))[1])
    if changed:
        monkeypatch.setattr("flows.intake.report", _owner_changed_after_batch(store, 2, "Ольга"))
    collect(FilesSource("files", [leads]), store)
    process_pending(load_settings(store=store), batch_size=1, workers=1)
    [ivan] = query(store, "SELECT contact_key FROM contacts WHERE phone = '+79131234567'")
    assert sum(keys.count(ivan[0]) for keys in read) == (1 if changed else 0)
    if changed:
        assert query(store, "SELECT DISTINCT owner FROM contacts") == [("Ольга",)]


def test_a_batch_finds_its_rows_by_their_keys_not_by_walking_the_pending_items(
        tmp_path, monkeypatch):
    """Every statement a processing batch runs, as SQLite plans it: none
    scans a table or walks an index of a state most rows share (a batch's
    check that its items are still its own walked the pending items' state
    index: for a million-row file, every item still pending for each batch of
    2,500; reading a batch's contacts walked every live contact by the
    merged_into index once it asked for 50 or more)."""
    store = str(tmp_path / "leadhub.db")
    first, again = tmp_path / "leads.csv", tmp_path / "again.csv"
    for path, day in ((first, 1), (again, 2)):
        path.write_text("Имя,Телефон,Email,Дата\n" + "".join(
            f"Клиент {row},+7913{row:07d},c{row % 40}@mail.ru,2026-05-{day + row % 27:02d}\n"
            for row in range(60)), encoding="utf-8")
    collect(FilesSource("files", [first]), store)
    plans: dict[str, list[str]] = {}
    recording = []

    def plan(connection, cursor, statement, parameters, context, executemany):
        if recording and not statement.lstrip().upper().startswith(("SAVEPOINT", "RELEASE")):
            given = parameters[0] if executemany else parameters
            plans[statement] = [row[3] for row in connection.connection.driver_connection
                                .execute("EXPLAIN QUERY PLAN " + statement, given)]

    real_record = intake._record

    def recorded(*args, **kwargs):
        recording.append(True)
        try:
            return real_record(*args, **kwargs)
        finally:
            recording.pop()

    monkeypatch.setattr(intake, "_record", recorded)
    event.listen(Engine, "before_cursor_execute", plan)
    try:
        process_pending(load_settings(store=store), batch_size=20, workers=1)
        # the same people again, in one batch of a new run: its contacts are
        # all read from the store at once (none kept from an earlier batch)
        collect(FilesSource("files", [again]), store)
        process_pending(load_settings(store=store), batch_size=100, workers=1)
    finally:
        event.remove(Engine, "before_cursor_execute", plan)
    assert query(store, "SELECT count(*) FROM raw_items WHERE state = 'new'") == [(0,)]
    assert query(store, "SELECT count(*) FROM leads") == [(120,)]
    assert len(plans) > 10  # the batch's reads and writes were seen
    walks = {statement: steps for statement, steps in plans.items()
             if any(step.startswith("SCAN") or "raw_items_state" in step
                    or "contacts_merged_into" in step for step in steps)}
    assert walks == {}


def test_a_batch_written_together_opens_no_savepoint(tmp_path, monkeypatch):
    """A refusal ends the batch's whole transaction (the batch is then done
    again row by row), so its rows are written in no savepoint of their own:
    in one, SQLite keeps the old image of every page the batch changes in a
    temp file (38 MiB a batch of 2,500 into a store of 571,000 leads)."""
    store = str(tmp_path / "leadhub.db")
    leads = tmp_path / "leads.csv"
    leads.write_text("Имя,Телефон,Email,Дата\n" + "".join(
        f"Клиент {row},+7913{row:07d},c{row}@mail.ru,2026-05-{1 + row % 27:02d}\n"
        for row in range(30)), encoding="utf-8")
    collect(FilesSource("files", [leads]), store)
    statements = []

    def seen(connection, cursor, statement, parameters, context, executemany):
        statements.append(statement.lstrip().split(None, 1)[0].upper())

    event.listen(Engine, "before_cursor_execute", seen)
    try:
        stats = process_pending(load_settings(store=store), batch_size=10, workers=1)
    finally:
        event.remove(Engine, "before_cursor_execute", seen)
    assert stats["new_leads"] == 30
    assert "INSERT" in statements and "SAVEPOINT" not in statements
