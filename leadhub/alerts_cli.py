"""`leadhub alert test|replay`: confirm that the alert channels work (a test
message through each, apart from the store's alert queue), and queue alerts
that were given up again once a channel is fixed."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import typer
from rich.table import Table

from leadhub.cli_common import ConfigOption, DbOption, console, fail, handled, load
from leadhub.i18n import _
from transforms.masking import mask_pii

alert_app = typer.Typer(help=_("Check the alert channels; send given-up alerts again."),
                        no_args_is_help=True)


@alert_app.command("test")
@handled
def alert_test(
    target: Annotated[str | None, typer.Argument(
        metavar="[RULE|CHANNEL]", help=_("an alert rule (its channels) or a channel; left out:"
                                       " every channel"))] = None,
    config: ConfigOption = None,
) -> None:
    """Send a test message through each channel and say which worked (exit 1
    when one did not). Nothing is queued or recorded in the store."""
    from flows.alerts import channels_named, try_channels

    settings = load(config)
    tried = try_channels(settings, channels_named(settings, target))
    table = Table(title="leadhub alert test", title_justify="left")
    for column in (_("channel"), _("service"), _("result")):
        table.add_column(column)
    for each in tried:
        result = _("[green]sent[/]") if each.result.ok else _("[red]failed[/]: {error}").format(
            error=mask_pii(each.result.error))
        table.add_row(each.channel, each.service, result)
    console.print(table)
    failed = [each.channel for each in tried if not each.result.ok]
    if failed:
        console.print(_("{failed} of {tried} channel(s) failed. Fix the URL or the secrets it"
                        " takes from the environment, then run `leadhub alert test {channel}`"
                        " again.").format(failed=len(failed), tried=len(tried),
                                          channel=failed[0]), soft_wrap=True)
        raise typer.Exit(code=1)
    console.print(_("{count} channel(s) work: look for the test message in each.").format(
        count=len(tried)))


@alert_app.command("replay")
@handled
def alert_replay(
    rule: Annotated[str | None, typer.Option(help=_("only this rule's alerts"))] = None,
    channel: Annotated[str | None, typer.Option(help=_("only this channel's alerts"))] = None,
    since: Annotated[str | None, typer.Option(
        help=_("only alerts raised on or after this day (YYYY-MM-DD, the config's time zone)"))]
    = None,
    unconfirmed: Annotated[bool, typer.Option(
        "--unconfirmed", help=_("also the alerts a crash left unconfirmed: they may have"
                              " arrived already, and would then arrive twice"))] = False,
    config: ConfigOption = None,
    db: DbOption = None,
) -> None:
    """Queue given-up alerts again, so that the next run sends them (never an
    alert that was sent)."""
    from flows.alerts import replay_alerts

    day = _day("--since", since)
    settings = load(config, db)
    queued, left = replay_alerts(settings, rule=rule, channel=channel, since=day,
                                 unconfirmed=unconfirmed)
    console.print(_("{count} alert(s) queued again: the next run sends them (`leadhub run`,"
                    " the reminders every 15 minutes, or `leadhub serve`).").format(
                      count=queued), soft_wrap=True)
    for name, count in sorted(left.items()):
        console.print(_("[yellow]{count} alert(s) for channel {channel} left as they are:"
                        " {channel} is not in the config's channels[/]").format(
                          count=count, channel=name), soft_wrap=True)


def _day(option: str, text: str | None) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        raise fail(_("{option} {text}: write the date as YYYY-MM-DD").format(
            option=option, text=repr(text))) from None
