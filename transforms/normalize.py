"""A parsed lead to a normalized one, or a rejection that says what to fix."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from transforms.companies import split_company
from transforms.emails import domain_of, email_domain_typo, normalize_email
from transforms.identity_rules import IdentityRules
from transforms.names import normalize_name
from transforms.phones import DisplayStyle, normalize_phone
from transforms.records import Lead, ParsedLead, Rejection
from transforms.sources import categorize


@dataclass(frozen=True)
class NormalizeRules:
    region: str
    phone_display: DisplayStyle
    legal_forms: Mapping[str, Sequence[str]]
    source_rules: Sequence[Mapping[str, object]]
    fallback_category: str
    # provider domains for the typo warning; without them no domain is flagged
    identity: IdentityRules = field(default_factory=IdentityRules)
    # the fixed list: a category a person chose (a CRM row's Source) is taken as it is
    categories: tuple[str, ...] = ()


# Unrecognised labels named in a rejection; the rest are counted.
_NAMED_LABELS = 8


def normalize_lead(parsed: ParsedLead, rules: NormalizeRules) -> Lead | Rejection:
    warnings: list[str] = []
    phones = [normalize_phone(p, rules.region, rules.phone_display) for p in parsed.phones]
    valid_phones = [p for p in phones if p.valid]
    warnings += [f"phone {p.raw!r} is not a valid number" for p in phones if not p.valid]
    emails: list[str] = []
    for text in parsed.emails:
        email = normalize_email(text)
        if not email:
            warnings.append(f"email {text!r} is not a valid address")
        elif email not in emails:
            emails.append(email)
            warnings += _domain_typo_warnings(email, rules.identity)

    if not valid_phones and not emails:
        detail = "; ".join(warnings + _unrecognised(parsed)) or "none found in the item"
        return Rejection(f"no phone or email to reach the person ({detail})")

    phone = valid_phones[0] if valid_phones else (phones[0] if phones else None)
    name = normalize_name(parsed.name)
    if not name:
        warnings.append("no name")
    company, legal_form = split_company(parsed.company, rules.legal_forms)
    chosen = parsed.raw_source.get("category", "")
    if chosen in rules.categories:
        category, matched = chosen, True
    else:
        category, matched = categorize(_signals(parsed), rules.source_rules,
                                       rules.fallback_category)
    return Lead(
        lead_id=parsed.lead_id,
        channel=parsed.channel,
        received_at=parsed.received_at,
        name=name,
        phone=(phone.e164 or phone.raw) if phone else "",
        phone_display=phone.display if phone else "",
        phone_valid=bool(phone and phone.valid),
        email=emails[0] if emails else "",
        company=company,
        legal_form=legal_form,
        position=" ".join(parsed.position.split()),
        city=" ".join(parsed.city.split()),
        source=category,
        source_matched=matched,
        raw_source=dict(parsed.raw_source),
        subject=parsed.subject,
        message=parsed.message.strip(),
        warnings=parsed.warnings + warnings,
        phone_extension=phone.extension if phone and phone.valid else "",
        fingerprint=parsed.fingerprint or _fields_fingerprint(parsed),
    )


def _domain_typo_warnings(email: str, identity: IdentityRules) -> list[str]:
    """The address stays as written; matching reads it as the service meant."""
    domain = domain_of(email)
    meant = email_domain_typo(domain, identity)
    return [f"email domain {domain} looks like a typo of {meant}"] if meant else []


def content_fingerprint(parts: Iterable[str]) -> str:
    """A hash that identifies an inquiry's content: the same text, the same hash,
    whichever copy of it was read."""
    # one update of the whole: the same digest as one update a part
    joined = b"".join([part.encode("utf-8", "surrogatepass") + b"\x1f" for part in parts])
    return hashlib.sha256(joined).hexdigest()[:32]


def _fields_fingerprint(parsed: ParsedLead) -> str:
    """For a parser that left none: what it found, field by field."""
    return content_fingerprint([
        parsed.channel, parsed.name, *parsed.phones, "", *parsed.emails, "", parsed.company,
        parsed.position, parsed.city, parsed.subject, parsed.message,
        *(f"{key}={value}" for key, value in sorted(parsed.raw_source.items())),
    ])


def _unrecognised(parsed: ParsedLead) -> list[str]:
    """The labels with a value LeadHub did not recognise: a phone may sit in one."""
    if not parsed.unrecognised:
        return []
    what = "columns" if parsed.channel == "import" else "fields"
    named = ", ".join(repr(label) for label in parsed.unrecognised[:_NAMED_LABELS])
    more = len(parsed.unrecognised) - _NAMED_LABELS
    named += f" and {more} more" if more > 0 else ""
    return [f"{what} LeadHub did not recognise: {named}; name the phone or email one in "
            "field_aliases (or csv.columns) and replay"]


def _signals(parsed: ParsedLead) -> dict[str, str]:
    signals = {key: value for key, value in parsed.raw_source.items() if key != "source"}
    signals["channel"] = parsed.channel
    signals["source_text"] = parsed.raw_source.get("source", "")
    return signals
