"""A local Google Sheets API v4 server for tests and benchmarks.

Google is not reachable from our machines, so the sync talks to this server
through gspread, for real, over HTTP on 127.0.0.1. It answers the calls
gspread 6.2.1 makes (spreadsheets.get, spreadsheets.batchUpdate and the
``values`` family) plus the OAuth2 token endpoint that google-auth's
service-account credentials post their signed JWT to.

What it models, because the sync must cope with it:

- auth: 401 without a valid bearer, 403 for an account the spreadsheet is not
  shared with, 403 for a token without a Sheets scope;
- per-user read and write quotas over a sliding window (429
  RESOURCE_EXHAUSTED), on the real clock or a test's (`clock=`); a batch is
  one request;
- cell values like the product: RAW keeps text as typed, USER_ENTERED parses
  like the UI (``+7 912 ...`` becomes a broken formula, ``0123`` the number
  123, ``2026-11-23`` a date); reads trim trailing empty rows and cells;
- grid limits (writes past the grid fail, appends grow it), the 10 million
  cell limit, the 10 MB request limit, unknown JSON field names (checked
  against the discovery document shipped in google-api-python-client, when it
  is installed);
- append's table detection: the table is the first block of consecutive
  non-empty rows found in the range, so an empty row inside the data ends it
  and an append lands in (OVERWRITE) or is inserted at (INSERT_ROWS) that gap.

What it does not model: formulas beyond arithmetic on literals (functions
and references read back as ``#N/A``), number formats other than dates,
enforcement of data validation, named ranges, R1C1 notation, Drive.
"""

from __future__ import annotations

import base64
import collections
import copy
import datetime as dt
import importlib.util
import json
import math
import re
import secrets
import threading
import time
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.fakes.holding import RequestHold

__all__ = ["FakeSheets"]

MAX_BODY_BYTES = 10 * 1024 * 1024
DEFAULT_ROWS, DEFAULT_COLS = 1000, 26
PROJECT_NUMBER = "123456"
USER_EMAIL = "user@example.com"
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
DATE_EPOCH = dt.datetime(1899, 12, 30)

_SCOPE = "https://www.googleapis.com/auth/"
WRITE_SCOPES = {_SCOPE + s for s in ("spreadsheets", "drive", "drive.file")}
READ_SCOPES = WRITE_SCOPES | {_SCOPE + s for s in ("spreadsheets.readonly", "drive.readonly")}

READ_KINDS = frozenset({"get_spreadsheet", "values_get", "values_batch_get"})
WRITE_KINDS = frozenset(
    {
        "batch_update",
        "values_update",
        "values_batch_update",
        "values_append",
        "values_clear",
        "values_batch_clear",
    }
)

_AUTH_HINT = (
    " Expected OAuth 2 access token, login cookie or other valid authentication credential."
    " See https://developers.google.com/identity/sign-in/web/devconsole-project."
)
_HTML_502 = (
    "<!DOCTYPE html>\n<html lang=en>\n  <meta charset=utf-8>\n"
    "  <title>Error 502 (Server Error)!!1</title>\n"
    "  <p><b>502.</b> <ins>That\u2019s an error.</ins>\n"
    "  <p>The server encountered a temporary error and could not complete your request."
    "<p>Please try again in 30 seconds.  <ins>That\u2019s all we know.</ins>\n"
)
_INJECTED = {
    500: ("Internal error encountered.", "INTERNAL"),
    503: ("The service is currently unavailable.", "UNAVAILABLE"),
    504: ("Deadline expired before operation could complete.", "DEADLINE_EXCEEDED"),
}


# --------------------------------------------------------------------------- errors


class ApiError(Exception):
    """An error answered in Google's JSON envelope."""

    _STATUS = {
        400: "INVALID_ARGUMENT",
        401: "UNAUTHENTICATED",
        403: "PERMISSION_DENIED",
        404: "NOT_FOUND",
        429: "RESOURCE_EXHAUSTED",
    }

    def __init__(self, code: int, message: str, status: str | None = None, details=None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status or self._STATUS.get(code, "UNKNOWN")
        self.details = details
        self.headers: dict[str, str] = {}

    def payload(self) -> dict:
        error = {"code": self.code, "message": self.message, "status": self.status}
        if self.details:
            error["details"] = self.details
        return {"error": error}


class _RequestError(Exception):
    """A problem with one request inside a spreadsheets.batchUpdate."""


def _bad(message: str) -> ApiError:
    return ApiError(400, message)


# --------------------------------------------------------------------------- cells


@dataclass(frozen=True, slots=True)
class Cell:
    """One stored cell: its effective value, how it displays, and its formula if any."""

    value: Any  # str | int | float | bool; dates are serial numbers
    kind: str  # text | number | sci | date | datetime | bool | error
    formula: str | None = None


_NUMBER_KINDS = frozenset({"number", "sci", "date", "datetime"})
_NUMBER_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_ISO_DATE_RE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?")
_DMY_RE = re.compile(r"(\d{1,2})\.(\d{1,2})\.(\d{4})")
_MDY_RE = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")


def _json_number(value: float | int) -> float | int:
    # JSON from Google carries 123, not 123.0, for whole numbers.
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def _raw_cell(value: Any) -> Cell | None:
    """RAW input: stored exactly as sent; "" clears the cell."""
    if isinstance(value, bool):
        return Cell(value, "bool")
    if isinstance(value, (int, float)):
        return Cell(value, "number")
    return Cell(value, "text") if value != "" else None


def _user_entered_cell(value: Any) -> Cell | None:
    """USER_ENTERED input: parsed the way the Sheets UI parses what a person types."""
    if not isinstance(value, str):
        return _raw_cell(value)
    text = value
    if text == "":
        return None
    if text.startswith("'"):  # the quote prefix forces text and is not part of the value
        return Cell(text[1:], "text")
    if text.startswith("="):
        return _formula_cell(text)
    number = _parse_number(text)
    if number is not None:
        return number
    if text[0] in "+-":  # like Excel, a leading sign starts a formula: "+7 912 ..."
        return _formula_cell("=" + text)
    date = _parse_date(text)
    if date is not None:
        return date
    if text.upper() in ("TRUE", "FALSE"):
        return Cell(text.upper() == "TRUE", "bool")
    return Cell(text, "text")


def _parse_number(text: str) -> Cell | None:
    if not _NUMBER_RE.fullmatch(text):
        return None
    if "e" in text.lower():
        return Cell(float(text), "sci")
    if "." in text:
        return Cell(float(text), "number")
    number = int(text)  # "0123" -> 123, "+79123456789" -> 79123456789
    return Cell(number if abs(number) <= 2**53 else float(number), "number")


def _parse_date(text: str) -> Cell | None:
    parts = None
    if m := _ISO_DATE_RE.fullmatch(text):
        y, mo, d, h, mi, s = m.groups()
        parts = (y, mo, d, h or 0, mi or 0, s or 0)
        kind = "datetime" if h is not None else "date"
    elif m := _DMY_RE.fullmatch(text):
        d, mo, y = m.groups()
        parts, kind = (y, mo, d, 0, 0, 0), "date"
    elif m := _MDY_RE.fullmatch(text):  # the spreadsheet locale is en_US
        mo, d, y = m.groups()
        parts, kind = (y, mo, d, 0, 0, 0), "date"
    if parts is None:
        return None
    try:
        moment = dt.datetime(*(int(p) for p in parts))
    except ValueError:
        return None  # 31.02.2026 stays text, as in the UI
    return Cell(_json_number(_serial(moment)), kind)


def _serial(moment: dt.datetime) -> float:
    delta = moment - DATE_EPOCH
    return delta.days + delta.seconds / 86400


def _from_serial(serial: float) -> dt.datetime:
    return DATE_EPOCH + dt.timedelta(days=serial)


def _display(cell: Cell) -> str:
    """FORMATTED_VALUE of a cell (locale en_US, automatic number format)."""
    kind, value = cell.kind, cell.value
    if kind in ("text", "error"):
        return value
    if kind == "bool":
        return "TRUE" if value else "FALSE"
    if kind == "date":
        return _from_serial(value).date().isoformat()
    if kind == "datetime":
        return _from_serial(value).replace(microsecond=0).strftime("%Y-%m-%d %H:%M:%S")
    if kind == "sci":
        return f"{value:.2E}"
    return _format_number(value)


def _format_number(value: float | int) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return "#NUM!"
    if abs(value) >= 1e15:
        return f"{value:.5E}"
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.10f}".rstrip("0").rstrip(".")


def _render(cell: Cell, value_render: str, date_render: str) -> Any:
    if value_render == "FORMULA" and cell.formula:
        return cell.formula
    if value_render == "FORMATTED_VALUE":
        return _display(cell)
    if cell.kind in ("date", "datetime") and date_render == "FORMATTED_STRING":
        return _display(cell)
    if cell.kind in _NUMBER_KINDS:
        return _json_number(cell.value)
    return cell.value


# --------------------------------------------------------------------------- formulas

