"""JSON from outside (form posts, exported submissions), read without surprises.

`json.loads` raises three different exceptions for input people or bots can
send: `JSONDecodeError` for broken syntax, a plain `ValueError` for an integer
longer than Python's conversion limit, and `RecursionError` for deep nesting.
`load_json` turns all of them into one `JsonInputError` that says what is
wrong, and refuses nesting deeper than any real form post. `json_bytes` writes
a decoded value back even when it holds a lone surrogate (`"\\ud800"` is valid
JSON but not encodable text).
"""

from __future__ import annotations

import codecs
import json
import re
import sys
from collections.abc import Iterable, Iterator

# Real posts and exports nest a handful of levels (Typeform: about 7); deeper
# is a bot, and recursive code reading it would hit Python's recursion limit.
MAX_JSON_DEPTH = 32
_DIGITS_LIMIT = sys.get_int_max_str_digits() or 4300
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# Where a decoded value can get a lone surrogate from: the character itself,
# or a `\uD800`-`\uDFFF` escape (a pair decodes whole, but is looked at too).
_MAYBE_SURROGATE = re.compile(r"[\ud800-\udfff]|\\u[dD][89a-fA-F]")
BROKEN_CHARACTERS = "broken characters (half of a character pair) were replaced by \ufffd"


class JsonInputError(ValueError):
    """The bytes are not JSON LeadHub can read; the message says why."""


def load_json(data: bytes | str, max_depth: int = MAX_JSON_DEPTH) -> object:
    """Parse UTF-8 JSON (a BOM allowed), nested at most `max_depth` deep."""
    return _parsed(_text_of(data), max_depth)


def load_clean_json(data: bytes | str, max_depth: int = MAX_JSON_DEPTH) -> tuple[object, bool]:
    """`without_lone_surrogates(load_json(data))`; a text without a surrogate
    or its escape is not walked, as nothing in it can need replacing."""
    text = _text_of(data)
    value = _parsed(text, max_depth)
    if "\\u" in text:
        maybe = _MAYBE_SURROGATE.search(text) is not None
    else:  # no escape: only the text's own characters, and UTF-8 bytes decode to none
        maybe = not isinstance(data, bytes) and has_lone_surrogate(text)
    return without_lone_surrogates(value) if maybe else (value, False)


def _text_of(data: bytes | str) -> str:
    try:
        return data.decode("utf-8-sig") if isinstance(data, bytes) else data
    except UnicodeDecodeError as error:
        raise JsonInputError(f"not UTF-8 text (byte {error.start})") from None


def _parsed(text: str, max_depth: int) -> object:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise JsonInputError(f"not valid JSON ({error.msg} at character {error.pos})") from None
    except ValueError:
        raise JsonInputError(
            f"a number in the JSON has more than {_DIGITS_LIMIT} digits") from None
    except RecursionError:
        raise JsonInputError(f"JSON nested too deep; at most {max_depth} levels") from None
    if text.count("{") + text.count("[") <= max_depth:
        return value  # each level opens with one of them: it cannot nest deeper
    depth = json_depth(value)
    if depth > max_depth:
        raise JsonInputError(f"JSON nested {depth} levels deep; at most {max_depth}")
    return value


# JSON's own white space (str.isspace knows more, which JSON refuses)
_JSON_SPACE = frozenset(" \t\n\r")
_DECODER = json.JSONDecoder()
_AFTER_VALUE = _JSON_SPACE | {",", "]", "}"}


