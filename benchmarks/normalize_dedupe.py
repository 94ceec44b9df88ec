"""Normalize + exact dedupe on synthetic Russian leads: speed, memory, accuracy.

For each size N it measures:

- normalize throughput: records/s through `transforms.normalize.normalize_lead`;
- dedupe throughput: records/s through `ContactBook.add`, one call per lead;
- peak memory: the `tracemalloc` peak of the allocations made by
  normalize + dedupe (the generated input is not counted). tracemalloc slows
  Python down (about 4x), so this is a separate, untimed pass over the same
  records, run only for sizes up to `--memory-up-to` (default 100,000);
- pairwise precision/recall of the contacts against the generator's truth:
  two records are "predicted same" when they end in the same contact (merges
  followed through `ContactBook.merged_into`), "truly same" when they come
  from the same generated person. Computed from the contingency counts of
  (contact, person), never by enumerating pairs.

The data (seeded, deterministic for a given Faker version): Faker `ru_RU`
people, each with a name, a unique valid mobile (+7 912/916/903/925/999/985/977
and 7 digits), an email for about 70% and a company for about 40% (`ООО «…»`,
`ИП …`, `АО "…"`). About 30% of the records are repeat inquiries of an earlier
person, who writes the same phone in a different format (`8 912 345-67-89`,
`+7(912)3456789`, `79123456789`, ...) and the same email in a different case
with spaces around. Of the repeats (`REPEAT_MIX`):

- 45% give the phone and the email, 25% only the phone, 24% only the email
  (people without an email give only the phone instead of the email kinds);
- 3% give only a second address of the person's, one the book has not seen:
  exact dedupe cannot tell it is the same person, so these make recall < 1
  on purpose;
- 3% give the phone and that second address: when a second-address-only
  record came earlier, this one joins the two contacts (a merge) and recall
  recovers for that person.

Every person's phone and addresses are unique, so precision is 1.0 unless
the dedupe joins people that the data keeps apart.

Run from the repository root:

    .venv/bin/python benchmarks/normalize_dedupe.py
    .venv/bin/python benchmarks/normalize_dedupe.py --sizes 10000,100000 --seed 7
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import time
import tracemalloc
from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from bench_output import Report
from faker import Faker

from leadhub.settings import load_settings
from transforms.dedupe import ContactBook
from transforms.normalize import NormalizeRules, normalize_lead
from transforms.records import Channel, Lead, ParsedLead

DEFAULT_SIZES = "10000,100000,1000000"
DEFAULT_SEED = 20240601
# tracemalloc makes normalize about 4x slower: 1M records would take ~25 minutes.
DEFAULT_MEMORY_UP_TO = 100_000

MOBILE_PREFIXES = ("912", "916", "903", "925", "999", "985", "977")
# The ways people write one mobile; {a} area code, then 3 + 2 + 2 digits.
PHONE_FORMATS = (
    "8 {a} {b}-{c}-{d}",
    "+7({a}){b}{c}{d}",
    "7{a}{b}{c}{d}",
    "8({a}){b} {c} {d}",
    "+7 {a} {b} {c} {d}",
    "8{a}{b}{c}{d}",
)
CHANNELS: tuple[Channel, ...] = ("email", "form", "import")
# Read-only and shared between records: normalize_lead copies raw_source.
RAW_SOURCES: tuple[dict[str, str], ...] = (
    {},
    {"utm_source": "yandex", "utm_medium": "cpc"},
    {"utm_source": "vk"},
    {"source": "по рекомендации"},
    {"source": "Авито"},
    {"form": "callback"},
)
FREE_EMAIL_DOMAINS = ("mail.ru", "yandex.ru", "gmail.com", "rambler.ru", "bk.ru", "list.ru")
WORK_EMAIL_TLDS = ("ru", "com", "su", "net")

REPEAT_SHARE = 0.30
EMAIL_SHARE = 0.70
COMPANY_SHARE = 0.40
REPEAT_MIX = {
    "phone_and_email": 0.45,
    "phone_only": 0.25,
    "email_only": 0.24,
    "second_email_only": 0.03,  # unmatchable by exact dedupe until linked
    "phone_and_second_email": 0.03,  # links the second address, may merge
}
NEEDS_EMAIL = {"phone_and_email", "email_only"}

NAME_PART_POOL = 2_000
LOGIN_POOL = 20_000
COMPANY_POOL = 20_000
WORK_DOMAIN_POOL = 2_000
START_TIME = datetime(2024, 1, 1, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class FakerPools:
    """Faker output made once and combined per person: 1M Faker calls are slow."""

    male_names: tuple[list[str], list[str], list[str]]  # first, last, middle
    female_names: tuple[list[str], list[str], list[str]]
    logins: list[str]
    companies: list[str]
    work_domains: list[str]


@dataclass(slots=True)
class Person:
    person_id: int
    name: str
    phone_digits: str  # the 10-digit national number, e.g. 9123456789
    first_phone_format: int
    email: str
    company: str
    second_email: str = ""


@dataclass
class SyntheticLeads:
    records: list[ParsedLead]
    person_ids: list[int]  # the ground truth, one per record
    persons: int
    kinds: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class Timings:
    normalize_seconds: float
    dedupe_seconds: float


@dataclass(frozen=True)
class PairScores:
    precision: float
    recall: float
    split_persons: int  # persons spread over more than one contact
    mixed_contacts: int  # contacts holding more than one person


@dataclass(frozen=True)
class SizeResult:
    records: int
    generate_seconds: float
    timings: Timings
    peak_mib: float | None
    scores: PairScores
    contacts: int
    persons: int
    merges: int
    rejected: int
    kinds: Counter[str]
    wall_seconds: float


# --- synthetic data -------------------------------------------------------------


def build_pools(seed: int) -> FakerPools:
    fake = Faker("ru_RU")
    fake.seed_instance(seed)
    male = (
        [fake.first_name_male() for _ in range(NAME_PART_POOL)],
        [fake.last_name_male() for _ in range(NAME_PART_POOL)],
        [fake.middle_name_male() for _ in range(NAME_PART_POOL)],
    )
    female = (
        [fake.first_name_female() for _ in range(NAME_PART_POOL)],
        [fake.last_name_female() for _ in range(NAME_PART_POOL)],
        [fake.middle_name_female() for _ in range(NAME_PART_POOL)],
    )
    return FakerPools(
        male_names=male,
        female_names=female,
        logins=[fake.user_name() for _ in range(LOGIN_POOL)],
        companies=[company_base_name(fake) for _ in range(COMPANY_POOL)],
        work_domains=[fake.domain_word() for _ in range(WORK_DOMAIN_POOL)],
    )


def company_base_name(fake: Faker) -> str:
    """`Ромашка`, `Иванов и партнеры`: the name without a legal form."""
    if fake.random.random() < 0.5:
        return fake.word().capitalize()
    return f"{fake.last_name()} {fake.company_suffix()}"


def person_name(pools: FakerPools, rng: random.Random) -> tuple[str, str]:
    """(`Иван Петров` or `Петров Иван Сергеевич`, `Петров И. С.` for an ИП)."""
    first_names, last_names, middle_names = (
        pools.male_names if rng.random() < 0.5 else pools.female_names
    )
    first, last, middle = (rng.choice(names) for names in (first_names, last_names, middle_names))
    sole_trader = f"{last} {first[0]}. {middle[0]}."
    if rng.random() < 0.6:
        return f"{first} {last}", sole_trader
    return f"{last} {first} {middle}", sole_trader


def company_with_legal_form(pools: FakerPools, sole_trader: str, rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.5:
        return f"ООО «{rng.choice(pools.companies)}»"
    if roll < 0.8:
        return f"ИП {sole_trader}"
    return f'АО "{rng.choice(pools.companies)}"'


def unique_phone(used: set[str], rng: random.Random) -> str:
    while True:
        digits = rng.choice(MOBILE_PREFIXES) + f"{rng.randrange(10_000_000):07d}"
        if digits not in used:
            used.add(digits)
            return digits


def unique_email(login: str, domain: str, used: set[str], rng: random.Random) -> str:
    email = f"{login}@{domain}"
    while email in used:
        email = f"{login}{rng.randrange(1, 100_000)}@{domain}"
    used.add(email)
    return email


def written_phone(digits: str, format_index: int) -> str:
    a, b, c, d = digits[:3], digits[3:6], digits[6:8], digits[8:]
    return PHONE_FORMATS[format_index].format(a=a, b=b, c=c, d=d)


def other_phone_format(first_format: int, rng: random.Random) -> int:
    return rng.choice([i for i in range(len(PHONE_FORMATS)) if i != first_format])


def recased_email(email: str, rng: random.Random) -> str:
    """The same address in another letter case, with spaces around."""
    style = rng.randrange(3)
    if style == 0:
        text = email.upper()
    elif style == 1:
        text = email.capitalize()
    else:
        text = "".join(ch.upper() if rng.random() < 0.5 else ch for ch in email)
    return " " * rng.randint(1, 3) + text + " " * rng.randint(0, 2)


def new_person(
    person_id: int,
    pools: FakerPools,
    used_phones: set[str],
    used_emails: set[str],
    rng: random.Random,
) -> Person:
    name, sole_trader = person_name(pools, rng)
    email = ""
    if rng.random() < EMAIL_SHARE:
        domain = rng.choice(FREE_EMAIL_DOMAINS)
        email = unique_email(rng.choice(pools.logins), domain, used_emails, rng)
    company = ""
    if rng.random() < COMPANY_SHARE:
        company = company_with_legal_form(pools, sole_trader, rng)
    return Person(
        person_id=person_id,
        name=name,
        phone_digits=unique_phone(used_phones, rng),
        first_phone_format=rng.randrange(len(PHONE_FORMATS)),
        email=email,
        company=company,
    )


def second_email_of(
    person: Person, pools: FakerPools, used_emails: set[str], rng: random.Random
) -> str:
    """A work address the person has not used before; made on first use."""
    if not person.second_email:
        domain = f"{rng.choice(pools.work_domains)}.{rng.choice(WORK_EMAIL_TLDS)}"
        person.second_email = unique_email(rng.choice(pools.logins), domain, used_emails, rng)
    return person.second_email


def repeat_kind(person: Person, rng: random.Random) -> str:
    kind = rng.choices(list(REPEAT_MIX), weights=list(REPEAT_MIX.values()))[0]
    if kind in NEEDS_EMAIL and not person.email:
        return "phone_only"
    return kind


def repeat_contacts(
    person: Person,
    kind: str,
    pools: FakerPools,
    used_emails: set[str],
    rng: random.Random,
) -> tuple[list[str], list[str]]:
    """The phones and emails a repeat inquiry of `person` writes."""
    phone = written_phone(person.phone_digits, other_phone_format(person.first_phone_format, rng))
    if kind == "phone_only":
        return [phone], []
    if kind == "email_only":
        return [], [recased_email(person.email, rng)]
    if kind == "phone_and_email":
        return [phone], [recased_email(person.email, rng)]
    second = second_email_of(person, pools, used_emails, rng)
    if kind == "second_email_only":
        return [], [second]
    return [phone], [recased_email(second, rng)]


def repeated_name(name: str, rng: random.Random) -> str:
    """People type their name differently each time; normalize evens it out."""
    roll = rng.random()
    if roll < 0.1:
        return name.lower()
    if roll < 0.15:
        return f"  {name.upper()} "
    return name


def generate_leads(size: int, seed: int, pools: FakerPools) -> SyntheticLeads:
    rng = random.Random(seed)
    persons: list[Person] = []
    used_phones: set[str] = set()
    used_emails: set[str] = set()
    data = SyntheticLeads(records=[], person_ids=[], persons=0)
    received_at = START_TIME
    for index in range(size):
        received_at += timedelta(seconds=rng.randint(1, 90))
        if persons and rng.random() < REPEAT_SHARE:
            person = rng.choice(persons)
            kind = repeat_kind(person, rng)
            phones, emails = repeat_contacts(person, kind, pools, used_emails, rng)
            name = repeated_name(person.name, rng)
        else:
            person = new_person(len(persons), pools, used_phones, used_emails, rng)
            persons.append(person)
            kind = "first_inquiry"
            phones = [written_phone(person.phone_digits, person.first_phone_format)]
            emails = [person.email] if person.email else []
            name = person.name
        data.kinds[kind] += 1
        data.person_ids.append(person.person_id)
        data.records.append(
            ParsedLead(
                lead_id=f"bench-{index:07d}",
                channel=CHANNELS[index % len(CHANNELS)],
                received_at=received_at,
                name=name,
                phones=phones,
                emails=emails,
                company=person.company,
                raw_source=rng.choice(RAW_SOURCES),
            )
        )
    data.persons = len(persons)
    return data


# --- measurement ----------------------------------------------------------------


def normalize_all(records: Sequence[ParsedLead], rules: NormalizeRules) -> list:
    return [normalize_lead(record, rules) for record in records]


def dedupe_all(leads: Sequence[Lead]) -> tuple[ContactBook, list[str]]:
    book = ContactBook()
    return book, [book.add(lead).contact_key for lead in leads]


def warm_up(records: Sequence[ParsedLead], rules: NormalizeRules) -> None:
    """Compile the regexes and load phone metadata before the clock starts."""
    leads = [lead for lead in normalize_all(records[:1000], rules) if isinstance(lead, Lead)]
    dedupe_all(leads)


def timed_pass(
    records: Sequence[ParsedLead], rules: NormalizeRules
) -> tuple[Timings, list, ContactBook, list[str]]:
    start = time.perf_counter()
    results = normalize_all(records, rules)
    normalized = time.perf_counter()
    leads = [result for result in results if isinstance(result, Lead)]
    deduping = time.perf_counter()
    book, contact_keys = dedupe_all(leads)
    done = time.perf_counter()
    return Timings(normalized - start, done - deduping), results, book, contact_keys


def peak_memory_mib(records: Sequence[ParsedLead], rules: NormalizeRules) -> float:
    """tracemalloc peak of normalize + dedupe; the input existed before start."""
    tracemalloc.start()
    try:
        results = normalize_all(records, rules)
        dedupe_all([result for result in results if isinstance(result, Lead)])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / 2**20


# --- accuracy -------------------------------------------------------------------


def final_contact(key: str, merged_into: dict[str, str]) -> str:
    while key in merged_into:
        key = merged_into[key]
    return key


def predicted_clusters(results: Sequence, contact_keys: Sequence[str], book: ContactBook) -> list:
    """Each record's final contact; a rejected record is a cluster of its own."""
    keys = iter(contact_keys)
    finals: dict[str, str] = {}
    clusters: list[Hashable] = []
    for index, result in enumerate(results):
        if not isinstance(result, Lead):
            clusters.append(("rejected", index))
            continue
        key = next(keys)
        if key not in finals:
            finals[key] = final_contact(key, book.merged_into)
        clusters.append(finals[key])
    return clusters


