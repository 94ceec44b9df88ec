"""JSON from outside: the fast paths give what the full walks give."""

from __future__ import annotations

import json

import pytest

from transforms.json_input import (
    MAX_JSON_DEPTH,
    JsonInputError,
    json_depth,
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