def json_values(chunks: Iterable[bytes]) -> Iterator[object]:
    """The values of a UTF-8 JSON document given as chunks of bytes, read a
    value at a time: each element of a top-level array, else the one value.
    The same values, and the same refusals, as `json.loads` of the whole
    decoded text (JSONDecodeError or ValueError, RecursionError,
    UnicodeDecodeError), only a refusal may come after some values."""
    reader = _JsonReader(iter(chunks))
    if reader.peek() != "[":
        yield json.loads(reader.rest())
        return
    reader.pos += 1
    if reader.peek() == "]":
        reader.pos += 1
    else:
        while True:
            yield reader.value()
            after = reader.peek()
            reader.pos += 1
            if after == "]":
                break
            if after != ",":
                raise json.JSONDecodeError("Expecting ',' delimiter", reader.buffer,
                                           reader.pos - 1)
    if reader.peek() != "":
        raise json.JSONDecodeError("Extra data", reader.buffer, reader.pos)


class _JsonReader:
    """Decoded text of the chunks, filled as the parse needs it."""

    def __init__(self, chunks: Iterator[bytes]):
        self.chunks, self.decoder = chunks, codecs.getincrementaldecoder("utf-8-sig")()
        self.buffer, self.pos, self.ended = "", 0, False

    def fill(self) -> bool:
        """More text; False at the end."""
        if self.ended:
            return False
        for chunk in self.chunks:
            text = self.decoder.decode(chunk)
            if text:
                # what is parsed already goes: the buffer holds what is not
                self.buffer, self.pos = self.buffer[self.pos:] + text, 0
                return True
        self.buffer, self.pos = self.buffer[self.pos:] + self.decoder.decode(b"", final=True), 0
        self.ended = True
        return True

    def peek(self) -> str:
        """The next character after white space ("" at the end), not taken."""
        while True:
            while self.pos < len(self.buffer) and self.buffer[self.pos] in _JSON_SPACE:
                self.pos += 1
            if self.pos < len(self.buffer) or not self.fill():
                return self.buffer[self.pos:self.pos + 1]

    def value(self) -> object:
        """The value at `pos`: decoded again with more text until what follows
        it is read and can follow a value (`-2.5e` cut from `-2.5e-07` decodes
        as -2.5), or the text ends."""
        self.peek()  # raw_decode takes no white space before the value
        while True:
            try:
                value, end = _DECODER.raw_decode(self.buffer, self.pos)
            except json.JSONDecodeError:
                if self.fill():
                    continue
                raise
            if (end < len(self.buffer) and self.buffer[end] in _AFTER_VALUE) or not self.fill():
                self.pos = end
                return value

    def rest(self) -> str:
        while self.fill():
            pass
        return self.buffer[self.pos:]


def json_depth(value: object) -> int:
    """How deep lists and objects nest (a scalar is 0), without recursion."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        current, depth = stack.pop()
        if isinstance(current, dict):
            children = current.values()
        elif isinstance(current, list):
            children = current
        else:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children)
    return deepest


def json_bytes(value: object) -> bytes:
    """UTF-8 JSON in the order it came (a form's field order is its name order);
    a lone surrogate is kept as its `\\ud800` escape."""
    try:
        return json.dumps(value, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        return json.dumps(value, ensure_ascii=True).encode()


def has_lone_surrogate(text: str) -> bool:
    return _LONE_SURROGATE.search(text) is not None


def replace_lone_surrogates(text: str) -> str:
    """Half of a character (a surrogate without its pair) becomes U+FFFD."""
    return _LONE_SURROGATE.sub("\ufffd", text)


def without_lone_surrogates(value: object) -> tuple[object, bool]:
    """A decoded JSON value with every lone surrogate in its keys and strings
    replaced (a site that cut a message in the middle of an emoji), and
    whether there was any."""
    if isinstance(value, str):
        clean = replace_lone_surrogates(value)
        return clean, clean != value
    if isinstance(value, list):
        items = [without_lone_surrogates(item) for item in value]
        return [item for item, _ in items], any(changed for _, changed in items)
    if isinstance(value, dict):
        pairs = [(without_lone_surrogates(k), without_lone_surrogates(v))
                 for k, v in value.items()]
        clean = {key: item for (key, _), (item, _) in pairs}
        return clean, any(k_changed or v_changed for (_, k_changed), (_, v_changed) in pairs)
    return value, False
