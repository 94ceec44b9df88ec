"""The local Sheets API v4 server, driven through gspread 6.2.1 the way the product drives it.

gspread is pointed at the fake with an HTTPClient subclass that rewrites the
https://sheets.googleapis.com host (patching gspread.urls has no effect), and
google-auth gets its token from the fake through the key's token_uri.
"""

from __future__ import annotations

import datetime as dt
import importlib.resources
import json
import threading
import time

import gspread
import pytest
import requests
from google.oauth2.service_account import Credentials
from gspread.utils import InsertDataOption, ValidationConditionType, ValueRenderOption

from .sheets import FakeSheets, parse_cells, quote_title, split_sheet

SHEETS_API = "https://sheets.googleapis.com"
SCOPES = ["https://www.googleapis.com/auth/spreadsheets"]


def rewriting_client(base_url: str) -> type[gspread.HTTPClient]:
    """An HTTPClient class that sends gspread's Sheets API calls to `base_url`."""

    class RewritingClient(gspread.HTTPClient):
        def request(self, method, endpoint, *args, **kwargs):
            if endpoint.startswith(SHEETS_API):
                endpoint = base_url + endpoint[len(SHEETS_API) :]
            return super().request(method, endpoint, *args, **kwargs)

    return RewritingClient


def connect(fake: FakeSheets, email: str = "leadhub@proj.iam.gserviceaccount.com"):
    creds = Credentials.from_service_account_info(fake.service_account_key(email), scopes=SCOPES)
    client = gspread.Client(auth=creds, http_client=rewriting_client(fake.url))
    client.set_timeout(10)
    return client


def serial(day: dt.date) -> int:
    return (day - dt.date(1899, 12, 30)).days


@pytest.fixture(scope="module")
def fake():
    with FakeSheets(writes_per_minute=10_000, reads_per_minute=10_000) as server:
        yield server


@pytest.fixture(scope="module")
def gc(fake):
    return connect(fake)


@pytest.fixture
def contacts(fake, gc):
    """A fresh spreadsheet with a "Contacts" worksheet, opened through gspread."""
    key = fake.create_spreadsheet("CRM", sheets=("Contacts", "Log"))
    return key, gc.open_by_key(key).worksheet("Contacts")


# --------------------------------------------------------------------------- auth


def test_token_flow_opens_the_spreadsheet(fake, gc):
    key = fake.create_spreadsheet("Leads", sheets=("Contacts", "Лиды"))
    before = fake.calls["token"]
    sh = gc.open_by_key(key)
    assert sh.title == "Leads"
    assert [ws.title for ws in sh.worksheets()] == ["Contacts", "Лиды"]
    assert sh.sheet1.id == 0 and sh.sheet1.row_count == 1000 and sh.sheet1.col_count == 26
    assert fake.calls["token"] - before <= 1  # one token serves many calls


def test_unshared_account_gets_permission_error(fake, gc):
    key = fake.create_spreadsheet(shared_with={"someone-else@proj.iam.gserviceaccount.com"})
    with pytest.raises(PermissionError):
        gc.open_by_key(key)

    open_key = fake.create_spreadsheet()
    fake.allowed_accounts = {"other@proj.iam.gserviceaccount.com"}
    try:
        with pytest.raises(PermissionError) as caught:
            gc.open_by_key(open_key)
        error = caught.value.__cause__.error
        assert error == {
            "code": 403,
            "message": "The caller does not have permission",
            "status": "PERMISSION_DENIED",
        }
    finally:
        fake.allowed_accounts = None
    assert gc.open_by_key(open_key).title == "CRM"


def test_unknown_spreadsheet_is_not_found(gc):
    with pytest.raises(gspread.SpreadsheetNotFound):
        gc.open_by_key("1" + "x" * 43)


