"""The alerts, reminders and digest flows: what happened in the ledger ->
alerts and follow-up tasks -> notification channels (apprise).

`alerts` runs after intake and sync: each alert rule turns the events since
its mark into alerts (one per rule, event and channel; queuing one twice keeps
one), each task rule makes its tasks, and every alert that is due goes out.
`reminders` (every 15 minutes) queues one reminder per task due and not done,
once per due time. `digest` (every morning) sends yesterday's summary and
keeps it as a Prefect artifact.

Delivery is at most once. An alert is marked `sending` in its own transaction
before it goes out and `sent` right after. A run that dies in between leaves
it `sending`; the next run past `delivery.unconfirmed_after_minutes` reports
it as unconfirmed instead of sending it again, since it may well have arrived.
A send that fails is tried again in later runs (intake, reminders, serve),
with growing waits, for `delivery.retry_for_hours` after its first failure;
then it is given up and reported, and `leadhub alert replay` (`replay_alerts`)
queues it again. `try_channels` sends a test message through channels, apart
from the queue, for `leadhub alert test`.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from zoneinfo import ZoneInfo

from connectors import notify
from connectors.ledger import Ledger
from connectors.ledger.database import as_utc
from leadhub.errors import FatalError
from leadhub.settings import ChannelConfig, Settings
from transforms.alerts import (
    DIGEST_RULE,
    LEAD_EVENTS,
    REMINDERS_RULE,
    Alert,
    AlertRule,
    DigestData,
    Event,
    Outage,
    Outgoing,
    OverdueTask,
    Presentation,
    Queued,
    QuietHours,
    TaskRule,
    alert_id,
    alerts_for,
    channel_check_message,
    channels_for,
    compose_digest,
    digest_day,
    lead_events,
    order_status_event,
    outage_event,
    plan_messages,
    quarantine_event,
    release_time,
    reminder_alerts,
    reminder_values,
    row_link,
    silence_event,
    sink_error_event,
    stage_event,
    task_for,
)
from transforms.crm import spreadsheet_key
from transforms.exports import preview

Sender = Callable[[str, str, str, bool], notify.SendResult]

UNCONFIRMED = ("the run stopped while sending it, so it may or may not have arrived;"
               " it is not sent again, so that it cannot arrive twice")


log = logging.getLogger("leadhub.alerts")


@dataclass
class Run:
    """One run's settings, ledger and clock, and what follows from them."""

    settings: Settings
    ledger: Ledger
    now: datetime

    @cached_property
    def show(self) -> Presentation:
        delivery = self.settings.delivery
        return Presentation(ZoneInfo(self.settings.timezone), delivery.language,
                            delivery.excerpt_chars)

    @cached_property
    def quiet(self) -> QuietHours | None:
        hours = self.settings.quiet_hours
        return hours.quiet_hours(self.settings.timezone) if hours else None

    @cached_property
    def _sinks(self) -> dict[str, tuple[str, str]]:
        return {sink.name: (sink.type, sink.base if sink.type == "airtable"
                            else spreadsheet_key(sink.spreadsheet))
                for sink in self.settings.sinks}

    def links(self, kind: str, keys: list[str]) -> dict[str, str]:
        """key -> the address of its row in the first configured sink that has it."""
        found = self.ledger.remote_ids(self._sinks, kind, keys)
        links = {}
        for key, remote in found.items():
            for sink, (sink_type, where) in self._sinks.items():
                if remote.get(sink):
                    links[key] = row_link(sink_type, where, remote[sink])
                    break
        return links


# --- events -> alerts and tasks ---------------------------------------------------


def _lead_scopes(settings: Settings) -> list[str]:
    """The marks of the rules that act on leads as they come in."""
    return [f"alert:{rule.name}" for rule in settings.alerts] + [
        f"task:{rule.name}" for rule in settings.task_rules if rule.trigger in LEAD_EVENTS]


