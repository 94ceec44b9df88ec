"""What is worked out once per config object (compiled rules), found by the
object's identity: the config's lists and dicts are not hashable, and a
config is never changed in place."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

Built = TypeVar("Built")

# Config objects kept at once; more means a caller makes new rules each time.
KEPT = 8


class ByIdentity(Generic[Built]):
    """`build(config)`, once per config object. The object is held with what
    was built from it, so its id is never another object's."""

    def __init__(self, build: Callable[[object], Built]):
        self.build = build
        self._kept: dict[int, tuple[object, Built]] = {}

    def __call__(self, config: object) -> Built:
        kept = self._kept.get(id(config))
        if kept is None or kept[0] is not config:
            if len(self._kept) >= KEPT:
                self._kept.clear()
            kept = (config, self.build(config))
            self._kept[id(config)] = kept
        return kept[1]
