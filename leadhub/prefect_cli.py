"""`leadhub limits`: the Prefect rate limits that every worker's Airtable and
Sheets requests share (connectors/shared_limits.py), shown, and created on the
Prefect server when missing."""

from __future__ import annotations

import os

import typer
from rich.table import Table

from leadhub.cli_common import ConfigOption, console, fail, handled, load
from leadhub.i18n import _

limits_app = typer.Typer(help=_("The shared Airtable/Sheets rate limits on a Prefect server."),
                         invoke_without_command=True)


def _specs(config):
    from flows.sync import build_sink

    settings = load(config)
    specs = []
    for sink_config in settings.sinks:
        sink, _ = build_sink(settings, sink_config.name)
        specs += sink.shared_limits()
    return specs


@limits_app.callback()
@handled
def limits(ctx: typer.Context, config: ConfigOption = None) -> None:
    """The limits the config's sinks need, and the command that makes each."""
    if ctx.invoked_subcommand is not None:
        return
    specs = _specs(config)
    if not specs:
        console.print(_("no sinks in the config: no shared limits needed"))
        return
    table = Table(title=_("Shared rate limits"), title_justify="left")
    for column in ("name", "limit (burst)", "slot decay /s"):
        table.add_column(column)
    for spec in specs:
        table.add_row(spec.name, str(spec.limit), f"{spec.slot_decay_per_second:g}")
    console.print(table)
    console.print(_("`leadhub limits create` makes the missing ones, as these would:"))
    for spec in specs:
        console.print(f"  {spec.command()}", soft_wrap=True, highlight=False)


@limits_app.command("create")
@handled
def create(config: ConfigOption = None) -> None:
    """Create the missing limits on the Prefect server (PREFECT_API_URL);
    one a person changed is left as it is."""
    from connectors.shared_limits import ensure_limit

    if not os.environ.get("PREFECT_API_URL"):
        raise fail(_("no Prefect server: set PREFECT_API_URL (e.g. http://127.0.0.1:4200/api)"))
    for spec in _specs(config):
        if ensure_limit(spec):
            console.print(_("created: {name} (limit {limit}, slot decay {decay}/s)").format(
                name=spec.name, limit=spec.limit, decay=f"{spec.slot_decay_per_second:g}"))
        else:
            console.print(_("exists: {name} (left as it is)").format(name=spec.name))
