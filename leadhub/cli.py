"""The `leadhub` command: demo, ingest, run, sync, serve, export, status, replay,
check, digest, alert, schema init, store, contacts, dedupe.

Commands run LeadHub's steps in this process and answer at once; with
`--prefect` (or PREFECT_API_URL set) the work runs as a Prefect flow instead,
visible in the Prefect UI. Each command imports only what it needs.
"""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from leadhub import SAMPLES_DIR
from leadhub.alerts_cli import alert_app
from leadhub.check_cli import check
from leadhub.cli_common import (
    ConfigOption,
    DbOption,
    JsonOption,
    PrefectOption,
    QuietOption,
    console,
    err,
    fail,
    handled,
    load,
    open_store,
    through_prefect,
)
from leadhub.cli_output import progress_shown, show_sink_summary, show_summary
from leadhub.contacts_cli import contacts_app, dedupe
from leadhub.errors import FatalError
from leadhub.i18n import N_, _
from leadhub.prefect_cli import limits_app
from leadhub.status_cli import status
from leadhub.tasks_cli import tasks_app
from transforms.masking import mask_pii

if TYPE_CHECKING:  # the config model is imported by the commands that load one
    from leadhub.settings import Settings

app = typer.Typer(
    help=_("LeadHub: mail and web-form leads in, clean deduplicated contacts out."),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
schema_app = typer.Typer(help=_("Set up the tables of a sink (Airtable base, Google Sheet)."),
                         no_args_is_help=True)
store_app = typer.Typer(help=_("Upgrade the store, or move it to PostgreSQL."),
                        no_args_is_help=True)
app.add_typer(schema_app, name="schema")
app.add_typer(store_app, name="store")
app.add_typer(contacts_app, name="contacts")
app.add_typer(tasks_app, name="tasks")
app.add_typer(alert_app, name="alert")
app.add_typer(limits_app, name="limits")
app.command("dedupe")(dedupe)
app.command("status")(status)
app.command("check")(check)

PRESETS = ("looker", "powerbi", "excel-ru")
# The samples are from March 2024: the demo's reports are counted as of its
# end, so that they are the same whatever the day.
DEMO_AS_OF = date(2024, 3, 31)
IMPORTED = {"orders": N_("{count} orders imported"),
            "order_items": N_("{count} order items imported")}


# --- running the intake -----------------------------------------------------------


def run_intake(settings: Settings, paths: list[Path] | None, *, prefect: bool = False,
               quiet: bool = False, config: Path | None = None,
               workers: int | None = None) -> dict[str, Any]:
    """The intake, here or as a Prefect flow, with progress on stderr."""
    if through_prefect(prefect):
        from flows.deployments import intake as intake_flow

        with progress_shown(quiet, N_("running as a Prefect flow")):
            state = intake_flow(config=str(config) if config else None,
                                paths=[str(p) for p in paths] if paths else None,
                                store=settings.store, return_state=True)
        return _flow_result(state)
    from flows.intake import run_intake as run_here

    with progress_shown(quiet):
        stats = run_here(settings, paths, workers=workers)
    if stats.get("store_created"):
        err.print(_("created a new store at {path}").format(path=settings.store), highlight=False)
    return stats


def _flow_result(state) -> Any:
    """A flow's result; its clear failure (a FatalError it reported) as ours."""
    from prefect.exceptions import FailedRun

    try:
        return state.result()
    except FailedRun as failure:
        raise FatalError(str(failure)) from None


@app.command()
@handled
def ingest(
    paths: Annotated[
        list[Path], typer.Argument(help=_(".eml/.mbox/.csv/.json/.jsonl files or folders"))
    ],
    db: DbOption = None,
    config: ConfigOption = None,
    table: Annotated[
        str | None, typer.Option(help=_("orders | order_items: import a CSV of that table"))
    ] = None,
    prefect: PrefectOption = False,
    as_json: JsonOption = False,
    quiet: QuietOption = False,
    workers: Annotated[int | None, typer.Option(
        min=1, help="processes that parse and normalize (default: 2, or 1 on one core)")] = None,
) -> None:
    """Ingest files and folders into the store, then process what is new.

    With --table, the CSV files are orders or order items for the reports.
    """
    from connectors.files import refused_inputs

    problems = refused_inputs(paths) if table is None else [
        _("{path}: no such file or folder").format(path=path)
        for path in paths if not path.exists()]
    if problems:
        raise fail("\n".join(problems))
    settings = load(config, db)
    if table is not None:
        _import_table(settings, paths, table)
        return
    stats = run_intake(settings, paths, prefect=prefect, quiet=quiet or as_json, config=config,
                       workers=workers)
    show_summary(stats, _("Ingest summary"), as_json, quiet)


def _import_table(settings: Settings, paths: list[Path], table: str) -> None:
    from flows.orders import import_table

    result = import_table(settings, paths, table)
    console.print(_(IMPORTED[table]).format(count=result.imported))
    if result.unmatched:
        console.print(_("[yellow]{count} order(s) have a phone or email that is no contact's:"
                        " they are kept and count in the totals, but in no client's figures"
                        " until a lead from that person arrives[/]").format(
                          count=result.unmatched))
    if result.problems:
        problems = Table(title=_("{count} row(s) not imported").format(
            count=len(result.problems)), title_justify="left")
        for column in (_("file"), _("row"), _("what to fix")):
            problems.add_column(column)
        for path, number, reason in result.problems:
            problems.add_row(path, str(number), mask_pii(reason))
        err.print(problems)
        raise typer.Exit(code=1)


@app.command()
@handled
def run(config: ConfigOption = None, db: DbOption = None, prefect: PrefectOption = False,
        as_json: JsonOption = False, quiet: QuietOption = False) -> None:
    """Read every source in the config once, process, sync the sinks, send alerts
    and the reminders that are due."""
    if config is None:
        raise fail(_("run needs --config FILE (its sources: say what to read)"))
    settings = load(config, db)
    if not settings.sources:
        raise fail(_("{config}: sources is empty; add at least one source").format(config=config))
    stats = run_intake(settings, None, prefect=prefect, quiet=quiet or as_json, config=config)
    stats["reminders"] = _reminders(settings)
    show_summary(stats, _("Run summary"), as_json, quiet)
    if stats.get("failed_sources"):
        _warn_failed_sources(stats)
        raise typer.Exit(code=1)


def _reminders(settings: Settings) -> dict[str, int]:
    """Due tasks, and alerts (the digest too) that waited for quiet hours or a
    retry: a cron user gets them from `run` as a `serve` user does."""
    if not settings.channels:
        return {}
    from flows.alerts import run_reminders

    return run_reminders(settings)


@app.command()
@handled
def serve(
    config: ConfigOption = None,
    db: DbOption = None,
    interval: Annotated[int, typer.Option(help=_("seconds between intake runs"), min=10)] = 300,
    max_runs: Annotated[int, typer.Option(help=_("stop after this many runs (0: never)"))] = 0,
    only: Annotated[
        str | None, typer.Option(help=_("web: only the web-form endpoint; mail: no endpoint"))
    ] = None,
) -> None:
    """Run until stopped (Ctrl-C): the intake on a schedule, mail by IDLE, web forms.

    Mailboxes with IDLE trigger a run within seconds of new mail; web-form
    posts are stored at once and processed in the background, and the
    schedule sweeps up anything left. With PREFECT_API_URL set, the schedule
    is handed to that Prefect server (runs show in its UI).
    """
    if config is None:
        raise fail(_("serve needs --config FILE (its sources: say what to read)"))
    if only not in (None, "web", "mail"):
        raise fail(f"--only {only!r}: use web or mail")
    settings = load(config, db)
    has_forms = any(source.type == "webhook" for source in settings.sources)
    if only == "web" and not has_forms:
        raise fail(f"--only web: {config} has no source of type webhook")
    if through_prefect(False) and only is None and not has_forms:
        from flows.deployments import intake as intake_flow

        intake_flow.serve(name="intake-local", interval=interval,
                          parameters={"config": str(config.resolve()), "store": settings.store})
        return
    from flows.serve import serve_locally, start_web

    web = None
    if has_forms and only != "mail":
        web = start_web(settings)
        console.print(_("web forms at {url}").format(
            url=f"http://{settings.web.host}:{settings.web.port}/forms/<form>"))
    try:
        serve_locally(settings, _scheduled_run(config, settings, sweep_only=only == "web"),
                      interval=interval, max_runs=max_runs, watch_mail=only != "web")
    except KeyboardInterrupt:
        console.print(_("stopped"))
    finally:
        if web:
            web.stop()


def _scheduled_run(config: Path, settings: Settings, sweep_only: bool):
    """One scheduled run: the whole intake, or (web only) a sweep that
    processes whatever the endpoint stored and has not been processed yet."""

    def run_once(number: int) -> None:
        stamp = time.strftime("%H:%M:%S")
        if sweep_only:
            from flows.intake import process_pending

            show_summary(process_pending(settings),
                         _("Sweep {number} at {time}").format(number=number, time=stamp))
            return
        try:
            stats = run_intake(settings, None, config=config)
        except FatalError as error:
            # serve goes on: the next run may find the mailbox fixed
            err.print(_("[bold red]error:[/] {message}").format(message=error), highlight=False,
                      soft_wrap=True)
            return
        show_summary(stats, _("Run {number} at {time}").format(number=number, time=stamp))
        _warn_failed_sources(stats)
        _reminders(settings)

    return run_once


def _warn_failed_sources(stats: dict[str, Any]) -> None:
    if stats.get("failed_sources"):
        err.print(_("[yellow]{count} source(s) could not be read this time;"
                    " `leadhub status` shows why[/]").format(count=stats["failed_sources"]))


@app.command()
@handled
def replay(config: ConfigOption = None, db: DbOption = None, as_json: JsonOption = False,
           quiet: QuietOption = False) -> None:
    """Process quarantined items again (after a config fix), then sync and alert."""
    from flows.intake import process_pending, sync_and_alert

    settings = load(config, db)
    ledger = open_store(settings.store)
    try:
        requeued = ledger.requeue()
    finally:
        ledger.close()
    if not as_json:
        console.print(_("{count} quarantined item(s) queued again").format(count=requeued))
    with progress_shown(quiet or as_json):
        stats: dict[str, Any] = dict(process_pending(settings))
        stats.update(sync_and_alert(settings))
    show_summary(stats, _("Replay summary"), as_json, quiet)


# --- reports and the CRM ------------------------------------------------------------


@app.command()
@handled
def export(
    out: Annotated[Path, typer.Option("--out", "-o", help=_("folder for the CSV files"))],
    preset: Annotated[str, typer.Option(help=_("looker | powerbi | excel-ru"))] = "looker",
    since: Annotated[
        str | None, typer.Option(help=_("only leads and orders from this date (YYYY-MM-DD)"))
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help=_("count nothing after this date (YYYY-MM-DD), so RFM"
                                       " and KPIs can be made again; default today")),
    ] = None,
    db: DbOption = None,
    config: ConfigOption = None,
    prefect: PrefectOption = False,
) -> None:
    """Write the BI tables (contacts, leads, orders, clients, funnel, RFM, KPI...) as
    CSV in the preset's dialect, and the dashboard report.html."""
    if preset not in PRESETS:
        raise fail(_("--preset {preset} is unknown; choose one of: {presets}").format(
            preset=repr(preset), presets=", ".join(PRESETS)))
    since_date, as_of_date = _day_option("--since", since), _day_option("--as-of", as_of)
    settings = load(config, db)
    if through_prefect(prefect):
        from flows.deployments import export_bi

        files = _flow_result(export_bi(out=str(out), config=str(config) if config else None,
                                       store=settings.store, preset=preset, since=since_date,
                                       as_of=as_of_date, return_state=True))
        files = {name: Path(path) for name, path in files.items()}
    else:
        from flows.export import export_tables

        open_store(settings.store).close()  # one clear line when there is no store
        files = export_tables(settings, out, preset, since_date, as_of_date).files
    console.print(_("The BI tables and the dashboard, in {folder}:").format(folder=out),
                  highlight=False, soft_wrap=True)
    for name, path in files.items():
        console.print(f"{name:>19}: {path}")


