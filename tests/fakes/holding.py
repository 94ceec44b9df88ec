"""Holding a fake server's requests unanswered: a client frozen in the middle of
its work, so a test can kill it exactly there instead of hoping its timing
lands the kill mid-run."""

from __future__ import annotations

import threading


class RequestHold:
    """Once `arm(writes)`'s count of writes is answered, every later request waits
    until `release()`; `held` is set when the first one is waiting."""

    def __init__(self) -> None:
        self.held = threading.Event()
        self._after: int | None = None
        self._released = threading.Event()

    def arm(self, writes: int) -> threading.Event:
        self.held.clear()
        self._released.clear()
        self._after = writes
        return self.held

    def release(self) -> None:
        """Drop the held requests unanswered, and hold no more."""
        self._after = None
        self._released.set()

    def wait_if_due(self, writes_answered: int) -> None:
        """Hold this request if it is due; a held one is dropped on release (as if
        it never arrived: its client was killed while it waited), never applied."""
        if self._after is not None and writes_answered >= self._after:
            self.held.set()
            self._released.wait()
            raise ConnectionAbortedError("a held request is dropped")
