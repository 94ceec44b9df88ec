"""A local Airtable Web API server for tests and benchmarks.

`FakeAirtable()` serves HTTP on 127.0.0.1 (stdlib `ThreadingHTTPServer` in a daemon
thread) and answers the way api.airtable.com is documented to (see
/work/shared/API-FACTS.md), so the real client runs against it unchanged:

    with FakeAirtable() as fake:
        api = pyairtable.Api(fake.token, endpoint_url=fake.url, timeout=(2, 10))

What it reproduces: records (list with pages, expiring offsets, filterByFormula,
sort, fields[], maxRecords, returnFieldsByFieldId, POST listRecords; get; create;
PATCH/PUT update; upsert on fieldsToMergeOn; delete; at most 10 records a write,
each request all or nothing); the metadata API (list and create tables, create and
rename fields, link fields with their inverse); per-type validation with
typecast; computed fields (formula, rollup, count, lookup, autoNumber, created and
last-modified time); the per-base and per-token rate limits with their penalty,
on the real clock or a test's (`clock=`); injected 5xx answers; and requests
held unanswered from a given write on, so a crash test kills its client there.
Error bodies are Airtable's. Where Airtable's exact
answer is not documented, the choice made here is marked (unverified).

The helper methods (`create_table`, `person_edit`, `person_create`, ...) play the
people who use the base in Airtable's UI: they change the state directly, not
through HTTP, and are neither counted nor rate limited.
"""

from __future__ import annotations

import collections
import copy
import json
import math
import operator
import random
import re
import string
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.fakes.holding import RequestHold

HOST = "127.0.0.1"
DEFAULT_TOKEN = "patTEST.secret"
DEFAULT_BASE = "appTESTBASE000001"
MAX_RECORDS_PER_WRITE = 10
MAX_PAGE_SIZE = 100
MAX_URL_LENGTH = 16_000
MAX_MERGE_FIELDS = 3
ID_ALPHABET = string.ascii_letters + string.digits
ID_LENGTH = 14
JSON_TYPE = "application/json; charset=utf-8"
TEXT_TYPE = "text/plain; charset=utf-8"
HTML_TYPE = "text/html; charset=utf-8"
SHUTDOWN_POLL_SECONDS = 0.01

WRITE_KINDS = ("create", "update", "upsert", "replace", "delete")

# ----------------------------------------------------------------------------- field types

TEXT_TYPES = frozenset(
    {"singleLineText", "multilineText", "email", "phoneNumber", "url", "richText"}
)
NUMBER_TYPES = frozenset({"number", "currency", "percent", "rating", "duration"})
COMPUTED_TYPES = frozenset(
    {
        "formula",
        "rollup",
        "count",
        "multipleLookupValues",
        "autoNumber",
        "createdTime",
        "lastModifiedTime",
    }
)
WRITABLE_TYPES = (
    TEXT_TYPES
    | NUMBER_TYPES
    | {
        "checkbox",
        "date",
        "dateTime",
        "singleSelect",
        "multipleSelects",
        "multipleRecordLinks",
        "multipleAttachments",
    }
)
# Airtable reports lookups as "multipleLookupValues"; people say "lookup".
TYPE_ALIASES = {"lookup": "multipleLookupValues"}
# Types the meta API accepts for a table's first (primary) field.
PRIMARY_TYPES = (TEXT_TYPES - {"richText"}) | {
    "number",
    "currency",
    "percent",
    "date",
    "dateTime",
    "duration",
}
# In the UI a person may also make the primary field computed.
PERSON_PRIMARY_TYPES = PRIMARY_TYPES | {"formula", "autoNumber", "createdTime"}
# Airtable's documented list for performUpsert: text, long text, number, single and
# multiple select, date (email/phone/url are text fields underneath).
MERGE_KEY_TYPES = (TEXT_TYPES - {"richText"}) | {
    "number",
    "currency",
    "percent",
    "singleSelect",
    "multipleSelects",
    "date",
    "dateTime",
}
DATE_FORMATS = {
    "local": "l",
    "friendly": "LL",
    "us": "M/D/YYYY",
    "european": "D/M/YYYY",
    "iso": "YYYY-MM-DD",
}
TIME_FORMATS = {"12hour": "h:mma", "24hour": "HH:mm"}


def new_id(prefix: str) -> str:
    """An Airtable-style id: a type prefix ("rec", "fld", ...) and 14 letters or digits."""
    return prefix + "".join(random.choices(ID_ALPHABET, k=ID_LENGTH))


def utc_now() -> datetime:
    """Now, to the millisecond: Airtable's timestamps carry milliseconds, no more."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def iso(moment: datetime) -> str:
    """Airtable's timestamp format: 2026-11-23T10:00:00.000Z."""
    moment = moment.astimezone(UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"


def parse_datetime(text: str) -> datetime | None:
    """An ISO date or date-time as an aware UTC datetime (no zone means UTC), else None."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


# ----------------------------------------------------------------------------- error answers


class AirtableError(Exception):
    """An answer other than 200: the status and the body Airtable sends with it."""

    def __init__(self, status: int, body: Any, content_type: str = JSON_TYPE):
        super().__init__(f"{status} {json.dumps(body, ensure_ascii=False)}")
        self.status = status
        self.body = body
        self.content_type = content_type

    def answer(self) -> tuple[int, str, bytes]:
        return self.status, self.content_type, encode_body(self.body)


def typed_error(status: int, error_type: str, message: str) -> AirtableError:
    return AirtableError(status, {"error": {"type": error_type, "message": message}})


def unprocessable(error_type: str, message: str) -> AirtableError:
    return typed_error(422, error_type, message)


def authentication_required() -> AirtableError:
    return typed_error(401, "AUTHENTICATION_REQUIRED", "Authentication required")


def model_not_found() -> AirtableError:
    return typed_error(
        403,
        "INVALID_PERMISSIONS_OR_MODEL_NOT_FOUND",
        "Invalid permissions, or the requested model was not found. Check that both your user"
        " and your token have the required permissions, and that the model names and/or ids"
        " are correct.",
    )


def not_found() -> AirtableError:
    # Airtable's bare-string form, used for unknown tables and unknown paths.
    return AirtableError(404, {"error": "NOT_FOUND"})


def record_not_found(record_id: str) -> AirtableError:
    return typed_error(404, "MODEL_ID_NOT_FOUND", f"Could not find record {record_id}")


def rate_limited() -> AirtableError:
    # The only Airtable error with an array envelope.
    message = "Rate limit exceeded. Please try again later"
    return AirtableError(429, {"errors": [{"error": "RATE_LIMIT_REACHED", "message": message}]})


def invalid_request_body(message: str) -> AirtableError:
    return unprocessable("INVALID_REQUEST_BODY", message)


def invalid_parameters() -> AirtableError:
    return unprocessable(
        "INVALID_REQUEST_UNKNOWN",
        "Invalid request: parameter validation failed. Check your request data.",
    )


def unknown_field_name(name: str) -> AirtableError:
    return unprocessable("UNKNOWN_FIELD_NAME", f'Unknown field name: "{name}"')


def invalid_value(field_name: str) -> AirtableError:
    return unprocessable(
        "INVALID_VALUE_FOR_COLUMN", f'Field "{field_name}" cannot accept the provided value'
    )


def computed_field_written(field_name: str) -> AirtableError:
    return unprocessable(
        "INVALID_VALUE_FOR_COLUMN",
        f'Field "{field_name}" cannot accept a value because the field is computed',
    )


def too_many_records() -> AirtableError:
    # (unverified) type; the limit of 10 is documented.
    return unprocessable(
        "INVALID_RECORDS",
        f"Too many records: a request may write at most {MAX_RECORDS_PER_WRITE} records",
    )


def missing_fields_key() -> AirtableError:
    return unprocessable(
        "INVALID_REQUEST_MISSING_FIELDS", 'Could not find field "fields" in the request body'
    )


def invalid_filter(detail: str) -> AirtableError:
    return unprocessable(
        "INVALID_FILTER_BY_FORMULA", f"The formula for filtering records is invalid: {detail}"
    )


def iterator_not_available() -> AirtableError:
    # (unverified) message; the type is documented.
    return unprocessable(
        "LIST_RECORDS_ITERATOR_NOT_AVAILABLE",
        "The offset has expired or is unknown: restart the listing from the first page",
    )


def invalid_field_options(field_type: str, detail: str) -> AirtableError:
    # (unverified) type and message.
    return unprocessable(
        "INVALID_FIELD_TYPE_OPTIONS_FOR_CREATE",
        f"Invalid options for a field of type {field_type}: {detail}",
    )


def encode_body(body: Any) -> bytes:
    if isinstance(body, str):
        return body.encode()
    return json.dumps(body, ensure_ascii=False).encode()


INJECTED_ANSWERS: dict[int, tuple[str, Any]] = {
    500: (JSON_TYPE, {"error": {"type": "SERVER_ERROR", "message": "Server error"}}),
    502: (
        HTML_TYPE,
        "<html><head><title>502 Bad Gateway</title></head>"
        "<body><center><h1>502 Bad Gateway</h1></center></body></html>\n",
    ),
    503: (
        JSON_TYPE,
        {
            "error": {
                "type": "SERVICE_UNAVAILABLE",
                "message": "The service is temporarily unavailable. Please retry shortly.",
            }
        },
    ),
    504: (
        HTML_TYPE,
        "<html><head><title>504 Gateway Time-out</title></head>"
        "<body><center><h1>504 Gateway Time-out</h1></center></body></html>\n",
    ),
}

# ----------------------------------------------------------------------------- formula language
#
# Airtable's formula language, as much of it as filterByFormula and formula/rollup
# fields need here: a tokenizer, a recursive-descent parser to a small tree, and an
# evaluator over that tree. Nothing is ever passed to Python's eval.

INVALID_FORMULA = "Invalid formula. Please check your formula text."


class FormulaSyntaxError(ValueError):
    """The formula text does not parse; the message is what Airtable says about it."""


class FormulaEvalError(Exception):
    """The formula cannot be computed for this record: Airtable shows #ERROR!."""


@dataclass(frozen=True)
class Token:
    kind: str  # number, string, field, name, operator
    value: Any
    start: int  # where its text begins and ends in the formula
    end: int

    def opens_call(self) -> bool:
        return self.kind == "operator" and self.value == "("


@dataclass(frozen=True)
class Literal:
    value: Any


@dataclass(frozen=True)
class FieldRef:
    name: str  # {Field Name}


@dataclass(frozen=True)
class Name:
    name: str  # a bare word: a one-word field name, or `values` in a rollup


@dataclass(frozen=True)
class Call:
    function: str
    args: tuple[Any, ...]


@dataclass(frozen=True)
class BinaryOp:
    operator: str
    left: Any
    right: Any


@dataclass(frozen=True)
class Negate:
    operand: Any


_TOKEN = re.compile(
    r"""\s*(?:
        (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
      | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<field>\{(?:[^}\\]|\\.)*\})
      | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
      | (?P<operator><=|>=|!=|[=<>&+\-*/(),])
    )""",
    re.VERBOSE,
)
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)
_ESCAPED_CHARACTERS = {"n": "\n", "t": "\t", "r": "\r"}