_TOKEN_RE = re.compile(
    r"\s*(?:(?P<num>\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+)"
    r'|(?P<str>"(?:[^"]|"")*")'
    r"|(?P<op><>|<=|>=|[-+*/^&=<>(),%:!])"
    r"|(?P<name>\$?[A-Za-z_][A-Za-z0-9_.$]*))"
)
_BINARY = {"=": 1, "<>": 1, "<": 1, ">": 1, "<=": 1, ">=": 1, "&": 2, "+": 3, "-": 3}
_BINARY |= {"*": 4, "/": 4, "^": 5, ":": 8, "!": 9}
_CELL_REF_RE = re.compile(r"\$?[A-Za-z]{1,3}\$?\d+")


class _FormulaError(Exception):
    """The formula does not parse: the cell shows #ERROR!."""


class _Unsupported:
    """A value the fake cannot compute (a function or a reference)."""


def _tokenize(source: str) -> list[tuple[str, str]]:
    tokens, pos = [], 0
    while pos < len(source):
        if source[pos:].strip() == "":
            break
        m = _TOKEN_RE.match(source, pos)
        if not m or m.end() == pos:
            raise _FormulaError
        kind = m.lastgroup
        tokens.append((kind, m.group(kind)))
        pos = m.end()
    return tokens


class _FormulaParser:
    """A small Pratt parser: checks the syntax and evaluates arithmetic on literals."""

    def __init__(self, tokens):
        self.tokens, self.pos = tokens, 0

    def peek(self):
        return self.tokens[self.pos] if self.pos < len(self.tokens) else (None, None)

    def take(self):
        token = self.peek()
        if token[0] is None:
            raise _FormulaError
        self.pos += 1
        return token

    def parse(self):
        value = self.expression(0)
        if self.pos != len(self.tokens):  # "=+7 912": two operands side by side
            raise _FormulaError
        return value

    def expression(self, min_prec):
        left = self.prefix()
        while True:
            kind, text = self.peek()
            if kind == "op" and text == "%":
                self.pos += 1
                left = _arith("/", left, 100)
                continue
            prec = _BINARY.get(text) if kind == "op" else None
            if prec is None or prec < min_prec:
                return left
            self.pos += 1
            right = self.expression(prec if text == "^" else prec + 1)
            left = _arith(text, left, right)

    def prefix(self):
        kind, text = self.take()
        if kind == "num":
            return float(text)
        if kind == "str":
            return text[1:-1].replace('""', '"')
        if kind == "op" and text in "+-":
            value = self.expression(6)
            return _arith("*", value, -1.0 if text == "-" else 1.0)
        if kind == "op" and text == "(":
            value = self.expression(0)
            if self.take() != ("op", ")"):
                raise _FormulaError
            return value
        if kind == "name":
            return self.name(text)
        raise _FormulaError

    def name(self, text):
        if self.peek() == ("op", "("):
            self.pos += 1
            if self.peek() != ("op", ")"):
                self.expression(0)
                while self.peek() == ("op", ","):
                    self.pos += 1
                    self.expression(0)
            if self.take() != ("op", ")"):
                raise _FormulaError
            return _Unsupported()
        if text.upper() in ("TRUE", "FALSE"):
            return text.upper() == "TRUE"
        if _CELL_REF_RE.fullmatch(text) or self.peek() == ("op", "!"):
            return _Unsupported()
        return "#NAME?"


def _arith(op: str, left, right):
    for value in (left, right):
        if isinstance(value, _Unsupported) or (isinstance(value, str) and value.startswith("#")):
            return value
    if op in (":", "!"):
        return _Unsupported()
    if op == "&":
        return _display(_formula_value_cell(left)) + _display(_formula_value_cell(right))
    if op in ("=", "<>", "<", ">", "<=", ">="):
        return _compare(op, left, right)
    try:
        a, b = float(left), float(right)
    except (TypeError, ValueError):
        return "#VALUE!"
    if op == "/" and b == 0:
        return "#DIV/0!"
    if op == "^":
        try:
            return a**b
        except (OverflowError, ZeroDivisionError):
            return "#NUM!"
    return {"+": a + b, "-": a - b, "*": a * b, "/": a / b if b else 0.0}[op]


def _compare(op, left, right):
    try:
        result = {
            "=": left == right,
            "<>": left != right,
            "<": left < right,
            ">": left > right,
            "<=": left <= right,
            ">=": left >= right,
        }[op]
    except TypeError:
        return False
    return bool(result)


def _formula_value_cell(value) -> Cell:
    if isinstance(value, _Unsupported):
        return Cell("#N/A", "error")
    if isinstance(value, bool):
        return Cell(value, "bool")
    if isinstance(value, float):
        return Cell(_json_number(value), "number")
    if isinstance(value, str) and value.startswith("#"):
        return Cell(value, "error")
    return Cell(value, "text")


def _formula_cell(formula: str) -> Cell:
    try:
        value = _FormulaParser(_tokenize(formula[1:])).parse()
    except (_FormulaError, RecursionError):
        return Cell("#ERROR!", "error", formula)  # "Formula parse error."
    return replace(_formula_value_cell(value), formula=formula)


# --------------------------------------------------------------------------- A1 notation

_ENDPOINT_RE = re.compile(r"\$?([A-Za-z]{0,3})\$?(\d*)")
_BARE_TITLE_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_R1C1_RE = re.compile(r"[Rr]\d*[Cc]\d*")


