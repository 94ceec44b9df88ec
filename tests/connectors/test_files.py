import json
import mailbox
from email.message import EmailMessage
from pathlib import Path

import pytest

from connectors.files import FilesSource
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


def test_folder_walk_ignores_other_files_and_counts_them(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "a.eml").write_bytes(_mail("hi"))
    source = FilesSource("files", [tmp_path])
    assert len(_items(source)) == 1
    assert source.ignored == [tmp_path / "notes.txt"]


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