def test_missing_or_invalid_bearer_is_401(fake):
    key = fake.create_spreadsheet()
    url = f"{fake.url}/v4/spreadsheets/{key}"
    missing = requests.get(url, timeout=5)
    assert missing.status_code == 401
    assert missing.json()["error"]["status"] == "UNAUTHENTICATED"
    assert missing.json()["error"]["message"].startswith(
        "Request is missing required authentication credential"
    )
    bad = requests.get(url, headers={"Authorization": "Bearer nope"}, timeout=5)
    assert bad.status_code == 401


def test_oauth_user_token_is_accepted(fake):
    key = fake.create_spreadsheet(shared_with={"user@example.com"})
    reply = requests.get(
        f"{fake.url}/v4/spreadsheets/{key}",
        headers={"Authorization": "Bearer ya29.a-user-token"},
        timeout=5,
    )
    assert reply.status_code == 200
    assert reply.json()["sheets"][0]["properties"]["title"] == "Sheet1"


def test_expired_token_is_refreshed_by_google_auth(fake, gc, contacts):
    _, ws = contacts
    before = fake.calls["token"]
    fake.expire_tokens()
    ws.update([["still works"]], "A1")
    assert fake.calls["token"] == before + 1
    assert ws.acell("A1").value == "still works"


# --------------------------------------------------------------------------- values semantics


def test_raw_keeps_text_and_user_entered_parses_like_the_ui(fake, contacts):
    key, ws = contacts
    typed = ["+7 912 345-67-89", "0123", "2026-11-23", "23.11.2026", "12.5", "'0123"]
    typed += ["+79123456789", "=1+2", "TRUE"]
    ws.update([typed], "A1", raw=True)
    ws.update([typed], "A2", raw=False)

    formatted = ws.get("A1:I2")
    assert formatted[0] == typed
    assert formatted[1] == [
        "#ERROR!",
        "123",
        "2026-11-23",
        "2026-11-23",
        "12.5",
        "0123",
        "79123456789",
        "3",
        "TRUE",
    ]
    day = serial(dt.date(2026, 11, 23))
    unformatted = ws.get("A2:I2", value_render_option=ValueRenderOption.unformatted)
    assert unformatted[0] == ["#ERROR!", 123, day, day, 12.5, "0123", 79123456789, 3, True]
    formulas = ws.get("A2:H2", value_render_option=ValueRenderOption.formula)
    assert formulas[0][0] == "=+7 912 345-67-89" and formulas[0][7] == "=1+2"
    as_text = ws.get(
        "C2",
        value_render_option=ValueRenderOption.unformatted,
        date_time_render_option="FORMATTED_STRING",
    )
    assert as_text[0] == ["2026-11-23"]
    assert fake.grid(key, "Contacts")[1][:3] == ["#ERROR!", 123, day]


def test_null_skips_a_cell_and_empty_string_clears_it(contacts):
    _, ws = contacts
    ws.update([["a", "b", "c"]], "A1")
    ws.update([[None, "", "C"]], "A1")
    assert ws.get("A1:C1")[0] == ["a", "", "C"]


def test_reads_trim_trailing_empties(fake, contacts):
    key, ws = contacts
    fake.set_grid(key, "Contacts", [["a", "", "c", ""], [], ["x"], [None, None], []])
    reply = ws.spreadsheet.values_get("'Contacts'")
    assert reply == {
        "range": "Contacts!A1:Z1000",
        "majorDimension": "ROWS",
        "values": [["a", "", "c"], [], ["x"]],
    }
    columns = ws.spreadsheet.values_get("Contacts!A1:C3", params={"majorDimension": "COLUMNS"})
    assert columns["values"] == [["a", "", "x"], [], ["c"]]
    empty = ws.spreadsheet.values_get("Contacts!H1:H")
    assert empty == {"range": "Contacts!H1:H1000", "majorDimension": "ROWS"}