def _unescape(text: str) -> str:
    return _ESCAPE.sub(lambda match: _ESCAPED_CHARACTERS.get(match[1], match[1]), text)


def _token_value(kind: str, raw: str) -> Any:
    if kind == "number":
        return int(raw) if raw.isdigit() else float(raw)
    if kind in ("string", "field"):
        return _unescape(raw[1:-1])
    return raw


def tokenize(text: str) -> list[Token]:
    tokens = []
    position, end = 0, len(text.rstrip())
    while position < end:
        match = _TOKEN.match(text, position)
        if match is None:
            raise FormulaSyntaxError(INVALID_FORMULA)
        kind = match.lastgroup
        tokens.append(Token(kind, _token_value(kind, match[kind]), match.start(kind), match.end()))
        position = match.end()
    return tokens


def rewrite_references(text: str, replacement: Callable[[str], str | None]) -> str:
    """The formula text with each field reference replaced (None keeps it as it is)."""
    tokens = tokenize(text)
    pieces, copied = [], 0
    for index, token in enumerate(tokens):
        calls_function = index + 1 < len(tokens) and tokens[index + 1].opens_call()
        if token.kind == "field" or (token.kind == "name" and not calls_function):
            new_text = replacement(token.value)
            if new_text is not None:
                pieces += [text[copied : token.start], new_text]
                copied = token.end
    return "".join(pieces) + text[copied:]


def braced(name: str) -> str:
    return "{" + name.replace("}", "\\}") + "}"


# name -> (fewest arguments, most arguments or None for any number)
FUNCTION_ARITY: dict[str, tuple[int, int | None]] = {
    "AND": (1, None),
    "OR": (1, None),
    "NOT": (1, 1),
    "IF": (2, 3),
    "BLANK": (0, 0),
    "TRUE": (0, 0),
    "FALSE": (0, 0),
    "ERROR": (0, 0),
    "LOWER": (1, 1),
    "UPPER": (1, 1),
    "TRIM": (1, 1),
    "LEN": (1, 1),
    "FIND": (2, 3),
    "CONCATENATE": (1, None),
    "ARRAYJOIN": (1, 2),
    "RECORD_ID": (0, 0),
    "CREATED_TIME": (0, 0),
    "LAST_MODIFIED_TIME": (0, None),
    "NOW": (0, 0),
    "TODAY": (0, 0),
    "IS_AFTER": (2, 2),
    "IS_BEFORE": (2, 2),
    "DATETIME_PARSE": (1, 3),
    "SUM": (1, None),
    "COUNT": (1, None),
    "COUNTA": (1, None),
    "COUNTALL": (1, None),
    "MAX": (1, None),
    "MIN": (1, None),
    "AVERAGE": (1, None),
    "ROUND": (1, 2),
    "ABS": (1, 1),
}
COMPARISON_OPERATORS = ("=", "!=", "<", ">", "<=", ">=")


class _Parser:
    """Recursive descent, lowest precedence first: comparison, &, + -, * /, unary -."""

    def __init__(self, tokens: list[Token]):
        self.tokens = tokens
        self.position = 0

    def parse(self) -> Any:
        if not self.tokens:
            raise FormulaSyntaxError(INVALID_FORMULA)
        node = self.comparison()
        if self.position != len(self.tokens):
            raise FormulaSyntaxError(INVALID_FORMULA)
        return node

    def comparison(self) -> Any:
        return self.binary(COMPARISON_OPERATORS, self.concatenation)

    def concatenation(self) -> Any:
        return self.binary(("&",), self.additive)

    def additive(self) -> Any:
        return self.binary(("+", "-"), self.multiplicative)

    def multiplicative(self) -> Any:
        return self.binary(("*", "/"), self.unary)

    def binary(self, operators: tuple[str, ...], operand: Callable[[], Any]) -> Any:
        node = operand()
        while (symbol := self.accept(operators)) is not None:
            node = BinaryOp(symbol, node, operand())
        return node

    def unary(self) -> Any:
        if self.accept(("-",)):
            return Negate(self.unary())
        if self.accept(("+",)):
            return self.unary()
        return self.primary()

    def primary(self) -> Any:
        token = self.next_token()
        if token.kind in ("number", "string"):
            return Literal(token.value)
        if token.kind == "field":
            return FieldRef(token.value)
        if token.kind == "name":
            return self.call(token.value) if self.accept(("(",)) else Name(token.value)
        if token.value == "(":
            node = self.comparison()
            self.expect(")")
            return node
        raise FormulaSyntaxError(INVALID_FORMULA)

    def call(self, name: str) -> Call:
        function = name.upper()
        args = []
        if not self.accept((")",)):
            args.append(self.comparison())
            while self.accept((",",)):
                args.append(self.comparison())
            self.expect(")")
        _check_call(function, args)
        return Call(function, tuple(args))

    def next_token(self) -> Token:
        if self.position >= len(self.tokens):
            raise FormulaSyntaxError(INVALID_FORMULA)
        token = self.tokens[self.position]
        self.position += 1
        return token

    def accept(self, operators: tuple[str, ...]) -> str | None:
        if self.position < len(self.tokens):
            token = self.tokens[self.position]
            if token.kind == "operator" and token.value in operators:
                self.position += 1
                return token.value
        return None

    def expect(self, operator: str) -> None:
        if self.accept((operator,)) is None:
            raise FormulaSyntaxError(INVALID_FORMULA)


def _check_call(function: str, args: list[Any]) -> None:
    if function not in FUNCTION_ARITY:
        raise FormulaSyntaxError(f"Unknown function names: {function}")
    fewest, most = FUNCTION_ARITY[function]
    if len(args) < fewest or (most is not None and len(args) > most):
        raise FormulaSyntaxError(INVALID_FORMULA)
    # LAST_MODIFIED_TIME({A}, {B}) names fields; it does not take their values.
    if function == "LAST_MODIFIED_TIME" and not all(
        isinstance(arg, FieldRef | Name) for arg in args
    ):
        raise FormulaSyntaxError(INVALID_FORMULA)


@lru_cache(maxsize=2048)
def parse_formula(text: str) -> Any:
    """The syntax tree of a formula; raises FormulaSyntaxError."""
    return _Parser(tokenize(text)).parse()


def referenced_names(node: Any) -> list[str]:
    """Field names (and bare words) a formula refers to, in order of appearance."""
    if isinstance(node, FieldRef | Name):
        return [node.name]
    if isinstance(node, BinaryOp):
        return referenced_names(node.left) + referenced_names(node.right)
    if isinstance(node, Negate):
        return referenced_names(node.operand)
    if isinstance(node, Call):
        return [name for arg in node.args for name in referenced_names(arg)]
    return []


class Scope:
    """What a formula can see. This base sees nothing; subclasses add a record or values."""

    def field(self, name: str) -> Any:
        raise FormulaEvalError(f"unknown field {name}")

    def word(self, name: str) -> Any:
        return self.field(name)

    def record_id(self) -> str:
        raise FormulaEvalError("no record here")

    def created_time(self) -> datetime:
        raise FormulaEvalError("no record here")

    def last_modified_time(self, field_names: list[str]) -> datetime | None:
        raise FormulaEvalError("no record here")


class ValuesScope(Scope):
    """A rollup's aggregation formula: `values` is the list of linked values."""

    def __init__(self, values: list[Any]):
        self.values = values

    def word(self, name: str) -> Any:
        if name.lower() == "values":
            return self.values
        return super().word(name)


def evaluate(node: Any, scope: Scope) -> Any:
    """The value of a formula tree: None (blank), str, int/float, bool, datetime or list."""
    if isinstance(node, Literal):
        return node.value
    if isinstance(node, FieldRef):
        return scope.field(node.name)
    if isinstance(node, Name):
        return scope.word(node.name)
    if isinstance(node, Negate):
        return -to_number(evaluate(node.operand, scope))
    if isinstance(node, BinaryOp):
        operation = BINARY_OPERATIONS[node.operator]
        return operation(evaluate(node.left, scope), evaluate(node.right, scope))
    if node.function in SCOPED_FUNCTIONS:
        return SCOPED_FUNCTIONS[node.function](node.args, scope)
    return VALUE_FUNCTIONS[node.function](*(evaluate(arg, scope) for arg in node.args))


# Plain decimal numbers only: float() would also take "nan", "inf" and "1_000".
NUMERIC_TEXT = re.compile(r"\s*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\s*")


def flatten(values: Iterable[Any]) -> list[Any]:
    flat = []
    for value in values:
        if isinstance(value, list):
            flat.extend(flatten(value))
        else:
            flat.append(value)
    return flat


def to_number(value: Any) -> int | float:
    """Arithmetic's view of a value: blank is 0, numeric text is its number."""
    if value is None:
        return 0
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        if not value.strip():
            return 0
        if NUMERIC_TEXT.fullmatch(value):
            return float(value)
    if isinstance(value, list) and len(value) == 1:
        return to_number(value[0])
    raise FormulaEvalError(f"not a number: {value!r}")