def start_rules(settings: Settings, ledger: Ledger | None = None) -> None:
    """Give each new rule its starting point now, before leads are processed:
    the first lead after a rule is set up (a new user's test submission) is
    acted on; older leads are not (`max_age_hours` keeps old imports quiet)."""
    scopes = _lead_scopes(settings)
    if not scopes:
        return
    opened = ledger or Ledger(settings.store, create=True)
    try:
        for scope in scopes:
            if opened.rule_mark(scope) is None:
                opened.start_rule(scope)
    finally:
        if ledger is None:
            opened.close()


def raise_events(run: Run) -> Counter:
    """Alerts and follow-up tasks for what happened since each rule's mark."""
    scopes = _lead_scopes(run.settings)
    marks = {scope: run.ledger.rule_mark(scope) or run.ledger.start_rule(scope)
             for scope in scopes}
    first = min((mark["lead_position"] for mark in marks.values()), default=None)
    leads = _lead_events(run, first) if first is not None else []
    stats: Counter = Counter()
    for config in run.settings.alerts:
        scope = f"alert:{config.name}"
        stats["alerts_queued"] += _queue_rule_alerts(run, config.rule(), scope, marks[scope],
                                                     leads)
    for config in run.settings.task_rules:
        scope = f"task:{config.name}"
        if scope in marks:
            stats["tasks_created"] += _lead_tasks(run, config.rule(), scope, marks[scope],
                                                  leads)
        else:
            stats["tasks_created"] += _change_tasks(run, config.rule(), scope)
    return stats


def _lead_events(run: Run, after: int) -> list[tuple[int, list[Event]]]:
    rows = run.ledger.leads_after(after)
    links = run.links("leads", [row["lead_id"] for row in rows])
    return [(row["position"], lead_events(row, links.get(row["lead_id"], ""), run.show))
            for row in rows]


def _moved(mark: dict, leads: list[tuple[int, list[Event]]]) -> dict:
    return {**mark, "lead_position": max([mark["lead_position"], *(p for p, _ in leads)])}


def _queue_rule_alerts(run: Run, rule: AlertRule, scope: str, mark: dict,
                       leads: list[tuple[int, list[Event]]]) -> int:
    events = [event for position, found in leads if position > mark["lead_position"]
              for event in found]
    if "quarantined" in rule.events:
        rows = run.ledger.quarantined_since(mark["since"])
        links = run.links("needs_review", [row["item_id"] for row in rows])
        events += [quarantine_event(row, preview(row["payload"]), links.get(row["item_id"], ""),
                                    run.show) for row in rows]
    if "sink_error" in rule.events:
        events += [sink_error_event(row, run.show) for row in run.ledger.sink_error_list()
                   if row["failed_at"] >= as_utc(mark["since"])]
    if rule.events & {"source_down", "sink_down"}:
        events += _outages(run)
    queued = alerts_for(rule, events, run.now, run.quiet, run.show.language,
                        run.settings.owner_channels())
    return run.ledger.queue_alerts(queued, run.now, (scope, _moved(mark, leads)))


def _outages(run: Run) -> list[Event]:
    down_after = timedelta(minutes=run.settings.down_after_minutes)
    events = (outage_event(row, run.now, down_after, run.show)
              for row in run.ledger.source_health())
    return [event for event in events if event]


def _lead_tasks(run: Run, rule: TaskRule, scope: str, mark: dict,
                leads: list[tuple[int, list[Event]]]) -> int:
    tasks = [task_for(rule, event, run.now) for position, found in leads
             if position > mark["lead_position"] for event in found]
    return run.ledger.add_tasks([task for task in tasks if task], run.now, scope,
                                mark=_moved(mark, leads))


