"""Alerts, follow-up tasks, reminders and the daily digest, as pure decisions.

Which events an alert rule takes, the text people read, when an alert may go
out (quiet hours), how a burst becomes one message, which follow-up task a
rule makes and when it is due, and the digest's text. flows/alerts.py reads
the ledger, calls these, and sends; nothing here does I/O.
"""

from __future__ import annotations

import hashlib
import re
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

from transforms.crm import spreadsheet_key

LEAD_EVENTS = ("new_lead", "new_contact", "repeat_inquiry")
HEALTH_EVENTS = ("source_down", "sink_down", "sink_error")
EVENT_KINDS = (*LEAD_EVENTS, "quarantined", *HEALTH_EVENTS)
# What starts a follow-up task: a lead event, a stage people set on a lead, an
# order status people set, or a client with orders who has gone quiet.
TASK_TRIGGERS = (*LEAD_EVENTS, "stage", "order_status", "no_contact")
# Events old when LeadHub first sees them (an import of last year's mail) are
# not news: rules skip them, see AlertRule.max_age.
_DATED_EVENTS = (*LEAD_EVENTS, "quarantined")

# Rule names LeadHub uses for its own alerts; configured names cannot take
# them (a config name has no "@").
REMINDERS_RULE = "@reminders"
DIGEST_RULE = "@digest"

TEMPLATE_FIELDS: dict[str, str] = {
    "name": "the person's name",
    "phone": "the phone as people read it: +7 (912) 345-67-89",
    "email": "the email",
    "company": "the company",
    "source": "a lead's source category (Сайт, Авито...); for other events the mailbox,"
              " form or sink",
    "origin": "the configured source a lead came through (a mailbox, a form)",
    "channel": "email, form or import",
    "subject": "the mail's subject",
    "message": "the first characters of the message",
    "link": "the row in Airtable / Google Sheets, once synced",
    "received_at": "when the lead arrived (local time)",
    "contact_key": "the contact's key",
    "lead_id": "the lead's id",
    "leads_count": "how many inquiries the contact has made",
    "item_id": "the id of a quarantined item",
    "reason": "why an item was quarantined",
    "scope": "the mailbox folder",
    "error": "the last error",
    "since": "when the failures began (local time)",
    "minutes": "how long it has been failing",
    "table": "the sink table that refused a row",
    "key": "the key of the refused row",
    "title": "a task's title",
    "due_at": "when a task is due (local time)",
    "overdue": "how late a task is",
    "details": "a task's details",
    "stage": "the lead's stage",
    "owner": "the lead's owner (a person of `team`)",
    "order_id": "the order",
    "status": "the order's status",
    "last_contact": "the date of a client's last lead or order",
    "days": "the days without contact",
}