def pairs(count: int) -> int:
    return count * (count - 1) // 2


def pair_scores(predicted: Sequence[Hashable], truth: Sequence[Hashable]) -> PairScores:
    """Pairwise precision/recall from the (predicted, true) contingency counts."""
    joint = Counter(zip(predicted, truth, strict=True))
    correct = sum(pairs(n) for n in joint.values())
    predicted_pairs = sum(pairs(n) for n in Counter(predicted).values())
    true_pairs = sum(pairs(n) for n in Counter(truth).values())
    contacts_per_person = Counter(person for _, person in joint)
    persons_per_contact = Counter(contact for contact, _ in joint)
    return PairScores(
        precision=correct / predicted_pairs if predicted_pairs else 1.0,
        recall=correct / true_pairs if true_pairs else 1.0,
        split_persons=sum(1 for n in contacts_per_person.values() if n > 1),
        mixed_contacts=sum(1 for n in persons_per_contact.values() if n > 1),
    )


# --- one size -------------------------------------------------------------------


def run_size(
    size: int, seed: int, pools: FakerPools, rules: NormalizeRules, memory_up_to: int
) -> SizeResult:
    started = time.perf_counter()
    data = generate_leads(size, seed, pools)
    generated = time.perf_counter()
    warm_up(data.records, rules)
    timings, results, book, contact_keys = timed_pass(data.records, rules)
    scores = pair_scores(predicted_clusters(results, contact_keys, book), data.person_ids)
    rejected = sum(1 for result in results if not isinstance(result, Lead))
    contacts, merges = len(book.contacts), len(book.merged_into)
    del results, book, contact_keys
    peak = peak_memory_mib(data.records, rules) if size <= memory_up_to else None
    return SizeResult(
        records=size,
        generate_seconds=generated - started,
        timings=timings,
        peak_mib=peak,
        scores=scores,
        contacts=contacts,
        persons=data.persons,
        merges=merges,
        rejected=rejected,
        kinds=data.kinds,
        wall_seconds=time.perf_counter() - started,
    )


