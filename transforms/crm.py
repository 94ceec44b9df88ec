"""The CRM tables LeadHub keeps in Airtable or Google Sheets, and the rules for
writing to them without overwriting people's work.

Field ownership (DESIGN.md): LeadHub owns the contact data, the source and the
lead history; people own status, stage, owner, notes and amounts. LeadHub sets
a people-owned field only when it creates the row. A LeadHub field a person has
changed becomes theirs: LeadHub fills it again only if they empty it. A value
LeadHub wrote there itself, even one whose answer a crash lost, is never taken
for a person's change.

Values here are canonical and sink-neutral: text as str, numbers as float,
times as ISO UTC strings ending in Z, dates as YYYY-MM-DD, a link as the key of
the linked row, an empty value as None. Each sink converts to and from its own
cell formats.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

from transforms.names import normalize_name
from transforms.phones import normalize_phone

FieldType = Literal[
    "text", "long_text", "phone", "email", "select", "datetime", "date", "number",
    "currency", "percent", "checkbox", "link", "formula", "rollup",
]
Owner = Literal["leadhub", "people"]
COMPUTED: frozenset[str] = frozenset({"formula", "rollup"})


@dataclass(frozen=True)
class CrmField:
    """One field (Airtable) or column (Sheets). `name` is LeadHub's own name for
    it; `title` is what the base or sheet calls it (config can rename it)."""

    name: str
    title: str
    type: FieldType
    owner: Owner = "leadhub"
    options: tuple[str, ...] = ()
    link: str = ""
    # formula in field titles ({Price} * {Quantity}), or a rollup "link.field:SUM"
    formula: str = ""
    # what a people-owned field gets when LeadHub creates the row
    default: Any = None

    @property
    def computed(self) -> bool:
        return self.type in COMPUTED


@dataclass(frozen=True)
class CrmTable:
    """`written`: LeadHub writes its rows (contacts, leads, ...); otherwise people
    keep the table and LeadHub only reads it back (orders)."""

    name: str
    title: str
    key: str
    fields: tuple[CrmField, ...]
    written: bool = True
    # The same table with the English titles, when these are another
    # language's: a base or sheet made with English titles keeps them.
    english: CrmTable | None = field(default=None, compare=False, repr=False)

    def field(self, name: str) -> CrmField:
        for each in self.fields:
            if each.name == name:
                return each
        raise KeyError(f"{self.title} has no field {name!r}")

    @property
    def key_field(self) -> CrmField:
        return self.field(self.key)

    def owned_by(self, owner: Owner) -> tuple[CrmField, ...]:
        return tuple(f for f in self.fields if f.owner == owner and not f.computed)

    @property
    def stored(self) -> tuple[CrmField, ...]:
        """Fields that hold values (not formulas or rollups)."""
        return tuple(f for f in self.fields if not f.computed)


CONTACT_STATUSES = ("Новый", "В работе", "Клиент", "Отказ")
# What people choose for a possible duplicate: one person, or two.
SAME_PERSON, DIFFERENT_PEOPLE = "Один человек", "Разные люди"
DUPLICATE_DECISIONS = (SAME_PERSON, DIFFERENT_PEOPLE)
# The English a person may type instead (a select typed by hand, a sheet)
_DECISION_WORDS = {"same": SAME_PERSON, "same person": SAME_PERSON, "один человек": SAME_PERSON,
                   "different": DIFFERENT_PEOPLE, "different people": DIFFERENT_PEOPLE,
                   "разные люди": DIFFERENT_PEOPLE, "разные": DIFFERENT_PEOPLE}


def default_tables(
    source_categories: Iterable[str], funnel_stages: Iterable[str], lost_stage: str = "Отказ",
    loss_reasons: Iterable[str] = (),
) -> dict[str, CrmTable]:
    """The tables `leadhub schema init` creates, with their default titles.
    The main Phone column shows the number the way the business writes it
    (`+7 (912) 345-67-89`); `Phone E.164` keeps the key form for tools."""
    sources = tuple(source_categories)
    stages = (*funnel_stages, lost_stage)
    first_stage = stages[0] if stages else None
    text = "text"
    contacts = CrmTable("contacts", "Contacts", "contact_key", (
        CrmField("name", "Name", text),
        CrmField("contact_key", "Contact key", text),
        CrmField("phone", "Phone", "phone"),
        CrmField("phone_e164", "Phone E.164", text),
        CrmField("email", "Email", "email"),
        CrmField("company", "Company", text),
        CrmField("legal_form", "Legal form", text),
        CrmField("position", "Position", text),
        CrmField("city", "City", text),
        CrmField("source", "Source", "select", options=sources),
        CrmField("first_seen", "First seen", "datetime"),
        CrmField("last_seen", "Last seen", "datetime"),
        CrmField("leads_count", "Leads count", "number"),
        CrmField("segment", "Segment", text),
        CrmField("merged_into", "Merged into", text),
        CrmField("status", "Status", "select", "people", CONTACT_STATUSES, default="Новый"),
        CrmField("owner", "Owner", text, "people"),
        CrmField("notes", "Notes", "long_text", "people"),
        CrmField("revenue", "Revenue", "rollup", formula="orders.revenue:SUM"),
        CrmField("profit", "Profit", "rollup", formula="orders.profit:SUM"),
    ))
    leads = CrmTable("leads", "Leads", "lead_id", (
        CrmField("lead_id", "Lead id", text),
        CrmField("contact", "Contact", "link", link="contacts"),
        CrmField("received_at", "Received at", "datetime"),
        CrmField("channel", "Channel", text),
        CrmField("source", "Source", "select", options=sources),
        CrmField("raw_source", "Raw source", "long_text"),
        CrmField("name", "Name", text),
        CrmField("phone", "Phone", "phone"),
        CrmField("email", "Email", "email"),
        CrmField("company", "Company", text),
        CrmField("subject", "Subject", text),
        CrmField("message", "Message", "long_text"),
        CrmField("stage", "Stage", "select", "people", stages, default=first_stage),
        CrmField("loss_reason", "Loss reason", "select", "people", tuple(loss_reasons)),
        CrmField("owner", "Owner", text, "people"),
        CrmField("notes", "Notes", "long_text", "people"),
        CrmField("amount", "Amount", "currency", "people"),
    ))
    review = CrmTable("needs_review", "Needs review", "item_id", (
        CrmField("item_id", "Item id", text),
        CrmField("source", "Source", text),
        CrmField("kind", "Kind", text),
        CrmField("received_at", "Received at", "datetime"),
        CrmField("state", "State", text),
        CrmField("reason", "Reason", "long_text"),
        CrmField("excerpt", "Excerpt", "long_text"),
        CrmField("resolved", "Resolved", "checkbox", "people"),
        CrmField("notes", "Notes", "long_text", "people"),
    ))
    orders = CrmTable("orders", "Orders", "order_id", (
        CrmField("order_id", "Order", text, "people"),
        CrmField("ordered_at", "Date", "date", "people"),
        CrmField("status", "Status", text, "people"),
        CrmField("contact", "Contact", "link", "people", link="contacts"),
        CrmField("comment", "Comment", "long_text", "people"),
        CrmField("revenue", "Revenue", "rollup", formula="order_items.revenue:SUM"),
        CrmField("cost", "Cost", "rollup", formula="order_items.cost_total:SUM"),
        CrmField("profit", "Profit", "rollup", formula="order_items.profit:SUM"),
        CrmField("margin", "Margin", "formula",
                 formula="IF({Revenue}, {Profit} / {Revenue}, BLANK())"),
    ), written=False)
    order_items = CrmTable("order_items", "Order items", "item", (
        CrmField("item", "Item", text, "people"),
        CrmField("order", "Order", "link", "people", link="orders"),
        CrmField("ordered_at", "Date", "date", "people"),
        CrmField("product", "Product", text, "people"),
        CrmField("price", "Price", "currency", "people"),
        CrmField("cost", "Cost", "currency", "people"),
        CrmField("quantity", "Quantity", "number", "people"),
        CrmField("revenue", "Revenue", "formula", formula="{Price} * {Quantity}"),
        CrmField("cost_total", "Cost total", "formula", formula="{Cost} * {Quantity}"),
        CrmField("profit", "Profit", "formula", formula="{Revenue} - {Cost total}"),
        CrmField("margin", "Margin", "formula",
                 formula="IF({Revenue}, {Profit} / {Revenue}, BLANK())"),
    ), written=False)
    tasks = CrmTable("tasks", "Tasks", "task_id", (
        CrmField("title", "Task", text),
        CrmField("task_id", "Task id", text),
        CrmField("contact", "Contact", "link", link="contacts"),
        CrmField("due_at", "Due", "datetime"),
        CrmField("rule", "Rule", text),
        CrmField("details", "Details", "long_text"),
        CrmField("done", "Done", "checkbox", "people"),
        CrmField("owner", "Owner", text, "people"),
        CrmField("notes", "Notes", "long_text", "people"),
    ))
    duplicates = CrmTable("possible_duplicates", "Possible duplicates", "pair", (
        CrmField("pair", "Pair", text),
        CrmField("contact_a", "Contact A", "link", link="contacts"),
        CrmField("contact_b", "Contact B", "link", link="contacts"),
        CrmField("name_a", "Name A", text),
        CrmField("name_b", "Name B", text),
        CrmField("phone_a", "Phone A", text),
        CrmField("phone_b", "Phone B", text),
        CrmField("email_a", "Email A", text),
        CrmField("email_b", "Email B", text),
        CrmField("company_a", "Company A", text),
        CrmField("company_b", "Company B", text),
        CrmField("score", "Score", "percent"),
        CrmField("reasons", "Why", "long_text"),
        CrmField("state", "State", text),
        CrmField("decision", "Decision", "select", "people", DUPLICATE_DECISIONS),
    ))
    return {t.name: t for t in (contacts, leads, review, orders, order_items, tasks,
                                duplicates)}


def creation_order(tables: Mapping[str, CrmTable]) -> list[str]:
    """Table names so that a table comes after every table its links point to
    (a link field needs the table it links to)."""
    order: list[str] = []
    waiting = dict(tables)
    while waiting:
        ready = [name for name, table in waiting.items()
                 if all(f.link in order or f.link == name or f.link not in tables
                        for f in table.fields if f.type == "link")]
        if not ready:
            raise ValueError(f"tables link in a circle: {', '.join(waiting)}")
        for name in ready:
            order.append(name)
            del waiting[name]
    return order


@dataclass(frozen=True)
class TableNames:
    """A user's own title for a table and its fields (config `tables:`)."""

    title: str | None = None
    fields: Mapping[str, str] = field(default_factory=dict)


