"""Google Sheets as a sink: header-driven columns, one read and one or two
writes per table, inside the per-user quota.

Columns are found by their header, in any order, so people can move columns,
add their own, sort and filter rows. A sync reads the header rows once, then
the key column and LeadHub's columns of a table in one values:batchGet; changed
cells go out in one values:batchUpdate and new rows in one append.

gspread is used for its HTTP plumbing and credentials; its back-off client is
not (it never stops retrying). This module owns the policy: a sliding-window
budget of write and read requests per minute per user, and on 429 a backoff
with jitter, a bounded number of times. An append is never re-sent after a
timeout or 5xx (it may have landed): the next run finds the rows by key.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import gspread
import requests
from google.oauth2 import credentials as user_credentials
from google.oauth2 import service_account
from gspread.exceptions import APIError

from connectors import WriteOutcome
from connectors.retry import backoff_delays, sleep_backoff
from connectors.shared_limits import LOCAL, LimitSpec, LocalLimits, PrefectLimits, sheets_limit
from connectors.throttle import Clock, Sleep, shared_window
from leadhub.errors import ConfigError, FatalError, TransientError
from transforms.crm import (
    CrmField,
    CrmTable,
    RemoteRow,
    RowWrite,
    canonical,
    keep_existing_titles,
    spreadsheet_key,
)

GOOGLE_SHEETS = "https://sheets.googleapis.com"
SCOPES = ["https://www.googleapis.com/auth/spreadsheets"]
CELL_LIMIT = 10_000_000
MAX_REQUEST_BYTES = 2_000_000  # Google's advice for one request body
_SERIAL_EPOCH = datetime(1899, 12, 30)
# Text Sheets would turn into a number, date, formula or boolean when entered.
_PARSED_AS_VALUE = re.compile(
    r"^\s*([=+\-@']|\d|\.\d|(true|false|TRUE|FALSE)\s*$|\d{1,2}[./]\d{1,2}([./]\d{2,4})?)")


# Google counts requests per minute; a little longer keeps us clear of its edge.
_QUOTA_SECONDS = 60.5


class SheetsHttp(gspread.HTTPClient):
    """gspread's HTTP client sent to `base_url`, inside the quota, with our retries."""

    def __init__(self, auth: Any, session: Any = None, *, base_url: str, account: str,
                 calls: Counter, writes_per_minute: int, reads_per_minute: int,
                 attempts: int = 6, clock: Clock = time.monotonic,
                 sleep: Sleep = time.sleep, limits: LocalLimits | PrefectLimits = LOCAL) -> None:
        super().__init__(auth, session)
        self.base_url = base_url.rstrip("/")
        self.calls = calls
        self.attempts = attempts
        self._clock = clock
        self._sleep = sleep
        # one budget per user and kind, shared by every sink of the process;
        # with a Prefect server the write budget is shared by every worker
        self.shared_limit = sheets_limit(account, writes_per_minute, _QUOTA_SECONDS)
        self.writes = limits.budget(self.shared_limit, shared_window(
            ("sheets", self.base_url, account, "write"), writes_per_minute, _QUOTA_SECONDS,
            clock, sleep))
        self.reads = shared_window(("sheets", self.base_url, account, "read"),
                                   reads_per_minute, _QUOTA_SECONDS, clock, sleep)

    def _back_off(self, delay: float) -> None:
        sleep_backoff(delay, clock=self._clock, sleep=self._sleep)

    def request(self, method: str, endpoint: str, *args: Any, **kwargs: Any):
        endpoint = endpoint.replace(GOOGLE_SHEETS, self.base_url, 1)
        method = method.upper()
        writing = method != "GET"
        repeatable = not endpoint.endswith(":append")
        budget = self.writes if writing else self.reads
        delays = backoff_delays(self.attempts, base=1.0, cap=64.0)
        while True:
            try:
                with budget.slot():
                    response = super().request(method, endpoint, *args, **kwargs)
            except (requests.Timeout, requests.ConnectionError) as error:
                self.calls["timeouts"] += 1
                delay = next(delays, None) if repeatable else None
                if delay is None:
                    raise TransientError(f"Google Sheets did not answer ({type(error).__name__});"
                                         " the next run goes on") from None
                self._back_off(delay)
                continue
            except APIError as error:
                self.calls["write" if writing else "read"] += 1
                retry = error.code == 429 or (error.code >= 500 and repeatable)
                delay = next(delays, None) if retry else None
                if error.code == 429:
                    self.calls["rate_limited"] += 1
                if delay is None:
                    raise
                self.calls["retried"] += 1
                self._back_off(delay)
                continue
            self.calls["write" if writing else "read"] += 1
            return response


