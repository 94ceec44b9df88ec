"""Contact matching quality: LeadHub against splink and the exact rule, same leads, same run.

The leads come from `benchmarks/leadgen.py` (realistic Russian lead data, the
person behind every lead kept; its docstring gives the shares and why). Each
matcher turns the same records into contacts; `cluster_metrics.py` scores them:
pairwise precision, recall and F1 over lead pairs, the wrongly merged pairs
(different people in one contact) by hard-negative kind and the missed pairs
(one person in several contacts) by hard-positive kind. Issue 12 is judged by
this table: LeadHub's F1 at least splink's, its wrongly merged pairs no more.

Matchers:

- `leadhub`: the pipeline as a library, `leadhub_clusters()`: every record
  through `transforms.normalize.normalize_lead` (the default settings' rules),
  then the contact book of `transforms/dedupe.py`.
- `splink`: splink 4 on DuckDB, offline, fed the fields LeadHub's normalizer
  produces (E.164 phone and its extension, lower-cased email, name, company
  without legal form), with the light cleaning its documentation recommends
  (lower case, ё as е, punctuation off). The model, as a user sets it up from
  splink's documentation (the "deduplicate 50k synthetic" example):
  - comparisons: name (null; exact on the sorted name words, term-frequency
    adjusted; two words in common; Jaro-Winkler >= 0.92; Levenshtein <= 2;
    one word in common; Jaro-Winkler >= 0.8; else), phone (null; the same
    E.164 number and extension; the same number with another or no
    extension; else), email (splink's `EmailComparison`: exact with term
    frequencies, exact user name, Jaro-Winkler 0.88 on the address and on the
    user name), company (null; exact, term-frequency adjusted; Jaro-Winkler
    >= 0.9; else). No term frequencies on the phone: most repeats of a phone
    are one person's repeat inquiries, which term frequencies mistake for a
    common value (splink issue 2035); with them splink's F1 here was about
    0.1 lower for a few fewer wrong merges;
  - blocking rules for predictions: same phone, same email, same email user
    name, same sorted name, a pair of name words in common, same company;
  - training: the prior from deterministic rules (same phone and extension;
    same email) with recall 0.7, u by random sampling (up to 10^6 pairs,
    seeded; 10^7 gave the same scores at six times the time), m by
    expectation maximisation blocked on phone, then on email, then on the
    sorted name;
  - clustering: connected components of pairs at match probability >= 0.95
    (`--splink-threshold`), the threshold splink's own examples use.
- `exact`: one contact per connected group of leads sharing an exact E.164
  phone or lower-cased email: the naive rule, for reference.

`--sizes` adds a second table: LeadHub's time per lead as the contact book
grows. For each size N it generates N people and their leads (the same
leads-per-person ratio as the defaults), lets LeadHub match all but the last
`--batch` leads (the book), and times the last batch, new people and repeat
customers as they come, against that book.

Run from the repository root (splink is a benchmark-only extra):

    .venv/bin/pip install -c constraints.txt -e '.[bench]'
    .venv/bin/python benchmarks/dedupe_quality.py
    .venv/bin/python benchmarks/dedupe_quality.py --people 30000 --leads 50000 --seed 7
    .venv/bin/python benchmarks/dedupe_quality.py --matchers leadhub --sizes 10000,100000
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from itertools import combinations

import phonenumbers
from bench_output import Report, positive
from cluster_metrics import (
    OTHER,
    PairScores,
    missed_pairs_by_kind,
    pair_scores,
    wrong_pairs_by_kind,
)
from leadgen import (
    DEFAULT_LEADS,
    DEFAULT_PEOPLE,
    DEFAULT_SEED,
    NEGATIVE_KINDS,
    POSITIVE_KINDS,
    LeadSet,
    generate,
    negative_keys,
    positive_kind,
)

from leadhub.settings import load_settings
from transforms.dedupe import ContactBook
from transforms.normalize import normalize_lead
from transforms.records import Lead, ParsedLead, Rejection

MATCHERS = ("leadhub", "splink", "exact")
DEFAULT_BATCH = 5_000
DEFAULT_SPLINK_THRESHOLD = 0.95
SPLINK_PRIOR_RECALL = 0.7
SPLINK_U_MAX_PAIRS = 1e6
SPLINK_SENSITIVITY_THRESHOLDS = (0.5, 0.8, 0.9, 0.99)
INSTALL_SPLINK = ".venv/bin/pip install -c constraints.txt -e '.[bench]'"


# --- LeadHub: the one place that says how LeadHub matches --------------------------------


def leadhub_clusters(
    records: Sequence[ParsedLead], on_matched: Callable[[int], None] | None = None
) -> list[Hashable]:
    """Each record's contact once all are matched; a rejected record is its own.

    To measure another resolver, change this function only: normalize the
    records, match them one by one in order (calling `on_matched(n)` after the
    n-th, the sizes table reads its clock there), and return each record's
    final contact id.
    """
    settings = load_settings()
    rules = settings.normalize_rules()
    leads = [normalize_lead(record, rules) for record in records]
    book = ContactBook(settings.identity_rules())
    keys: list[Hashable] = []
    for count, lead in enumerate(leads, start=1):
        keys.append(book.add(lead).contact_key if isinstance(lead, Lead) else ("rejected", count))
        if on_matched is not None:
            on_matched(count)
    merged_into = book.merged_into  # built once: the property builds it anew each time
    return [_final_contact(key, merged_into) for key in keys]


def _final_contact(key: Hashable, merged_into: dict[str, str]) -> Hashable:
    while key in merged_into:
        key = merged_into[key]
    return key


# --- the others, on LeadHub's normalized leads -------------------------------------------


def normalize_all(records: Sequence[ParsedLead]) -> list[Lead | Rejection]:
    rules = load_settings().normalize_rules()
    return [normalize_lead(record, rules) for record in records]


def exact_clusters(leads: Sequence[Lead | Rejection]) -> list[Hashable]:
    """Connected groups of leads that share an exact phone or email."""
    parent = list(range(len(leads)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first_with: dict[tuple[str, str], int] = {}
    for index, lead in enumerate(leads):
        if not isinstance(lead, Lead):
            continue
        for identity in (("phone", lead.phone if lead.phone_valid else ""), ("email", lead.email)):
            if not identity[1]:
                continue
            other = first_with.setdefault(identity, index)
            parent[root(index)] = root(other)
    return [root(i) for i in range(len(leads))]


@dataclass(frozen=True)
class SplinkRun:
    clusters: list[Hashable]  # at the chosen threshold
    at_other_thresholds: dict[float, list[Hashable]]
    version: str
    prior: float


def splink_clusters(
    records: Sequence[ParsedLead],
    leads: Sequence[Lead | Rejection],
    seed: int,
    threshold: float,
) -> SplinkRun:
    """Train, predict once, cluster at the threshold (and at the others, to show
    how much the result depends on it)."""
    import splink
    from splink import DuckDBAPI, Linker

    logging.getLogger("splink").setLevel(logging.ERROR)
    table = splink_table(records, leads)
    linker = Linker(table, splink_settings(), DuckDBAPI(), set_up_basic_logging=False)
    train_splink(linker, seed)
    thresholds = sorted({threshold, *SPLINK_SENSITIVITY_THRESHOLDS})
    predictions = linker.inference.predict(threshold_match_probability=thresholds[0])
    clusters = {}
    for at in thresholds:
        clustered = linker.clustering.cluster_pairwise_predictions_at_threshold(
            predictions, threshold_match_probability=at
        ).as_pandas_dataframe()
        cluster_of = dict(zip(clustered["unique_id"], clustered["cluster_id"], strict=True))
        clusters[at] = [cluster_of.get(i, ("rejected", i)) for i in range(len(leads))]
    return SplinkRun(
        clusters=clusters.pop(threshold),
        at_other_thresholds=clusters,
        version=splink.__version__,
        prior=linker.misc.save_model_to_json()["probability_two_random_records_match"],
    )


def splink_table(records: Sequence[ParsedLead], leads: Sequence[Lead | Rejection]):
    """One row per accepted lead: LeadHub's normalized fields, lightly cleaned."""
    import pandas

    rows = []
    for index, (record, lead) in enumerate(zip(records, leads, strict=True)):
        if not isinstance(lead, Lead):
            continue
        words = name_words(lead.name)
        long_words = sorted({w for w in words if len(w) > 1})
        phone = lead.phone if lead.phone_valid else None
        extension = phone_extension(record, phone) if phone else ""
        rows.append(
            {
                "unique_id": index,
                "name_sorted": " ".join(sorted(words)) or None,
                "name_words": long_words or None,
                "name_word_pairs": [" ".join(pair) for pair in combinations(long_words, 2)] or None,
                "phone": phone,
                "phone_line": f"{phone};{extension}" if phone else None,
                "email": lead.email or None,
                "email_user": lead.email.partition("@")[0] or None,
                "company": " ".join(name_words(lead.company)) or None,
            }
        )
    return pandas.DataFrame(rows)