# Field names of earlier LeadHub versions a config may still map: `phone_display`
# is now the main Phone column (it shows the number the way people write it).
_FORMER_FIELDS = {"phone_display": "phone"}


def mirror_tables(tables: dict[str, CrmTable]) -> dict[str, CrmTable]:
    """The tables of a sink that mirrors the store: people work in the record
    sink, so here every field, people's too, shows what the store holds."""
    return {name: replace(table, fields=tuple(
        replace(f, owner="leadhub") for f in table.fields)) if table.written else table
        for name, table in tables.items()}


def rename_tables(
    tables: dict[str, CrmTable], names: Mapping[str, TableNames]
) -> dict[str, CrmTable]:
    """Apply the config's titles. Unknown table or field names are errors that
    list the known ones, so a typo does not silently sync to a default title."""
    renamed = dict(tables)
    for table_name, given in names.items():
        if table_name not in tables:
            raise ValueError(f"unknown table {table_name!r}; the tables are: {', '.join(tables)}")
        table = tables[table_name]
        given = TableNames(given.title, {_FORMER_FIELDS.get(name, name): title
                                         for name, title in given.fields.items()})
        known = {f.name for f in table.fields}
        unknown = set(given.fields) - known
        if unknown:
            raise ValueError(
                f"{table_name} has no field(s) {', '.join(sorted(unknown))}; its fields are: "
                + ", ".join(f.name for f in table.fields)
            )
        titles = {f.title: given.fields.get(f.name, f.title) for f in table.fields}
        fields = tuple(replace(f, title=titles[f.title], formula=_retitled(f.formula, titles))
                       for f in table.fields)
        renamed[table_name] = replace(table, title=given.title or table.title, fields=fields)
    return renamed


