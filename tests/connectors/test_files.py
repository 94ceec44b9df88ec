import json
import mailbox
import random
import tracemalloc
from email.message import EmailMessage
from pathlib import Path

import pytest

from connectors import files
from connectors.files import FilesSource, refused_inputs
from leadhub.cli import lead_samples
from leadhub.errors import FatalError

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


def _mail(subject: str) -> bytes:
    message = EmailMessage()
    message["From"] = "ivan@mail.ru"
    message["Subject"] = subject
    message.set_content("Позвоните: 8 912 345-67-89")
    return bytes(message)


def _items(source: FilesSource, checkpoints: dict | None = None):
    known = checkpoints or {}
    return [item for batch in source.batches(lambda s, scope: known.get(scope))
            for item in batch.items]


def test_eml_file_is_one_email_item(tmp_path):
    (tmp_path / "a.eml").write_bytes(_mail("hi"))
    [item] = _items(FilesSource("files", [tmp_path / "a.eml"]))
    assert item.kind == "email"
    assert item.item_id.startswith("file:") and item.item_id.endswith(":0")
    assert item.payload == _mail("hi")


def test_mbox_gives_one_item_per_message(tmp_path):
    box = mailbox.mbox(tmp_path / "export.mbox")
    for subject in ("one", "two", "three"):
        box.add(_mail(subject))
    box.close()
    items = _items(FilesSource("files", [tmp_path / "export.mbox"]))
    assert [item.item_id.rsplit(":", 1)[1] for item in items] == ["0", "1", "2"]
    assert all(b"Subject:" in item.payload for item in items)


def test_maildir_reads_new_and_cur(tmp_path):
    box = mailbox.Maildir(tmp_path / "Mail", create=True)
    box.add(_mail("new one"))
    read = mailbox.MaildirMessage(_mail("read one"))
    read.set_subdir("cur")
    read.add_flag("S")
    box.add(read)
    items = _items(FilesSource("files", [tmp_path]))
    assert len(items) == 2


def test_csv_rows_become_row_items_with_their_header(tmp_path):
    (tmp_path / "crm.csv").write_bytes("ФИО;Телефон\nИван;89123456789\nОльга;\n".encode("cp1251"))
    items = _items(FilesSource("files", [tmp_path / "crm.csv"]))
    assert [json.loads(item.payload) for item in items] == [
        {"ФИО": "Иван", "Телефон": "89123456789"}, {"ФИО": "Ольга", "Телефон": ""}]
    assert items[0].meta["encoding"] == "cp1251" and items[0].meta["delimiter"] == ";"
    assert items[0].item_id.endswith(":2")  # row 1 is the header


def test_jsonl_keeps_a_broken_line_as_an_item(tmp_path):
    (tmp_path / "posts.jsonl").write_text('{"phone": "1"}\n{broken\n')
    items = _items(FilesSource("files", [tmp_path / "posts.jsonl"]))
    assert [item.payload for item in items] == [b'{"phone": "1"}', b"{broken"]
    assert items[0].meta["form"] == "posts"


def test_json_array_is_one_item_per_object(tmp_path):
    (tmp_path / "export.json").write_text(json.dumps([{"a": 1}, {"b": 2}]))
    items = _items(FilesSource("files", [tmp_path / "export.json"], default_form="typeform"))
    assert len(items) == 2 and items[0].meta["form"] == "typeform"


def test_unchanged_file_is_not_read_again(tmp_path):
    (tmp_path / "a.eml").write_bytes(_mail("hi"))
    source = FilesSource("files", [tmp_path])
    [batch] = list(source.batches(lambda s, scope: None))
    assert list(source.batches(lambda s, scope: batch.checkpoint[2])) == []


def test_folder_walk_ignores_other_files_and_names_them(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "leads.xlsx").write_bytes(b"PK")
    (tmp_path / "a.eml").write_bytes(_mail("hi"))
    source = FilesSource("files", [tmp_path])
    assert len(_items(source)) == 1
    assert source.ignored == [tmp_path / "leads.xlsx", tmp_path / "notes.txt"]
    assert source.summary() == {"ignored_files": 2, "ignored": [
        str(tmp_path / "leads.xlsx"), str(tmp_path / "notes.txt")]}
    _items(source)  # a second pass counts them once, not twice
    assert source.summary()["ignored_files"] == 2


def test_unsupported_or_missing_inputs_are_refused_before_any_work(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "a.csv").write_text("a,b\n")
    problems = refused_inputs([tmp_path / "notes.txt", tmp_path / "a.csv", tmp_path,
                               tmp_path / "gone.eml"])
    assert problems == [
        f"{tmp_path / 'notes.txt'}: cannot read .txt files; use .eml, .mbox, .csv, .tsv, "
        ".json, .jsonl or a maildir/folder",
        f"{tmp_path / 'gone.eml'}: no such file or folder",
    ]


