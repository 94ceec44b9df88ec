"""Phone numbers: parse any written form, key on E.164, display for people."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import phonenumbers
from phonenumbers import PhoneNumberFormat, PhoneNumberMatcher

DisplayStyle = Literal["pretty", "international", "national", "e164"]

_DIGITS = re.compile(r"\d")
# Company requisites in signatures are long digit runs that the matcher would
# happily read as phones (an ИНН `7712345678` looks like a Kazakh mobile).
_REQUISITE_LABEL = re.compile(
    r"(инн|кпп|огрн(ип)?|бик|окпо|оквэд|р/?с|к/?с|сч[её]т|account|iban|swift)\W{0,4}$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Phone:
    """A phone as given and, when it is a real number, its E.164 key."""

    raw: str
    e164: str
    display: str

    @property
    def valid(self) -> bool:
        return bool(self.e164)


def normalize_phone(text: str, region: str, style: DisplayStyle = "pretty") -> Phone:
    """`8 912 345-67-89`, `+7(912)3456789` and `79123456789` give one E.164 key.

    An invalid number keeps its raw text and an empty key, so it is flagged,
    never silently changed or dropped.
    """
    raw = " ".join(text.split())
    number = _parse(raw, region)
    if number is None:
        return Phone(raw=raw, e164="", display=raw)
    return Phone(
        raw=raw,
        e164=phonenumbers.format_number(number, PhoneNumberFormat.E164),
        display=format_display(number, style),
    )


def find_phones(text: str, region: str) -> list[str]:
    """Every valid phone number written in free text, as E.164, in order."""
    found: list[str] = []
    for match in PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.VALID):
        if _REQUISITE_LABEL.search(text[max(0, match.start - 12) : match.start]):
            continue
        e164 = phonenumbers.format_number(match.number, PhoneNumberFormat.E164)
        if e164 not in found:
            found.append(e164)
    return found


def format_display(number: phonenumbers.PhoneNumber, style: DisplayStyle) -> str:
    if style == "e164":
        return phonenumbers.format_number(number, PhoneNumberFormat.E164)
    if style == "national":
        return phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL)
    international = phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL)
    if style == "international":
        return international
    return _bracket_area_code(international)


def _bracket_area_code(international: str) -> str:
    """`+7 912 345-67-89` -> `+7 (912) 345-67-89`, the way people write it."""
    match = re.fullmatch(r"(\+\d+) (\d+)[ -](.+)", international)
    if match is None:
        return international
    country, area, local = match.groups()
    return f"{country} ({area}) {local}"


def _parse(raw: str, region: str) -> phonenumbers.PhoneNumber | None:
    digits = "".join(_DIGITS.findall(raw))
    if len(digits) < 5:
        return None
    candidates = [raw]
    # `79123456789` without a plus is a full international number in RU
    # exports; phonenumbers would otherwise read it as a local one.
    if not raw.lstrip().startswith("+") and len(digits) == 11 and digits[0] == "7":
        candidates.append("+" + digits)
    for candidate in candidates:
        try:
            number = phonenumbers.parse(candidate, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return number
    return None
