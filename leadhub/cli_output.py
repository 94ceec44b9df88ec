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
from leadhub.i18n import N_, _
from leadhub.progress import listen

SUMMARY_ROWS = (
    ("read", N_("items read")),
    ("new_items", N_("new items stored")),
    ("new_contacts", N_("new contacts")),
    ("updated_contacts", N_("updated contacts")),
    ("merged_contacts", N_("contacts merged")),
    ("new_leads", N_("new leads")),
    ("duplicate_items", N_("repeats of known leads")),
    ("skipped", N_("skipped (not leads)")),
    ("quarantined", N_("quarantined (need review)")),
    ("unmatched_source", N_("leads with source 'Другое' (no rule matched)")),
    ("ignored_files", N_("files not read (not a kind LeadHub reads)")),
)
SINK_SUMMARY_ROWS = (
    ("created", N_("rows created")),
    ("updated", N_("rows updated")),
    ("unchanged", N_("rows unchanged")),
    ("failed", N_("rows refused (see leadhub status)")),
    ("deferred", N_("rows waiting for their contact")),
    ("rows_read", N_("changed rows read back")),
    ("rows_deleted_in_sink", N_("rows people deleted")),
    ("orders_read", N_("orders read back")),
    ("pairs_same", N_("possible duplicates people merged")),
    ("pairs_different", N_("possible duplicates people kept apart")),
    ("api_calls", N_("API calls")),
    ("rate_limited", N_("of them refused by the rate limit")),
    ("sink_failed", N_("sync failed (see the log; the next run catches up)")),
    ("sink_busy", N_("not synced: another sync of this sink is running")),
)
STAGES = {"read": N_("reading sources"), "process": N_("processing items")}


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
            bars["start"] = progress.add_task(_(starting), total=None)

        def show(stage: str, done: int, total: int | None) -> None:
            if stage not in bars:
                bars[stage] = progress.add_task(_(STAGES.get(stage, stage)), total=total)
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
        table.add_row(_(label), str(stats.get(key, 0)))
    console.print(table)
    for path in stats.get("ignored") or ():
        console.print(_("  not read: {path}").format(path=path), highlight=False)
    for sink, sink_stats in (stats.get("sinks") or {}).items():
        show_sink_summary(sink, sink_stats)
    if stats.get("alerts"):
        console.print(_("Alerts: ") + ", ".join(
            f"{key.replace('_', ' ')} {value}" for key, value in stats["alerts"].items()))


def show_sink_summary(sink: str, stats: dict[str, int]) -> None:
    table = Table(title=_("Sync to {sink}").format(sink=sink), show_header=False,
                  title_justify="left")
    table.add_column("what")
    table.add_column("count", justify="right")
    for key, label in SINK_SUMMARY_ROWS:
        table.add_row(_(label), str(stats.get(key, 0)))
    console.print(table)
