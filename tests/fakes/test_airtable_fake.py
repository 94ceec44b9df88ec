"""The local Airtable server, driven through pyairtable and, for exact shapes, raw HTTP."""

from __future__ import annotations

import re
import threading
import time

import pytest
import requests
from pyairtable import Api

from .airtable import (
    DEFAULT_BASE,
    FakeAirtable,
    FormulaEvalError,
    FormulaSyntaxError,
    Scope,
    ValuesScope,
    evaluate,
    iso,
    parse_formula,
    to_cell,
    utc_now,
)
from .clock import FakeClock

TOKEN = "patTEST.secret"
OTHER_BASE = "appTESTBASE000002"
RECORD_ID = re.compile(r"rec[A-Za-z0-9]{14}")
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
RATE_LIMIT_BODY = {
    "errors": [
        {"error": "RATE_LIMIT_REACHED", "message": "Rate limit exceeded. Please try again later"}
    ]
}
LEADS_FIELDS = [
    {"name": "Lead id", "type": "singleLineText"},
    {"name": "Contact key", "type": "singleLineText"},
    {"name": "Name", "type": "singleLineText"},
    {"name": "Email", "type": "email"},
    {"name": "Status", "type": "singleSelect", "options": {"choices": [{"name": "New"}]}},
    {"name": "Amount", "type": "number", "options": {"precision": 2}},
    {"name": "Signed", "type": "date", "options": {"dateFormat": {"name": "iso"}}},
    {"name": "Done", "type": "checkbox"},
    {"name": "Notes", "type": "multilineText"},
    {"name": "Amount x2", "type": "formula", "options": {"formula": "{Amount} * 2"}},
]


@pytest.fixture
def fake():
    # Limits out of reach: only the rate-limit tests below meet them.
    with FakeAirtable(TOKEN, rate_per_second=10_000, per_token_rate=10_000) as server:
        yield server


@pytest.fixture
def api(fake):
    return Api(TOKEN, endpoint_url=fake.url, timeout=(2, 10), retry_strategy=None)


@pytest.fixture
def leads(fake, api):
    fake.create_table(DEFAULT_BASE, "Leads", LEADS_FIELDS)
    return api.table(DEFAULT_BASE, "Leads")


def call(fake, method, path, *, token=TOKEN, **kwargs) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.request(method, fake.url + path, headers=headers, timeout=10, **kwargs)


def error_type(response: requests.Response) -> str:
    return response.json()["error"]["type"]


def seed_leads(fake, count: int) -> list[str]:
    return [
        fake.person_create(DEFAULT_BASE, "Leads", {"Lead id": f"L{i}", "Amount": i})
        for i in range(count)
    ]


# ----------------------------------------------------------------------------- records


def test_created_record_has_airtable_shape(fake, leads):
    record = leads.create({"Lead id": "L1", "Status": "New", "Amount": 12.5})

    assert RECORD_ID.fullmatch(record["id"])
    assert TIMESTAMP.fullmatch(record["createdTime"])
    assert record["fields"] == {"Lead id": "L1", "Status": "New", "Amount": 12.5, "Amount x2": 25}
    assert fake.calls["create"] == 1


def test_empty_values_are_left_out(leads):
    record = leads.create({"Lead id": "L1", "Notes": "", "Done": False, "Email": None})

    assert record["fields"] == {"Lead id": "L1", "Amount x2": 0}


def test_listing_comes_in_pages_of_100_with_an_offset(fake, leads):
    seed_leads(fake, 250)
    path = f"/v0/{DEFAULT_BASE}/Leads"

    first = call(fake, "GET", path).json()
    second = call(fake, "GET", path, params={"offset": first["offset"]}).json()
    third = call(fake, "GET", path, params={"offset": second["offset"]}).json()

    assert [len(page["records"]) for page in (first, second, third)] == [100, 100, 50]
    assert "offset" not in third
    fake.reset_calls()
    assert len(leads.all()) == 250
    assert fake.calls["list"] == 3


def test_page_size_and_max_records(fake, leads):
    seed_leads(fake, 50)
    pages = list(leads.iterate(page_size=30, max_records=45))

    assert [len(page) for page in pages] == [30, 15]


def test_page_size_over_100_is_refused(fake, leads):
    response = call(fake, "GET", f"/v0/{DEFAULT_BASE}/Leads", params={"pageSize": 101})

    assert response.status_code == 422
    assert error_type(response) == "INVALID_REQUEST_UNKNOWN"


def test_offset_expires():
    clock = FakeClock()
    with FakeAirtable(TOKEN, rate_per_second=10_000, per_token_rate=10_000, clock=clock) as fake:
        fake.create_table(DEFAULT_BASE, "Leads", LEADS_FIELDS)
        seed_leads(fake, 3)
        path = f"/v0/{DEFAULT_BASE}/Leads"
        offset = call(fake, "GET", path, params={"pageSize": 1}).json()["offset"]
        clock.advance(fake.offset_ttl_seconds)

        response = call(fake, "GET", path, params={"pageSize": 1, "offset": offset})

    assert response.status_code == 422
    assert error_type(response) == "LIST_RECORDS_ITERATOR_NOT_AVAILABLE"