def col_letters(index: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA."""
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def col_index(letters: str) -> int:
    index = 0
    for ch in letters.upper():
        index = index * 26 + ord(ch) - 64
    return index - 1


def quote_title(title: str) -> str:
    """A sheet title as the API writes it in ranges: bare when it is a plain identifier."""
    plain = _BARE_TITLE_RE.fullmatch(title) and not (
        _CELL_REF_RE.fullmatch(title) or _R1C1_RE.fullmatch(title)
    )
    return title if plain else "'" + title.replace("'", "''") + "'"


def cells_a1(r0: int, c0: int, r1: int | None, c1: int | None) -> str:
    """Zero-based, end-exclusive bounds (None: open) to "A1:D5", "A2:D", "A1"."""
    start = f"{col_letters(c0)}{r0 + 1}"
    if r1 == r0 + 1 and c1 == c0 + 1:
        return start
    end = (col_letters(c1 - 1) if c1 is not None else "") + (str(r1) if r1 is not None else "")
    if c1 is None and r1 is None:
        end = ""
    return f"{start}:{end}"


def split_sheet(text: str) -> tuple[str | None, str | None]:
    """ "'My ''x'' sheet'!A1:B2" -> ("My 'x' sheet", "A1:B2"); "A1:B2" -> (None, "A1:B2")."""
    if text.startswith("'"):
        title, i = [], 1
        while i < len(text):
            if text[i] == "'":
                if text[i + 1 : i + 2] == "'":
                    title.append("'")
                    i += 2
                    continue
                rest = text[i + 1 :]
                if rest == "":
                    return "".join(title), None
                if rest.startswith("!"):
                    return "".join(title), rest[1:]
                raise ValueError(text)
            title.append(text[i])
            i += 1
        raise ValueError(text)
    if "!" in text:
        title, _, rest = text.partition("!")
        return title, rest
    return None, text


def parse_cells(part: str) -> tuple[int, int, int | None, int | None]:
    """ "A2:D" -> (1, 0, None, 4): zero-based starts, exclusive ends, None for open ends."""
    first, sep, second = part.partition(":")
    a = _ENDPOINT_RE.fullmatch(first)
    if not a or not (a[1] or a[2]) or a[2].startswith("0"):
        raise ValueError(part)
    if not sep:
        if not (a[1] and a[2]):
            raise ValueError(part)
        r, c = int(a[2]) - 1, col_index(a[1])
        return r, c, r + 1, c + 1
    b = _ENDPOINT_RE.fullmatch(second)
    if not b or not (b[1] or b[2]) or b[2].startswith("0"):
        raise ValueError(part)
    r0 = int(a[2]) - 1 if a[2] else 0
    c0 = col_index(a[1]) if a[1] else 0
    r1 = int(b[2]) if b[2] else None
    c1 = col_index(b[1]) + 1 if b[1] else None
    if r1 is not None and r1 - 1 < r0:  # "B2:A1" means A1:B2
        r0, r1 = r1 - 1, r0 + 1
    if c1 is not None and c1 - 1 < c0:
        c0, c1 = c1 - 1, c0 + 1
    return r0, c0, r1, c1


# --------------------------------------------------------------------------- workbook model


@dataclass
class Sheet:
    sheet_id: int
    title: str
    index: int
    rows: int = DEFAULT_ROWS
    cols: int = DEFAULT_COLS
    frozen_rows: int = 0
    frozen_cols: int = 0
    cells: dict[int, dict[int, Cell]] = field(default_factory=dict)
    validations: list[dict] = field(default_factory=list)
    formats: list[dict] = field(default_factory=list)
    extra: dict = field(default_factory=dict)  # hidden, tabColor, ... as sent

    def properties(self) -> dict:
        grid = {"rowCount": self.rows, "columnCount": self.cols}
        # proto3 JSON leaves zero values out: no frozenRowCount on an unfrozen sheet
        if self.frozen_rows:
            grid["frozenRowCount"] = self.frozen_rows
        if self.frozen_cols:
            grid["frozenColumnCount"] = self.frozen_cols
        props = {"sheetId": self.sheet_id, "title": self.title, "index": self.index}
        props |= {"sheetType": "GRID", "gridProperties": grid}
        return props | copy.deepcopy(self.extra)

    def snapshot(self, with_cells: bool) -> Sheet:
        cells = {r: dict(row) for r, row in self.cells.items()} if with_cells else self.cells
        return replace(
            self,
            cells=cells,
            validations=copy.deepcopy(self.validations),
            formats=copy.deepcopy(self.formats),
            extra=copy.deepcopy(self.extra),
        )


@dataclass
class Book:
    spreadsheet_id: str
    title: str
    sheets: list[Sheet]
    shared_with: set[str] | None = None

    def sheet_by_title(self, title: str) -> Sheet | None:
        for sheet in self.sheets:
            if sheet.title == title:
                return sheet
        folded = title.casefold()  # range titles are matched case-insensitively
        return next((s for s in self.sheets if s.title.casefold() == folded), None)

    def sheet_by_id(self, sheet_id: int) -> Sheet:
        for sheet in self.sheets:
            if sheet.sheet_id == sheet_id:
                return sheet
        raise _RequestError(f"No grid with id: {sheet_id}")

    def total_cells(self) -> int:
        return sum(s.rows * s.cols for s in self.sheets)

    def reindex(self) -> None:
        for i, sheet in enumerate(self.sheets):
            sheet.index = i


@dataclass(frozen=True)
class Identity:
    email: str
    scopes: frozenset[str]


# --------------------------------------------------------------------------- sheet cell ops


def _rows_in(sheet: Sheet, r0: int, r1: int, c0: int, c1: int) -> list[int]:
    """Rows in [r0, r1) holding a value in a column of [c0, c1), ascending."""
    return sorted(
        r for r, row in sheet.cells.items() if r0 <= r < r1 and any(c0 <= c < c1 for c in row)
    )


def _read_block(sheet, r0, c0, r1, c1, major, value_render, date_render) -> list[list]:
    empty = object()
    matrix = []
    rows = _rows_in(sheet, r0, r1, c0, c1)
    for r in range(r0, rows[-1] + 1) if rows else ():
        row = sheet.cells.get(r, {})
        cols = [c for c in row if c0 <= c < c1]
        last = max(cols, default=c0 - 1)
        matrix.append(
            [
                _render(row[c], value_render, date_render) if c in row else empty
                for c in range(c0, last + 1)
            ]
        )
    if major == "COLUMNS":
        width = max((len(r) for r in matrix), default=0)
        matrix = [[r[j] if j < len(r) else empty for r in matrix] for j in range(width)]
    out = []
    for line in matrix:
        while line and line[-1] is empty:
            line.pop()
        out.append(["" if v is empty else v for v in line])
    while out and not out[-1]:
        out.pop()
    return out


def _clear_block(sheet: Sheet, r0: int, c0: int, r1: int, c1: int) -> None:
    for r in [r for r in sheet.cells if r0 <= r < r1]:
        row = sheet.cells[r]
        for c in [c for c in row if c0 <= c < c1]:
            del row[c]
        if not row:
            del sheet.cells[r]


def _put(sheet: Sheet, r: int, c: int, cell: Cell | None) -> None:
    if cell is None:
        row = sheet.cells.get(r)
        if row and c in row:
            del row[c]
            if not row:
                del sheet.cells[r]
        return
    sheet.cells.setdefault(r, {})[c] = cell


def _shift_rows(sheet: Sheet, at: int, count: int) -> None:
    """Insert (count > 0) or delete (count < 0) rows at index `at`, moving the cells below."""
    moved = {}
    for r, row in sheet.cells.items():
        if r < at:
            moved[r] = row
        elif count < 0 and r < at - count:
            continue
        else:
            moved[r + count] = row
    sheet.cells = moved


def _shift_cols(sheet: Sheet, at: int, count: int) -> None:
    for r, row in list(sheet.cells.items()):
        moved = {}
        for c, cell in row.items():
            if c < at:
                moved[c] = cell
            elif not (count < 0 and c < at - count):
                moved[c + count] = cell
        if moved:
            sheet.cells[r] = moved
        else:
            del sheet.cells[r]


def _trim_to_grid(sheet: Sheet) -> None:
    _clear_block(sheet, sheet.rows, 0, 2**31, 2**31)
    _clear_block(sheet, 0, sheet.cols, 2**31, 2**31)


# ------------------------------------------------------------------- field masks and schemas


_FIELD_PATH_RE = re.compile(r"\s*([A-Za-z0-9_*]+(?:[./][A-Za-z0-9_*]+)*)\s*")


def parse_fields(mask: str) -> dict:
    """ "sheets.properties(title,sheetId),spreadsheetId" -> nested dict; None leaves = all."""
    tree: dict = {}
    pos = 0

    def child(node: dict, name: str) -> dict:
        if name in node and node[name] is None:
            return {}  # already selected whole: a narrower selection changes nothing
        return node.setdefault(name, {})

    def parse_list(node: dict, end: str | None) -> None:
        nonlocal pos
        while pos < len(mask):
            m = _FIELD_PATH_RE.match(mask, pos)
            if not m:
                raise _bad(f"Invalid field selection {mask}")
            pos = m.end()
            path = re.split(r"[./]", m.group(1))
            target = node
            for name in path[:-1]:
                target = child(target, name)
            leaf = path[-1]
            if mask[pos : pos + 1] == "(":
                pos += 1
                parse_list(child(target, leaf), ")")
            else:
                target[leaf] = None
            if mask[pos : pos + 1] == ",":
                pos += 1
                continue
            if end and mask[pos : pos + 1] == end:
                pos += 1
                return
            if pos < len(mask):
                raise _bad(f"Invalid field selection {mask}")

    parse_list(tree, None)
    return tree


def apply_fields(value: Any, tree: dict | None) -> Any:
    if tree is None or "*" in tree:
        return value
    if isinstance(value, list):
        return [apply_fields(v, tree) for v in value]
    if isinstance(value, dict):
        return {k: apply_fields(value[k], sub) for k, sub in tree.items() if k in value}
    return value


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


_SCHEMAS: dict | None = None


def discovery_schemas() -> dict:
    """The `schemas` of the Sheets v4 discovery document shipped in google-api-python-client.

    Empty when that package is not installed: request bodies then go unchecked.
    """
    global _SCHEMAS
    if _SCHEMAS is None:
        spec = importlib.util.find_spec("googleapiclient")
        doc = None
        for base in (spec.submodule_search_locations or []) if spec else []:
            path = Path(base) / "discovery_cache" / "documents" / "sheets.v4.json"
            if path.exists():
                doc = json.loads(path.read_text(encoding="utf-8"))
                break
        _SCHEMAS = doc["schemas"] if doc else {}
    return _SCHEMAS


def unknown_field(schemas: dict, schema: dict, value: Any, path: str = "") -> tuple | None:
    """The first (name, path) in `value` that `schema` does not define, or None."""
    if "$ref" in schema:
        schema = schemas.get(schema["$ref"], {})
    if isinstance(value, dict) and "properties" in schema:
        for key, item in value.items():
            prop = schema["properties"].get(key)
            if prop is None:
                return key, path
            found = unknown_field(schemas, prop, item, f"{path}.{_snake(key)}".lstrip("."))
            if found:
                return found
    elif isinstance(value, dict) and "additionalProperties" in schema:
        for item in value.values():
            found = unknown_field(schemas, schema["additionalProperties"], item, path)
            if found:
                return found
    elif isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            found = unknown_field(schemas, schema["items"], item, f"{path}[{i}]")
            if found:
                return found
    return None


# batchUpdate requests that change cells: only those batches pay for a cell snapshot
_CELL_REQUESTS = frozenset(
    {"updateCells", "insertDimension", "deleteDimension", "updateSheetProperties"}
)

_REQUEST_SCHEMAS = {
    "batch_update": "BatchUpdateSpreadsheetRequest",
    "values_update": "ValueRange",
    "values_append": "ValueRange",
    "values_batch_update": "BatchUpdateValuesRequest",
    "values_clear": "ClearValuesRequest",
    "values_batch_clear": "BatchClearValuesRequest",
}


# --------------------------------------------------------------------------- routing

_ID = r"(?P<sid>[^/:]+)"
_ROUTES = [
    ("GET", re.compile(rf"/v4/spreadsheets/{_ID}"), "get_spreadsheet"),
    ("POST", re.compile(rf"/v4/spreadsheets/{_ID}:batchUpdate"), "batch_update"),
    ("GET", re.compile(rf"/v4/spreadsheets/{_ID}/values:batchGet"), "values_batch_get"),
    ("POST", re.compile(rf"/v4/spreadsheets/{_ID}/values:batchUpdate"), "values_batch_update"),
    ("POST", re.compile(rf"/v4/spreadsheets/{_ID}/values:batchClear"), "values_batch_clear"),
    ("POST", re.compile(rf"/v4/spreadsheets/{_ID}/values/(?P<rng>.+):append"), "values_append"),
    ("POST", re.compile(rf"/v4/spreadsheets/{_ID}/values/(?P<rng>.+):clear"), "values_clear"),
    ("GET", re.compile(rf"/v4/spreadsheets/{_ID}/values/(?P<rng>.+)"), "values_get"),
    ("PUT", re.compile(rf"/v4/spreadsheets/{_ID}/values/(?P<rng>.+)"), "values_update"),
]


def _route(method: str, path: str):
    for verb, pattern, kind in _ROUTES:
        m = pattern.fullmatch(path)
        if m and verb == method:
            groups = {k: unquote(v) for k, v in m.groupdict().items()}
            return kind, groups
    return None


# --------------------------------------------------------------------------- the server


class FakeSheets:
    """An in-process Sheets API v4 + OAuth2 token server on 127.0.0.1.

    Use as a context manager or call start()/stop(). Point gspread at `url`
    (an HTTPClient subclass that rewrites https://sheets.googleapis.com) and
    google-auth at `token_uri` (the key from service_account_key() does that).
    """

    def __init__(
        self,
        *,
        writes_per_minute: int = 60,
        reads_per_minute: int = 60,
        quota_window_seconds: float = 60.0,
        cell_limit: int = 10_000_000,
        clock=time.monotonic,
    ):
        self.writes_per_minute = writes_per_minute
        self.reads_per_minute = reads_per_minute
        self.quota_window_seconds = quota_window_seconds
        self.cell_limit = cell_limit
        self.clock = clock
        self.allowed_accounts: set[str] | None = None
        self.calls: collections.Counter = collections.Counter()
        # The last answered API requests, for tests that check what a client sent.
        self.request_log: collections.deque = collections.deque(maxlen=500)
        self.url = ""
        self.token_uri = ""
        self._lock = threading.RLock()
        self._books: dict[str, Book] = {}
        self._tokens: dict[str, Identity] = {}
        self._revoked: set[str] = set()
        self._quota: dict[tuple[str, str], collections.deque] = collections.defaultdict(
            collections.deque
        )
        self._failures: collections.deque = collections.deque()
        self._hold = RequestHold()
        self._private_key = None
        self._key_id = ""
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FakeSheets:
        self._server = _Server(self)
        port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{port}"
        self.token_uri = self.url + "/token"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-sheets",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._hold.release()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = None

    def __enter__(self) -> FakeSheets:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------ counters

    @property
    def write_calls(self) -> int:
        return sum(self.calls[k] for k in WRITE_KINDS)

    @property
    def read_calls(self) -> int:
        return sum(self.calls[k] for k in READ_KINDS)

    def reset_calls(self) -> None:
        with self._lock:
            self.calls.clear()
            self.request_log.clear()

    def reset_quota(self) -> None:
        with self._lock:
            self._quota.clear()

    def hold_after_writes(self, count: int) -> threading.Event:
        """Once `count` writes are answered, hold every request unanswered until
        release(): the client under test freezes mid-sync, where a test kills it.
        The event is set when a request is being held; held requests are never
        applied."""
        return self._hold.arm(count)

    def release(self) -> None:
        """Drop the held requests unanswered, as if they never arrived, and hold no more."""
        self._hold.release()

    # ------------------------------------------------------------------ test controls

    def create_spreadsheet(self, title: str = "CRM", sheets=("Sheet1",), shared_with=None) -> str:
        """A new spreadsheet (1000 x 26 sheets); shared_with=None shares it with everyone."""
        with self._lock:
            spreadsheet_id = "1" + secrets.token_urlsafe(32)[:43]
            tabs = [
                Sheet(sheet_id=0 if i == 0 else self._new_sheet_id(), title=t, index=i)
                for i, t in enumerate(sheets)
            ]
            book = Book(spreadsheet_id, title, tabs, set(shared_with) if shared_with else None)
            if book.total_cells() > self.cell_limit:
                raise ValueError("the sheets exceed cell_limit")
            self._books[spreadsheet_id] = book
            return spreadsheet_id

    def grid(self, spreadsheet_id: str, title: str, *, formatted: bool = False) -> list[list]:
        """The values of a worksheet, trimmed like a read of the whole sheet.

        Effective values by default (numbers as numbers, dates as serial
        numbers, formulas as their results); formatted=True gives what a
        FORMATTED_VALUE read returns.
        """
        with self._lock:
            sheet = self._sheet(spreadsheet_id, title)
            render = "FORMATTED_VALUE" if formatted else "UNFORMATTED_VALUE"
            return _read_block(sheet, 0, 0, sheet.rows, sheet.cols, "ROWS", render, "")

    def set_grid(self, spreadsheet_id: str, title: str, rows, *, user_entered: bool = False):
        """A person rewrites the whole sheet (reorders columns, sorts rows, ...).

        Values are kept as given (RAW), so what grid() returned can be fed back;
        datetime.date values become date cells. The grid grows to fit.
        """
        with self._lock:
            sheet = self._sheet(spreadsheet_id, title)
            rows = [list(r) for r in rows]
            need_rows = len(rows)
            need_cols = max((len(r) for r in rows), default=0)
            self._grow(self._books[spreadsheet_id], sheet, need_rows, need_cols)
            sheet.cells = {}
            for r, line in enumerate(rows):
                for c, value in enumerate(line):
                    if value is not None:
                        _put(sheet, r, c, self._person_cell(value, user_entered))

    def person_edit(self, spreadsheet_id: str, title: str, a1_cell: str, value) -> None:
        """A person types `value` into one cell (parsed like the UI; "" or None clears it)."""
        with self._lock:
            sheet = self._sheet(spreadsheet_id, title)
            r0, c0, r1, c1 = parse_cells(a1_cell)
            if (r1, c1) != (r0 + 1, c0 + 1):
                raise ValueError(f"one cell expected, got {a1_cell}")
            if r0 >= sheet.rows or c0 >= sheet.cols:
                raise ValueError(f"{a1_cell} is outside the {sheet.rows}x{sheet.cols} grid")
            _put(sheet, r0, c0, None if value is None else self._person_cell(value, True))

    def validation(self, spreadsheet_id: str, title: str) -> list[dict]:
        """Data validation rules set on a worksheet: range, type, values, strict, showCustomUi."""
        with self._lock:
            sheet = self._sheet(spreadsheet_id, title)
            out = []
            for item in sheet.validations:
                rule = item["rule"]
                condition = rule.get("condition") or {}
                out.append(
                    {
                        "range": self._grid_range_a1(item["range"]),
                        "type": condition.get("type"),
                        "values": [
                            v.get("userEnteredValue") for v in condition.get("values") or []
                        ],
                        "strict": bool(rule.get("strict")),
                        "showCustomUi": bool(rule.get("showCustomUi")),
                    }
                )
            return out

    def formats(self, spreadsheet_id: str, title: str) -> list[dict]:
        """Formats applied by repeatCell/updateCells: range, format (userEnteredFormat), fields."""
        with self._lock:
            sheet = self._sheet(spreadsheet_id, title)
            return [
                {
                    "range": self._grid_range_a1(f["range"]),
                    "format": copy.deepcopy(f["format"]),
                    "fields": f["fields"],
                }
                for f in sheet.formats
            ]

    def sheet_properties(self, spreadsheet_id: str, title: str) -> dict:
        with self._lock:
            return self._sheet(spreadsheet_id, title).properties()

    def service_account_key(self, email: str = "leadhub@proj.iam.gserviceaccount.com") -> dict:
        """A service-account JSON key whose token_uri is this server."""
        if not self.token_uri:
            raise RuntimeError("start() the server before asking for a key")
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        with self._lock:
            if self._private_key is None:  # RSA generation is slow-ish: once per server
                self._private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
                self._key_id = secrets.token_hex(20)
        pem = self._private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        project = email.split("@")[1].split(".")[0] if "@" in email else "proj"
        return {
            "type": "service_account",
            "project_id": project,
            "private_key_id": self._key_id,
            "private_key": pem,
            "client_email": email,
            "client_id": str(10**20 + secrets.randbelow(10**20)),
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": self.token_uri,
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/" + email,
            "universe_domain": "googleapis.com",
        }

    def fail_next(self, count: int, status: int = 503) -> None:
        """The next `count` Sheets API requests fail with `status` and Google's body for it."""
        with self._lock:
            self._failures.extend([status] * count)

    def expire_tokens(self) -> None:
        """Every access token issued so far stops working (as after an hour)."""
        with self._lock:
            self._revoked.update(self._tokens)
            self._tokens.clear()

    # ------------------------------------------------------------------ HTTP entry

    def _respond(self, method: str, raw_path: str, headers, body: bytes, too_big: bool):
        """(status, payload, extra headers) for one HTTP request."""
        parts = urlsplit(raw_path)
        query = parse_qs(parts.query, keep_blank_values=True)
        self._hold.wait_if_due(self.write_calls)
        with self._lock:
            try:
                if parts.path == "/token" and method == "POST":
                    return self._token(body)
                route = _route(method, parts.path)
                if route is None:
                    raise ApiError(404, "Method not found.")
                if too_big:
                    raise _bad(f"Request payload size exceeds the limit: {MAX_BODY_BYTES} bytes.")
                kind, groups = route
                return 200, self._api(kind, groups, query, headers, body), {}
            except ApiError as err:
                return err.code, err.payload(), err.headers
            except _Injected as injected:
                return injected.response()
            except (TypeError, ValueError, KeyError, AttributeError) as exc:
                # a body of the wrong shape: the real API says 400, the fake says which
                message = f"Invalid JSON payload received (the fake could not use it: {exc!r})."
                return 400, _bad(message).payload(), {}

    def _api(self, kind: str, groups: dict, query: dict, headers, body: bytes) -> dict:
        who = self._authenticate(headers)
        if self._failures:
            self.calls["injected_failure"] += 1
            raise _Injected(self._failures.popleft())
        book = self._books.get(groups["sid"])
        if book is None:
            raise ApiError(404, "Requested entity was not found.")
        self._authorize(who, book, kind)
        self._admit(who, kind)
        self.calls[kind] += 1
        data = self._json_body(kind, body)
        self.request_log.append(
            {"kind": kind, "range": groups.get("rng"), "query": query, "body": data}
        )
        handler = getattr(self, "_" + kind)
        result = handler(book, groups, query, data or {})
        fields = _one(query, "fields")
        return apply_fields(result, parse_fields(fields)) if fields else result

    # ------------------------------------------------------------------ auth, quota

    def _token(self, body: bytes):
        self.calls["token"] += 1
        form = parse_qs(body.decode("utf-8", "replace"))
        grant = _one(form, "grant_type") or ""
        if grant != JWT_GRANT:
            return 400, _oauth_error("unsupported_grant_type", f"Invalid grant_type: {grant}"), {}
        claims = self._verify_jwt(_one(form, "assertion") or "")
        if claims is None:
            return 400, _oauth_error("invalid_grant", "Invalid JWT Signature."), {}
        if not claims.get("iss"):
            return 400, _oauth_error("invalid_grant", "Invalid JWT: No issuer."), {}
        scopes = frozenset((claims.get("scope") or "").split())
        if not scopes:
            message = "Invalid OAuth scope or ID token audience provided."
            return 400, _oauth_error("invalid_scope", message), {}
        token = "ya29.c." + secrets.token_urlsafe(48)
        self._tokens[token] = Identity(claims["iss"], scopes)
        return 200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"}, {}

    def _verify_jwt(self, assertion: str) -> dict | None:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        try:
            head, payload, signature = assertion.split(".")
            header = json.loads(_b64(head))
            claims = json.loads(_b64(payload))
            if self._private_key is None or header.get("kid") != self._key_id:
                return None
            self._private_key.public_key().verify(
                _b64(signature),
                f"{head}.{payload}".encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except (ValueError, InvalidSignature, AttributeError):
            return None
        return claims if isinstance(claims, dict) else None

    def _authenticate(self, headers) -> Identity:
        auth = headers.get("Authorization") or ""
        if not auth.lower().startswith("bearer ") or not auth[7:].strip():
            raise self._unauthenticated("Request is missing required authentication credential.")
        token = auth[7:].strip()
        who = self._tokens.get(token)
        if who is None and token.startswith("ya29.") and token not in self._revoked:
            who = Identity(USER_EMAIL, frozenset(READ_SCOPES))  # an OAuth user token
        if who is None:
            raise self._unauthenticated("Request had invalid authentication credentials.")
        return who

    @staticmethod
    def _unauthenticated(message: str) -> ApiError:
        err = ApiError(401, message + _AUTH_HINT)
        err.headers["WWW-Authenticate"] = 'Bearer realm="https://accounts.google.com/"'
        return err

    def _authorize(self, who: Identity, book: Book, kind: str) -> None:
        needed = WRITE_SCOPES if kind in WRITE_KINDS else READ_SCOPES
        if not who.scopes & needed:
            raise ApiError(
                403,
                "Request had insufficient authentication scopes.",
                details=[
                    {
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": "ACCESS_TOKEN_SCOPE_INSUFFICIENT",
                        "domain": "googleapis.com",
                        "metadata": {"service": "sheets.googleapis.com"},
                    }
                ],
            )
        allowed = self.allowed_accounts is None or who.email in self.allowed_accounts
        shared = book.shared_with is None or who.email in book.shared_with
        if not (allowed and shared):
            raise ApiError(403, "The caller does not have permission")

    def _admit(self, who: Identity, kind: str) -> None:
        """Sliding-window quota per user; a 429 does not use up quota."""
        is_write = kind in WRITE_KINDS
        limit = self.writes_per_minute if is_write else self.reads_per_minute
        window = self._quota[(who.email, "write" if is_write else "read")]
        now = self.clock()
        while window and window[0] <= now - self.quota_window_seconds:
            window.popleft()
        if len(window) >= limit:
            self.calls["rate_limited"] += 1
            raise _quota_error(is_write, limit)
        window.append(now)

    # ------------------------------------------------------------------ bodies

    def _json_body(self, kind: str, body: bytes) -> dict | None:
        if not body.strip():
            return None
        try:
            data = json.loads(body)
        except ValueError:
            raise _bad("Invalid JSON payload received. Unexpected token.") from None
        if not isinstance(data, dict):
            raise _bad("Invalid JSON payload received. Expected an object.")
        schemas = discovery_schemas()
        schema_name = _REQUEST_SCHEMAS.get(kind)
        if schemas and schema_name:
            found = unknown_field(schemas, {"$ref": schema_name}, data)
            if found:
                name, path = found
                where = f" at '{path}'" if path else ""
                raise _bad(
                    f'Invalid JSON payload received. Unknown name "{name}"{where}: '
                    "Cannot find field."
                )
        return data

    # ------------------------------------------------------------------ spreadsheets.get

    def _get_spreadsheet(self, book: Book, groups, query, data) -> dict:
        return self._spreadsheet_json(book)

    def _spreadsheet_json(self, book: Book) -> dict:
        return {
            "spreadsheetId": book.spreadsheet_id,
            "properties": {
                "title": book.title,
                "locale": "en_US",
                "autoRecalc": "ON_CHANGE",
                "timeZone": "Etc/GMT",
            },
            "sheets": [{"properties": s.properties()} for s in book.sheets],
            "spreadsheetUrl": f"https://docs.google.com/spreadsheets/d/{book.spreadsheet_id}/edit",
        }

    # ------------------------------------------------------------------ spreadsheets.batchUpdate

    def _batch_update(self, book: Book, groups, query, data) -> dict:
        requests = data.get("requests") or []
        touches_cells = any(set(r or {}) & _CELL_REQUESTS for r in requests)
        saved = [s.snapshot(with_cells=touches_cells) for s in book.sheets]
        cells_before = book.total_cells()
        replies = []
        try:
            for i, request in enumerate(requests):
                replies.append(self._structure_request(book, i, request or {}))
            after = book.total_cells()
            if after > self.cell_limit and after > cells_before:
                raise _bad(self._cell_limit_message())
        except Exception:
            book.sheets = saved  # a batch is atomic: all requests or none
            raise
        reply = {"spreadsheetId": book.spreadsheet_id, "replies": replies}
        if data.get("includeSpreadsheetInResponse"):
            reply["updatedSpreadsheet"] = self._spreadsheet_json(book)
        return reply

    def _structure_request(self, book: Book, i: int, request: dict) -> dict:
        set_keys = [k for k, v in request.items() if v is not None]
        if len(set_keys) != 1:
            raise _bad(f"Invalid requests[{i}]: No request set.")
        name = set_keys[0]
        handler = getattr(self, f"_req_{_snake(name)}", None)
        if handler is None:
            raise _bad(f"Invalid requests[{i}]: '{name}' is not supported by the local fake.")
        try:
            return handler(book, request[name]) or {}
        except _RequestError as err:
            raise _bad(f"Invalid requests[{i}].{name}: {err}") from None

    def _req_add_sheet(self, book: Book, req: dict) -> dict:
        props = req.get("properties") or {}
        title = props.get("title") or self._free_title(book)
        if book.sheet_by_title(title) is not None:  # titles are unique regardless of case
            raise _RequestError(
                f'A sheet with the name "{title}" already exists. Please enter another name.'
            )
        sheet_id = props.get("sheetId")
        if sheet_id is not None and any(s.sheet_id == sheet_id for s in book.sheets):
            raise _RequestError(f"Sheet with id {sheet_id} already exists.")
        grid = props.get("gridProperties") or {}
        sheet = Sheet(
            sheet_id=sheet_id if sheet_id is not None else self._new_sheet_id(),
            title=title,
            index=0,
            rows=grid.get("rowCount", DEFAULT_ROWS),
            cols=grid.get("columnCount", DEFAULT_COLS),
            frozen_rows=grid.get("frozenRowCount", 0) or 0,
            frozen_cols=grid.get("frozenColumnCount", 0) or 0,
        )
        for key in ("hidden", "tabColor", "tabColorStyle", "rightToLeft"):
            if props.get(key) is not None:
                sheet.extra[key] = props[key]
        index = props.get("index")
        index = len(book.sheets) if index is None else max(0, min(index, len(book.sheets)))
        book.sheets.insert(index, sheet)
        book.reindex()
        return {"addSheet": {"properties": sheet.properties()}}

    def _req_delete_sheet(self, book: Book, req: dict) -> None:
        sheet = book.sheet_by_id(req.get("sheetId", 0))
        if len(book.sheets) == 1:
            raise _RequestError("You can't remove all the sheets in a document.")
        book.sheets.remove(sheet)
        book.reindex()

    def _req_update_sheet_properties(self, book: Book, req: dict) -> None:
        props = req.get("properties") or {}
        fields = req.get("fields") or ""
        if not fields:
            raise _RequestError("At least one field must be updated, but 'fields' is empty.")
        sheet = book.sheet_by_id(props.get("sheetId", 0))
        mask = parse_fields(fields)
        grid = props.get("gridProperties") or {}
        everything = "*" in mask

        def chosen(name: str, sub: str | None = None) -> bool:
            if everything or (name in mask and (mask[name] is None or sub is None)):
                return True
            return sub is not None and sub in (mask.get(name) or {})

        if chosen("title") and props.get("title") is not None:
            other = book.sheet_by_title(props["title"])
            if other is not None and other is not sheet:
                raise _RequestError(
                    f'A sheet with the name "{props["title"]}" already exists. '
                    "Please enter another name."
                )
            sheet.title = props["title"]
        if chosen("index") and props.get("index") is not None:
            book.sheets.remove(sheet)
            book.sheets.insert(max(0, min(props["index"], len(book.sheets))), sheet)
            book.reindex()
        for attr, name in (
            ("rows", "rowCount"),
            ("cols", "columnCount"),
            ("frozen_rows", "frozenRowCount"),
            ("frozen_cols", "frozenColumnCount"),
        ):
            if chosen("gridProperties", name):
                setattr(sheet, attr, grid.get(name) or 0)
        if sheet.rows < 1 or sheet.cols < 1:
            raise _RequestError("A sheet must have at least one row and one column.")
        if sheet.frozen_rows >= sheet.rows:
            raise _RequestError("You can't freeze all visible rows on the sheet.")
        if sheet.frozen_cols >= sheet.cols:
            raise _RequestError("You can't freeze all visible columns on the sheet.")
        _trim_to_grid(sheet)
        for key in ("hidden", "tabColor", "tabColorStyle", "rightToLeft"):
            if chosen(key):
                sheet.extra.pop(key, None)
                if props.get(key) is not None:
                    sheet.extra[key] = props[key]

    def _req_append_dimension(self, book: Book, req: dict) -> None:
        sheet = book.sheet_by_id(req.get("sheetId", 0))
        length = req.get("length") or 0
        if length < 1:
            raise _RequestError("length must be at least 1")
        if req.get("dimension") == "COLUMNS":
            sheet.cols += length
        else:
            sheet.rows += length

    def _req_insert_dimension(self, book: Book, req: dict) -> None:
        sheet, dim, start, end = self._dimension_range(book, req.get("range") or {})
        if dim == "ROWS":
            _shift_rows(sheet, start, end - start)
            sheet.rows += end - start
        else:
            _shift_cols(sheet, start, end - start)
            sheet.cols += end - start

    def _req_delete_dimension(self, book: Book, req: dict) -> None:
        sheet, dim, start, end = self._dimension_range(book, req.get("range") or {})
        if dim == "ROWS":
            end = min(end, sheet.rows)
            _shift_rows(sheet, start, start - end)
            sheet.rows -= end - start
        else:
            end = min(end, sheet.cols)
            _shift_cols(sheet, start, start - end)
            sheet.cols -= end - start
        if sheet.rows < 1 or sheet.cols < 1:
            raise _RequestError("You can't delete all the rows on the sheet.")

    def _req_repeat_cell(self, book: Book, req: dict) -> None:
        grid_range = req.get("range") or {}
        sheet = book.sheet_by_id(grid_range.get("sheetId", 0))
        cell = req.get("cell") or {}
        fields = req.get("fields") or "*"
        sheet.formats.append(
            {
                "range": dict(grid_range),
                "format": copy.deepcopy(cell.get("userEnteredFormat") or {}),
                "fields": fields,
            }
        )

    def _req_update_cells(self, book: Book, req: dict) -> None:
        if req.get("range"):
            grid_range = req["range"]
            start = {
                "sheetId": grid_range.get("sheetId", 0),
                "rowIndex": grid_range.get("startRowIndex", 0),
                "columnIndex": grid_range.get("startColumnIndex", 0),
            }
        else:
            start = req.get("start") or {}
        sheet = book.sheet_by_id(start.get("sheetId", 0))
        fields = req.get("fields") or ""
        r0, c0 = start.get("rowIndex", 0), start.get("columnIndex", 0)
        writes_values = fields == "*" or "userEnteredValue" in fields
        for i, row in enumerate(req.get("rows") or []):
            for j, cell_data in enumerate(row.get("values") or []):
                r, c = r0 + i, c0 + j
                if r >= sheet.rows or c >= sheet.cols:
                    raise _RequestError(
                        f"Range ({quote_title(sheet.title)}!{cells_a1(r, c, r + 1, c + 1)}) "
                        f"exceeds grid limits. Max rows: {sheet.rows}, max columns: {sheet.cols}"
                    )
                if writes_values:
                    _put(sheet, r, c, _extended_value_cell(cell_data.get("userEnteredValue")))
                if cell_data.get("userEnteredFormat"):
                    sheet.formats.append(
                        {
                            "range": {
                                "sheetId": sheet.sheet_id,
                                "startRowIndex": r,
                                "endRowIndex": r + 1,
                                "startColumnIndex": c,
                                "endColumnIndex": c + 1,
                            },
                            "format": copy.deepcopy(cell_data["userEnteredFormat"]),
                            "fields": fields,
                        }
                    )

    def _req_set_data_validation(self, book: Book, req: dict) -> None:
        grid_range = dict(req.get("range") or {})
        sheet = book.sheet_by_id(grid_range.get("sheetId", 0))
        key = _range_key(grid_range)
        # a new rule replaces the rules it covers; rule=None only clears
        sheet.validations = [v for v in sheet.validations if not _covers(key, v["key"])]
        rule = req.get("rule")
        if rule:
            condition = rule.get("condition") or {}
            if not condition.get("type"):
                raise _RequestError("A data validation rule needs a condition type.")
            if condition["type"] == "ONE_OF_LIST" and not condition.get("values"):
                raise _RequestError("ONE_OF_LIST condition requires at least one value.")
            sheet.validations.append({"range": grid_range, "key": key, "rule": copy.deepcopy(rule)})

    def _req_auto_resize_dimensions(self, book: Book, req: dict) -> None:
        dims = req.get("dimensions") or req.get("dataSourceSheetDimensions") or {}
        book.sheet_by_id(dims.get("sheetId", 0))  # only the sheet is checked: no rendering

    def _req_update_dimension_properties(self, book: Book, req: dict) -> None:
        book.sheet_by_id((req.get("range") or {}).get("sheetId", 0))

    def _dimension_range(self, book: Book, dim_range: dict):
        sheet = book.sheet_by_id(dim_range.get("sheetId", 0))
        dim = dim_range.get("dimension") or "ROWS"
        start = dim_range.get("startIndex", 0)
        end = dim_range.get("endIndex")
        if end is None or end <= start:
            raise _RequestError("The dimension range must have endIndex > startIndex.")
        return sheet, dim, start, end

    # ------------------------------------------------------------------ values.get / batchGet

    def _values_get(self, book: Book, groups, query, data) -> dict:
        options = _read_options(query)
        return self._value_range(book, groups["rng"], *options)

    def _values_batch_get(self, book: Book, groups, query, data) -> dict:
        options = _read_options(query)
        ranges = query.get("ranges") or []
        reply = {"spreadsheetId": book.spreadsheet_id}
        if ranges:
            reply["valueRanges"] = [self._value_range(book, r, *options) for r in ranges]
        return reply

    def _value_range(self, book, rng, major, value_render, date_render) -> dict:
        sheet, bounds = self._resolve(book, rng)
        r0, c0, r1, c1 = self._clip(sheet, bounds, rng)
        reply = {"range": _a1(sheet, r0, c0, r1, c1), "majorDimension": major}
        values = _read_block(sheet, r0, c0, r1, c1, major, value_render, date_render)
        if values:
            reply["values"] = values
        return reply

    # ------------------------------------------------------------------ values.update / batchUpdate

    def _values_update(self, book: Book, groups, query, data) -> dict:
        input_option = _input_option(_one(query, "valueInputOption"))
        plan = self._plan_write(book, groups["rng"], data, "data")
        reply = self._apply_write(book, plan, input_option)
        return self._with_response_values(book, reply, query)

    def _values_batch_update(self, book: Book, groups, query, data) -> dict:
        input_option = _input_option(data.get("valueInputOption"))
        plans = []
        for i, item in enumerate(data.get("data") or []):
            if not item.get("range"):
                raise _bad(f"Invalid data[{i}]: Missing range.")
            plans.append(self._plan_write(book, item["range"], item, f"data[{i}]"))
        responses = [self._apply_write(book, plan, input_option) for plan in plans]
        if data.get("includeValuesInResponse"):
            response_query = {
                "responseValueRenderOption": [data.get("responseValueRenderOption")],
                "responseDateTimeRenderOption": [data.get("responseDateTimeRenderOption")],
                "includeValuesInResponse": ["true"],
            }
            responses = [self._with_response_values(book, r, response_query) for r in responses]
        reply = {"spreadsheetId": book.spreadsheet_id}
        totals = {
            "totalUpdatedRows": sum(r.get("updatedRows", 0) for r in responses),
            "totalUpdatedColumns": sum(r.get("updatedColumns", 0) for r in responses),
            "totalUpdatedCells": sum(r.get("updatedCells", 0) for r in responses),
            "totalUpdatedSheets": len({id(p["sheet"]) for p in plans if p["cells"]}),
        }
        reply |= {k: v for k, v in totals.items() if v}  # proto3 JSON drops zeros
        if responses:
            reply["responses"] = responses
        return reply

    def _plan_write(self, book: Book, rng: str, data: dict, where: str) -> dict:
        """Check a write fully before anything changes: batches are all-or-nothing."""
        sheet, (r0, c0, r1, c1) = self._resolve(book, rng)
        matrix = _matrix(data.get("values"), data.get("majorDimension"), where)
        n_rows = len(matrix)
        n_cols = max((len(row) for row in matrix), default=0)
        anchor = (r1, c1) == (r0 + 1, c0 + 1)  # "A1" is where to start, not a bound
        if not anchor:
            requested = _a1(sheet, r0, c0, r1, c1)
            if r1 is not None and r0 + n_rows > r1:
                raise _bad(
                    f"Requested writing within range [{requested}], but tried writing to row "
                    f"[{r1 + 1}]"
                )
            if c1 is not None and c0 + n_cols > c1:
                raise _bad(
                    f"Requested writing within range [{requested}], but tried writing to column "
                    f"[{col_letters(c1)}]"
                )
        end_r, end_c = r0 + max(n_rows, 1), c0 + max(n_cols, 1)
        if end_r > sheet.rows or end_c > sheet.cols:
            raise _bad(
                f"Range ({_a1(sheet, r0, c0, end_r, end_c)}) exceeds grid limits. "
                f"Max rows: {sheet.rows}, max columns: {sheet.cols}"
            )
        cells = [
            (r0 + i, c0 + j, v)
            for i, row in enumerate(matrix)
            for j, v in enumerate(row)
            if v is not None
        ]
        return {"sheet": sheet, "r0": r0, "c0": c0, "rows": n_rows, "cols": n_cols, "cells": cells}

    def _apply_write(self, book: Book, plan: dict, input_option: str) -> dict:
        sheet = plan["sheet"]
        make = _raw_cell if input_option == "RAW" else _user_entered_cell
        for r, c, value in plan["cells"]:
            _put(sheet, r, c, make(value))
        reply = {"spreadsheetId": book.spreadsheet_id}
        r0, c0 = plan["r0"], plan["c0"]
        if plan["rows"] and plan["cols"]:
            reply["updatedRange"] = _a1(sheet, r0, c0, r0 + plan["rows"], c0 + plan["cols"])
        counts = {
            "updatedRows": len({r for r, _, _ in plan["cells"]}),
            "updatedColumns": len({c for _, c, _ in plan["cells"]}),
            "updatedCells": len(plan["cells"]),
        }
        return reply | {k: v for k, v in counts.items() if v}

    def _with_response_values(self, book: Book, reply: dict, query: dict) -> dict:
        if (_one(query, "includeValuesInResponse") or "").lower() != "true":
            return reply
        value_render = _enum(
            _one(query, "responseValueRenderOption"),
            "response_value_render_option",
            "ValueRenderOption",
            ("FORMATTED_VALUE", "UNFORMATTED_VALUE", "FORMULA"),
            "FORMATTED_VALUE",
        )
        date_render = _enum(
            _one(query, "responseDateTimeRenderOption"),
            "response_date_time_render_option",
            "DateTimeRenderOption",
            ("SERIAL_NUMBER", "FORMATTED_STRING"),
            "SERIAL_NUMBER",
        )
        if "updatedRange" in reply:
            data = self._value_range(book, reply["updatedRange"], "ROWS", value_render, date_render)
            reply["updatedData"] = data
        return reply

    # ------------------------------------------------------------------ values.append

    def _values_append(self, book: Book, groups, query, data) -> dict:
        input_option = _input_option(_one(query, "valueInputOption"))
        insert = _enum(
            _one(query, "insertDataOption"),
            "insert_data_option",
            "InsertDataOption",
            ("OVERWRITE", "INSERT_ROWS"),
            "OVERWRITE",
        )
        rng = groups["rng"]
        sheet, bounds = self._resolve(book, rng)
        r0, c0, r1, c1 = self._clip(sheet, bounds, rng)
        single = bounds[2:] == (bounds[0] + 1, bounds[1] + 1)
        table = _detect_table(sheet, r0, c0, sheet.cols if single else c1)
        matrix = _matrix(data.get("values"), data.get("majorDimension"), "data")
        n_rows = len(matrix)
        n_cols = max((len(row) for row in matrix), default=0)
        start_r, start_c = (table[2], table[1]) if table else (r0, c0)
        grow_rows = n_rows if insert == "INSERT_ROWS" else max(0, start_r + n_rows - sheet.rows)
        grow_cols = max(0, start_c + n_cols - sheet.cols)
        if grow_rows or grow_cols:
            extra = (sheet.rows + grow_rows) * (sheet.cols + grow_cols) - sheet.rows * sheet.cols
            if book.total_cells() + extra > self.cell_limit:
                raise _bad(self._cell_limit_message())
        if insert == "INSERT_ROWS" and n_rows:
            _shift_rows(sheet, start_r, n_rows)
            sheet.rows += n_rows
        else:
            sheet.rows += grow_rows
        sheet.cols += grow_cols
        plan = self._plan_write(
            book,
            f"{quote_title(sheet.title)}!{cells_a1(start_r, start_c, start_r + 1, start_c + 1)}",
            data,
            "data",
        )
        reply = {"spreadsheetId": book.spreadsheet_id}
        if table:
            reply["tableRange"] = _a1(sheet, *table)
        updates = self._apply_write(book, plan, input_option)
        reply["updates"] = self._with_response_values(book, updates, query)
        return reply

    # ------------------------------------------------------------------ values.clear / batchClear

    def _values_clear(self, book: Book, groups, query, data) -> dict:
        return {
            "spreadsheetId": book.spreadsheet_id,
            "clearedRange": self._clear(book, groups["rng"]),
        }

    def _values_batch_clear(self, book: Book, groups, query, data) -> dict:
        ranges = data.get("ranges") or []
        for rng in ranges:  # check them all first: the batch is all-or-nothing
            sheet, bounds = self._resolve(book, rng)
            self._clip(sheet, bounds, rng)
        cleared = [self._clear(book, rng) for rng in ranges]
        reply = {"spreadsheetId": book.spreadsheet_id}
        if cleared:
            reply["clearedRanges"] = cleared
        return reply

    def _clear(self, book: Book, rng: str) -> str:
        sheet, bounds = self._resolve(book, rng)
        r0, c0, r1, c1 = self._clip(sheet, bounds, rng)
        _clear_block(sheet, r0, c0, r1, c1)
        return _a1(sheet, r0, c0, r1, c1)

    # ------------------------------------------------------------------ helpers

    def _resolve(self, book: Book, rng: str) -> tuple[Sheet, tuple]:
        """A1 text -> (sheet, bounds); 400 "Unable to parse range" like the API."""
        try:
            title, part = split_sheet(rng)
        except ValueError:
            raise _bad(f"Unable to parse range: {rng}") from None
        if title is None:
            sheet = book.sheet_by_title(part)  # a bare word is a sheet title first
            if sheet is not None:
                return sheet, (0, 0, None, None)
            sheet, part = book.sheets[0], part
        else:
            sheet = book.sheet_by_title(title)
            if sheet is None:
                raise _bad(f"Unable to parse range: {rng}")
        if part is None:
            return sheet, (0, 0, None, None)
        try:
            return sheet, parse_cells(part)
        except ValueError:
            raise _bad(f"Unable to parse range: {rng}") from None

    @staticmethod
    def _clip(sheet: Sheet, bounds: tuple, rng: str) -> tuple[int, int, int, int]:
        r0, c0, r1, c1 = bounds
        if r0 >= sheet.rows or c0 >= sheet.cols:
            raise _bad(
                f"Range ({_a1(sheet, r0, c0, r1, c1)}) exceeds grid limits. "
                f"Max rows: {sheet.rows}, max columns: {sheet.cols}"
            )
        r1 = sheet.rows if r1 is None else min(r1, sheet.rows)
        c1 = sheet.cols if c1 is None else min(c1, sheet.cols)
        return r0, c0, r1, c1

    def _sheet(self, spreadsheet_id: str, title: str) -> Sheet:
        book = self._books.get(spreadsheet_id)
        if book is None:
            raise KeyError(f"no spreadsheet {spreadsheet_id}")
        sheet = book.sheet_by_title(title)
        if sheet is None:
            raise KeyError(f"no sheet {title!r} in {spreadsheet_id}")
        return sheet

    def _grow(self, book: Book, sheet: Sheet, rows: int, cols: int) -> None:
        new_rows, new_cols = max(sheet.rows, rows), max(sheet.cols, cols)
        extra = new_rows * new_cols - sheet.rows * sheet.cols
        if book.total_cells() + extra > self.cell_limit:
            raise ValueError(self._cell_limit_message())
        sheet.rows, sheet.cols = new_rows, new_cols

    @staticmethod
    def _person_cell(value, user_entered: bool) -> Cell | None:
        if isinstance(value, dt.datetime):
            return Cell(_json_number(_serial(value)), "datetime")
        if isinstance(value, dt.date):
            return Cell(_json_number(_serial(dt.datetime.combine(value, dt.time()))), "date")
        return _user_entered_cell(value) if user_entered else _raw_cell(value)

    def _grid_range_a1(self, grid_range: dict) -> str:
        r0 = grid_range.get("startRowIndex", 0)
        c0 = grid_range.get("startColumnIndex", 0)
        return cells_a1(r0, c0, grid_range.get("endRowIndex"), grid_range.get("endColumnIndex"))

    def _cell_limit_message(self) -> str:
        return (
            "This action would increase the number of cells in the workbook above the limit "
            f"of {self.cell_limit} cells."
        )

    def _new_sheet_id(self) -> int:
        return secrets.randbelow(2**31 - 1) + 1

    @staticmethod
    def _free_title(book: Book) -> str:
        n = len(book.sheets) + 1
        while book.sheet_by_title(f"Sheet{n}"):
            n += 1
        return f"Sheet{n}"


# --------------------------------------------------------------------------- module helpers


class _Injected(Exception):
    """A failure asked for with fail_next()."""

    def __init__(self, status: int):
        super().__init__(status)
        self.status = status

    def response(self):
        if self.status == 502:  # Google's front end answers 502 with an HTML page
            return 502, _HTML_502, {}
        message, status = _INJECTED.get(self.status, ("Backend Error", "UNKNOWN"))
        return self.status, ApiError(self.status, message, status).payload(), {}


def _quota_error(is_write: bool, limit: int) -> ApiError:
    metric = "Write requests" if is_write else "Read requests"
    short = "write_requests" if is_write else "read_requests"
    limit_name = "WriteRequestsPerMinutePerUser" if is_write else "ReadRequestsPerMinutePerUser"
    message = (
        f"Quota exceeded for quota metric '{metric}' and limit '{metric} per minute per user' "
        f"of service 'sheets.googleapis.com' for consumer 'project_number:{PROJECT_NUMBER}'."
    )
    details = [
        {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "RATE_LIMIT_EXCEEDED",
            "domain": "googleapis.com",
            "metadata": {
                "quota_metric": f"sheets.googleapis.com/{short}",
                "quota_limit": limit_name,
                "quota_limit_value": str(limit),
                "quota_location": "global",
                "consumer": f"projects/{PROJECT_NUMBER}",
                "service": "sheets.googleapis.com",
            },
        },
        {
            "@type": "type.googleapis.com/google.rpc.Help",
            "links": [
                {
                    "description": "Request a higher quota limit.",
                    "url": "https://cloud.google.com/docs/quotas/help/request_increase",
                }
            ],
        },
    ]
    return ApiError(429, message, details=details)


def _oauth_error(error: str, description: str) -> dict:
    return {"error": error, "error_description": description}


def _b64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _one(params: dict, name: str) -> str | None:
    values = params.get(name)
    return values[0] if values else None


def _enum(value, field_name: str, type_name: str, allowed: tuple, default: str) -> str:
    if value in (None, "") or value.endswith("_UNSPECIFIED"):
        return default
    if value not in allowed:
        raise _bad(
            f"Invalid value at '{field_name}' "
            f'(type.googleapis.com/google.apps.sheets.v4.{type_name}), "{value}"'
        )
    return value


def _input_option(value) -> str:
    if value in (None, "", "INPUT_VALUE_OPTION_UNSPECIFIED"):
        raise _bad("'valueInputOption' is required but not specified")
    return _enum(value, "value_input_option", "ValueInputOption", ("RAW", "USER_ENTERED"), "")


def _read_options(query: dict) -> tuple[str, str, str]:
    major = _enum(
        _one(query, "majorDimension"), "major_dimension", "Dimension", ("ROWS", "COLUMNS"), "ROWS"
    )
    value_render = _enum(
        _one(query, "valueRenderOption"),
        "value_render_option",
        "ValueRenderOption",
        ("FORMATTED_VALUE", "UNFORMATTED_VALUE", "FORMULA"),
        "FORMATTED_VALUE",
    )
    date_render = _enum(
        _one(query, "dateTimeRenderOption"),
        "date_time_render_option",
        "DateTimeRenderOption",
        ("SERIAL_NUMBER", "FORMATTED_STRING"),
        "SERIAL_NUMBER",
    )
    return major, value_render, date_render


def _matrix(values, major, where: str) -> list[list]:
    """Request values as rows (COLUMNS input transposed); checks every cell's type."""
    values = values or []
    if not isinstance(values, list):
        raise _bad(
            f"Invalid value at '{where}.values' (type.googleapis.com/google.protobuf.ListValue)"
        )
    for i, line in enumerate(values):
        if not isinstance(line, list):
            raise _bad(
                f"Invalid value at '{where}.values[{i}]' "
                f"(type.googleapis.com/google.protobuf.ListValue), {json.dumps(line)}"
            )
        for j, value in enumerate(line):
            if isinstance(value, (dict, list)):
                kind = "struct_value" if isinstance(value, dict) else "list_value"
                raise _bad(f"Invalid values[{i}][{j}]: {kind} {json.dumps(value)}")
    major = _enum(major, "major_dimension", "Dimension", ("ROWS", "COLUMNS"), "ROWS")
    if major == "ROWS":
        return values
    height = max((len(col) for col in values), default=0)
    return [[col[i] if i < len(col) else None for col in values] for i in range(height)]


def _detect_table(sheet: Sheet, r0: int, c0: int, c1: int) -> tuple | None:
    """The append "table": first run of consecutive non-empty rows from r0, in columns [c0, c1).

    The run may continue past the requested rows (appending to "A1:D1" finds
    the whole table), and it stops at the first empty row, like the real API.
    """
    rows = _rows_in(sheet, r0, sheet.rows, c0, c1)
    if not rows:
        return None
    present = set(rows)
    first = last = rows[0]
    while last + 1 in present:
        last += 1
    cols = [c for r in range(first, last + 1) for c in sheet.cells[r] if c0 <= c < c1]
    return first, min(cols), last + 1, max(cols) + 1


def _extended_value_cell(value: dict | None) -> Cell | None:
    if not value:
        return None
    if "formulaValue" in value:
        return _formula_cell(value["formulaValue"])
    if "numberValue" in value:
        return Cell(value["numberValue"], "number")
    if "boolValue" in value:
        return Cell(bool(value["boolValue"]), "bool")
    if "stringValue" in value:
        return Cell(value["stringValue"], "text") if value["stringValue"] != "" else None
    return None


def _range_key(grid_range: dict) -> tuple:
    return (
        grid_range.get("startRowIndex", 0),
        grid_range.get("endRowIndex") or math.inf,
        grid_range.get("startColumnIndex", 0),
        grid_range.get("endColumnIndex") or math.inf,
    )


def _covers(outer: tuple, inner: tuple) -> bool:
    return (
        outer[0] <= inner[0]
        and inner[1] <= outer[1]
        and outer[2] <= inner[2]
        and (inner[3] <= outer[3])
    )


def _a1(sheet: Sheet, r0: int, c0: int, r1: int | None, c1: int | None) -> str:
    return f"{quote_title(sheet.title)}!{cells_a1(r0, c0, r1, c1)}"


# --------------------------------------------------------------------------- HTTP plumbing


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, fake: FakeSheets):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake

    def handle_error(self, request, client_address):
        pass  # a client hanging up mid-request is not the test's business: log nothing


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as requests' pooled sessions expect
    server: _Server

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    def do_PUT(self):
        self._handle("PUT")

    def do_DELETE(self):
        self._handle("DELETE")

    def do_PATCH(self):
        self._handle("PATCH")

    def log_message(self, format, *args):
        pass  # quiet: tests and benchmarks read their own output

    def _handle(self, method: str) -> None:
        body, too_big = self._read_body()
        status, payload, headers = self.server.fake._respond(
            method, self.path, self.headers, body, too_big
        )
        if isinstance(payload, str):
            data, content_type = payload.encode(), "text/html; charset=UTF-8"
        else:
            data = json.dumps(payload, ensure_ascii=False, indent=2).encode()
            content_type = "application/json; charset=UTF-8"
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _read_body(self) -> tuple[bytes, bool]:
        length = int(self.headers.get("Content-Length") or 0)
        if length <= MAX_BODY_BYTES:
            return self.rfile.read(length), False
        # drain it so the client gets to read our answer instead of a reset
        while length > 0:
            chunk = self.rfile.read(min(length, 1 << 20))
            if not chunk:
                break
            length -= len(chunk)
        return b"", True
