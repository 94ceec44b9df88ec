"""Run the intake flow on a schedule in this process, without a Prefect server,
and at once when an IDLE connection announces new mail."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from connectors.imap import FolderWatcher
from leadhub.settings import ImapSourceConfig, Settings

log = logging.getLogger("leadhub.serve")

# A burst of mail (a newsletter to several folders, a batch of form posts)
# becomes one run, not one run per message.
DEBOUNCE_SECONDS = 1.0


def serve_locally(
    settings: Settings,
    run_once: Callable[[int], None],
    interval: float,
    max_runs: int = 0,
    stop: threading.Event | None = None,
) -> int:
    """Call `run_once(run_number)` now, then every `interval` seconds or when
    new mail is announced, until `max_runs` runs (0: until `stop` is set)."""
    stop = stop or threading.Event()
    wake = threading.Event()
    watchers = [
        FolderWatcher(source, folder, lambda *_: wake.set(), stop)
        for source in settings.sources
        if isinstance(source, ImapSourceConfig) and source.idle
        for folder in source.folders
    ]
    for watcher in watchers:
        watcher.start()
    runs = 0
    try:
        while not stop.is_set():
            wake.clear()
            runs += 1
            run_once(runs)
            if max_runs and runs >= max_runs:
                break
            if wake.wait(timeout=interval) and not stop.is_set():
                log.info("new mail announced; running the intake")
                stop.wait(DEBOUNCE_SECONDS)
    finally:
        stop.set()
        for watcher in watchers:
            watcher.join(timeout=15)
    return runs
