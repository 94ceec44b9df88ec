"""Map whatever labels a form, a CSV header or a notification uses onto lead fields."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

_NOISE = re.compile(r"[\s_.:*()\[\]\-–—/\\?!«»\"]+")


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
        fields are joined so that none is lost.
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
        return known, unknown