def test_fields_sort_and_field_ids(fake, leads):
    seed_leads(fake, 3)
    schema = leads.schema()

    by_amount = leads.all(fields=["Lead id"], sort=["-Amount"])
    by_field_id = leads.all(fields=["Amount"], use_field_ids=True, max_records=1)

    assert [record["fields"] for record in by_amount] == [
        {"Lead id": "L2"},
        {"Lead id": "L1"},
        {"Lead id": "L0"},
    ]
    assert by_field_id[0]["fields"] == {schema.field("Amount").id: 0}


def test_long_formula_goes_through_post_list_records(fake, leads):
    ids = seed_leads(fake, 5)
    keys = [f"'L{i}'" for i in range(2000)]
    formula = "OR(" + ",".join(f"{{Lead id}}={key}" for key in keys) + ")"
    assert len(formula) > 16_000

    found = leads.all(formula=formula)

    assert sorted(record["id"] for record in found) == sorted(ids)
    assert fake.calls["list"] == 1


def test_post_list_records_takes_options_in_the_body(fake, leads):
    seed_leads(fake, 5)
    body = {"filterByFormula": "{Amount} >= 2", "sort": [{"field": "Amount"}], "pageSize": 2}

    page = call(fake, "POST", f"/v0/{DEFAULT_BASE}/Leads/listRecords", json=body).json()

    assert [record["fields"]["Lead id"] for record in page["records"]] == ["L2", "L3"]
    assert "offset" in page


def test_url_over_16000_characters_is_refused(fake, leads):
    response = call(fake, "GET", f"/v0/{DEFAULT_BASE}/Leads", params={"view": "x" * 16_100})

    assert response.status_code == 414


def test_single_record_get_update_and_delete(fake, leads):
    record = leads.create({"Lead id": "L1"})

    assert leads.get(record["id"])["fields"]["Lead id"] == "L1"
    assert leads.update(record["id"], {"Name": "Ann"})["fields"]["Name"] == "Ann"
    assert leads.delete(record["id"]) == {"id": record["id"], "deleted": True}
    assert fake.calls["get"] == 1 and fake.calls["update"] == 1 and fake.calls["delete"] == 1


def test_table_names_with_spaces_and_cyrillic(fake, api):
    table_json = fake.create_table(
        DEFAULT_BASE, "Заявки с сайта", [{"name": "Имя", "type": "singleLineText"}]
    )
    by_name = api.table(DEFAULT_BASE, "Заявки с сайта")

    created = by_name.create({"Имя": "Ирина"})

    assert by_name.get(created["id"])["fields"] == {"Имя": "Ирина"}
    assert len(api.table(DEFAULT_BASE, table_json["id"]).all()) == 1


# ----------------------------------------------------------------------------- writes


def test_batch_create_sends_ten_records_a_request(fake, leads):
    leads.batch_create([{"Lead id": f"L{i}"} for i in range(25)])

    assert fake.write_calls == 3
    assert len(fake.table_records(DEFAULT_BASE, "Leads")) == 25


@pytest.mark.parametrize("method", ["POST", "PATCH", "DELETE"])
def test_more_than_ten_records_are_refused(fake, leads, method):
    ids = seed_leads(fake, 11)
    path = f"/v0/{DEFAULT_BASE}/Leads"
    if method == "DELETE":
        response = call(fake, method, path, params={"records[]": ids})
    else:
        records = [{"id": record_id, "fields": {"Name": "x"}} for record_id in ids]
        response = call(fake, method, path, json={"records": records})

    assert response.status_code == 422
    assert error_type(response) == "INVALID_RECORDS"


def test_upsert_creates_and_updates_by_merge_key(fake, leads):
    for i in range(3):
        fake.person_create(DEFAULT_BASE, "Leads", {"Lead id": f"L{i}", "Email": f"{i}@x.ru"})
    records = [{"fields": {"Lead id": f"L{i}", "Name": f"Name {i}"}} for i in range(12)]

    result = leads.batch_upsert(records, key_fields=["Lead id"])

    assert len(result["createdRecords"]) == 9
    assert len(result["updatedRecords"]) == 3
    assert fake.calls["upsert"] == 2
    rows = {row["fields"]["Lead id"]: row["fields"] for row in leads.all()}
    assert len(rows) == 12
    assert rows["L1"]["Email"] == "1@x.ru"  # PATCH upsert keeps fields not sent
    assert rows["L1"]["Name"] == "Name 1"


def test_upsert_with_several_matches_fails_the_whole_request(fake, leads):
    for lead_id in ("L1", "L2"):
        fake.person_create(DEFAULT_BASE, "Leads", {"Lead id": lead_id, "Contact key": "a@b.ru"})
    body = {
        "performUpsert": {"fieldsToMergeOn": ["Contact key"]},
        "records": [
            {"fields": {"Contact key": "new@b.ru"}},
            {"fields": {"Contact key": "a@b.ru", "Name": "Ann"}},
        ],
    }

    response = call(fake, "PATCH", f"/v0/{DEFAULT_BASE}/Leads", json=body)

    assert response.status_code == 422
    assert "multiple records" in response.json()["error"]["message"]
    assert len(fake.table_records(DEFAULT_BASE, "Leads")) == 2


def test_upsert_with_a_duplicate_key_in_one_request_fails(fake, leads):
    records = [{"fields": {"Lead id": "L1"}}, {"fields": {"Lead id": "L1"}}]

    with pytest.raises(requests.HTTPError, match="422"):
        leads.batch_upsert(records, key_fields=["Lead id"])
    assert leads.all() == []


