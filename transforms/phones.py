"""Phone numbers: parse any written form, key on E.164 (plus the extension),
display for people."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
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
# The same phone strings recur all through an import: each is parsed once.
PHONE_CACHE = 1 << 16
# A Russian mobile as people write it: +7, 8 or 7 (or nothing), the 9XX code
# (in brackets or not), then 3 + 2 + 2 digits; spaces or hyphens between.
_COMMON_MOBILE = re.compile(
    r"(?:\+7|8|7)?[ -]?(?:\((9\d\d)\)|(9\d\d))[ -]?(\d{3})[ -]?(\d\d)[ -]?(\d\d)")
_RU_MOBILE_NUMBER = re.compile(
    phonenumbers.PhoneMetadata.metadata_for_region("RU").mobile.national_number_pattern)


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


@lru_cache(maxsize=PHONE_CACHE)
def normalize_phone(text: str, region: str, style: DisplayStyle = "pretty") -> Phone:
    """`8 912 345-67-89`, `+7(912)3456789` and `79123456789` give one E.164 key;
    `… доб. 280` keeps 280 as the extension.

    An invalid number keeps its raw text and an empty key, so it is flagged,
    never silently changed or dropped.
    """
    raw = " ".join(text.split())
    base, extension = split_extension(raw)
    national = russian_mobile(base, region)
    if national:
        return _russian_mobile_phone(raw, national, extension, style)
    return _parsed_phone(raw, base, extension, region, style)


def _parsed_phone(raw: str, base: str, extension: str, region: str,
                  style: DisplayStyle) -> Phone:
    """What phonenumbers reads in `base`: the way for any number."""
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


def russian_mobile(text: str, region: str) -> str:
    """The 10-digit national number when `text` is nothing but a Russian
    mobile written the common ways (`+7 912 345-67-89`, `8(912)3456789`,
    `79123456789`), "" for anything else. The number must fit phonenumbers'
    own pattern of Russian mobiles, so what this accepts phonenumbers reads
    the same way; everything else goes to phonenumbers."""
    if region != "RU":
        return ""
    match = _COMMON_MOBILE.fullmatch(text)
    if match is None:
        return ""
    national = "".join(group for group in match.groups() if group)
    return national if _RU_MOBILE_NUMBER.fullmatch(national) else ""


def _russian_mobile_phone(raw: str, national: str, extension: str,
                          style: DisplayStyle) -> Phone:
    """What `_parsed_phone` makes of a Russian mobile, without parsing it:
    phonenumbers formats every one of them `9XX XXX-XX-XX`."""
    e164 = f"+7{national}"
    area, local = national[:3], f"{national[3:6]}-{national[6:8]}-{national[8:]}"
    if style == "e164":
        display = phone_identity(e164, extension)
    else:
        display = {"national": f"8 ({area}) {local}", "international": f"+7 {area} {local}",
                   "pretty": f"+7 ({area}) {local}"}[style]
        display += f" доб. {extension}" if extension else ""
    return Phone(raw=raw, e164=e164, display=display, extension=extension)


def split_extension(text: str) -> tuple[str, str]:
    """`+7 495 123-45-67 доб. 12` -> (`+7 495 123-45-67`, `12`)."""
    match = _EXTENSION.search(text)
    if match is None or not _DIGITS.search(text[: match.start()]):
        return text, ""
    return text[: match.start()], match.group(1)


def find_phones(text: str, region: str) -> list[str]:
    """Every valid phone number written in free text, in order: its E.164
    number, with `;ext=NNN` when an extension follows it."""
    return list(_found_phones(text, region))


@lru_cache(maxsize=PHONE_CACHE)
def _found_phones(text: str, region: str) -> tuple[str, ...]:
    national = russian_mobile(" ".join(text.split()), region)
    return (f"+7{national}",) if national else tuple(matched_phones(text, region))


def matched_phones(text: str, region: str) -> list[str]:
    """`find_phones` by phonenumbers' matcher: the way for any text."""
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
