import random
import re

import pytest

from transforms.tables import (
    MAX_CELL_CHARS,
    Table,
    TableError,
    read_lead_table,
    read_table,
    stream_lead_table,
)

HEADER = ["ФИО", "Телефон", "Компания"]
ROW = ["Иван Петров", "8 912 345-67-89", 'ООО "Ромашка"']


def _csv(delimiter: str) -> str:
    quoted = [f'"{c}"' if '"' in c or delimiter in c else c for c in ROW]
    quoted[2] = '"ООО ""Ромашка"""'
    return delimiter.join(HEADER) + "\r\n" + delimiter.join(quoted) + "\r\n"


@pytest.mark.parametrize(
    ("encoding", "delimiter", "bom"),
    [
        pytest.param("utf-8", ",", False, id="utf8-comma"),
        pytest.param("utf-8", ";", True, id="utf8-bom-semicolon-excel"),
        pytest.param("cp1251", ";", False, id="cp1251-semicolon-excel-ru"),
        pytest.param("utf-8", "\t", False, id="utf8-tab"),
        pytest.param("cp1251", ",", False, id="cp1251-comma"),
    ],
)
def test_encoding_and_delimiter_are_detected(encoding, delimiter, bom):
    data = (b"\xef\xbb\xbf" if bom else b"") + _csv(delimiter).encode(encoding)
    rows, _, used_delimiter = read_table(data)
    assert used_delimiter == delimiter
    assert rows == [dict(zip(HEADER, ROW, strict=True))]


def test_short_rows_get_empty_cells_and_blank_lines_are_skipped():
    rows, _, _ = read_table(b"a,b,c\n1,2\n\n4,5,6\n")
    assert rows == [{"a": "1", "b": "2", "c": ""}, {"a": "4", "b": "5", "c": "6"}]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(b"", "empty", id="empty-file"),
        pytest.param(b"just one column\nvalue\n", "only one column", id="one-column"),
    ],
)
def test_unreadable_tables_say_what_to_fix(data, message):
    with pytest.raises(TableError, match=message):
        read_table(data)


@pytest.mark.parametrize(
    ("data", "rows", "first_row"),
    [
        pytest.param(b"89123456789\n+7 916 123-45-67\n\n8 (903) 765 43 21\n",
                     [{"phone": "89123456789"}, {"phone": "+7 916 123-45-67"},
                      {"phone": "8 (903) 765 43 21"}], 1, id="plain-list-of-phones"),
        pytest.param("Телефон\n89123456789\n89161234567\n".encode("cp1251"),
                     [{"phone": "89123456789"}, {"phone": "89161234567"}], 2,
                     id="phones-under-a-header"),
        pytest.param(b"E-mail\r\nanna@mail.ru\r\noleg@ya.ru\r\n89123456789\r\n",
                     [{"email": "anna@mail.ru"}, {"email": "oleg@ya.ru"},
                      {"phone": "89123456789"}], 2, id="emails-and-a-phone"),
    ],
)
def test_a_one_column_list_of_phones_or_emails_is_one_lead_per_line(data, rows, first_row):
    table = read_lead_table(data)
    assert (table.rows, table.first_row) == (rows, first_row)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(b"", "the file is empty", id="zero-bytes"),
        pytest.param(b"\n\r\n  \n;;\n", "the file is empty", id="only-blank-lines"),
        pytest.param("ФИО\nИван Петров\nОльга\n".encode(),
                     "only one column ('ФИО') found, and it holds no phones or emails",
                     id="one-column-of-names"),
        pytest.param(b'name,phone\nIvan,"89123456789\n' + b"x" * 140_000 + b"\n",
                     "line 2: a cell is longer than 131072 characters", id="cell-over-128-kib"),
        pytest.param(random.Random(7).randbytes(20_000), "not a CSV: the file holds binary data",
                     id="random-bytes"),
        pytest.param(b"PK\x03\x04\x14\x00\x06\x00" + bytes(200), "not a CSV", id="xlsx-renamed"),
    ],
)
def test_a_lead_list_that_cannot_be_read_says_why(data, message):
    with pytest.raises(TableError, match=re.escape(message)):
        read_lead_table(data)


def test_excel_unicode_text_is_read():
    data = "ФИО\tТелефон\r\nИван\t89123456789\r\n".encode("utf-16")
    table = read_lead_table(data)
    assert table.rows == [{"ФИО": "Иван", "Телефон": "89123456789"}]
    assert (table.encoding, table.delimiter) == ("utf-16", "\t")


STREAMED = [
    pytest.param("Имя,Телефон\nИван,8 912 345-67-89\n\n , \nОля,+7 916 111-22-33\n"
                 .encode(), id="blank-lines"),
    pytest.param("Имя;Телефон;Город\nИван;8 912 345-67-89\nОля\n".encode(), id="short-row"),
    pytest.param('Имя,Комментарий\nИван,"две\nстроки"\nОля,""\n'.encode(), id="quoted-newline"),
    pytest.param("\ufeffName,Phone\nOlga,89161112233\n".encode(), id="utf8-bom"),
    pytest.param("ФИО;Телефон\nПётр;89031234567\n".encode("cp1251"), id="cp1251"),
    pytest.param(b"Name\tPhone\tEmail\nBob\t\tbob@mail.ru\n", id="tabs"),
    pytest.param(b"89161112233\nivan@mail.ru\n", id="one-column"),
]


def _numbered_rows(table) -> list[tuple[int, dict]]:
    rows = table.rows if isinstance(table, Table) else table
    return list(enumerate(rows, start=table.first_row))


@pytest.mark.parametrize("data", STREAMED)
def test_a_streamed_table_has_the_rows_a_read_one_has(data):
    read, streamed = read_lead_table(data), stream_lead_table(data)
    assert _numbered_rows(streamed) == _numbered_rows(read)
    assert _numbered_rows(streamed) == _numbered_rows(streamed)  # it can be read again
    assert (streamed.encoding, streamed.delimiter) == (read.encoding, read.delimiter)


def test_a_broken_table_is_refused_before_any_row_is_used():
    data = 'Имя,Телефон\nИван,8 912 345-67-89\nОля,"+7 916'.encode() + b"1" * (MAX_CELL_CHARS + 1)
    with pytest.raises(TableError, match="longer than"):
        stream_lead_table(data)