def test_batch_get_of_two_ranges(contacts):
    _, ws = contacts
    ws.update([["Name", "Phone"], ["Ann", "1"], ["Bob", "2"]], "A1")
    ws.update([["x"], ["y"]], "D1")
    first, second = ws.batch_get(["A1:B2", "D:D"])
    assert first.range == "Contacts!A1:B2" and first == [["Name", "Phone"], ["Ann", "1"]]
    assert second.range == "Contacts!D1:D1000" and second == [["x"], ["y"]]


def test_values_batch_update_is_one_atomic_request(fake, contacts):
    key, ws = contacts
    fake.reset_calls()
    reply = ws.batch_update(
        [{"range": "A1:B1", "values": [["Name", "Phone"]]}, {"range": "D3", "values": [["0123"]]}],
        raw=False,
    )
    assert fake.write_calls == 1 and fake.calls["values_batch_update"] == 1
    assert reply["totalUpdatedCells"] == 3 and reply["totalUpdatedSheets"] == 1
    assert [r["updatedRange"] for r in reply["responses"]] == ["Contacts!A1:B1", "Contacts!D3"]
    assert fake.grid(key, "Contacts") == [["Name", "Phone"], [], ["", "", "", 123]]

    with pytest.raises(gspread.exceptions.APIError) as caught:
        ws.spreadsheet.values_batch_update(
            {
                "valueInputOption": "RAW",
                "data": [
                    {"range": "Contacts!A5", "values": [["kept?"]]},
                    {"range": "Nowhere!A1", "values": [["x"]]},
                ],
            }
        )
    assert caught.value.error["message"] == "Unable to parse range: Nowhere!A1"
    assert len(fake.grid(key, "Contacts")) == 3  # nothing of the failed batch was written


def test_value_input_option_is_required(fake, contacts):
    _, ws = contacts
    with pytest.raises(gspread.exceptions.APIError) as caught:
        ws.spreadsheet.values_update("Contacts!A1", body={"values": [["x"]]})
    assert caught.value.code == 400
    assert caught.value.error["message"] == "'valueInputOption' is required but not specified"


# --------------------------------------------------------------------------- append


def test_append_lands_in_the_first_gap_of_the_table(fake, contacts):
    key, ws = contacts
    fake.set_grid(key, "Contacts", [["Name", "Phone"], ["Ann", "1"], [], ["Tail", "9"]])
    reply = ws.append_rows([["Bob", "2"]])
    assert reply["tableRange"] == "Contacts!A1:B2"
    assert reply["updates"]["updatedRange"] == "Contacts!A3:B3"
    assert fake.grid(key, "Contacts")[2:] == [["Bob", "2"], ["Tail", "9"]]

    # OVERWRITE into a one-row gap with two rows destroys the row below
    fake.set_grid(key, "Contacts", [["Name", "Phone"], ["Ann", "1"], [], ["Tail", "9"]])
    ws.append_rows([["Bob", "2"], ["Cid", "3"]])
    assert fake.grid(key, "Contacts")[2:] == [["Bob", "2"], ["Cid", "3"]]

    # INSERT_ROWS pushes the rest down and grows the grid
    fake.set_grid(key, "Contacts", [["Name", "Phone"], ["Ann", "1"], [], ["Tail", "9"]])
    rows_before = fake.sheet_properties(key, "Contacts")["gridProperties"]["rowCount"]
    ws.append_rows([["Bob", "2"], ["Cid", "3"]], insert_data_option=InsertDataOption.insert_rows)
    assert fake.grid(key, "Contacts")[2:] == [["Bob", "2"], ["Cid", "3"], [], ["Tail", "9"]]
    grid_props = fake.sheet_properties(key, "Contacts")["gridProperties"]
    assert grid_props["rowCount"] == rows_before + 2


