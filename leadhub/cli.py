"""The `leadhub` command: demo, ingest, run, sync, serve, export, status, replay,
check, schema init."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn
from rich.table import Table

from leadhub import SAMPLES_DIR
from leadhub.contacts_cli import contacts_app, dedupe
from leadhub.errors import FatalError
from leadhub.logs import install_masking
from leadhub.progress import listen
from leadhub.settings import Settings, load_settings
from transforms.exports import PRESETS
from transforms.masking import mask_pii

app = typer.Typer(
    help="LeadHub: mail and web-form leads in, clean deduplicated contacts out.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console()
err = Console(stderr=True)
schema_app = typer.Typer(help="Set up the tables of a sink (Airtable base, Google Sheet).",
                         no_args_is_help=True)
app.add_typer(schema_app, name="schema")
store_app = typer.Typer(help="Upgrade the store, or move it to PostgreSQL.", no_args_is_help=True)
app.add_typer(store_app, name="store")
app.add_typer(contacts_app, name="contacts")
app.command("dedupe")(dedupe)

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="YAML config (see config/leadhub.example.yaml)"),
]
DbOption = Annotated[
    str | None, typer.Option("--db", help="the store: a SQLite file (default leadhub.db) or"
                                         " postgresql://user@host/db")
]

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
)


def _fail(message: str) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code=2)


def _settings(config: Path | None, db: Path | None) -> Settings:
    try:
        return load_settings(config, store=str(db) if db else None)
    except FatalError as error:
        raise _fail(str(error)) from None


def _run_intake(config: Path | None, db: str | None, paths: list[Path] | None) -> dict[str, int]:
    """Run the intake flow (the same one Prefect deploys) with a progress bar."""
    from flows.intake import intake  # Prefect is imported only for commands that need it

    install_masking()
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=err,
        transient=True,
    ) as progress:
        bars: dict[str, int] = {}

        def show(stage: str, done: int, total: int | None) -> None:
            if stage not in bars:
                label = {"read": "reading sources", "process": "processing items"}.get(stage, stage)
                bars[stage] = progress.add_task(label, total=total)
            progress.update(bars[stage], completed=done, total=total)

        stop = listen(show)
        bars["start"] = progress.add_task("starting (local Prefect API)", total=None)
        try:
            return intake(
                config=str(config) if config else None,
                paths=[str(p) for p in paths] if paths else None,
                store=str(db) if db else None,
            )
        except FatalError as error:
            raise _fail(str(error)) from None
        finally:
            stop()


SINK_SUMMARY_ROWS = (
    ("created", "rows created"),
    ("updated", "rows updated"),
    ("unchanged", "rows unchanged"),
    ("failed", "rows refused (see leadhub status)"),
    ("deferred", "rows waiting for their contact"),
    ("rows_read", "changed rows read back"),
    ("rows_deleted_in_sink", "rows people deleted"),
    ("orders_read", "orders read back"),
    ("api_calls", "API calls"),
    ("rate_limited", "of them refused by the rate limit"),
    ("sink_failed", "sync failed (see the log; the next run catches up)"),
)


def _summary(stats: dict[str, int], title: str) -> None:
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("what")
    table.add_column("count", justify="right")
    for key, label in SUMMARY_ROWS:
        table.add_row(label, str(stats.get(key, 0)))
    console.print(table)
    for sink, sink_stats in (stats.get("sinks") or {}).items():
        _sink_summary(sink, sink_stats)
    if stats.get("alerts"):
        console.print("Alerts: " + ", ".join(
            f"{key.replace('_', ' ')} {value}" for key, value in stats["alerts"].items()))


def _sink_summary(sink: str, stats: dict[str, int]) -> None:
    table = Table(title=f"Sync to {sink}", show_header=False, title_justify="left")
    table.add_column("what")
    table.add_column("count", justify="right")
    for key, label in SINK_SUMMARY_ROWS:
        table.add_row(label, str(stats.get(key, 0)))
    console.print(table)


@app.command()
def ingest(
    paths: Annotated[
        list[Path], typer.Argument(help=".eml/.mbox/.csv/.json/.jsonl files or folders")
    ],
    db: DbOption = None,
    config: ConfigOption = None,
    table: Annotated[
        str | None, typer.Option(help="orders | order_items: import a CSV of that table")
    ] = None,
) -> None:
    """Ingest files and folders into the store, then process what is new.

    With --table, the CSV files are orders or order items for the reports.
    """
    from connectors.files import refused_inputs

    problems = refused_inputs(paths) if table is None else [
        f"no such file or folder: {path}" for path in paths if not path.exists()]
    if problems:
        raise _fail("\n".join(problems))
    settings = _settings(config, db)
    if table is not None:
        _import_table(settings, paths, table)
        return
    stats = _run_intake(config, db, paths)
    _summary(stats, "Ingest summary")


def _import_table(settings: Settings, paths: list[Path], table: str) -> None:
    from flows.orders import import_table

    try:
        result = import_table(settings, paths, table)
    except FatalError as error:
        raise _fail(str(error)) from None
    console.print(f"{result.imported} {table.replace('_', ' ')} imported")
    if result.problems:
        problems = Table(title=f"{len(result.problems)} row(s) not imported", title_justify="left")
        for column in ("file", "row", "what to fix"):
            problems.add_column(column)
        for path, number, reason in result.problems:
            problems.add_row(path, str(number), mask_pii(reason))
        err.print(problems)
        raise typer.Exit(code=1)


@app.command()
def run(config: ConfigOption = None, db: DbOption = None) -> None:
    """Run the intake flow once for every source in the config."""
    if config is None:
        raise _fail("run needs --config FILE (its sources: say what to read)")
    settings = _settings(config, db)
    if not settings.sources:
        raise _fail(f"{config}: sources is empty; add at least one source")
    stats = _run_intake(config, db, None)
    _summary(stats, "Run summary")
    if stats.get("failed_sources"):
        _warn_failed_sources(stats)
        raise typer.Exit(code=1)


@app.command()
def serve(
    config: ConfigOption = None,
    db: DbOption = None,
    interval: Annotated[int, typer.Option(help="seconds between intake runs", min=10)] = 300,
    max_runs: Annotated[int, typer.Option(help="stop after this many runs (0: never)")] = 0,
    only: Annotated[
        str | None, typer.Option(help="web: only the web-form endpoint; mail: no endpoint")
    ] = None,
) -> None:
    """Run until stopped (Ctrl-C): the intake on a schedule, mail by IDLE, web forms.

    Mailboxes with IDLE trigger a run within seconds of new mail; web-form
    posts are stored at once and processed in the background, and the
    schedule sweeps up anything left. With PREFECT_API_URL set, the schedule
    is handed to that Prefect server (runs show in its UI).
    """
    if config is None:
        raise _fail("serve needs --config FILE (its sources: say what to read)")
    if only not in (None, "web", "mail"):
        raise _fail(f"--only {only!r}: use web or mail")
    settings = _settings(config, db)
    has_forms = any(source.type == "webhook" for source in settings.sources)
    if only == "web" and not has_forms:
        raise _fail(f"--only web: {config} has no source of type webhook")
    if os.environ.get("PREFECT_API_URL") and only is None and not has_forms:
        from flows.intake import intake

        intake.serve(name="intake-local", interval=interval,
                     parameters={"config": str(config.resolve()),
                                 "store": settings.store})
        return
    from flows.serve import serve_locally, start_web

    web = None
    if has_forms and only != "mail":
        try:
            web = start_web(settings)
        except FatalError as error:
            raise _fail(str(error)) from None
        console.print(f"web forms at http://{settings.web.host}:{settings.web.port}/forms/<form>")
    try:
        serve_locally(settings, _scheduled_run(config, db, settings, sweep_only=only == "web"),
                      interval=interval, max_runs=max_runs, watch_mail=only != "web")
    except KeyboardInterrupt:
        console.print("stopped")
    finally:
        if web:
            web.stop()


def _scheduled_run(config: Path, db: Path | None, settings: Settings, sweep_only: bool):
    """One scheduled run: the whole intake flow, or (web only) a sweep that
    processes whatever the endpoint stored and has not been processed yet."""

    def run_once(number: int) -> None:
        stamp = time.strftime("%H:%M:%S")
        if sweep_only:
            from flows.intake import process_pending_items

            _summary(process_pending_items(settings), f"Sweep {number} at {stamp}")
            return
        stats = _run_intake(config, db, None)
        _summary(stats, f"Run {number} at {stamp}")
        _warn_failed_sources(stats)
        if settings.reminders.channels or settings.alerts:
            from flows.alerts import run_reminders

            # due tasks, and alerts that waited for quiet hours or a retry
            run_reminders(settings)

    return run_once


def _warn_failed_sources(stats: dict[str, int]) -> None:
    if stats.get("failed_sources"):
        err.print(f"[yellow]{stats['failed_sources']} source(s) could not be read this time;"
                  " `leadhub status` shows why[/]")


@app.command()
def replay(config: ConfigOption = None, db: DbOption = None) -> None:
    """Process quarantined items again (after a config fix)."""
    from connectors.ledger import Ledger

    settings = _settings(config, db)
    ledger = Ledger(settings.store)
    try:
        requeued = ledger.requeue()
    finally:
        ledger.close()
    console.print(f"{requeued} quarantined item(s) queued again")
    stats = _run_intake(config, db, [])
    _summary(stats, "Replay summary")


@app.command()
def export(
    out: Annotated[Path, typer.Option("--out", "-o", help="folder for the CSV files")],
    preset: Annotated[str, typer.Option(help="looker | powerbi | excel-ru")] = "looker",
    since: Annotated[
        str | None, typer.Option(help="only leads and orders from this date (YYYY-MM-DD)")
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="count nothing after this date (YYYY-MM-DD), so RFM and"
                                     " KPIs can be made again; default today"),
    ] = None,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Write the BI tables (contacts, leads, orders, clients, funnel, RFM, KPI...) as
    CSV in the preset's dialect, and the dashboard report.html."""
    from flows.export import export_tables

    if preset not in PRESETS:
        raise _fail(f"--preset {preset!r} is unknown; choose one of: {', '.join(PRESETS)}")
    since_date, as_of_date = _day_option("--since", since), _day_option("--as-of", as_of)
    settings = _settings(config, db)
    try:
        result = export_tables(settings, out, preset, since_date, as_of_date)
    except FatalError as error:
        raise _fail(str(error)) from None
    for name, path in result.files.items():
        console.print(f"{name:>13}: {path}")


