"""Form posts and CSV rows: flat label/value records mapped onto a lead."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from functools import lru_cache

from transforms.emails import normalize_email
from transforms.fields import LABEL_CACHE, FieldMap
from transforms.normalize import content_fingerprint
from transforms.phones import find_phones
from transforms.records import Channel, ParsedLead

_SOURCE_KEYS = (
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_content",
    "utm_term",
    "referrer",
    "source",
)
_DATE_FORMATS = (
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y %H:%M",
    "%d.%m.%Y",
    "%d.%m.%y",
    "%d/%m/%Y",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d",
    "%m/%d/%Y %H:%M:%S",
)
# json.dumps(..., ensure_ascii=False) without making an encoder for every row.
_JSON = json.JSONEncoder(ensure_ascii=False)
# `contact.phone`, `q3_name[first]`: the last part names the field.
_NESTED_LABEL = re.compile(r"[.\[\]]+")


@dataclass(frozen=True)
class SubmissionRules:
    fields: FieldMap
    region: str
    tz: tzinfo = UTC


def flatten(record: Mapping[str, object], prefix: str = "") -> list[tuple[str, str]]:
    """Nested JSON to label/value pairs (`contact.phone`), lists joined by commas."""
    pairs: list[tuple[str, str]] = []
    for key, value in record.items():
        label = f"{prefix}.{key}" if prefix else str(key)
        if type(value) is str:  # nearly every value: no need to ask what else it is
            pairs.append((label, value))
        elif isinstance(value, Mapping):
            pairs += flatten(value, label)
        elif isinstance(value, list):
            pairs.append((label, ", ".join(str(v) for v in value if v not in (None, ""))))
        elif value is not None:
            pairs.append((label, str(value)))
    return pairs


def parse_submission(
    record: Mapping[str, object],
    channel: Channel,
    rules: SubmissionRules,
    default_form: str = "",
    fallback_time: datetime | None = None,
) -> ParsedLead:
    """A web-form post (channel `form`) or an imported row (channel `import`)."""
    pairs = flatten(record)
    in_order = sorted(pairs)
    fields, unknown = _map(pairs, rules.fields)
    form = fields.get("form", default_form)
    received_at, readable = parse_datetime(fields.get("received_at", ""), rules.tz)
    lead = ParsedLead(
        lead_id=_lead_id(channel, form, fields.get("submission_id", ""), in_order),
        channel=channel,
        received_at=received_at or fallback_time or datetime.now(UTC),
        name=fields.get("name", ""),
        phones=_phones(fields.get("phone", ""), rules.region),
        emails=[e for e in (normalize_email(p) for p in fields.get("email", "").split(",")) if e],
        company=fields.get("company", ""),
        position=fields.get("position", ""),
        city=fields.get("city", ""),
        message=fields.get("message", ""),
        kind=channel,
        raw_source={key: fields[key] for key in _SOURCE_KEYS if fields.get(key)},
        unrecognised=list(unknown),
        fingerprint=content_fingerprint(f"{label}={value}" for label, value in in_order),
    )
    if not readable:
        lead.warnings.append(
            f"date {fields['received_at']!r} is not a date and time LeadHub can use; "
            "the time the item was received is used instead"
        )
    if channel == "form" and form:
        lead.raw_source["form"] = form
    if not lead.emails and fields.get("email"):
        lead.emails = [fields["email"]]  # kept as typed so normalize can flag it
    return lead


def parse_datetime(text: str, tz: tzinfo = UTC) -> tuple[datetime | None, bool]:
    """Dates as people export them; (None, False) when text is not one. A date
    or time without a zone is read in `tz`, the business's own time zone."""
    text = text.strip()
    if not text:
        return None, True
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        parsed = None
    for fmt in _DATE_FORMATS if parsed is None else ():
        try:
            parsed = datetime.strptime(text, fmt)
            break
        except ValueError:
            continue
    if parsed is None:
        return None, False
    moment = parsed if parsed.tzinfo else parsed.replace(tzinfo=tz)
    try:
        moment.astimezone(UTC)  # `9999-12-31T23:59:59-12:00` is past the last moment there is
    except OverflowError:
        return None, False
    return moment, True


def _map(pairs: list[tuple[str, str]], field_map: FieldMap) -> tuple[dict, dict]:
    """Nested labels are tried whole and by their last part (`contact.phone`)."""
    return field_map.map_pairs((_label_in(field_map, label), value) for label, value in pairs)


@lru_cache(maxsize=LABEL_CACHE)
def _label_in(field_map: FieldMap, label: str) -> str:
    """The label as mapped: whole when the map knows it, else its last part."""
    return label if field_map.field_for(label) else _last_part(label)


def _last_part(label: str) -> str:
    return _NESTED_LABEL.split(label.strip(".[]"))[-1]


def _phones(text: str, region: str) -> list[str]:
    if not text:
        return []
    return find_phones(text, region) or [text]


def _lead_id(channel: Channel, form: str, submission_id: str, sorted_pairs: list) -> str:
    if submission_id and channel == "form":
        return f"form:{form or 'form'}:{submission_id}"
    digest = hashlib.sha256(_JSON.encode(sorted_pairs).encode()).hexdigest()
    prefix = f"form:{form or 'form'}" if channel == "form" else "import"
    return f"{prefix}:{digest[:24]}"
