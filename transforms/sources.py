"""Lead source: one category from the fixed list, chosen by config rules."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from functools import lru_cache

from transforms.by_identity import ByIdentity

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
# A few signal combinations (channel, the CSV's source column) recur all
# through an import: each is categorized once.
CATEGORY_CACHE = 1 << 14


@dataclass(frozen=True)
class _Condition:
    key: str
    globs: tuple[str, ...]
    parts: tuple[str, ...]


@dataclass(frozen=True, eq=False)
class _Compiled:
    """Config rules with their patterns lower-cased once; hashed by identity."""

    rules: tuple[tuple[Mapping[str, object], tuple[_Condition, ...]], ...]
    keys: tuple[str, ...]  # the signals any rule looks at


def categorize(
    signals: Mapping[str, str],
    rules: Sequence[Mapping[str, object]],
    fallback: str,
) -> tuple[str, bool]:
    """The first rule whose every field matches wins; else (fallback, False)."""
    compiled = _compiled(rules)
    values = tuple(signals.get(key, "") for key in compiled.keys)
    try:
        return _categorized(compiled, values, fallback)
    except TypeError:  # a value that cannot be a cache key: the same rules, uncached
        return _first_match(compiled, values, fallback)


@lru_cache(maxsize=CATEGORY_CACHE)
def _categorized(compiled: _Compiled, values: tuple, fallback: str) -> tuple[str, bool]:
    return _first_match(compiled, values, fallback)


def _first_match(compiled: _Compiled, values: tuple, fallback: str) -> tuple[str, bool]:
    by_key = dict(zip(compiled.keys, values, strict=True))
    for rule, conditions in compiled.rules:
        if conditions and all(_matches_any(by_key[c.key], c) for c in conditions):
            return str(rule["category"]), True
    return fallback, False


def _matches_any(value: str, condition: _Condition) -> bool:
    value = value.strip().lower()
    if not value:
        return False
    return any(part in value for part in condition.parts) or any(
        fnmatchcase(value, glob) for glob in condition.globs)


def _compile(rules: Sequence[Mapping[str, object]]) -> _Compiled:
    compiled, keys = [], {}
    for rule in rules:
        conditions = tuple(_condition(key, patterns) for key, patterns in rule.items()
                           if key != "category")
        keys.update(dict.fromkeys(c.key for c in conditions))
        compiled.append((rule, conditions))
    return _Compiled(tuple(compiled), tuple(keys))


# each rules list compiled once
_compiled = ByIdentity(_compile)


def _condition(key: str, patterns: object) -> _Condition:
    lowered = [str(pattern).lower()
               for pattern in (patterns if isinstance(patterns, list | tuple) else [patterns])]
    globs = tuple(p for p in lowered if "*" in p or "?" in p)
    return _Condition(key, globs, tuple(p for p in lowered if p not in globs))