# --- output ---------------------------------------------------------------------

COLUMNS = (
    "records",
    "normalize rec/s",
    "dedupe rec/s",
    "peak MiB",
    "precision",
    "recall",
    "contacts",
    "true persons",
    "merges",
    "split persons",
    "wall s",
)


def table_row(result: SizeResult) -> list[str]:
    timings = result.timings
    return [
        f"{result.records:,}",
        f"{result.records / timings.normalize_seconds:,.0f}",
        f"{result.records / timings.dedupe_seconds:,.0f}",
        "-" if result.peak_mib is None else f"{result.peak_mib:,.1f}",
        f"{result.scores.precision:.6f}",
        f"{result.scores.recall:.6f}",
        f"{result.contacts:,}",
        f"{result.persons:,}",
        f"{result.merges:,}",
        f"{result.scores.split_persons:,}",
        f"{result.wall_seconds:,.1f}",
    ]


def data_summary(result: SizeResult) -> str:
    kinds = ", ".join(f"{kind} {count:,}" for kind, count in sorted(result.kinds.items()))
    return (
        f"{result.records:,} records: generated in {result.generate_seconds:.1f} s, "
        f"normalize {result.timings.normalize_seconds:.1f} s, "
        f"dedupe {result.timings.dedupe_seconds:.1f} s, rejected {result.rejected:,}, "
        f"contacts holding several persons {result.scores.mixed_contacts:,}; {kinds}"
    )


