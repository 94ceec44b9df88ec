"""Orders and order items from the tables people keep (CSV exports), as records."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, tzinfo
from decimal import Decimal

from transforms.emails import normalize_email
from transforms.fields import FieldMap
from transforms.phones import normalize_phone
from transforms.submissions import parse_datetime

ORDER_ALIASES: dict[str, list[str]] = {
    "order_id": ["номер заказа", "заказ", "№ заказа", "№", "order", "order id", "order_id",
                 "order number", "id"],
    "ordered_at": ["дата", "дата заказа", "date", "order date", "created", "created at"],
    "status": ["статус", "status", "состояние"],
    "phone": ["телефон", "тел", "phone", "mobile", "телефон клиента"],
    "email": ["email", "e-mail", "почта", "email клиента"],
    "contact_key": ["клиент", "контакт", "телефон или email", "phone or email", "contact",
                    "contact key", "contact_key", "customer"],
    "comment": ["комментарий", "comment", "примечание", "notes"],
    "product": ["товар", "продукт", "наименование", "услуга", "product", "item", "sku name"],
    "price": ["цена", "цена за единицу", "price", "unit price"],
    "cost": ["себестоимость", "закупка", "закупочная цена", "cost", "unit cost"],
    "quantity": ["количество", "кол-во", "кол во", "qty", "quantity", "шт"],
    "item_id": ["id позиции", "№ позиции", "номер позиции", "код позиции", "id строки",
                "item id", "item_id", "line id", "line item id", "position id"],
}

_NUMBER_NOISE = re.compile(r"[\s\u00a0\u202f₽$€£]|руб\.?|rub|usd|eur", re.IGNORECASE)
# Digits with at most one decimal point: no exponents, NaN or Infinity.
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)")
# More digits than this is a typo or a hostile file, not an amount of money.
_MAX_DIGITS = 18


class RowError(ValueError):
    """A row that cannot be imported; the message says what to fix."""


@dataclass(frozen=True)
class OrderRules:
    fields: FieldMap
    region: str
    # the contact key owning a phone/email, when LeadHub knows the person
    contact_key_for: Callable[[str, str], str | None]
    tz: tzinfo = UTC


def order_field_map(extra: Mapping[str, list[str]] | None = None) -> FieldMap:
    aliases = {name: list(labels) for name, labels in ORDER_ALIASES.items()}
    for name, labels in (extra or {}).items():
        aliases.setdefault(name, [])[:0] = labels
    return FieldMap(aliases)


def parse_number(text: str) -> Decimal:
    """`1 234,50 ₽`, `1,234.50`, `1234.5` and `12,5` as people type them, as an
    exact Decimal (money is never a float: 0,1 stays 0,1)."""
    cleaned = _NUMBER_NOISE.sub("", text or "")
    if not cleaned:
        raise RowError("empty number")
    if "," in cleaned and "." in cleaned:
        # the last separator is the decimal one
        if cleaned.rfind(",") > cleaned.rfind("."):
            cleaned = cleaned.replace(".", "").replace(",", ".")
        else:
            cleaned = cleaned.replace(",", "")
    elif "," in cleaned:
        cleaned = cleaned.replace(",", ".")
    if not _PLAIN_NUMBER.fullmatch(cleaned):
        raise RowError(f"{text[:40]!r} is not a number")
    if sum(character.isdigit() for character in cleaned) > _MAX_DIGITS:
        raise RowError(f"{text[:40]!r} has too many digits for an amount")
    return Decimal(cleaned)


def order_from_row(row: Mapping[str, str], rules: OrderRules) -> dict:
    fields, _ = rules.fields.map_pairs(row.items())
    order_id = fields.get("order_id", "").strip()
    if not order_id:
        raise RowError("no order number (a column like «Номер заказа» or «Order ID»)")
    ordered_at, readable = parse_datetime(fields.get("ordered_at", ""), rules.tz)
    if ordered_at is None:
        raise RowError(f"no readable order date ({fields.get('ordered_at', '')!r})"
                       if not readable else "no order date")
    return {
        "order_id": order_id,
        "contact_key": _contact_key(fields, rules),
        "ordered_at": ordered_at,
        "status": fields.get("status", ""),
        "comment": fields.get("comment", ""),
    }


@dataclass
class ItemsImport:
    """An order-items file read: the lines to store and the rows that could not be."""

    # every line of each order in the file, numbered 1, 2, ... within its order
    items: list[dict] = field(default_factory=list)
    problems: list[tuple[int, str]] = field(default_factory=list)  # row number, reason


def items_from_rows(rows: Iterable[Mapping[str, str]], rules: OrderRules) -> ItemsImport:
    """The lines of each order in the file, for the store to take as that
    order's lines: a line deleted from a corrected file leaves the store too.

    A line is identified by the file's item id column when it has one (`ID
    позиции`, `Item id`; the same id twice in one order is a bad row), else by
    its position within its order. An order with a bad row is left out whole,
    so the store keeps the lines it had until the row is fixed.
    """
    lines: defaultdict[str, list[dict]] = defaultdict(list)
    first_row_of: dict[tuple[str, str], int] = {}
    held_back: set[str] = set()
    result = ItemsImport()
    for number, row in enumerate(rows, start=2):
        fields, _ = rules.fields.map_pairs(row.items())
        order_id = fields.get("order_id", "").strip()
        try:
            item = _item(order_id, fields)
            item_id = fields.get("item_id", "").strip()
            if item_id:
                first = first_row_of.setdefault((order_id, item_id), number)
                if first != number:
                    raise RowError(f"item id {item_id!r} of order {order_id!r} is on row"
                                   f" {first} already")
        except RowError as error:
            reason = str(error)
            if order_id:
                held_back.add(order_id)
                reason += f"; order {order_id!r} keeps its stored lines until this row is fixed"
            result.problems.append((number, reason))
            continue
        lines[order_id].append(item)
    result.items = [
        {**item, "line": line}
        for order_id, order_lines in lines.items()
        if order_id not in held_back
        for line, item in enumerate(order_lines, start=1)
    ]
    return result


def _item(order_id: str, fields: Mapping[str, str]) -> dict:
    if not order_id or not fields.get("product"):
        raise RowError("an item needs an order number and a product")
    return {
        "order_id": order_id,
        "product": fields["product"].strip(),
        "price": parse_number(fields.get("price", "")),
        "cost": parse_number(fields["cost"]) if fields.get("cost") else Decimal(0),
        "quantity": parse_number(fields.get("quantity", "") or "1"),
    }


def _contact_key(fields: Mapping[str, str], rules: OrderRules) -> str:
    """The contact's key as LeadHub knows it (a merged contact's survivor),
    from a phone or an email in whichever contact column the file has."""
    for text in (fields.get("phone", ""), fields.get("email", ""), fields.get("contact_key", "")):
        if not text.strip():
            continue
        phone = normalize_phone(text, rules.region)
        if phone.valid:
            return rules.contact_key_for("phone", phone.e164) or phone.e164
        email = normalize_email(text)
        if email:
            return rules.contact_key_for("email", email) or email
    raise RowError("no client phone or email to tie the order to a contact")
