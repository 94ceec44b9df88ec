"""Orders and order items from the tables people keep (CSV exports), as records."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, tzinfo

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
}

_NUMBER_NOISE = re.compile(r"[\s\u00a0\u202f₽$€£]|руб\.?|rub|usd|eur", re.IGNORECASE)


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


def parse_number(text: str) -> float:
    """`1 234,50 ₽`, `1,234.50`, `1234.5` and `12,5` as people type them."""
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
    try:
        return float(cleaned)
    except ValueError:
        raise RowError(f"{text!r} is not a number") from None


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


def items_from_rows(rows: Iterable[Mapping[str, str]], rules: OrderRules):
    """Order items with a line number per order (the nth item of that order in
    the file), so importing the file again replaces lines instead of adding."""
    lines: Counter = Counter()
    for number, row in enumerate(rows, start=2):
        try:
            fields, _ = rules.fields.map_pairs(row.items())
            order_id = fields.get("order_id", "").strip()
            if not order_id or not fields.get("product"):
                raise RowError("an item needs an order number and a product")
            lines[order_id] += 1
            yield number, {
                "order_id": order_id,
                "line": lines[order_id],
                "product": fields["product"].strip(),
                "price": parse_number(fields.get("price", "")),
                "cost": parse_number(fields["cost"]) if fields.get("cost") else 0.0,
                "quantity": parse_number(fields.get("quantity", "") or "1"),
            }
        except RowError as error:
            yield number, error


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
