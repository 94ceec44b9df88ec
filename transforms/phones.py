"""Phone numbers: parse any written form, key on E.164 (plus the extension),
display for people."""

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
# `доб. 280`, `(доб.280)`, `вн. 280`, `внутр. 280`, `ext. 12`, `x12`, `#12`,
# and the RFC 3966 `;ext=12` that phone identities are written in.
_EXTENSION_LABEL = (
    r"(?:доб(?:авочный)?|вн(?:утр(?:енний)?)?|ext(?:ension)?|x|#|;\s*ext\s*=)"
)
_EXTENSION_TEXT = rf"[ \t,;]*\(?[ \t]*{_EXTENSION_LABEL}\.?[ \t]*[:=]?[ \t]*(\d{{1,7}})"
_EXTENSION = re.compile(rf"{_EXTENSION_TEXT}[ \t]*\)?[ \t]*$", re.IGNORECASE)
_EXTENSION_AFTER = re.compile(rf"{_EXTENSION_TEXT}(?!\d)", re.IGNORECASE)
# Regions whose people write `доб.` for an extension; elsewhere it is `ext.`.
_DOB_REGIONS = frozenset({"RU", "KZ", "BY"})


@dataclass(frozen=True)
class Phone:
    """A phone as given and, when it is a real number, its E.164 key.

    `extension` is the office extension ("" when none): two people behind one
    switchboard share `e164` but not `identity`.
    """

    raw: str
    e164: str
    display: str
    extension: str = ""

    @property
    def valid(self) -> bool:
        return bool(self.e164)

    @property
    def identity(self) -> str:
        """`+73420521674;ext=280` (RFC 3966), or the E.164 number alone."""
        return phone_identity(self.e164, self.extension)


def phone_identity(e164: str, extension: str = "") -> str:
    if not e164:
        return ""
    return f"{e164};ext={extension}" if extension else e164


def split_identity(identity: str) -> tuple[str, str]:
    """`+73420521674;ext=280` -> (`+73420521674`, `280`)."""
    number, _, extension = identity.partition(";ext=")
    return number, extension


def normalize_phone(text: str, region: str, style: DisplayStyle = "pretty") -> Phone:
    """`8 912 345-67-89`, `+7(912)3456789` and `79123456789` give one E.164 key;
    `… доб. 280` keeps 280 as the extension.

    An invalid number keeps its raw text and an empty key, so it is flagged,
    never silently changed or dropped.
    """
    raw = " ".join(text.split())
    base, extension = split_extension(raw)
    number = _parse(base, region)
    if number is None:
        return Phone(raw=raw, e164="", display=raw)
    extension = extension or (number.extension or "")
    number.extension = None
    return Phone(
        raw=raw,
        e164=phonenumbers.format_number(number, PhoneNumberFormat.E164),
        display=format_display(number, style, extension),
        extension=extension,
    )


def split_extension(text: str) -> tuple[str, str]:
    """`+7 495 123-45-67 доб. 12` -> (`+7 495 123-45-67`, `12`)."""
    match = _EXTENSION.search(text)
    if match is None or not _DIGITS.search(text[: match.start()]):
        return text, ""
    return text[: match.start()], match.group(1)


def find_phones(text: str, region: str) -> list[str]:
    """Every valid phone number written in free text, in order: its E.164
    number, with `;ext=NNN` when an extension follows it."""
    found: list[str] = []
    for match in PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.VALID):
        if _REQUISITE_LABEL.search(text[max(0, match.start - 12) : match.start]):
            continue
        extension = match.number.extension or _extension_after(text, match.end)
        match.number.extension = None
        e164 = phonenumbers.format_number(match.number, PhoneNumberFormat.E164)
        identity = phone_identity(e164, extension or "")
        if identity not in found:
            found.append(identity)
    return found


def _extension_after(text: str, end: int) -> str:
    """The labels phonenumbers does not know (`вн. 12`, `внутр. 12`)."""
    match = _EXTENSION_AFTER.match(text, end)
    return match.group(1) if match else ""


def format_display(
    number: phonenumbers.PhoneNumber, style: DisplayStyle, extension: str = ""
) -> str:
    if style == "e164":
        return phone_identity(phonenumbers.format_number(number, PhoneNumberFormat.E164),
                              extension)
    if style == "national":
        shown = phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL)
    else:
        shown = phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL)
        if style == "pretty":
            shown = _bracket_area_code(shown)
    return shown + _extension_suffix(number, extension)


def _extension_suffix(number: phonenumbers.PhoneNumber, extension: str) -> str:
    if not extension:
        return ""
    label = "доб." if phonenumbers.region_code_for_number(number) in _DOB_REGIONS else "ext."
    return f" {label} {extension}"


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
