"""Client-side request budgets: at most `limit` requests in any rolling window,
shared by every thread of the process, with a pause everyone waits out after
the server said "too many" (Airtable's 30-second penalty)."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Hashable


class SlidingWindow:
    """`wait()` blocks until one more request fits in the window."""

    def __init__(self, limit: int, seconds: float):
        self.limit = limit
        self.seconds = seconds
        self._sent: deque[float] = deque()
        self._paused_until = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        while True:
            with self._lock:
                now = time.monotonic()
                while self._sent and now - self._sent[0] >= self.seconds:
                    self._sent.popleft()
                delay = max(self._paused_until - now, 0.0)
                if not delay and len(self._sent) < self.limit:
                    self._sent.append(now)
                    return
                if not delay:
                    delay = self.seconds - (now - self._sent[0])
            time.sleep(delay)

    def pause(self, seconds: float) -> None:
        with self._lock:
            self._paused_until = max(self._paused_until, time.monotonic() + seconds)


_WINDOWS: dict[Hashable, SlidingWindow] = {}
_WINDOWS_LOCK = threading.Lock()


def shared_window(key: Hashable, limit: int, seconds: float) -> SlidingWindow:
    """The one window for `key` (a base, a user) in this process; when two
    configs give different limits, the lower one holds."""
    with _WINDOWS_LOCK:
        window = _WINDOWS.setdefault(key, SlidingWindow(limit, seconds))
        window.limit = min(window.limit, limit)
        return window
