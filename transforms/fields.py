"""Map whatever labels a form, a CSV header or a notification uses onto lead fields."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache

_NOISE = re.compile(r"[\s_.:*()\[\]\-–—/\\?!«»\"]+")
# Fields holding part of a person's name (`Имя` + `Фамилия`, First + Last
# name): joined into `name` in the order the form or file has them.
NAME_PARTS = ("first_name", "middle_name", "last_name")
# A file's headers and a form's labels recur on every row: each is keyed once.
LABEL_CACHE = 1 << 14


@lru_cache(maxsize=LABEL_CACHE)
def label_key(label: str) -> str:
    """`E-mail:`, `e_mail` and ` EMAIL ` all give `email`."""
    return _NOISE.sub("", label.strip().lower().replace("ё", "е"))


class FieldMap:
    """Looks up the lead field for a label, using config aliases."""

    def __init__(self, aliases: Mapping[str, Sequence[str]]):
        self._by_label: dict[str, str] = {}
        for field_name, labels in aliases.items():
            for label in [field_name, *labels]:
                self._by_label.setdefault(label_key(label), field_name)

    def field_for(self, label: str) -> str | None:
        return self._by_label.get(label_key(label))

    def map_pairs(self, pairs: Iterable[tuple[str, str]]) -> tuple[dict[str, str], dict[str, str]]:
        """Split label/value pairs into known lead fields and the rest.

        The first non-empty value of a field wins; several phone or email
        fields are joined so that none is lost, and so are a name's parts.
        """
        known: dict[str, str] = {}
        unknown: dict[str, str] = {}
        for label, value in pairs:
            value = value.strip()
            if not value:
                continue
            field_name = self.field_for(label)
            if field_name is None:
                unknown.setdefault(label.strip(), value)
            elif field_name in ("phone", "email") and field_name in known:
                known[field_name] += ", " + value
            else:
                known.setdefault(field_name, value)
        _join_name_parts(known)
        return known, unknown


def _join_name_parts(known: dict[str, str]) -> None:
    """`name` and the name parts, in the order they came, as one `name`; a word
    already there is not added twice (a full name beside its first name)."""
    labels = [label for label in known if label == "name" or label in NAME_PARTS]
    if labels == ["name"] or not labels:
        return
    words: list[str] = []
    for label in labels:
        value = known.pop(label) if label in NAME_PARTS else known["name"]
        seen = {word.casefold() for word in words}
        words += [word for word in value.split() if word.casefold() not in seen]
    known["name"] = " ".join(words)
