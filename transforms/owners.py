"""Who works a new lead: the contact's owner when it has one, else the first
assignment rule that matches, else the team in turn (round robin)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class AssignmentRule:
    owner: str
    categories: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()

    def matches(self, category: str, source: str) -> bool:
        return bool(self.categories or self.sources) and (
            not self.categories or category in self.categories) and (
            not self.sources or source in self.sources)


@dataclass(frozen=True)
class Assignment:
    team: tuple[str, ...] = ()
    rules: tuple[AssignmentRule, ...] = field(default_factory=tuple)
    keep_contact_owner: bool = True
    round_robin: bool = True


def choose_owner(assignment: Assignment, category: str, source: str, contact_owner: str,
                 turn: int) -> tuple[str, int]:
    """The owner of a new lead, and the round-robin turn after it (unchanged
    unless the turn was used). `source` is the configured source it came
    through (a mailbox's, a form's, a files source's name)."""
    if assignment.keep_contact_owner and contact_owner:
        return contact_owner, turn
    for rule in assignment.rules:
        if rule.matches(category, source):
            return rule.owner, turn
    if assignment.round_robin and assignment.team:
        return assignment.team[turn % len(assignment.team)], turn + 1
    return "", turn


def assignment_of(team: Sequence[str], rules: Sequence[dict], keep_contact_owner: bool,
                  round_robin: bool) -> Assignment:
    return Assignment(tuple(team), tuple(
        AssignmentRule(rule["owner"], tuple(rule.get("categories", ())),
                       tuple(rule.get("sources", ()))) for rule in rules),
        keep_contact_owner, round_robin)