def _retitled(formula: str, titles: Mapping[str, str]) -> str:
    """A formula's {Field title} references, after its table's fields were retitled."""
    return re.sub(r"\{([^{}]+)\}", lambda ref: "{" + titles.get(ref.group(1), ref.group(1)) + "}",
                  formula)


# The titles of a new base or sheet whose sink says `language: ru`.
RUSSIAN_TITLES: dict[str, TableNames] = {
    "contacts": TableNames("Контакты", {
        "name": "Имя", "contact_key": "Ключ контакта", "phone": "Телефон",
        "phone_e164": "Телефон E.164", "email": "Email", "company": "Компания",
        "legal_form": "Форма собственности", "position": "Должность", "city": "Город",
        "source": "Источник", "first_seen": "Впервые", "last_seen": "В последний раз",
        "leads_count": "Число лидов", "segment": "Сегмент", "merged_into": "Объединён с",
        "status": "Статус", "owner": "Ответственный", "notes": "Заметки",
        "revenue": "Выручка", "profit": "Прибыль"}),
    "leads": TableNames("Лиды", {
        "lead_id": "Номер лида", "contact": "Контакт", "received_at": "Получен",
        "channel": "Канал", "source": "Источник", "raw_source": "Исходный источник",
        "name": "Имя", "phone": "Телефон", "email": "Email", "company": "Компания",
        "subject": "Тема", "message": "Сообщение", "stage": "Стадия",
        "loss_reason": "Причина отказа", "owner": "Ответственный", "notes": "Заметки",
        "amount": "Сумма"}),
    "needs_review": TableNames("На проверку", {
        "item_id": "Номер элемента", "source": "Источник", "kind": "Вид",
        "received_at": "Получен", "state": "Состояние", "reason": "Причина",
        "excerpt": "Фрагмент", "resolved": "Решено", "notes": "Заметки"}),
    "orders": TableNames("Заказы", {
        "order_id": "Заказ", "ordered_at": "Дата", "status": "Статус", "contact": "Контакт",
        "comment": "Комментарий", "revenue": "Выручка", "cost": "Себестоимость",
        "profit": "Прибыль", "margin": "Маржа"}),
    "order_items": TableNames("Позиции заказов", {
        "item": "Позиция", "order": "Заказ", "ordered_at": "Дата", "product": "Товар",
        "price": "Цена", "cost": "Себестоимость", "quantity": "Количество",
        "revenue": "Выручка", "cost_total": "Себестоимость итого", "profit": "Прибыль",
        "margin": "Маржа"}),
    "tasks": TableNames("Задачи", {
        "title": "Задача", "task_id": "Номер задачи", "contact": "Контакт", "due_at": "Срок",
        "rule": "Правило", "details": "Подробности", "done": "Выполнена",
        "owner": "Ответственный", "notes": "Заметки"}),
    "possible_duplicates": TableNames("Возможные дубли", {
        "pair": "Пара", "contact_a": "Контакт A", "contact_b": "Контакт B",
        "name_a": "Имя A", "name_b": "Имя B", "phone_a": "Телефон A", "phone_b": "Телефон B",
        "email_a": "Email A", "email_b": "Email B", "company_a": "Компания A",
        "company_b": "Компания B", "score": "Оценка", "reasons": "Почему",
        "state": "Состояние", "decision": "Решение"}),
}
TITLES_BY_LANGUAGE = {"ru": RUSSIAN_TITLES}