def name_words(text: str) -> list[str]:
    return re.sub(r"[^\w]+|_", " ", text.lower().replace("ё", "е")).split()


def phone_extension(record: ParsedLead, e164: str) -> str:
    """The extension of the written phone that gave the lead its E.164 number."""
    for text in record.phones:
        try:
            number = phonenumbers.parse(text, "RU")
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164) == e164:
            return number.extension or ""
    return ""


def splink_settings():
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl
    from splink import SettingsCreator, block_on

    name = cl.CustomComparison(
        output_column_name="name",
        comparison_levels=[
            cll.NullLevel("name_sorted"),
            cll.ExactMatchLevel("name_sorted", term_frequency_adjustments=True),
            cll.ArrayIntersectLevel("name_words", min_intersection=2),
            cll.JaroWinklerLevel("name_sorted", 0.92),
            cll.LevenshteinLevel("name_sorted", 2),
            cll.ArrayIntersectLevel("name_words", min_intersection=1),
            cll.JaroWinklerLevel("name_sorted", 0.8),
            cll.ElseLevel(),
        ],
    )
    phone = cl.CustomComparison(
        output_column_name="phone",
        comparison_levels=[
            cll.NullLevel("phone"),
            cll.ExactMatchLevel("phone_line"),
            cll.ExactMatchLevel("phone").configure(label_for_charts="same number, other extension"),
            cll.ElseLevel(),
        ],
    )
    company = cl.CustomComparison(
        output_column_name="company",
        comparison_levels=[
            cll.NullLevel("company"),
            cll.ExactMatchLevel("company", term_frequency_adjustments=True),
            cll.JaroWinklerLevel("company", 0.9),
            cll.ElseLevel(),
        ],
    )
    return SettingsCreator(
        link_type="dedupe_only",
        comparisons=[name, phone, cl.EmailComparison("email"), company],
        blocking_rules_to_generate_predictions=[
            block_on("phone"),
            block_on("email"),
            block_on("email_user"),
            block_on("name_sorted"),
            block_on("name_word_pairs", arrays_to_explode=["name_word_pairs"]),
            block_on("company"),
        ],
        retain_matching_columns=False,
        retain_intermediate_calculation_columns=False,
    )


