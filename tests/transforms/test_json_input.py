"""JSON from outside: the fast paths give what the full walks give."""

from __future__ import annotations

import json
import random

import pytest

from transforms.json_input import (
    MAX_JSON_DEPTH,
    JsonInputError,
    json_depth,
    json_values,
    load_clean_json,
    load_json,
    without_lone_surrogates,
)

TEXTS = [
    pytest.param('{"Имя": "Иван", "Телефон": "89123456789"}', id="plain-row"),
    pytest.param('{"name": "\\ud800"}', id="lone-high-surrogate"),
    pytest.param('{"name": "\\uDFFF"}', id="lone-low-surrogate-upper-case"),
    pytest.param('{"\\udc00": "x"}', id="lone-surrogate-in-a-key"),
    pytest.param('{"name": "\\ud83d\\ude00"}', id="escaped-pair-is-one-character"),
    pytest.param('{"name": "😀"}', id="astral-character"),
    pytest.param('{"name": "\\\\ud800"}', id="escaped-backslash-before-u"),
    pytest.param('{"a": {"b": ["\\ud800", {"c": "\\udbff x"}]}}', id="nested-lone-surrogates"),
    pytest.param('["\\u00e9", "\\ud7ff", "\\ue000"]', id="escapes-beside-the-range"),
    pytest.param('"\\ud800"', id="scalar-string"),
    pytest.param("12", id="number"),
    pytest.param('{"a": null, "b": [1, 2.5, true]}', id="non-strings"),
]


@pytest.mark.parametrize("text", TEXTS)
def test_clean_load_is_the_walk_over_the_load(text):
    expected = without_lone_surrogates(load_json(text.encode()))
    assert load_clean_json(text.encode()) == expected
    assert load_clean_json(text) == expected


def test_a_surrogate_in_the_text_itself_is_replaced():
    # only a str (not UTF-8 bytes) can hold one unescaped
    assert load_clean_json('{"name": "a\ud800"}') == ({"name": "a\ufffd"}, True)


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("depth", [1, MAX_JSON_DEPTH - 1, MAX_JSON_DEPTH, MAX_JSON_DEPTH + 1])
def test_depth_limit_with_and_without_the_bracket_count(depth):
    for text in (_nested(depth), json.dumps({"note": "[" * 40, "v": json.loads(_nested(depth))})):
        if json_depth(json.loads(text)) > MAX_JSON_DEPTH:
            with pytest.raises(JsonInputError, match="levels deep"):
                load_json(text)
        else:
            assert load_json(text) == json.loads(text)


@pytest.mark.parametrize("text", ['{"name": "a\ud800"}', '{"name": "a\udc00", "b": "\\u00e9"}',
                                  '{"name": "\\u00e9 plain"}'])
def test_characters_of_a_str_are_looked_at_with_or_without_escapes(text):
    assert load_clean_json(text) == without_lone_surrogates(load_json(text))


def _whole(data: bytes) -> list | str:
    """What `json.loads` of the whole decoded text gives: the array's elements
    or the one value, or that it refuses."""
    try:
        parsed = json.loads(data.decode("utf-8-sig"))
    except (ValueError, RecursionError, UnicodeDecodeError):
        return "refused"
    return parsed if isinstance(parsed, list) else [parsed]


def _streamed(data: bytes, sizes: random.Random) -> list | str:
    chunks, start = [], 0
    while start < len(data):
        size = sizes.choice((1, 2, 3, 7, 64, 4096))
        chunks.append(data[start:start + size])
        start += size
    try:
        return list(json_values(chunks))
    except (ValueError, RecursionError, UnicodeDecodeError):
        return "refused"


def _random_value(rng: random.Random, depth: int = 0) -> object:
    kind = rng.randrange(8 if depth < 3 else 5)
    if kind == 0:
        return rng.choice([None, True, False])
    if kind == 1:
        return rng.choice([0, -7, 12345678901234567890, 1.5, -2.5e-7, 1e300])
    if kind in (2, 3, 4):
        return "".join(rng.choice("aЯ \"\\\n\t/😀\u2028") for _ in range(rng.randrange(12)))
    if kind in (5, 6):
        return {f"k{n}": _random_value(rng, depth + 1) for n in range(rng.randrange(4))}
    return [_random_value(rng, depth + 1) for _ in range(rng.randrange(4))]


def _spaced(text: str, rng: random.Random) -> str:
    """The JSON text with white space (JSON's, and some JSON refuses) between tokens."""
    out = []
    for character in text:
        out.append(character)
        if character in ",:[]{}" and rng.random() < 0.3:
            out.append(rng.choice([" ", "\n", "\r\n", "\t", "  \n "]))
    return "".join(out)


def test_a_document_read_a_value_at_a_time_gives_what_json_loads_gives():
    rng = random.Random(20261202)
    for _ in range(3000):
        value = [_random_value(rng) for _ in range(rng.randrange(6))] if rng.random() < 0.8 \
            else _random_value(rng)
        text = _spaced(json.dumps(value, ensure_ascii=rng.random() < 0.3), rng)
        data = (b"\xef\xbb\xbf" if rng.random() < 0.1 else b"") + text.encode()
        mutation = rng.randrange(6)
        if mutation == 1 and data:  # cut short
            data = data[:rng.randrange(len(data))]
        elif mutation == 2:  # a byte changed
            spot = rng.randrange(len(data) + 1)
            data = data[:spot] + rng.choice([b",", b"]", b"x", b"\xff", b" ", b"\x0b", b"1"]) \
                + data[spot + 1:]
        elif mutation == 3:  # something after the document
            data += rng.choice([b" ", b"\n", b"x", b"[]", b"\xef\xbb\xbf", b"\x0c"])
        assert _streamed(data, rng) == _whole(data), data


def test_a_document_read_a_value_at_a_time_refuses_what_json_loads_refuses():
    for data in (b"", b"   ", b"[", b"[1,]", b"[1 2]", b"[1]x", b"{", b"[" * 100_000,
                 b'[{"a": 1}, ' + b"9" * 5000 + b"]", b"[\xff]", b"\xef\xbb\xbf\xef\xbb\xbf[]"):
        assert _streamed(data, random.Random(1)) == _whole(data) == "refused", data
    assert _streamed(b" [ ] ", random.Random(1)) == [] and _streamed(b"7", random.Random(1)) == [7]
