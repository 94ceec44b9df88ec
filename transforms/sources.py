"""Lead source: one category from the fixed list, chosen by config rules."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fnmatch import fnmatchcase

# The signals a rule may look at; DESIGN.md "Normalization rules".
RULE_FIELDS = (
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "form",
    "mailbox",
    "sender_domain",
    "referrer",
    "channel",
    "source_text",
)


def categorize(
    signals: Mapping[str, str],
    rules: Sequence[Mapping[str, object]],
    fallback: str,
) -> tuple[str, bool]:
    """The first rule whose every field matches wins; else (fallback, False)."""
    for rule in rules:
        conditions = {key: value for key, value in rule.items() if key != "category"}
        if conditions and all(
            _matches_any(signals.get(key, ""), patterns) for key, patterns in conditions.items()
        ):
            return str(rule["category"]), True
    return fallback, False


def _matches_any(value: str, patterns: object) -> bool:
    value = value.strip().lower()
    if not value:
        return False
    for pattern in patterns if isinstance(patterns, list | tuple) else [patterns]:
        pattern = str(pattern).lower()
        if "*" in pattern or "?" in pattern:
            if fnmatchcase(value, pattern):
                return True
        elif pattern in value:
            return True
    return False
