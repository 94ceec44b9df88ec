"""A parsed lead to a normalized one, or a rejection that says what to fix."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
        detail = "; ".join(warnings) or "none found in the item"
        return Rejection(f"no phone or email to reach the person ({detail})")

    phone = valid_phones[0] if valid_phones else (phones[0] if phones else None)
    name = normalize_name(parsed.name)
    if not name:
        warnings.append("no name")
    company, legal_form = split_company(parsed.company, rules.legal_forms)
    category, matched = categorize(_signals(parsed), rules.source_rules, rules.fallback_category)
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
        warnings=warnings,
        phone_extension=phone.extension if phone and phone.valid else "",
    )


def _domain_typo_warnings(email: str, identity: IdentityRules) -> list[str]:
    """The address stays as written; matching reads it as the service meant."""
    domain = domain_of(email)
    meant = email_domain_typo(domain, identity)
    return [f"email domain {domain} looks like a typo of {meant}"] if meant else []


def _signals(parsed: ParsedLead) -> dict[str, str]:
    signals = {key: value for key, value in parsed.raw_source.items() if key != "source"}
    signals["channel"] = parsed.channel
    signals["source_text"] = parsed.raw_source.get("source", "")
    return signals
