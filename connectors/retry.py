"""The one retry policy for transient I/O errors: capped exponential backoff
with full jitter, a bounded number of attempts."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator


def backoff_delays(attempts: int, base: float = 1.0, cap: float = 30.0) -> Iterator[float]:
    """Delays before retry 1..attempts-1: random in [0, min(cap, base * 2**n)]."""
    for attempt in range(attempts - 1):
        yield random.uniform(0, min(cap, base * 2**attempt))


def sleep_backoff(delay: float, stop: Callable[[], bool] | None = None,
                  clock: Callable[[], float] = time.monotonic,
                  sleep: Callable[[float], None] = time.sleep) -> None:
    """Sleep, in short steps when a stop condition can cut the wait short."""
    deadline = clock() + delay
    while (remaining := deadline - clock()) > 0:
        if stop and stop():
            return
        sleep(min(remaining, 0.2))
