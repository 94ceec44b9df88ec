"""How commands show their work: progress bars with a rate and the time left,
the summary tables, or a JSON summary for scripts."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from leadhub.cli_common import console, err
from leadhub.progress import listen

SUMMARY_ROWS = (
    ("read", "items read"),
    ("new_items", "new items stored"),
    ("new_contacts", "new contacts"),
    ("updated_contacts", "updated contacts"),
    ("merged_contacts", "contacts merged"),
    ("new_leads", "new leads"),
    ("duplicate_items", "repeats of known leads"),
    ("skipped", "skipped (not leads)"),
    ("quarantined", "quarantined (need review)"),
    ("unmatched_source", f"leads with source {'Другое'!r} (no rule matched)"),
    ("ignored_files", "files not read (not a kind LeadHub reads)"),
)
SINK_SUMMARY_ROWS = (
    ("created", "rows created"),
    ("updated", "rows updated"),
    ("unchanged", "rows unchanged"),
    ("failed", "rows refused (see leadhub status)"),
    ("deferred", "rows waiting for their contact"),
    ("rows_read", "changed rows read back"),
    ("rows_deleted_in_sink", "rows people deleted"),
    ("orders_read", "orders read back"),
    ("pairs_same", "possible duplicates people merged"),
    ("pairs_different", "possible duplicates people kept apart"),
    ("api_calls", "API calls"),
    ("rate_limited", "of them refused by the rate limit"),
    ("sink_failed", "sync failed (see the log; the next run catches up)"),
)
STAGES = {"read": "reading sources", "process": "processing items"}


class RateColumn(ProgressColumn):
    """Items per second, once there is a rate to show."""

    def render(self, task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f}/s" if speed else "", style="progress.data.speed")


@contextmanager
def progress_shown(quiet: bool, starting: str = "") -> Iterator[None]:
    """A bar per stage the steps report (leadhub.progress), on stderr."""
    if quiet:
        yield
        return
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                  MofNCompleteColumn(), RateColumn(), TimeRemainingColumn(), console=err,
                  transient=True) as progress:
        bars: dict[str, int] = {}
        if starting:
            bars["start"] = progress.add_task(starting, total=None)

        def show(stage: str, done: int, total: int | None) -> None:
            if stage not in bars:
                bars[stage] = progress.add_task(STAGES.get(stage, stage), total=total)
            progress.update(bars[stage], completed=done, total=total)

        stop = listen(show)
        try:
            yield
        finally:
            stop()


def show_summary(stats: dict[str, Any], title: str, as_json: bool = False,
                 quiet: bool = False) -> None:
    if as_json:
        console.print_json(json.dumps(stats, ensure_ascii=False, default=str))
        return
    if quiet:
        return
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("what")
    table.add_column("count", justify="right")
    for key, label in SUMMARY_ROWS:
        table.add_row(label, str(stats.get(key, 0)))
    console.print(table)
    for path in stats.get("ignored") or ():
        console.print(f"  not read: {path}", highlight=False)
    for sink, sink_stats in (stats.get("sinks") or {}).items():
        show_sink_summary(sink, sink_stats)
    if stats.get("alerts"):
        console.print("Alerts: " + ", ".join(
            f"{key.replace('_', ' ')} {value}" for key, value in stats["alerts"].items()))


def show_sink_summary(sink: str, stats: dict[str, int]) -> None:
    table = Table(title=f"Sync to {sink}", show_header=False, title_justify="left")
    table.add_column("what")
    table.add_column("count", justify="right")
    for key, label in SINK_SUMMARY_ROWS:
        table.add_row(label, str(stats.get(key, 0)))
    console.print(table)
