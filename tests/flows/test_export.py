"""Exports on a fixed dataset: golden files per preset, read back with pandas."""

from __future__ import annotations

import csv
import json
import os
import shutil
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
import pytest

from connectors.files import FilesSource
from flows.deployments import export_bi
from flows.export import export_tables
from flows.intake import collect, process_pending
from flows.orders import import_table
from leadhub.settings import load_settings
from tests.conftest import ENGINES

CASES = Path(__file__).resolve().parents[1] / "cases" / "exports"
AS_OF = datetime(2026, 4, 1, 12, 0, tzinfo=UTC)
# When the input's items are first seen (what an item without a date of its
# own gets), fixed so that the golden files do not depend on the day of the run.
SEEN_AT = datetime(2026, 3, 31, 9, 0, tzinfo=UTC)
DIALECTS = {
    "looker": {"sep": ",", "decimal": ".", "encoding": "utf-8"},
    "powerbi": {"sep": ";", "decimal": ",", "encoding": "utf-8-sig"},
    "excel-ru": {"sep": ";", "decimal": ",", "encoding": "utf-8-sig"},
}


# A fixed place: item ids and origins in needs_review.csv name the input path.
GOLDEN_INPUT_HOME = Path("/tmp/leadhub-export-golden")


@pytest.fixture(scope="module", params=ENGINES)
def settings(request):
    """The fixed dataset in a store on each engine: the golden files are the
    same whatever the store is."""
    folder = GOLDEN_INPUT_HOME
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(CASES / "input", folder / "input")
    store = ("leadhub.db" if request.param == "sqlite"
             else request.getfixturevalue("postgres").new_database())
    config = folder / "leadhub.yaml"
    config.write_text(f"store: {store}\ntimezone: Europe/Moscow\nexport:\n  language: en\n",
                      encoding="utf-8")
    settings = load_settings(config)
    collect(FilesSource("files", [folder / "input" / "leads.jsonl"], clock=lambda: SEEN_AT),
            settings.store)
    process_pending(settings)
    for table in ("orders", "order_items"):
        assert not import_table(settings, [folder / "input" / f"{table}.csv"], table).problems
    return settings


def _export(settings, tmp_path, preset):
    return export_tables(settings, tmp_path / preset, preset, as_of=AS_OF)


@pytest.mark.parametrize("preset", list(DIALECTS))
def test_every_table_matches_its_golden_file(settings, tmp_path, preset):
    result = _export(settings, tmp_path, preset)
    golden = CASES / preset
    if os.environ.get("LEADHUB_UPDATE_GOLDEN"):
        golden.mkdir(exist_ok=True)
        for path in result.files.values():
            if path.suffix == ".csv":
                shutil.copy(path, golden / path.name)
    for name, path in result.files.items():
        if path.suffix == ".csv":
            assert path.read_bytes() == (golden / path.name).read_bytes(), name


@pytest.mark.parametrize("preset", list(DIALECTS))
def test_read_back_with_the_preset_dialect_gives_the_ledger_numbers(settings, tmp_path, preset):
    _export(settings, tmp_path, preset)
    read = {name: pd.read_csv(tmp_path / preset / f"{name}.csv", dtype={"contact_key": str},
                              **DIALECTS[preset])
            for name in ("clients", "products", "kpi", "order_items")}
    kpi = dict(zip(read["kpi"]["kpi"], read["kpi"]["value"], strict=True))
    # Z-4 is cancelled; Z-1 + Z-2 + Z-3 = 48 900 + 12 000 + 4 500 + 39 900.50
    assert kpi["revenue"] == pytest.approx(105300.50)
    assert kpi["profit"] == pytest.approx(105300.50 - 34200 - 5000 - 1500 - 28800)
    assert read["order_items"]["revenue"].sum() == pytest.approx(105300.50)
    assert read["clients"]["revenue"].sum() == pytest.approx(105300.50)
    assert read["clients"]["orders"].tolist() == [2, 1]
    orders = pd.read_csv(tmp_path / preset / "orders.csv", **DIALECTS[preset])
    assert orders.loc[orders["is_cancelled"] == 1, "order_id"].tolist() == ["Z-4"]
    assert orders.loc[orders["is_cancelled"] == 0, "revenue"].sum() == pytest.approx(105300.50)
    # the margin of the whole business, on every row: not the mean of the rows' margins
    weighted = kpi["weighted_margin"]
    assert weighted == pytest.approx(kpi["profit"] / kpi["revenue"], abs=1e-4)
    assert read["clients"]["weighted_margin"].tolist() == [weighted] * 2
    assert set(read["products"]["weighted_margin"]) == {weighted}
    assert read["products"]["revenue"].dtype.kind == "f"  # numbers, not text