def to_text(value: Any) -> str:
    """Text's view of a value: blank is "", lists are joined with ", " as Airtable does."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, list):
        return ", ".join(to_text(item) for item in flatten(value) if item is not None)
    return str(value)


def to_datetime(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    if isinstance(value, str):
        if not value.strip():
            return None
        moment = parse_datetime(value)
        if moment is not None:
            return moment
    if isinstance(value, list) and len(value) == 1:
        return to_datetime(value[0])
    raise FormulaEvalError(f"not a date: {value!r}")


def is_truthy(value: Any) -> bool:
    if isinstance(value, float) and math.isnan(value):
        return False
    if isinstance(value, list):
        return any(is_truthy(item) for item in value)
    return bool(value)


def _is_numeric(value: Any) -> bool:
    if isinstance(value, int | float):
        return True
    return isinstance(value, str) and NUMERIC_TEXT.fullmatch(value) is not None


def _comparable(left: Any, right: Any) -> tuple[Any, Any]:
    """Bring two values to one type: dates if either is a date, numbers if both can be."""
    if isinstance(left, datetime) or isinstance(right, datetime):
        return to_datetime(left), to_datetime(right)
    numbers = [value for value in (left, right) if value is not None and value != ""]
    if any(isinstance(value, int | float) for value in numbers) and all(
        _is_numeric(value) for value in numbers
    ):
        return to_number(left), to_number(right)
    return to_text(left), to_text(right)


ORDERINGS: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    ">": operator.gt,
    "<=": operator.le,
    ">=": operator.ge,
}


def _compare(symbol: str) -> Callable[[Any, Any], bool]:
    def compare(left: Any, right: Any) -> bool:
        left, right = _comparable(left, right)
        if symbol in ("=", "!="):
            return (left == right) == (symbol == "=")
        if left is None or right is None:
            return False  # a blank date is neither before nor after anything
        return ORDERINGS[symbol](left, right)

    return compare


def _divide(left: Any, right: Any) -> float:
    numerator, denominator = to_number(left), to_number(right)
    if denominator == 0:
        # As in JavaScript, which Airtable's formulas follow: 0/0 is NaN, x/0 is ±Infinity.
        return math.nan if numerator == 0 else math.copysign(math.inf, numerator)
    return numerator / denominator


BINARY_OPERATIONS: dict[str, Callable[[Any, Any], Any]] = {
    "+": lambda left, right: to_number(left) + to_number(right),
    "-": lambda left, right: to_number(left) - to_number(right),
    "*": lambda left, right: to_number(left) * to_number(right),
    "/": _divide,
    "&": lambda left, right: to_text(left) + to_text(right),
    **{symbol: _compare(symbol) for symbol in COMPARISON_OPERATORS},
}


def _if(args: tuple[Any, ...], scope: Scope) -> Any:
    # Only the branch taken is evaluated: IF({Revenue}, {Profit} / {Revenue}, BLANK()).
    if is_truthy(evaluate(args[0], scope)):
        return evaluate(args[1], scope)
    return evaluate(args[2], scope) if len(args) > 2 else None


def _last_modified_time(args: tuple[Any, ...], scope: Scope) -> datetime | None:
    return scope.last_modified_time([arg.name for arg in args])


SCOPED_FUNCTIONS: dict[str, Callable[[tuple[Any, ...], Scope], Any]] = {
    "IF": _if,
    "AND": lambda args, scope: all(is_truthy(evaluate(arg, scope)) for arg in args),
    "OR": lambda args, scope: any(is_truthy(evaluate(arg, scope)) for arg in args),
    "RECORD_ID": lambda args, scope: scope.record_id(),
    "CREATED_TIME": lambda args, scope: scope.created_time(),
    "LAST_MODIFIED_TIME": _last_modified_time,
}


def _numbers(values: tuple[Any, ...]) -> list[int | float]:
    return [
        to_number(value)
        for value in flatten(values)
        if value is not None and not isinstance(value, datetime) and _is_numeric(value)
    ]


def _find(needle: Any, haystack: Any, start: Any = 0) -> int:
    """1-based position of needle in haystack, 0 when absent (Airtable's FIND)."""
    offset = max(int(to_number(start)) - 1, 0)
    return to_text(haystack).find(to_text(needle), offset) + 1


def _datetime_parse(text: Any, *_format_and_locale: Any) -> datetime:
    # Only ISO text: the format argument (moment.js tokens) is accepted and ignored.
    moment = to_datetime(text)
    if moment is None:
        raise FormulaEvalError("DATETIME_PARSE of a blank value")
    return moment


def _is_after(left: Any, right: Any) -> bool:
    left, right = to_datetime(left), to_datetime(right)
    return left is not None and right is not None and left > right


def _is_before(left: Any, right: Any) -> bool:
    return _is_after(right, left)


def _round(value: Any, precision: Any = 0) -> float:
    # Airtable rounds halves away from zero, unlike Python's round().
    scale = 10 ** int(to_number(precision))
    number = to_number(value)
    return math.copysign(math.floor(abs(number) * scale + 0.5) / scale, number)


def _average(numbers: list[int | float]) -> float:
    return sum(numbers) / len(numbers) if numbers else 0


def _error() -> Any:
    raise FormulaEvalError("ERROR()")


def _today() -> datetime:
    return utc_now().replace(hour=0, minute=0, second=0, microsecond=0)


VALUE_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "NOT": lambda value: not is_truthy(value),
    "BLANK": lambda: None,
    "TRUE": lambda: True,
    "FALSE": lambda: False,
    "ERROR": _error,
    "LOWER": lambda value: to_text(value).lower(),
    "UPPER": lambda value: to_text(value).upper(),
    "TRIM": lambda value: to_text(value).strip(),
    "LEN": lambda value: len(to_text(value)),
    "FIND": _find,
    "CONCATENATE": lambda *values: "".join(to_text(value) for value in values),
    "ARRAYJOIN": lambda values, separator=", ": to_text(separator).join(
        to_text(value) for value in flatten([values]) if value is not None
    ),
    "NOW": utc_now,
    "TODAY": _today,
    "IS_AFTER": _is_after,
    "IS_BEFORE": _is_before,
    "DATETIME_PARSE": _datetime_parse,
    "SUM": lambda *values: sum(_numbers(values)),
    "COUNT": lambda *values: len(_numbers(values)),
    "COUNTA": lambda *values: sum(1 for value in flatten(values) if value not in (None, "")),
    "COUNTALL": lambda *values: len(flatten(values)),
    "MAX": lambda *values: max(_numbers(values), default=0),
    "MIN": lambda *values: min(_numbers(values), default=0),
    "AVERAGE": lambda *values: _average(_numbers(values)),
    "ROUND": _round,
    "ABS": lambda value: abs(to_number(value)),
}
assert set(FUNCTION_ARITY) == set(SCOPED_FUNCTIONS) | set(VALUE_FUNCTIONS)


def to_cell(value: Any) -> Any:
    """A computed value as the API shows it; None when the cell is empty (left out)."""
    if value is None or value == "" or value == []:
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float):
        if math.isnan(value):
            return {"specialValue": "NaN"}
        if math.isinf(value):
            return {"specialValue": "Infinity" if value > 0 else "-Infinity"}
        return int(value) if value.is_integer() else value
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, list):
        cells = [cell for cell in (to_cell(item) for item in value) if cell is not None]
        return cells or None
    return value


ERROR_CELL = {"error": "#ERROR!"}

# ----------------------------------------------------------------------------- the data model


@dataclass
class Field:
    id: str
    name: str
    type: str
    options: dict[str, Any] = field(default_factory=dict)
    description: str | None = None
    # A formula's text, or a rollup's aggregation such as "SUM(values)". The meta API
    # shows a formula's text in options but never a rollup's aggregation.
    expression: str | None = None

    @property
    def computed(self) -> bool:
        return self.type in COMPUTED_TYPES

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "name": self.name, "type": self.type}
        if self.description:
            data["description"] = self.description
        if self.options:
            data["options"] = copy.deepcopy(self.options)
        return data


@dataclass
class Record:
    id: str
    created_time: datetime
    last_modified: datetime
    auto_number: int
    cells: dict[str, Any] = field(default_factory=dict)  # field id -> value; empty cells absent
    cell_modified: dict[str, datetime] = field(default_factory=dict)

    def touch(self, field_id: str, now: datetime) -> None:
        self.cell_modified[field_id] = now
        self.last_modified = now


@dataclass
class Table:
    id: str
    name: str
    fields: list[Field]
    description: str | None = None
    views: list[dict[str, Any]] = field(default_factory=list)
    records: dict[str, Record] = field(default_factory=dict)  # in creation order
    next_auto_number: int = 1

    @property
    def primary_field(self) -> Field:
        return self.fields[0]

    def find_field(self, key: str) -> Field | None:
        """A field by id or name, as the records API accepts either."""
        for candidate in self.fields:
            if key in (candidate.id, candidate.name):
                return candidate
        return None

    def field_named(self, name: str) -> Field | None:
        for candidate in self.fields:
            if candidate.name == name:
                return candidate
        return None

    def has_field_name(self, name: str) -> bool:
        # Airtable field names are unique regardless of case.
        return any(candidate.name.casefold() == name.casefold() for candidate in self.fields)

    def to_json(self, *, visible_field_ids: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "name": self.name}
        if self.description:
            data["description"] = self.description
        views = [dict(view) for view in self.views]
        if visible_field_ids:
            for view in views:
                view["visibleFieldIds"] = [each.id for each in self.fields]
        data.update(
            primaryFieldId=self.primary_field.id,
            fields=[each.to_json() for each in self.fields],
            views=views,
        )
        return data


@dataclass
class Base:
    id: str
    tables: dict[str, Table] = field(default_factory=dict)

    def table(self, key: str) -> Table | None:
        """A table by id or name (the records API accepts either)."""
        if key in self.tables:
            return self.tables[key]
        for table in self.tables.values():
            if table.name == key:
                return table
        return None

    def has_table_name(self, name: str) -> bool:
        return any(table.name.casefold() == name.casefold() for table in self.tables.values())


# ----------------------------------------------------------------------------- reading cells


class RecordScope(Scope):
    """A formula field or filterByFormula evaluated on one record."""

    def __init__(self, base: Base, table: Table, record: Record, visiting: frozenset[str]):
        self.base, self.table, self.record, self.visiting = base, table, record, visiting

    def field(self, name: str) -> Any:
        # Formula fields hold field ids (see bind_field_ids); filters hold names.
        referenced = self.table.find_field(name)
        if referenced is None:
            raise FormulaEvalError(f"unknown field {name}")
        return formula_value(self.base, self.table, self.record, referenced, self.visiting)

    def record_id(self) -> str:
        return self.record.id

    def created_time(self) -> datetime:
        return self.record.created_time

    def last_modified_time(self, field_names: list[str]) -> datetime | None:
        if not field_names:
            return self.record.last_modified
        times = []
        for name in field_names:
            named = self.table.field_named(name)
            if named is None:
                raise FormulaEvalError(f"unknown field {name}")
            if named.id in self.record.cell_modified:
                times.append(self.record.cell_modified[named.id])
        return max(times, default=None)


def linked_records(base: Base, table: Table, record: Record, link: Field) -> tuple[Table, list]:
    linked_table = base.tables[link.options["linkedTableId"]]
    ids = record.cells.get(link.id, [])
    return linked_table, [
        linked_table.records[each] for each in ids if each in linked_table.records
    ]


def _link_and_target(base: Base, table: Table, computed: Field) -> tuple[Field, Field]:
    link = table.find_field(computed.options["recordLinkFieldId"])
    linked_table = base.tables[link.options["linkedTableId"]]
    return link, linked_table.find_field(computed.options["fieldIdInLinkedTable"])


def compute(
    base: Base, table: Table, record: Record, computed: Field, visiting: frozenset[str]
) -> Any:
    """The value of a computed field, as formulas see it. Raises FormulaEvalError."""
    if computed.id in visiting:
        raise FormulaEvalError("circular reference")
    visiting = visiting | {computed.id}
    if computed.type == "formula":
        scope = RecordScope(base, table, record, visiting)
        return evaluate(parse_formula(computed.expression), scope)
    if computed.type == "count":
        return len(record.cells.get(computed.options["recordLinkFieldId"], []))
    if computed.type in ("rollup", "multipleLookupValues"):
        link, target = _link_and_target(base, table, computed)
        linked_table, linked = linked_records(base, table, record, link)
        if computed.type == "multipleLookupValues":
            return flatten(api_value(base, linked_table, other, target) for other in linked)
        values = flatten(
            formula_value(base, linked_table, other, target, visiting) for other in linked
        )
        return evaluate(parse_formula(computed.expression), ValuesScope(values))
    if computed.type == "autoNumber":
        return record.auto_number
    if computed.type == "createdTime":
        return record.created_time
    return record.last_modified  # lastModifiedTime


