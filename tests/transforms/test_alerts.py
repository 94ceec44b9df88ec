"""Alert rules, texts, quiet hours, batching, task rules and the digest, on
plain records and an injected clock."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from transforms.alerts import (
    COMBINED_LIMIT,
    AlertRule,
    DigestData,
    Outage,
    OverdueTask,
    Presentation,
    Queued,
    QuietHours,
    RetryPolicy,
    TaskRule,
    alerts_for,
    channel_check_message,
    compose_digest,
    digest_day,
    lead_events,
    order_status_event,
    outage_event,
    parse_duration,
    plan_messages,
    release_time,
    reminder_alerts,
    reminder_values,
    render,
    row_link,
    stage_event,
    task_for,
    template_problem,
)

MOSCOW = ZoneInfo("Europe/Moscow")
SHOW = Presentation(MOSCOW, "ru")
NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)  # 12:00 in Moscow


def lead_row(number: int = 1, *, first: bool = True, minutes_ago: int = 5, **changes) -> dict:
    return {
        "position": number, "lead_id": f"lead-{number}", "contact_key": f"+7912000000{number}",
        "received_at": (NOW - timedelta(minutes=minutes_ago)).isoformat(), "channel": "form",
        "source": "Сайт", "origin": "form-site", "name": f"Иван {number}",
        "phone": f"+7912000000{number}", "phone_display": f"+7 (912) 000-00-0{number}",
        "email": "", "company": "Ромашка", "subject": "", "message": "Нужен котёл на дачу",
        "stage": "", "leads_count": 1 if first else 2, "first_of_contact": first, **changes,
    }


def rule(**changes) -> AlertRule:
    return AlertRule(**{"name": "leads", "events": frozenset({"new_lead"}), "channels": ("team",),
                   **changes})


def alerts_of(rule_: AlertRule, rows: list[dict], now: datetime = NOW, quiet=None):
    events = [event for row in rows for event in lead_events(row, "", SHOW)]
    return alerts_for(rule_, events, now, quiet, "ru")


# --- durations and templates -------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("2h", timedelta(hours=2), id="hours"),
        pytest.param("3d", timedelta(days=3), id="days"),
        pytest.param("90m", timedelta(minutes=90), id="minutes"),
        pytest.param("1d 12h", timedelta(days=1, hours=12), id="days-and-hours"),
        pytest.param("0", timedelta(), id="at-once"),
    ],
)
def test_durations_read_the_way_people_write_them(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["2 hours", "", "h", "-1h", "2w"],
                         ids=["words", "empty", "no-number", "negative", "weeks"])
def test_a_duration_that_is_not_one_is_refused(text):
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


def test_a_line_whose_fields_are_all_empty_is_left_out():
    text = render("{name}\nEmail: {email}\nТел.: {phone}\n---",
                  {"name": "Иван", "email": "", "phone": "+7 (912) 345-67-89"})
    assert text == "Иван\nТел.: +7 (912) 345-67-89\n---"


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        pytest.param("{name} {phone} {{literal}}", None, id="valid"),
        pytest.param("{nmae}", "unknown field(s) {nmae}", id="misspelt-field"),
        pytest.param("{name.__class__}", "unknown field(s)", id="attribute-access"),
        pytest.param("{name", "literal braces", id="unclosed-brace"),
    ],
)
def test_template_problems_are_named(template, problem):
    found = template_problem(template)
    assert (found is None) if problem is None else (problem in found)


# --- which events make which alerts --------------------------------------------------


@pytest.mark.parametrize(
    ("owner", "channels"),
    [
        pytest.param("Анна", ["anna"], id="an-owner-with-a-channel-gets-it-alone"),
        pytest.param("Борис", ["team", "boss"], id="an-owner-without-one-the-rules"),
        pytest.param("", ["team", "boss"], id="no-owner-the-rules"),
    ],
)
def test_a_leads_alert_goes_to_its_owners_own_channel_when_they_have_one(owner, channels):
    events = lead_events(lead_row(owner=owner), "", SHOW)
    alerts = alerts_for(rule(channels=("team", "boss")), events, NOW, None, "ru",
                        {"Анна": "anna"})
    assert [alert.channel for alert in alerts] == channels


def test_an_alert_can_name_the_leads_owner():
    events = lead_events(lead_row(owner="Анна"), "", SHOW)
    [alert] = alerts_for(rule(template="{name}: {owner}"), events, NOW, None, "ru")
    assert alert.message == "Иван 1: Анна"
    assert template_problem("{owner}") is None


def test_a_new_lead_alert_shows_the_person_and_the_link():
    events = lead_events(lead_row(), "https://airtable.com/appX/rec1", SHOW)
    [alert] = alerts_for(rule(), events, NOW, None, "ru")
    assert alert.title == "Новая заявка: Иван 1"
    assert alert.message.splitlines() == [
        "Иван 1", "+7 (912) 000-00-01", "Ромашка", "Источник: Сайт", "Нужен котёл на дачу",
        "https://airtable.com/appX/rec1"]


def test_a_rule_taking_several_lead_events_alerts_once_per_lead():
    both = rule(events=frozenset({"new_lead", "repeat_inquiry"}))
    alerts = alerts_of(both, [lead_row(1, first=False), lead_row(2)])
    assert [a.title for a in alerts] == ["Повторное обращение: Иван 1", "Новая заявка: Иван 2"]


@pytest.mark.parametrize(
    ("changes", "row", "alerted"),
    [
        pytest.param({}, {}, True, id="any-lead"),
        pytest.param({"categories": frozenset({"Авито"})}, {}, False, id="other-category"),
        pytest.param({"categories": frozenset({"Сайт"})}, {}, True, id="its-category"),
        pytest.param({"sources": frozenset({"sales"})}, {}, False, id="other-source"),
        pytest.param({"events": frozenset({"new_contact"})}, {"first": False}, False,
                     id="known-contact-is-not-new"),
        pytest.param({"events": frozenset({"repeat_inquiry"})}, {"first": False}, True,
                     id="known-contact-repeats"),
        pytest.param({}, {"minutes_ago": 3 * 24 * 60}, False, id="old-mail-imported-now"),
        pytest.param({"max_age": None}, {"minutes_ago": 3 * 24 * 60}, True,
                     id="old-mail-when-age-is-no-limit"),
    ],
)
def test_rules_pick_their_events(changes, row, alerted):
    assert bool(alerts_of(rule(**changes), [lead_row(**row)])) == alerted


def test_every_channel_of_a_rule_gets_its_own_alert_with_a_stable_id():
    two = rule(channels=("team", "mail"))
    first, again = alerts_of(two, [lead_row()]), alerts_of(two, [lead_row()])
    assert [a.channel for a in first] == ["team", "mail"]
    assert [a.alert_id for a in first] == [a.alert_id for a in again]
    assert first[0].alert_id != first[1].alert_id


def test_an_outage_alerts_only_after_down_after_and_once_per_outage():
    row = {"source": "sales", "scope": "INBOX", "failing_since": "2026-11-02T08:40:00+00:00",
           "last_error": "LOGIN failed"}
    assert outage_event(row, NOW, timedelta(minutes=30), SHOW) is None
    later = outage_event(row, NOW + timedelta(minutes=15), timedelta(minutes=30), SHOW)
    still = outage_event(row, NOW + timedelta(hours=5), timedelta(minutes=30), SHOW)
    assert later.kind == "source_down" and later.key == still.key
    sink = outage_event({**row, "source": "sink:airtable", "scope": "sync"},
                        NOW + timedelta(hours=1), timedelta(minutes=30), SHOW)
    assert (sink.kind, sink.values["source"]) == ("sink_down", "airtable")


# --- quiet hours and batching -----------------------------------------------------


NIGHT = QuietHours(time(22, 0), time(8, 0), MOSCOW)


def moscow(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=MOSCOW)


@pytest.mark.parametrize(
    ("moment", "goes_at"),
    [
        pytest.param(moscow(2, 12), moscow(2, 12), id="midday-at-once"),
        pytest.param(moscow(2, 21, 59), moscow(2, 21, 59), id="just-before"),
        pytest.param(moscow(2, 22), moscow(3, 8), id="at-start-next-morning"),
        pytest.param(moscow(2, 23, 30), moscow(3, 8), id="late-evening-next-morning"),
        pytest.param(moscow(3, 3), moscow(3, 8), id="small-hours-same-morning"),
        pytest.param(moscow(3, 8), moscow(3, 8), id="at-the-end"),
    ],
)
def test_alerts_wait_for_the_end_of_quiet_hours(moment, goes_at):
    assert release_time(moment, NIGHT, waits=True) == goes_at


def test_a_rule_that_does_not_wait_sends_at_night():
    assert release_time(moscow(3, 3), NIGHT, waits=False) == moscow(3, 3)


def test_a_daytime_quiet_window():
    lunch = QuietHours(time(13, 0), time(14, 0), MOSCOW)
    assert lunch.end_after(moscow(2, 13, 30)) == moscow(2, 14)
    assert lunch.end_after(moscow(2, 14, 30)) is None


def test_queued_alerts_carry_the_quiet_hours_release():
    [alert] = alerts_of(rule(), [lead_row(minutes_ago=1)], now=moscow(2, 23), quiet=NIGHT)
    assert alert.send_after == moscow(3, 8)


def queued(count: int, kind: str = "new_lead", size: int = 40) -> list[Queued]:
    return [Queued(f"a{n}", kind, f"Новая заявка: Клиент {n}", "x" * size) for n in range(count)]


@pytest.mark.parametrize(
    ("count", "messages"),
    [pytest.param(1, 1, id="one"), pytest.param(5, 5, id="up-to-the-limit"),
     pytest.param(6, 1, id="a-burst-is-one-message")],
)
def test_a_burst_for_one_channel_becomes_one_message(count, messages):
    planned = plan_messages(queued(count), batch_over=5, language="ru")
    assert len(planned) == messages
    assert sorted(i for m in planned for i in m.alert_ids) == sorted(f"a{n}"
                                                                    for n in range(count))


def test_a_combined_message_stays_short_and_counts_the_rest():
    [message] = plan_messages(queued(200, size=300), batch_over=5, language="ru")
    assert len(message.alert_ids) == 200
    assert message.title == "LeadHub: оповещения (200)"
    assert len(message.body) <= COMBINED_LIMIT + 40
    assert message.body.splitlines()[-1].startswith("…и ещё ")
    assert "Клиент 0" in message.body


def test_a_digest_is_never_folded_into_a_burst():
    planned = plan_messages([*queued(7), Queued("d", "digest", "Сводка", "**text**")],
                            batch_over=5, language="ru")
    assert [(m.alert_ids, m.markdown) for m in planned if "d" in m.alert_ids] == [(("d",), True)]
    assert len(planned) == 2


# --- retries ---------------------------------------------------------------------

RETRIES = RetryPolicy(retry_for=timedelta(hours=12), base=timedelta(minutes=1),
                      cap=timedelta(hours=1))
FIRST_FAILURE = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("attempts", "shortest", "longest"),
    [pytest.param(1, 30, 60, id="first-retry-after-about-a-minute"),
     pytest.param(2, 60, 120, id="then-two"),
     pytest.param(5, 8 * 60, 16 * 60, id="doubling"),
     pytest.param(7, 30 * 60, 60 * 60, id="capped-at-an-hour"),
     pytest.param(500, 30 * 60, 60 * 60, id="however-many-tries")],
)
def test_waits_between_tries_double_up_to_the_cap_with_jitter(attempts, shortest, longest):
    assert RETRIES.delay(attempts, 0.0) == timedelta(seconds=shortest)
    assert RETRIES.delay(attempts, 0.999999) <= timedelta(seconds=longest)
    assert RETRIES.delay(attempts, 0.999999) > timedelta(seconds=longest * 0.99)


@pytest.mark.parametrize(
    ("failing_for", "attempts", "policy", "next_in"),
    [pytest.param(timedelta(minutes=5), 3, RETRIES, timedelta(minutes=2), id="in-the-window"),
     pytest.param(timedelta(hours=11, minutes=50), 20, RETRIES, timedelta(minutes=10),
                  id="the-last-try-at-the-window's-end"),
     pytest.param(timedelta(hours=12), 21, RETRIES, None, id="given-up-at-its-end"),
     pytest.param(timedelta(hours=12), 21, replace(RETRIES, min_attempts=30),
                  timedelta(minutes=30), id="max_attempts-not-reached-yet"),
     pytest.param(timedelta(0), 1, replace(RETRIES, retry_for=timedelta(0)), None,
                  id="no-window-no-retry")],
)
def test_the_next_try_falls_inside_the_retry_window(failing_for, attempts, policy, next_in):
    now = FIRST_FAILURE + failing_for
    expected = now + next_in if next_in is not None else None
    assert policy.next_try(FIRST_FAILURE, attempts, now, 0.0) == expected


def test_a_ten_hour_outage_is_retried_all_through_at_most_an_hour_apart():
    now, attempts, tries = FIRST_FAILURE, 1, [FIRST_FAILURE]
    while (now := RETRIES.next_try(FIRST_FAILURE, attempts, now, 0.7)) is not None:
        tries.append(now)
        attempts += 1
    gaps = [later - earlier for earlier, later in zip(tries, tries[1:], strict=False)]
    assert tries[-1] == FIRST_FAILURE + timedelta(hours=12)
    assert max(gaps) <= timedelta(hours=1) and gaps[:6] == sorted(gaps[:6])
    assert 15 <= len(tries) <= 25


# --- a channel's test message ------------------------------------------------------


@pytest.mark.parametrize(
    ("rules", "reminders", "digest", "language", "says"),
    [pytest.param(["new-leads"], True, False, "ru",
                  "Сюда приходят: оповещения правила new-leads; напоминания о задачах.",
                  id="ru-rules-and-reminders"),
     pytest.param([], False, True, "en", "What comes here: the morning digest.",
                  id="en-digest"),
     pytest.param([], False, False, "ru", "Ни одно правило пока сюда не пишет.",
                  id="unused")],
)
def test_a_test_message_says_the_channel_works_and_what_comes_through_it(
        rules, reminders, digest, language, says):
    title, body = channel_check_message("team", rules, reminders, digest, language)
    assert "team" in title and "team" in body
    assert body.endswith(says)


# --- follow-up tasks -----------------------------------------------------------------


def task_rule(**changes) -> TaskRule:
    return TaskRule(**{"name": "call-back", "trigger": "new_lead", "title": "Перезвонить {name}",
                    "due_in": timedelta(hours=2), **changes})


def test_a_new_lead_task_is_due_two_hours_after_the_lead_arrived():
    event = lead_events(lead_row(minutes_ago=30), "", SHOW)[1]
    task = task_for(task_rule(), event, NOW)
    assert task.title == "Перезвонить Иван 1"
    assert task.due_at == NOW - timedelta(minutes=30) + timedelta(hours=2)
    assert (task.contact_key, task.lead_id) == ("+79120000001", "lead-1")


def test_a_stage_task_is_due_days_after_the_stage_was_seen():
    offer = task_rule(name="follow-up", trigger="stage", title="Follow up",
                      due_in=timedelta(days=3), stages=frozenset({"КП отправлено"}))
    event = stage_event(lead_row(stage="КП отправлено"), "", NOW)
    task = task_for(offer, event, NOW)
    assert task.due_at == NOW + timedelta(days=3)
    other = stage_event(lead_row(stage="Оплачен"), "", NOW)
    assert task_for(offer, other, NOW) is None


def test_a_task_id_is_one_per_rule_and_trigger():
    offer = task_rule(name="follow-up", trigger="stage", stages=frozenset({"A", "B"}))
    at_a = task_for(offer, stage_event(lead_row(stage="A"), "", NOW), NOW)
    at_a_later = task_for(offer, stage_event(lead_row(stage="A"), "", NOW + timedelta(days=1)),
                          NOW + timedelta(days=1))
    at_b = task_for(offer, stage_event(lead_row(stage="B"), "", NOW), NOW)
    assert at_a.task_id == at_a_later.task_id != at_b.task_id


def test_an_order_status_task():
    feedback = task_rule(name="feedback", trigger="order_status", title="Ask for feedback",
                         due_in=timedelta(days=7), statuses=frozenset({"Отгружен", "Shipped"}))
    row = {"order_id": "A-17", "contact_key": "+79120000001", "status": "Отгружен",
           "name": "Иван", "phone": "+79120000001", "phone_display": "", "email": ""}
    task = task_for(feedback, order_status_event(row, NOW), NOW)
    assert (task.due_at, task.details) == (NOW + timedelta(days=7),
                                           "Иван\n+79120000001\nA-17: Отгружен")


def test_an_old_lead_makes_no_task():
    event = lead_events(lead_row(minutes_ago=3 * 24 * 60), "", SHOW)[1]
    assert task_for(task_rule(), event, NOW) is None


# --- reminders ----------------------------------------------------------------------


def test_a_reminder_says_how_late_the_task_is_and_is_keyed_by_its_due_time():
    task = {"task_id": "t1", "title": "Перезвонить", "details": "", "due_at":
            (NOW - timedelta(hours=3)).isoformat(), "name": "Иван", "phone": "",
            "phone_display": "+7 (912) 000-00-01", "email": "", "contact_key": "k"}
    values = reminder_values(task, "", NOW, SHOW)
    [alert] = reminder_alerts(task, values, ["team"], NOW, "ru")
    assert alert.title == "Задача: Перезвонить"
    assert alert.message.splitlines()[:2] == ["Срок: 02.11.2026 09:00 (просрочено на 3 ч)",
                                              "Иван"]
    moved = {**task, "due_at": NOW.isoformat()}
    [again] = reminder_alerts(moved, reminder_values(moved, "", NOW, SHOW), ["team"], NOW, "ru")
    assert again.alert_id != alert.alert_id


# --- links and the digest ------------------------------------------------------------


@pytest.mark.parametrize(
    ("sink", "where", "remote", "link"),
    [
        pytest.param("airtable", "appABCDEFGHIJKLMN", "recXYZ",
                     "https://airtable.com/appABCDEFGHIJKLMN/recXYZ", id="airtable"),
        pytest.param("sheets", "https://docs.google.com/spreadsheets/d/1AbC_d-e/edit", "row:17",
                     "https://docs.google.com/spreadsheets/d/1AbC_d-e/edit#gid=0&range=A17",
                     id="sheets-url"),
        pytest.param("sheets", "1AbC_d-e", "row:2",
                     "https://docs.google.com/spreadsheets/d/1AbC_d-e/edit#gid=0&range=A2",
                     id="sheets-key"),
        pytest.param("airtable", "appABCDEFGHIJKLMN", None, "", id="not-synced-yet"),
    ],
)
def test_row_links(sink, where, remote, link):
    assert row_link(sink, where, remote) == link


def test_yesterday_is_the_day_before_in_the_configured_time_zone():
    # 01:30 in Moscow on the 3rd is still the 2nd in UTC
    day, start, end = digest_day(datetime(2026, 11, 2, 22, 30, tzinfo=UTC), MOSCOW)
    assert day == date(2026, 11, 2)
    assert (start, end) == (moscow(2, 0), moscow(3, 0))


def digest(**changes) -> DigestData:
    return DigestData(**{
        "day": date(2026, 11, 1), "leads_by_source": {"Сайт": 3, "Авито": 5},
        "new_clients": ["Иван Петров, +7 (912) 345-67-89"],
        "overdue_tasks": [OverdueTask("Перезвонить", "Иван Петров", NOW - timedelta(hours=2))],
        "quarantined_new": 1, "quarantined_total": 4, "outages": [], "sink_errors": {},
        "alerts_failed": 0, **changes})


def test_the_digest_sums_up_yesterday():
    title, text = compose_digest(digest(), SHOW)
    assert title == "LeadHub: сводка за 01.11.2026"
    lines = text.splitlines()
    assert lines[:3] == ["**Заявки: 8**", "- Авито: 5", "- Сайт: 3"]
    assert "- Иван Петров, +7 (912) 345-67-89" in lines
    assert "- Перезвонить, Иван Петров (срок 02.11.2026 10:00)" in lines
    assert "**Требуют разбора: 1 новых, всего 4**" in lines
    assert lines[-1] == "- всё работает"


def test_the_digest_names_what_is_broken():
    broken = digest(outages=[Outage("sales INBOX", NOW, "LOGIN failed")],
                    sink_errors={"airtable": 2}, alerts_failed=3, overdue_tasks=[
                        OverdueTask(f"Задача {n}", "", NOW) for n in range(15)])
    _, text = compose_digest(broken, Presentation(MOSCOW, "en"))
    lines = text.splitlines()
    assert lines[-3:] == ["- sales INBOX: failing since 2026-11-02 12:00: LOGIN failed",
                          "- airtable: rows refused: 2", "- Alerts not delivered: 3"]
    assert "…and 5 more" in lines