def test_append_to_an_empty_sheet_and_past_the_grid(fake, gc):
    key = fake.create_spreadsheet()
    ws = gc.open_by_key(key).sheet1
    reply = ws.append_rows([["a"]], table_range="B2")
    assert "tableRange" not in reply and reply["updates"]["updatedRange"] == "Sheet1!B2"

    small = ws.spreadsheet.add_worksheet("Small", rows=2, cols=2)
    small.update([["h1", "h2"], ["v1", "v2"]], "A1")
    reply = small.append_rows([["n1", "n2", "n3"]])
    assert reply["updates"]["updatedRange"] == "Small!A3:C3"
    assert fake.sheet_properties(key, "Small")["gridProperties"] == {
        "rowCount": 3,
        "columnCount": 3,
    }


def test_append_starts_at_the_first_column_of_the_table(fake, contacts):
    key, ws = contacts
    fake.set_grid(key, "Contacts", [[None, "Name"], [None, "Ann"]])
    reply = ws.append_rows([["Bob"]])
    assert reply["updates"]["updatedRange"] == "Contacts!B3"


# --------------------------------------------------------------------------- structure


def test_add_sheet_frozen_header_format_and_validation(fake, gc):
    key = fake.create_spreadsheet()
    sh = gc.open_by_key(key)
    ws = sh.add_worksheet("Контакты 'VIP'", rows=100, cols=8)
    assert ws.row_count == 100 and ws.col_count == 8
    ws.update([["Имя", "Телефон", "", "", "", "Статус"]], "A1")
    ws.freeze(rows=1)
    ws.format("A1:H1", {"textFormat": {"bold": True}})
    ws.add_validation(
        "F2:F",
        ValidationConditionType.one_of_list,
        ["Новый", "В работе"],
        strict=True,
        showCustomUi=True,
    )
    ws.columns_auto_resize(0, 8)

    assert sh.worksheet("Контакты 'VIP'").frozen_row_count == 1
    assert fake.validation(key, "Контакты 'VIP'") == [
        {
            "range": "F2:F",
            "type": "ONE_OF_LIST",
            "values": ["Новый", "В работе"],
            "strict": True,
            "showCustomUi": True,
        }
    ]
    assert fake.formats(key, "Контакты 'VIP'")[0]["range"] == "A1:H1"
    header = ws.get("A1:F1")
    assert header.range == "'Контакты ''VIP'''!A1:F1"
    assert header[0][-1] == "Статус"

    fake.person_edit(key, "Контакты 'VIP'", "F7", "В работе")
    assert ws.acell("F7").value == "В работе"

    with pytest.raises(gspread.exceptions.APIError) as caught:
        sh.add_worksheet("Контакты 'VIP'", rows=10, cols=10)
    assert "already exists" in caught.value.error["message"]
    assert [w.title for w in sh.worksheets()] == ["Sheet1", "Контакты 'VIP'"]


def test_clear_and_batch_clear(fake, contacts):
    key, ws = contacts
    ws.update([["a", "b", "c"], ["d", "e", "f"], ["g", "h", "i"]], "A1")
    reply = ws.batch_clear(["A1:A3", "C2"])
    assert reply["clearedRanges"] == ["Contacts!A1:A3", "Contacts!C2"]
    assert fake.grid(key, "Contacts") == [["", "b", "c"], ["", "e"], ["", "h", "i"]]
    assert ws.clear()["clearedRange"] == "Contacts!A1:Z1000"
    assert fake.grid(key, "Contacts") == []


def test_person_rewrites_the_sheet(fake, contacts):
    key, ws = contacts
    ws.update([["Name", "Phone"], ["Bob", "2"], ["Ann", "1"]], "A1")
    rows = fake.grid(key, "Contacts")
    fake.set_grid(key, "Contacts", [[r[1], r[0]] for r in [rows[0], *sorted(rows[1:])]])
    assert ws.get_all_values() == [["Phone", "Name"], ["1", "Ann"], ["2", "Bob"]]


# --------------------------------------------------------------------------- limits and failures


