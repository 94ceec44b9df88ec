"""`leadhub check`: everything a run would need, checked without a run and
without changing anything: the config, the store, each source (paths, mailbox
logins and folders, forms), each sink's tables; and what it did not check."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field

from rich.table import Table

from leadhub.cli_common import ConfigOption, console, fail, handled, load
from leadhub.errors import FatalError, TransientError
from leadhub.i18n import N_, _

OK, PROBLEM, UNCHECKED = N_("[green]ok[/]"), N_("[yellow]problem[/]"), N_("[dim]not checked[/]")


@dataclass
class Findings:
    rows: list[tuple[str, str, str]] = field(default_factory=list)
    sink_states: list[tuple[bool, str]] = field(default_factory=list)

    def add(self, what: str, state: str, detail: str, sink: bool = False) -> None:
        self.rows.append((what, state, detail))
        self.sink_states.append((sink, state))

    @property
    def problems(self) -> int:
        return sum(1 for _, state, _ in self.rows if state == PROBLEM)


@handled
def check(config: ConfigOption = None) -> None:
    """Check the config, the store, every source and sink: what would stop a run,
    and what this cannot check. Changes nothing."""
    import typer

    if config is None:
        raise fail(_("check needs --config FILE: without one there is nothing of yours to"
                     " check (the built-in defaults are always valid)"))
    settings = load(config)
    found = Findings()
    found.add(_("config"), OK, _("{config}: {sources} source(s), {sinks} sink(s)").format(
        config=config, sources=len(settings.sources), sinks=len(settings.sinks)))
    _check_store(settings, found)
    for source in settings.sources:
        _check_source(settings, source, found)
    _check_sinks(settings, found)
    _not_checked(settings, found)
    table = Table(title="leadhub check", title_justify="left")
    for column in (_("what"), _("state"), _("detail")):
        table.add_column(column)
    for what, state, detail in found.rows:
        table.add_row(what, _(state), detail)
    console.print(table)
    if found.problems:
        console.print(_("{count} problem(s) to fix before a run.").format(count=found.problems))
        if any(sink and state == PROBLEM for sink, state in found.sink_states):
            console.print(_("`leadhub schema init airtable|sheets` creates what a sink is"
                            " missing; or map your own names under the sink's tables:"))
        raise typer.Exit(code=1)


def _check_store(settings, found: Findings) -> None:
    from connectors.ledger.database import inspect_location, locate
    from connectors.ledger.migrate import HEAD

    try:
        location = locate(settings.store)
        seen = inspect_location(location)
    except FatalError as error:
        found.add(_("store"), PROBLEM, str(error))
        return
    if not seen.exists or seen.is_empty:
        found.add(_("store"), OK, _("{store}: none yet; the first run creates it").format(
            store=location.describe()))
    elif seen.revision == HEAD:
        found.add(_("store"), OK, _("{store}: a LeadHub store, schema {schema}").format(
            store=location.describe(), schema=HEAD))
    elif seen.is_leadhub:
        found.add(_("store"), OK, _("{store}: from an earlier LeadHub; the next command"
                                    " upgrades it (or `leadhub store migrate`)").format(
                                        store=location.describe()))
    else:
        found.add(_("store"), PROBLEM, _("{store} is not a LeadHub store").format(
            store=location.describe()))


def _check_source(settings, source, found: Findings) -> None:
    what = _("source {name} ({type})").format(name=source.name, type=source.type)
    if source.type == "files":
        from connectors.files import refused_inputs

        problems = refused_inputs(source.paths)
        if problems:
            found.add(what, PROBLEM, "; ".join(problems))
        else:
            found.add(what, OK, ", ".join(str(path) for path in source.paths))
    elif source.type == "imap":
        from connectors.imap import ImapSource

        try:
            found.add(what, OK, "; ".join(ImapSource(source).check()))
        except FatalError as error:
            found.add(what, PROBLEM, str(error))
        except (TransientError, OSError, ConnectionError) as error:
            found.add(what, PROBLEM, _("cannot reach {host}:{port} ({error}); check host, port"
                                       " and tls").format(host=source.host, port=source.port,
                                                          error=error))
    else:
        found.add(what, OK, _("POST /forms/{form}, preset {preset}, auth {auth}").format(
            form=source.form, preset=source.preset, auth=source.auth))


def _check_sinks(settings, found: Findings) -> None:
    if not settings.sinks:
        return
    from flows.sync import SINK_BUILDERS

    for config in settings.sinks:
        sink = SINK_BUILDERS[config.type](config, settings)
        what = _("sink {name}").format(name=config.name)
        try:
            problems = sink.problems()
        except FatalError as error:
            found.add(what, PROBLEM, str(error), sink=True)
            continue
        for problem in problems:
            found.add(what, PROBLEM, problem, sink=True)
        if not problems:
            found.add(what, OK, _("{sink}: every table and field is there").format(
                sink=sink.describe()), sink=True)
        for step in sink.manual_steps():
            found.add(what, OK, _("to add by hand for the CRM's own totals: {step}").format(
                step=step), sink=True)


def _not_checked(settings, found: Findings) -> None:
    if any(source.type == "webhook" for source in settings.sources):
        found.add(_("web endpoint {host}:{port}").format(host=settings.web.host,
                                                          port=settings.web.port),
                  _port_state(settings.web.host, settings.web.port),
                  _("whether each form service really posts here is not checked: send a test"
                    " submission from its settings page"))
    if settings.channels:
        found.add(_("alert channels"), UNCHECKED,
                  _("nothing is sent by check: `leadhub alert test` sends a test message"))


def _port_state(host: str, port: int) -> str:
    """Free to listen on (ok), or taken (leadhub serve may be running: not a problem)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return UNCHECKED
    return OK
