from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from pytest import approx

from transforms.funnel import (
    FORECAST_COLUMNS,
    FUNNEL_COLUMNS,
    LOSS_COLUMNS,
    MANAGER_COLUMNS,
    FunnelRules,
    analyse,
    forecast_rows,
    funnel_table,
    loss_rows,
    manager_rows,
    overdue_by_owner,
)

RULES = FunnelRules(("Новый", "Квалификация", "КП отправлено", "Оплачен"), "Отказ")
START = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
TEAM = ("Анна", "Борис", "Вера")


def _lead(lead_id, source, owner, amount, *changes, loss_reason=""):
    """A lead whose history is (stage, days after START[, reason]); its
    current stage is the last one."""
    history = [{"stage": stage, "reason": rest[0] if rest else "",
                "changed_at": START + timedelta(days=days)} for stage, days, *rest in changes]
    return {"lead_id": lead_id, "contact_key": f"C-{lead_id}", "source": source,
            "owner": owner, "amount": None if amount is None else Decimal(amount),
            "loss_reason": loss_reason, "stage": history[-1]["stage"], "history": history}


LEADS = [
    # won: every stage in turn
    _lead("A", "Сайт", "Анна", "150000.50", ("Новый", 0), ("Квалификация", 1),
          ("КП отправлено", 3), ("Оплачен", 10)),
    # skips «Квалификация», lost after the offer as too expensive
    _lead("B", "Сайт", "Анна", "80000", ("Новый", 0), ("КП отправлено", 2),
          ("Отказ", 6, "дорого"), loss_reason="дорого"),
    # open, still in «Квалификация»
    _lead("C", "Авито", "Борис", "12345.67", ("Новый", 0), ("Квалификация", 4)),
    # lost at once; the reason came with the change only
    _lead("D", "Авито", "Борис", None, ("Новый", 0), ("Отказ", 1, "не дозвонились")),
    # open, no owner, no amount
    _lead("E", "Авито", "", None, ("Новый", 0)),
    # open at the offer
    _lead("F", "Сайт", "Анна", "99999.99", ("Новый", 0), ("Квалификация", 2),
          ("КП отправлено", 5)),
]
FUNNEL = analyse(LEADS, {"C-A"}, RULES)


def _everyone(rows):
    return [row for row in rows if row["source"] == "(all)"]


def test_a_lead_reaches_every_stage_up_to_the_furthest_in_its_history():
    rows = _everyone(funnel_table(FUNNEL))
    # B went from «Новый» to «КП отправлено» and was lost: it reached «Квалификация» too
    assert [(row["stage"], row["leads_reached"]) for row in rows] == [
        ("Новый", 6), ("Квалификация", 4), ("КП отправлено", 3), ("Оплачен", 1), ("client", 1)]


def test_conversion_to_the_next_stage_and_to_the_won_one():
    rows = _everyone(funnel_table(FUNNEL))[:4]
    assert [row["conversion_to_next"] for row in rows] == [approx(4 / 6), 0.75, approx(1 / 3),
                                                           None]
    assert [row["conversion_to_won"] for row in rows] == [approx(1 / 6), 0.25, approx(1 / 3),
                                                          1.0]
    assert [row["conversion_from_previous"] for row in rows] == [1.0, approx(4 / 6), 0.75,
                                                                 approx(1 / 3)]


def test_a_lost_lead_counts_at_the_stage_it_was_in_before_the_loss():
    rows = _everyone(funnel_table(FUNNEL))
    assert [row["lost_at_stage"] for row in rows] == [1, 0, 1, 0, None]


def test_median_days_in_a_stage_counts_the_stays_that_ended():
    rows = _everyone(funnel_table(FUNNEL))
    # «Новый»: 1, 2, 4, 1, 2 days (E is still there); «Квалификация»: A 2, F 3
    # (C is still there); «КП отправлено»: A 7, B 4; nobody leaves «Оплачен»
    assert [row["median_days_in_stage"] for row in rows] == [2.0, 2.5, 5.5, None, None]


def test_each_source_has_its_own_funnel():
    avito = [row for row in funnel_table(FUNNEL) if row["source"] == "Авито"]
    assert [(row["leads_reached"], row["lost_at_stage"]) for row in avito[:4]] == [
        (3, 1), (1, 0), (0, 0), (0, 0)]
    assert avito[0]["median_days_in_stage"] == 2.5  # C 4 days, D 1 day


def test_losses_by_stage_and_reason():
    assert loss_rows(FUNNEL, ("дорого", "не дозвонились")) == [
        {"stage_order": 1, "stage": "Новый", "loss_reason": "не дозвонились", "leads": 1,
         "share_of_lost": 0.5},
        {"stage_order": 3, "stage": "КП отправлено", "loss_reason": "дорого", "leads": 1,
         "share_of_lost": 0.5},
    ]


def test_losses_at_one_stage_list_the_configured_reasons_in_order_and_no_reason_last():
    leads = [_lead(name, "Сайт", "", None, ("Новый", 0), ("Отказ", 1), loss_reason=reason)
             for name, reason in (("L1", ""), ("L2", "свой"), ("L3", "нецелевой"),
                                  ("L4", "дорого"), ("L5", "дорого"))]
    rows = loss_rows(analyse(leads, set(), RULES), ("дорого", "нецелевой"))
    assert [(row["loss_reason"], row["leads"]) for row in rows] == [
        ("дорого", 2), ("нецелевой", 1), ("свой", 1), ("", 1)]


