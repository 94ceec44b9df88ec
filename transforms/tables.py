"""CSV files as people export them from Excel or another CRM, as row dicts."""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass

from transforms.text import decode_text, looks_binary

_DELIMITERS = (",", ";", "\t")
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
# Python's csv module refuses a cell longer than this (its field_size_limit);
# in a lead list it is nearly always a quote left open, which swallows the rest.
MAX_CELL_CHARS = csv.field_size_limit()
# A phone as typed in a list: digits with + ( ) - . and spaces, 7 to 15 digits.
_PHONE_LIKE = re.compile(r"^\+?[\d\s().\-]{7,25}$")
_EMAIL_LIKE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class TableError(ValueError):
    """The file is not a table LeadHub can read (says what to fix)."""


@dataclass(frozen=True)
class Table:
    """A lead list's rows keyed by header, and how the file was read."""

    rows: list[dict[str, str]]
    encoding: str
    delimiter: str
    first_row: int = 2  # the file's line of rows[0]: 1 when there is no header


def read_table(
    data: bytes, delimiter: str | None = None, encoding: str | None = None
) -> tuple[list[dict[str, str]], str, str]:
    """Rows keyed by header, plus the encoding and delimiter that were used.

    UTF-8 with or without BOM and cp1251 are told apart by decoding; the
    delimiter is the one of `,` `;` tab that splits the header into the most
    columns consistently over the first lines.
    """
    lines, used_encoding, used_delimiter = _read_lines(data, delimiter, encoding)
    header = [cell.strip() for cell in lines[0]]
    if len(header) < 2:
        raise TableError(
            "only one column found: save the file as CSV with `,`, `;` or tab between columns"
        )
    return _records(header, lines[1:]), used_encoding, used_delimiter


def read_lead_table(
    data: bytes, delimiter: str | None = None, encoding: str | None = None
) -> Table:
    """A lead list: a table as `read_table` reads it, or a single column of
    phones or emails (with or without a header), one lead per line."""
    lines, used_encoding, used_delimiter = _read_lines(data, delimiter, encoding)
    header = [cell.strip() for cell in lines[0]]
    if len(header) >= 2:
        return Table(_records(header, lines[1:]), used_encoding, used_delimiter)
    return _contact_list([line[0].strip() for line in lines], used_encoding, used_delimiter)


@dataclass(frozen=True)
class RowStream:
    """A lead list read as it is used: its lines were checked once (so a file
    that is not a CSV is refused before any row is used), and its rows are
    made afresh each time they are iterated, never all held at once."""

    text: str
    header: tuple[str, ...]
    count: int
    encoding: str
    delimiter: str
    first_row: int = 2

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[dict[str, str]]:
        lines = _filled_lines(self.text, self.delimiter)
        next(lines)
        for line in lines:
            yield _record(list(self.header), line)


def stream_lead_table(
    data: bytes, delimiter: str | None = None, encoding: str | None = None
) -> RowStream | Table:
    """`read_lead_table`, with the rows of a table of columns as a RowStream
    (a single column of phones or emails is read as `read_lead_table` does)."""
    text, used_encoding = _decode(data, encoding)
    used_delimiter = delimiter or sniff_delimiter(text)
    header, count = _checked(text, used_delimiter)
    if len(header) < 2:
        return read_lead_table(data, delimiter, encoding)
    return RowStream(text, tuple(header), count, used_encoding, used_delimiter)


def _checked(text: str, delimiter: str) -> tuple[list[str], int]:
    """The header and the number of rows under it; TableError as `_read_lines`."""
    lines = _filled_lines(text, delimiter)
    try:
        header = [cell.strip() for cell in next(lines)]
        return header, sum(1 for _ in lines)
    except StopIteration:
        raise TableError("the file is empty: expected a header row and data rows") from None