def _day_option(option: str, text: str | None) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        raise _fail(f"{option} {text!r}: write the date as YYYY-MM-DD") from None


@app.command()
def status(db: DbOption = None, config: ConfigOption = None) -> None:
    """Counts, last runs, and the items that need review with their reasons."""
    from connectors.ledger import Ledger

    settings = _settings(config, db)
    try:
        ledger = Ledger(settings.store)
    except FatalError as error:
        raise _fail(str(error)) from None
    try:
        _print_status(ledger)
        _print_sources(ledger, settings.down_after_minutes)
        _print_sink_errors(ledger)
        _print_alerts(ledger)
    finally:
        ledger.close()


def _source_state(row, down_after_minutes: int) -> str:
    if not row["failing_since"]:
        return "[green]ok[/]"
    failing = datetime.now(UTC) - row["failing_since"]
    if failing > timedelta(minutes=down_after_minutes):
        return f"[bold red]DOWN[/] for {_minutes(failing)}"
    return f"[yellow]failing[/] for {_minutes(failing)}"


def _moment(value: datetime | None) -> str:
    """A stored moment as people read it: local time to the second."""
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S") if value else ""


def _minutes(span: timedelta) -> str:
    minutes = int(span.total_seconds() // 60)
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"


def _print_sources(ledger, down_after_minutes: int) -> None:
    table = Table(title="Sources", title_justify="left")
    for column in ("source", "folder", "state", "last success", "last message", "checkpoint",
                   "last error"):
        table.add_column(column)
    for row in ledger.source_health():
        table.add_row(row["source"], row["scope"], _source_state(row, down_after_minutes),
                      _moment(row["last_success_at"]) or "never", _moment(row["last_message_at"]),
                      row["checkpoint"] or "", mask_pii(row["last_error"]))
    console.print(table)


def _print_alerts(ledger) -> None:
    counts = ledger.alert_counts()
    if not counts:
        return
    console.print("Alerts: " + ", ".join(f"{n} {state}" for state, n in sorted(counts.items())))
    for row in ledger.alert_problems():
        console.print(f"  [yellow]failed[/] {row['rule']} -> {row['channel']}"
                      f" after {row['attempts']} attempt(s): {mask_pii(row['last_error'])}",
                      soft_wrap=True)


@app.command()
def digest(config: ConfigOption = None, db: DbOption = None) -> None:
    """Send yesterday's summary now (the digest flow runs it every morning)."""
    from flows.alerts import run_digest

    settings = _settings(config, db)
    if not settings.digest.channels:
        raise _fail("digest.channels is empty: name the channels the digest goes to")
    markdown, stats = run_digest(settings)
    console.print(markdown, markup=False, highlight=False)
    if stats.get("alerts_failed"):
        raise typer.Exit(code=1)


def _print_sink_errors(ledger) -> None:
    rows = ledger.sink_error_list()
    if not rows:
        return
    table = Table(title="Rows a sink refused (sent again once they change)",
                  title_justify="left")
    for column in ("sink", "table", "row", "since", "error"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["sink"], row["record_kind"], mask_pii(row["record_key"]),
                      _moment(row["failed_at"]), mask_pii(row["error"]))
    console.print(table)


def _print_status(ledger) -> None:
    counts = ledger.counts()
    table = Table(title=f"Store {ledger.path}", show_header=False, title_justify="left")
    table.add_column("what")
    table.add_column("count", justify="right")
    for key in (
        "contacts",
        "contacts_merged",
        "leads",
        "items_processed",
        "items_new",
        "items_skipped",
        "items_quarantined",
    ):
        table.add_row(key.replace("_", " "), str(counts.get(key, 0)))
    console.print(table)
    runs = Table(title="Last runs", title_justify="left")
    for column in ("run", "command", "started", "finished", "new leads", "quarantined"):
        runs.add_column(column)
    for row in ledger.last_runs():
        stats = json.loads(row["stats"])
        runs.add_row(
            str(row["run_id"]),
            row["command"],
            _moment(row["started_at"]),
            _moment(row["finished_at"]) or "[red]did not finish[/]",
            str(stats.get("new_leads", 0)),
            str(stats.get("quarantined", 0)),
        )
    console.print(runs)
    review = Table(title="Needs review", title_justify="left")
    for column in ("item", "state", "reason"):
        review.add_column(column)
    for row in ledger.export_review_items():
        review.add_row(row["item_id"], row["state"], mask_pii(row["reason"]))
    console.print(review)


@app.command()
def sync(
    config: ConfigOption = None,
    db: DbOption = None,
    sink: Annotated[str | None, typer.Option(help="only this sink (its name or type)")] = None,
) -> None:
    """Write the ledger's contacts and leads to the sinks and read people's work back."""
    from flows.sync import sync as sync_flow

    settings = _settings(config, db)
    if not settings.sinks:
        raise _fail("the config has no sinks: add an airtable or sheets sink (see README)")
    install_masking()
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                  MofNCompleteColumn(), console=err, transient=True) as progress:
        bars: dict[str, int] = {}

        def show(stage: str, done: int, total: int | None) -> None:
            if stage not in bars:
                bars[stage] = progress.add_task(stage, total=total)
            progress.update(bars[stage], completed=done, total=total)

        stop = listen(show)
        try:
            results = sync_flow(config=str(config) if config else None,
                                store=str(db) if db else None, sink=sink)
        except FatalError as error:
            raise _fail(str(error)) from None
        finally:
            stop()
    for name, stats in results.items():
        _sink_summary(name, stats)
    if any(stats.get("failed") for stats in results.values()):
        raise typer.Exit(code=1)


