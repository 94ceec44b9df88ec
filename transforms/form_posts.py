"""Web-form posts stored by the endpoint, to leads: preset, spam rules, mapping."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from transforms.form_presets import FormPayloadError, parse_form_post
from transforms.json_input import (
    BROKEN_CHARACTERS,
    JsonInputError,
    load_json,
    without_lone_surrogates,
)
from transforms.records import ParsedLead, RawItem, Rejection
from transforms.submissions import SubmissionRules, parse_submission


@dataclass(frozen=True)
class FormRules:
    """A webhook form's config as processing needs it."""

    preset: str
    honeypot_fields: Sequence[str] = ()
    spam_words: Sequence[str] = ()


def spam_reason(record: Mapping[str, str], rules: FormRules) -> str | None:
    """Why a post looks like a bot's, or None. A honeypot field is hidden from
    people, so any value in it was typed by a bot."""
    by_label = {label.lower(): value for label, value in record.items()}
    for field in rules.honeypot_fields:
        if by_label.get(field.lower(), "").strip():
            return f"honeypot field {field!r} was filled"
    text = " ".join(record.values()).lower()
    for word in rules.spam_words:
        if word.lower() in text:
            return f"contains {word!r}"
    return None


def parse_form_item(
    item: RawItem, rules: FormRules, submission_rules: SubmissionRules
) -> ParsedLead | Rejection:
    """A post as the endpoint stored it (the decoded body) to a parsed lead."""
    try:
        body, broken = without_lone_surrogates(load_json(item.payload))
        submission = parse_form_post(rules.preset, body)
    except (FormPayloadError, JsonInputError) as error:
        return Rejection(f"not a {rules.preset} form post: {error}")
    reason = spam_reason(submission.record, rules)
    if reason:
        return Rejection(f"spam: {reason}")
    form_id = item.meta.get("form", "")
    lead = parse_submission(
        submission.record, "form", submission_rules,
        default_form=submission.form_name or form_id, fallback_time=item.received_at,
    )
    # The endpoint's id: the provider's submission id, or content + arrival
    # time, so the same text sent again next month is a new inquiry.
    lead.lead_id = item.item_id.partition("@")[0]
    lead.received_at = item.received_at
    lead.raw_source.update({"form_id": form_id, "preset": rules.preset})
    if broken:
        lead.warnings.append(BROKEN_CHARACTERS)
    return lead