class _ServiceAccountElsewhere(service_account.Credentials):
    """A service account used against a Sheets endpoint that is not Google's (a
    proxy, the local test server): google-auth would otherwise ask
    iamcredentials.googleapis.com for the account's allowed regions after every
    token refresh, a call that goes past `base_url`."""

    def _is_regional_access_boundary_lookup_required(self) -> bool:
        return False


def _credentials(config: Any) -> tuple[Any, str]:
    """google-auth credentials and the account they act as."""
    if config.oauth_token is not None:
        return user_credentials.Credentials(config.oauth_token.get_secret_value()), "user"
    given = config.credentials.get_secret_value().strip()
    if given.startswith("{"):
        try:
            info = json.loads(given)
        except json.JSONDecodeError as error:
            raise ConfigError(
                f"sinks[{config.name}].credentials is not valid JSON: {error}") from None
    else:
        path = Path(given).expanduser()
        try:
            info = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise ConfigError(f"sinks[{config.name}].credentials: cannot read the"
                              f" service-account key {path}: {error}") from None
    kind = (service_account.Credentials if config.base_url.rstrip("/") == GOOGLE_SHEETS
            else _ServiceAccountElsewhere)
    try:
        creds = kind.from_service_account_info(info, scopes=SCOPES)
    except (ValueError, KeyError) as error:
        raise ConfigError(f"sinks[{config.name}].credentials is not a service-account key"
                          f" ({error}); download one as JSON from the Google Cloud console"
                          ) from None
    return creds, info.get("client_email", "the service account")