def _day_option(option: str, text: str | None) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        raise fail(_("{option} {text}: write the date as YYYY-MM-DD").format(
            option=option, text=repr(text))) from None


@app.command()
@handled
def digest(config: ConfigOption = None, db: DbOption = None) -> None:
    """Send yesterday's summary now (the digest flow runs it every morning)."""
    from flows.alerts import run_digest

    settings = load(config, db)
    if not settings.digest.channels:
        raise fail(_("digest.channels is empty: name the channels the digest goes to"))
    open_store(settings.store).close()
    markdown, stats = run_digest(settings)
    console.print(markdown, markup=False, highlight=False)
    if stats.get("alerts_failed"):
        raise typer.Exit(code=1)


@app.command()
@handled
def sync(
    config: ConfigOption = None,
    db: DbOption = None,
    sink: Annotated[str | None, typer.Option(help=_("only this sink (its name or type)"))] = None,
    prefect: PrefectOption = False,
    as_json: JsonOption = False,
    quiet: QuietOption = False,
) -> None:
    """Write the store's contacts and leads to the sinks and read people's work back."""
    settings = load(config, db)
    if not settings.sinks:
        raise fail(_("the config has no sinks: add an airtable or sheets sink (see README)"))
    open_store(settings.store).close()
    with progress_shown(quiet or as_json):
        if through_prefect(prefect):
            from flows.deployments import sync as sync_flow

            results = _flow_result(sync_flow(config=str(config) if config else None,
                                             store=settings.store, sink=sink, return_state=True))
        else:
            from flows.sync import sync_all

            results = sync_all(settings, sink)
    if as_json:
        show_summary(results, "", as_json=True)
    elif not quiet:
        for name, stats in results.items():
            show_sink_summary(name, stats)
    if any(stats.get("failed") for stats in results.values()):
        raise typer.Exit(code=1)


