"""Pairwise quality of a clustering of leads against the people who wrote them.

A pair of leads is "predicted same" when the matcher put both in one contact,
"truly same" when one person wrote both. Precision, recall and F1 are over
those pairs. Everything is counted from the sizes of groups (contact, person,
contact and person, ...), never by listing pairs, so a million leads is a few
passes over a list, however badly a matcher merges.

- A wrongly merged pair: two leads of different people in one contact. They
  are told apart by kind: the first kind whose key both leads share (keys are
  given per lead, None for "has none"; colleagues behind one office line,
  namesakes, ...), "other" for the rest. Counted by inclusion-exclusion over
  the kinds before it, from group sizes again.
- A missed pair: two leads of one person in different contacts. The kind of
  each is asked of a callback: a person writes at most a few dozen leads, so
  the pairs within one split person are few.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from itertools import combinations

OTHER = "other"

KeyedKinds = Sequence[tuple[str, Sequence[Hashable | None]]]


@dataclass(frozen=True)
class PairScores:
    true_pairs: int
    predicted_pairs: int
    correct_pairs: int

    @property
    def precision(self) -> float:
        return self.correct_pairs / self.predicted_pairs if self.predicted_pairs else 1.0

    @property
    def recall(self) -> float:
        return self.correct_pairs / self.true_pairs if self.true_pairs else 1.0

    @property
    def f1(self) -> float:
        total = self.precision + self.recall
        return 2 * self.precision * self.recall / total if total else 0.0

    @property
    def wrong_pairs(self) -> int:
        """Pairs of different people put in one contact."""
        return self.predicted_pairs - self.correct_pairs

    @property
    def missed_pairs(self) -> int:
        """Pairs of one person's leads left in different contacts."""
        return self.true_pairs - self.correct_pairs


def pairs(count: int) -> int:
    return count * (count - 1) // 2


def pair_scores(predicted: Sequence[Hashable], truth: Sequence[Hashable]) -> PairScores:
    if len(predicted) != len(truth):
        raise ValueError(f"{len(predicted)} cluster ids for {len(truth)} leads")
    return PairScores(
        true_pairs=sum(map(pairs, Counter(truth).values())),
        predicted_pairs=sum(map(pairs, Counter(predicted).values())),
        correct_pairs=sum(map(pairs, Counter(zip(predicted, truth, strict=True)).values())),
    )


def wrong_pairs_by_kind(
    predicted: Sequence[Hashable], truth: Sequence[Hashable], kinds: KeyedKinds
) -> dict[str, int]:
    """Wrongly merged pairs by the first kind whose key both leads share."""
    mixed = _leads_in_mixed_clusters(predicted, truth)
    keys = [list(key_per_lead) for _, key_per_lead in kinds]
    having = [[i for i in mixed if key_per_lead[i] is not None] for key_per_lead in keys]
    counts: dict[str, int] = {}
    for index, (name, _) in enumerate(kinds):
        first_of_kind = 0
        for size in range(index + 1):
            sign = -1 if size % 2 else 1
            for earlier in combinations(range(index), size):
                chosen = (*earlier, index)
                leads = min((having[k] for k in chosen), key=len)
                first_of_kind += sign * _shared_wrong(
                    leads, predicted, truth, [keys[k] for k in chosen]
                )
        counts[name] = first_of_kind
    total = sum(pairs(n) for n in Counter(predicted[i] for i in mixed).values())
    total -= sum(pairs(n) for n in Counter((predicted[i], truth[i]) for i in mixed).values())
    counts[OTHER] = total - sum(counts.values())
    return counts


def _leads_in_mixed_clusters(predicted: Sequence[Hashable], truth: Sequence[Hashable]) -> list[int]:
    """Only clusters holding several people can hold a wrong pair."""
    people: dict[Hashable, set[Hashable]] = defaultdict(set)
    for cluster, person in zip(predicted, truth, strict=True):
        people[cluster].add(person)
    return [i for i, cluster in enumerate(predicted) if len(people[cluster]) > 1]


def _shared_wrong(
    leads: Sequence[int],
    predicted: Sequence[Hashable],
    truth: Sequence[Hashable],
    keys: Sequence[Sequence[Hashable | None]],
) -> int:
    """Pairs of different people in one cluster that share every one of `keys`."""
    groups: Counter = Counter()
    same_person: Counter = Counter()
    for i in leads:
        shared = tuple(key_per_lead[i] for key_per_lead in keys)
        if None in shared:
            continue
        groups[(predicted[i], shared)] += 1
        same_person[(predicted[i], shared, truth[i])] += 1
    return sum(map(pairs, groups.values())) - sum(map(pairs, same_person.values()))


def missed_pairs_by_kind(
    predicted: Sequence[Hashable],
    truth: Sequence[Hashable],
    kind_of: Callable[[int, int], str],
) -> Counter[str]:
    """Pairs of one person's leads in different clusters, by `kind_of(first, second)`."""
    leads_of: dict[Hashable, list[int]] = defaultdict(list)
    for index, person in enumerate(truth):
        leads_of[person].append(index)
    missed: Counter[str] = Counter()
    for leads in leads_of.values():
        if len({predicted[i] for i in leads}) < 2:
            continue
        for first, second in combinations(leads, 2):
            if predicted[first] != predicted[second]:
                missed[kind_of(first, second)] += 1
    return missed