def column_letter(index: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def quoted(title: str) -> str:
    return "'" + title.replace("'", "''") + "'"


class SheetsSink:
    """One spreadsheet. Rows are found by the key column; a row's number is
    only trusted within one sync, because people sort."""

    # rows planned per write: one append or batchUpdate each (the ledger commits after it)
    write_chunk = 10_000
    reads_everything = True  # Sheets has no "changed since": every read is the whole key column

    def __init__(self, config: Any, tables: dict[str, CrmTable], timezone: str = "UTC", *,
                 clock: Clock = time.monotonic, sleep: Sleep = time.sleep,
                 limits: LocalLimits | PrefectLimits = LOCAL):
        self.name = config.name
        self.key = spreadsheet_key(config.spreadsheet)
        self._tables = tables
        self._titles_settled = not any(t.english for t in tables.values())
        self.tz = ZoneInfo(timezone)
        self.calls: Counter = Counter()
        creds, self.account = _credentials(config)
        http = partial(SheetsHttp, base_url=config.base_url, account=self.account,
                       calls=self.calls, writes_per_minute=config.writes_per_minute,
                       reads_per_minute=config.reads_per_minute, clock=clock, sleep=sleep,
                       limits=limits)
        self.client = gspread.Client(auth=creds, http_client=http)
        self.client.set_timeout((10, config.timeout))
        self.http: SheetsHttp = self.client.http_client
        self._headers: dict[str, list[str]] | None = None
        self._rows: dict[str, dict[str, int]] = {}
        self._used_cells: dict[str, int] = {}
        self.warnings: list[str] = []

    def describe(self) -> str:
        return f"Google spreadsheet {self.key}"

    @property
    def tables(self) -> dict[str, CrmTable]:
        """The tables under the titles this spreadsheet has them by: those of
        the sink's language, or English for a worksheet it already has so."""
        if not self._titles_settled:
            self._tables = keep_existing_titles(self._tables, self._worksheets())
            self._titles_settled = True
        return self._tables

    def shared_limits(self) -> list[LimitSpec]:
        """The Prefect rate limit every worker's writes as this user share."""
        return [self.http.shared_limit]

    def set_links(self, table_name: str, ids_by_key: dict[str, str]) -> None:
        """Links in a sheet are the linked row's key: nothing to translate."""

    # --- errors ------------------------------------------------------------

    def _fail(self, error: APIError, table: CrmTable | None = None) -> Exception:
        message = str(error.error.get("message", ""))
        if error.code == 403:
            return FatalError(
                f"Google Sheets: no access to spreadsheet {self.key} (403): share it with"
                f" {self.account} as an Editor")
        if error.code == 404:
            return FatalError(f"Google Sheets: spreadsheet {self.key} not found (404): check the"
                              " spreadsheet key or URL in the sink's config")
        if error.code == 401:
            return FatalError("Google Sheets refused the credentials (401): renew the OAuth"
                              " token or the service-account key")
        if error.code == 400 and "Unable to parse range" in message and table:
            return FatalError(f"Google Sheets: spreadsheet {self.key} has no worksheet"
                              f" {table.title!r}: run `leadhub schema init sheets`, or map your"
                              " own worksheet title under the sink's tables:")
        if error.code == 429 or error.code >= 500:
            return TransientError(f"Google Sheets {error.code}: {message}; the next run goes on")
        return FatalError(f"Google Sheets {error.code}: {message}")

    # --- headers and schema ----------------------------------------------------

    def _worksheets(self) -> dict[str, dict]:
        try:
            meta = self.http.fetch_sheet_metadata(self.key)
        except APIError as error:
            raise self._fail(error) from None
        return {s["properties"]["title"]: s["properties"] for s in meta.get("sheets", [])}

    def headers(self, refresh: bool = False) -> dict[str, list[str]]:
        """Every table's header row, in one request."""
        if self._headers is None or refresh:
            titles = [t.title for t in self.tables.values()]
            worksheets = self._worksheets() if refresh else None
            present = [t for t in titles if worksheets is None or t in worksheets]
            try:
                body = self.http.values_batch_get(
                    self.key, [f"{quoted(t)}!1:1" for t in present])
            except APIError as error:
                missing = next((t for t in self.tables.values()
                                if f"'{t.title}'" in str(error.error.get("message", ""))
                                or t.title in str(error.error.get("message", ""))), None)
                raise self._fail(error, missing) from None
            self._headers = {}
            for title, value_range in zip(present, body.get("valueRanges", []), strict=False):
                row = (value_range.get("values") or [[]])[0]
                self._headers[title] = [str(cell).strip() for cell in row]
        return self._headers

    def _columns(self, table: CrmTable, wanted: Sequence[CrmField]) -> dict[str, int]:
        header = self.headers().get(table.title)
        if header is None:
            raise FatalError(f"Google Sheets: spreadsheet {self.key} has no worksheet"
                             f" {table.title!r}: run `leadhub schema init sheets`")
        positions = {}
        for crm_field in wanted:
            if crm_field.title not in header:
                raise FatalError(
                    f"Google Sheets {table.title!r}: no column headed {crm_field.title!r} (renamed"
                    " or deleted?): name it back, map your header under the sink's tables:"
                    f" {table.name}.fields.{crm_field.name}, or run `leadhub schema init sheets`")
            positions[crm_field.name] = header.index(crm_field.title)
        return positions

    def problems(self) -> list[str]:
        worksheets = self._worksheets()
        found = []
        headers = self.headers(refresh=True)
        for table in self.tables.values():
            if table.title not in worksheets:
                found.append(f"worksheet {table.title!r} is missing")
                continue
            header = headers.get(table.title, [])
            found += [f"{table.title}: no column headed {f.title!r}"
                      for f in table.stored if f.title not in header]
        return found

    def manual_steps(self) -> list[str]:
        """Nothing: every column LeadHub needs is a plain header."""
        return []

    def init_schema(self) -> tuple[list[str], list[str]]:
        """Missing worksheets with a frozen bold header and a source dropdown;
        missing headers are added after the last used column."""
        worksheets = self._worksheets()
        created: list[str] = []
        requests_: list[dict] = [
            {"addSheet": {"properties": {"title": t.title, "gridProperties": {
                "rowCount": 1000, "columnCount": max(26, len(t.stored)),
                "frozenRowCount": 1}}}}
            for t in self.tables.values() if t.title not in worksheets]
        if requests_:
            self._batch_update(requests_)
            created += [f"worksheet {r['addSheet']['properties']['title']}" for r in requests_]
            worksheets = self._worksheets()
        headers = self.headers(refresh=True)
        data = []
        formatting = []
        for table in self.tables.values():
            header = headers.get(table.title, [])
            missing = [f.title for f in table.stored if f.title not in header]
            if not missing:
                continue
            start = len(header)
            data.append({"range": f"{quoted(table.title)}!{column_letter(start)}1",
                         "values": [missing]})
            created += [f"{table.title}.{title}" for title in missing]
            sheet_id = worksheets[table.title]["sheetId"]
            formatting += self._header_format(sheet_id, start + len(missing))
            formatting += self._source_dropdown(table, sheet_id, [*header, *missing])
        if data:
            self._values_batch_update(data, "RAW")
            self._batch_update(formatting)
            self._headers = None
        return created, []

    @staticmethod
    def _header_format(sheet_id: int, width: int) -> list[dict]:
        return [
            {"repeatCell": {
                "range": {"sheetId": sheet_id, "startRowIndex": 0, "endRowIndex": 1,
                          "startColumnIndex": 0, "endColumnIndex": width},
                "cell": {"userEnteredFormat": {"textFormat": {"bold": True},
                                               "backgroundColor": {"red": 0.9, "green": 0.93,
                                                                   "blue": 0.98}}},
                "fields": "userEnteredFormat(textFormat,backgroundColor)"}},
            {"updateSheetProperties": {
                "properties": {"sheetId": sheet_id, "gridProperties": {"frozenRowCount": 1}},
                "fields": "gridProperties.frozenRowCount"}},
        ]

    @staticmethod
    def _source_dropdown(table: CrmTable, sheet_id: int, header: list[str]) -> list[dict]:
        rules = []
        for crm_field in table.stored:
            if crm_field.type != "select" or not crm_field.options:
                continue
            column = header.index(crm_field.title)
            rules.append({"setDataValidation": {
                "range": {"sheetId": sheet_id, "startRowIndex": 1,
                          "startColumnIndex": column, "endColumnIndex": column + 1},
                "rule": {"condition": {"type": "ONE_OF_LIST", "values": [
                    {"userEnteredValue": option} for option in crm_field.options]},
                    "showCustomUi": True, "strict": False}}})
        return rules

    def _batch_update(self, requests_: list[dict]) -> None:
        try:
            self.http.batch_update(self.key, {"requests": requests_})
        except APIError as error:
            raise self._fail(error) from None

    # --- reading -------------------------------------------------------------

    def read(self, table: CrmTable, modified_since: str | None = None,
             only_key: bool = False) -> Iterator[RemoteRow]:
        """Every row of the key column and LeadHub's columns (Sheets cannot say
        what changed), in one request. Rows without a key are people's own."""
        wanted = [table.key_field] if only_key else list(table.stored)
        columns = self._columns(table, wanted)
        ranges = [f"{quoted(table.title)}!{column_letter(i)}2:{column_letter(i)}"
                  for i in columns.values()]
        try:
            body = self.http.values_batch_get(self.key, ranges, params={
                "majorDimension": "COLUMNS", "valueRenderOption": "UNFORMATTED_VALUE",
                "dateTimeRenderOption": "SERIAL_NUMBER"})
        except APIError as error:
            raise self._fail(error, table) from None
        cells = {name: ((value_range.get("values") or [[]])[0])
                 for name, value_range in zip(columns, body.get("valueRanges", []), strict=True)}
        height = max((len(column) for column in cells.values()), default=0)
        rows: dict[str, int] = {}
        header_width = len(self.headers().get(table.title, []))
        self._used_cells[table.title] = (height + 1) * max(header_width, 1)
        self._warn_near_limit()
        for index in range(height):
            values = {
                f.name: self._from_cell(f, column[index] if index < len(column) else None)
                for f in wanted for column in (cells[f.name],)}
            key = values.get(table.key)
            if key is None:
                if not only_key and any(value is not None for value in values.values()):
                    yield RemoteRow(f"row:{index + 2}", "", values)  # typed by a person
                continue
            key = str(key)
            rows.setdefault(key, index + 2)
            yield RemoteRow(f"row:{index + 2}", key, values)
        self._rows[table.name] = rows

    def _warn_near_limit(self) -> None:
        used = sum(self._used_cells.values())
        if used >= 0.8 * CELL_LIMIT:
            self.warnings.append(f"spreadsheet {self.key} uses about {used:,} of Google's"
                                 f" {CELL_LIMIT:,} cells: move old rows to another spreadsheet")

    def _from_cell(self, crm_field: CrmField, value: Any) -> Any:
        if crm_field.type in ("datetime", "date") and isinstance(value, int | float):
            local = _SERIAL_EPOCH + timedelta(days=float(value))
            # a date is the day people see in the sheet, not that midnight's UTC day
            value = (local.date().isoformat() if crm_field.type == "date"
                     else local.replace(tzinfo=self.tz).astimezone(UTC))
        return canonical(crm_field, value)

    # --- writing -------------------------------------------------------------

    def _to_cell(self, crm_field: CrmField, value: Any) -> Any:
        """A value entered so Sheets keeps its type: text as text, times and
        numbers as real times and numbers (written USER_ENTERED)."""
        if value is None:
            return ""
        if crm_field.type == "datetime":
            moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
            return moment.astimezone(self.tz).strftime("%Y-%m-%d %H:%M:%S")
        if crm_field.type == "date":
            return str(value)[:10]
        if crm_field.type in ("number", "currency", "percent"):
            return value
        if crm_field.type == "checkbox":
            return bool(value)
        text = str(value)
        return "'" + text if _PARSED_AS_VALUE.match(text) else text

    def upsert(self, table: CrmTable, writes: Sequence[RowWrite]) -> list[WriteOutcome]:
        """Changed cells of known rows in one batchUpdate (split under ~2 MB),
        new rows in one append."""
        if table.name not in self._rows:
            list(self.read(table, only_key=True))
        rows = self._rows[table.name]
        header = self.headers()[table.title]
        columns = self._columns(table, table.stored)
        updates: list[dict] = []
        new_rows: list[tuple[RowWrite, list]] = []
        for write in writes:
            row = rows.get(write.key)
            if row is None and write.by_id and (write.remote_id or "").startswith("row:"):
                # a person's row without its key yet: written where it is
                row = rows[write.key] = int(write.remote_id.removeprefix("row:"))
            if row is None:
                new_rows.append((write, self._full_row(table, write, columns, len(header))))
                continue
            for name, value in write.values.items():
                cell = f"{column_letter(columns[name])}{row}"
                updates.append({"range": f"{quoted(table.title)}!{cell}",
                                "values": [[self._to_cell(table.field(name), value)]]})
        outcomes = [WriteOutcome(w.key, f"row:{rows[w.key]}") for w in writes
                    if w.key in rows]
        if updates:
            self._send_updates(updates)
        if new_rows:
            outcomes += self._append(table, new_rows, rows)
        return outcomes

    def _full_row(self, table: CrmTable, write: RowWrite, columns: dict[str, int],
                  width: int) -> list:
        # None leaves people's own columns alone in the new row.
        cells: list[Any] = [None] * width
        for name, value in {**write.values, table.key: write.key}.items():
            cells[columns[name]] = self._to_cell(table.field(name), value)
        return cells

    def _send_updates(self, updates: list[dict]) -> None:
        chunk: list[dict] = []
        size = 0
        for update in updates:
            weight = len(json.dumps(update, ensure_ascii=False).encode())
            if chunk and size + weight > MAX_REQUEST_BYTES:
                self._values_batch_update(chunk, "USER_ENTERED")
                chunk, size = [], 0
            chunk.append(update)
            size += weight
        if chunk:
            self._values_batch_update(chunk, "USER_ENTERED")

    def _values_batch_update(self, data: list[dict], input_option: str) -> None:
        try:
            self.http.values_batch_update(self.key, {"valueInputOption": input_option,
                                                     "data": data})
        except APIError as error:
            raise self._fail(error) from None

    def _append(self, table: CrmTable, new_rows: list[tuple[RowWrite, list]],
                rows: dict[str, int]) -> list[WriteOutcome]:
        try:
            body = self.http.values_append(
                self.key, f"{quoted(table.title)}!A1",
                params={"valueInputOption": "USER_ENTERED", "insertDataOption": "INSERT_ROWS"},
                body={"majorDimension": "ROWS", "values": [cells for _, cells in new_rows]})
        except APIError as error:
            raise self._fail(error, table) from None
        updated = body.get("updates", {}).get("updatedRange", "")
        first = int(re.search(r"![A-Z]+(\d+)", updated).group(1)) if "!" in updated else 0
        outcomes = []
        for offset, (write, _) in enumerate(new_rows):
            rows[write.key] = first + offset
            outcomes.append(WriteOutcome(write.key, f"row:{first + offset}", created=True))
        return outcomes