def titled_tables(tables: dict[str, CrmTable], language: str,
                  names: Mapping[str, TableNames]) -> dict[str, CrmTable]:
    """The tables with the titles of the sink's language, and the config's own
    titles over them. Each keeps its English version for a base or sheet that
    already has that table under its English title."""
    english = rename_tables(tables, names)
    if language not in TITLES_BY_LANGUAGE:
        return english
    localized = rename_tables(rename_tables(tables, TITLES_BY_LANGUAGE[language]), names)
    return {name: replace(table, english=english[name]) for name, table in localized.items()}


def keep_existing_titles(tables: Mapping[str, CrmTable],
                         existing: Collection[str]) -> dict[str, CrmTable]:
    """Each table under the title the base or sheet already has it by: a
    table made earlier with the English titles keeps them."""
    return {name: table.english if (table.english is not None and table.title not in existing
                                    and table.english.title in existing) else table
            for name, table in tables.items()}


_SHEET_KEY = re.compile(r"/spreadsheets/d/([A-Za-z0-9_-]+)")


def spreadsheet_key(given: str) -> str:
    """A Google spreadsheet's key, from the key itself or its whole URL."""
    match = _SHEET_KEY.search(given)
    return match.group(1) if match else given.strip()


# --- canonical values ----------------------------------------------------------


