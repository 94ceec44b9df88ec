"""CSV files as people export them from Excel or another CRM, as row dicts."""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from transforms.text import cyrillic_letters, decode_text, looks_binary, russian_score

_DELIMITERS = (",", ";", "\t")
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
_BINARY = ("not a CSV: the file holds binary data, not text (an .xlsx or another file "
           "renamed to .csv?); in Excel use Save As → CSV UTF-8")
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


# The bytes of a file from its start, a window at a time, afresh at each call:
# how a connector hands a file to `stream_lead_chunks` without reading it whole.
Chunks = Callable[[], Iterable[bytes]]
# What encoding detection and delimiter sniffing look at: the file's start.
SAMPLE_BYTES = 64 * 1024
_SNIFFED_LINES = 20
# A line ends at \r\n, \r or \n, as Python's csv module reads a file opened with newline="".
_LINE_END = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class RowStream:
    """A lead list read as it is used: its lines were checked once (so a file
    that is not a CSV is refused before any row is used), and its rows are
    made afresh each time they are iterated, never all held at once."""

    lines: Callable[[], Iterator[str]]
    header: tuple[str, ...]
    count: int
    encoding: str
    delimiter: str
    first_row: int = 2

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[dict[str, str]]:
        lines = _filled_lines(self.lines(), self.delimiter)
        next(lines)
        header = list(self.header)
        for line in lines:
            yield _record(header, line)


def stream_lead_table(
    data: bytes, delimiter: str | None = None, encoding: str | None = None
) -> RowStream | Table:
    """`stream_lead_chunks` of bytes already in memory."""
    return stream_lead_chunks(lambda: (data,), delimiter, encoding)


def stream_lead_chunks(
    chunks: Chunks, delimiter: str | None = None, encoding: str | None = None
) -> RowStream | Table:
    """`read_lead_table` of a file given as `chunks`, with the rows of a table
    of columns as a RowStream that reads them from the chunks again: only a
    window of the file is held at a time. The encoding and delimiter are told
    from the file's start (undeclared text that is UTF-8 there but not further
    on is read as `decode_text` would: cp1251 or koi8-r). A single column of
    phones or emails is read as `read_lead_table` does."""
    sample = _sample(chunks)
    for used_encoding, errors, guessed in _encodings(sample, chunks, encoding):
        def lines(used_encoding: str = used_encoding, errors: str = errors) -> Iterator[str]:
            return _text_lines(chunks(), used_encoding, errors)

        try:
            used_delimiter = delimiter or sniff_delimiter(
                "".join(itertools.islice(lines(), _SNIFFED_LINES)))
            header, count = _checked(lines(), used_delimiter)
        except UnicodeDecodeError:
            if guessed:
                continue  # not UTF-8 after all: the next encoding
            raise
        if len(header) < 2:
            return read_lead_table(b"".join(chunks()), delimiter, encoding)
        return RowStream(lines, tuple(header), count, used_encoding, used_delimiter)
    raise AssertionError("the last encoding tried is no guess")  # pragma: no cover


def _sample(chunks: Chunks) -> bytes:
    sample = b""
    for chunk in chunks():
        sample += chunk[:SAMPLE_BYTES - len(sample)]
        if len(sample) >= SAMPLE_BYTES:
            break
    return sample


def _encodings(sample: bytes, chunks: Chunks, encoding: str | None
               ) -> Iterator[tuple[str, str, bool]]:
    """The encodings to read the file in, with their error handling, best
    first, the way `_decode` decodes a whole file; each says if it is a guess
    that a refusal further on disproves (a file UTF-8 only at its start).
    TableError for a binary file."""
    wide = sample.startswith(_UTF16_BOMS) or codecs.lookup(encoding or "utf-8").name.startswith(
        ("utf-16", "utf-32"))
    if looks_binary(sample) and not wide:
        raise TableError(_BINARY)
    if encoding:
        yield encoding, "strict", False
    elif wide:  # Excel's "Unicode text"
        yield "utf-16", "strict", False
    elif sample.startswith(codecs.BOM_UTF8):
        yield "utf-8-sig", "replace", False
    else:
        try:
            codecs.getincrementaldecoder("utf-8")().decode(sample)
        except UnicodeDecodeError:
            yield _single_byte_russian(sample), "replace", False
        else:
            yield "utf-8", "strict", True
            yield _single_byte_russian(sample, chunks), "replace", False


def _single_byte_russian(sample: bytes, chunks: Chunks | None = None) -> str:
    """cp1251 or koi8-r, whichever reads the file (its sample, or all its
    `chunks`) as mostly lower-case Russian."""
    def score(encoding: str) -> float:
        if chunks is None:
            return russian_score(sample.decode(encoding, "replace"))
        letters = lower = 0
        for chunk in chunks():
            more, more_lower = cyrillic_letters(chunk.decode(encoding, "replace"))
            letters, lower = letters + more, lower + more_lower
        return lower / letters if letters else 0.0

    return max(("cp1251", "koi8_r"), key=score)


def _text_lines(chunks: Iterable[bytes], encoding: str, errors: str) -> Iterator[str]:
    """The lines of a file given as chunks, decoded, each with its line end.
    A decoding error says the byte of the file (not of its chunk) where it is."""
    decoder = codecs.getincrementaldecoder(encoding)(errors)
    done = 0  # bytes given to the decoder
    rest = ""
    for chunk in itertools.chain(chunks, [None]):
        waiting = len(decoder.getstate()[0])
        try:
            text = rest + decoder.decode(chunk or b"", final=chunk is None)
        except UnicodeDecodeError as error:
            at = done - waiting + error.start
            raise UnicodeDecodeError(error.encoding, error.object, at,
                                     at + error.end - error.start, error.reason) from None
        done += len(chunk or b"")
        # A \r at the end may be the first half of a \r\n in the next chunk.
        end = len(text) - 1 if chunk is not None and text.endswith("\r") else len(text)
        start = 0
        for match in _LINE_END.finditer(text, 0, end):
            yield text[start:match.end()]
            start = match.end()
        rest = text[start:]
    if rest:
        yield rest


def _checked(lines: Iterable[str], delimiter: str) -> tuple[list[str], int]:
    """The header and the number of rows under it; TableError as `_read_lines`."""
    filled = _filled_lines(lines, delimiter)
    try:
        header = [cell.strip() for cell in next(filled)]
        return header, sum(1 for _ in filled)
    except StopIteration:
        raise TableError("the file is empty: expected a header row and data rows") from None


def _filled_lines(lines: Iterable[str], delimiter: str) -> Iterator[list[str]]:
    """The non-blank lines split into cells, the way `_read_lines` reads them."""
    reader = csv.reader(lines, delimiter=delimiter)
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
        raise TableError(_BINARY)
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