def test_forecast_is_open_amount_times_the_stages_win_rate_to_the_kopeck():
    rows = forecast_rows(FUNNEL)
    assert [(row["stage"], row["open_leads"], row["leads_with_amount"], row["open_amount"])
            for row in rows] == [
        ("Новый", 1, 0, Decimal(0)),  # E has no amount: it adds nothing
        ("Квалификация", 1, 1, Decimal("12345.67")),
        ("КП отправлено", 1, 1, Decimal("99999.99")),
    ]
    # closed leads that reached each stage: A won; B and D lost at «Новый», B at the others
    assert [row["win_rate"] for row in rows] == [approx(1 / 3), 0.5, 0.5]
    assert [row["forecast"] for row in rows] == [
        Decimal(0), Decimal("6172.835"), Decimal("49999.995")]
    assert all(isinstance(row["forecast"], Decimal) for row in rows)


def test_a_stage_no_closed_lead_has_passed_forecasts_nothing():
    leads = [_lead("L1", "Сайт", "", "5000", ("Новый", 0), ("КП отправлено", 1))]
    rows = forecast_rows(analyse(leads, set(), RULES))
    assert [(row["win_rate"], row["forecast"]) for row in rows] == [(0.0, Decimal(0))] * 3


def test_managers_the_team_in_order_then_other_owners_then_leads_without_one():
    rows = manager_rows(FUNNEL, TEAM, {"Борис": 2, "Гость": 1})
    assert [tuple(row.values()) for row in rows] == [
        ("Анна", 3, 1, 1, 1, approx(1 / 3), Decimal("150000.50"), Decimal("49999.995"), 0),
        ("Борис", 2, 1, 0, 1, 0.0, Decimal(0), Decimal("6172.835"), 2),
        ("Вера", 0, 0, 0, 0, 0.0, Decimal(0), Decimal(0), 0),
        ("Гость", 0, 0, 0, 0, 0.0, Decimal(0), Decimal(0), 1),
        ("", 1, 1, 0, 0, 0.0, Decimal(0), Decimal(0), 0),
    ]


def test_overdue_tasks_are_open_and_due_before_now_per_assignee():
    now = START + timedelta(days=3)
    tasks = [
        {"assignee": "Анна", "done": False, "due_at": START},
        {"assignee": "Анна", "done": True, "due_at": START},  # done
        {"assignee": "Анна", "done": False, "due_at": now + timedelta(hours=1)},  # not yet due
        {"assignee": "", "done": False, "due_at": START},
    ]
    assert overdue_by_owner(tasks, now) == {"Анна": 1, "": 1}


@pytest.mark.parametrize(
    ("stage", "reached"),
    [
        pytest.param(" оплачен ", 4, id="case-and-spaces-do-not-matter"),
        pytest.param("Думает", 1, id="a-stage-outside-the-funnel-counts-at-the-first"),
        pytest.param("", 1, id="blank-counts-at-the-first"),
        pytest.param("Отказ", 1, id="lost-without-a-history"),
    ],
)
def test_a_lead_from_before_the_history_counts_by_its_current_stage(stage, reached):
    lead = {"lead_id": "L", "contact_key": "C", "source": "Сайт", "stage": stage}
    rows = _everyone(funnel_table(analyse([lead], set(), RULES)))
    assert [row["leads_reached"] for row in rows[:4]] == [1] * reached + [0] * (4 - reached)


def test_a_stage_outside_the_funnel_in_the_history_does_not_move_a_lead():
    lead = _lead("L", "Сайт", "", None, ("Новый", 0), ("Думает", 1), ("КП отправлено", 3),
                 ("Думает", 4))
    rows = _everyone(funnel_table(analyse([lead], set(), RULES)))
    assert [row["leads_reached"] for row in rows[:4]] == [1, 1, 1, 0]
    assert forecast_rows(analyse([lead], set(), RULES))[2]["open_leads"] == 1


def test_without_leads_every_stage_is_still_shown():
    rows = funnel_table(analyse([], set(), RULES))
    assert [(row["stage"], row["leads_reached"]) for row in rows] == [
        ("Новый", 0), ("Квалификация", 0), ("КП отправлено", 0), ("Оплачен", 0), ("client", 0)]


def test_the_funnel_needs_a_stage():
    with pytest.raises(ValueError, match="at least one stage"):
        FunnelRules(())


@pytest.mark.parametrize(
    ("rows", "columns"),
    [
        pytest.param(funnel_table(FUNNEL), FUNNEL_COLUMNS, id="funnel"),
        pytest.param(loss_rows(FUNNEL), LOSS_COLUMNS, id="losses"),
        pytest.param(forecast_rows(FUNNEL), FORECAST_COLUMNS, id="forecast"),
        pytest.param(manager_rows(FUNNEL, TEAM), MANAGER_COLUMNS, id="managers"),
    ],
)
def test_every_row_has_the_documented_columns_in_order(rows, columns):
    assert rows
    assert all(tuple(row) == columns for row in rows)