def _sinks_of(settings: Settings, kind: str | None = None) -> list:
    from flows.sync import SINK_BUILDERS

    return [SINK_BUILDERS[c.type](c, settings) for c in settings.sinks
            if kind is None or c.type == kind]


@schema_app.command("init")
def schema_init(
    kind: Annotated[str, typer.Argument(help="airtable or sheets")],
    config: ConfigOption = None,
) -> None:
    """Create the missing tables and fields (or worksheets and headers)."""
    if kind not in ("airtable", "sheets"):
        raise _fail(f"schema init {kind}: say airtable or sheets")
    settings = _settings(config, None)
    sinks = _sinks_of(settings, kind)
    if not sinks:
        raise _fail(f"the config has no {kind} sink: add one under sinks: (see README)")
    for sink in sinks:
        try:
            created, manual = sink.init_schema()
        except FatalError as error:
            raise _fail(str(error)) from None
        console.print(f"[bold]{sink.describe()}[/]: created {len(created)}")
        for what in created:
            console.print(f"  + {what}")
        if manual:
            console.print("  Add these computed fields by hand (the API cannot create them):")
            for what in manual:
                console.print(f"  - {what}")


@app.command()
def check(config: ConfigOption = None) -> None:
    """Validate the config, then each sink's tables: what is missing or of the wrong type."""
    settings = _settings(config, None)
    console.print(f"config OK: {len(settings.sources)} source(s), {len(settings.sinks)}"
                  f" sink(s), store {settings.store}")
    problems = 0
    for sink in _sinks_of(settings):
        try:
            found = sink.problems()
        except FatalError as error:
            raise _fail(str(error)) from None
        problems += len(found)
        if not found:
            console.print(f"{sink.describe()}: OK")
        for problem in found:
            console.print(f"{sink.describe()}: [yellow]{problem}[/]", soft_wrap=True)
        for step in sink.manual_steps():
            console.print(f"{sink.describe()}: to add by hand for the CRM's own totals: {step}",
                          soft_wrap=True, highlight=False)
    if problems:
        console.print(f"{problems} problem(s): `leadhub schema init airtable|sheets` creates"
                      " what is missing; map your own names under the sink's tables:")
        raise typer.Exit(code=1)