@pytest.mark.parametrize(
    ("merge_fields", "expected_type"),
    [
        pytest.param(["Amount x2"], "INVALID_REQUEST_BODY", id="computed-field"),
        pytest.param(["Done"], "INVALID_REQUEST_BODY", id="checkbox-field"),
        pytest.param(["Lead id", "Name", "Email", "Notes"], "INVALID_REQUEST_BODY", id="four"),
        pytest.param([], "INVALID_REQUEST_BODY", id="none"),
        pytest.param(["Nope"], "UNKNOWN_FIELD_NAME", id="unknown-field"),
    ],
)
def test_upsert_merge_fields_are_checked(fake, leads, merge_fields, expected_type):
    body = {
        "performUpsert": {"fieldsToMergeOn": merge_fields},
        "records": [{"fields": {"Lead id": "L1"}}],
    }

    response = call(fake, "PATCH", f"/v0/{DEFAULT_BASE}/Leads", json=body)

    assert response.status_code == 422
    assert error_type(response) == expected_type


def test_patch_changes_sent_fields_and_put_clears_the_rest(fake, leads):
    record_id = fake.person_create(
        DEFAULT_BASE, "Leads", {"Lead id": "L1", "Name": "Ann", "Email": "a@b.ru"}
    )

    patched = leads.update(record_id, {"Name": "Anna"})
    replaced = leads.update(record_id, {"Name": "Anya"}, replace=True)

    assert patched["fields"]["Email"] == "a@b.ru"
    assert replaced["fields"] == {"Name": "Anya", "Amount x2": 0}
    assert fake.calls["update"] == 1 and fake.calls["replace"] == 1


def test_unknown_select_option_needs_typecast(fake, leads, api):
    refused = call(fake, "POST", f"/v0/{DEFAULT_BASE}/Leads", json={"fields": {"Status": "Won"}})
    created = leads.create({"Status": "Won"}, typecast=True)

    assert refused.status_code == 422
    assert refused.json() == {
        "error": {
            "type": "INVALID_MULTIPLE_CHOICE_OPTIONS",
            "message": 'Insufficient permissions to create new select option ""Won""',
        }
    }
    assert created["fields"]["Status"] == "Won"
    choices = api.table(DEFAULT_BASE, "Leads").schema().field("Status").options.choices
    assert [choice.name for choice in choices] == ["New", "Won"]


def test_writing_a_computed_field_is_refused(fake, leads):
    response = call(fake, "POST", f"/v0/{DEFAULT_BASE}/Leads", json={"fields": {"Amount x2": 4}})

    assert response.status_code == 422
    assert response.json() == {
        "error": {
            "type": "INVALID_VALUE_FOR_COLUMN",
            "message": 'Field "Amount x2" cannot accept a value because the field is computed',
        }
    }


def test_unknown_field_name(fake, leads):
    response = call(fake, "POST", f"/v0/{DEFAULT_BASE}/Leads", json={"fields": {"Phone": "1"}})

    assert response.status_code == 422
    assert response.json() == {
        "error": {"type": "UNKNOWN_FIELD_NAME", "message": 'Unknown field name: "Phone"'}
    }


@pytest.mark.parametrize(
    ("field_name", "value"),
    [
        pytest.param("Amount", "12 roubles", id="text-in-number"),
        pytest.param("Signed", "23.11.2026", id="non-iso-date"),
        pytest.param("Done", "yes", id="text-in-checkbox"),
        pytest.param("Name", 42, id="number-in-text"),
        pytest.param("Status", ["New"], id="list-in-single-select"),
    ],
)
def test_wrong_value_type_names_the_field(fake, leads, field_name, value):
    response = call(fake, "POST", f"/v0/{DEFAULT_BASE}/Leads", json={"fields": {field_name: value}})

    assert response.status_code == 422
    assert error_type(response) == "INVALID_VALUE_FOR_COLUMN"
    assert f'"{field_name}"' in response.json()["error"]["message"]


def test_typecast_converts_text(leads):
    record = leads.create({"Amount": "12.5", "Done": "true", "Name": 7}, typecast=True)

    assert record["fields"]["Amount"] == 12.5
    assert record["fields"]["Done"] is True
    assert record["fields"]["Name"] == "7"


def test_one_bad_record_fails_the_whole_request(fake, leads):
    records = [{"Lead id": "L1"}, {"Lead id": "L2"}, {"Amount": "lots"}]

    with pytest.raises(requests.HTTPError, match="422"):
        leads.batch_create(records)
    assert fake.table_records(DEFAULT_BASE, "Leads") == []


def test_batch_delete_and_unknown_record(fake, leads):
    ids = seed_leads(fake, 12)

    deleted = leads.batch_delete(ids)
    delete_calls = fake.calls["delete"]
    missing = call(fake, "DELETE", f"/v0/{DEFAULT_BASE}/Leads", params={"records[]": ids[0]})

    assert len(deleted) == 12 and delete_calls == 2
    assert missing.status_code == 404
    assert missing.json() == {
        "error": {"type": "MODEL_ID_NOT_FOUND", "message": f"Could not find record {ids[0]}"}
    }


