"""Alerts (queued, claimed, sent once), follow-up tasks, the events a rule has
acted on, and the reads the alert and digest rules make."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime

from sqlalchemy import Connection, and_, case, exists, func, literal, or_, select, update

from connectors.ledger.base import LedgerBase, chunks, now, upsert
from connectors.ledger.database import Moment, as_utc, lock
from connectors.ledger.schema import (
    alerts,
    checkpoints,
    contacts,
    event_marks,
    leads,
    orders,
    raw_items,
    tasks,
)

RULE_MARKS = "alerts"  # the checkpoints' source under which rule marks are kept


def _person_columns():
    return [func.coalesce(contacts.c.name, "").label("name"),
            func.coalesce(contacts.c.phone, "").label("phone"),
            func.coalesce(contacts.c.phone_display, "").label("phone_display"),
            func.coalesce(contacts.c.email, "").label("email"),
            func.coalesce(contacts.c.company, "").label("company")]


def _owner_of(tx: Connection, lead_id: str | None, contact_key: str) -> str:
    """Who works a lead (its owner, else its contact's): "" for nobody."""
    if lead_id:
        owner = tx.execute(select(leads.c.owner).where(leads.c.lead_id == lead_id)).scalar()
        if owner:
            return owner
    return tx.execute(select(contacts.c.owner).where(
        contacts.c.contact_key == contact_key)).scalar() or ""


class Alerts(LedgerBase):
    # --- rule marks ----------------------------------------------------------------

    def rule_mark(self, scope: str) -> dict | None:
        """Where an alert or task rule stands (`alert:NAME`, `task:NAME`): the
        last lead it looked at and when it was first seen; None before its
        first run."""
        value = self.checkpoint(RULE_MARKS, scope)
        return json.loads(value) if value else None

    def start_rule(self, scope: str, baseline: Iterable[str] = ()) -> dict:
        """A rule's first run: it acts only on what comes after, so a rule added
        to a store full of old leads fires nothing for them. `baseline` are the
        triggers already true (leads already at a stage), never to act on."""
        stamp = now()
        with self.transaction() as tx:
            lock(tx, f"rule:{scope}")
            existing = tx.execute(select(checkpoints.c.value).where(
                checkpoints.c.source == RULE_MARKS, checkpoints.c.scope == scope)).scalar()
            if existing:
                return json.loads(existing)
            position = tx.execute(select(func.coalesce(func.max(leads.c.seq), 0))).scalar()
            mark = {"lead_position": position, "since": stamp.isoformat()}
            self._mark_events(tx, scope, baseline, stamp)
            self._save_rule_mark(tx, scope, mark)
        return mark

    def _save_rule_mark(self, tx: Connection, scope: str, mark: dict) -> None:
        self._save_checkpoint(tx, RULE_MARKS, scope, json.dumps(mark, sort_keys=True))

    def _mark_events(self, tx: Connection, scope: str, keys: Iterable[str],
                     stamp: datetime) -> None:
        for key in keys:
            tx.execute(upsert(tx, event_marks).values(rule=scope, event_key=key,
                                                      marked_at=stamp)
                       .on_conflict_do_nothing(index_elements=["rule", "event_key"]))

    def marked_events(self, scope: str) -> set[str]:
        with self.reading() as connection:
            return set(connection.execute(select(event_marks.c.event_key)
                                          .where(event_marks.c.rule == scope)).scalars())

    def leads_after(self, position: int) -> list[dict]:
        """Leads stored after `position` (their seq, which only grows), with what
        alerts show: the contact's phone display and lead count, the
        configured source they came through, and whether the lead is the
        contact's first."""
        earlier = leads.alias("earlier")
        first = ~exists().where(earlier.c.contact_key == leads.c.contact_key,
                                earlier.c.seq < leads.c.seq)
        query = (
            select(leads.c.seq.label("position"), leads.c.lead_id, leads.c.contact_key,
                   leads.c.received_at, leads.c.channel, leads.c.source, leads.c.name,
                   leads.c.phone, leads.c.email, leads.c.company, leads.c.subject,
                   leads.c.message, leads.c.stage, leads.c.owner,
                   func.coalesce(contacts.c.phone_display, "").label("phone_display"),
                   func.coalesce(contacts.c.leads_count, 0).label("leads_count"),
                   func.coalesce(raw_items.c.source, "").label("origin"),
                   first.label("first_of_contact"))
            .select_from(leads.outerjoin(contacts, contacts.c.contact_key == leads.c.contact_key)
                         .outerjoin(raw_items, raw_items.c.item_id == leads.c.raw_item_id))
            .where(leads.c.seq > position).order_by(leads.c.seq))
        return list(self.iter_rows(query))

    # --- alerts ---------------------------------------------------------------------

    def queue_alerts(self, queued: Iterable, at: datetime,
                     mark: tuple[str, dict] | None = None) -> int:
        """Queue alerts (transforms.alerts.Alert); one already queued or sent
        stays as it is. The rule's mark moves in the same transaction.
        Returns how many were new."""
        with self.transaction() as tx:
            added = self._insert_alerts(tx, queued, at)
            if mark:
                self._save_rule_mark(tx, *mark)
        return added

    def _insert_alerts(self, tx: Connection, queued: Iterable, at: datetime) -> int:
        added = 0
        for alert in queued:
            added += tx.execute(upsert(tx, alerts).values(
                alert_id=alert.alert_id, rule=alert.rule, channel=alert.channel,
                event_kind=alert.event_kind, event_key=alert.event_key, title=alert.title,
                message=alert.message, created_at=at, send_after=alert.send_after,
            ).on_conflict_do_nothing(index_elements=["alert_id"])).rowcount
        return added

    def due_alerts(self, at: datetime) -> list:
        return self.rows(select(alerts).where(alerts.c.state == "pending",
                                              alerts.c.send_after <= at)
                         .order_by(alerts.c.id))

    def _update_alerts(self, tx: Connection, alert_ids: Iterable[str], *conditions,
                       **values) -> list:
        """Update these alerts (those also meeting `conditions`) in chunks; the
        rows as they are now."""
        alert_ids = list(alert_ids)
        found = []
        for chunk in chunks(alert_ids):
            found += tx.execute(update(alerts).where(alerts.c.alert_id.in_(chunk), *conditions)
                                .values(**values).returning(*alerts.c)).mappings().all()
        found.sort(key=lambda row: row["id"])
        return found

    def claim_alerts(self, alert_ids: Iterable[str], at: datetime) -> set[str]:
        """Mark alerts `sending`, in their own transaction, before they go out.
        Returns the ones this run took (another run may have taken some)."""
        with self.transaction() as tx:
            rows = self._update_alerts(tx, alert_ids, alerts.c.state == "pending",
                                       state="sending", claimed_at=at)
        return {row["alert_id"] for row in rows}

    def release_alerts(self, alert_ids: Iterable[str]) -> None:
        """Claimed alerts this run does not send after all: pending again."""
        with self.transaction() as tx:
            self._update_alerts(tx, alert_ids, alerts.c.state == "sending",
                                state="pending", claimed_at=None)

    def mark_alerts_sent(self, alert_ids: Iterable[str], at: datetime) -> None:
        with self.transaction() as tx:
            self._update_alerts(tx, alert_ids, state="sent", sent_at=at,
                                attempts=alerts.c.attempts + 1, last_error="",
                                failing_since=None)

    def record_failed_send(self, next_tries: Mapping[str, datetime | None], error: str,
                           at: datetime) -> list:
        """One more failed attempt, made at `at`, for each alert (alert id ->
        when to try it again, or None to give it up: `failed`, kept with the
        error for status, the digest and `leadhub alert replay`). Returns the
        ones given up."""
        by_time: dict[datetime | None, list[str]] = {}
        for alert_id, when in next_tries.items():
            by_time.setdefault(when, []).append(alert_id)
        failed = {"attempts": alerts.c.attempts + 1, "last_error": error, "claimed_at": None,
                  "failing_since": func.coalesce(alerts.c.failing_since, literal(at, Moment))}
        with self.transaction() as tx:
            for when, alert_ids in by_time.items():
                if when is not None:
                    self._update_alerts(tx, alert_ids, alerts.c.state == "sending",
                                        state="pending", send_after=when, **failed)
            return self._update_alerts(tx, by_time.get(None, []), alerts.c.state == "sending",
                                       state="failed", given_up="retries", **failed)

    def give_up_alerts(self, alert_ids: Iterable[str], error: str) -> None:
        """Alerts whose channel has left the config."""
        with self.transaction() as tx:
            self._update_alerts(tx, alert_ids, alerts.c.state.in_(("pending", "sending")),
                                state="failed", last_error=error, given_up="no_channel")

    def abandon_unconfirmed(self, claimed_before: datetime, error: str) -> list:
        """Alerts a run marked `sending` and never recorded (it crashed or was
        killed mid-send). They may have arrived, so they are not sent again:
        they become `failed` with `error` saying so."""
        with self.transaction() as tx:
            return tx.execute(update(alerts).where(
                alerts.c.state == "sending", alerts.c.claimed_at < claimed_before).values(
                state="failed", last_error=error, given_up="unconfirmed")
                .returning(*alerts.c)).mappings().all()

    def requeue_alerts(self, at: datetime, channels: Iterable[str], *, rule: str | None = None,
                       channel: str | None = None, since: datetime | None = None,
                       unconfirmed_before: datetime | None = None) -> tuple[int, dict]:
        """Given-up alerts (of this rule, channel, raised since then) pending
        again, due at `at`, with a new retry window; only those for one of
        `channels` (the configured ones). Alerts a crash left unconfirmed, given
        up or still `sending` since before `unconfirmed_before`, only when that
        is given: they may have arrived. Never one that was sent. Returns how
        many were queued, and channel -> how many were left for want of it."""
        replayable = and_(alerts.c.state == "failed", alerts.c.given_up != "unconfirmed")
        if unconfirmed_before is not None:
            replayable = or_(alerts.c.state == "failed",
                             and_(alerts.c.state == "sending",
                                  alerts.c.claimed_at < as_utc(unconfirmed_before)))
        matching = [replayable]
        matching += [alerts.c.rule == rule] if rule is not None else []
        matching += [alerts.c.channel == channel] if channel is not None else []
        matching += [alerts.c.created_at >= as_utc(since)] if since is not None else []
        channels = list(channels)
        with self.transaction() as tx:
            queued = tx.execute(update(alerts).where(*matching, alerts.c.channel.in_(channels))
                                .values(state="pending", send_after=at, attempts=0,
                                        failing_since=None, claimed_at=None, given_up="")
                                ).rowcount
            left = dict(tx.execute(select(alerts.c.channel, func.count())
                                   .where(*matching, alerts.c.channel.not_in(channels))
                                   .group_by(alerts.c.channel)).all())
        return queued, left

    def cancel_done_reminders(self) -> int:
        """Reminders still waiting (quiet hours, a retry) for tasks people have
        done since: they are not sent."""
        with self.transaction() as tx:
            waiting = tx.execute(select(alerts.c.alert_id, alerts.c.event_key).where(
                alerts.c.state == "pending", alerts.c.event_kind == "task_due")).all()
            task_ids = sorted({key.partition("@")[0] for _, key in waiting})
            done: set[str] = set()
            for chunk in chunks(task_ids):
                done |= set(tx.execute(select(tasks.c.task_id).where(
                    tasks.c.task_id.in_(chunk), tasks.c.done)).scalars())
            cancelled = [alert_id for alert_id, key in waiting if key.partition("@")[0] in done]
            return len(self._update_alerts(tx, cancelled, alerts.c.state == "pending",
                                           state="cancelled"))

    def alert_counts(self) -> dict[str, int]:
        with self.reading() as connection:
            return dict(connection.execute(select(alerts.c.state, func.count())
                                           .group_by(alerts.c.state)).all())

    def retrying_alerts(self) -> list:
        """Alerts that failed and wait for another try, soonest first."""
        return self.rows(select(alerts).where(alerts.c.state == "pending",
                                              alerts.c.attempts > 0)
                         .order_by(alerts.c.send_after, alerts.c.id))

    def alert_problems(self, limit: int = 20) -> list:
        """Alerts given up, newest first: rule, channel, event, title, attempts,
        error and why they were given up."""
        return self.rows(select(alerts.c.rule, alerts.c.channel, alerts.c.event_kind,
                                alerts.c.event_key, alerts.c.title, alerts.c.attempts,
                                alerts.c.last_error, alerts.c.given_up, alerts.c.created_at)
                         .where(alerts.c.state == "failed")
                         .order_by(alerts.c.created_at.desc(), alerts.c.alert_id).limit(limit))

    def failed_alerts_since(self, since: datetime) -> int:
        return self.scalar(select(func.count()).select_from(alerts).where(
            alerts.c.state == "failed", alerts.c.created_at >= since))

    # --- tasks ----------------------------------------------------------------------

    def add_tasks(self, new_tasks: Iterable, at: datetime, scope: str, fired: Iterable[str] = (),
                  mark: dict | None = None) -> int:
        """Create follow-up tasks (transforms.alerts.Task); a task already there
        is left alone, its id coming from the rule and the trigger. The
        triggers acted on (`fired`) and the rule's mark are kept in the same
        transaction. A new task's owner is its lead's, else its contact's.
        Returns how many tasks were new."""
        added = 0
        with self.transaction() as tx:
            for task in new_tasks:
                added += tx.execute(upsert(tx, tasks).values(
                    task_id=task.task_id, rule=task.rule, contact_key=task.contact_key,
                    lead_id=task.lead_id, title=task.title, details=task.details,
                    due_at=task.due_at, created_at=at,
                    owner=_owner_of(tx, task.lead_id, task.contact_key),
                ).on_conflict_do_nothing(index_elements=["task_id"])).rowcount
            self._mark_events(tx, scope, fired, at)
            if mark:
                self._save_rule_mark(tx, scope, mark)
        return added

    def _tasks_with_person(self):
        """Tasks with their person and `assignee`: who the task is for (its
        own owner, else its lead's, else its contact's; "" for nobody)."""
        assignee = func.coalesce(func.nullif(tasks.c.owner, ""), func.nullif(leads.c.owner, ""),
                                 func.nullif(contacts.c.owner, ""), "").label("assignee")
        return (select(tasks, *_person_columns(), assignee)
                .select_from(tasks.outerjoin(contacts,
                                             contacts.c.contact_key == tasks.c.contact_key)
                             .outerjoin(leads, leads.c.lead_id == tasks.c.lead_id)))

    def tasks_to_remind(self, at: datetime) -> list[dict]:
        """Tasks not done, due by `at`, not yet reminded of for this due time."""
        return list(self.iter_rows(self._tasks_with_person().where(
            ~tasks.c.done, tasks.c.due_at <= at,
            (tasks.c.reminded_due_at.is_(None)) | (tasks.c.reminded_due_at != tasks.c.due_at))
            .order_by(tasks.c.due_at, tasks.c.task_id)))

    def queue_reminders(self, queued: Iterable, reminded: dict[str, datetime],
                        at: datetime) -> int:
        """Queue reminder alerts and note, in the same transaction, the due
        time each task was reminded of (task id -> due_at as stored)."""
        with self.transaction() as tx:
            added = self._insert_alerts(tx, queued, at)
            for task_id, due in reminded.items():
                tx.execute(update(tasks).where(tasks.c.task_id == task_id)
                           .values(reminded_due_at=due))
        return added

    def overdue_tasks(self, at: datetime) -> list[dict]:
        return list(self.iter_rows(self._tasks_with_person().where(
            ~tasks.c.done, tasks.c.due_at < at).order_by(tasks.c.due_at, tasks.c.task_id)))

    def task_rows(self) -> Iterator[dict]:
        """Tasks as the sinks' Tasks table takes them (`contact` is the contact
        key, followed to the surviving contact after a merge)."""
        return self.iter_rows(
            select(tasks.c.task_id, tasks.c.title,
                   func.coalesce(contacts.c.merged_into, tasks.c.contact_key).label("contact"),
                   tasks.c.due_at, tasks.c.rule, tasks.c.details, tasks.c.lead_id, tasks.c.done,
                   tasks.c.owner, tasks.c.notes, tasks.c.origin)
            .select_from(tasks.outerjoin(contacts, contacts.c.contact_key == tasks.c.contact_key))
            .order_by(tasks.c.created_at, tasks.c.task_id))

    def open_tasks(self, include_done: bool = False) -> list[dict]:
        """Tasks to do, the earliest due first (with the done ones: every task)."""
        query = self._tasks_with_person()
        if not include_done:
            query = query.where(~tasks.c.done)
        return list(self.iter_rows(query.order_by(tasks.c.done, tasks.c.due_at,
                                                  tasks.c.task_id)))

    def export_tasks(self) -> Iterator[dict]:
        """Every task with its person, for the BI export."""
        return self.iter_rows(self._tasks_with_person().order_by(tasks.c.due_at,
                                                                  tasks.c.task_id))

    def save_task_done(self, done: dict[str, bool | None]) -> int:
        """`done` as people set it in a sink's Tasks table (task id -> checked)."""
        with self.transaction() as tx:
            return sum(tx.execute(update(tasks).where(tasks.c.task_id == task_id)
                                  .values(done=bool(value))).rowcount
                       for task_id, value in done.items())

    # --- what the rules and the digest read ------------------------------------------

    def leads_at_stages(self, stages: Iterable[str]) -> list[dict]:
        return list(self.iter_rows(
            select(leads.c.lead_id, leads.c.contact_key, leads.c.stage, leads.c.source,
                   leads.c.name, leads.c.phone, leads.c.email, leads.c.company,
                   func.coalesce(contacts.c.phone_display, "").label("phone_display"))
            .select_from(leads.outerjoin(contacts, contacts.c.contact_key == leads.c.contact_key))
            .where(leads.c.stage.in_(list(stages))).order_by(leads.c.seq)))

    def orders_with_statuses(self, statuses: Iterable[str]) -> list[dict]:
        return list(self.iter_rows(
            select(orders.c.order_id, orders.c.contact_key, orders.c.status, *_person_columns())
            .select_from(orders.outerjoin(contacts,
                                          contacts.c.contact_key == orders.c.contact_key))
            .where(orders.c.status.in_(list(statuses)))
            .order_by(orders.c.ordered_at, orders.c.order_id)))

    def silent_clients(self, last_contact_before: datetime) -> list[dict]:
        """Contacts with orders whose last lead or order is older than the given time."""
        last_order = (select(orders.c.contact_key, func.max(orders.c.ordered_at).label("at"))
                      .group_by(orders.c.contact_key).subquery())
        last_lead = (select(leads.c.contact_key, func.max(leads.c.received_at).label("at"))
                     .group_by(leads.c.contact_key).subquery())
        latest = case((func.coalesce(last_lead.c.at, last_order.c.at) > last_order.c.at,
                       last_lead.c.at), else_=last_order.c.at)
        query = (
            select(contacts.c.contact_key, contacts.c.name, contacts.c.phone,
                   contacts.c.phone_display, contacts.c.email, contacts.c.company,
                   latest.label("last_contact"))
            .select_from(contacts.join(last_order, last_order.c.contact_key
                                       == contacts.c.contact_key)
                         .outerjoin(last_lead, last_lead.c.contact_key == contacts.c.contact_key))
            .where(contacts.c.merged_into.is_(None), latest < as_utc(last_contact_before))
            .order_by(contacts.c.contact_key))
        return list(self.iter_rows(query))

    def leads_by_category(self, start: datetime, end: datetime) -> dict[str, int]:
        with self.reading() as connection:
            return dict(connection.execute(
                select(leads.c.source, func.count())
                .where(leads.c.received_at >= start, leads.c.received_at < end)
                .group_by(leads.c.source)).all())

    def first_orders_between(self, start: datetime, end: datetime,
                             excluding: Iterable[str] = ()) -> list[dict]:
        """Contacts whose first order (not one of the `excluding` statuses) falls in range."""
        first = (select(orders.c.contact_key, func.min(orders.c.ordered_at).label("first_order"))
                 .where(orders.c.status.not_in(list(excluding)))
                 .group_by(orders.c.contact_key).subquery())
        return list(self.iter_rows(
            select(first.c.contact_key, first.c.first_order,
                   func.coalesce(contacts.c.name, "").label("name"),
                   func.coalesce(contacts.c.phone_display, contacts.c.phone, "").label("phone"),
                   func.coalesce(contacts.c.email, "").label("email"))
            .select_from(first.outerjoin(contacts, contacts.c.contact_key == first.c.contact_key))
            .where(first.c.first_order >= start, first.c.first_order < end)
            .order_by(first.c.first_order)))