def _sinks_of(settings: Settings, kind: str | None = None) -> list:
    from flows.sync import SINK_BUILDERS

    return [SINK_BUILDERS[c.type](c, settings) for c in settings.sinks
            if kind is None or c.type == kind]


@schema_app.command("init")
@handled
def schema_init(
    kind: Annotated[str, typer.Argument(help=_("airtable or sheets"))],
    config: ConfigOption = None,
) -> None:
    """Create the missing tables and fields (or worksheets and headers)."""
    if kind not in ("airtable", "sheets"):
        raise fail(_("schema init {kind}: say airtable or sheets").format(kind=kind))
    settings = load(config)
    sinks = _sinks_of(settings, kind)
    if not sinks:
        raise fail(_("the config has no {kind} sink: add one under sinks: (see README)").format(
            kind=kind))
    for sink in sinks:
        created, manual = sink.init_schema()
        console.print(_("[bold]{sink}[/]: created {count}").format(sink=sink.describe(),
                                                                 count=len(created)))
        for what in created:
            console.print(f"  + {what}")
        if manual:
            console.print(_("  Add these computed fields by hand (the API cannot create them):"))
            for what in manual:
                console.print(f"  - {what}")


# --- the demo ---------------------------------------------------------------------


@app.command()
@handled
def demo(
    out: Annotated[
        Path, typer.Option("--out", "-o", help=_("where the demo store and CSVs go"))
    ] = Path("demo-output"),
) -> None:
    """Ingest the bundled sample mail, form posts and CSVs, and export them."""
    from flows.export import export_tables

    store = out / "leadhub.db"
    _reset_demo(out, store)
    console.print(_("Ingesting the bundled samples from {folder} ...").format(folder=SAMPLES_DIR))
    settings = load(None, str(store))
    stats = run_intake(settings, lead_samples())
    show_summary(stats, _("Demo summary"))
    for table in ("orders", "order_items"):
        _import_table(settings, [SAMPLES_DIR / "orders" / f"{table}.csv"], table)
    files = export_tables(settings, out, as_of=DEMO_AS_OF).files
    console.print(_("\n[bold]Done.[/] Open these files:"))
    for name, path in files.items():
        console.print(f"  {name:>19}: {path.resolve()}")
    console.print(f"  {_('store'):>19}: {store.resolve()}  (leadhub status --db {store})")


