"""Pair metrics of a clustering, checked by hand and against listing every pair."""

import random
from collections import Counter
from itertools import combinations

import pytest
from cluster_metrics import OTHER, missed_pairs_by_kind, pair_scores, wrong_pairs_by_kind

# Leads of persons a, a, b, c: b's lead lands in a's contact.
TRUTH = ["a", "a", "b", "c"]
ONE_WRONG_MERGE = [1, 1, 1, 2]


def test_a_perfect_clustering_scores_one():
    scores = pair_scores(["x", "x", "y", "z"], TRUTH)
    assert (scores.precision, scores.recall, scores.f1) == (1.0, 1.0, 1.0)
    assert (scores.wrong_pairs, scores.missed_pairs) == (0, 0)


def test_one_wrong_merge_counts_the_pairs_it_made():
    scores = pair_scores(ONE_WRONG_MERGE, TRUTH)
    assert scores.wrong_pairs == 2  # b's lead with each of a's two
    assert scores.precision == pytest.approx(1 / 3)
    assert scores.recall == 1.0
    assert scores.f1 == pytest.approx(0.5)


def test_a_split_person_counts_missed_pairs_by_kind():
    truth = ["a", "a", "a", "b"]
    predicted = [1, 1, 2, 3]
    scores = pair_scores(predicted, truth)
    missed = missed_pairs_by_kind(predicted, truth, lambda i, j: f"{i}-{j}")
    assert scores.missed_pairs == 2
    assert missed == Counter({"0-2": 1, "1-2": 1})


def test_wrong_pairs_go_to_the_first_kind_their_leads_share():
    kinds = [
        ("office line", ["line", "line", "line", None]),
        ("namesakes", ["Иван Петров", "Иван Петров", "Иван Петров", "Иван Петров"]),
    ]
    assert wrong_pairs_by_kind(ONE_WRONG_MERGE, TRUTH, kinds) == {
        "office line": 2,
        "namesakes": 0,
        OTHER: 0,
    }
    kinds[0] = ("office line", ["line", None, "line", None])
    assert wrong_pairs_by_kind(ONE_WRONG_MERGE, TRUTH, kinds) == {
        "office line": 1,
        "namesakes": 1,
        OTHER: 0,
    }


def brute_force_wrong_pairs(predicted, truth, kinds):
    counts = Counter({name: 0 for name, _ in kinds})
    counts[OTHER] = 0
    for i, j in combinations(range(len(truth)), 2):
        if predicted[i] != predicted[j] or truth[i] == truth[j]:
            continue
        shared = [name for name, keys in kinds if keys[i] is not None and keys[i] == keys[j]]
        counts[shared[0] if shared else OTHER] += 1
    return dict(counts)


@pytest.mark.parametrize("seed", range(5), ids=lambda seed: f"seed-{seed}")
def test_wrong_pairs_by_kind_equal_listing_every_pair(seed):
    rng = random.Random(seed)
    size = 80
    truth = [rng.randrange(25) for _ in range(size)]
    predicted = [rng.randrange(8) for _ in range(size)]
    kinds = [(f"kind {k}", [rng.choice([None, 0, 1, 2]) for _ in range(size)]) for k in range(4)]
    assert wrong_pairs_by_kind(predicted, truth, kinds) == brute_force_wrong_pairs(
        predicted, truth, kinds
    )
