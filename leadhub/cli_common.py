"""What every `leadhub` command shares: the consoles, the options, loading the
config, and how errors end a command.

An expected error (a wrong password, a bad config key, a store LeadHub cannot
use) prints one clear line and exits 2. Anything else is a bug: its
traceback goes to a log file, and the terminal gets one line saying where.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import traceback
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from rich.console import Console

from leadhub.errors import FatalError
from leadhub.i18n import _, translated_doc
from leadhub.logs import install_masking

console = Console()
err = Console(stderr=True)

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help=_("YAML config (see config/leadhub.example.yaml)")),
]
DbOption = Annotated[
    str | None, typer.Option("--db", help=_("the store: a SQLite file (default leadhub.db) or"
                                           " postgresql://user@host/db"))
]
PrefectOption = Annotated[
    bool, typer.Option("--prefect", help=_("run as a Prefect flow (as with PREFECT_API_URL set):"
                                           " visible in the Prefect UI"))
]
JsonOption = Annotated[
    bool, typer.Option("--json", help=_("the summary as JSON on stdout (logs on stderr)"))
]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help=_("no progress, no tables"))]


def fail(message: str) -> typer.Exit:
    err.print(_("[bold red]error:[/] {message}").format(message=message), highlight=False,
              soft_wrap=True)
    return typer.Exit(code=2)


def load(config: Path | None, db: str | None = None, **overrides: Any):
    """The settings of a command (the config, the built-in defaults without one)."""
    from leadhub.settings import load_settings

    try:
        return load_settings(config, store=db, **overrides)
    except FatalError as error:
        raise fail(str(error)) from None


def open_store(location: str, create: bool = False):
    from connectors.ledger import Ledger

    try:
        ledger = Ledger(location, create=create)
    except FatalError as error:
        raise fail(str(error)) from None
    if ledger.created:
        err.print(_("created a new store at {path}").format(path=ledger.path), highlight=False)
    return ledger


def through_prefect(asked: bool) -> bool:
    """Run through Prefect when asked, or when a Prefect server is configured."""
    return asked or bool(os.environ.get("PREFECT_API_URL"))


def error_log() -> Path:
    """Where the tracebacks of bugs go (XDG state folder)."""
    state = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    return Path(state) / "leadhub" / "errors.log"


def handled(command: Callable) -> Callable:
    """A command whose expected errors end it with one line and exit 2, and
    whose bugs leave their traceback in the error log."""

    @translated_doc
    @functools.wraps(command)
    def run(*args, **kwargs):
        install_masking()
        _log_to_stderr()
        try:
            return command(*args, **kwargs)
        except FatalError as error:
            raise fail(str(error)) from None
        except (typer.Exit, typer.Abort, click.exceptions.ClickException, KeyboardInterrupt):
            raise
        except Exception as error:  # a bug: the traceback goes to the log, not the terminal
            where = _keep_traceback(error)
            err.print(_("[bold red]error:[/] LeadHub hit an unexpected problem ({problem});"
                        " the details are in {where}. Please report it.").format(
                          problem=f"{type(error).__name__}: {error}", where=where),
                      highlight=False, soft_wrap=True)
            raise typer.Exit(code=1) from None

    return run


def _keep_traceback(error: BaseException) -> Path:
    path = error_log()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as log:
            log.write(f"--- {datetime.now().isoformat(timespec='seconds')} leadhub"
                      f" {' '.join(sys.argv[1:])}\n")
            log.write("".join(traceback.format_exception(error)))
    except OSError:
        return Path("(the log could not be written)")
    return path


class _Stderr(logging.StreamHandler):
    """Whatever sys.stderr is at the moment of writing (tests swap it)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def _log_to_stderr() -> None:
    """Warnings and errors of the steps on stderr, one line each, so stdout
    stays the command's output (a JSON summary, a table)."""
    root = logging.getLogger("leadhub")
    if any(getattr(handler, "leadhub_cli", False) for handler in root.handlers):
        return
    handler = _Stderr()
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.leadhub_cli = True
    root.addHandler(handler)
    root.setLevel(logging.INFO if os.environ.get("LEADHUB_VERBOSE") else logging.WARNING)