@app.command()
def demo(
    out: Annotated[
        Path, typer.Option("--out", "-o", help="where the demo store and CSVs go")
    ] = Path("demo-output"),
) -> None:
    """Ingest the bundled sample mail, form posts and CSVs, and export them."""
    from flows.export import export_tables

    store = out / "leadhub.db"
    _reset_demo(out, store)
    console.print(f"Ingesting the bundled samples from {SAMPLES_DIR} ...")
    stats = _run_intake(None, str(store), lead_samples())
    _summary(stats, "Demo summary")
    settings = _settings(None, str(store))
    for table in ("orders", "order_items"):
        _import_table(settings, [SAMPLES_DIR / "orders" / f"{table}.csv"], table)
    files = export_tables(settings, out).files
    console.print("\n[bold]Done.[/] Open these files:")
    for name, path in files.items():
        console.print(f"  {name:>13}: {path.resolve()}")
    console.print(f"  {'store':>13}: {store.resolve()}  (leadhub status --db {store})")


def lead_samples() -> list[Path]:
    """The bundled mail, form posts and lead lists (orders are imported apart)."""
    return sorted(p for p in SAMPLES_DIR.iterdir() if p.name != "orders" and p.suffix != ".md")


def _reset_demo(out: Path, store: Path) -> None:
    """The demo starts from an empty store each time, so its numbers repeat."""
    if out.exists() and not out.is_dir():
        raise _fail(f"--out {out} is a file; give a folder")
    for path in (store, Path(f"{store}-wal"), Path(f"{store}-shm")):
        path.unlink(missing_ok=True)