def test_write_quota_answers_429_and_recovers_after_the_window():
    now = [1000.0]
    with FakeSheets(
        writes_per_minute=3, reads_per_minute=3, quota_window_seconds=1.0, clock=lambda: now[0]
    ) as fake:
        key = fake.create_spreadsheet()
        ws = connect(fake).open_by_key(key).sheet1  # two reads: open_by_key, then sheet1
        for i in range(3):
            ws.update([[i]], "A1")
        with pytest.raises(gspread.exceptions.APIError) as caught:
            ws.update([["too many"]], "A1")
        error = caught.value.error
        assert caught.value.code == 429 and error["status"] == "RESOURCE_EXHAUSTED"
        assert error["message"].startswith("Quota exceeded for quota metric 'Write requests'")
        assert error["details"][0]["reason"] == "RATE_LIMIT_EXCEEDED"
        assert fake.calls["rate_limited"] == 1 and fake.write_calls == 3

        ws.get("A1")  # the third read of the window
        with pytest.raises(gspread.exceptions.APIError) as caught:
            ws.get("A1")
        assert "'Read requests'" in caught.value.error["message"]

        now[0] += 1.01
        ws.update([["again"]], "A1")
        assert ws.acell("A1").value == "again"
        assert fake.write_calls == 4 and fake.calls["rate_limited"] == 2


def test_quota_window_on_the_real_clock():
    # An hour-long window holds the second write on any machine; shortened to
    # 0.3 s after a 0.3 s sleep, it has passed on any machine too.
    with FakeSheets(writes_per_minute=1, quota_window_seconds=3600.0) as fake:
        ws = connect(fake).open_by_key(fake.create_spreadsheet()).sheet1
        ws.update([["a"]], "A1")
        with pytest.raises(gspread.exceptions.APIError):
            ws.update([["b"]], "A1")
        fake.quota_window_seconds = 0.3
        time.sleep(0.3)
        ws.update([["c"]], "A1")
        assert fake.grid(ws.spreadsheet_id, "Sheet1") == [["c"]]


def test_cell_limit():
    with FakeSheets(cell_limit=30_000) as fake:
        key = fake.create_spreadsheet()  # 26,000 cells
        sh = connect(fake).open_by_key(key)
        with pytest.raises(gspread.exceptions.APIError) as caught:
            sh.add_worksheet("More", rows=200, cols=26)
        assert caught.value.error["message"] == (
            "This action would increase the number of cells in the workbook above the limit "
            "of 30000 cells."
        )
        assert [w.title for w in sh.worksheets()] == ["Sheet1"]
        sh.sheet1.update([["x"]] * 1000, "A1")
        with pytest.raises(gspread.exceptions.APIError):
            sh.sheet1.append_rows([["y"]] * 200)


def test_writes_past_the_grid_fail(contacts):
    _, ws = contacts
    with pytest.raises(gspread.exceptions.APIError) as caught:
        ws.update([["x"]], "A1001")
    assert caught.value.error["message"] == (
        "Range (Contacts!A1001) exceeds grid limits. Max rows: 1000, max columns: 26"
    )
    with pytest.raises(gspread.exceptions.APIError) as caught:
        ws.update([["a", "b", "c"]], "A1:B1")
    assert "but tried writing to column [C]" in caught.value.error["message"]


def test_injected_server_errors(fake, contacts):
    _, ws = contacts
    fake.fail_next(1, status=503)
    with pytest.raises(gspread.exceptions.APIError) as caught:
        ws.update([["x"]], "A1")
    assert caught.value.code == 503 and caught.value.error["status"] == "UNAVAILABLE"
    fake.fail_next(1, status=502)  # an HTML page: gspread reports code -1
    with pytest.raises(gspread.exceptions.APIError) as caught:
        ws.get("A1")
    assert caught.value.response.status_code == 502 and caught.value.code == -1
    ws.update([["ok"]], "A1")


