"""The sales funnel from each lead's stage history: how far leads get, where
and why they are lost, how long each stage takes, what the open pipeline is
worth, and the same per manager.

A lead comes as a row with its current `stage`, `source`, `owner`, `amount`
(a Decimal, or None when nobody filled it), `loss_reason`, `contact_key` and
`history`: its stage changes in time order (`stage`, `reason`,
`changed_at`), empty for a lead from before the history was kept.

- A lead has *reached* every stage up to the furthest one in its history or
  its current stage (a lead moved from «Новый» straight to «КП отправлено»
  has reached the stages between). Stages compare case-insensitively with
  "ё" read as "е"; a stage outside the funnel does not move a lead, and a
  lead that never was at a known stage counts at the first.
- *Won*: the current stage is the last one. *Lost*: the current stage is
  the lost stage; it was lost at the last funnel stage it was in before,
  for its loss reason (the lead's, else the one given with the change).
  Everything else is *open*, at the last funnel stage it was in.
- A *stay* is the time from entering a stage to the next change; the median
  days in a stage is over the stays that ended (a lead still there is not
  counted yet). A stay is kept to the minute, so memory stays bounded.
- The *win rate* of a stage is how many of the closed leads (won or lost)
  that reached it were won. The forecast of a stage is the Amount of its
  open leads where filled × that rate, an exact Decimal; a stage no closed
  lead has passed yet forecasts 0.

One pass over the leads keeps counters per source, stage, reason and owner,
never a list per lead.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from transforms.bi import ZERO

Row = Mapping[str, Any]

FUNNEL_COLUMNS = ("source", "stage_order", "stage", "leads_reached", "conversion_from_previous",
                  "conversion_to_next", "conversion_to_won", "lost_at_stage",
                  "median_days_in_stage")
LOSS_COLUMNS = ("stage_order", "stage", "loss_reason", "leads", "share_of_lost")
FORECAST_COLUMNS = ("stage_order", "stage", "open_leads", "leads_with_amount", "open_amount",
                    "win_rate", "forecast")
MANAGER_COLUMNS = ("owner", "leads", "open", "won", "lost", "conversion", "revenue",
                   "forecast", "overdue_tasks")
ALL_SOURCES = "(all)"
CLIENT_STAGE = "client"
_MINUTES_PER_DAY = 24 * 60


@dataclass(frozen=True)
class FunnelRules:
    """`stages` in funnel order, the last one won; `lost_stage` is where a lost lead is."""

    stages: tuple[str, ...]
    lost_stage: str = "Отказ"
    _indexes: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.stages:
            raise ValueError("the funnel needs at least one stage")
        object.__setattr__(self, "_indexes",
                           {fold(stage): index for index, stage in enumerate(self.stages)})

    def index(self, stage: str) -> int | None:
        return self._indexes.get(fold(stage))

    @property
    def won(self) -> int:
        return len(self.stages) - 1

    def is_lost(self, stage: str) -> bool:
        return fold(stage) == fold(self.lost_stage)


@dataclass(frozen=True)
class Journey:
    """Where one lead got: `reached` and `at` are stage indexes (`at`: where
    it is open, or where it was lost); `stays` are (stage index, minutes)."""

    reached: int
    at: int
    outcome: str  # open | won | lost
    loss_reason: str = ""
    stays: tuple[tuple[int, int], ...] = ()


def fold(text: str) -> str:
    """How people's spellings of one stage compare: «Оплачен» is « оплачен »."""
    return (text or "").strip().casefold().replace("ё", "е")


def journey(lead: Row, rules: FunnelRules) -> Journey:
    history = lead.get("history") or ()
    known = [rules.index(change["stage"]) for change in history]
    current = rules.index(lead["stage"])
    reached = max((index for index in [*known, current] if index is not None), default=0)
    if current == rules.won:
        return Journey(rules.won, rules.won, "won", stays=_stays(history, known, rules))
    last_known = next((index for index in reversed(known) if index is not None), 0)
    if rules.is_lost(lead["stage"]):
        reason = lead.get("loss_reason") or _last_reason(history, rules)
        return Journey(reached, last_known, "lost", reason, _stays(history, known, rules))
    at = current if current is not None else last_known
    return Journey(reached, at, "open", stays=_stays(history, known, rules))


