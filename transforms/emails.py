"""Email addresses: trimmed, lower-cased, syntax-checked (no DNS look-ups)."""

from __future__ import annotations

import re

from email_validator import EmailNotValidError, validate_email

# Loose on purpose: candidates are then checked by email-validator.
_CANDIDATE = re.compile(r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE)


def normalize_email(text: str) -> str | None:
    """The canonical address, or None when it is not a valid address."""
    candidate = text.strip().strip("<>").strip().removeprefix("mailto:")
    if not candidate:
        return None
    try:
        checked = validate_email(candidate, check_deliverability=False)
    except EmailNotValidError:
        return None
    return checked.normalized.lower()


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