def _filled_lines(text: str, delimiter: str) -> Iterator[list[str]]:
    """The non-blank lines split into cells, the way `_read_lines` reads them."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    row_start = 1
    try:
        for line in reader:
            if any(cell.strip() for cell in line):
                yield line
            row_start = reader.line_num + 1
    except csv.Error as error:
        raise TableError(_csv_problem(error, row_start)) from None


def sniff_delimiter(text: str) -> str:
    lines = [line for line in text.splitlines()[:20] if line.strip()]
    if not lines:
        return ","

    def score(candidate: str) -> tuple[int, int]:
        counts = [line.count(candidate) for line in lines]
        consistent = sum(1 for count in counts if count == counts[0])
        return (counts[0] > 0 and consistent, counts[0])

    return max(_DELIMITERS, key=score)


def _read_lines(
    data: bytes, delimiter: str | None, encoding: str | None
) -> tuple[list[list[str]], str, str]:
    """The file's non-blank lines split into cells; TableError when it has none
    or is not a CSV at all."""
    text, used_encoding = _decode(data, encoding)
    used_delimiter = delimiter or sniff_delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=used_delimiter)
    lines: list[list[str]] = []
    row_start = 1
    try:
        for line in reader:
            if any(cell.strip() for cell in line):
                lines.append(line)
            row_start = reader.line_num + 1
    except csv.Error as error:
        raise TableError(_csv_problem(error, row_start)) from None
    if not lines:
        raise TableError("the file is empty: expected a header row and data rows")
    return lines, used_encoding, used_delimiter


def _decode(data: bytes, encoding: str | None) -> tuple[str, str]:
    wide = data.startswith(_UTF16_BOMS) or codecs.lookup(encoding or "utf-8").name.startswith(
        ("utf-16", "utf-32"))
    if looks_binary(data) and not wide:
        raise TableError(
            "not a CSV: the file holds binary data, not text (an .xlsx or another file "
            "renamed to .csv?); in Excel use Save As → CSV UTF-8"
        )
    if encoding:
        return data.decode(encoding), encoding
    if wide:  # Excel's "Unicode text"
        return data.decode("utf-16"), "utf-16"
    return decode_text(data)


def _csv_problem(error: csv.Error, line: int) -> str:
    if "field larger than field limit" in str(error):
        return (
            f"line {line}: a cell is longer than {MAX_CELL_CHARS} characters, which is "
            "nearly always a quote (\") opened there and never closed; close it or remove it"
        )
    return f"not a CSV LeadHub can read (line {line}: {error})"


def _records(header: list[str], lines: list[list[str]]) -> list[dict[str, str]]:
    return [_record(header, line) for line in lines]


def _record(header: list[str], line: list[str]) -> dict[str, str]:
    return {name: (line[i].strip() if i < len(line) else "") for i, name in enumerate(header)
            if name}


def _contact_list(values: list[str], encoding: str, delimiter: str) -> Table:
    """One column: a plain list of phones or emails becomes one row per line,
    keyed `phone` or `email`; a first line that is neither is its header."""
    has_header = not _contact_kind(values[0])
    entries = values[1:] if has_header else values
    kinds = [_contact_kind(value) for value in entries]
    if not entries or kinds.count("") * 2 > len(kinds):
        column = f" ({values[0]!r})" if has_header else ""
        raise TableError(
            f"only one column{column} found, and it holds no phones or emails: a lead "
            "list needs a phone or email column; if the file has more columns, save it "
            "as CSV with `,`, `;` or tab between them"
        )
    fallback = max(("phone", "email"), key=kinds.count)
    rows = [{kind or fallback: value} for kind, value in zip(kinds, entries, strict=True)]
    return Table(rows, encoding, delimiter, first_row=2 if has_header else 1)


def _contact_kind(value: str) -> str:
    if _EMAIL_LIKE.match(value):
        return "email"
    if _PHONE_LIKE.match(value) and 7 <= sum(char.isdigit() for char in value) <= 15:
        return "phone"
    return ""