@store_app.command("migrate")
def store_migrate(db: DbOption = None, config: ConfigOption = None) -> None:
    """Bring the store to this LeadHub's schema (any command does it too)."""
    from connectors.ledger import Ledger
    from connectors.ledger.database import inspect_location, locate

    settings = _settings(config, db)
    try:
        before = inspect_location(locate(settings.store))
        ledger = Ledger(settings.store)
    except FatalError as error:
        raise _fail(str(error)) from None
    try:
        now_at = ledger.schema_version()
    finally:
        ledger.close()
    was = before.revision or (f"LeadHub 0.1 schema {before.legacy_version}"
                              if before.legacy_version is not None else "none")
    if was == now_at:
        console.print(f"{ledger.path}: already at schema {now_at}", soft_wrap=True)
    else:
        console.print(f"{ledger.path}: upgraded from {was} to schema {now_at}", soft_wrap=True)


@store_app.command("copy")
def store_copy(
    to: Annotated[str, typer.Option("--to", help="the new store: postgresql://user@host/db"
                                    " (password: PGPASSWORD) or a new SQLite file")],
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Copy every row of the store into a new, empty one, and check the counts.
    Then point `store:` in the config at the new one."""
    from connectors.ledger import Ledger
    from connectors.ledger.copy import copy_store

    settings = _settings(config, db)
    try:
        source = Ledger(settings.store)
        target = Ledger(to, create=True)
    except FatalError as error:
        raise _fail(str(error)) from None
    try:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      console=err, transient=True) as progress:
            bars: dict[str, int] = {}

            def show(table: str, done: int, total: int) -> None:
                if table not in bars:
                    bars[table] = progress.add_task(table, total=total)
                progress.update(bars[table], completed=done)

            copied = copy_store(source, target, show)
    except FatalError as error:
        raise _fail(str(error)) from None
    finally:
        source.close()
        target.close()
    table = Table(title=f"Copied {source.path} -> {target.path}", title_justify="left")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, count in copied.items():
        table.add_row(name, str(count))
    console.print(table)
    console.print(f"Every row arrived. Now set `store: {target.path}` in the config.")