def train_splink(linker, seed: int) -> None:
    from splink import block_on

    training = linker.training
    training.estimate_probability_two_random_records_match(
        [block_on("phone_line"), block_on("email")], recall=SPLINK_PRIOR_RECALL
    )
    training.estimate_u_using_random_sampling(max_pairs=SPLINK_U_MAX_PAIRS, seed=seed)
    for rule in (block_on("phone"), block_on("email"), block_on("name_sorted")):
        training.estimate_parameters_using_expectation_maximisation(
            rule, estimate_without_term_frequencies=True
        )


def splink_missing() -> str | None:
    try:
        import splink  # noqa: F401
    except ImportError:
        return f"splink is not installed: {INSTALL_SPLINK}"
    return None


# --- one quality run ----------------------------------------------------------------------


@dataclass(frozen=True)
class MatcherResult:
    matcher: str
    clusters: list[Hashable]
    seconds: float
    scores: PairScores
    wrong: dict[str, int]
    missed: Counter[str]


def run_matchers(
    data: LeadSet, matchers: Sequence[str], seed: int, threshold: float
) -> tuple[list[MatcherResult], SplinkRun | None]:
    """Every matcher on the same records; the normalize time is shared by the
    two that start from LeadHub's normalized leads and added to theirs."""
    results, splink_run = [], None
    normalize_started = time.perf_counter()
    leads = normalize_all(data.records) if {"splink", "exact"} & set(matchers) else []
    normalize_seconds = time.perf_counter() - normalize_started
    for matcher in matchers:
        started = time.perf_counter()
        if matcher == "leadhub":
            clusters = leadhub_clusters(data.records)
        elif matcher == "exact":
            clusters = exact_clusters(leads)
        else:
            splink_run = splink_clusters(data.records, leads, seed, threshold)
            clusters = splink_run.clusters
        seconds = time.perf_counter() - started
        if matcher != "leadhub":
            seconds += normalize_seconds
        results.append(score(matcher, clusters, seconds, data))
    return results, splink_run