def test_two_people_with_the_same_name_stay_two_rows(settings, tmp_path):
    _export(settings, tmp_path, "looker")
    contacts = pd.read_csv(tmp_path / "looker" / "contacts.csv", dtype=str)
    igors = contacts[contacts["name"] == "Игорь"]
    assert sorted(igors["phone"]) == ["+79121111111", "+79122222222"]
    assert igors["contact_key"].nunique() == 2
    clients = pd.read_csv(tmp_path / "looker" / "clients.csv", dtype=str).fillna("")
    assert clients["phone"].tolist() == ["+79121111111", ""]
    assert clients["email"].tolist() == ["igor1@example.ru", "olga@example.ru"]


@pytest.mark.parametrize("preset", list(DIALECTS))
def test_formula_looking_values_are_neutralised_and_phones_read_as_phones(settings, tmp_path,
                                                                          preset):
    _export(settings, tmp_path, preset)
    dialect = DIALECTS[preset]
    with (tmp_path / preset / "leads.csv").open(encoding=dialect["encoding"], newline="") as f:
        leads = list(csv.DictReader(f, delimiter=dialect["sep"]))
    attacker = next(row for row in leads if "hyperlink" in row["name"].lower())
    assert attacker["name"].startswith("'=")
    assert attacker["message"].startswith("'+SUM(1")
    assert attacker["phone"] == "+79123333333"  # a phone keeps its plus
    with (tmp_path / preset / "orders.csv").open(encoding=dialect["encoding"], newline="") as f:
        comments = [row["comment"] for row in csv.DictReader(f, delimiter=dialect["sep"])]
    assert "'-5% скидка" in comments


def test_since_keeps_only_later_leads_and_orders(settings, tmp_path):
    result = export_tables(settings, tmp_path / "since", "looker",
                           since=datetime(2026, 3, 1).date(), as_of=AS_OF)
    leads = pd.read_csv(result.files["leads"], dtype=str)
    orders = pd.read_csv(result.files["orders"], dtype=str)
    assert leads["lead_id"].str.contains("w5").all() and len(leads) == 1
    assert orders["order_id"].tolist() == ["Z-2"]


@pytest.mark.parametrize("preset", list(DIALECTS))
def test_dates_has_every_day_from_the_first_lead_to_the_as_of_day(settings, tmp_path, preset):
    result = export_tables(settings, tmp_path / preset, preset, as_of=date(2026, 3, 31))
    dates = pd.read_csv(result.files["dates"], dtype=str, **DIALECTS[preset])
    days = pd.to_datetime(dates["date"], dayfirst=preset != "looker")
    # the first lead came on 2 February 2026; no day is missing
    assert days.iloc[0] == pd.Timestamp(2026, 2, 2) and days.iloc[-1] == pd.Timestamp(2026, 3, 31)
    assert len(days) == 58 and days.diff().dropna().dt.days.eq(1).all()
    first = dates.iloc[0]
    assert (first["week"], first["weekday"], first["weekday_number"], first["is_weekend"]) == (
        "2026-W06", "Monday", "1", "0")  # the fixture's export.language is en


def test_as_of_a_day_counts_nothing_after_it(settings, tmp_path):
    result = export_tables(settings, tmp_path / "as-of", "looker", as_of=date(2026, 2, 28))

    def table(name):
        return pd.read_csv(result.files[name], dtype={"contact_key": str})

    kpi = dict(zip(table("kpi")["kpi"], table("kpi")["value"], strict=True))
    # Z-2 (15 March) and the lead of 1 March come after the as-of day
    assert table("orders")["order_id"].tolist() == ["Z-1", "Z-3", "Z-4"]
    assert (kpi["leads"], kpi["revenue"]) == (4, pytest.approx(60900 + 39900.50))
    rfm = table("rfm")
    assert rfm["recency_days"].tolist() == [23, 8]  # from 5 and 20 February to the 28th
    assert rfm["frequency"].tolist() == [1, 1]
    again = export_tables(settings, tmp_path / "again", "looker", as_of=date(2026, 2, 28))
    for name in ("rfm", "kpi", "clients"):
        assert again.files[name].read_bytes() == result.files[name].read_bytes(), name


def test_report_is_written_next_to_the_csvs(settings, tmp_path):
    result = _export(settings, tmp_path, "looker")
    html = result.files["report"].read_text(encoding="utf-8")
    assert html.lower().startswith("<!doctype html>")
    assert "Игорь" in html and "105,300.50" in html  # top client and revenue, in English