def _change_tasks(run: Run, rule: TaskRule, scope: str) -> int:
    """Tasks for stages, order statuses and silences. The ledger keeps no
    time of these changes, so a rule's first run takes the ones already true
    as its baseline and acts only on those that appear later."""
    events = _trigger_events(run, rule)
    if run.ledger.rule_mark(scope) is None:
        run.ledger.start_rule(scope, baseline=[event.key for event in events])
        return 0
    acted_on = run.ledger.marked_events(scope)
    fresh = [event for event in events if event.key not in acted_on]
    tasks = [task_for(rule, event, run.now) for event in fresh]
    return run.ledger.add_tasks([task for task in tasks if task], run.now, scope,
                                fired=[event.key for event in fresh])


def _trigger_events(run: Run, rule: TaskRule) -> list[Event]:
    if rule.trigger == "stage":
        rows = run.ledger.leads_at_stages(sorted(rule.stages))
        links = run.links("leads", [row["lead_id"] for row in rows])
        return [stage_event(row, links.get(row["lead_id"], ""), run.now) for row in rows]
    if rule.trigger == "order_status":
        return [order_status_event(row, run.now)
                for row in run.ledger.orders_with_statuses(sorted(rule.statuses))]
    quiet_since = run.now - timedelta(days=rule.silent_days)
    return [silence_event(row, run.now, run.show)
            for row in run.ledger.silent_clients(quiet_since)]


# --- reminders ------------------------------------------------------------------


def queue_reminders(run: Run) -> Counter:
    """One reminder per task that is due and not done, once per due time, to
    the channel of the one it is for (its owner, else its lead's or
    contact's) when they have one, else to `reminders.channels`."""
    config = run.settings.reminders
    owner_channels = run.settings.owner_channels()
    if not config.channels and not owner_channels:
        return Counter()
    rows = run.ledger.tasks_to_remind(run.now)
    task_links = run.links("tasks", [row["task_id"] for row in rows])
    contact_links = run.links("contacts", [row["contact_key"] for row in rows])
    send_after = release_time(run.now, run.quiet, config.during_quiet_hours == "wait")
    queued: list[Alert] = []
    reminded: dict[str, str] = {}
    for row in rows:
        link = task_links.get(row["task_id"]) or contact_links.get(row["contact_key"], "")
        values = reminder_values(row, link, run.now, run.show)
        channels = channels_for(row["assignee"], config.channels, owner_channels)
        if not channels:
            continue
        queued += reminder_alerts(row, values, channels, send_after, run.show.language,
                                  config.title, config.template)
        reminded[row["task_id"]] = row["due_at"]
    return Counter(reminders_queued=run.ledger.queue_reminders(queued, reminded, run.now))


# --- delivery -------------------------------------------------------------------


def deliver(run: Run, send: Sender) -> Counter:
    """Send every alert that is due, channel by channel, a burst as one message."""
    stats: Counter = Counter()
    delivery = run.settings.delivery
    stale = run.now - timedelta(minutes=delivery.unconfirmed_after_minutes)
    for row in run.ledger.abandon_unconfirmed(stale, UNCONFIRMED):
        log.warning("alert %s (%s) to channel %s: unconfirmed: %s", row["rule"],
                          row["event_kind"], row["channel"], UNCONFIRMED)
        stats["alerts_unconfirmed"] += 1
    stats["reminders_cancelled"] += run.ledger.cancel_done_reminders()
    in_quiet_hours = run.quiet is not None and run.quiet.end_after(run.now) is not None
    by_channel: dict[str, list] = {}
    for row in run.ledger.due_alerts(run.now):
        if in_quiet_hours and _waits_quiet_hours(run.settings, row["rule"]):
            stats["alerts_waiting"] += 1
            continue
        by_channel.setdefault(row["channel"], []).append(row)
    for channel, rows in by_channel.items():
        config = run.settings.channels.get(channel)
        if config is None:
            run.ledger.give_up_alerts([row["alert_id"] for row in rows],
                                      f"channel {channel!r} is no longer in the config")
            log.warning("%d alert(s) for channel %s given up: it is no longer in the"
                              " config", len(rows), channel)
            stats["alerts_failed"] += len(rows)
            continue
        by_id = {row["alert_id"]: row for row in rows}
        queued = [Queued(row["alert_id"], row["event_kind"], row["title"], row["message"])
                  for row in rows]
        for message in plan_messages(queued, config.batch_over, delivery.language):
            stats += _send(run, channel, config, message, by_id, send)
    return stats


