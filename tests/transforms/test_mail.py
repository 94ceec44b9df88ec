"""Every case in tests/cases/mail: an .eml and the parse a person expects.

`<id>.expected.json` holds `outcome` (lead, skipped or quarantined), maybe
`reason_contains`, and for a lead any of: kind, preset, name, phones, email,
company, legal_form, position, city, utm_source, subject, message_contains,
message_excludes.
"""

import base64
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


def _parse(data: bytes, mail_rules):
    return parse_email(data, mail_rules)


def _letter(headers: bytes, body: bytes = b"Perezvonite: 8 912 345-67-89\n") -> bytes:
    return headers + b"\nMessage-ID: <q-1@mail.ru>\n\n" + body


@pytest.fixture
def header_sizes(monkeypatch):
    """The length of every header value the standard library is asked to parse:
    its parsers cost the square of that, so bounding it bounds the work."""
    from email.headerregistry import HeaderRegistry

    sizes: list[int] = []
    original = HeaderRegistry.__call__

    def measured(self, name, value):
        sizes.append(len(value))
        return original(self, name, value)

    monkeypatch.setattr(HeaderRegistry, "__call__", measured)
    return sizes


def test_a_from_with_100000_addresses_is_read_for_its_first_ones(mail_rules, header_sizes):
    from transforms.mail import MAX_ADDRESSES, MAX_HEADER_CHARS

    addresses = b", ".join(b"user%d@example.com" % i for i in range(100_000))
    lead = _parse(_letter(b"From: " + addresses), mail_rules)
    assert lead.emails == ["user0@example.com"]
    assert lead.phones == ["+79123456789"]
    assert f"the From header lists more than {MAX_ADDRESSES} addresses" in lead.warnings[0]
    assert max(header_sizes) <= MAX_HEADER_CHARS


def test_a_1mb_encoded_subject_is_cut_with_a_warning(mail_rules, header_sizes):
    from transforms.mail import MAX_HEADER_CHARS

    word = b"=?utf-8?b?" + base64.b64encode("Заявка".encode()) + b"?="
    subject = b" ".join([word] * 40_000)
    lead = _parse(_letter(b"From: ivan@mail.ru\nSubject: " + subject), mail_rules)
    assert lead.subject.startswith("ЗаявкаЗаявка") and "=?utf-8" not in lead.subject
    [warning] = lead.warnings
    assert re.fullmatch(f"the Subject header is {len(subject):,} characters long; "
                        r"its first [\d,]+ were read", warning)
    assert max(header_sizes) <= MAX_HEADER_CHARS


def test_a_huge_content_type_is_quarantined_before_the_parser_reads_it(mail_rules,
                                                                       header_sizes):
    params = b"; ".join(b"p%d=v" % i for i in range(100_000))
    result = _parse(_letter(b"From: ivan@mail.ru\nContent-Type: text/plain; " + params),
                    mail_rules)
    assert isinstance(result, Rejection)
    assert result.reason.startswith("a Content-Type header is 988,90")
    assert header_sizes == []  # refused before any header was parsed


def _copy_as_imap_and_mbox(message: bytes) -> tuple[bytes, bytes]:
    """The same mail as IMAP serves it (CRLF, the server's own headers) and as
    an mbox export keeps it (LF, `>From ` quoting, Status: header)."""
    imap = b"Return-Path: <ivan@mail.ru>\r\nReceived: by mx.example.ru\r\n" + message.replace(
        b"\n", b"\r\n")
    head, _, body = message.partition(b"\n\n")
    mbox = head + b"\nStatus: RO\nX-Mozilla-Status: 0001\n\n" + body.replace(b"\nFrom ",
                                                                               b"\n>From ")
    return imap, mbox


MESSAGE = (b"From: Ivan <ivan@mail.ru>\nSubject: =?utf-8?q?=D0=97=D0=B0=D1=8F=D0=B2=D0=BA=D0=B0?="
           b"\nMessage-ID: <same-id@mail.ru>\nContent-Type: text/plain; charset=utf-8\n"
           b"Content-Transfer-Encoding: quoted-printable\n\nNeed 40 boxes.\nFrom Monday on.\n"
           b"Phone 8 912 345-67-89  \n")


def test_copies_of_one_mail_have_one_fingerprint(mail_rules):
    imap, mbox = _copy_as_imap_and_mbox(MESSAGE)
    leads = [_parse(copy, mail_rules) for copy in (MESSAGE, imap, mbox)]
    assert len({lead.lead_id for lead in leads}) == 1
    assert len({lead.fingerprint for lead in leads}) == 1 and leads[0].fingerprint


def test_a_second_mail_reusing_a_message_id_has_its_own_fingerprint(mail_rules):
    cut_short = MESSAGE[: MESSAGE.index(b"From Monday")]
    other = MESSAGE.replace(b"40 boxes", b"12 pallets")
    first, *others = (_parse(m, mail_rules) for m in (MESSAGE, cut_short, other))
    assert all(lead.lead_id == first.lead_id for lead in others)  # same Message-ID
    assert len({first.fingerprint, *(lead.fingerprint for lead in others)}) == 3


def test_notification_with_first_and_last_name_fields_gives_the_full_name(mail_rules):
    text = ("From: noreply@site.ru\nSubject: Новая заявка с сайта\nContent-Type: text/plain;"
            " charset=utf-8\n\nИмя: Иван\nФамилия: Петров\nТелефон: 8 912 345-67-89\n")
    lead = _parse(text.encode(), mail_rules)
    assert lead.kind == "form_notification"
    assert lead.name == "Иван Петров"