def _stays(history: Sequence[Row], known: list[int | None],
           rules: FunnelRules) -> tuple[tuple[int, int], ...]:
    stays = []
    for index, change, following in zip(known, history, history[1:], strict=False):
        if index is not None and index != rules.won:
            seconds = (following["changed_at"] - change["changed_at"]).total_seconds()
            stays.append((index, max(0, round(seconds / 60))))
    return tuple(stays)


def _last_reason(history: Sequence[Row], rules: FunnelRules) -> str:
    return next((change.get("reason") or "" for change in reversed(history)
                 if rules.is_lost(change["stage"])), "")


@dataclass
class _Group:
    """Counters of one source (or of all of them)."""

    stages: int
    reached: list[int] = field(default_factory=list)
    lost_at: list[int] = field(default_factory=list)
    stays: list[Counter[int]] = field(default_factory=list)
    won: int = 0
    clients: int = 0

    def __post_init__(self) -> None:
        self.reached = [0] * self.stages
        self.lost_at = [0] * self.stages
        self.stays = [Counter() for _ in range(self.stages)]

    def add(self, lead: Journey, is_client: bool) -> None:
        for index in range(lead.reached + 1):
            self.reached[index] += 1
        if lead.outcome == "lost":
            self.lost_at[lead.at] += 1
        self.won += lead.outcome == "won"
        self.clients += is_client
        for index, minutes in lead.stays:
            self.stays[index][minutes] += 1


@dataclass
class _Manager:
    leads: int = 0
    open: int = 0
    won: int = 0
    lost: int = 0
    revenue: Decimal = ZERO
    open_amounts: Counter[int] = field(default_factory=Counter)


@dataclass
class Funnel:
    """Everything the funnel, losses, forecast and managers tables are made of."""

    rules: FunnelRules
    everyone: _Group
    sources: dict[str, _Group]
    # lost leads that reached each stage (the win rate's closed leads with `won`)
    lost_reached: list[int]
    losses: Counter[tuple[int, str]]
    open_leads: list[int]
    with_amount: list[int]
    open_amount: list[Decimal]
    managers: dict[str, _Manager]

    def win_rate(self, index: int) -> tuple[int, int]:
        """(won, closed) among the leads that reached stage `index`."""
        won = self.everyone.won
        return won, won + self.lost_reached[index]


def analyse(leads: Iterable[Row], contacts_with_orders: Collection[str],
            rules: FunnelRules) -> Funnel:
    count = len(rules.stages)
    found = Funnel(rules, _Group(count), {}, [0] * count, Counter(), [0] * count, [0] * count,
                   [ZERO] * count, defaultdict(_Manager))
    for lead in leads:
        way = journey(lead, rules)
        is_client = lead["contact_key"] in contacts_with_orders
        found.everyone.add(way, is_client)
        found.sources.setdefault(lead["source"], _Group(count)).add(way, is_client)
        _count_outcome(found, way, lead)
    return found


def _count_outcome(found: Funnel, way: Journey, lead: Row) -> None:
    amount = lead.get("amount")
    manager = found.managers[lead.get("owner") or ""]
    manager.leads += 1
    if way.outcome == "lost":
        manager.lost += 1
        found.losses[(way.at, way.loss_reason)] += 1
        for index in range(way.reached + 1):
            found.lost_reached[index] += 1
    elif way.outcome == "won":
        manager.won += 1
        manager.revenue += amount or ZERO
    else:
        manager.open += 1
        found.open_leads[way.at] += 1
        if amount is not None:
            found.with_amount[way.at] += 1
            found.open_amount[way.at] += amount
            manager.open_amounts[way.at] += amount


def funnel_table(found: Funnel) -> list[dict]:
    """The funnel per source: the "(all)" group first, then sources by name.
    After the stages comes a "client" row: leads whose contact has an order,
    its conversion against all leads (the lead-to-client rate, right even
    when people do not move a buyer's lead to the last stage)."""
    groups = [(ALL_SOURCES, found.everyone)]
    groups += [(source, found.sources[source]) for source in sorted(found.sources)]
    return [row for source, group in groups
            for row in _group_rows(source, group, found.rules.stages)]