def _waits_quiet_hours(settings: Settings, rule_name: str) -> bool:
    if rule_name == DIGEST_RULE:
        return False
    if rule_name == REMINDERS_RULE:
        return settings.reminders.during_quiet_hours == "wait"
    for rule in settings.alerts:
        if rule.name == rule_name:
            return rule.during_quiet_hours == "wait"
    return True


def _send(run: Run, channel: str, config: ChannelConfig, message: Outgoing,
          rows: dict[str, dict], send: Sender) -> Counter:
    ids = list(message.alert_ids)
    claimed = run.ledger.claim_alerts(ids, run.now)
    if claimed != set(ids):
        # another run is sending some of them: leave the whole message to it
        run.ledger.release_alerts(claimed)
        return Counter(alerts_busy=len(ids))
    url = config.url.get_secret_value()
    result = send(url, message.title, message.body, message.markdown)
    if result.ok:
        run.ledger.mark_alerts_sent(ids, run.now)
        return Counter(alerts_sent=len(ids), messages_sent=1)
    given_up = run.ledger.record_failed_send(_next_tries(run, [rows[i] for i in ids]),
                                             result.error, run.now)
    service = notify.service_name(url)
    if given_up:
        log.error("channel %s (%s): %d alert(s) given up after %s h of retries: %s;"
                  " `leadhub alert replay --channel %s` sends them again once it works",
                  channel, service, len(given_up), f"{run.settings.delivery.retry_for_hours:g}",
                  result.error, channel)
    if len(given_up) < len(ids):
        log.warning("channel %s (%s): not sent, tried again in a later run: %s",
                    channel, service, result.error)
    return Counter(alerts_failed=len(given_up), alerts_retrying=len(ids) - len(given_up))


def _next_tries(run: Run, rows: list[dict]) -> dict[str, datetime | None]:
    """alert id -> when to try it again, or None to give it up. One random
    spread for the message, so the alerts it carries stay together."""
    policy = run.settings.delivery.retry_policy()
    spread = random.random()
    return {row["alert_id"]: policy.next_try(row["failing_since"] or run.now,
                                             row["attempts"] + 1, run.now, spread)
            for row in rows}


# --- leadhub alert test and replay ------------------------------------------------------


@dataclass(frozen=True)
class ChannelTry:
    """A test message sent through one channel, and how it went."""

    channel: str
    service: str
    result: notify.SendResult


def channels_named(settings: Settings, target: str | None) -> list[str]:
    """The channels `target` names: every channel (None), a channel, or the
    channels of an alert rule (a name that is both: the channel and the rule's)."""
    if not settings.channels:
        raise FatalError("the config has no channels: add one under channels: (README:"
                         " \"Alerts and reminders\")")
    if target is None:
        return list(settings.channels)
    rules = {rule.name: rule.channels for rule in settings.alerts}
    named = [target] if target in settings.channels else []
    named += [channel for channel in rules.get(target, []) if channel not in named]
    if not named:
        raise FatalError(f"{target!r} is neither an alert rule nor a channel; rules:"
                         f" {', '.join(rules) or 'none'}; channels:"
                         f" {', '.join(settings.channels)}")
    return named


def try_channels(settings: Settings, channels: list[str],
                 send: Sender = notify.send) -> list[ChannelTry]:
    """Send a test message through each channel, apart from the alert queue."""
    tried = []
    for channel in channels:
        title, body = channel_check_message(
            channel, [rule.name for rule in settings.alerts if channel in rule.channels],
            channel in settings.reminders.channels, channel in settings.digest.channels,
            settings.delivery.language)
        url = settings.channels[channel].url.get_secret_value()
        tried.append(ChannelTry(channel, notify.service_name(url), send(url, title, body, False)))
    return tried