def test_request_body_over_10_mb_is_refused(fake, contacts, gc):
    key, _ = contacts
    token = gc.http_client.auth.token
    reply = requests.put(
        f"{fake.url}/v4/spreadsheets/{key}/values/A1",
        params={"valueInputOption": "RAW"},
        data=b'{"values": [["' + b"x" * (10 * 1024 * 1024) + b'"]]}',
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        timeout=10,
    )
    assert reply.status_code == 400
    assert reply.json()["error"]["message"].startswith("Request payload size exceeds the limit")


def test_concurrent_writers(fake, contacts, gc):
    key, _ = contacts
    token = gc.http_client.auth.token

    def write(column: str) -> None:
        with requests.Session() as session:
            for row in range(1, 6):
                reply = session.put(
                    f"{fake.url}/v4/spreadsheets/{key}/values/Contacts!{column}{row}",
                    params={"valueInputOption": "RAW"},
                    json={"values": [[f"{column}{row}"]]},
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=5,
                )
                assert reply.status_code == 200

    threads = [threading.Thread(target=write, args=(c,)) for c in "ABCDEFGH"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert fake.grid(key, "Contacts") == [[f"{c}{r}" for c in "ABCDEFGH"] for r in range(1, 6)]


# --------------------------------------------------------------------------- A1 notation


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("A1", (0, 0, 1, 1)),
        ("A1:C5", (0, 0, 5, 3)),
        ("A:A", (0, 0, None, 1)),
        ("1:1", (0, 0, 1, None)),
        ("A2:D", (1, 0, None, 4)),
        ("$B$2:$A$1", (0, 0, 2, 2)),
        ("AA10", (9, 26, 10, 27)),
    ],
)
def test_parse_cells(text, expected):
    assert parse_cells(text) == expected


@pytest.mark.parametrize("text", ["A0", "A", "1", "A1:", "ABCD1", "A1:B2:C3"])
def test_parse_cells_rejects(text):
    with pytest.raises(ValueError):
        parse_cells(text)


def test_sheet_titles():
    assert split_sheet("'My sheet'!A:A") == ("My sheet", "A:A")
    assert split_sheet("'Лиды ''VIP'''") == ("Лиды 'VIP'", None)
    assert split_sheet("Contacts!1:1") == ("Contacts", "1:1")
    assert split_sheet("Contacts") == (None, "Contacts")
    assert quote_title("Contacts") == "Contacts"
    assert quote_title("My sheet") == "'My sheet'"
    assert quote_title("Лиды") == "'Лиды'"
    assert quote_title("A1") == "'A1'"


# --------------------------------------------------------------------------- discovery document


def _discovery() -> dict:
    path = importlib.resources.files("googleapiclient").joinpath(
        "discovery_cache/documents/sheets.v4.json"
    )
    return json.loads(path.read_text(encoding="utf-8"))


def violations(schemas: dict, schema: dict, value, path: str = "$", nulls: bool = False):
    """Where `value` strays from a discovery schema: unknown properties, wrong types, enums."""
    if "$ref" in schema:
        schema = schemas[schema["$ref"]]
    if value is None:
        return [] if nulls else [f"{path}: null"]
    kind = schema.get("type")
    found = []
    if kind == "object":
        if not isinstance(value, dict):
            return [f"{path}: expected an object"]
        props, extra = schema.get("properties", {}), schema.get("additionalProperties")
        for key, item in value.items():
            sub = props.get(key, extra)
            if sub is None:
                found.append(f"{path}.{key}: not in {schema.get('id', 'the schema')}")
            else:
                found += violations(schemas, sub, item, f"{path}.{key}", nulls)
    elif kind == "array":
        if not isinstance(value, list):
            return [f"{path}: expected an array"]
        for i, item in enumerate(value):
            found += violations(schemas, schema["items"], item, f"{path}[{i}]", nulls)
    elif kind == "string":
        if not isinstance(value, str):
            found.append(f"{path}: expected a string")
        elif "enum" in schema and value not in schema["enum"]:
            found.append(f"{path}: {value!r} is not one of {schema['enum']}")
    elif kind == "integer" and (isinstance(value, bool) or not isinstance(value, int)):
        found.append(f"{path}: expected an integer")
    elif kind == "number" and (isinstance(value, bool) or not isinstance(value, (int, float))):
        found.append(f"{path}: expected a number")
    elif kind == "boolean" and not isinstance(value, bool):
        found.append(f"{path}: expected a boolean")
    return found


