"""`leadhub tasks`: the follow-up tasks, without a CRM too: list what is open
and overdue, and close one."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from leadhub.cli_common import ConfigOption, DbOption, console, fail, handled, load, open_store
from leadhub.i18n import _

tasks_app = typer.Typer(help=_("Follow-up tasks: list them, close one."),
                        invoke_without_command=True)


@tasks_app.callback()
@handled
def tasks(ctx: typer.Context, config: ConfigOption = None, db: DbOption = None,
          everything: Annotated[bool, typer.Option("--all", help=_("done tasks too"))] = False
          ) -> None:
    """Open tasks, the overdue first (`leadhub tasks done ID` closes one)."""
    if ctx.invoked_subcommand is not None:
        return
    settings = load(config, db)
    ledger = open_store(settings.store)
    try:
        rows = ledger.open_tasks(include_done=everything)
    finally:
        ledger.close()
    now = datetime.now(UTC)
    table = Table(title=_("Tasks"), title_justify="left")
    for column in (_("id"), _("task"), _("due"), _("who"), _("phone"), _("owner"), _("state")):
        table.add_column(column)
    for row in rows:
        state = _("done") if row["done"] else (
            _("[bold red]overdue[/]") if row["due_at"] < now else _("open"))
        table.add_row(row["task_id"], row["title"],
                      row["due_at"].astimezone().strftime("%Y-%m-%d %H:%M"),
                      row["name"] or row["company"], row["phone_display"] or row["phone"],
                      row["owner"], state)
    console.print(table)
    if not rows:
        console.print(_("no open tasks") if not everything else _("no tasks"))


@tasks_app.command("done")
@handled
def done(task_id: Annotated[str, typer.Argument(help=_("the task's id (first column)"))],
         config: ConfigOption = None, db: DbOption = None) -> None:
    """Close a task: it is not reminded of again, and the CRM shows it done."""
    settings = load(config, db)
    ledger = open_store(settings.store)
    try:
        closed = ledger.save_task_done({task_id: True})
    finally:
        ledger.close()
    if not closed:
        raise fail(_("there is no task {task}: `leadhub tasks --all` lists them").format(
            task=task_id))
    console.print(_("done: {task}").format(task=task_id))