def test_export_flow_publishes_the_headline_numbers(prefect_api, settings, tmp_path):
    from prefect.client.orchestration import get_client

    files = export_bi(out=str(tmp_path / "flow"), store=str(settings.store), preset="powerbi",
                      as_of=date(2026, 3, 31))
    assert Path(files["kpi"]).exists()
    # Prefect 3.8.8's own artifact readers send nulls its server refuses, so
    # the test asks the API with the filter fields it needs given.
    with get_client(sync_client=True) as client:
        response = client.request("POST", "/artifacts/filter", json={
            "artifacts": {"key": {"any_": ["leadhub-kpi"]}}, "limit": 1, "offset": 0,
            "sort": "UPDATED_DESC"})
    markdown = response.json()[0]["data"]
    assert "as of 2026-03-31" in markdown
    assert "| revenue |" in markdown and "105,300.50" in markdown


def _moscow_store(tmp_path, leads: list[dict], orders: str, items: str):
    """A store in Europe/Moscow with these leads (form posts) and orders (CSV texts)."""
    config = tmp_path / "leadhub.yaml"
    config.write_text("store: leadhub.db\ntimezone: Europe/Moscow\n", encoding="utf-8")
    settings = load_settings(config)
    posts = tmp_path / "leads.jsonl"
    posts.write_text("".join(json.dumps(lead, ensure_ascii=False) + "\n" for lead in leads),
                     encoding="utf-8")
    collect(FilesSource("files", [posts]), settings.store)
    process_pending(settings)
    for table, text in (("orders", orders), ("order_items", items)):
        path = tmp_path / f"{table}.csv"
        path.write_text(text, encoding="utf-8")
        assert not import_table(settings, [path], table).problems
    return settings


def _post(number: int, created: str) -> dict:
    return {"id": f"p{number}", "formname": "Сайт", "name": f"Клиент {number}",
            "phone": f"+7 912 000 00 {number:02d}", "created": created}


def test_since_a_day_keeps_that_whole_day_in_a_zone_ahead_of_utc(tmp_path):
    settings = _moscow_store(
        tmp_path,
        [_post(1, "2026-05-19T23:59:00+03:00"),  # the evening before: left out
         _post(2, "2026-05-20T00:00:00+03:00"),  # the first three hours of the day,
         _post(3, "2026-05-20T02:59:00+03:00"),  # stored on the 19th in UTC
         _post(4, "2026-05-20T12:00:00+03:00")],
        "Номер заказа;Дата;Телефон\nZ-19;19.05.2026;+79120000001\n"
        "Z-20;20.05.2026;+79120000002\nZ-21;21.05.2026;+79120000004\n",
        "Номер заказа;Товар;Цена\nZ-19;Чай;100\nZ-20;Чай;100\nZ-21;Чай;100\n")

    result = export_tables(settings, tmp_path / "out", "looker", since=date(2026, 5, 20),
                           as_of=date(2026, 5, 31))

    leads = pd.read_csv(result.files["leads"], dtype=str)
    orders = pd.read_csv(result.files["orders"], dtype=str)
    items = pd.read_csv(result.files["order_items"], dtype=str)
    assert leads["received_at"].tolist() == ["2026-05-20 00:00:00", "2026-05-20 02:59:00",
                                             "2026-05-20 12:00:00"]
    assert orders["order_id"].tolist() == ["Z-20", "Z-21"]
    assert items["order_id"].tolist() == ["Z-20", "Z-21"]


def test_money_is_rounded_half_up_from_exact_amounts(tmp_path):
    settings = _moscow_store(
        tmp_path, [_post(1, "2026-05-01T10:00:00+03:00")],
        "Номер заказа;Дата;Телефон\nZ-1;02.05.2026;+79120000001\nZ-2;03.05.2026;+79120000001\n",
        "Номер заказа;Товар;Цена;Количество\nZ-1;Котёл;10 000,55;1\nZ-2;Фильтр;2 020,00;3\n")

    result = export_tables(settings, tmp_path / "out", "excel-ru",
                           as_of=datetime(2026, 5, 31, tzinfo=UTC))

    # 16 060,55 over two orders is 8 030,275: an accountant writes 8 030,28
    clients = pd.read_csv(result.files["clients"], sep=";", dtype=str, encoding="utf-8-sig")
    kpi = pd.read_csv(result.files["kpi"], sep=";", dtype=str, encoding="utf-8-sig")
    assert clients["revenue"].tolist() == ["16060,55"]
    assert clients["average_check"].tolist() == ["8030,28"]
    assert dict(zip(kpi["kpi"], kpi["value"], strict=True))["average_check"] == "8030,28"
    assert "8\u202f030,28\u00a0₽" in result.files["report"].read_text(encoding="utf-8")