def score(matcher: str, clusters: list[Hashable], seconds: float, data: LeadSet) -> MatcherResult:
    truth = data.person_ids
    return MatcherResult(
        matcher=matcher,
        clusters=clusters,
        seconds=seconds,
        scores=pair_scores(clusters, truth),
        wrong=wrong_pairs_by_kind(clusters, truth, negative_keys(data)),
        missed=missed_pairs_by_kind(clusters, truth, lambda a, b: positive_kind(data, a, b)),
    )


def in_the_data(data: LeadSet) -> tuple[dict[str, int], Counter[str]]:
    """Every pair at stake: all leads in one contact, and each lead alone."""
    truth = data.person_ids
    everything = [0] * len(truth)
    alone = list(range(len(truth)))
    negatives = wrong_pairs_by_kind(everything, truth, negative_keys(data))
    positives = missed_pairs_by_kind(alone, truth, lambda a, b: positive_kind(data, a, b))
    return negatives, positives


# --- the sizes table ----------------------------------------------------------------------


@dataclass(frozen=True)
class SizeResult:
    people: int
    book_leads: int
    book_contacts: int
    batch: int
    batch_seconds: float
    total_seconds: float
    scores: PairScores
    batch_comparisons: int


def run_size(people: int, batch: int, seed: int) -> SizeResult:
    started = time.perf_counter()
    leads = round(people * DEFAULT_LEADS / DEFAULT_PEOPLE) + batch
    data = generate(people=people, leads=leads, seed=seed)
    records = data.records
    book_leads = len(records) - batch
    clock: dict[int, float] = {}
    compared = Counter()
    compare_with = ContactBook.compare_with

    def counted(book: ContactBook, evidence, key: str):
        compared["all"] += 1
        return compare_with(book, evidence, key)

    def on_matched(count: int) -> None:
        if count in (book_leads, len(records)):
            clock[count] = time.perf_counter()
            compared[count] = compared["all"]

    # the comparisons made, the machine-independent cost of a lead
    ContactBook.compare_with = counted
    try:
        clusters = leadhub_clusters(records, on_matched)
    finally:
        ContactBook.compare_with = compare_with
    return SizeResult(
        people=people,
        book_leads=book_leads,
        book_contacts=len(set(clusters[:book_leads])),
        batch=batch,
        batch_seconds=clock[len(records)] - clock[book_leads],
        total_seconds=time.perf_counter() - started,
        scores=pair_scores(clusters, data.person_ids),
        batch_comparisons=compared[len(records)] - compared[book_leads],
    )


# --- output -------------------------------------------------------------------------------

QUALITY_COLUMNS = (
    "matcher",
    "leads",
    "people",
    "contacts",
    "precision",
    "recall",
    "F1",
    "wrongly merged pairs",
    "missed pairs",
    "seconds",
    "leads/s",
)
SIZE_COLUMNS = (
    "people",
    "book leads",
    "book contacts",
    "batch",
    "comparisons per lead",
    "µs per lead",
    "batch leads/s",
    "vs smallest",
    "whole run s",
    "F1",
    "wrongly merged pairs",
)


def quality_row(result: MatcherResult, data: LeadSet) -> list[str]:
    scores = result.scores
    return [
        result.matcher,
        f"{len(data.records):,}",
        f"{data.people_with_leads:,}",
        f"{len(set(result.clusters)):,}",
        f"{scores.precision:.4f}",
        f"{scores.recall:.4f}",
        f"{scores.f1:.4f}",
        f"{scores.wrong_pairs:,}",
        f"{scores.missed_pairs:,}",
        f"{result.seconds:,.1f}",
        f"{len(data.records) / result.seconds:,.0f}",
    ]


def kind_rows(
    kinds: Sequence[str], in_data: dict[str, int], per_matcher: Sequence[dict[str, int]]
) -> list[list[str]]:
    return [
        [kind, f"{in_data.get(kind, 0):,}", *(f"{counts.get(kind, 0):,}" for counts in per_matcher)]
        for kind in (*kinds, OTHER)
    ]