def formula_value(
    base: Base, table: Table, record: Record, cell_field: Field, visiting: frozenset[str]
) -> Any:
    """A cell as formulas see it: dates as datetimes, links as their primary values."""
    if cell_field.computed:
        return compute(base, table, record, cell_field, visiting)
    value = record.cells.get(cell_field.id)
    if value is None:
        return None
    if cell_field.type in ("date", "dateTime"):
        return parse_datetime(value)
    if cell_field.type == "multipleRecordLinks":
        linked_table, linked = linked_records(base, table, record, cell_field)
        primary = linked_table.primary_field
        return [to_text(formula_value(base, linked_table, r, primary, visiting)) for r in linked]
    if cell_field.type == "multipleAttachments":
        return [attachment["filename"] for attachment in value]
    return copy.deepcopy(value) if isinstance(value, list) else value


def api_value(base: Base, table: Table, record: Record, cell_field: Field) -> Any:
    """A cell as the API shows it; None when empty (the key is left out)."""
    if not cell_field.computed:
        return copy.deepcopy(record.cells.get(cell_field.id))
    try:
        return to_cell(compute(base, table, record, cell_field, frozenset()))
    except FormulaEvalError:
        return dict(ERROR_CELL)


def render_record(
    base: Base,
    table: Table,
    record: Record,
    *,
    by_field_id: bool = False,
    only: set[str] | None = None,
) -> dict[str, Any]:
    fields = {}
    for each in table.fields:
        if only is not None and each.id not in only:
            continue
        value = api_value(base, table, record, each)
        if value is not None:
            fields[each.id if by_field_id else each.name] = value
    return {"id": record.id, "createdTime": iso(record.created_time), "fields": fields}


# ----------------------------------------------------------------------------- writing cells


class _BadValue(Exception):
    """A value of the wrong type for its field (answered as INVALID_VALUE_FOR_COLUMN)."""


class WriteContext:
    """One write request: its base, its typecast flag, and the select options it would add.

    New options are only added once the whole request has validated, so a request
    that fails leaves the schema as it was (Airtable's requests are atomic).
    """

    def __init__(self, base: Base, typecast: bool):
        self.base = base
        self.typecast = typecast
        self.new_choices: dict[str, tuple[Field, list[str]]] = {}

    def choice(self, select: Field, name: str) -> str:
        known = {choice["name"] for choice in select.options.get("choices", [])}
        if name in known:
            return name
        if not self.typecast:
            raise unprocessable(
                "INVALID_MULTIPLE_CHOICE_OPTIONS",
                f'Insufficient permissions to create new select option ""{name}""',
            )
        pending = self.new_choices.setdefault(select.id, (select, []))[1]
        if name not in pending:
            pending.append(name)
        return name

    def commit(self) -> None:
        for select, names in self.new_choices.values():
            choices = select.options.setdefault("choices", [])
            choices.extend({"id": new_id("sel"), "name": name} for name in names)
        self.new_choices.clear()


def _coerce_text(value: Any, cell_field: Field, context: WriteContext) -> str | None:
    if isinstance(value, str):
        return value or None
    if context.typecast and isinstance(value, int | float):
        return to_text(value)
    raise _BadValue


def _coerce_number(value: Any, cell_field: Field, context: WriteContext) -> int | float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return value
    if context.typecast and isinstance(value, str):
        if not value.strip():
            return None
        try:
            number = float(value)
        except ValueError:
            raise _BadValue from None
        return int(number) if number.is_integer() else number
    raise _BadValue


def _coerce_checkbox(value: Any, cell_field: Field, context: WriteContext) -> bool | None:
    if isinstance(value, bool):
        return value or None
    if context.typecast and isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes", "checked", "on") or None
    raise _BadValue


def _coerce_date(value: Any, cell_field: Field, context: WriteContext) -> str | None:
    if not isinstance(value, str):
        raise _BadValue
    if not value:
        return None
    moment = parse_datetime(value)
    if moment is None:
        raise _BadValue
    return f"{moment:%Y-%m-%d}"


def _coerce_date_time(value: Any, cell_field: Field, context: WriteContext) -> str | None:
    if not isinstance(value, str):
        raise _BadValue
    if not value:
        return None
    moment = parse_datetime(value)
    if moment is None:
        raise _BadValue
    return iso(moment)


def _coerce_single_select(value: Any, cell_field: Field, context: WriteContext) -> str | None:
    if context.typecast and isinstance(value, int | float) and not isinstance(value, bool):
        value = to_text(value)
    if not isinstance(value, str):
        raise _BadValue
    return context.choice(cell_field, value) if value else None


def _coerce_multiple_selects(
    value: Any, cell_field: Field, context: WriteContext
) -> list[str] | None:
    if context.typecast and isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list) or not all(isinstance(name, str) for name in value):
        raise _BadValue
    names = list(dict.fromkeys(context.choice(cell_field, name) for name in value if name))
    return names or None


def _coerce_links(value: Any, cell_field: Field, context: WriteContext) -> list[str] | None:
    if not isinstance(value, list) or not all(isinstance(each, str) for each in value):
        raise _BadValue
    linked_table = context.base.tables[cell_field.options["linkedTableId"]]
    for record_id in value:
        if record_id not in linked_table.records:
            # (unverified) type and message.
            raise unprocessable("ROW_DOES_NOT_EXIST", f"Record ID {record_id} does not exist")
    return list(dict.fromkeys(value)) or None


def _coerce_attachments(value: Any, cell_field: Field, context: WriteContext) -> list | None:
    if not isinstance(value, list):
        raise _BadValue
    attachments = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("url"), str):
            raise _BadValue
        filename = item.get("filename") or item["url"].rstrip("/").rsplit("/", 1)[-1]
        attachments.append({"id": new_id("att"), "url": item["url"], "filename": filename})
    return attachments or None


COERCERS: dict[str, Callable[[Any, Field, WriteContext], Any]] = {
    **dict.fromkeys(TEXT_TYPES, _coerce_text),
    **dict.fromkeys(NUMBER_TYPES, _coerce_number),
    "checkbox": _coerce_checkbox,
    "date": _coerce_date,
    "dateTime": _coerce_date_time,
    "singleSelect": _coerce_single_select,
    "multipleSelects": _coerce_multiple_selects,
    "multipleRecordLinks": _coerce_links,
    "multipleAttachments": _coerce_attachments,
}
assert set(COERCERS) == WRITABLE_TYPES


def normalize_fields(context: WriteContext, table: Table, fields: Any) -> dict[str, Any]:
    """A request's `fields` as field id -> stored value (None clears). Raises AirtableError."""
    if not isinstance(fields, dict):
        raise invalid_request_body('"fields" must be an object')
    cells = {}
    for key, value in fields.items():
        target = table.find_field(key)
        if target is None:
            raise unknown_field_name(key)
        if target.computed:
            raise computed_field_written(target.name)
        if value is None:
            cells[target.id] = None
            continue
        try:
            cells[target.id] = COERCERS[target.type](value, target, context)
        except _BadValue:
            raise invalid_value(target.name) from None
    return cells


def _inverse_of(base: Base, link: Field) -> tuple[Table, Field] | None:
    linked_table = base.tables.get(link.options.get("linkedTableId", ""))
    inverse_id = link.options.get("inverseLinkFieldId")
    if linked_table is None or inverse_id is None:
        return None
    inverse = linked_table.find_field(inverse_id)
    return (linked_table, inverse) if inverse is not None else None


def _set_links(base: Base, record: Record, link: Field, new_ids: list[str], now: datetime) -> None:
    """Write a link cell and keep the other side (the inverse field) in step."""
    old_ids = record.cells.get(link.id, [])
    if new_ids:
        record.cells[link.id] = list(new_ids)
    else:
        record.cells.pop(link.id, None)
    inverse = _inverse_of(base, link)
    if inverse is None:
        return
    linked_table, inverse_field = inverse
    for other_id in set(old_ids) - set(new_ids):
        if other_id in linked_table.records:
            _drop_link(linked_table.records[other_id], inverse_field, record.id, now)
    for other_id in new_ids:
        if other_id not in old_ids:
            other = linked_table.records[other_id]
            ids = other.cells.setdefault(inverse_field.id, [])
            if record.id not in ids:
                ids.append(record.id)
                # The other record's cell changed too, so its last-modified time moves.
                other.touch(inverse_field.id, now)


def _drop_link(record: Record, link: Field, record_id: str, now: datetime) -> None:
    ids = record.cells.get(link.id, [])
    if record_id in ids:
        ids.remove(record_id)
        if not ids:
            del record.cells[link.id]
        record.touch(link.id, now)


def write_cells(
    base: Base,
    table: Table,
    record: Record,
    cells: dict[str, Any],
    *,
    replace: bool,
    now: datetime,
) -> None:
    """Apply validated cells. replace (PUT) also clears every writable field not sent."""
    cells = dict(cells)
    if replace:
        for each in table.fields:
            if not each.computed and each.id not in cells and each.id in record.cells:
                cells[each.id] = None
    for field_id, value in cells.items():
        target = table.find_field(field_id)
        if target.type == "multipleRecordLinks":
            _set_links(base, record, target, value or [], now)
        elif value is None:
            record.cells.pop(field_id, None)
        else:
            record.cells[field_id] = value
        record.touch(field_id, now)
    # Every write moves the last-modified time, even one that changes nothing: the
    # safe assumption for code that must tell its own writes from people's edits.
    record.last_modified = now


def insert_record(base: Base, table: Table, cells: dict[str, Any], now: datetime) -> Record:
    record = Record(
        id=new_id("rec"), created_time=now, last_modified=now, auto_number=table.next_auto_number
    )
    table.next_auto_number += 1
    table.records[record.id] = record
    write_cells(base, table, record, cells, replace=False, now=now)
    return record


def remove_record(base: Base, table: Table, record: Record, now: datetime) -> None:
    for each in table.fields:
        if each.type == "multipleRecordLinks":
            _set_links(base, record, each, [], now)
    del table.records[record.id]
    # Links without an inverse (a table linking to itself) may still name the record.
    for other_table in base.tables.values():
        for link in other_table.fields:
            if (
                link.type == "multipleRecordLinks"
                and link.options["linkedTableId"] == table.id
                and _inverse_of(base, link) is None
            ):
                for other in other_table.records.values():
                    _drop_link(other, link, record.id, now)


