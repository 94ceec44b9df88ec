"""Parse one email into a lead: form notifications and direct inquiries.

Auto-replies, bounces and bulk mail are recognised and returned as skips with
a reason, never silently dropped.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime
from fnmatch import fnmatchcase

from transforms.companies import split_company
from transforms.emails import domain_of, normalize_email
from transforms.fields import FieldMap
from transforms.html_text import html_to_text
from transforms.notification_presets import (
    GENERIC,
    NotificationPreset,
    choose_preset,
    form_text,
    notification_pairs,
)
from transforms.phones import find_phones
from transforms.records import ParsedLead, ParseSkip
from transforms.text import decode_text, repair_header

_LABEL_LINE = re.compile(r"^\s*([^:\n]{1,60}?)\s*:\s*(.*)$")
_REPLY_HEADER = re.compile(
    r"^(On .{5,200} wrote:|.{5,200}(написал|написала|написал\(а\)|пишет):"
    r"|-{2,}\s*(Original Message|Исходное сообщение|Пересылаемое сообщение|Forwarded message)"
    r"\s*-{2,}|From: .+ Sent: .+)\s*$",
    re.IGNORECASE,
)
_SIGNATURE_MARK = re.compile(
    r"^(--\s*|__+|с уважением.*|best regards.*|regards.*|thanks.*)$", re.IGNORECASE
)
_AUTO_REPLY_SUBJECT = re.compile(
    r"^(автоматический ответ|автоответ|auto:|automatic reply|autoreply|out of (the )?office|"
    r"я в отпуске|вне офиса)",
    re.IGNORECASE,
)
_BOUNCE_SUBJECT = re.compile(
    r"(undeliver|delivery status notification|mail delivery (failed|failure|subsystem)|"
    r"returned mail|недоставленное сообщение|не удалось доставить)",
    re.IGNORECASE,
)
_BOUNCE_SENDERS = ("mailer-daemon", "postmaster", "mail-daemon")
_CONTACT_FIELDS = {"phone", "email", "name"}
_ADDRESS_IN_NAME = re.compile(r"<?([\w.+-]+@[\w-]+(?:\.[\w-]+)+)>?")
_MAX_MESSAGE = 5000


@dataclass(frozen=True)
class MailRules:
    """What the mail parser needs from config."""

    fields: FieldMap
    robot_senders: Sequence[str]
    form_subjects: Sequence[str]
    position_words: Sequence[str]
    legal_forms: Mapping[str, Sequence[str]]
    region: str
    presets: Sequence[NotificationPreset] = ()


def parse_email(
    data: bytes, rules: MailRules, mailbox: str = "", fallback_time: datetime | None = None
) -> ParsedLead | ParseSkip:
    message = BytesParser(policy=policy.default).parsebytes(data)
    subject = _header(message, "subject")
    sender_name, sender = _first_address(message, "from")
    skip = _not_a_lead(message, subject, sender)
    body = _body_text(message)
    clean_body = _strip_quoted(body)
    preset = choose_preset(sender, subject, rules.presets)
    pairs, form_body = _form_pairs(clean_body, preset)
    fields, _ = rules.fields.map_pairs(pairs)
    is_robot = _is_robot(sender, rules.robot_senders)
    claimed = is_robot or preset is not GENERIC or _matches(subject, rules.form_subjects)
    looks_like_form = claimed and bool(_CONTACT_FIELDS & fields.keys())
    if skip and not (skip.reason.startswith("bulk") and looks_like_form):
        return skip

    reply_name, reply_to = _first_address(message, "reply-to")
    people = [
        (n, a)
        for n, a in ((sender_name, sender), (reply_name, reply_to))
        if a and not _is_robot(a, rules.robot_senders)
    ]
    if looks_like_form:
        if preset is not GENERIC:
            # a known template's From is the form service or the site itself
            people = [(n, a) for n, a in people if a != sender]
        people.reverse()  # Reply-To is the visitor; a human From is the site owner
        lead = _from_fields(fields, form_body, rules)
        lead.kind = "form_notification"
    else:
        lead = _from_direct_inquiry(clean_body, subject, rules)
        lead.kind = "direct"
    for name, address in people:
        if address not in lead.emails:
            lead.emails.append(address)
        lead.name = lead.name or _display_name(name)

    lead.lead_id = _lead_id(message, data)
    lead.subject = subject
    lead.received_at = _date(message) or fallback_time or datetime.now(UTC)
    lead.raw_source = _raw_source(fields, mailbox, sender, subject, lead.kind)
    if lead.kind == "form_notification":
        lead.raw_source["preset"] = preset.name
    return lead


def _form_pairs(body: str, preset: NotificationPreset) -> tuple[list[tuple[str, str]], str]:
    """The body's label/value pairs, and the text a form's message falls back to."""
    if preset is GENERIC:
        return _label_pairs(body), body
    return notification_pairs(body, preset), form_text(body, preset)


def _not_a_lead(message: EmailMessage, subject: str, sender: str) -> ParseSkip | None:
    local_part = sender.partition("@")[0]
    if (
        local_part in _BOUNCE_SENDERS
        or message.get_content_type() == "multipart/report"
        or _BOUNCE_SUBJECT.search(subject)
    ):
        return ParseSkip("bounce: a delivery failure report")
    auto_submitted = str(message.get("auto-submitted", "no")).strip().lower()
    precedence = str(message.get("precedence", "")).strip().lower()
    if (
        auto_submitted.startswith("auto-replied")
        or message.get("x-autoreply")
        or message.get("x-autorespond")
        or precedence == "auto_reply"
        or _AUTO_REPLY_SUBJECT.search(subject)
    ):
        return ParseSkip("auto-reply: an automatic answer, not an inquiry")
    if (
        precedence in ("bulk", "list", "junk")
        or auto_submitted != "no"
        or message.get("list-unsubscribe")
    ):
        return ParseSkip(f"bulk: mass or automated mail (Precedence: {precedence or 'none'})")
    return None


def _from_fields(fields: dict[str, str], body: str, rules: MailRules) -> ParsedLead:
    lead = _empty_lead()
    # `Name <address>` (the From line of a WordPress form mail) holds both
    name_field = fields.get("name", "")
    lead.name = " ".join(_ADDRESS_IN_NAME.sub(" ", name_field).split())
    lead.phones = _phones_in_field(fields.get("phone", ""), rules.region)
    addresses = _split(fields.get("email", "")) + _ADDRESS_IN_NAME.findall(name_field)
    lead.emails = list(dict.fromkeys(e for e in map(normalize_email, addresses) if e))
    lead.company = fields.get("company", "")
    lead.position = fields.get("position", "")
    lead.city = fields.get("city", "")
    lead.message = fields.get("message", "") or body
    lead.message = lead.message[:_MAX_MESSAGE]
    return lead


def _from_direct_inquiry(body: str, subject: str, rules: MailRules) -> ParsedLead:
    lead = _empty_lead()
    lead.phones = find_phones(body, rules.region)
    signature = _signature_lines(body)
    for line in signature:
        if not lead.company and split_company(line, rules.legal_forms)[1]:
            lead.company = line
        elif not lead.position and _is_position(line, rules.position_words):
            lead.position = line
    lead.message = body[:_MAX_MESSAGE]
    return lead


def _phones_in_field(text: str, region: str) -> list[str]:
    """Valid numbers as E.164; a value that holds none is kept as typed."""
    if not text:
        return []
    return find_phones(text, region) or [text]


def _split(text: str) -> list[str]:
    return [part for part in re.split(r"[,;\s]+", text) if part]


def _empty_lead() -> ParsedLead:
    return ParsedLead(lead_id="", channel="email", received_at=datetime.now(UTC))


def _header(message: EmailMessage, name: str) -> str:
    try:
        value = message.get(name)
    except (ValueError, IndexError):
        return ""
    return " ".join(repair_header(str(value or "")).split())


def _first_address(message: EmailMessage, name: str) -> tuple[str, str]:
    for display, address in getaddresses([_header(message, name)]):
        email = normalize_email(address)
        if email:
            return display, email
    return "", ""


def _display_name(name: str) -> str:
    name = name.strip().strip('"').strip()
    return "" if "@" in name else name


def _is_robot(address: str, robot_senders: Sequence[str]) -> bool:
    local_part = address.partition("@")[0]
    for pattern in robot_senders:
        pattern = pattern.lower()
        if "@" in pattern or "*" in pattern:
            if fnmatchcase(address, pattern):
                return True
        elif local_part == pattern or local_part.startswith(pattern + "+"):
            return True
    return False


def _matches(value: str, patterns: Sequence[str]) -> bool:
    value = value.lower()
    return any(fnmatchcase(value, pattern.lower()) for pattern in patterns)


def _body_text(message: EmailMessage) -> str:
    """The readable text: text/plain if any, else HTML turned into text.

    Attachments are never read; a form notification whose plain part lost
    the table still gets its fields from the HTML part.
    """
    plain = _part_text(message, "plain")
    html = _part_text(message, "html")
    html_text = html_to_text(html) if html else ""
    if not plain:
        return html_text
    if html_text and len(_label_pairs(html_text)) > len(_label_pairs(plain)):
        return html_text
    return plain


def _part_text(message: EmailMessage, subtype: str) -> str:
    try:
        part = message.get_body(preferencelist=(subtype,))
    except (KeyError, LookupError):
        part = None
    if part is None:
        return ""
    payload = part.get_payload(decode=True) or b""
    return decode_text(payload, part.get_content_charset())[0].replace("\r\n", "\n")


def _strip_quoted(body: str) -> str:
    """Drop the quoted conversation below a reply, so old phones are not taken."""
    kept: list[str] = []
    for line in body.splitlines():
        if _REPLY_HEADER.match(line.strip()):
            break
        if not line.lstrip().startswith(">"):
            kept.append(line.rstrip())
    return "\n".join(kept).strip()


def _label_pairs(text: str) -> list[tuple[str, str]]:
    """`Label: value` lines; lines below a label without one continue it."""
    pairs: list[tuple[str, str]] = []
    for line in text.splitlines():
        match = _LABEL_LINE.match(line)
        if match and not match.group(1).lower().startswith(("http", "https")):
            pairs.append((match.group(1), match.group(2)))
        elif pairs and line.strip() and pairs[-1][1]:
            label, value = pairs[-1]
            pairs[-1] = (label, value + "\n" + line.strip())
    return pairs


def _signature_lines(body: str) -> list[str]:
    """The short lines at the end of a letter, after a sign-off if there is one."""
    lines = [line.strip() for line in body.splitlines() if line.strip()]
    for index, line in enumerate(lines):
        if _SIGNATURE_MARK.match(line):
            return lines[index + 1 :]
    return [line for line in lines[-8:] if len(line) <= 80]


def _is_position(line: str, position_words: Sequence[str]) -> bool:
    words = line.lower().replace(",", " ").split()
    return 0 < len(words) <= 6 and any(
        words[0] == w or words[0].startswith(w) for w in (p.lower() for p in position_words)
    )


def _lead_id(message: EmailMessage, data: bytes) -> str:
    message_id = _header(message, "message-id").strip("<> ")
    basis = message_id.encode() if message_id else data
    return "email:" + hashlib.sha256(basis).hexdigest()[:24]


def _date(message: EmailMessage) -> datetime | None:
    raw = _header(message, "date")
    if not raw:
        return None
    try:
        parsed = parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _raw_source(
    fields: dict[str, str], mailbox: str, sender: str, subject: str, kind: str
) -> dict[str, str]:
    source = {
        key: fields[key]
        for key in (
            "utm_source",
            "utm_medium",
            "utm_campaign",
            "utm_content",
            "utm_term",
            "referrer",
            "form",
            "source",
        )
        if fields.get(key)
    }
    if kind == "form_notification":
        source.setdefault("form", subject)
    if mailbox:
        source["mailbox"] = mailbox
    if sender:
        source["sender_domain"] = domain_of(sender)
    return source