SENSITIVITY_COLUMNS = (
    "match probability >=",
    "precision",
    "recall",
    "F1",
    "wrongly merged pairs",
    "missed pairs",
    "leadhub meets the bar",
)


def sensitivity_rows(run: SplinkRun, data: LeadSet, leadhub: PairScores | None) -> list[list[str]]:
    rows = []
    for threshold, clusters in sorted(run.at_other_thresholds.items()):
        scores = pair_scores(clusters, data.person_ids)
        meets = "-"
        if leadhub is not None:
            better = leadhub.f1 >= scores.f1 and leadhub.wrong_pairs <= scores.wrong_pairs
            meets = "yes" if better else "no"
        rows.append(
            [
                f"{threshold}",
                f"{scores.precision:.4f}",
                f"{scores.recall:.4f}",
                f"{scores.f1:.4f}",
                f"{scores.wrong_pairs:,}",
                f"{scores.missed_pairs:,}",
                meets,
            ]
        )
    return rows


def size_rows(results: Sequence[SizeResult]) -> list[list[str]]:
    smallest = results[0].batch_seconds / results[0].batch
    rows = []
    for result in results:
        per_lead = result.batch_seconds / result.batch
        rows.append(
            [
                f"{result.people:,}",
                f"{result.book_leads:,}",
                f"{result.book_contacts:,}",
                f"{result.batch:,}",
                f"{result.batch_comparisons / result.batch:.2f}",
                f"{per_lead * 1e6:,.1f}",
                f"{result.batch / result.batch_seconds:,.0f}",
                f"{per_lead / smallest:.2f}x",
                f"{result.total_seconds:,.1f}",
                f"{result.scores.f1:.4f}",
                f"{result.scores.wrong_pairs:,}",
            ]
        )
    return rows


def data_summary(data: LeadSet) -> str:
    facts = data.facts
    phone_only = sum(1 for f in facts if f.has_phone and not f.has_email)
    email_only = sum(1 for f in facts if f.has_email and not f.has_phone)
    both = sum(1 for f in facts if f.has_email and f.has_phone)
    shared = Counter()
    for kind, getter in (
        ("office lines", lambda p: p.used_office_line),
        ("family mailboxes", lambda p: p.used_family_mailbox),
        ("role mailboxes", lambda p: p.used_role_mailbox),
    ):
        users = Counter(getter(p) for p in data.persons if getter(p) is not None)
        shared[kind] = sum(1 for n in users.values() if n > 1)
    return (
        f"Data: {len(facts):,} leads from {data.people_with_leads:,} people; phone only "
        f"{phone_only:,}, email only {email_only:,}, both {both:,}, neither valid "
        f"{len(facts) - phone_only - email_only - both:,}; written by several people: "
        + ", ".join(f"{count:,} {kind}" for kind, count in shared.items())
        + "; "
        + ", ".join(f"{kind} {count:,}" for kind, count in sorted(data.events.items()))
    )


def bar_verdict(leadhub: PairScores, splink: PairScores, threshold: float) -> str:
    """Issue 12's bar, in the same run."""
    meets = leadhub.f1 >= splink.f1 and leadhub.wrong_pairs <= splink.wrong_pairs
    return (
        f"Issue 12's bar (F1 at least splink's, wrongly merged pairs no more; splink at "
        f"{threshold}): {'met' if meets else 'NOT met'}: F1 {leadhub.f1:.4f} vs {splink.f1:.4f}, "
        f"wrongly merged pairs {leadhub.wrong_pairs:,} vs {splink.wrong_pairs:,}."
    )


def model_lines(threshold: float) -> list[str]:
    return [
        "splink model: comparisons name (null / exact sorted words, tf / 2 words in common / "
        "JW>=0.92 / Lev<=2 / 1 word in common / JW>=0.8 / else), phone (null / same E.164 and "
        "extension / same number other extension / else), email (EmailComparison), company "
        "(null / exact, tf / JW>=0.9 / else).",
        "splink blocking: phone; email; email user name; sorted name; a pair of name words; "
        f"company. Training: prior from same phone+extension or same email at recall "
        f"{SPLINK_PRIOR_RECALL}; u by random sampling (max {SPLINK_U_MAX_PAIRS:.0e} pairs); "
        f"m by EM blocked on phone, email, sorted name. Clusters at match probability >= "
        f"{threshold}.",
    ]