# event kind -> (title, body), per language; a line whose fields are all empty
# is left out (no "Email: " line for a lead without email).
_LEAD_BODY = {
    "ru": "{name}\n{phone}\n{email}\n{company}\nИсточник: {source}\n{message}\n{link}",
    "en": "{name}\n{phone}\n{email}\n{company}\nSource: {source}\n{message}\n{link}",
}
DEFAULT_TEXTS: dict[str, dict[str, tuple[str, str]]] = {
    "ru": {
        "new_lead": ("Новая заявка: {name}", _LEAD_BODY["ru"]),
        "new_contact": ("Новый клиент: {name}", _LEAD_BODY["ru"]),
        "repeat_inquiry": ("Повторное обращение: {name}",
                           _LEAD_BODY["ru"] + "\nОбращений: {leads_count}"),
        "quarantined": ("Заявка не разобрана ({source})",
                        "Причина: {reason}\n{message}\n{link}"),
        "source_down": ("Источник не работает: {source}",
                        "{source} {scope}: ошибки с {since} ({minutes} мин)\n{error}"),
        "sink_down": ("Синхронизация не работает: {source}",
                      "{source}: ошибки с {since} ({minutes} мин)\n{error}"),
        "sink_error": ("{source} не принял строку", "{table} {key}: {error}"),
        "task_due": ("Задача: {title}",
                     "Срок: {due_at} ({overdue})\n{name}\n{phone}\n{details}\n{link}"),
    },
    "en": {
        "new_lead": ("New lead: {name}", _LEAD_BODY["en"]),
        "new_contact": ("New contact: {name}", _LEAD_BODY["en"]),
        "repeat_inquiry": ("Repeat inquiry: {name}",
                           _LEAD_BODY["en"] + "\nInquiries: {leads_count}"),
        "quarantined": ("Item needs review ({source})", "Reason: {reason}\n{message}\n{link}"),
        "source_down": ("Source down: {source}",
                        "{source} {scope}: failing since {since} ({minutes} min)\n{error}"),
        "sink_down": ("Sync down: {source}",
                      "{source}: failing since {since} ({minutes} min)\n{error}"),
        "sink_error": ("{source} refused a row", "{table} {key}: {error}"),
        "task_due": ("Task: {title}",
                     "Due: {due_at} ({overdue})\n{name}\n{phone}\n{details}\n{link}"),
    },
}
DEFAULT_TASK_DETAILS: dict[str, str] = {
    **dict.fromkeys(LEAD_EVENTS, "{name}\n{phone}\n{email}\n{message}\n{link}"),
    "stage": "{name}\n{phone}\n{stage}\n{link}",
    "order_status": "{name}\n{phone}\n{order_id}: {status}",
    "no_contact": "{name}\n{phone}\n{last_contact}",
}
_WORDS = {
    "ru": {"more": "…и ещё {count}", "alerts": "LeadHub: оповещения ({count})",
           "due_now": "срок сейчас", "late": "просрочено на {span}",
           "min": "мин", "h": "ч", "d": "дн"},
    "en": {"more": "…and {count} more", "alerts": "LeadHub: {count} alerts",
           "due_now": "due now", "late": "{span} late", "min": "min", "h": "h", "d": "d"},
}
_TIME_FORMAT = {"ru": "%d.%m.%Y %H:%M", "en": "%Y-%m-%d %H:%M"}
_DATE_FORMAT = {"ru": "%d.%m.%Y", "en": "%Y-%m-%d"}
# Telegram takes 4096 characters; the rest of a burst is counted, not shown.
COMBINED_LIMIT = 3500