RANDOM_BYTES = random.Random(3).randbytes(30_000)


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        pytest.param("empty.csv", b"", "empty.csv: the file is empty", id="empty-csv"),
        pytest.param("blank.csv", b"\n\n  \r\n", "blank.csv: the file is empty",
                     id="csv-of-blank-lines"),
        pytest.param("names.csv", "ФИО\nИван\nОльга\n".encode(),
                     "names.csv: only one column ('ФИО') found, and it holds no phones or emails",
                     id="one-column-of-names"),
        pytest.param("big.csv", b'name,phone\nIvan,"8912\n' + b"x" * 140_000,
                     "big.csv: line 2: a cell is longer than 131072 characters",
                     id="cell-over-128-kib"),
        pytest.param("noise.csv", RANDOM_BYTES, "noise.csv: not a CSV: the file holds binary data",
                     id="random-bytes-csv"),
        pytest.param("noise.jsonl", RANDOM_BYTES, "noise.jsonl: not JSON: the file holds binary",
                     id="random-bytes-jsonl"),
        pytest.param("empty.jsonl", b"\n", "empty.jsonl: the file is empty", id="empty-jsonl"),
        pytest.param("empty.mbox", b"", "empty.mbox: the file is empty", id="empty-mbox"),
        pytest.param("notes.mbox", b"just some notes\n", "notes.mbox: not an mbox file",
                     id="mbox-that-is-no-mail"),
    ],
)
def test_a_file_that_cannot_be_read_is_one_item_with_the_reason(tmp_path, name, content,
                                                                 reason):
    (tmp_path / name).write_bytes(content)
    [item] = _items(FilesSource("files", [tmp_path / name]))
    assert item.meta["unreadable"].startswith(reason), item.meta["unreadable"]
    assert item.item_id.endswith(":file") and item.payload == content


def test_an_eml_saved_as_mbox_is_read_as_one_message(tmp_path):
    (tmp_path / "saved.mbox").write_bytes(_mail("hi"))
    [item] = _items(FilesSource("files", [tmp_path / "saved.mbox"]))
    assert (item.kind, item.payload) == ("email", _mail("hi"))
    assert "unreadable" not in item.meta


def test_a_one_column_list_of_phones_is_one_row_per_phone(tmp_path):
    (tmp_path / "phones.csv").write_text("89123456789\n+7 916 123-45-67\n")
    items = _items(FilesSource("files", [tmp_path / "phones.csv"]))
    assert [json.loads(item.payload) for item in items] == [
        {"phone": "89123456789"}, {"phone": "+7 916 123-45-67"}]
    assert [item.meta["row"] for item in items] == ["1", "2"]


def test_a_bad_file_does_not_stop_the_files_after_it(tmp_path):
    (tmp_path / "a-empty.csv").write_bytes(b"")
    (tmp_path / "b-deep.json").write_bytes(b"[" * 5000 + b"]" * 5000)
    (tmp_path / "c-huge-number.json").write_bytes(b'{"phone": ' + b"9" * 5000 + b"}")
    (tmp_path / "d-surrogate.json").write_bytes(b'[{"name": "\\ud800", "phone": "89123456789"}]')
    (tmp_path / "e-good.eml").write_bytes(_mail("hi"))
    items = _items(FilesSource("files", [tmp_path]))
    assert [item.meta["path"].rsplit("/", 1)[1] for item in items] == [
        "a-empty.csv", "b-deep.json", "c-huge-number.json", "d-surrogate.json", "e-good.eml"]
    assert json.loads(items[3].payload) == {"name": "\ud800", "phone": "89123456789"}


def test_a_bad_file_is_checkpointed_and_read_again_once_changed(tmp_path):
    path = tmp_path / "leads.csv"
    path.write_bytes(b"")
    source = FilesSource("files", [path])
    [batch] = list(source.batches(lambda s, scope: None))
    assert batch.items[0].meta["unreadable"]
    assert list(source.batches(lambda s, scope: batch.checkpoint[2])) == []
    path.write_text("ФИО,Телефон\nИван,89123456789\n")
    [again] = list(source.batches(lambda s, scope: batch.checkpoint[2]))
    assert [json.loads(item.payload) for item in again.items] == [
        {"ФИО": "Иван", "Телефон": "89123456789"}]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        pytest.param("missing.eml", "no such file or folder", id="missing-path"),
        pytest.param("leads.xlsx", "cannot read .xlsx files", id="unsupported-type"),
    ],
)
def test_unreadable_inputs_are_fatal_and_say_why(tmp_path, name, message):
    if name.endswith(".xlsx"):
        (tmp_path / name).write_bytes(b"PK")
    with pytest.raises(FatalError, match=message):
        _items(FilesSource("files", [tmp_path / name]))