def footnotes() -> list[str]:
    return [
        "Pairs are pairs of leads: wrongly merged = different people in one contact (precision), "
        "missed = one person in several contacts (recall). A rejected lead is a contact alone.",
        "seconds: from the parsed records to contacts; leadhub includes its own normalization, "
        "splink and exact include the one shared normalize pass they start from.",
        "By kind: a pair counts under the first kind that holds, in the order listed; "
        "'in the data' is every pair of that kind there is.",
    ]


# --- entry point --------------------------------------------------------------------------


def parse_matchers(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in MATCHERS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown matcher {', '.join(unknown) or text!r}; choose from {', '.join(MATCHERS)}"
        )
    return names


def parse_sizes(text: str) -> list[int]:
    return [positive(part) for part in text.split(",") if part.strip()]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed")
    parser.add_argument("--people", type=positive, default=DEFAULT_PEOPLE, help="people")
    parser.add_argument("--leads", type=positive, default=DEFAULT_LEADS, help="leads they write")
    parser.add_argument(
        "--matchers",
        type=parse_matchers,
        default=list(MATCHERS),
        help=f"comma-separated, from {','.join(MATCHERS)} (default all)",
    )
    parser.add_argument(
        "--sizes",
        type=parse_sizes,
        default=[],
        help="also time LeadHub per lead against books of these many people, e.g. 10000,100000",
    )
    parser.add_argument(
        "--batch", type=positive, default=DEFAULT_BATCH, help="leads timed per size"
    )
    parser.add_argument(
        "--splink-threshold",
        type=float,
        default=DEFAULT_SPLINK_THRESHOLD,
        help="match probability at which splink's pairs join a cluster",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if "splink" in args.matchers and (problem := splink_missing()):
        print(problem, file=sys.stderr)
        return 2
    report = Report()
    report.line(f"CPU count: {os.cpu_count()}; Python {platform.python_version()}")
    report.line(f"Seed {args.seed}; {args.people:,} people, {args.leads:,} leads")
    started = time.perf_counter()
    data = generate(people=args.people, leads=args.leads, seed=args.seed)
    report.line(f"Generated in {time.perf_counter() - started:.1f} s. {data_summary(data)}")
    results, splink_run = run_matchers(data, args.matchers, args.seed, args.splink_threshold)
    negatives, positives = in_the_data(data)
    names = [result.matcher for result in results]
    rows = [quality_row(result, data) for result in results]
    report.table("Matching quality", QUALITY_COLUMNS, rows, left=("matcher",))
    report.table(
        "Wrongly merged pairs by kind",
        ("kind", "in the data", *names),
        kind_rows(NEGATIVE_KINDS, negatives, [r.wrong for r in results]),
        left=("kind",),
    )
    report.table(
        "Missed pairs by kind",
        ("kind", "in the data", *names),
        kind_rows(POSITIVE_KINDS, positives, [r.missed for r in results]),
        left=("kind",),
    )
    by_name = {result.matcher: result.scores for result in results}
    if "leadhub" in by_name and "splink" in by_name:
        report.line(bar_verdict(by_name["leadhub"], by_name["splink"], args.splink_threshold))
    if splink_run is not None:
        leadhub = by_name.get("leadhub")
        report.table(
            f"splink {splink_run.version} at other thresholds (same model and predictions)",
            SENSITIVITY_COLUMNS,
            sensitivity_rows(splink_run, data, leadhub),
        )
        report.line(f"splink trained prior (two random leads match): {splink_run.prior:.2e}")
        for line in model_lines(args.splink_threshold):
            report.line(line)
    for note in footnotes():
        report.line(note)
    if args.sizes:
        sizes = [run_size(people, args.batch, args.seed) for people in args.sizes]
        report.table("LeadHub: time per lead as the book grows", SIZE_COLUMNS, size_rows(sizes))
        report.line(
            "µs per lead: the last --batch leads matched against a book of the leads before "
            "them (normalization done beforehand, not timed); whole run: generation, "
            "normalization and matching. F1 and wrongly merged pairs: all the run's leads, "
            "as in the first table."
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
