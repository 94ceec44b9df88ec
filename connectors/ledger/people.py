"""People's work read back from the CRM that is the record: their own fields
(a lead's stage, owner and amount, a contact's status), every stage change
with its time, tasks they typed, and their corrections of a contact's data,
which the store, the exports and the dashboard then show."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from connectors.ledger.base import LedgerBase, now, upsert
from connectors.ledger.database import to_decimal
from connectors.ledger.schema import contacts, lead_stages, leads, sink_state, tasks
from transforms.companies import split_company
from transforms.dedupe import Member, Sighting
from transforms.emails import canonical_email, normalize_email
from transforms.names import normalize_name
from transforms.normalize import NormalizeRules
from transforms.phones import normalize_phone, phone_identity

# people-owned values that also live in the store's own columns
_PEOPLE_COLUMNS = {
    "contacts": (contacts, contacts.c.contact_key, ("status", "owner", "notes")),
    "leads": (leads, leads.c.lead_id, ("owner", "notes", "amount", "loss_reason")),
    "tasks": (tasks, tasks.c.task_id, ("owner", "notes")),
}


class People(LedgerBase):
    def save_people_values(self, sink: str, kind: str, values: dict[str, dict],
                           at: datetime | None = None) -> None:
        """People-owned values read back from a sink: kept per row, in the
        store's columns where reports read them, and a lead's new stage as a
        change in its stage history."""
        at = at or now()
        with self.transaction() as tx:
            if kind == "contacts" and values:
                self.contacts_changed(tx)  # a contact's owner, kept in matching's book too
            for key, people in values.items():
                tx.execute(update(sink_state).where(
                    sink_state.c.sink == sink, sink_state.c.record_kind == kind,
                    sink_state.c.record_key == key).values(
                    people=json.dumps(people, ensure_ascii=False, sort_keys=True, default=str)))
                self._people_columns(tx, kind, key, people)
                if kind == "leads" and "stage" in people:
                    self._stage(tx, key, people.get("stage") or "",
                                people.get("loss_reason") or "", at, f"sink:{sink}")

    def _people_columns(self, tx: Connection, kind: str, key: str, people: Mapping) -> None:
        if kind not in _PEOPLE_COLUMNS:
            return
        table, key_column, names = _PEOPLE_COLUMNS[kind]
        changes = {name: _column_value(name, people.get(name)) for name in names
                   if name in people}
        if changes:
            tx.execute(update(table).where(key_column == key).values(**changes))

    def _stage(self, tx: Connection, lead_id: str, stage: str, reason: str, at: datetime,
               by: str) -> None:
        current = tx.execute(select(leads.c.stage).where(leads.c.lead_id == lead_id)).scalar()
        if current is None or current == stage:
            return
        tx.execute(update(leads).where(leads.c.lead_id == lead_id).values(stage=stage))
        if stage:
            tx.execute(lead_stages.insert().values(lead_id=lead_id, stage=stage, reason=reason,
                                                   changed_at=at, changed_by=by))

    def stage_history(self, lead_ids: Iterable[str] | None = None) -> list[dict]:
        query = select(lead_stages).order_by(lead_stages.c.lead_id, lead_stages.c.changed_at,
                                             lead_stages.c.id)
        if lead_ids is not None:
            query = query.where(lead_stages.c.lead_id.in_(list(lead_ids)))
        return list(self.iter_rows(query))

    def take_typed_tasks(self, sink: str, rows: list[tuple[str, Mapping[str, Any]]],
                         at: datetime) -> dict[str, str]:
        """Tasks a person added in the sink: into the store (they are reminded
        of, listed, exported), each its row's own. Returns task id -> row id."""
        taken: dict[str, str] = {}
        with self.transaction() as tx:
            for remote_id, values in rows:
                title = " ".join(str(values.get("title") or "").split())
                if not title:
                    continue
                task_id = f"crm-{sink}-{remote_id}"
                contact = str(values.get("contact") or "")
                tx.execute(upsert(tx, tasks).values(
                    task_id=task_id, rule="person", contact_key=contact, title=title,
                    details=str(values.get("details") or ""),
                    due_at=values.get("due_at") or at, done=bool(values.get("done")),
                    created_at=at, origin=f"sink:{sink}:{remote_id}",
                    owner=str(values.get("owner") or ""), notes=str(values.get("notes") or ""),
                ).on_conflict_do_nothing(index_elements=["task_id"]))
                self.adopt_row(tx, sink, "tasks", task_id, remote_id)
                taken[task_id] = remote_id
        return taken

    def save_corrections(self, kind: str, found: dict[str, dict[str, Any]], sink: str,
                         rules: NormalizeRules, at: datetime) -> int:
        """People's corrections of LeadHub's fields, by row key (a contact key,
        or a lead id: a lead's corrections are its contact's). What they set
        wins in the store; a field they emptied is LeadHub's again; a phone
        or email they changed is a new identity of the contact, the old one
        kept. Returns how many contacts changed."""
        changed = 0
        with self.transaction() as tx:
            self.lock_contacts(tx)
            for key, corrections in found.items():
                contact_key = key if kind == "contacts" else tx.execute(
                    select(leads.c.contact_key).where(leads.c.lead_id == key)).scalar()
                if not contact_key:
                    continue
                changed += self._correct(tx, contact_key, _normalized(corrections, rules),
                                         sink, at, rules, replace_all=kind == "contacts")
        return changed

    def _correct(self, tx: Connection, key: str, corrections: dict[str, Any], sink: str,
                 at: datetime, rules: NormalizeRules, replace_all: bool) -> int:
        members = self._members(tx, [key])
        if not members:
            return 0
        member = members[0]
        wanted = corrections if replace_all else {**member.corrected, **corrections}
        if wanted == member.corrected:
            return 0
        own = member.own_values()
        member.base = {name: getattr(own, name) for name in wanted}
        member.corrected = wanted
        member.contact = member.with_corrections(own)
        self._new_identities(member, corrections, sink, at, rules)
        self._write_contact(tx, member, now())
        return 1

    def _new_identities(self, member: Member, corrections: dict[str, Any], sink: str,
                        at: datetime, rules: NormalizeRules) -> None:
        """A phone or email a person changed is one more identity of the contact."""
        phone, email = corrections.get("phone"), corrections.get("email")
        found = {}
        if phone and normalize_phone(phone, rules.region).valid:
            found[("phone", phone_identity(phone))] = corrections.get("phone_display", phone)
        if email:
            mailbox = canonical_email(email, rules.identity)
            if mailbox:
                found[("email", mailbox)] = email
        for identity, written in found.items():
            if identity not in member.identities:
                member.identities[identity] = Sighting(written, at, at, f"sink:{sink}")


def _normalized(corrections: Mapping[str, Any], rules: NormalizeRules) -> dict[str, Any]:
    """A person's values the way LeadHub keeps them: a phone as E.164 (and the
    business's display), an email lower-cased, a company without its legal form."""
    found: dict[str, Any] = {}
    for name, value in corrections.items():
        text = " ".join(str(value).split())
        if name == "phone":
            phone = normalize_phone(text, rules.region, rules.phone_display)
            found.update(phone=phone.e164 or phone.raw, phone_display=phone.display)
        elif name == "email":
            found["email"] = normalize_email(text) or text
        elif name == "name":
            found["name"] = normalize_name(text) or text
        elif name == "company":
            company, legal_form = split_company(text, rules.legal_forms)
            found["company"] = company
            if legal_form:
                found["legal_form"] = legal_form
        else:
            found[name] = text
    return found


def _column_value(name: str, value: Any) -> Any:
    if name == "amount":
        return to_decimal(value) if value not in (None, "") else None
    return "" if value is None else str(value)

