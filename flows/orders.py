"""Import orders and order items (CSV) into the ledger for the BI exports."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from connectors.ledger import Ledger
from leadhub.errors import FatalError
from leadhub.settings import Settings
from transforms.emails import canonical_email
from transforms.orders import OrderRules, RowError, items_from_rows, order_from_row
from transforms.tables import TableError, read_table

TABLES = ("orders", "order_items")


@dataclass
class ImportResult:
    imported: int = 0
    problems: list[tuple[str, int, str]] = field(default_factory=list)  # file, row, reason
    # orders whose phone or email is no contact's (yet): kept, in no client's figures
    unmatched: int = 0


def import_table(settings: Settings, paths: list[Path], table: str) -> ImportResult:
    """Good rows are stored, so a file can be imported again: orders are upserted
    by order number, and each order in an items file gets exactly the file's
    lines (a line deleted from the file leaves the store). Each bad row is
    reported with its row number and reason."""
    if table not in TABLES:
        raise FatalError(f"--table {table!r}: use one of {', '.join(TABLES)}")
    ledger = Ledger(settings.store, create=True)
    result = ImportResult()
    identity = settings.identity_rules()

    def contact_of(kind: str, value: str) -> str | None:
        if kind == "email":
            value = canonical_email(value, identity) or value
        key = ledger.contact_key_for(kind, value)
        result.unmatched += key is None and table == "orders"
        return key

    rules = OrderRules(settings.order_field_map(), settings.region, contact_of,
                       ZoneInfo(settings.timezone))
    try:
        for path in paths:
            rows = _rows(path, settings)
            if table == "orders":
                good = []
                for number, row in enumerate(rows, start=2):
                    try:
                        good.append(order_from_row(row, rules))
                    except RowError as error:
                        result.problems.append((str(path), number, str(error)))
                result.imported += ledger.upsert_orders(good)
            else:
                read = items_from_rows(rows, rules)
                result.problems += [(str(path), number, reason) for number, reason in read.problems]
                result.imported += ledger.replace_order_items(read.items)
    finally:
        ledger.close()
    return result


def _rows(path: Path, settings: Settings) -> list[dict[str, str]]:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise FatalError(f"{path}: cannot read ({error.strerror})") from None
    try:
        rows, _, _ = read_table(data, settings.csv.delimiter, settings.csv.encoding)
    except (TableError, UnicodeDecodeError, LookupError) as error:
        raise FatalError(f"{path}: {error}") from None
    return rows
