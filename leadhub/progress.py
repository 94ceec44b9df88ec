"""A way for long steps to report progress to whoever shows it (the CLI's bar).

Steps call `report`; with no listener (a remote worker) it does nothing.
"""

from __future__ import annotations

from collections.abc import Callable

Listener = Callable[[str, int, int | None], None]
_listeners: list[Listener] = []


def listen(listener: Listener) -> Callable[[], None]:
    _listeners.append(listener)
    return lambda: _listeners.remove(listener)


def report(stage: str, done: int, total: int | None = None) -> None:
    for listener in list(_listeners):
        listener(stage, done, total)
