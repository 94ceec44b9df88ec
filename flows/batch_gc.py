"""Python's cyclic garbage collector during a run of batches.

A run keeps many objects alive for long (the contacts it read and wrote, the
normalizers' caches), and every automatic full collection walks all of them:
at 30,000 rows that was 29% of the intake's CPU (4.5 s of 17.8), more the
bigger the run got. Batches make next to no cycles (about one object a lead
is cyclic garbage), so while batches run the automatic collections are off
and each batch ends with a young collection (`after_batch`), which walks only
what that batch left alive and frees its cycles. Process-wide (the collector
is), so counted: the first run to start turns them off, the last to end turns
them back on, as the web endpoint's background thread and a command may run
at once.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

# The generation a batch's end collects: the young ones (0 and 1), never the
# oldest, which holds everything the run keeps.
YOUNG = 1

_lock = threading.Lock()
_running = 0
_was_enabled = False


@contextmanager
def collected_per_batch() -> Iterator[None]:
    """Automatic collections off while the batches inside run; the caller
    calls `after_batch()` when each batch is done."""
    global _running, _was_enabled
    with _lock:
        if _running == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _running += 1
    try:
        yield
    finally:
        with _lock:
            _running -= 1
            if _running == 0 and _was_enabled:
                gc.enable()


def after_batch() -> None:
    """Free the cycles a batch made (objects it left alive move on to the
    oldest generation, which the automatic collections look at again once
    the run is over)."""
    gc.collect(YOUNG)
