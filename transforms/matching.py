"""Whether two records (a lead, a contact) are one person: the evidence each
gives, and a comparison in the Fellegi-Sunter sense.

Every field is compared to a level; each level has m, the chance of seeing it
when the two are the same person, and u, the chance when they are two people.
The match weight is log2 of the prior odds plus the sum of log2(m/u) over the
fields; the probability follows from it. Both kinds of chance are taken over
candidate pairs (two records that share a blocking key: a phone, a mailbox, a
name key), not over random pairs: that is where the resolver compares, and
where a colleague on the same office line is common rather than rare.

The numbers are estimates for leads of small Russian-speaking businesses, the
kind issue 12 describes, chosen so that one unshared phone or mailbox merges,
a name and company alone goes to review, and an incompatible name never
merges. They are named constants so that benchmarks/dedupe_quality.py can check
and tune them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from typing import Literal

from rapidfuzz import fuzz

from transforms.emails import (
    MailboxKind,
    canonical_email,
    domain_of,
    email_domain_typo,
    is_provider_domain,
    mailbox_kind,
    normalize_email,
    same_mailbox_reason,
)
from transforms.identity_rules import IdentityRules
from transforms.person_names import (
    NameComparison,
    NameLevel,
    PersonName,
    compare_names,
    fold,
    parse_person_name,
)
from transforms.phones import phone_identity, split_identity
from transforms.records import Lead

Decision = Literal["match", "review", "distinct"]


@dataclass(frozen=True)
class Odds:
    """m: P(level | same person); u: P(level | two people), among candidate pairs."""

    m: float
    u: float

    @property
    def weight(self) -> float:
        return math.log2(self.m / self.u)


# Prior: about one candidate pair in 17 is one person. Most candidate pairs
# come through a shared identifier, which is usually the same person; name
# blocks add many namesakes. Prior odds 1:16, a weight of -4.
PRIOR_MATCH = 1 / 17

# Phones. A person gives the same number in 85% of their later leads (the
# rest: another mobile, the office line). Two different people sharing a
# number that is not known to be shared are rare once extensions are kept:
# a family's home phone, a number passed on to someone else.
PHONE_SAME = Odds(m=0.85, u=0.0002)
# An identity marked shared (an office line, a family phone): most pairs
# through it are colleagues or relatives.
PHONE_SAME_SHARED = Odds(m=0.85, u=0.08)
# The same number, with an extension on one side only: the person gave the
# switchboard once and the direct extension once, or a colleague gave the
# switchboard.
PHONE_ONE_EXTENSION = Odds(m=0.10, u=0.0125)
# The same number with another extension: nearly always a colleague; it says
# "same company", which the name then decides.
PHONE_OTHER_EXTENSION = Odds(m=0.04, u=0.02)
# The same number through an office line marked shared, extensions not telling.
PHONE_SHARED_LINE = Odds(m=0.10, u=0.05)
# Both gave phones, none in common: people change phones and have two.
PHONE_DIFFERENT = Odds(m=0.30, u=0.85)

# Emails. As for phones, a personal mailbox is rarely another person's.
EMAIL_SAME = Odds(m=0.85, u=0.0002)
# Equal only once a mistyped service domain is read as the service: a guess.
EMAIL_SAME_CORRECTED = Odds(m=0.85, u=0.0004)
# A role mailbox (info@, sales@) or a family one (zhuravlevy@) weighs less
# before anyone marks it shared: several people write from it.
EMAIL_SAME_ROLE = Odds(m=0.80, u=0.025)
EMAIL_SAME_FAMILY = Odds(m=0.80, u=0.025)
# A mailbox marked shared.
EMAIL_SAME_SHARED = Odds(m=0.80, u=0.08)
EMAIL_DIFFERENT = Odds(m=0.30, u=0.85)

# Names, after compare_names. m: how often one person's two leads show the
# level (a full name both times, a diminutive once, initials once...); u: how
# often two candidates who are different people do (namesakes in a name
# block; colleagues and relatives through an identifier).
NAME_EXACT = Odds(m=0.60, u=0.0094)
NAME_LIKELY = Odds(m=0.25, u=0.011)
NAME_INITIALS = Odds(m=0.08, u=0.02)
NAME_FIRST_NAME_ONLY = Odds(m=0.10, u=0.035)
# A woman's surname changes at marriage; a surname typo of two letters.
NAME_DIFFERENT_SURNAME = Odds(m=0.03, u=0.24)
# One person's patronymic or first name differs only when a nickname is not
# on the list or a typo is worse than one letter.
NAME_DIFFERENT_PATRONYMIC = Odds(m=0.001, u=0.5)
NAME_DIFFERENT_FIRST_NAME = Odds(m=0.001, u=0.55)
NAME_DIFFERENT_GENDER = Odds(m=0.0005, u=0.5)

# Companies (without legal form). People keep their employer between leads;
# namesakes in one company are rare; colleagues share it, but their names differ.
COMPANY_SAME = Odds(m=0.40, u=0.05)
COMPANY_SIMILAR = Odds(m=0.10, u=0.025)
# No company name to compare, but the same corporate mail domain.
COMPANY_SAME_EMAIL_DOMAIN = Odds(m=0.20, u=0.05)
# People change jobs and write the company differently.
COMPANY_DIFFERENT = Odds(m=0.30, u=0.60)

# Cities: weak; many candidates live in one big city.
CITY_SAME = Odds(m=0.60, u=0.30)
CITY_DIFFERENT = Odds(m=0.20, u=0.40)

# Above MATCH the pair is one person; between REVIEW and MATCH a person
# decides; below REVIEW they are two people. Incompatible names never match.
MATCH_PROBABILITY = 0.99
REVIEW_PROBABILITY = 0.5

_COMPANY_SIMILARITY = 90
_CITY_PREFIX = re.compile(r"^(?:г|гор|город|пос|пгт|с|дер|д|city of)\.?\s+", re.IGNORECASE)
_NOT_A_WORD_CHAR = re.compile(r"[^\w\s]+")


class PhoneLevel(StrEnum):
    SAME = "same"
    SAME_SHARED = "same_shared"
    ONE_EXTENSION = "one_extension"
    OTHER_EXTENSION = "other_extension"
    SHARED_LINE = "shared_line"
    DIFFERENT = "different"
    MISSING = "missing"


class EmailLevel(StrEnum):
    SAME = "same"
    SAME_CORRECTED = "same_corrected"
    SAME_ROLE = "same_role"
    SAME_FAMILY = "same_family"
    SAME_SHARED = "same_shared"
    DIFFERENT = "different"
    MISSING = "missing"


class CompanyLevel(StrEnum):
    SAME = "same"
    SIMILAR = "similar"
    SAME_EMAIL_DOMAIN = "same_email_domain"
    DIFFERENT = "different"
    MISSING = "missing"


class CityLevel(StrEnum):
    SAME = "same"
    DIFFERENT = "different"
    MISSING = "missing"


_PHONE_ODDS = {
    PhoneLevel.SAME: PHONE_SAME, PhoneLevel.SAME_SHARED: PHONE_SAME_SHARED,
    PhoneLevel.ONE_EXTENSION: PHONE_ONE_EXTENSION,
    PhoneLevel.OTHER_EXTENSION: PHONE_OTHER_EXTENSION,
    PhoneLevel.SHARED_LINE: PHONE_SHARED_LINE, PhoneLevel.DIFFERENT: PHONE_DIFFERENT,
}
_EMAIL_ODDS = {
    EmailLevel.SAME: EMAIL_SAME, EmailLevel.SAME_CORRECTED: EMAIL_SAME_CORRECTED,
    EmailLevel.SAME_ROLE: EMAIL_SAME_ROLE, EmailLevel.SAME_FAMILY: EMAIL_SAME_FAMILY,
    EmailLevel.SAME_SHARED: EMAIL_SAME_SHARED, EmailLevel.DIFFERENT: EMAIL_DIFFERENT,
}
_NAME_ODDS = {
    NameLevel.EXACT: NAME_EXACT, NameLevel.LIKELY: NAME_LIKELY,
    NameLevel.INITIALS: NAME_INITIALS, NameLevel.FIRST_NAME_ONLY: NAME_FIRST_NAME_ONLY,
    NameLevel.DIFFERENT_SURNAME: NAME_DIFFERENT_SURNAME,
    NameLevel.DIFFERENT_PATRONYMIC: NAME_DIFFERENT_PATRONYMIC,
    NameLevel.DIFFERENT_FIRST_NAME: NAME_DIFFERENT_FIRST_NAME,
    NameLevel.DIFFERENT_GENDER: NAME_DIFFERENT_GENDER,
}
_COMPANY_ODDS = {
    CompanyLevel.SAME: COMPANY_SAME, CompanyLevel.SIMILAR: COMPANY_SIMILAR,
    CompanyLevel.SAME_EMAIL_DOMAIN: COMPANY_SAME_EMAIL_DOMAIN,
    CompanyLevel.DIFFERENT: COMPANY_DIFFERENT,
}
_CITY_ODDS = {CityLevel.SAME: CITY_SAME, CityLevel.DIFFERENT: CITY_DIFFERENT}


@dataclass(frozen=True)
class Evidence:
    """What one lead or contact says about who the person is."""

    name: PersonName = field(default_factory=PersonName)
    # phone identities: +73420521674;ext=280, or the E.164 number alone
    phones: frozenset[str] = frozenset()
    # the numbers without extension: +73420521674
    phone_numbers: frozenset[str] = frozenset()
    # canonical mailboxes, and how each was written and what kind it is
    emails: frozenset[str] = frozenset()
    written_emails: Mapping[str, str] = field(default_factory=dict)
    email_kinds: Mapping[str, MailboxKind] = field(default_factory=dict)
    # mail domains of companies (not public mail services): romashka.ru
    email_domains: frozenset[str] = frozenset()
    # folded for comparison (Ромашка, «ромашка» -> romashka); as written
    company: str = ""
    company_shown: str = ""
    city: str = ""
    city_shown: str = ""


@dataclass(frozen=True)
class FieldComparison:
    field: str
    level: str
    weight: float
    reason: str


@dataclass(frozen=True)
class Comparison:
    fields: tuple[FieldComparison, ...]
    name: NameComparison
    # log2 of the prior odds plus the fields' log2(m/u)
    weight: float
    probability: float
    reasons: tuple[str, ...]
    decision: Decision

    @property
    def levels(self) -> dict[str, str]:
        return {compared.field: compared.level for compared in self.fields}


def evidence_of(
    rules: IdentityRules,
    name: str | PersonName = "",
    phones: Iterable[str] = (),
    emails: Iterable[str] = (),
    company: str = "",
    city: str = "",
) -> Evidence:
    """Evidence from parts: phone identities (E.164, optionally `;ext=NNN`)
    and addresses as written."""
    person = name if isinstance(name, PersonName) else parse_person_name(name, rules)
    identities = frozenset(phone for phone in phones if phone)
    written: dict[str, str] = {}
    for address in emails:
        mailbox = canonical_email(address, rules)
        if mailbox:
            written.setdefault(mailbox, normalize_email(address) or address)
    return Evidence(
        name=person,
        phones=identities,
        phone_numbers=frozenset(split_identity(phone)[0] for phone in identities),
        emails=frozenset(written),
        written_emails=written,
        email_kinds={mailbox: mailbox_kind(mailbox, rules) for mailbox in written},
        email_domains=frozenset(
            domain_of(mailbox) for mailbox in written
            if not is_provider_domain(domain_of(mailbox), rules)),
        company=company_key(company),
        company_shown=" ".join(company.split()),
        city=city_key(city),
        city_shown=" ".join(city.split()),
    )


def evidence_from_lead(lead: Lead, rules: IdentityRules) -> Evidence:
    phone = phone_identity(lead.phone, lead.phone_extension) if lead.phone_valid else ""
    return evidence_of(rules, name=lead.name, phones=[phone], emails=[lead.email],
                       company=lead.company, city=lead.city)


def combine_evidence(items: Iterable[Evidence]) -> Evidence:
    """A contact's evidence from its leads': every identity, the fullest name,
    the first company and city given."""
    items = list(items)
    if not items:
        return Evidence()
    name = max((item.name for item in items), key=_name_fullness)
    company = next((item for item in items if item.company), items[0])
    city = next((item for item in items if item.city), items[0])
    written: dict[str, str] = {}
    kinds: dict[str, MailboxKind] = {}
    for item in items:
        for mailbox, address in item.written_emails.items():
            written.setdefault(mailbox, address)
        kinds.update(item.email_kinds)
    return Evidence(
        name=name,
        phones=frozenset().union(*(item.phones for item in items)),
        phone_numbers=frozenset().union(*(item.phone_numbers for item in items)),
        emails=frozenset(written),
        written_emails=written,
        email_kinds=kinds,
        email_domains=frozenset().union(*(item.email_domains for item in items)),
        company=company.company,
        company_shown=company.company_shown,
        city=city.city,
        city_shown=city.city_shown,
    )


def compare(a: Evidence, b: Evidence, rules: IdentityRules,
            shared: AbstractSet[str] = frozenset()) -> Comparison:
    """How likely `a` and `b` are one person, and why.

    `shared` holds identities known to be used by several people (phone
    identities as in Evidence.phones, canonical mailboxes): agreeing on one
    of them weighs little.
    """
    name = compare_names(a.name, b.name, rules)
    fields = (
        _field("name", name.level.name.lower(), _NAME_ODDS.get(name.level),
               "" if name.level == NameLevel.MISSING else name.reason),
        _phone(a, b, shared),
        _email(a, b, rules, shared),
        _company(a, b),
        _city(a, b),
    )
    weight = math.log2(PRIOR_MATCH / (1 - PRIOR_MATCH)) + sum(f.weight for f in fields)
    probability = 1 / (1 + 2 ** -weight)
    return Comparison(
        fields=fields, name=name, weight=weight, probability=probability,
        reasons=_reasons(fields), decision=_decision(probability, name),
    )


@lru_cache(maxsize=65536)
def company_key(company: str) -> str:
    """«Ромашка», ромашка, Romashka -> one key (the legal form is already apart)."""
    words = _NOT_A_WORD_CHAR.sub(" ", company.lower()).split()
    return " ".join(fold(word) for word in words)


@lru_cache(maxsize=4096)
def city_key(city: str) -> str:
    """г. Москва, Москва, Moskva -> one key."""
    return company_key(_CITY_PREFIX.sub("", " ".join(city.split())))


def _field(name: str, level: str, odds: Odds | None, reason: str) -> FieldComparison:
    return FieldComparison(name, level, odds.weight if odds else 0.0, reason if odds else "")


def _phone(a: Evidence, b: Evidence, shared: AbstractSet[str]) -> FieldComparison:
    if not (a.phones and b.phones):
        return _field("phone", PhoneLevel.MISSING, None, "")
    found: list[tuple[PhoneLevel, str]] = []
    for identity in sorted(a.phones & b.phones):
        found.append((PhoneLevel.SAME_SHARED, "shared office line") if identity in shared
                     else (PhoneLevel.SAME, "same phone"))
    for number in sorted(a.phone_numbers & b.phone_numbers):
        extensions_a, extensions_b = _extensions(a, number), _extensions(b, number)
        if extensions_a & extensions_b:
            continue
        if number in shared:
            found.append((PhoneLevel.SHARED_LINE, "shared office line"))
        elif "" in extensions_a | extensions_b:
            extension = next(e for e in sorted(extensions_a | extensions_b) if e)
            found.append((PhoneLevel.ONE_EXTENSION,
                          f"same phone, extension {extension} on one side only"))
        else:
            found.append((PhoneLevel.OTHER_EXTENSION, "same phone, other extension"))
    if not found:
        found.append((PhoneLevel.DIFFERENT, "different phones"))
    level, reason = max(found, key=lambda item: _PHONE_ODDS[item[0]].weight)
    return _field("phone", level, _PHONE_ODDS[level], reason)


def _extensions(evidence: Evidence, number: str) -> set[str]:
    return {extension for base, extension in map(split_identity, evidence.phones)
            if base == number}


def _email(a: Evidence, b: Evidence, rules: IdentityRules,
           shared: AbstractSet[str]) -> FieldComparison:
    if not (a.emails and b.emails):
        return _field("email", EmailLevel.MISSING, None, "")
    found = [_same_mailbox(a, b, mailbox, rules, shared) for mailbox in sorted(a.emails & b.emails)]
    if not found:
        found.append((EmailLevel.DIFFERENT, "different emails"))
    level, reason = max(found, key=lambda item: _EMAIL_ODDS[item[0]].weight)
    return _field("email", level, _EMAIL_ODDS[level], reason)


def _same_mailbox(a: Evidence, b: Evidence, mailbox: str, rules: IdentityRules,
                  shared: AbstractSet[str]) -> tuple[EmailLevel, str]:
    local = mailbox.partition("@")[0]
    if mailbox in shared:
        return EmailLevel.SAME_SHARED, "shared mailbox"
    kind = a.email_kinds.get(mailbox) or b.email_kinds.get(mailbox)
    if kind == "role":
        return EmailLevel.SAME_ROLE, f"same role mailbox ({local}@)"
    if kind == "family":
        return EmailLevel.SAME_FAMILY, f"same family mailbox ({local}@)"
    written_a, written_b = a.written_emails[mailbox], b.written_emails[mailbox]
    why = same_mailbox_reason(written_a, written_b, rules)
    corrected = any(email_domain_typo(domain_of(w), rules) for w in (written_a, written_b))
    level = EmailLevel.SAME_CORRECTED if corrected else EmailLevel.SAME
    return level, f"same email ({why})" if why else "same email"


def _company(a: Evidence, b: Evidence) -> FieldComparison:
    if a.company and b.company:
        pair = f"{a.company_shown} / {b.company_shown}"
        if a.company == b.company:
            return _field("company", CompanyLevel.SAME, COMPANY_SAME, "same company")
        if fuzz.token_sort_ratio(a.company, b.company) >= _COMPANY_SIMILARITY:
            return _field("company", CompanyLevel.SIMILAR, COMPANY_SIMILAR,
                          f"similar company: {pair}")
        return _field("company", CompanyLevel.DIFFERENT, COMPANY_DIFFERENT,
                      f"different companies: {pair}")
    # a mailbox both gave already counted under email; its domain does not again
    domains = sorted(
        {domain_of(m) for m in a.emails - b.emails} & a.email_domains
        & {domain_of(m) for m in b.emails - a.emails} & b.email_domains)
    if domains:
        return _field("company", CompanyLevel.SAME_EMAIL_DOMAIN, COMPANY_SAME_EMAIL_DOMAIN,
                      f"same company mail domain ({domains[0]})")
    return _field("company", CompanyLevel.MISSING, None, "")


def _city(a: Evidence, b: Evidence) -> FieldComparison:
    if not (a.city and b.city):
        return _field("city", CityLevel.MISSING, None, "")
    if a.city == b.city:
        return _field("city", CityLevel.SAME, CITY_SAME, "same city")
    return _field("city", CityLevel.DIFFERENT, CITY_DIFFERENT,
                  f"different cities: {a.city_shown} / {b.city_shown}")


def _reasons(fields: tuple[FieldComparison, ...]) -> tuple[str, ...]:
    """The fields that moved the score, strongest first; a same name at the
    same company is said in one breath."""
    by_field = {compared.field: compared for compared in fields}
    said = [compared for compared in fields if compared.reason]
    if by_field["name"].level == "exact" and by_field["company"].level == CompanyLevel.SAME:
        said = [c for c in said if c.field not in ("name", "company")]
        said.append(FieldComparison("name", "exact", by_field["name"].weight
                                    + by_field["company"].weight, "same name and company"))
    return tuple(c.reason for c in sorted(said, key=lambda c: -abs(c.weight)))


def _decision(probability: float, name: NameComparison) -> Decision:
    if probability >= MATCH_PROBABILITY and name.compatible:
        return "match"
    return "review" if probability >= REVIEW_PROBABILITY else "distinct"


def _name_fullness(name: PersonName) -> tuple[int, int]:
    parts = sum(bool(part) for part in (name.surname, name.first_name, name.patronymic))
    return parts, len(name.initials)