def replay_alerts(settings: Settings, *, rule: str | None = None, channel: str | None = None,
                  since: date | None = None, unconfirmed: bool = False,
                  now: datetime | None = None) -> tuple[int, dict[str, int]]:
    """Queue given-up alerts again (of a rule, a channel, raised since a day
    in the config's time zone), so that the next delivery sends them with a
    new retry window. Alerts a crash left unconfirmed only when asked: they
    may have arrived. Returns how many were queued, and channel -> how many
    were left because the channel is not in the config."""

    def requeue(run: Run) -> tuple[int, dict[str, int]]:
        stale = run.now - timedelta(minutes=settings.delivery.unconfirmed_after_minutes)
        start = datetime.combine(since, time(), tzinfo=run.show.tz) if since else None
        return run.ledger.requeue_alerts(run.now, settings.channels, rule=rule,
                                         channel=channel, since=start,
                                         unconfirmed_before=stale if unconfirmed else None)

    return _with_run(settings, now, requeue)


# --- the digest -----------------------------------------------------------------


def digest_data(run: Run) -> DigestData:
    """Yesterday (in the config's time zone) and the state of things now."""
    day, start, end = digest_day(run.now, run.show.tz)
    ledger = run.ledger
    clients = ledger.first_orders_between(start, end, run.settings.export.cancelled_statuses)
    overdue = ledger.overdue_tasks(run.now)
    return DigestData(
        day=day,
        leads_by_source=ledger.leads_by_category(start, end),
        new_clients=[", ".join(part for part in (row["name"], row["phone"] or row["email"])
                               if part) or row["contact_key"] for row in clients],
        overdue_tasks=[OverdueTask(row["title"], row["name"] or row["phone_display"],
                                   row["due_at"]) for row in overdue],
        quarantined_new=ledger.quarantined_between(start, end),
        quarantined_total=ledger.counts().get("items_quarantined", 0),
        outages=[Outage(f"{event.values['source']} {event.values['scope']}".strip(), event.at,
                        event.values["error"]) for event in _outages(run)],
        sink_errors=ledger.sink_error_counts(),
        alerts_failed=ledger.failed_alerts_since(start),
    )


def send_digest(run: Run, send: Sender) -> tuple[str, Counter]:
    """Compose yesterday's digest, queue it once per day and channel, send it.
    Returns its Markdown (with a heading) and the delivery counts."""
    data = digest_data(run)
    title, text = compose_digest(data, run.show)
    day = data.day.isoformat()
    queued = [Alert(alert_id(DIGEST_RULE, day, channel), DIGEST_RULE, channel, "digest", day,
                    title, text, run.now) for channel in run.settings.digest.channels]
    stats = Counter(digests_queued=run.ledger.queue_alerts(queued, run.now))
    stats += deliver(run, send)
    return f"# {title}\n\n{text}", stats


# --- entry points -----------------------------------------------------------------


def _with_run(settings: Settings, now: datetime | None, work: Callable[[Run], object]):
    ledger = Ledger(settings.store)
    try:
        return work(Run(settings, ledger, now or datetime.now(UTC)))
    finally:
        ledger.close()


def run_alerts(settings: Settings, now: datetime | None = None,
               send: Sender = notify.send) -> dict[str, int]:
    """Events since the last run -> alerts and tasks; then send what is due."""
    return _with_run(settings, now, lambda run: dict(raise_events(run) + deliver(run, send)))


def run_reminders(settings: Settings, now: datetime | None = None,
                  send: Sender = notify.send) -> dict[str, int]:
    """Remind of the tasks due and not done; then send what is due."""
    return _with_run(settings, now, lambda run: dict(queue_reminders(run) + deliver(run, send)))


def run_digest(settings: Settings, now: datetime | None = None,
               send: Sender = notify.send) -> tuple[str, dict[str, int]]:
    markdown, stats = _with_run(settings, now, lambda run: send_digest(run, send))
    return markdown, dict(stats)
