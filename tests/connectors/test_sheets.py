"""The Sheets connector's cell formats and retry policy on single error paths;
whole behaviours run against tests/fakes/sheets.py in tests/flows/test_sheets_sync.py."""

from __future__ import annotations

import json
from collections import Counter
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
import responses
from google.oauth2 import credentials as user_credentials
from gspread.exceptions import APIError

from connectors.sheets import SheetsHttp, SheetsSink, column_letter
from tests.fakes.clock import FakeClock
from transforms.crm import default_tables, spreadsheet_key

BASE = "http://sheets.test"
APPEND = f"{BASE}/v4/spreadsheets/KEY/values/Contacts!A1:append"
BATCH = f"{BASE}/v4/spreadsheets/KEY/values:batchUpdate"
TABLES = default_tables(["Сайт"], ["Новый"])


def http(calls: Counter) -> SheetsHttp:
    clock = FakeClock()  # the backoff after a 429 passes without a real wait
    return SheetsHttp(user_credentials.Credentials("ya29.test"), base_url=BASE,
                      account=f"test-{id(calls)}", calls=calls, writes_per_minute=60,
                      reads_per_minute=60, attempts=3, clock=clock, sleep=clock.sleep)


@responses.activate
def test_an_append_that_failed_with_503_is_not_sent_again():
    responses.post(APPEND, status=503, json={"error": {"code": 503, "message": "x",
                                                       "status": "UNAVAILABLE"}})
    with pytest.raises(APIError):
        http(Counter()).request("post", "https://sheets.googleapis.com/v4/spreadsheets/KEY"
                                        "/values/Contacts!A1:append", json={})
    assert len(responses.calls) == 1


@responses.activate
def test_a_cell_update_that_hit_the_quota_is_sent_again():
    responses.post(BATCH, status=429, json={"error": {"code": 429, "message": "Quota exceeded",
                                                      "status": "RESOURCE_EXHAUSTED"}})
    responses.post(BATCH, json={"spreadsheetId": "KEY"})
    calls: Counter = Counter()
    http(calls).request("post", "https://sheets.googleapis.com/v4/spreadsheets/KEY"
                                "/values:batchUpdate", json={})
    assert calls["rate_limited"] == 1 and len(responses.calls) == 2


@pytest.mark.parametrize(
    ("given", "key"),
    [("https://docs.google.com/spreadsheets/d/1AbC-d_9/edit#gid=0", "1AbC-d_9"),
     ("1AbC-d_9", "1AbC-d_9")],
    ids=["url", "key"],
)
def test_the_spreadsheet_is_given_by_url_or_key(given, key):
    assert spreadsheet_key(given) == key


@pytest.mark.parametrize(("index", "letters"), [(0, "A"), (25, "Z"), (26, "AA"), (701, "ZZ")])
def test_column_letters(index, letters):
    assert column_letter(index) == letters


@pytest.mark.parametrize(
    ("field_name", "value", "cell"),
    [
        ("phone", "+79123456789", "'+79123456789"),
        ("name", "=HYPERLINK(\"x\")", "'=HYPERLINK(\"x\")"),
        ("name", "0123", "'0123"),
        ("name", "23.11", "'23.11"),
        ("name", "Иван", "Иван"),
        ("leads_count", 3.0, 3.0),
        ("first_seen", "2026-11-23T07:00:00Z", "2026-11-23 10:00:00"),
    ],
    ids=["phone-stays-text", "formula-stays-text", "leading-zero", "looks-like-a-date",
         "plain-text", "number", "time-in-local-zone"],
)
def test_cells_are_written_so_sheets_keeps_their_type(field_name, value, cell):
    sink = SimpleNamespace(tz=ZoneInfo("Europe/Moscow"))
    field = TABLES["contacts"].field(field_name)
    assert SheetsSink._to_cell(sink, field, value) == cell


@pytest.mark.parametrize(
    ("field_name", "serial", "read"),
    [
        ("ordered_at", 46346, "2026-11-20"),
        ("ordered_at", 46346.99, "2026-11-20"),
    ],
    ids=["a-day-is-that-day", "late-evening-is-still-that-day"],
)
def test_a_date_cell_reads_as_the_day_people_see_in_their_zone(field_name, serial, read):
    """46346 is 20 November 2026; in Moscow its midnight is 21:00 UTC the day before."""
    sink = SimpleNamespace(tz=ZoneInfo("Europe/Moscow"))
    field = TABLES["orders"].field(field_name)
    assert SheetsSink._from_cell(sink, field, serial) == read


def _config(**given):
    from pydantic import SecretStr

    base = {"name": "sheets", "oauth_token": None, "base_url": BASE}
    base.update({k: SecretStr(v) if isinstance(v, str) and k == "credentials" else v
                 for k, v in given.items()})
    return SimpleNamespace(**base)


def test_a_service_account_key_is_read_from_a_file_or_from_json(tmp_path):
    from connectors.sheets import _credentials
    from tests.fakes.sheets import FakeSheets

    with FakeSheets() as fake:
        key = fake.service_account_key("robot@proj.iam.gserviceaccount.com")
    path = tmp_path / "key.json"
    path.write_text(json.dumps(key), encoding="utf-8")
    for given in (str(path), json.dumps(key)):
        _, account = _credentials(_config(credentials=given))
        assert account == "robot@proj.iam.gserviceaccount.com"


@pytest.mark.parametrize(
    ("given", "message"),
    [("/no/such/key.json", "cannot read the service-account key /no/such/key.json"),
     ('{"type": "service_account"', "is not valid JSON"),
     ('{"type": "service_account"}', "is not a service-account key")],
    ids=["missing-file", "broken-json", "not-a-key"],
)
def test_a_bad_service_account_key_says_what_is_wrong(given, message):
    from connectors.sheets import _credentials
    from leadhub.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        _credentials(_config(credentials=given))