# --- records ------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """Something that happened, as rules see it: `key` identifies it for good
    (a lead id, an outage's start), `values` fill the message templates."""

    kind: str
    key: str
    at: datetime
    values: Mapping[str, str] = field(default_factory=dict)
    category: str = ""
    origin: str = ""
    contact_key: str = ""
    lead_id: str = ""
    # the lead's owner: their own channel, when they have one, gets its alerts
    owner: str = ""


@dataclass(frozen=True)
class AlertRule:
    name: str
    events: frozenset[str]
    channels: tuple[str, ...]
    categories: frozenset[str] = frozenset()
    sources: frozenset[str] = frozenset()
    title: str | None = None
    template: str | None = None
    waits_quiet_hours: bool = True
    # a lead or item older than this when first seen is not alerted on
    max_age: timedelta | None = timedelta(hours=24)


@dataclass(frozen=True)
class Alert:
    """One message for one channel, as queued in the ledger."""

    alert_id: str
    rule: str
    channel: str
    event_kind: str
    event_key: str
    title: str
    message: str
    send_after: datetime


@dataclass(frozen=True)
class Queued:
    """An alert waiting in the ledger to go out."""

    alert_id: str
    event_kind: str
    title: str
    message: str


@dataclass(frozen=True)
class Outgoing:
    """One message to send; the alerts it carries are sent (or not) together."""

    alert_ids: tuple[str, ...]
    title: str
    body: str
    markdown: bool = False


@dataclass(frozen=True)
class QuietHours:
    """A daily window (may cross midnight) when alerts wait."""

    start: time
    end: time
    tz: tzinfo

    def end_after(self, moment: datetime) -> datetime | None:
        """When the quiet window holding `moment` ends, or None outside one."""
        if self.start == self.end:
            return None
        local = moment.astimezone(self.tz)
        now = local.time().replace(tzinfo=None)
        if self.start < self.end:
            inside, end_day = self.start <= now < self.end, local.date()
        else:
            inside = now >= self.start or now < self.end
            end_day = local.date() + timedelta(days=1 if now >= self.start else 0)
        if not inside:
            return None
        return datetime.combine(end_day, self.end, tzinfo=self.tz).astimezone(UTC)


@dataclass(frozen=True)
class Presentation:
    """How values are shown to people: their time zone and language."""

    tz: tzinfo
    language: str = "ru"
    excerpt_chars: int = 300

    def moment(self, value: datetime | None) -> str:
        return value.astimezone(self.tz).strftime(_TIME_FORMAT[self.language]) if value else ""

    def day(self, value: date) -> str:
        return value.strftime(_DATE_FORMAT[self.language])

    def words(self, key: str) -> str:
        return _WORDS[self.language][key]

    def span(self, delta: timedelta) -> str:
        minutes = int(delta.total_seconds() // 60)
        if minutes < 60:
            return f"{minutes} {self.words('min')}"
        if minutes < 48 * 60:
            return f"{minutes // 60} {self.words('h')}"
        return f"{minutes // (24 * 60)} {self.words('d')}"


@dataclass(frozen=True)
class TaskRule:
    name: str
    trigger: str
    title: str
    due_in: timedelta
    details: str = ""
    categories: frozenset[str] = frozenset()
    stages: frozenset[str] = frozenset()
    statuses: frozenset[str] = frozenset()
    silent_days: int = 0
    max_age: timedelta | None = timedelta(hours=24)


@dataclass(frozen=True)
class Task:
    task_id: str
    rule: str
    contact_key: str
    lead_id: str | None
    title: str
    details: str
    due_at: datetime


# --- ids and durations ----------------------------------------------------------


def stable_id(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:24]


def alert_id(rule: str, event_key: str, channel: str) -> str:
    """The same rule, event and channel always give the same id: queuing an
    alert twice keeps one."""
    return stable_id("alert", rule, event_key, channel)


def task_id(rule: str, trigger_key: str) -> str:
    return stable_id("task", rule, trigger_key)


_DURATION = re.compile(r"(\d+)\s*(d|h|m)", re.IGNORECASE)
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


def parse_duration(text: str) -> timedelta:
    """`2h`, `3d`, `90m`, `1d 12h`, `0` -> a timedelta."""
    cleaned = text.strip().lower()
    if cleaned == "0":
        return timedelta()
    parts = _DURATION.findall(cleaned)
    if not parts or _DURATION.sub("", cleaned).strip():
        raise ValueError(f"{text!r} is not a duration like 30m, 2h, 3d or 1d 12h")
    return sum((timedelta(**{_UNITS[unit]: int(n)}) for n, unit in parts), timedelta())


# --- templates --------------------------------------------------------------------


def template_problem(template: str) -> str | None:
    """Why a message template cannot be used, or None."""
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as error:
        return f"{template!r}: {error} (write {{{{ and }}}} for literal braces)"
    unknown = sorted({name for name in names if name not in TEMPLATE_FIELDS})
    if unknown:
        return (f"unknown field(s) {', '.join('{' + n + '}' for n in unknown)}; fields: "
                + ", ".join(TEMPLATE_FIELDS))
    return None


class _Blank(dict):
    def __missing__(self, key: str) -> str:
        return ""


def render(template: str, values: Mapping[str, str]) -> str:
    """Fill a template; a line whose fields are all empty is left out."""
    lines = []
    for line in template.splitlines():
        names = [name for _, name, _, _ in string.Formatter().parse(line) if name]
        if names and not any(values.get(name) for name in names):
            continue
        lines.append(line.format_map(_Blank(values)))
    return "\n".join(lines).strip()


def excerpt(text: str, limit: int) -> str:
    flat = " ".join((text or "").split())
    if len(flat) <= limit:
        return flat
    return flat[:limit].rsplit(" ", 1)[0] + "…"


# --- links to rows ----------------------------------------------------------------


def row_link(sink_type: str, where: str, remote_id: str | None) -> str:
    """The address of a synced row: an Airtable record, or a row of a Google
    spreadsheet (its first sheet: the sheet's own id is not kept)."""
    if not remote_id:
        return ""
    if sink_type == "airtable":
        return f"https://airtable.com/{where}/{remote_id}"
    if sink_type == "sheets" and remote_id.startswith("row:"):
        return (f"https://docs.google.com/spreadsheets/d/{spreadsheet_key(where)}/edit"
                f"#gid=0&range=A{remote_id.removeprefix('row:')}")
    return ""


# --- events from ledger rows ------------------------------------------------------


def _time(value: str | datetime | None) -> datetime | None:
    if isinstance(value, datetime) or not value:
        return value or None
    return datetime.fromisoformat(value)


def person_values(row: Mapping[str, Any]) -> dict[str, str]:
    """Name, phone, email... of a lead or contact row, as people read them."""
    return {
        "name": row.get("name") or "",
        "phone": row.get("phone_display") or row.get("phone") or "",
        "email": row.get("email") or "",
        "company": row.get("company") or "",
        "contact_key": row.get("contact_key") or "",
    }


def lead_events(row: Mapping[str, Any], link: str, show: Presentation) -> list[Event]:
    """A new lead is `new_lead`, and also `new_contact` (the contact's first
    lead) or `repeat_inquiry`. All carry the lead id as key, so a rule taking
    several of them still sends one alert per lead (the specific one first)."""
    received = _time(row["received_at"])
    values = {
        **person_values(row),
        "source": row.get("source") or "", "origin": row.get("origin") or "",
        "channel": row.get("channel") or "", "subject": row.get("subject") or "",
        "message": excerpt(row.get("message") or "", show.excerpt_chars), "link": link,
        "received_at": show.moment(received), "lead_id": row["lead_id"],
        "leads_count": str(row.get("leads_count") or ""), "stage": row.get("stage") or "",
        "owner": row.get("owner") or "",
    }
    specific = "new_contact" if row.get("first_of_contact") else "repeat_inquiry"
    return [
        Event(kind, row["lead_id"], received, values, category=row.get("source") or "",
              origin=row.get("origin") or "", contact_key=row["contact_key"],
              lead_id=row["lead_id"], owner=row.get("owner") or "")
        for kind in (specific, "new_lead")
    ]


def quarantine_event(row: Mapping[str, Any], text: str, link: str,
                     show: Presentation) -> Event:
    received = _time(row["received_at"])
    values = {"source": row["source"], "item_id": row["item_id"], "reason": row["reason"],
              "message": excerpt(text, show.excerpt_chars), "link": link,
              "received_at": show.moment(received)}
    return Event("quarantined", row["item_id"], received, values, origin=row["source"])


def outage_event(row: Mapping[str, Any], now: datetime, down_after: timedelta,
                 show: Presentation) -> Event | None:
    """A source (or sink: its name starts with `sink:`) failing for longer
    than `down_after`; one event per outage."""
    since = _time(row["failing_since"])
    if since is None or now - since < down_after:
        return None
    is_sink = row["source"].startswith("sink:")
    name = row["source"].removeprefix("sink:")
    values = {"source": name, "scope": "" if is_sink else row["scope"],
              "error": row["last_error"] or "", "since": show.moment(since),
              "minutes": str(int((now - since).total_seconds() // 60))}
    return Event("sink_down" if is_sink else "source_down",
                 f"{row['source']}|{row['scope']}|{row['failing_since']}", since, values,
                 origin=name)


def sink_error_event(row: Mapping[str, Any], show: Presentation) -> Event:
    """A row a sink refused; the same row refused again unchanged is the same event."""
    failed = _time(row["failed_at"])
    values = {"source": row["sink"], "table": row["record_kind"], "key": row["record_key"],
              "error": row["error"], "since": show.moment(failed)}
    return Event("sink_error",
                 f"{row['sink']}|{row['record_kind']}|{row['record_key']}|{row['content_hash']}",
                 failed, values, origin=row["sink"])


def stage_event(row: Mapping[str, Any], link: str, now: datetime) -> Event:
    values = {**person_values(row), "stage": row["stage"], "link": link,
              "source": row.get("source") or "", "lead_id": row["lead_id"]}
    return Event("stage", f"{row['lead_id']}|{row['stage']}", now, values,
                 category=row.get("source") or "", contact_key=row["contact_key"],
                 lead_id=row["lead_id"])


def order_status_event(row: Mapping[str, Any], now: datetime) -> Event:
    values = {**person_values(row), "order_id": row["order_id"],
              "status": row["status"]}
    return Event("order_status", f"{row['order_id']}|{row['status']}", now, values,
                 contact_key=row["contact_key"])


def silence_event(row: Mapping[str, Any], now: datetime, show: Presentation) -> Event:
    last = _time(row["last_contact"])
    values = {**person_values(row),
              "last_contact": show.day(last.astimezone(show.tz).date()) if last else "",
              "days": str((now - last).days) if last else ""}
    return Event("no_contact", f"{row['contact_key']}|{last.isoformat()[:10] if last else ''}",
                 now, values,
                 contact_key=row["contact_key"])


# --- alerts -----------------------------------------------------------------------


def matches(rule: AlertRule, event: Event, now: datetime) -> bool:
    if event.kind not in rule.events:
        return False
    if rule.categories and event.category not in rule.categories:
        return False
    if rule.sources and event.origin not in rule.sources:
        return False
    if rule.max_age and event.kind in _DATED_EVENTS and event.at < now - rule.max_age:
        return False
    return True


def release_time(moment: datetime, quiet: QuietHours | None, waits: bool) -> datetime:
    """When an alert due at `moment` may go out: after the quiet hours, if it waits."""
    if not waits or quiet is None:
        return moment
    return quiet.end_after(moment) or moment


def alerts_for(rule: AlertRule, events: Iterable[Event], now: datetime,
               quiet: QuietHours | None, language: str,
               owner_channels: Mapping[str, str] | None = None) -> list[Alert]:
    """One alert per matching event and channel (one per lead, whichever of
    its events matched first). An event about a lead whose owner has a
    channel of their own (`owner_channels`: owner -> channel) goes there
    instead of to the rule's channels."""
    send_after = release_time(now, quiet, rule.waits_quiet_hours)
    alerts: dict[str, Alert] = {}
    for event in events:
        if not matches(rule, event, now):
            continue
        default_title, default_body = DEFAULT_TEXTS[language][event.kind]
        title = render(rule.title or default_title, event.values)
        body = render(rule.template or default_body, event.values)
        for channel in channels_for(event.owner, rule.channels, owner_channels):
            key = alert_id(rule.name, event.key, channel)
            alerts.setdefault(key, Alert(key, rule.name, channel, event.kind, event.key, title,
                                         body, send_after))
    return list(alerts.values())


def channels_for(owner: str, channels: Sequence[str],
                 owner_channels: Mapping[str, str] | None) -> tuple[str, ...]:
    """Where a message about something `owner` works goes: their own channel
    when they have one, else `channels`."""
    own = (owner_channels or {}).get(owner) if owner else None
    return (own,) if own else tuple(channels)


def plan_messages(queued: Sequence[Queued], batch_over: int, language: str) -> list[Outgoing]:
    """The messages for one channel: one each, or, for a burst of more than
    `batch_over`, one combined message. A digest always goes on its own."""
    digests = [q for q in queued if q.event_kind == "digest"]
    alerts = [q for q in queued if q.event_kind != "digest"]
    messages = [Outgoing((q.alert_id,), q.title, q.message, markdown=True) for q in digests]
    if len(alerts) > batch_over:
        messages.append(combined_message(alerts, language))
    else:
        messages += [Outgoing((q.alert_id,), q.title, q.message) for q in alerts]
    return messages


def combined_message(alerts: Sequence[Queued], language: str) -> Outgoing:
    """Whole alerts while they fit, then titles only, then a count."""
    words = _WORDS[language]
    parts: list[str] = []
    size = 0
    shown = 0
    for alert in alerts:
        whole = f"▪ {alert.title}\n{alert.message}".strip()
        part = whole if size + len(whole) < COMBINED_LIMIT * 0.8 else f"▪ {alert.title}"
        if size + len(part) > COMBINED_LIMIT:
            break
        parts.append(part)
        size += len(part) + 2
        shown += 1
    if shown < len(alerts):
        parts.append(words["more"].format(count=len(alerts) - shown))
    return Outgoing(tuple(a.alert_id for a in alerts), words["alerts"].format(count=len(alerts)),
                    "\n\n".join(parts))


# --- a channel's test message -------------------------------------------------------

_CHECK_TEXTS = {
    "ru": {"title": "LeadHub: проверка канала {channel}",
           "works": "Это проверочное сообщение LeadHub: канал {channel} работает.",
           "uses": "Сюда приходят: {uses}.", "unused": "Ни одно правило пока сюда не пишет.",
           "rule": "оповещения правила {name}", "reminders": "напоминания о задачах",
           "digest": "утренняя сводка"},
    "en": {"title": "LeadHub: test of channel {channel}",
           "works": "This is a test message from LeadHub: channel {channel} works.",
           "uses": "What comes here: {uses}.", "unused": "No rule sends anything here yet.",
           "rule": "alerts of rule {name}", "reminders": "task reminders",
           "digest": "the morning digest"},
}


def channel_check_message(channel: str, rules: Sequence[str], reminders: bool, digest: bool,
                          language: str) -> tuple[str, str]:
    """The title and text of a test message: the channel works, and what
    comes through it (the alert rules, the reminders, the digest)."""
    words = _CHECK_TEXTS[language]
    uses = [words["rule"].format(name=name) for name in rules]
    uses += [words["reminders"]] if reminders else []
    uses += [words["digest"]] if digest else []
    usage = words["uses"].format(uses="; ".join(uses)) if uses else words["unused"]
    return (words["title"].format(channel=channel),
            f"{words['works'].format(channel=channel)}\n{usage}")


# --- retries ----------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """How a failing alert is tried again, in later runs: for `retry_for`
    after its first failure (and at least `min_attempts` times), waiting
    `base` × 2ⁿ between tries, at most `cap`, of which a random half, so that
    channels and workers coming back from one outage do not all retry at once."""

    retry_for: timedelta
    base: timedelta
    cap: timedelta
    min_attempts: int = 1

    def delay(self, attempts: int, spread: float) -> timedelta:
        """The wait after the `attempts`-th failed try; `spread` in [0, 1)."""
        doubled = self.base.total_seconds() * 2.0 ** min(attempts - 1, 64)
        full = min(self.cap.total_seconds(), doubled)
        return timedelta(seconds=full * (1 + spread) / 2)

    def next_try(self, failing_since: datetime, attempts: int, now: datetime,
                 spread: float) -> datetime | None:
        """After the `attempts`-th failed try, made at `now`, of an alert
        failing since `failing_since`: when to try again, or None to give up.
        The last try falls at the end of the window, not past it."""
        ends = failing_since + self.retry_for
        if now >= ends:
            return None if attempts >= self.min_attempts else now + self.delay(attempts, spread)
        return min(now + self.delay(attempts, spread), ends)


# --- reminders --------------------------------------------------------------------


def reminder_values(row: Mapping[str, Any], link: str, now: datetime,
                    show: Presentation) -> dict[str, str]:
    due = _time(row["due_at"])
    late = now - due if due else timedelta()
    overdue = show.words("due_now") if late < timedelta(minutes=1) else show.words(
        "late").format(span=show.span(late))
    return {**person_values(row), "title": row["title"], "details": row["details"] or "",
            "due_at": show.moment(due), "overdue": overdue, "link": link,
            "lead_id": row.get("lead_id") or ""}


def reminder_alerts(row: Mapping[str, Any], values: Mapping[str, str],
                    channels: Sequence[str], send_after: datetime, language: str,
                    title: str | None = None, template: str | None = None) -> list[Alert]:
    """A task's reminder: once per task and due time."""
    default_title, default_body = DEFAULT_TEXTS[language]["task_due"]
    key = f"{row['task_id']}@{_time(row['due_at']).isoformat()}"
    text_title = render(title or default_title, values)
    body = render(template or default_body, values)
    return [Alert(alert_id(REMINDERS_RULE, key, channel), REMINDERS_RULE, channel, "task_due",
                  key, text_title, body, send_after) for channel in channels]


# --- follow-up tasks ----------------------------------------------------------------


def task_for(rule: TaskRule, event: Event, now: datetime) -> Task | None:
    """The task a rule makes for an event, or None. Due times count from the
    lead's arrival for lead events, and from when LeadHub noticed the change
    for stages, order statuses and silence (the sinks keep no change times)."""
    if event.kind != rule.trigger:
        return None
    if rule.categories and event.category not in rule.categories:
        return None
    if rule.stages and event.values.get("stage") not in rule.stages:
        return None
    if rule.statuses and event.values.get("status") not in rule.statuses:
        return None
    if event.kind in LEAD_EVENTS:
        if rule.max_age and event.at < now - rule.max_age:
            return None
        due = event.at + rule.due_in
    else:
        due = now + rule.due_in
    details = rule.details or DEFAULT_TASK_DETAILS[rule.trigger]
    return Task(task_id(rule.name, event.key), rule.name, event.contact_key,
                event.lead_id or None, render(rule.title, event.values),
                render(details, event.values), due.astimezone(UTC))


# --- the daily digest ---------------------------------------------------------------


@dataclass(frozen=True)
class OverdueTask:
    title: str
    who: str
    due_at: datetime


@dataclass(frozen=True)
class Outage:
    name: str
    since: datetime
    error: str


@dataclass(frozen=True)
class DigestData:
    day: date
    leads_by_source: Mapping[str, int]
    new_clients: Sequence[str]
    overdue_tasks: Sequence[OverdueTask]
    quarantined_new: int
    quarantined_total: int
    outages: Sequence[Outage]
    sink_errors: Mapping[str, int]
    alerts_failed: int


_DIGEST = {
    "ru": {
        "title": "LeadHub: сводка за {day}", "leads": "Заявки: {count}",
        "clients": "Новые клиенты (первый заказ): {count}",
        "tasks": "Просроченные задачи: {count}", "due": "срок {due}",
        "review": "Требуют разбора: {new} новых, всего {total}",
        "health": "Источники и синхронизация", "healthy": "всё работает",
        "down": "{name}: ошибки с {since}: {error}",
        "refused": "{sink}: строк не принято: {count}",
        "undelivered": "Оповещений не доставлено: {count}",
    },
    "en": {
        "title": "LeadHub: summary of {day}", "leads": "Leads: {count}",
        "clients": "New clients (first order): {count}",
        "tasks": "Overdue tasks: {count}", "due": "due {due}",
        "review": "Needs review: {new} new, {total} in all",
        "health": "Sources and sync", "healthy": "all working",
        "down": "{name}: failing since {since}: {error}",
        "refused": "{sink}: rows refused: {count}",
        "undelivered": "Alerts not delivered: {count}",
    },
}
_DIGEST_LIST_LIMIT = 10


def digest_day(now: datetime, tz: tzinfo) -> tuple[date, datetime, datetime]:
    """Yesterday in the configured time zone, and its bounds in UTC."""
    day = now.astimezone(tz).date() - timedelta(days=1)
    start = datetime.combine(day, time(), tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), time(), tzinfo=tz)
    return day, start.astimezone(UTC), end.astimezone(UTC)


def compose_digest(data: DigestData, show: Presentation) -> tuple[str, str]:
    """The digest's title and its Markdown text."""
    words = _DIGEST[show.language]
    lines = [f"**{words['leads'].format(count=sum(data.leads_by_source.values()))}**"]
    lines += [f"- {source}: {count}" for source, count in
              sorted(data.leads_by_source.items(), key=lambda item: (-item[1], item[0]))]
    lines += ["", f"**{words['clients'].format(count=len(data.new_clients))}**"]
    lines += _capped([f"- {client}" for client in data.new_clients], show)
    lines += ["", f"**{words['tasks'].format(count=len(data.overdue_tasks))}**"]
    lines += _capped([
        f"- {task.title}" + (f", {task.who}" if task.who else "")
        + f" ({words['due'].format(due=show.moment(task.due_at))})"
        for task in data.overdue_tasks], show)
    review = words["review"].format(new=data.quarantined_new, total=data.quarantined_total)
    lines += ["", f"**{review}**"]
    lines += ["", f"**{words['health']}**"]
    problems = ["- " + words["down"].format(name=o.name, since=show.moment(o.since),
                                            error=o.error) for o in data.outages]
    problems += [f"- {words['refused'].format(sink=sink, count=count)}"
                 for sink, count in sorted(data.sink_errors.items())]
    if data.alerts_failed:
        problems.append(f"- {words['undelivered'].format(count=data.alerts_failed)}")
    lines += problems or [f"- {words['healthy']}"]
    return words["title"].format(day=show.day(data.day)), "\n".join(lines)


def _capped(lines: list[str], show: Presentation) -> list[str]:
    if len(lines) <= _DIGEST_LIST_LIMIT:
        return lines
    rest = len(lines) - _DIGEST_LIST_LIMIT
    return [*lines[:_DIGEST_LIST_LIMIT], show.words("more").format(count=rest)]
