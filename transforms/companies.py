"""Company names: quotes and the legal form moved out of the main name."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import lru_cache

from transforms.by_identity import ByIdentity

_QUOTES = "«»\"“”„'‘’`"
_PAIRS = {"«": "»", '"': '"', "“": "”", "„": "“", "'": "'"}


# The same companies recur all through an import: each spelling is split once.
COMPANY_CACHE = 1 << 16


def split_company(text: str, legal_forms: Mapping[str, Sequence[str]]) -> tuple[str, str]:
    """«ООО "Ромашка"» -> (`Ромашка`, `ООО`); `Acme, Inc.` -> (`Acme`, `Inc`)."""
    return _split(text, _patterns(legal_forms))


class _Forms:
    """One mapping's compiled patterns, hashed by identity as a cache key."""

    def __init__(self, patterns: list[tuple[str, re.Pattern, re.Pattern]]):
        self.patterns = patterns


@lru_cache(maxsize=COMPANY_CACHE)
def _split(text: str, forms: _Forms) -> tuple[str, str]:
    name = " ".join(text.split())
    if not name:
        return "", ""
    for canonical, leading, trailing in forms.patterns:
        match = leading.match(name) or trailing.match(name)
        if match:
            return _strip_quotes(match.group(1)), canonical
    return _strip_quotes(name), ""


# Compiled once per legal-forms mapping (the config's), not once per lead.
# each mapping's patterns, compiled once
_patterns = ByIdentity(lambda legal_forms: _Forms(
    [_form_patterns(c, s) for c, s in legal_forms.items()]))


def _form_patterns(canonical: str, spellings: Sequence[str]) -> tuple[str, re.Pattern, re.Pattern]:
    """A form stands at either end of the name, as a separate word, possibly
    inside the quotes people put around the whole thing."""
    longest_first = sorted(spellings, key=len, reverse=True)
    forms = "|".join(re.escape(s).replace(r"\ ", r"\s+") for s in longest_first)
    leading = re.compile(rf"^[{_QUOTES}\s]*(?:{forms})(?![\w.])[\s,]*(.+)$", re.IGNORECASE)
    trailing = re.compile(rf"^(.+?)[\s,]+(?:{forms})(?!\w)[{_QUOTES}\s]*$", re.IGNORECASE)
    return canonical, leading, trailing


def _strip_quotes(name: str) -> str:
    """Drop the quotes around the whole name and unbalanced leftovers only:
    inner quotes (`Ромашка "Плюс"`) are part of the name."""
    previous, cleaned = None, name.strip(" ,")
    while cleaned != previous:
        previous = cleaned
        if len(cleaned) >= 2 and _PAIRS.get(cleaned[0]) == cleaned[-1] and _balanced(cleaned[1:-1]):
            cleaned = cleaned[1:-1].strip()
        if cleaned.count('"') % 2:
            cleaned = cleaned.strip('"')
        if cleaned.count("«") != cleaned.count("»"):
            cleaned = cleaned.lstrip("«").rstrip("»")
    return " ".join(cleaned.split())


def _balanced(text: str) -> bool:
    return text.count('"') % 2 == 0 and text.count("«") == text.count("»")
