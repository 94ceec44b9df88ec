"""Every case in tests/cases/mail: an .eml and the parse a person expects.

`<id>.expected.json` holds `outcome` (lead, skipped or quarantined), maybe
`reason_contains`, and for a lead any of: kind, preset, name, phones, email,
company, legal_form, position, city, utm_source, subject, message_contains,
message_excludes.
"""

import json
import re
from pathlib import Path

import pytest

from transforms.mail import parse_email
from transforms.normalize import normalize_lead
from transforms.records import Lead, ParsedLead, ParseSkip, Rejection

CASES = sorted((Path(__file__).parent.parent / "cases" / "mail").glob("*.eml"))


def _outcome(path: Path, mail_rules, normalize_rules):
    parsed = parse_email(path.read_bytes(), mail_rules, mailbox="sales")
    if isinstance(parsed, ParsedLead):
        return parsed, normalize_lead(parsed, normalize_rules)
    return parsed, parsed


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_mail_case(path, mail_rules, normalize_rules):
    expected = json.loads(path.with_suffix(".expected.json").read_text(encoding="utf-8"))
    parsed, result = _outcome(path, mail_rules, normalize_rules)
    outcome = {Lead: "lead", ParseSkip: "skipped", Rejection: "quarantined"}[type(result)]
    reason = getattr(result, "reason", "")
    assert outcome == expected["outcome"], reason
    if "reason_contains" in expected:
        assert expected["reason_contains"] in reason
    if outcome != "lead":
        return
    actual = {
        "kind": parsed.kind,
        "name": result.name,
        "phones": [p for p in parsed.phones if re.fullmatch(r"\+\d{8,15}", p)],
        "email": result.email,
        "company": result.company,
        "legal_form": result.legal_form,
        "position": result.position,
        "city": result.city,
        "utm_source": result.raw_source.get("utm_source", ""),
        "preset": result.raw_source.get("preset", ""),
        "subject": result.subject,
    }
    for key in actual.keys() & expected.keys():
        assert actual[key] == expected[key], key
    if "message_contains" in expected:
        assert expected["message_contains"] in result.message
    if "message_excludes" in expected:
        assert expected["message_excludes"] not in result.message


def test_there_are_cases():
    assert len(CASES) >= 30
