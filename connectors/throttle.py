"""Client-side request budgets: at most `limit` requests in any rolling window
as the server counts them, shared by every thread of the process, with a pause
everyone waits out after the server said "too many" (Airtable's 30-second
penalty).

The server counts a request when it arrives, and we cannot see that moment:
the network and a busy machine delay a request by an unknown amount, so
requests that left a second apart can arrive closer together. What we do know
is that a request arrives after we started sending it and before we have its
answer. So a request holds its slot from its start until a full window after
its completion: a request that starts when an old one's slot frees starts a
window after that one's answer came, hence arrives more than a window after
it did, however either was delayed. Counting starts alone (as this module did)
let a slow answer and the quick burst after it reach the server six in a
second; this rule costs a request's latency once per window, a few per cent of
throughput against a nearby server.

The clock and the sleep are injectable, so tests move time themselves.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager

Clock = Callable[[], float]
Sleep = Callable[[float], None]


class SlidingWindow:
    """`with window.slot(): send()` waits until one more request fits, and
    keeps the slot until a window after the request is done."""

    def __init__(self, limit: int, seconds: float, clock: Clock = time.monotonic,
                 sleep: Sleep = time.sleep):
        self.limit = limit
        self.seconds = seconds
        self._clock = clock
        self._sleep = sleep
        self._in_flight = 0
        self._finished: deque[float] = deque()  # completion times, oldest first
        self._paused_until = float("-inf")
        self._changed = threading.Condition()

    @contextmanager
    def slot(self) -> Iterator[None]:
        self._take()
        try:
            yield
        finally:
            self._give_back()

    def pause(self, seconds: float) -> None:
        """No request starts for `seconds` from now."""
        with self._changed:
            self._paused_until = max(self._paused_until, self._clock() + seconds)

    def _take(self) -> None:
        while True:
            with self._changed:
                now = self._clock()
                while self._finished and now - self._finished[0] >= self.seconds:
                    self._finished.popleft()
                if now < self._paused_until:
                    delay = self._paused_until - now
                elif self._in_flight + len(self._finished) < self.limit:
                    self._in_flight += 1
                    return
                elif self._finished:
                    delay = self.seconds - (now - self._finished[0])
                else:
                    # Every slot is a request still in flight: the earliest one to
                    # free is a window after whichever of them answers first.
                    self._changed.wait()
                    continue
            self._sleep(delay)

    def _give_back(self) -> None:
        with self._changed:
            self._in_flight -= 1
            self._finished.append(self._clock())
            self._changed.notify_all()


_WINDOWS: dict[Hashable, SlidingWindow] = {}
_WINDOWS_LOCK = threading.Lock()


def shared_window(key: Hashable, limit: int, seconds: float, clock: Clock = time.monotonic,
                  sleep: Sleep = time.sleep) -> SlidingWindow:
    """The one window for `key` (a base, a user) and clock in this process;
    when two configs give different limits, the lower one holds."""
    with _WINDOWS_LOCK:
        window = _WINDOWS.setdefault((key, clock, sleep),
                                     SlidingWindow(limit, seconds, clock, sleep))
        window.limit = min(window.limit, limit)
        return window
