"""Run LeadHub in this process, without a Prefect server: the intake flow on a
schedule and at once when an IDLE connection announces new mail, and the
web-form endpoint."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import uvicorn

from connectors.imap import FolderWatcher
from connectors.webhook import create_app
from leadhub.errors import FatalError
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
    watch_mail: bool = True,
) -> int:
    """Call `run_once(run_number)` now, then every `interval` seconds or when
    new mail is announced, until `max_runs` runs (0: until `stop` is set)."""
    stop = stop or threading.Event()
    wake = threading.Event()
    watchers = [
        FolderWatcher(source, folder, lambda *_: wake.set(), stop)
        for source in settings.sources
        if watch_mail and isinstance(source, ImapSourceConfig) and source.idle
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


def start_web(settings: Settings) -> WebServer:
    """The web-form endpoint in a background thread, processing what it stores."""
    from flows.intake import process_then_follow_up

    app = create_app(settings, process=lambda: process_then_follow_up(settings))
    server = WebServer(uvicorn.Config(app, host=settings.web.host, port=settings.web.port,
                                      log_level="info", access_log=False))
    server.start()
    return server


class WebServer(uvicorn.Server):
    """uvicorn in a thread (it leaves signals to the main thread, which runs
    the schedule)."""

    def start(self) -> None:
        self.thread = threading.Thread(target=self.run, name="web", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise FatalError(
                    f"the web endpoint cannot listen on {self.config.host}:{self.config.port}"
                    " (in use by another program?); set web.port in the config"
                )
            time.sleep(0.05)
        log.info("web forms: http://%s:%d/forms/{form}", self.config.host, self.config.port)

    def stop(self) -> None:
        self.should_exit = True
        self.thread.join(timeout=30)
