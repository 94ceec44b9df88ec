"""People's names: single spaces, words capitalised unless written mixed-case."""

from __future__ import annotations

import re
from functools import lru_cache

_PARTICLES = {"оглы", "кызы", "van", "von", "de", "der", "da", "di", "la", "le", "bin", "ibn"}
_NOT_A_NAME = re.compile(r"[@\d<>]")
# Repeat customers write their names again and again: each spelling is read once.
NAME_CACHE = 1 << 16


@lru_cache(maxsize=NAME_CACHE)
def normalize_name(text: str) -> str:
    """`  иван   ПЕТРОВ ` -> `Иван Петров`; `McDonald` stays as written."""
    words = " ".join(text.replace('"', " ").split()).strip(" ,;")
    if not words or _NOT_A_NAME.search(words):
        return ""
    return " ".join(_normalize_word(word) for word in words.split(" "))


def _normalize_word(word: str) -> str:
    if word.lower() in _PARTICLES:
        return word.lower()
    if not (word.islower() or word.isupper()):
        return word
    return "-".join(part[:1].upper() + part[1:].lower() for part in word.split("-"))
