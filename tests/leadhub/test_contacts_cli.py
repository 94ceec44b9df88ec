"""Seeing who is who and correcting it from the command line: possible
duplicates, merge, keep apart, split (undo), show, and a rescan of the book."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from connectors.files import FilesSource
from connectors.ledger import Ledger
from flows.intake import collect, process_pending
from leadhub import contacts_cli
from leadhub.cli import app
from leadhub.settings import load_settings
from tests.connectors.test_ledger import _old_store
from tests.store import query
from transforms.dedupe import new_contact_key

runner = CliRunner()


@pytest.fixture(autouse=True)
def wide_console(monkeypatch):
    monkeypatch.setattr(contacts_cli.console, "width", 250)


def _ingest(store, tmp_path, *posts: dict) -> None:
    path = tmp_path / f"posts-{len(list(tmp_path.glob('posts-*')))}.jsonl"
    path.write_text("\n".join(json.dumps(post, ensure_ascii=False) for post in posts) + "\n",
                    encoding="utf-8")
    collect(FilesSource("files", [path]), store)
    process_pending(load_settings(store=str(store)))


def _contact_of_lead(store) -> dict[str, str]:
    return dict(query(store, "SELECT message, contact_key FROM leads"))


PHONE_ONLY = {"Имя": "Пётр Сидоров", "Телефон": "8 912 345-67-89", "Компания": "ООО «Вектор»",
              "Сообщение": "первая", "Дата": "2026-11-02T10:00:00+03:00"}
EMAIL_ONLY = {"Имя": "Сидоров Пётр", "Email": "p.sidorov@vector.ru", "Компания": "Вектор",
              "Сообщение": "вторая", "Дата": "2026-11-03T10:00:00+03:00"}


def test_a_likely_pair_is_listed_then_merged_and_shown_then_split_back(store, tmp_path):
    _ingest(store, tmp_path, PHONE_ONLY, EMAIL_ONLY)
    owners = _contact_of_lead(store)
    first, second = owners["первая"], owners["вторая"]
    assert first != second

    listed = runner.invoke(app, ["contacts", "duplicates", "--db", store])
    assert first in listed.stdout and second in listed.stdout and "company" in listed.stdout

    merged = runner.invoke(app, ["contacts", "merge", first, second, "--db", store])
    assert merged.exit_code == 0, merged.stderr
    assert set(_contact_of_lead(store).values()) == {first}
    shown = runner.invoke(app, ["contacts", "show", second, "--db", store])
    assert f"{second} was merged into {first}" in shown.stdout
    assert "a person's decision" in shown.stdout and "вторая" not in shown.stdout
    assert "p.sidorov@vector.ru" in shown.stdout

    split = runner.invoke(app, ["contacts", "split", second, "--db", store])
    assert split.exit_code == 0, split.stderr
    assert _contact_of_lead(store) == owners
    emails = dict(query(store, "SELECT contact_key, email FROM contacts"))
    assert (emails[first], emails[second]) == ("", "p.sidorov@vector.ru")
    assert query(store, "SELECT state FROM duplicate_pairs") == [("different",)]


def test_a_pair_kept_apart_is_not_merged_by_a_later_lead_or_a_rescan(store, tmp_path):
    _ingest(store, tmp_path, PHONE_ONLY, EMAIL_ONLY)
    owners = _contact_of_lead(store)
    kept = runner.invoke(app, ["contacts", "keep-apart", owners["первая"], owners["вторая"],
                               "--db", store])
    assert kept.exit_code == 0, kept.stderr
    both = {**PHONE_ONLY, "Email": "p.sidorov@vector.ru", "Сообщение": "третья",
            "Дата": "2026-11-04T10:00:00+03:00"}
    _ingest(store, tmp_path, both)
    rescan = runner.invoke(app, ["dedupe", "--rescan", "--db", store])
    assert rescan.exit_code == 0, rescan.stderr
    assert query(store, "SELECT COUNT(*) FROM contacts WHERE merged_into IS NULL") == [(2,)]


def test_leads_taken_out_of_a_contact_get_one_of_their_own(store, tmp_path):
    wife = {"Имя": "Пётр Сидоров", "Телефон": "8 912 345-67-89", "Сообщение": "жена",
            "Дата": "2026-11-05T10:00:00+03:00"}
    _ingest(store, tmp_path, PHONE_ONLY, wife)
    owner = _contact_of_lead(store)["жена"]
    [(lead_id,)] = query(store, "SELECT lead_id FROM leads WHERE message = 'жена'")
    result = runner.invoke(app, ["contacts", "split", owner, "--lead", lead_id, "--db", store])
    assert result.exit_code == 0, result.stderr
    owners = _contact_of_lead(store)
    assert owners["первая"] == owner and owners["жена"] == new_contact_key(lead_id)
    counts = dict(query(store, "SELECT contact_key, leads_count FROM contacts"))
    assert counts == {owner: 1, new_contact_key(lead_id): 1}


@pytest.mark.parametrize("args", [["show", "C-NOSUCHTHING"], ["merge", "C-A", "C-B"],
                                  ["split", "C-NOSUCHTHING"]],
                         ids=["show", "merge", "split"])
def test_an_unknown_contact_is_one_clear_error(store, tmp_path, args):
    _ingest(store, tmp_path, PHONE_ONLY)
    result = runner.invoke(app, ["contacts", *args, "--db", store])
    assert result.exit_code == 2 and "no contact" in result.stderr


def test_a_rescan_of_an_old_store_shows_then_makes_the_merges_of_the_new_rules(tmp_path):
    store = tmp_path / "old.db"
    _old_store(store)
    import sqlite3

    db = sqlite3.connect(store)
    for key, moment in (("nesterova.y@gmail.com", "2026-01-01T10:00:00+00:00"),
                        ("nesterovay@gmail.com", "2026-02-01T10:00:00+00:00")):
        db.execute("INSERT INTO contacts (contact_key, name, email, first_seen, last_seen,"
                   " leads_count, updated_at) VALUES (?, 'Юлия Нестерова', ?, ?, ?, 1, ?)",
                   (key, key, moment, moment, moment))
        db.execute("INSERT INTO contact_identities VALUES ('email', ?, ?)", (key, key))
    db.commit()
    db.close()
    Ledger(store).close()

    dry = runner.invoke(app, ["dedupe", "--rescan", "--dry-run", "--db", str(store)])
    assert dry.exit_code == 0, dry.stderr
    assert "1 merge(s) to make" in dry.stdout
    assert query(store, "SELECT COUNT(*) FROM contacts WHERE merged_into IS NULL") == [(2,)]

    done = runner.invoke(app, ["dedupe", "--rescan", "--db", str(store)])
    assert "1 merge(s)" in done.stdout
    assert query(store, "SELECT contact_key FROM contacts WHERE merged_into IS NULL") == [
        ("nesterova.y@gmail.com",)]