# ----------------------------------------------------------------------------- schema changes
#
# Shared by the meta API and by the person helpers. `as_person` is the UI's freedom:
# computed fields may be created and missing options get the UI's defaults.


def _precision_options(limit: int) -> Callable[..., dict[str, Any]]:
    def build(options: dict, field_type: str, as_person: bool, **_: Any) -> dict[str, Any]:
        precision = options.get("precision", 0 if as_person else None)
        if isinstance(precision, bool) or not isinstance(precision, int):
            raise invalid_field_options(field_type, '"precision" is required')
        if not 0 <= precision <= limit:
            raise invalid_field_options(field_type, f'"precision" must be 0 to {limit}')
        return {"precision": precision}

    return build


def _currency_options(options: dict, field_type: str, as_person: bool, **_: Any) -> dict:
    built = _precision_options(7)(options, field_type, as_person)
    symbol = options.get("symbol", "$" if as_person else None)
    if not isinstance(symbol, str) or not symbol:
        raise invalid_field_options(field_type, '"symbol" is required')
    return {**built, "symbol": symbol}


def _named_format(
    options: dict, key: str, formats: dict[str, str], field_type: str, default: str | None
) -> dict[str, str]:
    value = options.get(key, {"name": default} if default else None)
    name = value.get("name") if isinstance(value, dict) else None
    if name not in formats:
        raise invalid_field_options(field_type, f'"{key}.name" must be one of {sorted(formats)}')
    return {"name": name, "format": formats[name]}


def _date_options(options: dict, field_type: str, as_person: bool, **_: Any) -> dict:
    default = "local" if as_person else None
    return {"dateFormat": _named_format(options, "dateFormat", DATE_FORMATS, field_type, default)}


def _date_time_options(options: dict, field_type: str, as_person: bool, **_: Any) -> dict:
    built = _date_options(options, field_type, as_person)
    default = "24hour" if as_person else None
    built["timeFormat"] = _named_format(options, "timeFormat", TIME_FORMATS, field_type, default)
    time_zone = options.get("timeZone", "utc" if as_person else None)
    if not isinstance(time_zone, str):
        raise invalid_field_options(field_type, '"timeZone" is required')
    built["timeZone"] = time_zone
    return built


def _select_options(options: dict, field_type: str, **_: Any) -> dict:
    choices = options.get("choices")
    if not isinstance(choices, list) or not all(
        isinstance(choice, dict) and isinstance(choice.get("name"), str) for choice in choices
    ):
        raise invalid_field_options(field_type, '"choices" must be a list of {"name": ...}')
    built = []
    for choice in choices:
        built.append({"id": choice.get("id") or new_id("sel"), "name": choice["name"]})
        if "color" in choice:
            built[-1]["color"] = choice["color"]
    return {"choices": built}


def _link_options(options: dict, field_type: str, base: Base, table: Table, **_: Any) -> dict:
    linked_table_id = options.get("linkedTableId")
    if linked_table_id != table.id and linked_table_id not in base.tables:
        raise invalid_field_options(field_type, '"linkedTableId" must name a table of this base')
    return {
        "linkedTableId": linked_table_id,
        "isReversed": False,
        "prefersSingleRecordLink": bool(options.get("prefersSingleRecordLink", False)),
    }


def _checkbox_options(options: dict, **_: Any) -> dict:
    return {"color": options.get("color", "greenBright"), "icon": options.get("icon", "check")}


def _rating_options(options: dict, **_: Any) -> dict:
    return {
        "color": options.get("color", "yellowBright"),
        "icon": options.get("icon", "star"),
        "max": options.get("max", 5),
    }


def _no_options(options: dict, **_: Any) -> dict:
    return {}


def _formula_options(options: dict, table: Table, **_: Any) -> tuple[dict, str]:
    text = options.get("formula")
    if not isinstance(text, str):
        raise ValueError('a formula field needs options={"formula": "..."}')
    names = referenced_names(parse_formula(text))
    missing = [name for name in names if table.field_named(name) is None]
    if missing:
        raise ValueError(f"formula refers to unknown fields: {missing}")
    referenced = list(dict.fromkeys(table.field_named(name).id for name in names))
    options = {"formula": text, "isValid": True, "referencedFieldIds": referenced}
    return options, bind_field_ids(text, table)


def bind_field_ids(text: str, table: Table) -> str:
    """The formula with its references as {fldID}: like Airtable's, it survives renames."""

    def field_id(name: str) -> str | None:
        named = table.field_named(name)
        return braced(named.id) if named is not None else None

    return rewrite_references(text, field_id)


def refresh_formula_texts(table: Table) -> None:
    """Show each formula with the fields' current names (after a rename)."""

    def current_name(key: str) -> str | None:
        named = table.find_field(key)
        return braced(named.name) if named is not None else None

    for each in table.fields:
        if each.type == "formula":
            each.options["formula"] = rewrite_references(each.expression, current_name)


def _link_field(table: Table, key: Any) -> Field:
    link = table.find_field(key) if isinstance(key, str) else None
    if link is None or link.type != "multipleRecordLinks":
        raise ValueError(f'"recordLinkFieldId" must name a link field of {table.name}: {key!r}')
    return link


def _linked_options(options: dict, base: Base, table: Table) -> dict:
    link = _link_field(table, options.get("recordLinkFieldId"))
    linked_table = base.tables[link.options["linkedTableId"]]
    key = options.get("fieldIdInLinkedTable")
    target = linked_table.find_field(key) if isinstance(key, str) else None
    if target is None:
        raise ValueError(f'"fieldIdInLinkedTable" must name a field of {linked_table.name}')
    return {
        "isValid": True,
        "recordLinkFieldId": link.id,
        "fieldIdInLinkedTable": target.id,
        "referencedFieldIds": [target.id],
    }


def _rollup_options(options: dict, base: Base, table: Table, **_: Any) -> tuple[dict, str]:
    aggregation = options.get("formula", options.get("aggregation"))
    if not isinstance(aggregation, str):
        raise ValueError('a rollup needs options={"formula": "SUM(values)", ...}')
    stray = [name for name in referenced_names(parse_formula(aggregation)) if name != "values"]
    if stray:
        raise ValueError(f"a rollup's formula may only use `values`, not {stray}")
    return _linked_options(options, base, table), aggregation


def _lookup_options(options: dict, base: Base, table: Table, **_: Any) -> dict:
    built = _linked_options(options, base, table)
    del built["referencedFieldIds"]
    return built


def _count_options(options: dict, table: Table, **_: Any) -> dict:
    link = _link_field(table, options.get("recordLinkFieldId"))
    return {"isValid": True, "recordLinkFieldId": link.id}


def _last_modified_options(options: dict, **_: Any) -> dict:
    return {"isValid": True, "referencedFieldIds": []}


OPTION_BUILDERS: dict[str, Callable[..., Any]] = {
    **dict.fromkeys(TEXT_TYPES, _no_options),
    "number": _precision_options(8),
    "percent": _precision_options(8),
    "currency": _currency_options,
    "rating": _rating_options,
    "duration": lambda options, **_: {"durationFormat": options.get("durationFormat", "h:mm")},
    "checkbox": _checkbox_options,
    "date": _date_options,
    "dateTime": _date_time_options,
    "singleSelect": _select_options,
    "multipleSelects": _select_options,
    "multipleRecordLinks": _link_options,
    "multipleAttachments": lambda options, **_: {"isReversed": False},
    "formula": _formula_options,
    "rollup": _rollup_options,
    "count": _count_options,
    "multipleLookupValues": _lookup_options,
    "autoNumber": _no_options,
    "createdTime": _no_options,
    "lastModifiedTime": _last_modified_options,
}
assert set(OPTION_BUILDERS) == WRITABLE_TYPES | COMPUTED_TYPES


def build_field(base: Base, table: Table, spec: Any, *, as_person: bool) -> Field:
    """A new field from a meta-API field spec; not yet added to the table."""
    if not isinstance(spec, dict):
        raise invalid_request_body("a field must be an object")
    name = spec.get("name")
    if not isinstance(name, str) or not name.strip() or table.has_field_name(name):
        raise unprocessable(
            "DUPLICATE_OR_EMPTY_FIELD_NAME", f"Field names must be unique and not empty: {name!r}"
        )
    field_type = TYPE_ALIASES.get(spec.get("type"), spec.get("type"))
    if field_type not in WRITABLE_TYPES and not (as_person and field_type in COMPUTED_TYPES):
        # Airtable's meta API cannot create computed fields (formula, rollup, lookup,
        # count, autoNumber, created/last-modified time, ...): people add them in the
        # UI. Error type as reported by API users (unverified).
        raise unprocessable(
            "UNSUPPORTED_FIELD_TYPE_FOR_CREATE",
            f'Creating fields of type "{spec.get("type")}" is not supported',
        )
    options = spec.get("options") or {}
    if not isinstance(options, dict):
        raise invalid_field_options(field_type, '"options" must be an object')
    try:
        built = OPTION_BUILDERS[field_type](
            options, field_type=field_type, as_person=as_person, base=base, table=table
        )
    except (ValueError, KeyError) as exc:  # only the person-side computed fields get here
        raise ValueError(f"cannot add field {name!r}: {exc}") from exc
    built_options, expression = built if isinstance(built, tuple) else (built, None)
    return Field(
        id=new_id("fld"),
        name=name,
        type=field_type,
        options=built_options,
        description=spec.get("description") or None,
        expression=expression,
    )


def add_inverse_link(base: Base, table: Table, link: Field) -> None:
    """Airtable gives every link to another table a field on the other side."""
    linked_table = base.tables[link.options["linkedTableId"]]
    if linked_table is table:
        return
    name, suffix = table.name, 2
    while linked_table.has_field_name(name):
        name, suffix = f"{table.name} {suffix}", suffix + 1
    inverse = Field(
        id=new_id("fld"),
        name=name,
        type="multipleRecordLinks",
        options={
            "linkedTableId": table.id,
            "isReversed": False,
            "prefersSingleRecordLink": False,
            "inverseLinkFieldId": link.id,
        },
    )
    linked_table.fields.append(inverse)
    link.options["inverseLinkFieldId"] = inverse.id


def add_field(base: Base, table: Table, spec: Any, *, as_person: bool) -> Field:
    new_field = build_field(base, table, spec, as_person=as_person)
    table.fields.append(new_field)
    if new_field.type == "multipleRecordLinks":
        add_inverse_link(base, table, new_field)
    return new_field


