"""`leadhub contacts ...` and `leadhub dedupe`: see who is who, and correct it."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from leadhub.cli_common import ConfigOption, DbOption, console, fail, handled, load, open_store
from leadhub.i18n import _

contacts_app = typer.Typer(help=_("See why leads are one contact, and correct it: merge, keep"
                                " apart, split."), no_args_is_help=True)


def _open(config, db: str | None):
    settings = load(config, db)
    return settings, open_store(settings.store)


def _when(moment) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M") if moment else ""


@contacts_app.command("show")
@handled
def show(key: Annotated[str, typer.Argument(help=_("the contact's id (Contact key, C-...)"))],
         config: ConfigOption = None, db: DbOption = None) -> None:
    """A contact: its identities, its leads and why each is there, its merges."""
    ledger = _open(config, db)[1]
    try:
        story = ledger.story(key)
    finally:
        ledger.close()
    contact = story.contact
    if contact["contact_key"] != key:
        console.print(_("{key} was merged into {survivor}:").format(key=key,
                                                                  survivor=contact["contact_key"]))
    console.print(f"[bold]{contact['contact_key']}[/] {contact['name']}  {contact['company']}"
                  f"  {contact['city']}", highlight=False)
    ids = Table(title=_("Identities"), title_justify="left")
    for column in (_("kind"), _("as given"), _("first seen"), _("last seen"), _("from"),
                   _("shared")):
        ids.add_column(column)
    for row in story.identities:
        ids.add_row(row["kind"], row["written"] or row["value"], _when(row["first_seen"]),
                    _when(row["last_seen"]), row["seen_in"], row["shared"])
    console.print(ids)
    leads = Table(title=_("Leads and why each is here"), title_justify="left")
    for column in (_("lead"), _("received"), _("channel"), _("name"), _("phone / email"),
                   _("why")):
        leads.add_column(column)
    for row in story.leads:
        why = row["match_reason"] or _("before the reasons were kept")
        if row["first_contact_key"] not in ("", contact["contact_key"]):
            why += _(" (came with {contact})").format(contact=row["first_contact_key"])
        leads.add_row(row["lead_id"], _when(row["received_at"]), row["channel"], row["name"],
                      row["phone"] or row["email"], why)
    console.print(leads)
    for merge in story.merges:
        undone = _(", undone {when}").format(when=_when(merge["undone_at"])) if merge[
            "undone_at"] else ""
        console.print(_("merge: {loser} into {survivor} ({by}: {reason}){undone}").format(
            loser=merge["loser"], survivor=merge["survivor"], by=merge["decided_by"],
            reason=merge["reason"], undone=undone), highlight=False)
    for pair in story.pairs:
        other = pair["contact_b"] if pair["contact_a"] == contact["contact_key"] else pair[
            "contact_a"]
        console.print(_("pair with {other}: {state} (score {score})").format(
            other=other, state=pair["state"], score=f"{pair['score']:.2f}"), highlight=False)


@contacts_app.command("duplicates")
@handled
def duplicates(config: ConfigOption = None, db: DbOption = None,
               everything: Annotated[bool, typer.Option("--all", help=_("decided pairs too"))]
               = False,
               limit: Annotated[int, typer.Option(help=_("pairs shown"))] = 50) -> None:
    """Possible duplicates waiting for a person: the likeliest first."""
    ledger = _open(config, db)[1]
    states = ("open", "same", "different", "merged") if everything else ("open",)
    table = Table(title=_("Possible duplicates (leadhub contacts merge A B | keep-apart A B)"),
                  title_justify="left")
    for column in ("A", "B", _("score"), _("why"), _("state")):
        table.add_column(column)
    shown = 0
    try:
        for pair in ledger.duplicate_pairs(states):
            if shown == limit:
                break
            table.add_row(f"{pair['contact_a']}\n{pair['name_a']} {pair['phone_a']}"
                          f" {pair['email_a']}",
                          f"{pair['contact_b']}\n{pair['name_b']} {pair['phone_b']}"
                          f" {pair['email_b']}",
                          f"{pair['score']:.2f}", "; ".join(pair["reasons"]), pair["state"])
            shown += 1
    finally:
        ledger.close()
    console.print(table)


@contacts_app.command("merge")
@handled
def merge(a: str, b: str, config: ConfigOption = None, db: DbOption = None) -> None:
    """A and B are one person: merge them (the one seen first stays)."""
    settings, ledger = _open(config, db)
    try:
        survivor = ledger.merge_contacts(settings.identity_rules(), a, b)
    finally:
        ledger.close()
    console.print(_("merged: {a} and {b} are {survivor} (undo: leadhub contacts split"
                    " {other})").format(a=a, b=b, survivor=survivor,
                                        other=b if survivor == a else a), highlight=False)


@contacts_app.command("keep-apart")
@handled
def keep_apart(a: str, b: str, config: ConfigOption = None, db: DbOption = None) -> None:
    """A and B are two people: never merge them, never ask again."""
    ledger = _open(config, db)[1]
    try:
        ledger.keep_apart(a, b)
    finally:
        ledger.close()
    console.print(_("kept apart: {a} and {b}").format(a=a, b=b), highlight=False)


@contacts_app.command("split")
@handled
def split(key: Annotated[str, typer.Argument(help=_("the contact that was merged away, or the"
                                                  " contact to take leads out of (--lead)"))],
          lead: Annotated[list[str] | None, typer.Option(
              "--lead", help=_("a lead to take out into a contact of its own (repeatable)"))]
          = None,
          config: ConfigOption = None, db: DbOption = None) -> None:
    """Undo a wrong merge: each lead goes back to the contact it came with, and
    the two are kept apart from then on."""
    settings, ledger = _open(config, db)
    try:
        left = ledger.split(settings.identity_rules(), key, lead or ())
    finally:
        ledger.close()
    console.print(_("split: {contact} is a contact of its own again").format(contact=left),
                  highlight=False)


@handled
def dedupe(config: ConfigOption = None, db: DbOption = None,
           rescan: Annotated[bool, typer.Option(help=_("re-examine the whole book"))] = False,
           dry_run: Annotated[bool, typer.Option(help=_("show what would merge, change nothing"))]
           = False) -> None:
    """Re-examine every contact against its candidates (after a rule change, or
    for a store from before these rules): merges what is surely one person,
    proposes the rest to people."""
    if not rescan:
        raise fail(_("say --rescan (with --dry-run first to see what it would merge)"))
    settings, ledger = _open(config, db)
    try:
        proposals = ledger.rescan(settings.identity_rules(), apply=not dry_run)
    finally:
        ledger.close()
    merges = [p for p in proposals if p.merge]
    table = Table(title=_("Would merge") if dry_run else _("Merged"), title_justify="left")
    for column in (_("stays"), _("merged in"), _("score"), _("why")):
        table.add_column(column)
    for proposal in merges:
        table.add_row(proposal.survivor, proposal.other, f"{proposal.score:.2f}",
                      "; ".join(proposal.reasons))
    console.print(table)
    review = len(proposals) - len(merges)
    summary = _("{merges} merge(s) to make, {pairs} pair(s) for people"
                " (`leadhub contacts duplicates`)") if dry_run else _(
        "{merges} merge(s), {pairs} pair(s) for people (`leadhub contacts duplicates`)")
    console.print(summary.format(merges=len(merges), pairs=review))
