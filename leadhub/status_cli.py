"""`leadhub status`: counts, the last runs (intake, sync, web forms), the
health of every source, what needs review grouped by reason, refused rows,
and alerts: those waiting for a retry and those given up, with what to do.
Read-only: it never changes the store."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from rich.table import Table

from leadhub.cli_common import ConfigOption, DbOption, console, handled, load, open_store
from leadhub.i18n import N_, _
from transforms.masking import mask_pii

# Items of one reason named in full before "and N more" (--all: every one).
SHOWN_PER_REASON = 5
# Alerts waiting or given up listed before "and N more" (--all: every one).
SHOWN_ALERTS = 20
COUNTS = (("contacts", N_("contacts")), ("contacts_merged", N_("contacts merged")),
          ("leads", N_("leads")), ("items_processed", N_("items processed")),
          ("items_new", N_("items new")), ("items_skipped", N_("items skipped")),
          ("items_quarantined", N_("items quarantined")))


@handled
def status(db: DbOption = None, config: ConfigOption = None,
           everything: Annotated[bool, typer.Option(
               "--all", help=_("every item that needs review and every alert waiting or given"
                             " up, not the first few"))]
           = False) -> None:
    """Counts, last runs, sources, and the items that need review by reason."""
    settings = load(config, db)
    ledger = open_store(settings.store)
    try:
        _print_counts(ledger)
        _print_runs(ledger)
        _print_sources(ledger, settings.down_after_minutes)
        _print_review(ledger, everything)
        _print_sink_errors(ledger)
        _print_alerts(ledger, settings, everything)
    finally:
        ledger.close()


def moment(value: datetime | None) -> str:
    """A stored moment as people read it: local time to the second."""
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S") if value else ""


def _print_counts(ledger) -> None:
    counts = ledger.counts()
    table = Table(title=_("Store {path}").format(path=ledger.path), show_header=False,
                  title_justify="left")
    table.add_column("what")
    table.add_column("count", justify="right")
    for key, label in COUNTS:
        table.add_row(_(label), str(counts.get(key, 0)))
    console.print(table)


def _print_runs(ledger) -> None:
    runs = Table(title=_("Last runs"), title_justify="left")
    for column in (_("run"), _("command"), _("started"), _("finished"), _("new leads"),
                   _("quarantined")):
        runs.add_column(column)
    for row in ledger.last_runs():
        stats = json.loads(row["stats"])
        runs.add_row(str(row["run_id"]), row["command"], moment(row["started_at"]),
                     moment(row["finished_at"]) or _("[red]did not finish[/]"),
                     str(stats.get("new_leads", 0)), str(stats.get("quarantined", 0)))
    console.print(runs)


def _source_state(row, down_after_minutes: int) -> str:
    if not row["failing_since"]:
        return _("[green]ok[/]")
    failing = datetime.now(UTC) - row["failing_since"]
    if failing > timedelta(minutes=down_after_minutes):
        return _("[bold red]DOWN[/] for {time}").format(time=_minutes(failing))
    return _("[yellow]failing[/] for {time}").format(time=_minutes(failing))


def _minutes(span: timedelta) -> str:
    minutes = int(span.total_seconds() // 60)
    if minutes >= 60:
        return _("{hours} h {minutes} min").format(hours=minutes // 60, minutes=minutes % 60)
    return _("{minutes} min").format(minutes=minutes)


def _print_sources(ledger, down_after_minutes: int) -> None:
    table = Table(title=_("Sources"), title_justify="left")
    for column in (_("source"), _("scope"), _("state"), _("last success"), _("last item"),
                   _("checkpoint"), _("last error")):
        table.add_column(column)
    for row in ledger.source_health():
        table.add_row(row["source"], row["scope"], _source_state(row, down_after_minutes),
                      moment(row["last_success_at"]) or _("never"), moment(row["last_message_at"]),
                      row["checkpoint"] or "", mask_pii(row["last_error"]))
    console.print(table)


def where_from(meta: dict, item_id: str, kind: str) -> str:
    """Where an item came from, as people find it: the file and its row (a
    message's place in an archive), the mailbox folder, the form."""
    path = meta.get("path", "")
    if path:
        name = path.rsplit("/", 1)[-1]
        place = meta.get("row", "")
        if kind == "row" and place:
            return _("{file} row {row}").format(file=name, row=place)
        return f"{name} #{place}" if place.isdigit() and place != "0" else name
    if meta.get("mailbox"):
        return f"{meta['mailbox']} {meta.get('folder', '')} uid {meta.get('uid', '')}".strip()
    if meta.get("form"):
        return _("form {form}").format(form=meta["form"])
    return item_id


def _print_review(ledger, everything: bool) -> None:
    by_reason: dict[tuple[str, str], list[str]] = defaultdict(list)
    totals: Counter = Counter()
    for row in ledger.export_review_items():
        reason = _reason_group(row["reason"])
        totals[(row["state"], reason)] += 1
        if everything or len(by_reason[(row["state"], reason)]) < SHOWN_PER_REASON:
            by_reason[(row["state"], reason)].append(
                where_from(json.loads(row["meta"] or "{}"), row["item_id"], row["kind"]))
    table = Table(title=_("Needs review (by reason; `--all` lists every item)"),
                  title_justify="left")
    for column in (_("state"), _("reason"), _("items"), _("where")):
        table.add_column(column)
    for (state, reason), count in sorted(totals.items(), key=lambda pair: (-pair[1], pair[0])):
        places = by_reason[(state, reason)]
        more = count - len(places)
        shown = ", ".join(places) + (_(" and {count} more").format(count=more) if more > 0
                                      else "")
        table.add_row(state, mask_pii(reason), str(count), mask_pii(shown))
    console.print(table)


def _reason_group(reason: str) -> str:
    """What items with the same problem share: the reason without the detail
    in brackets that differs from item to item."""
    head, _, _ = reason.partition(" (")
    return head or reason


def _print_sink_errors(ledger) -> None:
    rows = ledger.sink_error_list()
    if not rows:
        return
    table = Table(title=_("Rows a sink refused (sent again once they change)"),
                  title_justify="left")
    for column in (_("sink"), _("table"), _("row"), _("since"), _("error")):
        table.add_column(column)
    for row in rows:
        table.add_row(row["sink"], row["record_kind"], mask_pii(row["record_key"]),
                      moment(row["failed_at"]), mask_pii(row["error"]))
    console.print(table)


def _print_alerts(ledger, settings, everything: bool) -> None:
    counts = ledger.alert_counts()
    if not counts:
        return
    console.print(_("Alerts: ") + ", ".join(f"{n} {state}"
                                            for state, n in sorted(counts.items())))
    _print_retrying(ledger, settings.delivery.retry_for_hours, everything)
    _print_given_up(ledger, settings.channels, counts.get("failed", 0), everything)


def _print_retrying(ledger, retry_for_hours: float, everything: bool) -> None:
    rows = ledger.retrying_alerts()
    if not rows:
        return
    table = Table(title=_("Alerts waiting for a retry (each is tried for {hours} h after its"
                          " first failure)").format(hours=f"{retry_for_hours:g}"),
                  title_justify="left")
    for column in (_("channel"), _("rule"), _("alert"), _("attempts"), _("failing since"),
                   _("next try"), _("last error")):
        table.add_column(column)
    now = datetime.now(UTC)
    for row in _shown(rows, everything):
        next_try = _("the next run") if row["send_after"] <= now else moment(row["send_after"])
        table.add_row(row["channel"], row["rule"], mask_pii(row["title"]), str(row["attempts"]),
                      moment(row["failing_since"]), next_try, mask_pii(row["last_error"]))
    console.print(table)
    _more(len(rows), everything)
    console.print(_("`leadhub alert test CHANNEL` checks a channel now."))


def _print_given_up(ledger, channels, failed: int, everything: bool) -> None:
    if not failed:
        return
    table = Table(title=_("Alerts given up (not sent)"), title_justify="left")
    for column in (_("channel"), _("rule"), _("alert"), _("attempts"), _("error"),
                   _("what to do")):
        table.add_column(column)
    for row in ledger.alert_problems(limit=failed if everything else SHOWN_ALERTS):
        table.add_row(row["channel"], row["rule"], mask_pii(row["title"]), str(row["attempts"]),
                      mask_pii(row["last_error"]), _what_to_do(row, channels))
    console.print(table)
    _more(failed, everything)


def _what_to_do(row, channels) -> str:
    channel = row["channel"]
    replay = f"`leadhub alert replay --channel {channel}`"
    if row["given_up"] == "unconfirmed":
        return _("it may have arrived: look in {channel}; to send it anyway,"
                 " `leadhub alert replay --channel {channel} --unconfirmed`").format(
                     channel=channel)
    if channel not in channels:
        return _("put channel {channel} back under channels:, then {replay}").format(
            channel=channel, replay=replay)
    return _("fix the channel (`leadhub alert test {channel}`), then {replay}").format(
        channel=channel, replay=replay)


def _shown(rows: list, everything: bool) -> list:
    return rows if everything else rows[:SHOWN_ALERTS]


def _more(total: int, everything: bool) -> None:
    if not everything and total > SHOWN_ALERTS:
        console.print(_("and {count} more (`leadhub status --all` lists them)").format(
            count=total - SHOWN_ALERTS))
