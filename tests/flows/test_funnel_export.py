"""The funnel, losses, forecast and managers files of an export, from stage
changes people made in the CRM (as the sync saves them), on each engine."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta

import pytest

from connectors.ledger import Ledger
from flows.export import export_tables
from leadhub.settings import load_settings
from tests.flows.crm_helpers import START, add_leads, contact_of, make_lead

AS_OF = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
TEAM = [{"name": "Анна"}, {"name": "Борис"}, {"name": "Вера"}]


def _day(days: float) -> datetime:
    return START + timedelta(days=days)


# lead number -> (owner, amount, [(days after START, people's values)])
WORK = {
    1: ("Анна", "150000.50", [(1, {"stage": "Квалификация"}), (3, {"stage": "КП отправлено"}),
                              (10, {"stage": "Оплачен"})]),
    # skips «Квалификация», then lost as too expensive
    2: ("Анна", "80000", [(2, {"stage": "КП отправлено"}),
                          (6, {"stage": "Отказ", "loss_reason": "дорого"})]),
    3: ("Борис", "12345.67", [(4, {"stage": "Квалификация"})]),
    4: ("Борис", "", [(1, {"stage": "Отказ", "loss_reason": "не дозвонились"})]),
    5: ("", "", []),
    6: ("Анна", "99999.99", [(2, {"stage": "Квалификация"}), (5, {"stage": "КП отправлено"})]),
}


@pytest.fixture
def worked(store):
    """Six leads as intake stores them, then people's work on them in the CRM."""
    add_leads(store, [make_lead(number, source="Сайт") for number in WORK])
    ledger = Ledger(store)
    try:
        for number, (owner, amount, changes) in WORK.items():
            lead_id = f"lead-{number:06d}"
            ledger.save_people_values("airtable", "leads", {
                lead_id: {"owner": owner, "amount": amount}}, at=_day(0))
            for days, values in changes:
                ledger.save_people_values("airtable", "leads", {lead_id: values}, at=_day(days))
        ledger.take_typed_tasks("airtable", [
            ("recT1", {"title": "Позвонить", "contact": contact_of(3), "owner": "Борис",
                       "due_at": _day(5)}),
            ("recT2", {"title": "Выслать КП", "contact": contact_of(6), "owner": "Анна",
                       "due_at": _day(5), "done": True}),
            ("recT3", {"title": "Перезвонить", "contact": contact_of(6), "owner": "Анна",
                       "due_at": AS_OF + timedelta(days=3)}),
        ], at=_day(0))
    finally:
        ledger.close()
    return load_settings(store=store, team=TEAM)


def _csv(path) -> list[dict]:
    with path.open(encoding="utf-8") as file:
        return list(csv.DictReader(file))


@pytest.fixture
def exported(worked, tmp_path):
    return export_tables(worked, tmp_path, "looker", as_of=AS_OF).files


def test_funnel_csv_counts_reach_losses_and_days_from_the_stage_history(exported):
    rows = [row for row in _csv(exported["funnel"]) if row["source"] == "(all)"]
    assert [(row["stage"], row["leads_reached"], row["conversion_to_next"],
             row["conversion_to_won"], row["lost_at_stage"], row["median_days_in_stage"])
            for row in rows] == [
        ("Новый", "6", "0.6667", "0.1667", "1", "2.00"),
        ("Квалификация", "4", "0.7500", "0.2500", "0", "2.50"),
        # lead 2 skipped «Квалификация» and «Встреча/Звонок»: it reached them
        ("Встреча/Звонок", "3", "1.0000", "0.3333", "0", ""),
        ("КП отправлено", "3", "0.3333", "0.3333", "1", "5.50"),
        ("Переговоры", "1", "1.0000", "1.0000", "0", ""),
        ("Оплачен", "1", "", "1.0000", "0", ""),
        ("client", "0", "", "", "", ""),
    ]
    # the columns BI reports were built on keep their place and meaning
    assert list(rows[0])[:5] == ["source", "stage_order", "stage", "leads_reached",
                                 "conversion_from_previous"]
    assert [row["conversion_from_previous"] for row in rows[:3]] == ["1.0000", "0.6667", "0.7500"]


def test_losses_csv_has_each_stage_and_reason(exported):
    assert [(row["stage"], row["loss_reason"], row["leads"], row["share_of_lost"])
            for row in _csv(exported["losses"])] == [
        ("Новый", "не дозвонились", "1", "0.5000"),
        ("КП отправлено", "дорого", "1", "0.5000"),
    ]


def test_forecast_csv_weights_open_amounts_by_the_stages_win_rate(exported):
    forecast = {row["stage"]: row for row in _csv(exported["forecast"])}
    assert list(forecast) == ["Новый", "Квалификация", "Встреча/Звонок", "КП отправлено",
                              "Переговоры"]
    assert [(row["open_leads"], row["open_amount"], row["win_rate"], row["forecast"])
            for row in forecast.values()] == [
        ("1", "0.00", "0.3333", "0.00"),
        ("1", "12345.67", "0.5000", "6172.84"),  # 6 172,835 rounds half up
        ("0", "0.00", "0.5000", "0.00"),
        ("1", "99999.99", "0.5000", "50000.00"),  # 49 999,995
        ("0", "0.00", "1.0000", "0.00"),
    ]


def test_managers_csv_has_each_team_member_and_their_overdue_tasks(exported):
    assert [tuple(row.values()) for row in _csv(exported["managers"])] == [
        ("Анна", "3", "1", "1", "1", "0.3333", "150000.50", "50000.00", "0"),
        ("Борис", "2", "1", "0", "1", "0.0000", "0.00", "6172.84", "1"),
        ("Вера", "0", "0", "0", "0", "0.0000", "0.00", "0.00", "0"),
        ("", "1", "1", "0", "0", "0.0000", "0.00", "0.00", "0"),
    ]


def test_the_dashboard_shows_the_forecast_and_the_managers(exported):
    page = exported["report"].read_text(encoding="utf-8")
    assert 'data-table="forecast"' in page and 'data-table="managers"' in page
    assert "Борис" in page and "дорого" in page