def test_responses_and_gspread_requests_follow_the_discovery_document(fake, contacts):
    doc = _discovery()
    schemas = doc["schemas"]
    spreadsheets = doc["resources"]["spreadsheets"]
    values = spreadsheets["resources"]["values"]["methods"]

    def response_schema(method: dict) -> dict:
        return method["response"]

    key, ws = contacts
    sh = ws.spreadsheet
    fake.reset_calls()
    ws.freeze(rows=1)
    ws.add_validation("C2:C", ValidationConditionType.one_of_list, ["a", "b"], showCustomUi=True)
    ws.format("A1:C1", {"textFormat": {"bold": True}})
    new = sh.add_worksheet("Extra", rows=10, cols=5)
    ws.update([["Name", "Phone", "Status"], ["Ann", "+7 912", "a"]], "A1", raw=False)
    ws.batch_update([{"range": "A3", "values": [["Bob"]]}])
    ws.append_rows([["Cid", "3", "b"]])
    ws.batch_get(["A1:C2", "C:C"])
    ws.get_all_values()
    ws.batch_clear(["A3"])
    new.clear()
    sh.del_worksheet(new)

    checks = {
        "get_spreadsheet": sh.fetch_sheet_metadata(),
        "batch_update": sh.batch_update({"requests": [{"addSheet": {"properties": {}}}]}),
        "values_get": sh.values_get("Contacts!A1:C3"),
        "values_batch_get": sh.values_batch_get(["Contacts!A1", "Contacts!B:B"]),
        "values_update": sh.values_update(
            "Contacts!D1", params={"valueInputOption": "RAW"}, body={"values": [[1]]}
        ),
        "values_batch_update": sh.values_batch_update(
            {"valueInputOption": "RAW", "data": [{"range": "Contacts!E1", "values": [[True]]}]}
        ),
        "values_append": sh.values_append(
            "Contacts", params={"valueInputOption": "RAW"}, body={"values": [["x"]]}
        ),
        "values_clear": sh.values_clear("Contacts!E1"),
        "values_batch_clear": sh.values_batch_clear(body={"ranges": ["Contacts!D1"]}),
    }
    methods = {
        "get_spreadsheet": spreadsheets["methods"]["get"],
        "batch_update": spreadsheets["methods"]["batchUpdate"],
        "values_get": values["get"],
        "values_batch_get": values["batchGet"],
        "values_update": values["update"],
        "values_batch_update": values["batchUpdate"],
        "values_append": values["append"],
        "values_clear": values["clear"],
        "values_batch_clear": values["batchClear"],
    }
    for kind, reply in checks.items():
        assert violations(schemas, response_schema(methods[kind]), reply) == [], kind
    assert checks["batch_update"]["replies"][0]["addSheet"]["properties"]["title"] == "Sheet3"

    sent = [entry for entry in fake.request_log if entry["body"] is not None]
    assert {entry["kind"] for entry in sent} >= {
        "batch_update",
        "values_update",
        "values_batch_update",
        "values_append",
        "values_batch_clear",
    }
    for entry in sent:
        request = methods[entry["kind"]]["request"]
        assert violations(schemas, request, entry["body"], nulls=True) == [], entry


def test_unknown_json_field_is_rejected_like_the_api(contacts):
    _, ws = contacts
    with pytest.raises(gspread.exceptions.APIError) as caught:
        ws.spreadsheet.batch_update({"requests": [{"addSheet": {"propertiez": {}}}]})
    assert caught.value.error["message"] == (
        "Invalid JSON payload received. Unknown name \"propertiez\" at 'requests[0].add_sheet': "
        "Cannot find field."
    )