def canonical(crm_field: CrmField, value: Any) -> Any:
    """One spelling per value, so a value read back compares equal to the one
    written whatever format the sink returned it in."""
    if value is None or value == "" or value == [] or value is False:
        return None
    kind = crm_field.type
    if kind in ("number", "currency", "percent"):
        try:
            return round(float(value), 6)
        except (TypeError, ValueError):
            return str(value).strip() or None
    if kind == "checkbox":
        return True if value in (True, "TRUE", "true", 1, "1", "✓") else None
    if kind == "datetime":
        return iso_time(value)
    if kind == "date":
        text = str(value).strip()
        return text[:10] or None
    if kind == "link" and isinstance(value, list):
        return value[0] if value else None
    if isinstance(value, dict):  # a formula's error or NaN
        return None
    text = str(value).strip()
    return text or None


def iso_time(value: Any) -> str | None:
    if isinstance(value, datetime):
        moment = value
    else:
        text = str(value).strip()
        if not text:
            return None
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return text
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def content_hash(values: Mapping[str, Any]) -> str:
    text = json.dumps(values, ensure_ascii=False, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


# --- desired rows from the ledger ----------------------------------------------

_MESSAGE_LIMIT = 20_000  # far under Airtable's 100k per cell and Sheets' 50k


def contact_values(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "contact_key": row["contact_key"], "name": row["name"],
        "phone": row["phone_display"] or row["phone"], "phone_e164": row["phone"],
        "email": row["email"], "company": row["company"], "legal_form": row["legal_form"],
        "position": row["position"], "city": row["city"], "source": row["source"],
        "first_seen": row["first_seen"], "last_seen": row["last_seen"],
        "leads_count": row["leads_count"], "segment": row["segment"],
        "merged_into": row["merged_into"],
        "status": row["status"], "owner": row["owner"], "notes": row["notes"],
    }


def lead_values(row: Mapping[str, Any]) -> dict[str, Any]:
    raw_source = json.loads(row["raw_source"] or "{}")
    return {
        "lead_id": row["lead_id"], "contact": row["contact_key"],
        "received_at": row["received_at"], "channel": row["channel"],
        "source": row["source"],
        "raw_source": "\n".join(f"{k}: {v}" for k, v in sorted(raw_source.items())),
        "name": row["name"], "phone": row["phone_display"] or row["phone"],
        "email": row["email"], "company": row["company"], "subject": row["subject"],
        "message": (row["message"] or "")[:_MESSAGE_LIMIT],
        "stage": row["stage"], "loss_reason": row["loss_reason"], "owner": row["owner"],
        "notes": row["notes"], "amount": row["amount"],
    }


def review_values(row: Mapping[str, Any], excerpt: str) -> dict[str, Any]:
    return {
        "item_id": row["item_id"], "source": row["source"], "kind": row["kind"],
        "received_at": row["received_at"], "state": row["state"], "reason": row["reason"],
        "excerpt": excerpt[:2000],
    }


PAIR_STATES = {"open": "ждёт решения", "same": "один человек", "different": "разные люди",
               "merged": "объединены"}


def pair_key(a: str, b: str) -> str:
    return f"{a}|{b}"


def pair_values(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "pair": pair_key(row["contact_a"], row["contact_b"]),
        "contact_a": row["contact_a"], "contact_b": row["contact_b"],
        "name_a": row["name_a"], "name_b": row["name_b"],
        "phone_a": row["phone_a"], "phone_b": row["phone_b"],
        "email_a": row["email_a"], "email_b": row["email_b"],
        "company_a": row["company_a"], "company_b": row["company_b"],
        "score": row["score"], "reasons": "\n".join(row["reasons"]),
        "state": PAIR_STATES.get(row["state"], row["state"]),
    }


def duplicate_decision(value: Any) -> str | None:
    """A person's choice in the Decision field: "same", "different" or None."""
    choice = _DECISION_WORDS.get(str(value or "").strip().lower())
    if choice is None:
        return None
    return "same" if choice == SAME_PERSON else "different"


def desired_row(table: CrmTable, values: Mapping[str, Any]) -> dict[str, Any]:
    """The canonical LeadHub-owned values of one row."""
    return {f.name: canonical(f, values.get(f.name)) for f in table.owned_by("leadhub")}


def initial_row(table: CrmTable, values: Mapping[str, Any]) -> dict[str, Any]:
    """The people-owned values a new row starts with: what the store already
    knows (an owner LeadHub assigned, a stage), else the field's default."""
    found = {}
    for f in table.owned_by("people"):
        value = canonical(f, values.get(f.name))
        if value is None and f.default is not None:
            value = canonical(f, f.default)
        if value is not None:
            found[f.name] = value
    return found


# LeadHub's fields a person may correct in the CRM, and whose corrections the
# store, the exports and the dashboard then show.
CORRECTABLE = {"contacts": ("name", "phone", "email", "company", "legal_form", "position",
                            "city"),
               "leads": ("name", "phone", "email", "company")}


def corrections(table: CrmTable, write: RowWrite | None, state: SyncState | None,
                remote: RemoteRow | None) -> dict[str, Any] | None:
    """What a person has corrected in a row just read: the fields that are
    theirs now, with their values (a field they emptied is theirs no more).
    None when the row was not read, or its table takes no corrections."""
    fields = CORRECTABLE.get(table.name)
    if not fields or remote is None:
        return None
    edited = write.state.edited if write else (state.edited if state else frozenset())
    return {name: remote.values[name] for name in fields
            if name in edited and remote.values.get(name) is not None}


# --- planning one row's write ------------------------------------------------

# The key, inside `written`, of a write sent but not confirmed; no field can be
# called so. It rides in the same stored value, so the store needs no column.
PENDING = "@pending"


@dataclass(frozen=True)
class SyncState:
    """What LeadHub wrote to one row of one sink.

    `written` is what the sink holds of LeadHub's fields as far as LeadHub
    knows. Before a write goes out, the values it sends are kept there under
    PENDING (see `RowWrite.intent`); its answer replaces them with the new
    `written`. A run killed in between leaves them, so the next run can tell
    its own write, applied but never confirmed, from a person's edit.
    """

    content_hash: str
    remote_id: str | None
    written: dict[str, Any]
    edited: frozenset[str] = frozenset()

    @property
    def confirmed(self) -> dict[str, Any]:
        """The values of the last write whose answer came back."""
        return {name: value for name, value in self.written.items() if name != PENDING}

    @property
    def pending(self) -> dict[str, Any] | None:
        """The values of a write sent without an answer recorded, if any."""
        return self.written.get(PENDING)


@dataclass(frozen=True)
class RemoteRow:
    """A row as read from the sink, in canonical values by field name (`key`
    is "" for a row a person typed), and when the sink says it was made."""

    remote_id: str
    key: str
    values: dict[str, Any]
    created_at: datetime | None = None


@dataclass(frozen=True)
class RowWrite:
    """Values to send for one row, the state to keep while they are on the
    way (`intent`, kept before the request), and the state to keep once they
    land."""

    key: str
    values: dict[str, Any]
    create: bool
    remote_id: str | None
    state: SyncState
    intent: SyncState
    # the row is known by its id only (a person's row LeadHub has not written
    # its key to yet): the sink writes it by id, not by key
    by_id: bool = False


def plan_row(
    table: CrmTable,
    desired: dict[str, Any],
    state: SyncState | None,
    remote: RemoteRow | None,
    *,
    gone: bool = False,
    initial: dict[str, Any] | None = None,
    same: Callable[[str, Any, Any], bool] | None = None,
) -> RowWrite | None:
    """What to write for one row, or None when the sink already holds it.

    `remote` is the row as just read (it changed since the last sync, or was
    never synced); None means it was not read because it did not change, so it
    still holds what LeadHub last confirmed: a write left pending by a killed
    run did not land. `gone` means a person deleted the row and it is to be
    created again. `initial`: the people-owned values a created row starts
    with. `same(field, a, b)`: whether two values are one (a phone written two
    ways is one number); plain equality without it.

    A value read back is LeadHub's when LeadHub wrote it, confirmed or pending;
    only a value that differs from both is a person's, and theirs from then on.
    """
    same = same or _equal
    digest = content_hash(desired)
    pending = state.pending if state else None
    if state and remote is None and not gone and pending is None and (
            state.content_hash == digest):
        return None
    never_landed = state is None or (pending is not None and state.remote_id is None)
    if gone or (remote is None and never_landed):
        return _creation(table, desired, digest, state, initial)
    written = state.confirmed if state else {}
    current = remote.values if remote else written
    edited = set(state.edited) if state else set()
    for name, value in current.items():
        if name in desired and value is not None and not _leadhubs(name, value, state, desired,
                                                                   same):
            edited.add(name)
    send = {}
    for name, value in desired.items():
        if name in edited and current.get(name) is not None:
            continue
        if current.get(name) != value:
            send[name] = value
    remote_id = remote.remote_id if remote else state.remote_id
    new_written = {**written, **{k: v for k, v in desired.items() if k not in edited}, **send}
    new_state = SyncState(digest, remote_id, new_written, frozenset(edited))
    # What the sink holds of LeadHub's before this write: the last confirmed
    # write, or what was just read (which settles a pending one).
    held = written
    if remote:
        held = {**written, **{k: current.get(k) for k in desired if k not in edited}}
    intent = SyncState(state.content_hash if state else "", remote_id,
                       {**held, PENDING: send}, frozenset(edited))
    by_id = bool(state and remote_id and not state.confirmed.get(table.key))
    return RowWrite(desired[table.key], send, False, remote_id, new_state, intent, by_id)


def _leadhubs(name: str, value: Any, state: SyncState | None, desired: dict[str, Any],
              same: Callable[[str, Any, Any], bool]) -> bool:
    """Whether a value read from the sink is one LeadHub wrote there (or the
    same value written another way). A row with no state (a person made it)
    holds LeadHub's value only where it is the desired one."""
    writes = (state.confirmed, state.pending or {}) if state else ()
    known = [values[name] for values in writes if name in values]
    if not known:
        return same(name, value, desired[name])
    return any(same(name, value, written) for written in known)


def _equal(_name: str, a: Any, b: Any) -> bool:
    return a == b


def same_values(table: CrmTable, region: str) -> Callable[[str, Any, Any], bool]:
    """Equality that takes one value written two ways for one (a person typed
    `8 912 345 67 89` where LeadHub shows `+7 (912) 345-67-89`, `мария
    соколова` for `Мария Соколова`): only a different value is their edit."""
    phones = {f.name for f in table.fields if f.type == "phone" or f.name == "phone_e164"}
    emails = {f.name for f in table.fields if f.type == "email"}

    def same(name: str, a: Any, b: Any) -> bool:
        if a == b or a is None or b is None:
            return a == b
        if name in phones:
            first, second = normalize_phone(str(a), region), normalize_phone(str(b), region)
            return first.valid and first.identity == second.identity
        if name in emails:
            return str(a).strip().lower() == str(b).strip().lower()
        if name == "name":
            first, second = normalize_name(str(a)), normalize_name(str(b))
            if first and second:
                return first == second
            # not read as a person's name (`Правка 1`): only case and spaces are no edit
            return " ".join(str(a).split()).casefold() == " ".join(str(b).split()).casefold()
        return False

    return same


def _creation(
    table: CrmTable, desired: dict[str, Any], digest: str, state: SyncState | None,
    initial: dict[str, Any] | None,
) -> RowWrite:
    defaults = initial if initial is not None else {
        f.name: canonical(f, f.default) for f in table.owned_by("people") if f.default is not None
    }
    values = {**{k: v for k, v in desired.items() if v is not None}, **defaults}
    values[table.key] = desired[table.key]
    new_state = SyncState(digest, None, dict(desired))
    intent = SyncState(state.content_hash if state else "", None, {PENDING: values})
    return RowWrite(desired[table.key], values, True, None, new_state, intent)


def people_values(table: CrmTable, remote: RemoteRow) -> dict[str, Any]:
    """The people-owned values of a row read back, for the ledger and reports."""
    return {f.name: remote.values.get(f.name) for f in table.owned_by("people")}