def lead_samples() -> list[Path]:
    """The bundled mail, form posts and lead lists (orders are imported apart)."""
    return sorted(p for p in SAMPLES_DIR.iterdir() if p.name != "orders" and p.suffix != ".md")


def _reset_demo(out: Path, store: Path) -> None:
    """The demo starts from an empty store each time, so its numbers repeat."""
    if out.exists() and not out.is_dir():
        raise fail(_("--out {out} is a file; give a folder").format(out=out))
    for path in (store, Path(f"{store}-wal"), Path(f"{store}-shm")):
        path.unlink(missing_ok=True)


# --- the store --------------------------------------------------------------------


@store_app.command("migrate")
@handled
def store_migrate(db: DbOption = None, config: ConfigOption = None) -> None:
    """Bring the store to this LeadHub's schema (any command does it too)."""
    from connectors.ledger.database import inspect_location, locate

    settings = load(config, db)
    before = inspect_location(locate(settings.store))
    ledger = open_store(settings.store)
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
@handled
def store_copy(
    to: Annotated[str, typer.Option("--to", help=_("the new store: postgresql://user@host/db"
                                    " (password: PGPASSWORD) or a new SQLite file"))],
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Copy every row of the store into a new, empty one, and check the counts.
    Then point `store:` in the config at the new one."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from connectors.ledger.copy import copy_store

    settings = load(config, db)
    source = open_store(settings.store)
    try:
        target = open_store(to, create=True)
    except BaseException:
        source.close()
        raise
    try:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      console=err, transient=True) as progress:
            bars: dict[str, int] = {}

            def show(table: str, done: int, total: int) -> None:
                if table not in bars:
                    bars[table] = progress.add_task(table, total=total)
                progress.update(bars[table], completed=done)

            copied = copy_store(source, target, show)
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
