"""Mask phones and emails before text reaches a log."""

from __future__ import annotations

import re

_EMAIL = re.compile(r"([\w.+'-])[\w.+'-]*(@[\w-]+(?:\.[\w-]+)+)")
# Runs of 9+ digits with the usual separators: keep the first 2 and last 2.
_PHONE = re.compile(r"(?<![\w])(\+?\d[\d\s().-]{5,}\d)(?![\w])")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def mask_pii(text: str) -> str:
    """`ivan@mail.ru` -> `i***@mail.ru`; `+7 912 345-67-89` -> `+7*******89`."""
    text = _EMAIL.sub(lambda m: f"{m.group(1)}***{m.group(2)}", text)
    return _PHONE.sub(_mask_phone, text)


def _mask_phone(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(1))
    if len(digits) < 9 or _DATE.match(match.group(1)):
        return match.group(1)
    prefix = "+" if match.group(1).startswith("+") else ""
    return f"{prefix}{digits[:2]}{'*' * (len(digits) - 4)}{digits[-2:]}"
