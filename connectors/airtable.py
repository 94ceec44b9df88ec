"""Airtable as a sink: schema set-up, changed-row reads, batched upserts.

Every request goes through one throttled session per base, shared by the whole
process: at most 5 requests in any second as Airtable counts their arrivals
(connectors/throttle.py keeps the margin that takes), and after a 429 everyone
waits out Airtable's 30-second penalty instead of hammering it. With a Prefect
server, the base's budget is also shared by every worker
(connectors/shared_limits.py).
pyairtable's own retry gives up after about 3 seconds, so it is switched off
and this module owns the policy: 429 is always waited out and re-sent (the
request was refused, not applied); 5xx and timeouts are re-sent only for
reads and upserts, which are safe to repeat.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import requests
from pyairtable import Api

from connectors import WriteOutcome
from connectors.retry import backoff_delays, sleep_backoff
from connectors.shared_limits import (
    LOCAL,
    Limiter,
    LimitSpec,
    LocalLimits,
    PrefectLimits,
    airtable_limit,
)
from connectors.throttle import Clock, Sleep, shared_window
from leadhub.errors import FatalError, TransientError
from transforms.crm import (
    CrmField,
    CrmTable,
    RemoteRow,
    RowWrite,
    canonical,
    creation_order,
    keep_existing_titles,
)

MAX_BATCH = 10  # records per write request
SCOPES = "data.records:read, data.records:write, schema.bases:read, schema.bases:write"
_RETRYABLE = {500, 502, 503, 504}
COMPUTED_TYPES = ("formula", "rollup")


# Airtable's 5 requests per second per base. The limiter's rule already keeps
# arrivals a second apart however the network delays them; the window is a
# little longer than a second for a server that rounds its arrival times.
_WINDOW_SECONDS = 1.02


def _idempotent(method: str, url: str, body: Any) -> bool:
    if method == "GET" or url.endswith("/listRecords"):
        return True
    return method in ("PATCH", "PUT") and isinstance(body, dict) and "performUpsert" in body


def _kind(method: str, url: str) -> str:
    if "/v0/meta/" in url:
        return "meta_read" if method == "GET" else "meta_write"
    if method == "GET" or url.endswith("/listRecords"):
        return "read"
    return "write"


class ThrottledSession(requests.Session):
    """The session pyairtable sends through: throttle, count, and the retry policy."""

    def __init__(self, limiter: Limiter, penalty_seconds: float, calls: Counter,
                 attempts: int = 6, max_penalties: int = 20, clock: Clock = time.monotonic,
                 sleep: Sleep = time.sleep):
        super().__init__()
        self.limiter = limiter
        self.penalty_seconds = penalty_seconds
        self.calls = calls
        self.attempts = attempts
        self.max_penalties = max_penalties
        self._clock = clock
        self._sleep = sleep

    def _back_off(self, delay: float) -> None:
        sleep_backoff(delay, clock=self._clock, sleep=self._sleep)

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:
        method = method.upper()
        safe = _idempotent(method, url, kwargs.get("json"))
        delays = backoff_delays(self.attempts, base=0.5, cap=10.0)
        penalties = 0
        while True:
            try:
                with self.limiter.slot():
                    response = super().request(method, url, *args, **kwargs)
            except (requests.Timeout, requests.ConnectionError) as error:
                self.calls["timeouts"] += 1
                delay = next(delays, None) if safe else None
                if delay is None:
                    raise TransientError(f"Airtable did not answer ({type(error).__name__});"
                                         " the next run tries again") from None
                self._back_off(delay)
                continue
            self.calls[_kind(method, url)] += 1
            if response.status_code == 429 and penalties < self.max_penalties:
                # Refused, not applied: wait out the penalty and send it again.
                penalties += 1
                self.calls["rate_limited"] += 1
                self.limiter.pause(self.penalty_seconds)
                continue
            if response.status_code in _RETRYABLE and safe:
                delay = next(delays, None)
                if delay is not None:
                    self.calls["retried"] += 1
                    self._back_off(delay)
                    continue
            return response


# LeadHub's field types -> the Airtable types it can write into.
_ACCEPTED = {
    "text": {"singleLineText", "multilineText", "richText", "phoneNumber", "email", "url",
             "singleSelect"},
    "long_text": {"multilineText", "richText", "singleLineText"},
    "phone": {"phoneNumber", "singleLineText"},
    "email": {"email", "singleLineText"},
    "select": {"singleSelect", "singleLineText"},
    "datetime": {"dateTime", "singleLineText"},
    "date": {"date", "dateTime"},
    "number": {"number", "currency", "percent"},
    "currency": {"currency", "number"},
    "percent": {"percent", "number"},
    "checkbox": {"checkbox"},
    "link": {"multipleRecordLinks"},
    "formula": {"formula", "rollup", "number", "currency", "percent"},
    "rollup": {"rollup", "formula", "number", "currency"},
}


def field_definition(crm_field: CrmField, table_ids: dict[str, str]) -> dict | None:
    """The meta API body that creates a field, or None for computed fields,
    which the Airtable Web API cannot create (people add them in the UI)."""
    definitions: dict[str, dict] = {
        "text": {"type": "singleLineText"},
        "long_text": {"type": "multilineText"},
        "phone": {"type": "phoneNumber"},
        "email": {"type": "email"},
        "select": {"type": "singleSelect",
                   "options": {"choices": [{"name": o} for o in crm_field.options]}},
        "datetime": {"type": "dateTime", "options": {
            "dateFormat": {"name": "iso"}, "timeFormat": {"name": "24hour"},
            "timeZone": "client"}},
        "date": {"type": "date", "options": {"dateFormat": {"name": "iso"}}},
        "number": {"type": "number", "options": {"precision": 0}},
        "currency": {"type": "currency", "options": {"precision": 2, "symbol": "₽"}},
        "percent": {"type": "percent", "options": {"precision": 1}},
        "checkbox": {"type": "checkbox", "options": {"icon": "check", "color": "greenBright"}},
    }
    if crm_field.computed:
        return None
    if crm_field.type == "link":
        if crm_field.link not in table_ids:
            return None
        return {"name": crm_field.title, "type": "multipleRecordLinks",
                "options": {"linkedTableId": table_ids[crm_field.link]}}
    return {"name": crm_field.title, **definitions[crm_field.type]}


def _manual_step(table: CrmTable, crm_field: CrmField) -> str:
    if crm_field.type == "formula":
        return f"{table.title}.{crm_field.title}: a Formula field `{crm_field.formula}`"
    link, _, rest = crm_field.formula.partition(".")
    target, _, aggregate = rest.partition(":")
    return (f"{table.title}.{crm_field.title}: a Rollup of {aggregate}(values) over the"
            f" {target} field of the linked {link} records")


class AirtableSink:
    """One Airtable base. `calls` counts requests by kind (read, write, meta_*,
    rate_limited, retried), for the run summary and the benchmark."""

    # every read can be limited to rows changed since a time
    reads_everything = False
    # rows planned per chunk: 20 requests, then the ledger commits what landed
    write_chunk = 200

    def __init__(self, config: Any, tables: dict[str, CrmTable], *,
                 clock: Clock = time.monotonic, sleep: Sleep = time.sleep,
                 limits: LocalLimits | PrefectLimits = LOCAL):
        self.name = config.name
        self.base = config.base
        self._tables = tables
        self._titles_settled = not any(t.english for t in tables.values())
        self.typecast = config.typecast
        self.calls: Counter = Counter()
        window = shared_window(("airtable", config.endpoint_url, config.base),
                               config.requests_per_second, _WINDOW_SECONDS, clock, sleep)
        # with a Prefect server, the base's budget is shared by every worker
        self.shared_limit = airtable_limit(config.base, config.requests_per_second,
                                           _WINDOW_SECONDS)
        limiter = limits.budget(self.shared_limit, window)
        self.api = Api(config.token.get_secret_value(), endpoint_url=config.endpoint_url,
                       timeout=(10, config.timeout), retry_strategy=None)
        session = ThrottledSession(limiter, config.rate_limit_wait_seconds, self.calls,
                                   clock=clock, sleep=sleep)
        session.headers.update(self.api.session.headers)
        self.api.session = session
        self._schema: dict[str, dict] | None = None
        self._links: dict[str, dict[str, str]] = {}
        self.warnings: list[str] = []

    def describe(self) -> str:
        return f"Airtable base {self.base}"

    @property
    def tables(self) -> dict[str, CrmTable]:
        """The tables under the titles this base has them by: those of the
        sink's language, or English for a table the base already has so."""
        if not self._titles_settled:
            self._tables = keep_existing_titles(self._tables, self.schema())
            self._titles_settled = True
        return self._tables

    def shared_limits(self) -> list[LimitSpec]:
        """The Prefect rate limit every worker's requests to this base share."""
        return [self.shared_limit]

    # --- errors ------------------------------------------------------------

    def _fail(self, error: requests.HTTPError, table: CrmTable | None) -> Exception:
        response = error.response
        status = response.status_code if response is not None else 0
        where = f"base {self.base}" + (f", table {table.title!r}" if table else "")
        kind, message = _error_of(response)
        if status == 401:
            return FatalError(
                f"Airtable refused the token for {where} (401): create a personal access token"
                f" with the scopes {SCOPES} and access to this base, and put it in the"
                " sink's token (e.g. ${AIRTABLE_TOKEN})")
        if status == 403:
            return FatalError(
                f"Airtable: no access to {where} (403 {kind}): check the base id and that the"
                " token was given access to this base")
        if status == 404:
            return FatalError(
                f"Airtable: {where} not found (404): run `leadhub schema init airtable`, or map"
                " your own table name under the sink's tables: in the config")
        if status == 422 and kind == "UNKNOWN_FIELD_NAME":
            return FatalError(
                f"Airtable {where}: {message}: run `leadhub schema init airtable` to add it, or"
                " map your own field name under the sink's tables: in the config")
        if status == 429 or status >= 500:
            return TransientError(f"Airtable {where}: {status} {kind}; the next run goes on")
        return FatalError(f"Airtable {where}: {status} {kind}: {message}")

    # --- schema --------------------------------------------------------------

    def schema(self, refresh: bool = False) -> dict[str, dict]:
        """The base's tables by title, each with its fields by name."""
        if self._schema is None or refresh:
            try:
                body = self.api.get(self._meta_url())
            except requests.HTTPError as error:
                raise self._fail(error, None) from None
            self._schema = {
                t["name"]: {**t, "by_name": {f["name"]: f for f in t["fields"]}}
                for t in body["tables"]
            }
        return self._schema

    def _meta_url(self, *parts: str) -> str:
        tail = "".join(f"/{p}" for p in parts)
        return f"{self.api.endpoint_url}/v0/meta/bases/{self.base}/tables{tail}"

    def problems(self) -> list[str]:
        """What is missing or of the wrong type, for `leadhub check`. Missing
        formulas and rollups are not problems (LeadHub computes its reports
        itself): `manual_steps` lists them."""
        schema = self.schema(refresh=True)
        found = []
        for table in self.tables.values():
            remote = schema.get(table.title)
            if remote is None:
                found.append(f"table {table.title!r} is missing")
                continue
            for crm_field in table.fields:
                remote_field = remote["by_name"].get(crm_field.title)
                if remote_field is None:
                    if not crm_field.computed:
                        found.append(f"{table.title}.{crm_field.title} is missing")
                elif remote_field["type"] not in _ACCEPTED[crm_field.type]:
                    found.append(
                        f"{table.title}.{crm_field.title} is a {remote_field['type']} field;"
                        f" LeadHub needs one of: {', '.join(sorted(_ACCEPTED[crm_field.type]))}")
                elif crm_field.type == "link":
                    target = schema.get(self.tables[crm_field.link].title, {}).get("id")
                    if remote_field.get("options", {}).get("linkedTableId") != target:
                        found.append(f"{table.title}.{crm_field.title} does not link to"
                                     f" {self.tables[crm_field.link].title}")
        return found

    def manual_steps(self) -> list[str]:
        """Computed fields the base lacks: the API cannot create them."""
        schema = self.schema()
        return [_manual_step(table, f) for table in self.tables.values() for f in table.fields
                if f.computed and table.title in schema
                and f.title not in schema[table.title]["by_name"]]

    def init_schema(self) -> tuple[list[str], list[str]]:
        """Create the missing tables and fields. Returns what was created and
        what a person has to add in the Airtable UI (formulas and rollups)."""
        schema = self.schema(refresh=True)
        created: list[str] = []
        manual: list[str] = []
        order = creation_order(self.tables)
        for name in order:
            table = self.tables[name]
            if table.title not in schema:
                primary = next(f for f in table.fields if f.type not in ("link", *COMPUTED_TYPES))
                body = {"name": table.title, "fields": [field_definition(primary, {})]}
                self._meta_post(self._meta_url(), body, table)
                created.append(f"table {table.title}")
        schema = self.schema(refresh=bool(created))
        table_ids = {name: schema[t.title]["id"] for name, t in self.tables.items()}
        for name in order:
            table = self.tables[name]
            for crm_field in table.fields:
                if crm_field.title in schema[table.title]["by_name"]:
                    continue
                definition = field_definition(crm_field, table_ids)
                if definition is None:
                    manual.append(_manual_step(table, crm_field))
                    continue
                self._meta_post(self._meta_url(table_ids[name], "fields"), definition, table)
                created.append(f"{table.title}.{crm_field.title}")
        self._schema = None
        return created, manual

    def _meta_post(self, url: str, body: dict, table: CrmTable) -> None:
        try:
            self.api.post(url, json=body)
        except requests.HTTPError as error:
            raise self._fail(error, table) from None

    # --- reading -------------------------------------------------------------

    def _table(self, table: CrmTable):
        return self.api.table(self.base, table.title)

    def read(self, table: CrmTable, modified_since: str | None = None,
             only_key: bool = False) -> Iterator[RemoteRow]:
        """Rows changed since an ISO time (all rows when None), in canonical values.
        A whole listing runs without pauses: Airtable's page offsets expire."""
        wanted = [table.key_field] if only_key else list(table.stored)
        options: dict[str, Any] = {"fields": [f.title for f in wanted], "page_size": 100}
        if modified_since:
            stamp = modified_since.replace("Z", "").split("+")[0]
            options["formula"] = (
                f"IS_AFTER(LAST_MODIFIED_TIME(), DATETIME_PARSE('{stamp}Z'))")
        links = {f.name: self.link_keys(self.tables[f.link]) for f in wanted
                 if f.type == "link" and not only_key}
        try:
            for page in self._table(table).iterate(**options):
                for record in page:
                    yield self._remote_row(table, wanted, record, links)
        except requests.HTTPError as error:
            raise self._fail(error, table) from None

    def _remote_row(self, table: CrmTable, wanted: Sequence[CrmField], record: dict,
                    links: dict[str, dict[str, str]]) -> RemoteRow:
        cells = record["fields"]
        values = {}
        for crm_field in wanted:
            value = cells.get(crm_field.title)
            if crm_field.type == "link":
                ids = value or []
                value = links[crm_field.name].get(ids[0], ids[0]) if ids else None
            values[crm_field.name] = canonical(crm_field, value)
        return RemoteRow(record["id"], str(values.get(table.key) or ""), values,
                         _created_at(record.get("createdTime")))

    def link_keys(self, table: CrmTable) -> dict[str, str]:
        """remote id -> key of a linked table's rows."""
        return {remote_id: key for key, remote_id in self._links.get(table.name, {}).items()}

    def set_links(self, table_name: str, ids_by_key: dict[str, str]) -> None:
        """The record ids of a table's rows by key (the flow keeps them in the ledger):
        Airtable links are record ids, LeadHub's are keys."""
        self._links[table_name] = dict(ids_by_key)

    # --- writing -------------------------------------------------------------

    def _cells(self, table: CrmTable, values: dict[str, Any]) -> dict[str, Any] | None:
        cells = {}
        for name, value in values.items():
            crm_field = table.field(name)
            if crm_field.type == "link" and value is not None:
                remote_id = self._links.get(crm_field.link, {}).get(value)
                if remote_id is None:
                    return None  # the linked row is not in the base yet: next run
                value = [remote_id]
            elif crm_field.type == "datetime" and value:
                value = value.replace("Z", ".000Z")
            elif crm_field.type == "checkbox":
                value = bool(value)
            elif crm_field.type == "link":
                value = []
            cells[crm_field.title] = value
        return cells

    def upsert(self, table: CrmTable, writes: Sequence[RowWrite]) -> list[WriteOutcome]:
        """Upsert on the key field, at most 10 a request; a request Airtable rejects
        for one record's value is split so the others still land."""
        outcomes: list[WriteOutcome] = []
        ready: list[tuple[RowWrite, dict]] = []
        for write in writes:
            cells = self._cells(table, {**write.values, table.key: write.key})
            if cells is None:
                outcomes.append(WriteOutcome(write.key, error="deferred: linked row not synced"))
            else:
                ready.append((write, cells))
        for start in range(0, len(ready), MAX_BATCH):
            outcomes += self._send(table, ready[start:start + MAX_BATCH])
        return outcomes

    def _send(self, table: CrmTable, batch: list[tuple[RowWrite, dict]]) -> list[WriteOutcome]:
        body = {
            # a person's row LeadHub has not written its key to is written by its id
            "records": [{"id": write.remote_id, "fields": cells} if write.by_id else
                        {"fields": cells} for write, cells in batch],
            "typecast": self.typecast,
            "performUpsert": {"fieldsToMergeOn": [table.key_field.title]},
        }
        try:
            response = self.api.request("PATCH", self._table(table).urls.records, json=body)
        except requests.HTTPError as error:
            status = error.response.status_code if error.response is not None else 0
            kind, message = _error_of(error.response)
            splittable = status == 413 or (status == 422 and kind != "UNKNOWN_FIELD_NAME")
            if splittable and len(batch) > 1:
                middle = len(batch) // 2
                return self._send(table, batch[:middle]) + self._send(table, batch[middle:])
            if splittable:
                return [WriteOutcome(batch[0][0].key, error=f"Airtable {kind}: {message}")]
            raise self._fail(error, table) from None
        created = set(response.get("createdRecords", []))
        title = table.key_field.title
        by_key = {str(r["fields"].get(title, "")): r["id"] for r in response["records"]}
        return [
            WriteOutcome(write.key, by_key.get(write.key), by_key.get(write.key) in created)
            for write, _ in batch
        ]


def _created_at(stamp: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")) if stamp else None
    except ValueError:
        return None


def _error_of(response: requests.Response | None) -> tuple[str, str]:
    """Airtable's error type and message, from any of its envelopes."""
    if response is None:
        return "NO_RESPONSE", ""
    try:
        body = response.json()
    except ValueError:
        return str(response.status_code), response.text[:200]
    error = body.get("error") if isinstance(body, dict) else None
    if error is None and isinstance(body, dict) and body.get("errors"):
        error = body["errors"][0]
        return str(error.get("error", "")), str(error.get("message", ""))
    if isinstance(error, str):
        return error, ""
    if isinstance(error, dict):
        return str(error.get("type", "")), str(error.get("message", ""))
    return str(response.status_code), ""