def test_bundled_samples_are_all_read():
    items = _items(FilesSource("files", lead_samples()))
    assert len(items) == 54
    assert {item.kind for item in items} == {"email", "form", "row"}


def test_a_big_lead_list_is_read_in_a_window_not_whole(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "READ_BYTES", 64 * 1024)
    path = tmp_path / "big.csv"
    row = "Иван Петров;8 912 345-67-89;" + "долгий комментарий " * 20 + "\n"
    path.write_text("ФИО;Телефон;Комментарий\n" + row * 20_000, encoding="utf-8")
    size = path.stat().st_size
    tracemalloc.start()
    try:
        [batch] = FilesSource("files", [path]).batches(lambda s, scope: None)
        rows = sum(1 for _ in batch.items)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (len(batch.items), rows) == (20_000, 20_000)
    assert size > 10_000_000 and peak < size / 5, (size, peak)


def test_a_lead_list_that_is_utf8_only_at_its_start_is_read_as_cp1251(tmp_path):
    path = tmp_path / "late.csv"
    filler = "Ivan,89123456789\n" * 5000  # past the sample the encoding is told from
    path.write_bytes(b"Name,Phone\n" + filler.encode() + "Пётр,89031234567\n".encode("cp1251"))
    items = _items(FilesSource("files", [path]))
    assert json.loads(items[-1].payload) == {"Name": "Пётр", "Phone": "89031234567"}
    assert items[-1].meta["encoding"] == "cp1251" and items[-1].meta["row"] == "5002"


def test_a_bad_byte_far_into_a_declared_encoding_is_named_by_its_place(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "READ_BYTES", 1000)
    path = tmp_path / "leads.csv"
    start = b"Name,Phone\n" + b"Ivan,89123456789\n" * 300
    path.write_bytes(start + b"\xff,1\n")
    [item] = _items(FilesSource("files", [path], csv_encoding="utf-8"))
    assert item.meta["unreadable"].startswith(f"leads.csv: not utf-8 text (byte {len(start)}:")
    assert item.payload == path.read_bytes()


def _peak_while_read(path: Path) -> tuple[int, int, int]:
    """Items the file's batch says it has, items it gives, and the most memory
    Python held meanwhile."""
    tracemalloc.start()
    try:
        [batch] = FilesSource("files", [path]).batches(lambda s, scope: None)
        count = len(batch.items)
        given = sum(1 for _ in batch.items)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return count, given, peak


def test_a_big_form_log_is_read_a_line_at_a_time_not_whole(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "READ_BYTES", 64 * 1024)  # the window, as a file of GBs sees it
    path = tmp_path / "posts.jsonl"
    post = json.dumps({"name": "Иван Петров", "phone": "8 912 345-67-89",
                       "comment": "долгий комментарий " * 20}, ensure_ascii=False)
    # blank lines are skipped and not counted; \r\n and a lone \r end lines too
    path.write_bytes(((post + "\n\n" + post + "\r\n" + post + "\r") * 10_000).encode())
    size = path.stat().st_size
    count, given, peak = _peak_while_read(path)
    assert (count, given) == (30_000, 30_000)
    assert size > 10_000_000 and peak < size / 5, (size, peak)
    [batch] = FilesSource("files", [path]).batches(lambda s, scope: None)
    items = list(batch.items)
    assert [item.meta["row"] for item in items[:4]] == ["1", "2", "3", "4"]
    assert {item.payload for item in items} == {post.encode()}


def test_a_big_mail_archive_is_read_a_message_at_a_time_not_whole(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "READ_BYTES", 64 * 1024)  # the window, as a file of GBs sees it
    box = mailbox.mbox(tmp_path / "archive.mbox")
    for number in range(2_000):
        box.add(_mail(f"письмо {number} " + "x" * 6_000))
    box.close()
    size = (tmp_path / "archive.mbox").stat().st_size
    count, given, peak = _peak_while_read(tmp_path / "archive.mbox")
    assert (count, given) == (2_000, 2_000)
    assert size > 10_000_000 and peak < size / 5, (size, peak)


def test_a_big_json_export_is_read_an_element_at_a_time_not_whole(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "READ_BYTES", 64 * 1024)  # the window, as a file of GBs sees it
    path = tmp_path / "export.json"
    post = {"name": "Иван Петров", "phone": "8 912 345-67-89",
            "comment": "долгий комментарий " * 20, "score": -2.5e-07}
    path.write_text(json.dumps([post] * 25_000, ensure_ascii=False, indent=1),
                    encoding="utf-8")
    size = path.stat().st_size
    count, given, peak = _peak_while_read(path)
    assert (count, given) == (25_000, 25_000)
    assert size > 10_000_000 and peak < size / 5, (size, peak)
    [batch] = FilesSource("files", [path]).batches(lambda s, scope: None)
    first = next(iter(batch.items))
    assert (first.meta["row"], json.loads(first.payload)) == ("1", post)