def create_table(base: Base, spec: Any, *, as_person: bool) -> Table:
    """A new table from a meta-API body; nothing changes unless every field is valid."""
    if not isinstance(spec, dict):
        raise invalid_request_body("the body must be an object")
    name, field_specs = spec.get("name"), spec.get("fields")
    if not isinstance(name, str) or not name.strip():
        raise invalid_request_body('"name" is required')
    if base.has_table_name(name):
        raise unprocessable("DUPLICATE_TABLE_NAME", f'A table named "{name}" already exists')
    if not isinstance(field_specs, list) or not field_specs:
        raise invalid_request_body('"fields" must be a non-empty list')
    table = Table(id=new_id("tbl"), name=name, fields=[], description=spec.get("description"))
    table.views.append({"id": new_id("viw"), "name": "Grid view", "type": "grid"})
    for field_spec in field_specs:
        table.fields.append(build_field(base, table, field_spec, as_person=as_person))
    primary_types = PERSON_PRIMARY_TYPES if as_person else PRIMARY_TYPES
    if table.primary_field.type not in primary_types:
        raise invalid_request_body(
            f'Field "{table.primary_field.name}" of type {table.primary_field.type}'
            " cannot be the primary field"
        )
    base.tables[table.id] = table
    for each in list(table.fields):
        if each.type == "multipleRecordLinks":
            add_inverse_link(base, table, each)
    return table


# ----------------------------------------------------------------------------- listing


@dataclass
class ListOptions:
    page_size: int = MAX_PAGE_SIZE
    max_records: int | None = None
    fields: list[str] | None = None
    formula: str = ""
    sort: list[tuple[str, str]] = field(default_factory=list)
    view: str | None = None
    by_field_id: bool = False
    offset: str | None = None


@dataclass
class Listing:
    """An open listing: the matching record ids, fixed when its first page was read."""

    table_id: str
    record_ids: list[str]
    expires_at: float
    position: int = 0


SORT_PARAMETER = re.compile(r"sort\[(\d+)\]\[(field|direction)\]")


def _positive_int(value: Any, *, most: int | None = None) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise invalid_parameters() from None
    if isinstance(value, bool) or number < 1 or (most is not None and number > most):
        raise invalid_parameters()
    return number


def _sort_specs(specs: list[Any]) -> list[tuple[str, str]]:
    sort = []
    for spec in specs:
        if not isinstance(spec, dict) or not isinstance(spec.get("field"), str):
            raise invalid_parameters()
        direction = spec.get("direction", "asc")
        if direction not in ("asc", "desc"):
            raise invalid_parameters()
        sort.append((spec["field"], direction))
    return sort


def options_from_query(query: dict[str, list[str]]) -> ListOptions:
    def last(name: str) -> str | None:
        return query[name][-1] if query.get(name) else None

    sort_specs: dict[int, dict[str, str]] = {}
    for key, values in query.items():
        if match := SORT_PARAMETER.fullmatch(key):
            sort_specs.setdefault(int(match[1]), {})[match[2]] = values[-1]
    page_size, max_records = last("pageSize"), last("maxRecords")
    return ListOptions(
        page_size=_positive_int(page_size, most=MAX_PAGE_SIZE) if page_size else MAX_PAGE_SIZE,
        max_records=_positive_int(max_records) if max_records else None,
        fields=query.get("fields[]", []) + query.get("fields", []) or None,
        formula=last("filterByFormula") or "",
        sort=_sort_specs([sort_specs[index] for index in sorted(sort_specs)]),
        view=last("view"),
        by_field_id=last("returnFieldsByFieldId") in ("1", "true"),
        offset=last("offset"),
    )


def options_from_body(body: dict[str, Any]) -> ListOptions:
    fields, sort = body.get("fields"), body.get("sort") or []
    if (fields is not None and not isinstance(fields, list)) or not isinstance(sort, list):
        raise invalid_parameters()
    page_size, max_records = body.get("pageSize"), body.get("maxRecords")
    return ListOptions(
        page_size=_positive_int(page_size, most=MAX_PAGE_SIZE) if page_size else MAX_PAGE_SIZE,
        max_records=_positive_int(max_records) if max_records else None,
        fields=fields,
        formula=body.get("filterByFormula") or "",
        sort=_sort_specs(sort),
        view=body.get("view"),
        by_field_id=bool(body.get("returnFieldsByFieldId")),
        offset=body.get("offset"),
    )


def compile_filter(table: Table, text: str) -> Any:
    """The tree of a filterByFormula, checked against the table; None for no filter."""
    if not text.strip():
        return None
    try:
        node = parse_formula(text)
    except FormulaSyntaxError as exc:
        raise invalid_filter(str(exc)) from None
    unknown = [name for name in referenced_names(node) if table.field_named(name) is None]
    if unknown:
        raise invalid_filter("Unknown field names: " + ", ".join(dict.fromkeys(unknown)))
    return node


def _matches(base: Base, table: Table, record: Record, node: Any) -> bool:
    try:
        return is_truthy(evaluate(node, RecordScope(base, table, record, frozenset())))
    except FormulaEvalError:
        return False  # a record whose formula is #ERROR! is not listed


def _sort_key(value: Any) -> tuple:
    if value is None or value == "" or value == []:
        return (0,)
    if isinstance(value, bool | int | float):
        return (1, float(value))
    if isinstance(value, datetime):
        return (2, value.timestamp())
    return (3, to_text(value).casefold())


def matching_record_ids(base: Base, table: Table, options: ListOptions) -> list[str]:
    node = compile_filter(table, options.formula)
    records = [r for r in table.records.values() if node is None or _matches(base, table, r, node)]
    for key, direction in reversed(options.sort):
        sort_field = table.find_field(key)
        if sort_field is None:
            raise unknown_field_name(key)

        def value_of(record: Record, sort_field: Field = sort_field) -> tuple:
            try:
                return _sort_key(formula_value(base, table, record, sort_field, frozenset()))
            except FormulaEvalError:
                return (4,)

        records.sort(key=value_of, reverse=direction == "desc")
    if options.max_records is not None:
        records = records[: options.max_records]
    return [record.id for record in records]


# ----------------------------------------------------------------------------- HTTP plumbing


@dataclass
class Request:
    method: str
    target: str  # path and query as sent
    parts: list[str]  # the path's segments, unquoted
    query: dict[str, list[str]]
    headers: Any
    body: bytes
    too_large: bool

    def json(self) -> dict[str, Any]:
        if not self.body.strip():
            return {}
        try:
            data = json.loads(self.body)
        except ValueError:
            raise invalid_request_body("The request body is not valid JSON") from None
        if not isinstance(data, dict):
            raise invalid_request_body("The request body must be a JSON object")
        return data


@dataclass
class Route:
    kind: str  # what calls[] counts it as
    base_id: str
    action: Callable[[Base], tuple[int, Any]]


@dataclass
class InjectedFailure:
    remaining: int
    status: int
    kinds: frozenset[str] | None
    after_apply: bool

    def answer(self) -> tuple[int, str, bytes]:
        content_type, body = INJECTED_ANSWERS[self.status]
        return self.status, content_type, encode_body(body)


@dataclass
class RateWindow:
    """Requests admitted in the last second, and when a penalty (if any) ends."""

    times: collections.deque = field(default_factory=collections.deque)
    penalty_until: float = -math.inf

    def count_since(self, moment: float) -> int:
        while self.times and self.times[0] <= moment:
            self.times.popleft()
        return len(self.times)


def read_request(handler: BaseHTTPRequestHandler, max_body_bytes: int) -> Request:
    split = urlsplit(handler.path)
    length = int(handler.headers.get("Content-Length") or 0)
    too_large = length > max_body_bytes
    if too_large:
        # Read and drop it, so the client is not cut off while still sending.
        remaining = length
        while remaining > 0:
            chunk = handler.rfile.read(min(remaining, 1 << 16))
            if not chunk:
                break
            remaining -= len(chunk)
        body = b""
    else:
        body = handler.rfile.read(length)
    return Request(
        method=handler.command,
        target=handler.path,
        # Split before unquoting: a table name may contain an encoded "/".
        parts=[unquote(part) for part in split.path.split("/") if part],
        query=parse_qs(split.query, keep_blank_values=True),
        headers=handler.headers,
        body=body,
        too_large=too_large,
    )


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as requests' sessions expect
    # Buffer each answer and send it in one write (flushed after every request):
    # headers and body as two small packets meet the client's delayed ACK, 40 ms each.
    wbufsize = 1 << 16
    server: _Server

    def do_GET(self) -> None:
        status, content_type, payload = self.server.fake._answer(self)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_POST = do_PATCH = do_PUT = do_DELETE = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        pass  # tests read calls[], not a log


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: FakeAirtable):
        super().__init__((HOST, 0), _Handler)
        self.fake = fake

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # the client hung up: nothing to report
        super().handle_error(request, client_address)


# ----------------------------------------------------------------------------- the server


