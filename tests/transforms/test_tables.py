import pytest

from transforms.tables import TableError, read_table

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
