"""Email addresses: trimmed, lower-cased, syntax-checked (no DNS look-ups);
and the mailbox behind an address, for telling people apart.

`canonical_email` is the mailbox identity: two addresses with one canonical
form reach one mailbox (Gmail ignores dots, `+tags` are tags, ya.ru is
yandex.ru, an obvious typo of a mail service is that service). The address a
person wrote is kept as written; the canonical form is only compared.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from email_validator import EmailNotValidError, validate_email
from rapidfuzz import process
from rapidfuzz.distance import OSA, Levenshtein

from transforms.identity_rules import IdentityRules

MailboxKind = Literal["personal", "role", "family"]

# Loose on purpose: candidates are then checked by email-validator.
_CANDIDATE = re.compile(r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE)
_LOCAL_TOKENS = re.compile(r"[._+\-\d]+")
# A family's shared mailbox is often its surname in the plural:
# zhuravlevy (Журавлёвы), ivanovy, sorokiny, the-ivanovs, zhuravskie.
_PLURAL_SURNAME = re.compile(r"[a-z]{3,}(?:(?:ov|ev|in|yn)(?:y|s)|(?:sk|tsk)(?:ie|iye|ije))")
# A role mailbox may carry a city or office code: sales-msk, info2, zakaz.spb.
_CODE_LENGTH = 3
# Typo correction leaves short domains alone: one letter away from bk.ru or
# ya.ru is too often a real domain of its own, and so is a short name (mai.ru).
_SHORTEST_TYPO_TARGET = 7
_SHORTEST_TYPED_LABEL = 4
_KEYBOARD_ROWS = ("1234567890", "qwertyuiop", "asdfghjkl", "zxcvbnm")
# Addresses recur all through an import: each is checked once.
EMAIL_CACHE = 1 << 16
# A dot-atom of letters, digits and `_+-`, of RFC 5321's lengths: anything
# else (more characters RFC 5322 allows, longer parts) goes to email-validator.
_PLAIN_LOCAL_PART = re.compile(r"[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*")
_MAX_LOCAL_PART = 64
_MAX_ADDRESS = 254


@lru_cache(maxsize=EMAIL_CACHE)
def normalize_email(text: str) -> str | None:
    """The canonical address, or None when it is not a valid address."""
    candidate = text.strip().strip("<>").strip().removeprefix("mailto:")
    if not candidate:
        return None
    local, at, domain = candidate.rpartition("@")
    if (at and len(candidate) <= _MAX_ADDRESS and len(local) <= _MAX_LOCAL_PART
            and domain.isascii() and _PLAIN_LOCAL_PART.fullmatch(local)):
        # A plain ASCII address is valid when its domain is, and then stays as
        # written: only the domain, recurring all through a list, is checked.
        checked = _checked_domain(domain)
        return f"{local}@{checked}".lower() if checked else None
    return validated_email(candidate)


def validated_email(candidate: str) -> str | None:
    """`normalize_email` by email-validator: the way for any address."""
    try:
        checked = validate_email(candidate, check_deliverability=False)
    except EmailNotValidError:
        return None
    return checked.normalized.lower()


@lru_cache(maxsize=EMAIL_CACHE)
def _checked_domain(domain: str) -> str:
    """The domain as email-validator normalizes it, "" when it is not valid."""
    checked = validated_email(f"a@{domain}")
    return checked.rpartition("@")[2] if checked else ""


def find_emails(text: str) -> list[str]:
    """Every valid address written in free text, normalized, in order."""
    found: list[str] = []
    for candidate in _CANDIDATE.findall(text):
        email = normalize_email(candidate.rstrip("."))
        if email and email not in found:
            found.append(email)
    return found


def domain_of(email: str) -> str:
    return email.rpartition("@")[2].lower()


@lru_cache(maxsize=65536)
def canonical_email(address: str, rules: IdentityRules) -> str:
    """The mailbox an address reaches: `Nesterova.Y+crm@gmail.Com` ->
    `nesterovay@gmail.com`, `ivan.petrov@ya.ru` -> `ivan-petrov@yandex.ru`.
    "" when the address is not valid."""
    email = normalize_email(address)
    if not email:
        return ""
    local, _, domain = email.rpartition("@")
    domain = main_domain(email_domain_typo(domain, rules) or domain, rules)
    for rule in rules.mailbox_rules.get(domain, ()):
        if rule == "drop_plus_tag":
            local = local.partition("+")[0] or local
        elif rule == "ignore_dots":
            local = local.replace(".", "")
        elif rule == "dot_is_hyphen":
            local = local.replace(".", "-")
    return f"{local}@{domain}"


def main_domain(domain: str, rules: IdentityRules) -> str:
    """`ya.ru` -> `yandex.ru`, `googlemail.com` -> `gmail.com`; others as given."""
    return _providers(rules).main.get(domain.lower(), domain.lower())


def is_provider_domain(domain: str, rules: IdentityRules) -> bool:
    """A public mail service: its addresses say nothing about a company."""
    domain = domain.lower()
    return domain in _providers(rules).known or bool(email_domain_typo(domain, rules))


@lru_cache(maxsize=16384)
def email_domain_typo(domain: str, rules: IdentityRules) -> str:
    """The mail service a mistyped domain means (`yandex.ry` -> `yandex.ru`,
    `gmial.com` -> `gmail.com`), or "" when it is not such a typo.

    Only one slip of the fingers away from exactly one well-known service
    counts: a keyboard neighbour, a letter left out or doubled, two letters
    swapped. A domain that is merely similar (email.ru, mail.su, mai.ru) is
    somebody's own and is left alone.
    """
    providers = _providers(rules)
    domain = domain.lower()
    if domain in providers.known or len(domain.partition(".")[0]) < _SHORTEST_TYPED_LABEL:
        return ""
    close = process.extract(domain, providers.typo_targets, scorer=OSA.distance,
                            score_cutoff=1, limit=None)
    slips = {target for target, _, _ in close if _typing_slip(target, domain)}
    meant = {main_domain(target, rules) for target in slips}
    return slips.pop() if len(meant) == 1 and len(slips) == 1 else ""


@lru_cache(maxsize=EMAIL_CACHE)
def mailbox_kind(address: str, rules: IdentityRules) -> MailboxKind:
    """`info@`, `sales-msk@`, `zakaz@`: role; `zhuravlevy@`, `semya.petrovyh@`:
    family; anything else: personal."""
    local = address.strip().lower().rpartition("@")[0].partition("+")[0]
    tokens = [token for token in _LOCAL_TOKENS.split(local) if token]
    index = _providers(rules)
    roles = index.roles
    if local in roles or (
        any(token in roles for token in tokens)
        and all(token in roles or len(token) <= _CODE_LENGTH for token in tokens)
    ):
        return "role"
    family = index.family
    if any(token in family or _PLURAL_SURNAME.fullmatch(token) for token in tokens):
        return "family"
    if any(word in local for word in index.long_family):
        return "family"
    return "personal"


def same_mailbox_reason(first: str, second: str, rules: IdentityRules) -> str:
    """Why two addresses written differently reach one mailbox, for people:
    `Gmail ignores dots`, `ya.ru and yandex.ru are one mailbox`."""
    first, second = normalize_email(first) or first, normalize_email(second) or second
    if first == second:
        return ""
    (local_a, _, domain_a), (local_b, _, domain_b) = (
        first.rpartition("@"), second.rpartition("@"))
    for typed in (domain_a, domain_b):
        meant = email_domain_typo(typed, rules)
        if meant:
            return f"{typed} read as {meant}"
    if domain_a != domain_b:
        return f"{domain_a} and {domain_b} are one mailbox"
    if local_a.partition("+")[0] == local_b.partition("+")[0]:
        return "a +tag reaches the same mailbox"
    rules_here = rules.mailbox_rules.get(main_domain(domain_a, rules), ())
    if "ignore_dots" in rules_here:
        return f"{main_domain(domain_a, rules).split('.')[0].capitalize()} ignores dots"
    if "dot_is_hyphen" in rules_here:
        return f"{main_domain(domain_a, rules).split('.')[0].capitalize()} reads . and - alike"
    return "the same mailbox"


@dataclass(frozen=True)
class _ProviderIndex:
    main: dict[str, str]
    known: frozenset[str]
    typo_targets: tuple[str, ...]
    roles: frozenset[str]
    family: frozenset[str]
    # the family words long enough to be looked for inside a local part
    long_family: tuple[str, ...]


@lru_cache(maxsize=8)
def _providers(rules: IdentityRules) -> _ProviderIndex:
    """The lookups built once per rules object."""
    main = {alias.lower(): domain.lower()
            for domain, aliases in rules.email_aliases.items() for alias in aliases}
    known = frozenset(d.lower() for d in rules.provider_domains) | set(main) | set(
        d.lower() for d in rules.email_aliases)
    targets = tuple(sorted(d for d in known if len(d) >= _SHORTEST_TYPO_TARGET))
    family = frozenset(word.lower() for word in rules.family_mailboxes)
    return _ProviderIndex(
        main=main, known=known, typo_targets=targets,
        roles=frozenset(word.lower() for word in rules.role_mailboxes),
        family=family,
        long_family=tuple(word for word in family if len(word) >= 5),
    )


def _typing_slip(meant: str, typed: str) -> bool:
    """`typed` is `meant` with one slip: a neighbouring key, a letter left
    out or doubled (or a neighbour hit with it), two letters swapped. Dots
    and hyphens are never part of a slip: the domain keeps its shape."""
    ops = Levenshtein.editops(meant, typed)
    if len(ops) == 2:
        return OSA.distance(meant, typed) == 1 and _swapped_letters(meant, typed)
    if len(ops) != 1:
        return False
    op = ops[0]
    if op.tag == "replace":
        return _adjacent_keys(meant[op.src_pos], typed[op.dest_pos])
    if op.tag == "delete":
        return meant[op.src_pos].isalpha()
    at = op.dest_pos
    extra, neighbours = typed[at], typed[max(0, at - 1) : at] + typed[at + 1 : at + 2]
    return extra.isalpha() and any(
        extra == near or _adjacent_keys(extra, near) for near in neighbours)


def _swapped_letters(meant: str, typed: str) -> bool:
    differ = [i for i, (a, b) in enumerate(zip(meant, typed, strict=True)) if a != b]
    return (len(differ) == 2 and differ[1] == differ[0] + 1
            and all(meant[i].isalpha() for i in differ))


def _adjacent_keys(first: str, second: str) -> bool:
    return second in _KEY_NEIGHBOURS.get(first, "")


def _key_neighbours() -> dict[str, str]:
    """On a staggered keyboard a key touches its row neighbours, two keys of
    the row above (same column and one right) and two of the row below."""
    places = {key: (row, col) for row, keys in enumerate(_KEYBOARD_ROWS)
              for col, key in enumerate(keys)}
    neighbours: dict[str, str] = {}
    for key, (row, col) in places.items():
        near = [(row, col - 1), (row, col + 1), (row - 1, col), (row - 1, col + 1),
                (row + 1, col - 1), (row + 1, col)]
        neighbours[key] = "".join(
            _KEYBOARD_ROWS[r][c] for r, c in near
            if 0 <= r < len(_KEYBOARD_ROWS) and 0 <= c < len(_KEYBOARD_ROWS[r]))
    return neighbours


_KEY_NEIGHBOURS = _key_neighbours()
