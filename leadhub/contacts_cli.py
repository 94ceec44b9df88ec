"""`leadhub contacts ...` and `leadhub dedupe`: see who is who, and correct it."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from leadhub.cli_common import ConfigOption, DbOption, console, fail, handled, load, open_store

contacts_app = typer.Typer(help="See why leads are one contact, and correct it: merge, keep"
                                " apart, split.", no_args_is_help=True)


def _open(config, db: str | None):
    settings = load(config, db)
    return settings, open_store(settings.store)


def _when(moment) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M") if moment else ""


@contacts_app.command("show")
@handled
def show(key: Annotated[str, typer.Argument(help="the contact's id (Contact key, C-...)")],
         config: ConfigOption = None, db: DbOption = None) -> None:
    """A contact: its identities, its leads and why each is there, its merges."""
    _, ledger = _open(config, db)
    try:
        story = ledger.story(key)
    finally:
        ledger.close()
    contact = story.contact
    if contact["contact_key"] != key:
        console.print(f"{key} was merged into {contact['contact_key']}:")
    console.print(f"[bold]{contact['contact_key']}[/] {contact['name']}  {contact['company']}"
                  f"  {contact['city']}", highlight=False)
    ids = Table(title="Identities", title_justify="left")
    for column in ("kind", "as given", "first seen", "last seen", "from", "shared"):
        ids.add_column(column)
    for row in story.identities:
        ids.add_row(row["kind"], row["written"] or row["value"], _when(row["first_seen"]),
                    _when(row["last_seen"]), row["seen_in"], row["shared"])
    console.print(ids)
    leads = Table(title="Leads and why each is here", title_justify="left")
    for column in ("lead", "received", "channel", "name", "phone / email", "why"):
        leads.add_column(column)
    for row in story.leads:
        why = row["match_reason"] or "before the reasons were kept"
        if row["first_contact_key"] not in ("", contact["contact_key"]):
            why += f" (came with {row['first_contact_key']})"
        leads.add_row(row["lead_id"], _when(row["received_at"]), row["channel"], row["name"],
                      row["phone"] or row["email"], why)
    console.print(leads)
    for merge in story.merges:
        undone = f", undone {_when(merge['undone_at'])}" if merge["undone_at"] else ""
        console.print(f"merge: {merge['loser']} into {merge['survivor']}"
                      f" ({merge['decided_by']}: {merge['reason']}){undone}", highlight=False)
    for pair in story.pairs:
        other = pair["contact_b"] if pair["contact_a"] == contact["contact_key"] else pair[
            "contact_a"]
        console.print(f"pair with {other}: {pair['state']} (score {pair['score']:.2f})",
                      highlight=False)


@contacts_app.command("duplicates")
@handled
def duplicates(config: ConfigOption = None, db: DbOption = None,
               everything: Annotated[bool, typer.Option("--all", help="decided pairs too")]
               = False,
               limit: Annotated[int, typer.Option(help="pairs shown")] = 50) -> None:
    """Possible duplicates waiting for a person: the likeliest first."""
    _, ledger = _open(config, db)
    states = ("open", "same", "different", "merged") if everything else ("open",)
    table = Table(title="Possible duplicates (leadhub contacts merge A B | keep-apart A B)",
                  title_justify="left")
    for column in ("A", "B", "score", "why", "state"):
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
    console.print(f"merged: {a} and {b} are {survivor} (undo: leadhub contacts split"
                  f" {b if survivor == a else a})", highlight=False)


@contacts_app.command("keep-apart")
@handled
def keep_apart(a: str, b: str, config: ConfigOption = None, db: DbOption = None) -> None:
    """A and B are two people: never merge them, never ask again."""
    _, ledger = _open(config, db)
    try:
        ledger.keep_apart(a, b)
    finally:
        ledger.close()
    console.print(f"kept apart: {a} and {b}", highlight=False)


@contacts_app.command("split")
@handled
def split(key: Annotated[str, typer.Argument(help="the contact that was merged away, or the"
                                                  " contact to take leads out of (--lead)")],
          lead: Annotated[list[str] | None, typer.Option(
              "--lead", help="a lead to take out into a contact of its own (repeatable)")]
          = None,
          config: ConfigOption = None, db: DbOption = None) -> None:
    """Undo a wrong merge: each lead goes back to the contact it came with, and
    the two are kept apart from then on."""
    settings, ledger = _open(config, db)
    try:
        left = ledger.split(settings.identity_rules(), key, lead or ())
    finally:
        ledger.close()
    console.print(f"split: {left} is a contact of its own again", highlight=False)


def dedupe(config: ConfigOption = None, db: DbOption = None,
           rescan: Annotated[bool, typer.Option(help="re-examine the whole book")] = False,
           dry_run: Annotated[bool, typer.Option(help="show what would merge, change nothing")]
           = False) -> None:
    """Re-examine every contact against its candidates (after a rule change, or
    for a store from before these rules): merges what is surely one person,
    proposes the rest to people."""
    if not rescan:
        raise fail("say --rescan (with --dry-run first to see what it would merge)")
    settings, ledger = _open(config, db)
    try:
        proposals = ledger.rescan(settings.identity_rules(), apply=not dry_run)
    finally:
        ledger.close()
    merges = [p for p in proposals if p.merge]
    table = Table(title="Would merge" if dry_run else "Merged", title_justify="left")
    for column in ("stays", "merged in", "score", "why"):
        table.add_column(column)
    for proposal in merges:
        table.add_row(proposal.survivor, proposal.other, f"{proposal.score:.2f}",
                      "; ".join(proposal.reasons))
    console.print(table)
    review = len(proposals) - len(merges)
    console.print(f"{len(merges)} merge(s){' to make' if dry_run else ''}, {review} pair(s)"
                  f" for people (`leadhub contacts duplicates`)")