class FakeAirtable:
    """Airtable's Web API on 127.0.0.1, with direct access to its state for tests."""

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        bases: Iterable[str] = (DEFAULT_BASE,),
        rate_per_second: float = 5.0,
        penalty_seconds: float = 30.0,
        per_token_rate: float = 50.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.token = token
        self.rate_per_second = rate_per_second
        self.penalty_seconds = penalty_seconds
        self.per_token_rate = per_token_rate
        self.offset_ttl_seconds = 300.0
        self.max_body_bytes = 5 * 1024 * 1024
        self.url = ""
        self.calls: collections.Counter[str] = collections.Counter()
        self._clock = clock
        self._lock = threading.RLock()  # one request at a time: each is atomic, as in Airtable
        self._bases = {base_id: Base(base_id) for base_id in bases}
        self._base_windows = collections.defaultdict(RateWindow)
        self._token_windows = collections.defaultdict(RateWindow)
        self._listings: dict[str, Listing] = {}
        self._failures: list[InjectedFailure] = []
        self._hold = RequestHold()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle

    def start(self) -> FakeAirtable:
        if self._server is None:
            self._server = _Server(self)
            self.url = f"http://{HOST}:{self._server.server_address[1]}"
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                # shutdown() waits up to one poll interval: keep stop() quick for tests.
                kwargs={"poll_interval": SHUTDOWN_POLL_SECONDS},
                name="fake-airtable",
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
            self._server = self._thread = None

    def __enter__(self) -> FakeAirtable:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    # -- counters and knobs for tests

    @property
    def write_calls(self) -> int:
        return sum(self.calls[kind] for kind in WRITE_KINDS)

    def reset_calls(self) -> None:
        with self._lock:
            self.calls.clear()

    def fail_next(
        self,
        count: int,
        status: int = 503,
        kinds: str | Iterable[str] | None = None,
        *,
        after_apply: bool = False,
    ) -> None:
        """The next `count` requests of these kinds (any kind if None) answer `status`.

        after_apply=True carries the request out first and then answers the error,
        as when Airtable applied a write but the answer was lost on the way back.
        """
        if count < 1:
            raise ValueError("count must be at least 1")
        if status not in INJECTED_ANSWERS:
            raise ValueError(f"status must be one of {sorted(INJECTED_ANSWERS)}")
        if isinstance(kinds, str):
            kinds = (kinds,)
        with self._lock:
            self._failures.append(
                InjectedFailure(
                    remaining=count,
                    status=status,
                    kinds=frozenset(kinds) if kinds is not None else None,
                    after_apply=after_apply,
                )
            )

    def hold_after_writes(self, count: int) -> threading.Event:
        """Once `count` writes are answered, hold every request unanswered until
        release(): the client under test freezes mid-sync, where a test kills it.
        The event is set when a request is being held; held requests are never
        applied."""
        return self._hold.arm(count)

    def release(self) -> None:
        """Drop the held requests unanswered, as if they never arrived, and hold no more."""
        self._hold.release()

    def rate_limit_storm(self, base: str | None = None) -> None:
        """Put the base (every base if None) into the 429 penalty from now."""
        with self._lock:
            until = self._clock() + self.penalty_seconds
            for base_id in [base] if base else list(self._bases):
                self._base_windows[base_id].penalty_until = until

    # -- direct access: a person working in the base

    def create_table(
        self, base: str, name: str, fields: list[dict], description: str | None = None
    ) -> dict:
        """Create a table (meta-API field specs; computed fields allowed, as in the UI)."""
        spec = {"name": name, "fields": fields, "description": description}
        with self._lock:
            return create_table(self._find_base(base), spec, as_person=True).to_json()

    def person_add_field(self, base: str, table: str, field_spec: dict) -> dict:
        """Add any field as a person does in the UI, computed ones included.

        formula: {"formula": "{Price} * {Quantity}"}; rollup: {"recordLinkFieldId",
        "fieldIdInLinkedTable", "formula": "SUM(values)"}; lookup: the same without
        formula; count: {"recordLinkFieldId"}. Fields may be named by name or id.
        """
        with self._lock:
            found_base = self._find_base(base)
            found_table = self._find_table(found_base, table)
            return add_field(found_base, found_table, field_spec, as_person=True).to_json()

    def table_records(self, base: str, table: str) -> list[dict]:
        with self._lock:
            found_base = self._find_base(base)
            found_table = self._find_table(found_base, table)
            return [
                render_record(found_base, found_table, record)
                for record in found_table.records.values()
            ]

    def record_count(self, base: str, table: str) -> int:
        with self._lock:
            return len(self._find_table(self._find_base(base), table).records)

    def person_edit(self, base: str, table: str, record_id: str, fields: dict) -> None:
        """Edit cells as a person does: the record's last-modified time moves."""
        with self._lock:
            found_base = self._find_base(base)
            found_table = self._find_table(found_base, table)
            record = self._find_record(found_table, record_id)
            cells = self._person_cells(found_base, found_table, fields)
            write_cells(found_base, found_table, record, cells, replace=False, now=utc_now())

    def person_create(self, base: str, table: str, fields: dict) -> str:
        with self._lock:
            found_base = self._find_base(base)
            found_table = self._find_table(found_base, table)
            cells = self._person_cells(found_base, found_table, fields)
            return insert_record(found_base, found_table, cells, utc_now()).id

    def person_delete(self, base: str, table: str, record_id: str) -> None:
        with self._lock:
            found_base = self._find_base(base)
            found_table = self._find_table(found_base, table)
            record = self._find_record(found_table, record_id)
            remove_record(found_base, found_table, record, utc_now())

    def _person_cells(self, base: Base, table: Table, fields: dict) -> dict[str, Any]:
        # The UI converts what people type, much as typecast does.
        context = WriteContext(base, typecast=True)
        cells = normalize_fields(context, table, fields)
        context.commit()
        return cells

    def _find_base(self, base_id: str) -> Base:
        if base_id not in self._bases:
            raise KeyError(f"no base {base_id!r}")
        return self._bases[base_id]

    @staticmethod
    def _find_table(base: Base, key: str) -> Table:
        table = base.table(key)
        if table is None:
            raise KeyError(f"no table {key!r} in {base.id}")
        return table

    @staticmethod
    def _find_record(table: Table, record_id: str) -> Record:
        if record_id not in table.records:
            raise KeyError(f"no record {record_id!r} in {table.name}")
        return table.records[record_id]

    # -- answering HTTP requests

    def _answer(self, handler: BaseHTTPRequestHandler) -> tuple[int, str, bytes]:
        """Status, content type and body for one HTTP request."""
        request = read_request(handler, self.max_body_bytes)
        self._hold.wait_if_due(self.write_calls)
        try:
            route = self._route(request)
        except AirtableError as exc:
            return exc.answer()
        with self._lock:
            return self._answer_route(request, route)

    def _answer_route(self, request: Request, route: Route) -> tuple[int, str, bytes]:
        """Checks in Airtable's order: request shape and auth, base, rate limits, then work.

        calls[kind] counts every answered request, errors included; refusals by the
        rate limiter and injected failures are counted apart, so that write_calls
        stays the number of writes the code under test had answered.
        """
        try:
            self._check_request(request)
            base = self._bases.get(route.base_id)
            if base is None:
                raise model_not_found()
        except AirtableError as exc:
            self.calls[route.kind] += 1
            return exc.answer()
        if not self._admit(base.id):
            self.calls["rate_limited"] += 1
            return rate_limited().answer()
        failure = self._take_failure(route.kind)
        if failure is not None and not failure.after_apply:
            self.calls["failed"] += 1
            return failure.answer()
        self.calls[route.kind] += 1
        answer = self._carry_out(route, base)
        if failure is not None:  # after_apply: done, but the answer is "lost"
            self.calls["failed"] += 1
            return failure.answer()
        return answer

    @staticmethod
    def _carry_out(route: Route, base: Base) -> tuple[int, str, bytes]:
        try:
            status, body = route.action(base)
        except AirtableError as exc:
            return exc.answer()
        return status, JSON_TYPE, encode_body(body)

    def _check_request(self, request: Request) -> None:
        if len(self.url) + len(request.target) > MAX_URL_LENGTH:
            raise AirtableError(414, "URI Too Long\n", TEXT_TYPE)
        if request.too_large:
            raise typed_error(413, "REQUEST_TOO_LARGE", "Request body is too large")
        if request.headers.get("Authorization", "") != f"Bearer {self.token}":
            raise authentication_required()

    def _admit(self, base_id: str) -> bool:
        """Sliding one-second windows per base and per token; a request over either limit
        is refused and starts the penalty, during which every request is refused."""
        now = self._clock()
        limits = (
            (self._base_windows[base_id], self.rate_per_second),
            (self._token_windows[self.token], self.per_token_rate),
        )
        if any(window.penalty_until > now for window, _ in limits):
            return False  # refused requests do not extend the penalty
        for window, limit in limits:
            if window.count_since(now - 1.0) >= limit:
                window.penalty_until = now + self.penalty_seconds
                # Forget the burst: after Airtable's 30 s it is long gone, and a short
                # test penalty must not be followed by an instant second one.
                window.times.clear()
                return False
        for window, _ in limits:
            window.times.append(now)
        return True

    def _take_failure(self, kind: str) -> InjectedFailure | None:
        for failure in self._failures:
            if failure.kinds is None or kind in failure.kinds:
                failure.remaining -= 1
                if failure.remaining <= 0:
                    self._failures.remove(failure)
                return failure
        return None

    # -- routing

    def _route(self, request: Request) -> Route:
        parts = request.parts
        if len(parts) < 3 or parts[0] != "v0":
            raise not_found()
        if parts[1] == "meta":
            return self._meta_route(request)
        base_id, table_key, rest = parts[1], parts[2], parts[3:]
        method = request.method
        if not rest:
            return self._collection_route(request, base_id, table_key)
        if len(rest) == 1 and rest[0] == "listRecords" and method == "POST":
            return Route(
                "list",
                base_id,
                lambda base: self._list(base, table_key, options_from_body(request.json())),
            )
        if len(rest) != 1:
            raise not_found()
        record_id = rest[0]
        if method == "GET":
            return Route(
                "get", base_id, lambda base: self._get(base, table_key, record_id, request)
            )
        if method in ("PATCH", "PUT"):
            kind = "update" if method == "PATCH" else "replace"
            return Route(
                kind,
                base_id,
                lambda base: self._update_one(
                    base, table_key, record_id, request.json(), replace=method == "PUT"
                ),
            )
        if method == "DELETE":
            return Route(
                "delete",
                base_id,
                lambda base: self._delete(base, table_key, [record_id], single=True),
            )
        raise not_found()

    def _collection_route(self, request: Request, base_id: str, table_key: str) -> Route:
        method = request.method
        if method == "GET":
            return Route(
                "list",
                base_id,
                lambda base: self._list(base, table_key, options_from_query(request.query)),
            )
        if method == "POST":
            return Route("create", base_id, lambda base: self._create(base, table_key, request))
        if method in ("PATCH", "PUT"):
            replace = method == "PUT"
            if _asks_for_upsert(request):
                return Route(
                    "upsert",
                    base_id,
                    lambda base: self._upsert(base, table_key, request.json(), replace=replace),
                )
            return Route(
                "replace" if replace else "update",
                base_id,
                lambda base: self._update_many(base, table_key, request.json(), replace=replace),
            )
        if method == "DELETE":
            ids = request.query.get("records[]", []) + request.query.get("records", [])
            return Route("delete", base_id, lambda base: self._delete(base, table_key, ids))
        raise not_found()

    def _meta_route(self, request: Request) -> Route:
        # /v0/meta/bases/{base}/tables[/{table}/fields[/{field}]]
        parts, method = request.parts, request.method
        if len(parts) < 5 or parts[2] != "bases" or parts[4] != "tables":
            raise not_found()
        base_id = parts[3]
        if len(parts) == 5 and method == "GET":
            include = request.query.get("include", []) + request.query.get("include[]", [])
            visible = "visibleFieldIds" in include
            return Route("meta_tables", base_id, lambda base: self._schema(base, visible))
        if len(parts) == 5 and method == "POST":
            return Route(
                "create_table",
                base_id,
                lambda base: (
                    200,
                    create_table(base, request.json(), as_person=False).to_json(),
                ),
            )
        if len(parts) == 7 and parts[6] == "fields" and method == "POST":
            return Route(
                "create_field",
                base_id,
                lambda base: self._create_field(base, parts[5], request.json()),
            )
        if len(parts) == 8 and parts[6] == "fields" and method == "PATCH":
            return Route(
                "update_field",
                base_id,
                lambda base: self._update_field(base, parts[5], parts[7], request.json()),
            )
        raise not_found()

    # -- records endpoints

    @staticmethod
    def _table(base: Base, key: str) -> Table:
        table = base.table(key)
        if table is None:
            raise not_found()
        return table

    @staticmethod
    def _record(table: Table, record_id: str) -> Record:
        if record_id not in table.records:
            raise record_not_found(record_id)
        return table.records[record_id]

    def _list(self, base: Base, table_key: str, options: ListOptions) -> tuple[int, Any]:
        table = self._table(base, table_key)
        only = self._selected_fields(table, options.fields)
        if options.view is not None and not any(
            options.view in (view["id"], view["name"]) for view in table.views
        ):
            raise unprocessable("VIEW_NAME_NOT_FOUND", f'Could not find view "{options.view}"')
        listing = self._listing(base, table, options)
        page = listing.record_ids[listing.position : listing.position + options.page_size]
        listing.position += len(page)
        records = [
            render_record(
                base, table, table.records[each], by_field_id=options.by_field_id, only=only
            )
            for each in page
            if each in table.records  # deleted since the listing began
        ]
        body: dict[str, Any] = {"records": records}
        if listing.position < len(listing.record_ids):
            body["offset"] = self._remember(listing, page[-1])
        return 200, body

    @staticmethod
    def _selected_fields(table: Table, keys: list[str] | None) -> set[str] | None:
        if keys is None:
            return None
        selected = set()
        for key in keys:
            chosen = table.find_field(key)
            if chosen is None:
                raise unknown_field_name(key)
            selected.add(chosen.id)
        return selected

    def _listing(self, base: Base, table: Table, options: ListOptions) -> Listing:
        now = self._clock()
        for token in [t for t, listing in self._listings.items() if listing.expires_at <= now]:
            del self._listings[token]
        if options.offset is None:
            record_ids = matching_record_ids(base, table, options)
            return Listing(table.id, record_ids, expires_at=now + self.offset_ttl_seconds)
        listing = self._listings.pop(options.offset, None)
        if listing is None or listing.table_id != table.id:
            raise iterator_not_available()
        return listing

    def _remember(self, listing: Listing, last_record_id: str) -> str:
        token = f"{new_id('itr')}/{last_record_id}"
        self._listings[token] = listing
        return token

    def _get(self, base: Base, table_key: str, record_id: str, request: Request) -> tuple:
        table = self._table(base, table_key)
        record = self._record(table, record_id)
        by_field_id = request.query.get("returnFieldsByFieldId", [""])[-1] in ("1", "true")
        return 200, render_record(base, table, record, by_field_id=by_field_id)

    def _create(self, base: Base, table_key: str, request: Request) -> tuple[int, Any]:
        body = request.json()
        table = self._table(base, table_key)
        items, single = _write_items(body)
        context = WriteContext(base, typecast=bool(body.get("typecast")))
        planned = [normalize_fields(context, table, _fields_of(item)) for item in items]
        context.commit()
        now = utc_now()
        created = [insert_record(base, table, cells, now) for cells in planned]
        return 200, self._rendered(base, table, created, body, single)

    def _update_one(
        self, base: Base, table_key: str, record_id: str, body: dict, *, replace: bool
    ) -> tuple[int, Any]:
        table = self._table(base, table_key)
        record = self._record(table, record_id)
        context = WriteContext(base, typecast=bool(body.get("typecast")))
        cells = normalize_fields(context, table, _fields_of(body))
        context.commit()
        write_cells(base, table, record, cells, replace=replace, now=utc_now())
        return 200, self._rendered(base, table, [record], body, single=True)

    def _update_many(
        self, base: Base, table_key: str, body: dict, *, replace: bool
    ) -> tuple[int, Any]:
        table = self._table(base, table_key)
        items, _ = _write_items(body, allow_single=False)
        context = WriteContext(base, typecast=bool(body.get("typecast")))
        planned = [
            (self._record(table, _id_of(item)), normalize_fields(context, table, _fields_of(item)))
            for item in items
        ]
        context.commit()
        now = utc_now()
        for record, cells in planned:
            write_cells(base, table, record, cells, replace=replace, now=now)
        return 200, self._rendered(base, table, [record for record, _ in planned], body, False)

    def _upsert(self, base: Base, table_key: str, body: dict, *, replace: bool) -> tuple[int, Any]:
        table = self._table(base, table_key)
        merge_fields = _merge_fields(table, body.get("performUpsert"))
        items, _ = _write_items(body, allow_single=False)
        context = WriteContext(base, typecast=bool(body.get("typecast")))
        planned: list[tuple[Record | None, dict[str, Any]]] = []
        index = _merge_index(table, merge_fields)
        keys_seen = set()
        for item in items:
            cells = normalize_fields(context, table, _fields_of(item))
            if "id" in item:
                planned.append((self._record(table, _id_of(item)), cells))
                continue
            key = _merge_key(merge_fields, cells)
            if key in keys_seen:
                raise unprocessable(  # (unverified) type
                    "INVALID_RECORDS",
                    "Several records in the request have the same values for fieldsToMergeOn",
                )
            keys_seen.add(key)
            planned.append((_upsert_target(index, key), cells))
        context.commit()
        now = utc_now()
        results, created_ids, updated_ids = [], [], []
        for record, cells in planned:
            if record is None:
                record = insert_record(base, table, cells, now)
                created_ids.append(record.id)
            else:
                write_cells(base, table, record, cells, replace=replace, now=now)
                updated_ids.append(record.id)
            results.append(record)
        answer = self._rendered(base, table, results, body, single=False)
        return 200, {**answer, "createdRecords": created_ids, "updatedRecords": updated_ids}

    def _delete(
        self, base: Base, table_key: str, record_ids: list[str], *, single: bool = False
    ) -> tuple[int, Any]:
        table = self._table(base, table_key)
        if not record_ids:
            raise invalid_parameters()
        if len(record_ids) > MAX_RECORDS_PER_WRITE:
            raise too_many_records()
        records = [self._record(table, record_id) for record_id in dict.fromkeys(record_ids)]
        now = utc_now()
        for record in records:
            remove_record(base, table, record, now)
        deleted = [{"id": record.id, "deleted": True} for record in records]
        return 200, deleted[0] if single else {"records": deleted}

    @staticmethod
    def _rendered(
        base: Base, table: Table, records: list[Record], body: dict, single: bool
    ) -> dict[str, Any]:
        by_field_id = bool(body.get("returnFieldsByFieldId"))
        rendered = [
            render_record(base, table, record, by_field_id=by_field_id) for record in records
        ]
        return rendered[0] if single else {"records": rendered}

    # -- metadata endpoints

    @staticmethod
    def _schema(base: Base, visible_field_ids: bool) -> tuple[int, Any]:
        tables = [
            table.to_json(visible_field_ids=visible_field_ids) for table in base.tables.values()
        ]
        return 200, {"tables": tables}

    def _create_field(self, base: Base, table_key: str, body: dict) -> tuple[int, Any]:
        table = self._table(base, table_key)
        return 200, add_field(base, table, body, as_person=False).to_json()

    def _update_field(
        self, base: Base, table_key: str, field_id: str, body: dict
    ) -> tuple[int, Any]:
        table = self._table(base, table_key)
        target = table.find_field(field_id)
        if target is None:
            raise not_found()
        if not body or set(body) - {"name", "description"}:
            raise invalid_request_body('Only "name" and "description" can be updated')
        name = body.get("name", target.name)
        if not isinstance(name, str) or not name.strip():
            raise unprocessable("DUPLICATE_OR_EMPTY_FIELD_NAME", "Field names must not be empty")
        if name.casefold() != target.name.casefold() and table.has_field_name(name):
            raise unprocessable(
                "DUPLICATE_OR_EMPTY_FIELD_NAME", f'A field named "{name}" already exists'
            )
        target.name = name
        refresh_formula_texts(table)
        if "description" in body:
            target.description = body["description"] or None
        return 200, target.to_json()


