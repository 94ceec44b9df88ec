"""Company names: quotes and the legal form moved out of the main name."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

_QUOTES = "«»\"“”„'‘’`"
_PAIRS = {"«": "»", '"': '"', "“": "”", "„": "“", "'": "'"}


def split_company(text: str, legal_forms: Mapping[str, Sequence[str]]) -> tuple[str, str]:
    """«ООО "Ромашка"» -> (`Ромашка`, `ООО`); `Acme, Inc.` -> (`Acme`, `Inc`)."""
    name = " ".join(text.split())
    if not name:
        return "", ""
    for canonical, leading, trailing in _patterns(legal_forms):
        match = leading.match(name) or trailing.match(name)
        if match:
            return _strip_quotes(match.group(1)), canonical
    return _strip_quotes(name), ""


# Compiled once per legal-forms mapping (the config's), not once per lead.
_compiled: dict[int, tuple[Mapping, list[tuple[str, re.Pattern, re.Pattern]]]] = {}


def _patterns(legal_forms: Mapping[str, Sequence[str]]) -> list[tuple[str, re.Pattern, re.Pattern]]:
    cached = _compiled.get(id(legal_forms))
    if cached is None or cached[0] is not legal_forms:
        cached = (legal_forms, [_form_patterns(c, s) for c, s in legal_forms.items()])
        _compiled[id(legal_forms)] = cached
    return cached[1]


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
