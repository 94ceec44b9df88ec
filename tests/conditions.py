"""Waiting for a condition, never for a length of time: a test that sleeps
for a coincidence passes on a fast machine and fails on a loaded one."""

from __future__ import annotations

import time
from collections.abc import Callable

POLL_SECONDS = 0.02


def wait_until(condition: Callable[[], bool], timeout: float = 30.0,
               what: str = "the condition") -> None:
    """Return once `condition()` is true; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not come true in {timeout:g} s"
        time.sleep(POLL_SECONDS)