def _asks_for_upsert(request: Request) -> bool:
    try:
        return "performUpsert" in request.json()
    except AirtableError:
        return False  # the update handler answers the bad body


def _write_items(body: dict, *, allow_single: bool = True) -> tuple[list[dict], bool]:
    """The records a write carries, and whether it used the one-record form."""
    if "records" in body:
        items = body["records"]
        if not isinstance(items, list) or not items:
            raise invalid_request_body('"records" must be a non-empty list')
        if len(items) > MAX_RECORDS_PER_WRITE:
            raise too_many_records()
        if not all(isinstance(item, dict) for item in items):
            raise invalid_request_body("each record must be an object")
        return items, False
    if allow_single and "fields" in body:
        return [body], True
    raise missing_fields_key()


def _fields_of(item: dict) -> Any:
    if "fields" not in item:
        raise missing_fields_key()
    return item["fields"]


def _id_of(item: dict) -> str:
    record_id = item.get("id")
    if not isinstance(record_id, str):
        raise unprocessable("INVALID_REQUEST_MISSING_FIELDS", 'Could not find field "id"')
    return record_id


def _merge_fields(table: Table, perform_upsert: Any) -> list[Field]:
    names = perform_upsert.get("fieldsToMergeOn") if isinstance(perform_upsert, dict) else None
    if (
        not isinstance(names, list)
        or not 1 <= len(names) <= MAX_MERGE_FIELDS
        or not all(isinstance(name, str) for name in names)
    ):
        raise invalid_request_body(
            "performUpsert.fieldsToMergeOn must list 1 to 3 field names or ids"
        )
    merge_fields = []
    for name in names:
        merge_field = table.find_field(name)
        if merge_field is None:
            raise unknown_field_name(name)
        if merge_field.type not in MERGE_KEY_TYPES:
            raise invalid_request_body(
                f'Field "{merge_field.name}" ({merge_field.type}) cannot be used in'
                " fieldsToMergeOn: computed fields and this type are not supported"
            )
        merge_fields.append(merge_field)
    return merge_fields


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _merge_key(merge_fields: list[Field], cells: dict[str, Any]) -> tuple:
    for merge_field in merge_fields:
        if merge_field.id not in cells:
            raise invalid_request_body(
                f'Each record must have a value for "{merge_field.name}" (fieldsToMergeOn)'
            )
    return tuple(_hashable(cells[merge_field.id]) for merge_field in merge_fields)


def _merge_index(table: Table, merge_fields: list[Field]) -> dict[tuple, list[Record]]:
    """Existing records by their merge key: one pass over the table per request."""
    index: dict[tuple, list[Record]] = collections.defaultdict(list)
    for record in table.records.values():
        index[_merge_key(merge_fields, _key_cells(record, merge_fields))].append(record)
    return index


def _key_cells(record: Record, merge_fields: list[Field]) -> dict[str, Any]:
    return {each.id: record.cells.get(each.id) for each in merge_fields}


def _upsert_target(index: dict[tuple, list[Record]], key: tuple) -> Record | None:
    matches = index.get(key, [])
    if len(matches) > 1:
        raise unprocessable(  # (unverified) type
            "INVALID_RECORDS",
            f"Cannot upsert: multiple records ({len(matches)}) match the fieldsToMergeOn"
            f" values {list(key)}",
        )
    return matches[0] if matches else None
