"""Company names: quotes and the legal form moved out of the main name."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

_QUOTES = "«»\"“”„'‘’`"
_PAIRS = {"«": "»", '"': '"', "“": "”", "„": "“", "'": "'"}


def split_company(text: str, legal_forms: Mapping[str, Sequence[str]]) -> tuple[str, str]:
    """«ООО "Ромашка"» -> (`Ромашка`, `ООО`); `Acme, Inc.` -> (`Acme`, `Inc`)."""
    name = " ".join(text.split())
    legal_form = ""
    for canonical, spellings in legal_forms.items():
        for spelling in sorted(spellings, key=len, reverse=True):
            stripped = _strip_form(name, spelling)
            if stripped is not None:
                name, legal_form = stripped, canonical
                break
        if legal_form:
            break
    return _strip_quotes(name), legal_form


def _strip_form(name: str, spelling: str) -> str | None:
    form = re.escape(spelling).replace(r"\ ", r"\s+")
    # A form stands at either end of the name, as a separate word, possibly
    # inside the quotes people put around the whole thing.
    leading = re.match(rf"^[{_QUOTES}\s]*{form}(?![\w.])[\s,]*(.+)$", name, re.IGNORECASE)
    if leading:
        return leading.group(1)
    trailing = re.match(rf"^(.+?)[\s,]+{form}(?![\w])[{_QUOTES}\s]*$", name, re.IGNORECASE)
    if trailing:
        return trailing.group(1)
    return None


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
