"""One raw item, whatever its kind, to a normalized lead, a skip or a rejection.

`lead_from_item` is total: whatever the bytes, it returns one of the three
and never raises, so one hostile item is quarantined on its own and never
holds up the items around it. What it returns can always be stored: its text
is encodable and its time a real moment.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from operator import attrgetter

from transforms.crm_rows import invalid_phone_reason, parse_crm_row
from transforms.form_posts import FormRules, parse_form_item
from transforms.json_input import (
    BROKEN_CHARACTERS,
    JsonInputError,
    has_lone_surrogate,
    load_clean_json,
    replace_lone_surrogates,
)
from transforms.mail import MailRules, parse_email
from transforms.normalize import NormalizeRules, normalize_lead
from transforms.phones import normalize_phone
from transforms.records import Lead, ParsedLead, ParseSkip, RawItem, Rejection
from transforms.submissions import SubmissionRules, parse_submission

# Longer exception messages are cut in a rejection's reason.
_MAX_ERROR_CHARS = 300
_TEXT_FIELDS = ("lead_id", "name", "phone", "phone_display", "email", "company", "legal_form",
                "position", "city", "source", "subject", "message")
_text_fields = attrgetter(*_TEXT_FIELDS)


def parse_item(
    item: RawItem,
    mail_rules: MailRules,
    submission_rules: SubmissionRules,
    form_rules: Mapping[str, FormRules] | None = None,
) -> ParsedLead | ParseSkip | Rejection:
    """`form_rules` maps a webhook source's name to its form's rules."""
    if item.meta.get("unreadable"):
        return Rejection(item.meta["unreadable"])
    if item.meta.get("crm"):
        return parse_crm_row(item)
    if item.meta.get("webhook"):
        rules = (form_rules or {}).get(item.source)
        if rules is None:
            return Rejection(f"no webhook source {item.source!r} in the config any more")
        return parse_form_item(item, rules, submission_rules)
    if item.kind == "email":
        return parse_email(
            item.payload,
            mail_rules,
            mailbox=item.meta.get("mailbox", ""),
            fallback_time=item.received_at,
        )
    try:
        record, broken = load_clean_json(item.payload)
    except JsonInputError as error:
        return Rejection(str(error))
    if not isinstance(record, dict):
        return Rejection(f"expected one JSON object per submission, got {type(record).__name__}")
    channel = "form" if item.kind == "form" else "import"
    parsed = parse_submission(
        record,
        channel,
        submission_rules,
        default_form=item.meta.get("form", ""),
        fallback_time=item.received_at,
    )
    if broken:
        parsed.warnings.append(BROKEN_CHARACTERS)
    return parsed


def lead_from_item(
    item: RawItem,
    mail_rules: MailRules,
    submission_rules: SubmissionRules,
    normalize_rules: NormalizeRules,
    form_rules: Mapping[str, FormRules] | None = None,
) -> Lead | ParseSkip | Rejection:
    try:
        parsed = parse_item(item, mail_rules, submission_rules, form_rules)
        outcome = normalize_lead(parsed, normalize_rules) if isinstance(
            parsed, ParsedLead) else parsed
        if item.meta.get("crm") and isinstance(parsed, ParsedLead) and parsed.phones and (
                not normalize_phone(parsed.phones[0], normalize_rules.region).valid):
            # A person typed it and will fix it: it goes to Needs review, not in.
            outcome = invalid_phone_reason(item, parsed.phones[0])
    except Exception as error:  # input no rule foresaw: this item is quarantined, not the batch
        outcome = Rejection(f"could not be read ({_describe(error)})")
    return _storable(outcome, item)


def _describe(error: Exception) -> str:
    message = str(error)
    if len(message) > _MAX_ERROR_CHARS:
        message = message[:_MAX_ERROR_CHARS] + "…"
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


def _storable(outcome: Lead | ParseSkip | Rejection, item: RawItem) -> Lead | ParseSkip | Rejection:
    """What the store cannot take, made storable: half a character (a lone
    surrogate that reached the text some other way) becomes U+FFFD, and a time
    that cannot be converted to UTC becomes the item's own."""
    if not isinstance(outcome, Lead):
        if not has_lone_surrogate(outcome.reason):
            return outcome
        return replace(outcome, reason=replace_lone_surrogates(outcome.reason))
    if not _has_broken_text(outcome) and _real_moment(outcome.received_at):
        return outcome  # nearly every lead: nothing to make storable
    changes = {name: replace_lone_surrogates(getattr(outcome, name)) for name in _TEXT_FIELDS}
    changes["raw_source"] = {key: replace_lone_surrogates(value)
                             for key, value in outcome.raw_source.items()}
    warnings = [replace_lone_surrogates(warning) for warning in outcome.warnings]
    if any(changes[name] != getattr(outcome, name) for name in changes):
        warnings.append(BROKEN_CHARACTERS)
    changes["received_at"] = outcome.received_at
    if not _real_moment(outcome.received_at):
        warnings.append(f"received time {outcome.received_at.isoformat()} is not a real moment; "
                        "the time the item was received is used")
        changes["received_at"] = item.received_at
    return replace(outcome, **changes, warnings=warnings)


def _has_broken_text(lead: Lead) -> bool:
    """Whether any text `_storable` cleans holds a lone surrogate (looked for
    in one string: joining keeps every code point as it is)."""
    return has_lone_surrogate("".join([*_text_fields(lead), *lead.raw_source.values(),
                                       *lead.warnings]))


def _real_moment(moment: datetime) -> bool:
    try:
        moment.astimezone(UTC)
    except (OverflowError, ValueError):
        return False
    return True