def test_concurrent_writers_lose_nothing(fake, leads):
    def write(worker: int) -> None:
        leads.batch_create([{"Lead id": f"W{worker}-{i}"} for i in range(10)])

    threads = [threading.Thread(target=write, args=(worker,)) for worker in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(fake.table_records(DEFAULT_BASE, "Leads")) == 80
    assert fake.calls["create"] == 8


def test_body_over_the_limit_is_refused(fake, leads):
    fake.max_body_bytes = 2_000

    response = call(
        fake, "POST", f"/v0/{DEFAULT_BASE}/Leads", json={"fields": {"Notes": "x" * 3_000}}
    )

    assert response.status_code == 413
    assert error_type(response) == "REQUEST_TOO_LARGE"


# ----------------------------------------------------------------------------- filterByFormula


@pytest.fixture
def four_leads(fake, leads):
    rows = [
        {"Lead id": "L0", "Name": "Ann", "Contact key": "+79123456789", "Amount": 50},
        {"Lead id": "L1", "Name": " Bob ", "Contact key": "a@b.ru", "Email": "a@b.ru"},
        {"Lead id": "L2", "Name": "Eve", "Contact key": "c@d.ru", "Status": "New", "Amount": 150},
        {"Lead id": "L3", "Name": "Dan", "Signed": "2026-05-01", "Done": True, "Amount": 100},
    ]
    for row in rows:
        fake.person_create(DEFAULT_BASE, "Leads", row)
    return leads


@pytest.mark.parametrize(
    ("formula", "expected"),
    [
        pytest.param("{Lead id}='L2'", ["L2"], id="equals"),
        pytest.param(
            "OR({Contact key}='+79123456789', {Contact key}='a@b.ru')",
            ["L0", "L1"],
            id="or-of-contact-keys",
        ),
        pytest.param("AND(LOWER({Status})='new', NOT({Done}))", ["L2"], id="and-not-lower"),
        pytest.param("FIND('@', {Email}) > 0", ["L1"], id="find"),
        pytest.param("LEN(TRIM({Name})) = 3", ["L0", "L1", "L2", "L3"], id="len-trim"),
        pytest.param("{Email} = BLANK()", ["L0", "L2", "L3"], id="blank"),
        pytest.param("{Amount} >= 100", ["L2", "L3"], id="number-compare"),
        pytest.param("Amount * 2 = {Amount x2}", ["L0", "L1", "L2", "L3"], id="bare-field-name"),
        pytest.param("{Name} & '-' & {Lead id} = \"Ann-L0\"", ["L0"], id="concatenation"),
        pytest.param("IS_BEFORE({Signed}, '2026-06-01')", ["L3"], id="is-before"),
        pytest.param("IF({Done}, {Amount} > 10, {Amount} > 120)", ["L2", "L3"], id="if-branches"),
    ],
)
def test_filter_by_formula(four_leads, formula, expected):
    found = four_leads.all(formula=formula)

    assert sorted(record["fields"]["Lead id"] for record in found) == expected


def test_filter_by_record_id(four_leads):
    wanted = four_leads.all()[1]

    found = four_leads.all(formula=f"RECORD_ID() = '{wanted['id']}'")

    assert [record["id"] for record in found] == [wanted["id"]]


def test_filter_on_last_modified_time(fake, leads):
    ids = seed_leads(fake, 3)
    time.sleep(0.005)
    watermark = iso(utc_now())
    time.sleep(0.005)
    fake.person_edit(DEFAULT_BASE, "Leads", ids[1], {"Notes": "called back"})

    changed = leads.all(formula=f"IS_AFTER(LAST_MODIFIED_TIME(), DATETIME_PARSE('{watermark}'))")
    notes_changed = leads.all(formula=f"LAST_MODIFIED_TIME({{Notes}}) > '{watermark}'")
    created_before = leads.all(formula=f"IS_BEFORE(CREATED_TIME(), '{watermark}')")

    assert [record["id"] for record in changed] == [ids[1]]
    assert [record["id"] for record in notes_changed] == [ids[1]]
    assert len(created_before) == 3


@pytest.mark.parametrize(
    ("formula", "detail"),
    [
        pytest.param("{Name", "Invalid formula. Please check your formula text.", id="open-brace"),
        pytest.param("AND(", "Invalid formula. Please check your formula text.", id="open-call"),
        pytest.param("'unclosed", "Invalid formula. Please check your formula text.", id="quote"),
        pytest.param("1 +", "Invalid formula. Please check your formula text.", id="dangling-op"),
        pytest.param("NOPE({Name})", "Unknown function names: NOPE", id="unknown-function"),
        pytest.param("{Missing}='x'", "Unknown field names: Missing", id="unknown-field"),
    ],
)
def test_invalid_formula(fake, leads, formula, detail):
    response = call(fake, "GET", f"/v0/{DEFAULT_BASE}/Leads", params={"filterByFormula": formula})

    assert response.status_code == 422
    assert response.json() == {
        "error": {
            "type": "INVALID_FILTER_BY_FORMULA",
            "message": f"The formula for filtering records is invalid: {detail}",
        }
    }


# ----------------------------------------------------------------------------- metadata API


def test_meta_api_creates_tables_and_links_with_inverse(fake, api):
    base = api.base(DEFAULT_BASE)
    companies = base.create_table("Companies", [{"name": "Name", "type": "singleLineText"}])
    deals = base.create_table(
        "Deals",
        [
            {"name": "Title", "type": "singleLineText"},
            {
                "name": "Company",
                "type": "multipleRecordLinks",
                "options": {"linkedTableId": companies.id},
            },
        ],
    )
    inverse = api.base(DEFAULT_BASE).table("Companies").schema(force=True).field("Deals")
    acme, globex = companies.batch_create([{"Name": "Acme"}, {"Name": "Globex"}])

    deal = deals.create({"Title": "Big", "Company": [acme["id"]]})
    linked_first = companies.get(acme["id"])["fields"].get("Deals")
    deals.update(deal["id"], {"Company": [globex["id"]]})
    after_move = companies.get(acme["id"])["fields"].get("Deals")
    deals.delete(deal["id"])

    assert inverse.type == "multipleRecordLinks"
    assert inverse.options.linked_table_id == deals.id
    assert linked_first == [deal["id"]]
    assert after_move is None
    assert "Deals" not in companies.get(globex["id"])["fields"]
    assert fake.calls["create_table"] == 2


def test_meta_api_creates_and_renames_fields(fake, api, leads):
    created = leads.create_field("Value", "currency", options={"precision": 2, "symbol": "₽"})
    path = f"/v0/meta/bases/{DEFAULT_BASE}/tables/{leads.id}/fields/{created.id}"

    renamed = call(fake, "PATCH", path, json={"name": "Deal value", "description": "in RUB"})

    assert renamed.json()["name"] == "Deal value"
    assert leads.create({"Deal value": 10})["fields"]["Deal value"] == 10
    assert fake.calls["create_field"] == 1 and fake.calls["update_field"] == 1


@pytest.mark.parametrize(
    ("path_tail", "body", "expected_type"),
    [
        pytest.param(
            "",
            {"name": "leads", "fields": [{"name": "Name", "type": "singleLineText"}]},
            "DUPLICATE_TABLE_NAME",
            id="duplicate-table-name",
        ),
        pytest.param(
            "/{table}/fields",
            {"name": "EMAIL", "type": "email"},
            "DUPLICATE_OR_EMPTY_FIELD_NAME",
            id="duplicate-field-name",
        ),
        pytest.param(
            "/{table}/fields",
            {"name": "", "type": "email"},
            "DUPLICATE_OR_EMPTY_FIELD_NAME",
            id="empty-field-name",
        ),
        pytest.param(
            "/{table}/fields",
            {"name": "Score", "type": "number"},
            "INVALID_FIELD_TYPE_OPTIONS_FOR_CREATE",
            id="number-without-precision",
        ),
        pytest.param(
            "",
            {
                "name": "Links first",
                "fields": [
                    {
                        "name": "Lead",
                        "type": "multipleRecordLinks",
                        "options": {"linkedTableId": "{table}"},
                    }
                ],
            },
            "INVALID_REQUEST_BODY",
            id="link-as-primary-field",
        ),
    ],
)
def test_meta_api_refuses_bad_schema_changes(fake, leads, path_tail, body, expected_type):
    body = _fill_table_id(body, leads.id)
    path = f"/v0/meta/bases/{DEFAULT_BASE}/tables" + path_tail.format(table=leads.id)

    response = call(fake, "POST", path, json=body)

    assert response.status_code == 422
    assert error_type(response) == expected_type


def _fill_table_id(value, table_id):
    if isinstance(value, dict):
        return {key: _fill_table_id(item, table_id) for key, item in value.items()}
    if isinstance(value, list):
        return [_fill_table_id(item, table_id) for item in value]
    return table_id if value == "{table}" else value


@pytest.mark.parametrize(
    ("field_type", "options"),
    [
        pytest.param("formula", {"formula": "{Amount} * 3"}, id="formula"),
        pytest.param("count", {"recordLinkFieldId": "fldX"}, id="count"),
        pytest.param("rollup", {"recordLinkFieldId": "fldX"}, id="rollup"),
        pytest.param("multipleLookupValues", {"recordLinkFieldId": "fldX"}, id="lookup"),
        pytest.param("autoNumber", None, id="auto-number"),
        pytest.param("lastModifiedTime", None, id="last-modified-time"),
    ],
)
def test_meta_api_cannot_create_computed_fields(fake, leads, field_type, options):
    path = f"/v0/meta/bases/{DEFAULT_BASE}/tables/{leads.id}/fields"
    body = {"name": "Computed", "type": field_type, "options": options}

    response = call(fake, "POST", path, json=body)

    assert response.status_code == 422
    assert error_type(response) == "UNSUPPORTED_FIELD_TYPE_FOR_CREATE"


# ----------------------------------------------------------------------------- computed fields


COMPANY_COMPUTED_FIELDS = [
    {
        "name": "Revenue",
        "type": "rollup",
        "options": {
            "recordLinkFieldId": "Orders",
            "fieldIdInLinkedTable": "Total",
            "formula": "SUM(values)",
        },
    },
    {"name": "Order count", "type": "count", "options": {"recordLinkFieldId": "Orders"}},
    {
        "name": "Items",
        "type": "lookup",
        "options": {"recordLinkFieldId": "Orders", "fieldIdInLinkedTable": "Item"},
    },
    {"name": "Profit", "type": "formula", "options": {"formula": "{Revenue} - {Cost total}"}},
    {
        "name": "Margin",
        "type": "formula",
        "options": {"formula": "IF({Revenue}, {Profit} / {Revenue}, BLANK())"},
    },
    {"name": "Ratio", "type": "formula", "options": {"formula": "{Profit} / {Revenue}"}},
    {"name": "Broken", "type": "formula", "options": {"formula": "{Name} * 2"}},
]


@pytest.fixture
def companies(fake, api):
    orders = fake.create_table(
        DEFAULT_BASE,
        "Orders",
        [
            {"name": "Item", "type": "singleLineText"},
            {"name": "Price", "type": "currency", "options": {"precision": 2, "symbol": "₽"}},
            {"name": "Quantity", "type": "number", "options": {"precision": 0}},
            {"name": "Total", "type": "formula", "options": {"formula": "{Price} * {Quantity}"}},
        ],
    )
    fake.create_table(
        DEFAULT_BASE,
        "Companies",
        [
            {"name": "Name", "type": "singleLineText"},
            {"name": "Number", "type": "autoNumber"},
            {
                "name": "Orders",
                "type": "multipleRecordLinks",
                "options": {"linkedTableId": orders["id"]},
            },
            {"name": "Cost total", "type": "number", "options": {"precision": 2}},
        ],
    )
    # Computed fields come the way people add them: in the UI, one by one.
    for spec in COMPANY_COMPUTED_FIELDS:
        fake.person_add_field(DEFAULT_BASE, "Companies", spec)
    return api.table(DEFAULT_BASE, "Companies")


def add_orders(fake, company_id, *orders):
    order_ids = [
        fake.person_create(
            DEFAULT_BASE, "Orders", {"Item": item, "Price": price, "Quantity": quantity}
        )
        for item, price, quantity in orders
    ]
    fake.person_edit(DEFAULT_BASE, "Companies", company_id, {"Orders": order_ids})


def test_formula_rollup_count_and_lookup(fake, companies):
    acme = companies.create({"Name": "Acme", "Cost total": 20})["id"]
    add_orders(fake, acme, ("Apple", 10, 2), ("Pear", 5, 3))

    fields = companies.get(acme)["fields"]

    assert fields["Revenue"] == 35
    assert fields["Order count"] == 2
    assert fields["Items"] == ["Apple", "Pear"]
    assert fields["Profit"] == 15
    assert fields["Margin"] == pytest.approx(15 / 35)
    assert fields["Ratio"] == pytest.approx(15 / 35)
    assert fields["Number"] == 1
    assert fields["Broken"] == {"error": "#ERROR!"}


@pytest.mark.parametrize(
    ("cost", "expected_ratio"),
    [
        pytest.param(0, {"specialValue": "NaN"}, id="zero-over-zero-is-nan"),
        pytest.param(10, {"specialValue": "-Infinity"}, id="negative-over-zero"),
    ],
)
def test_division_by_zero(companies, cost, expected_ratio):
    fields = companies.create({"Name": "Empty", "Cost total": cost})["fields"]

    assert fields["Revenue"] == 0 and fields["Order count"] == 0
    assert "Margin" not in fields  # IF(...) chose BLANK()
    assert fields["Ratio"] == expected_ratio


@pytest.mark.parametrize(
    ("aggregation", "expected"),
    [
        pytest.param("SUM(values)", 35, id="sum"),
        pytest.param("MAX(values)", 20, id="max"),
        pytest.param("MIN(values)", 15, id="min"),
        pytest.param("COUNT(values)", 2, id="count"),
        pytest.param("COUNTA(values)", 2, id="counta"),
        pytest.param("ARRAYJOIN(values, '+')", "20+15", id="arrayjoin"),
    ],
)
def test_rollup_aggregations(fake, companies, aggregation, expected):
    spec = {
        "name": "Rolled",
        "type": "rollup",
        "options": {
            "recordLinkFieldId": "Orders",
            "fieldIdInLinkedTable": "Total",
            "formula": aggregation,
        },
    }
    fake.person_add_field(DEFAULT_BASE, "Companies", spec)
    acme = companies.create({"Name": "Acme"})["id"]
    add_orders(fake, acme, ("Apple", 10, 2), ("Pear", 5, 3))

    assert companies.get(acme)["fields"]["Rolled"] == expected


def test_filter_on_computed_fields(fake, companies):
    acme = companies.create({"Name": "Acme", "Cost total": 5})["id"]
    companies.create({"Name": "Empty"})
    add_orders(fake, acme, ("Apple", 10, 2))

    found = companies.all(formula="AND({Revenue} > 0, {Margin} > 0)")

    assert [record["id"] for record in found] == [acme]


def test_formulas_survive_a_field_rename(fake, api, companies):
    acme = companies.create({"Name": "Acme", "Cost total": 5})["id"]
    add_orders(fake, acme, ("Apple", 10, 2))
    cost = companies.schema().field("Cost total")
    path = f"/v0/meta/bases/{DEFAULT_BASE}/tables/{companies.id}/fields/{cost.id}"

    call(fake, "PATCH", path, json={"name": "Costs"})

    assert companies.get(acme)["fields"]["Profit"] == 15
    profit = api.table(DEFAULT_BASE, "Companies").schema().field("Profit")
    assert profit.options.formula == "{Revenue} - {Costs}"


@pytest.mark.parametrize(
    ("formula", "expected"),
    [
        pytest.param("1 + 2 * 3", 7, id="precedence"),
        pytest.param("(1 + 2) * 3", 9, id="parentheses"),
        pytest.param("-2 * -3", 6, id="unary-minus"),
        pytest.param("'a' & 1 & \"b\"", "a1b", id="concatenation"),
        pytest.param("'it\\'s'", "it's", id="escaped-quote"),
        pytest.param("2 > 1", 1, id="comparison-is-one-or-zero"),
        pytest.param("'10' = 10", 1, id="numeric-text-equals-number"),
        pytest.param("'nan' = 0", 0, id="nan-text-is-not-a-number"),
        pytest.param("FIND('b', 'abc')", 2, id="find"),
        pytest.param("FIND('z', 'abc')", 0, id="find-missing"),
        pytest.param("ROUND(2.5) + ROUND(-2.5)", 0, id="round-half-away-from-zero"),
        pytest.param("IS_AFTER('2026-11-23T10:00:01Z', '2026-11-23T10:00:00.999Z')", 1, id="ms"),
        pytest.param(
            "DATETIME_PARSE('2026-11-23T13:00:00+03:00')", "2026-11-23T10:00:00.000Z", id="utc"
        ),
        pytest.param("0 / 0", {"specialValue": "NaN"}, id="zero-by-zero"),
        pytest.param("1 / 0", {"specialValue": "Infinity"}, id="one-by-zero"),
        pytest.param("IF(0, 1)", None, id="if-without-else-is-blank"),
    ],
)
def test_formula_engine(formula, expected):
    assert to_cell(evaluate(parse_formula(formula), Scope())) == expected


def test_rollup_values_scope():
    values = [3, None, 4, "x"]
    assert evaluate(parse_formula("SUM(values)"), ValuesScope(values)) == 7
    assert evaluate(parse_formula("COUNTALL(values)"), ValuesScope(values)) == 4


def test_formula_errors():
    with pytest.raises(FormulaSyntaxError):
        parse_formula("IF(1, 2, 3, 4)")
    with pytest.raises(FormulaEvalError):
        evaluate(parse_formula("'abc' * 2"), Scope())


# ----------------------------------------------------------------------------- people's edits


def test_person_edits_are_visible_and_move_last_modified(fake, leads):
    record_id = fake.person_create(DEFAULT_BASE, "Leads", {"Lead id": "L1", "Name": "Ann"})
    fake.person_create(DEFAULT_BASE, "Leads", {"Lead id": "L2", "Name": "Bob"})
    time.sleep(0.005)
    watermark = iso(utc_now())
    time.sleep(0.005)

    fake.person_edit(DEFAULT_BASE, "Leads", record_id, {"Name": "Anna", "Status": "Lost"})
    rows = fake.table_records(DEFAULT_BASE, "Leads")
    edited = leads.all(formula=f"IS_AFTER(LAST_MODIFIED_TIME(), '{watermark}')")
    fake.person_delete(DEFAULT_BASE, "Leads", record_id)

    assert [record["id"] for record in edited] == [record_id]
    assert rows[0] == {
        "id": record_id,
        "createdTime": rows[0]["createdTime"],
        "fields": {"Lead id": "L1", "Name": "Anna", "Status": "Lost", "Amount x2": 0},
    }
    assert [record["fields"]["Lead id"] for record in leads.all()] == ["L2"]
    assert fake.write_calls == 0  # people's edits are not API calls


# ----------------------------------------------------------------------------- errors and auth


@pytest.mark.parametrize(
    ("token", "path", "status", "body"),
    [
        pytest.param(
            None,
            f"/v0/{DEFAULT_BASE}/Leads",
            401,
            {"error": {"type": "AUTHENTICATION_REQUIRED", "message": "Authentication required"}},
            id="no-token",
        ),
        pytest.param(
            "patWRONG.token",
            f"/v0/{DEFAULT_BASE}/Leads",
            401,
            {"error": {"type": "AUTHENTICATION_REQUIRED", "message": "Authentication required"}},
            id="wrong-token",
        ),
        pytest.param(
            TOKEN,
            "/v0/appNOSUCHBASE0000/Leads",
            403,
            {
                "error": {
                    "type": "INVALID_PERMISSIONS_OR_MODEL_NOT_FOUND",
                    "message": "Invalid permissions, or the requested model was not found."
                    " Check that both your user and your token have the required"
                    " permissions, and that the model names and/or ids are correct.",
                }
            },
            id="unknown-base",
        ),
        pytest.param(
            TOKEN, f"/v0/{DEFAULT_BASE}/No%20such", 404, {"error": "NOT_FOUND"}, id="unknown-table"
        ),
        pytest.param(
            TOKEN,
            f"/v0/{DEFAULT_BASE}/Leads/recAAAAAAAAAAAAAA",
            404,
            {
                "error": {
                    "type": "MODEL_ID_NOT_FOUND",
                    "message": "Could not find record recAAAAAAAAAAAAAA",
                }
            },
            id="unknown-record",
        ),
    ],
)
def test_error_bodies(fake, leads, token, path, status, body):
    response = call(fake, "GET", path, token=token)

    assert response.status_code == status
    assert response.json() == body


# ----------------------------------------------------------------------------- rate limits


def test_sixth_request_in_a_second_is_refused_and_the_penalty_lasts():
    clock = FakeClock()
    with FakeAirtable(TOKEN, penalty_seconds=0.5, clock=clock) as fake:
        fake.create_table(DEFAULT_BASE, "Leads", LEADS_FIELDS)
        path = f"/v0/{DEFAULT_BASE}/Leads"

        statuses = []
        for _ in range(6):
            statuses.append(call(fake, "GET", path).status_code)
            clock.advance(0.1)  # six within one second
        refused = call(fake, "GET", path)
        clock.advance(0.3)
        during_penalty = call(fake, "GET", path).status_code
        clock.advance(0.3)
        after_penalty = call(fake, "GET", path).status_code

    assert statuses == [200] * 5 + [429]
    assert refused.json() == RATE_LIMIT_BODY
    assert during_penalty == 429
    assert after_penalty == 200
    assert fake.calls["rate_limited"] == 3
    assert fake.calls["list"] == 6


def test_refused_requests_do_not_extend_the_penalty():
    clock = FakeClock()
    with FakeAirtable(TOKEN, penalty_seconds=0.5, clock=clock) as fake:
        fake.create_table(DEFAULT_BASE, "Leads", LEADS_FIELDS)
        path = f"/v0/{DEFAULT_BASE}/Leads"
        burst = [call(fake, "GET", path).status_code for _ in range(6)]
        clock.advance(0.3)
        hammered = [call(fake, "GET", path).status_code for _ in range(3)]
        clock.advance(0.21)  # 0.51 s after the penalty began

        assert burst[-1] == 429 and hammered == [429] * 3
        assert call(fake, "GET", path).status_code == 200


def test_requests_within_the_rate_keep_flowing():
    clock = FakeClock()
    with FakeAirtable(TOKEN, penalty_seconds=0.5, clock=clock) as fake:
        fake.create_table(DEFAULT_BASE, "Leads", LEADS_FIELDS)
        statuses = []
        for _ in range(20):
            statuses.append(call(fake, "GET", f"/v0/{DEFAULT_BASE}/Leads").status_code)
            clock.advance(0.2)  # exactly 5 a second

    assert statuses == [200] * 20


def test_token_limit_spans_bases():
    clock = FakeClock()
    bases = (DEFAULT_BASE, OTHER_BASE)
    with FakeAirtable(TOKEN, bases=bases, per_token_rate=8, clock=clock) as fake:
        for base in bases:
            fake.create_table(base, "Leads", LEADS_FIELDS)
        first_eight = [
            call(fake, "GET", f"/v0/{base}/Leads").status_code for base in bases for _ in range(4)
        ]
        ninth = call(fake, "GET", f"/v0/{OTHER_BASE}/Leads").status_code
        other_base_now = call(fake, "GET", f"/v0/{DEFAULT_BASE}/Leads").status_code

    assert first_eight == [200] * 8
    assert ninth == 429 and other_base_now == 429


def test_metadata_requests_count_toward_the_base_limit():
    clock = FakeClock()
    with FakeAirtable(TOKEN, clock=clock) as fake:
        fake.create_table(DEFAULT_BASE, "Leads", LEADS_FIELDS)
        meta = [call(fake, "GET", f"/v0/meta/bases/{DEFAULT_BASE}/tables") for _ in range(5)]
        listing = call(fake, "GET", f"/v0/{DEFAULT_BASE}/Leads")

    assert [response.status_code for response in meta] == [200] * 5
    assert listing.status_code == 429
    assert fake.calls["meta_tables"] == 5 and fake.calls["rate_limited"] == 1


def test_rate_limit_storm(fake, leads):
    fake.rate_limit_storm()

    with pytest.raises(requests.HTTPError, match="429"):
        leads.all()
    assert fake.calls["rate_limited"] == 1 and fake.calls["list"] == 0


# ----------------------------------------------------------------------------- injected failures


def test_fail_next_answers_503_without_applying(fake, leads):
    fake.fail_next(1)

    response = call(fake, "POST", f"/v0/{DEFAULT_BASE}/Leads", json={"fields": {"Name": "A"}})
    retried = leads.create({"Name": "A"})

    assert response.status_code == 503
    assert error_type(response) == "SERVICE_UNAVAILABLE"
    assert RECORD_ID.fullmatch(retried["id"])
    assert len(fake.table_records(DEFAULT_BASE, "Leads")) == 1
    assert fake.calls["failed"] == 1 and fake.calls["create"] == 1


def test_fail_next_502_has_an_html_body(fake, leads):
    fake.fail_next(1, status=502)

    response = call(fake, "GET", f"/v0/{DEFAULT_BASE}/Leads")

    assert response.status_code == 502
    assert "Bad Gateway" in response.text


def test_fail_next_only_hits_the_kinds_named(fake, leads):
    fake.fail_next(1, status=500, kinds=["create"])

    listed = leads.all()
    with pytest.raises(requests.HTTPError, match="500"):
        leads.create({"Name": "A"})

    assert listed == [] and fake.calls["list"] == 1


def test_lost_answer_after_apply_and_upsert_retry_stays_idempotent(fake, leads):
    fake.fail_next(1, kinds="upsert", after_apply=True)
    records = [{"fields": {"Lead id": "L1", "Name": "Ann"}}]

    with pytest.raises(requests.HTTPError, match="503"):
        leads.batch_upsert(records, key_fields=["Lead id"])
    applied_anyway = fake.table_records(DEFAULT_BASE, "Leads")
    retry = leads.batch_upsert(records, key_fields=["Lead id"])

    assert len(applied_anyway) == 1
    assert retry["createdRecords"] == [] and retry["updatedRecords"] == [applied_anyway[0]["id"]]
    assert len(fake.table_records(DEFAULT_BASE, "Leads")) == 1
    assert fake.calls["upsert"] == 2 and fake.calls["failed"] == 1


def test_stopped_server_refuses_connections():
    fake = FakeAirtable(TOKEN).start()
    url = fake.url
    fake.stop()

    with pytest.raises(requests.ConnectionError):
        requests.get(url + f"/v0/{DEFAULT_BASE}/Leads", timeout=2)