def _group_rows(source: str, group: _Group, stages: tuple[str, ...]) -> list[dict]:
    reached = group.reached
    rows = []
    for index, stage in enumerate(stages):
        last = index == len(stages) - 1
        rows.append({
            "source": source,
            "stage_order": index + 1,
            "stage": stage,
            "leads_reached": reached[index],
            "conversion_from_previous": _ratio(reached[index], reached[index - 1])
            if index else 1.0,
            "conversion_to_next": None if last else _ratio(reached[index + 1], reached[index]),
            "conversion_to_won": _ratio(group.won, reached[index]),
            "lost_at_stage": group.lost_at[index],
            "median_days_in_stage": None if last else _median_days(group.stays[index]),
        })
    rows.append({
        "source": source, "stage_order": len(stages) + 1, "stage": CLIENT_STAGE,
        "leads_reached": group.clients,
        "conversion_from_previous": _ratio(group.clients, reached[0]),
        "conversion_to_next": None, "conversion_to_won": None, "lost_at_stage": None,
        "median_days_in_stage": None,
    })
    return rows


def loss_rows(found: Funnel, reasons: Sequence[str] = ()) -> list[dict]:
    """Lost leads by the stage they were lost at and their reason, in funnel
    order, the configured reasons in their order, others by name, no reason last."""
    order = {fold(reason): place for place, reason in enumerate(reasons)}
    lost = found.losses.total()

    def place(key: tuple[int, str]) -> tuple:
        index, reason = key
        return index, not reason, order.get(fold(reason), len(order)), reason

    return [
        {"stage_order": index + 1, "stage": found.rules.stages[index], "loss_reason": reason,
         "leads": leads, "share_of_lost": _ratio(leads, lost)}
        for (index, reason), leads in sorted(found.losses.items(), key=lambda kv: place(kv[0]))
    ]


def forecast_rows(found: Funnel) -> list[dict]:
    """Every stage before the won one: its open leads, their Amount and what it is likely worth."""
    rows = []
    for index, stage in enumerate(found.rules.stages[:-1]):
        won, closed = found.win_rate(index)
        rows.append({
            "stage_order": index + 1, "stage": stage, "open_leads": found.open_leads[index],
            "leads_with_amount": found.with_amount[index],
            "open_amount": found.open_amount[index], "win_rate": _ratio(won, closed),
            "forecast": _weighted(found.open_amount[index], won, closed),
        })
    return rows


def manager_rows(found: Funnel, team: Sequence[str] = (),
                 overdue: Mapping[str, int] | None = None) -> list[dict]:
    """One row per owner: the team in its order (a member without leads too),
    then other owners people typed, by name, then leads without an owner ("")."""
    overdue = overdue or {}
    others = sorted((set(found.managers) | set(overdue)) - set(team) - {""})
    unassigned = [""] if "" in found.managers or "" in overdue else []
    rows = []
    for owner in [*team, *others, *unassigned]:
        manager = found.managers.get(owner, _Manager())
        rows.append({
            "owner": owner, "leads": manager.leads, "open": manager.open, "won": manager.won,
            "lost": manager.lost, "conversion": _ratio(manager.won, manager.leads),
            "revenue": manager.revenue,
            "forecast": sum((_weighted(amount, *found.win_rate(index))
                             for index, amount in manager.open_amounts.items()), ZERO),
            "overdue_tasks": overdue.get(owner, 0),
        })
    return rows


def overdue_by_owner(tasks: Iterable[Row], now: datetime) -> Counter[str]:
    """Open tasks due before `now`, per the owner they are for ("" for none)."""
    return Counter(task.get("assignee") or "" for task in tasks
                   if not task["done"] and task["due_at"] < now)


def _weighted(amount: Decimal, won: int, closed: int) -> Decimal:
    return amount * won / closed if closed else ZERO


def _median_days(stays: Counter[int]) -> float | None:
    """The median of stays kept as minutes -> how many, in days."""
    count = stays.total()
    if not count:
        return None
    middle = [(count - 1) // 2, count // 2]
    found: list[int] = []
    seen = 0
    for minutes in sorted(stays):
        seen += stays[minutes]
        while middle and middle[0] < seen:
            middle.pop(0)
            found.append(minutes)
    return sum(found) / len(found) / _MINUTES_PER_DAY


def _ratio(part: float, whole: float) -> float:
    return part / whole if whole else 0.0
