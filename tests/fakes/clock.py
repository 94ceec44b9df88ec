"""A clock the test owns, for the fakes' rate windows and the connectors' limiters.

Give the same FakeClock to a fake server (`clock=`) and to a sink (`clock=`,
`sleep=clock.sleep`): the server's windows then see the time the client waited
for, and nothing depends on how fast the machine runs. Time moves only when a
test calls `advance` or someone calls `sleep`; it is kept in whole nanoseconds,
so a sleep until a moment reaches that moment exactly.
"""

from __future__ import annotations

import math
import threading


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self._nanoseconds = round(start * 1e9)
        self._lock = threading.Lock()
        self.slept: list[float] = []  # every sleep asked for, in order

    def __call__(self) -> float:
        return self._nanoseconds / 1e9

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock does not go back")
        with self._lock:
            self._nanoseconds += math.ceil(seconds * 1e9)

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.advance(max(seconds, 0.0))