def footnotes(memory_up_to: int) -> list[str]:
    return [
        "rec/s: records / time.perf_counter seconds of one pass (after a 1,000-record "
        "warm-up); dedupe counts only ContactBook.add.",
        "peak MiB: tracemalloc peak of the allocations made by normalize + dedupe "
        f"(input records excluded), in a separate untimed pass; '-' = not measured "
        f"(size > --memory-up-to {memory_up_to:,}: tracemalloc is ~4x slower).",
        "precision/recall: pairwise over records, contact (merges followed) vs generated person.",
        "split persons: persons whose records ended in more than one contact "
        "(second-address-only repeats never linked to the phone).",
        "wall s: generation + warm-up + timed pass + accuracy + memory pass.",
    ]


# --- entry point ----------------------------------------------------------------


def parse_sizes(text: str) -> list[int]:
    sizes = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of positive sizes like 1000,5000")
    return sizes


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        type=parse_sizes,
        default=parse_sizes(DEFAULT_SIZES),
        help=f"comma-separated record counts (default {DEFAULT_SIZES})",
    )
    parser.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help=f"random seed (default {DEFAULT_SEED})"
    )
    parser.add_argument(
        "--memory-up-to",
        type=int,
        default=DEFAULT_MEMORY_UP_TO,
        help=f"measure peak memory only for sizes up to this (default {DEFAULT_MEMORY_UP_TO})",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    report = Report()
    report.line(f"CPU count: {os.cpu_count()}")
    report.line(f"Python: {platform.python_version()} ({platform.python_implementation()})")
    report.line(f"Seed: {args.seed}; sizes: {', '.join(f'{s:,}' for s in args.sizes)}")
    rules = load_settings().normalize_rules()
    pools = build_pools(args.seed)
    rows = []
    for size in args.sizes:
        result = run_size(size, args.seed, pools, rules, args.memory_up_to)
        report.line(data_summary(result))
        rows.append(table_row(result))
    report.table("LeadHub normalize + exact dedupe", COLUMNS, rows)
    for note in footnotes(args.memory_up_to):
        report.line(note)


if __name__ == "__main__":
    main()
