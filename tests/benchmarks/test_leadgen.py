"""The benchmark's lead generator: deterministic, and it makes the hard cases it claims."""

import re
from collections import defaultdict
from dataclasses import astuple

import leadgen
import pytest
from cluster_metrics import missed_pairs_by_kind, wrong_pairs_by_kind

PEOPLE, LEADS = 800, 1_300
EXTENSION = re.compile(r"(?:доб\.?|ext\.)\s*(\d+)")


@pytest.fixture(scope="module")
def leads():
    return leadgen.generate(people=PEOPLE, leads=LEADS, seed=leadgen.DEFAULT_SEED)


def written(lead_set):
    return [
        (r.lead_id, r.channel, r.received_at, r.name, tuple(r.phones), tuple(r.emails), r.company)
        for r in lead_set.records
    ]


def test_a_seed_gives_the_same_leads_and_truth_every_time(leads):
    again = leadgen.generate(people=PEOPLE, leads=LEADS, seed=leadgen.DEFAULT_SEED)
    assert written(again) == written(leads)
    assert again.person_ids == leads.person_ids
    assert [astuple(f) for f in again.facts] == [astuple(f) for f in leads.facts]


def test_another_seed_gives_other_leads(leads):
    other = leadgen.generate(people=PEOPLE, leads=LEADS, seed=leadgen.DEFAULT_SEED + 1)
    assert written(other) != written(leads)


def test_every_person_writes_and_leads_come_in_time_order(leads):
    assert len(leads.records) == LEADS
    assert leads.people_with_leads == PEOPLE
    times = [record.received_at for record in leads.records]
    assert times == sorted(times)


def test_every_hard_negative_kind_is_in_the_data(leads):
    everyone_merged = [0] * len(leads.records)
    at_stake = wrong_pairs_by_kind(everyone_merged, leads.person_ids, leadgen.negative_keys(leads))
    assert {kind for kind in leadgen.NEGATIVE_KINDS if at_stake[kind] > 0} == set(
        leadgen.NEGATIVE_KINDS
    )


def test_every_hard_positive_kind_is_in_the_data(leads):
    each_alone = list(range(len(leads.records)))
    at_stake = missed_pairs_by_kind(
        each_alone, leads.person_ids, lambda a, b: leadgen.positive_kind(leads, a, b)
    )
    assert set(leadgen.POSITIVE_KINDS) <= set(at_stake)


def test_colleagues_give_one_switchboard_with_their_own_extensions(leads):
    seen = defaultdict(set)  # office line -> {(person, extension or "")}
    for record, facts, person_id in zip(leads.records, leads.facts, leads.person_ids, strict=True):
        if facts.line is not None and facts.line == leads.persons[person_id].used_office_line:
            match = EXTENSION.search(record.phones[0])
            seen[facts.line].add((person_id, match.group(1) if match else ""))
    shared = [uses for uses in seen.values() if len({person for person, _ in uses}) >= 2]
    assert any(len({extension for _, extension in uses if extension}) >= 2 for uses in shared)
    assert any(any(not extension for _, extension in uses) for uses in shared)


def test_one_mailbox_is_written_several_ways(leads):
    spellings = defaultdict(set)
    for facts in leads.facts:
        if facts.mailbox is not None:
            spellings[facts.mailbox].add(facts.email_written)
    domains = {frozenset(e.partition("@")[2] for e in forms) for forms in spellings.values()}
    gmail_logins = {
        frozenset(e.partition("@")[0] for e in forms)
        for forms in spellings.values()
        if all(e.endswith("@gmail.com") for e in forms)
    }
    assert any(len(ds) > 1 and ds <= set(leadgen.YANDEX_DOMAINS) for ds in domains)
    assert any(len(logins) > 1 for logins in gmail_logins)
