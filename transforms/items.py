"""One raw item, whatever its kind, to a normalized lead, a skip or a rejection."""

from __future__ import annotations

import json
from collections.abc import Mapping

from transforms.form_posts import FormRules, parse_form_item
from transforms.mail import MailRules, parse_email
from transforms.normalize import NormalizeRules, normalize_lead
from transforms.records import Lead, ParsedLead, ParseSkip, RawItem, Rejection
from transforms.submissions import SubmissionRules, parse_submission


def parse_item(
    item: RawItem,
    mail_rules: MailRules,
    submission_rules: SubmissionRules,
    form_rules: Mapping[str, FormRules] | None = None,
) -> ParsedLead | ParseSkip | Rejection:
    """`form_rules` maps a webhook source's name to its form's rules."""
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
        record = json.loads(item.payload.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        return Rejection(
            f"not valid JSON ({error.msg} at character {error.pos})"
            if isinstance(error, json.JSONDecodeError)
            else "not UTF-8 text"
        )
    if not isinstance(record, dict):
        return Rejection(f"expected one JSON object per submission, got {type(record).__name__}")
    channel = "form" if item.kind == "form" else "import"
    return parse_submission(
        record,
        channel,
        submission_rules,
        default_form=item.meta.get("form", ""),
        fallback_time=item.received_at,
    )


def lead_from_item(
    item: RawItem,
    mail_rules: MailRules,
    submission_rules: SubmissionRules,
    normalize_rules: NormalizeRules,
    form_rules: Mapping[str, FormRules] | None = None,
) -> Lead | ParseSkip | Rejection:
    parsed = parse_item(item, mail_rules, submission_rules, form_rules)
    if isinstance(parsed, ParsedLead):
        return normalize_lead(parsed, normalize_rules)
    return parsed
