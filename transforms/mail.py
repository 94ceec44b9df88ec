"""Parse one email into a lead: form notifications and direct inquiries.

Auto-replies, bounces and bulk mail are recognised and returned as skips with
a reason, never silently dropped. The work one mail can cost is bounded: the
standard library's parsers slow down with the square of a header's size and
recurse once per nesting level, so headers are cut to a size and a count, and
a mail with more MIME parts than any real one is quarantined with the reason.
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
from transforms.normalize import content_fingerprint
from transforms.notification_presets import (
    GENERIC,
    NotificationPreset,
    choose_preset,
    form_text,
    notification_pairs,
)
from transforms.phones import find_phones
from transforms.records import ParsedLead, ParseSkip, Rejection
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

# A header LeadHub reads that is longer than this is cut (at a space, or between
# addresses) with a warning: a 1 MB encoded-word Subject cost 49-142 s whole.
MAX_HEADER_CHARS = 8 * 1024
# From and Reply-To are read for their first addresses only (one person writes);
# a From with 10,000 addresses cost 12.8 s whole.
MAX_ADDRESSES = 50
# More MIME parts than this (counted by their Content-Type lines) and the mail
# is quarantined: 3,000 nested parts exhaust the parser's recursion, and no
# inquiry has this many.
MAX_MIME_PARTS = 200
_ADDRESS_HEADERS = ("from", "reply-to")
_CONTENT_TYPE_LINE = re.compile(rb"(?im)^content-type[ \t]*:")
# A MIME header with its continuation lines.
_STRUCTURE_HEADER = re.compile(
    rb"(?im)^(content-type|content-disposition|content-transfer-encoding)[ \t]*:"
    rb"((?:[^\n]*\n[ \t])*[^\n]*)"
)
# Enough of a mail to show a reviewer who wrote and what.
_EXCERPT_BYTES = 256 * 1024
_HEAD_BYTES = 8 * 1024
# A header field name and its colon (RFC 5322), at the very start.
_HEADER_LINE = re.compile(rb"^[\x21-\x39\x3b-\x7e]+:")
_MAIL_HEADER = re.compile(rb"(?im)^(from|subject|message-id|date|received|return-path):")


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
) -> ParsedLead | ParseSkip | Rejection:
    message = _parse_bounded(data)
    if isinstance(message, Rejection):
        return message
    headers = _Headers(message)
    subject = headers.get("subject")
    sender_name, sender = headers.first_address("from")
    skip = _not_a_lead(message, headers, subject, sender)
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

    reply_name, reply_to = headers.first_address("reply-to")
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

    lead.lead_id = _lead_id(headers, data)
    lead.subject = subject
    lead.received_at = _date(headers) or fallback_time or datetime.now(UTC)
    lead.raw_source = _raw_source(fields, mailbox, sender, subject, lead.kind)
    if lead.kind == "form_notification":
        lead.raw_source["preset"] = preset.name
    lead.fingerprint = mail_fingerprint(sender, subject, body)
    lead.warnings = headers.warnings
    return lead


def mail_fingerprint(sender: str, subject: str, body: str) -> str:
    """The sender, subject and text with line ends, spacing and mbox's `>From`
    quoting evened out: the same for the copy in IMAP and the one in an mbox,
    different for a second mail that reuses a Message-ID or was cut short."""
    lines = (line.strip().lstrip(">") for line in body.splitlines())
    return content_fingerprint(["mail", sender, " ".join(subject.split()),
                                " ".join(" ".join(lines).split())])


def looks_like_mail(data: bytes) -> bool:
    """Starts with header lines, and one of them is one every mail has."""
    head = data[:_HEAD_BYTES]
    return bool(_HEADER_LINE.match(head) and _MAIL_HEADER.search(head))


def mail_excerpt(data: bytes) -> str:
    """Who wrote, about what, and the decoded text (not base64), for a person
    reviewing a quarantined mail; "" when even that cannot be read."""
    try:
        message = _parse_bounded(data[:_EXCERPT_BYTES])
        if isinstance(message, Rejection):
            return ""
        headers = _Headers(message)
        return (f"From: {headers.get('from')} | Subject: {headers.get('subject')} | "
                f"{_body_text(message)}")
    except Exception:  # an excerpt is a courtesy: the raw bytes are shown instead
        return ""


def _parse_bounded(data: bytes) -> EmailMessage | Rejection:
    """The parsed mail, or why it is not read: more MIME parts than MAX_MIME_PARTS,
    or a Content-Type (Disposition, Transfer-Encoding) longer than MAX_HEADER_CHARS,
    which the parser itself reads while it splits the mail (1 MB of it: minutes)."""
    parts = len(_CONTENT_TYPE_LINE.findall(data))
    if parts > MAX_MIME_PARTS:
        return Rejection(f"the mail has {parts} MIME parts; LeadHub reads mail with at most "
                         f"{MAX_MIME_PARTS}")
    for match in _STRUCTURE_HEADER.finditer(data):
        if len(match.group(2)) > MAX_HEADER_CHARS:
            name = match.group(1).decode("ascii").title()
            return Rejection(f"a {name} header is {len(match.group(2)):,} characters long; "
                             f"LeadHub reads MIME headers of at most {MAX_HEADER_CHARS:,}")
    try:
        message = BytesParser(policy=policy.default).parsebytes(data)
        for part in message.walk():  # every later read parses these headers again
            part.get_content_type()
            part.get_content_disposition()
            part.get("content-transfer-encoding")
    except RecursionError:  # `Content-Type: text/plain ((((...` nested hundreds deep
        return Rejection("a MIME header of the mail nests comments too deep to read "
                         "(RecursionError)")
    return message


class _Headers:
    """The headers LeadHub reads, each within MAX_HEADER_CHARS / MAX_ADDRESSES;
    what had to be cut or could not be parsed is noted in `warnings`."""

    def __init__(self, message: EmailMessage):
        self.message = message
        self.warnings: list[str] = []

    def get(self, name: str) -> str:
        raw = next((v for k, v in self.message.raw_items() if k.lower() == name), None)
        if raw is None:
            return ""
        raw = self._bounded(name, raw)
        try:
            value = str(self.message.policy.header_fetch_parse(name, raw))
        except Exception as error:  # the stdlib parser on hostile input: Recursion-, Value-,
            # Index-, AttributeError; the text as it is still says something
            self.warnings.append(f"the {name.title()} header could not be parsed "
                                 f"({type(error).__name__}); it is read as plain text")
            value = raw
        return " ".join(repair_header(value).split())

    def first_address(self, name: str) -> tuple[str, str]:
        value = self.get(name)
        try:
            pairs = getaddresses([value])
        except RecursionError:  # comments nested hundreds deep: ((((a@b.ru))))
            pairs = [("", address) for address in _ADDRESS_IN_NAME.findall(value)]
        for display, address in pairs:
            email = normalize_email(address)
            if email:
                return display, email
        return "", ""

    def _bounded(self, name: str, raw: str) -> str:
        if name in _ADDRESS_HEADERS:
            cut = _first_items(raw, MAX_ADDRESSES)
            if len(cut) < len(raw):
                self.warnings.append(f"the {name.title()} header lists more than "
                                     f"{MAX_ADDRESSES} addresses; the first {MAX_ADDRESSES} "
                                     "were read")
                raw = cut
        if len(raw) <= MAX_HEADER_CHARS:
            return raw
        cut = raw[:MAX_HEADER_CHARS]
        separators = "," if name in _ADDRESS_HEADERS else " \t\n"
        boundary = max(cut.rfind(separator) for separator in separators)
        cut = cut[:boundary] if boundary > 0 else cut
        self.warnings.append(f"the {name.title()} header is {len(raw):,} characters long; "
                             f"its first {len(cut):,} were read")
        return cut


def _first_items(raw: str, count: int) -> str:
    """`raw` up to its `count`-th comma (commas in quoted names count too)."""
    position = -1
    for _ in range(count):
        position = raw.find(",", position + 1)
        if position < 0:
            return raw
    return raw[:position]


def _form_pairs(body: str, preset: NotificationPreset) -> tuple[list[tuple[str, str]], str]:
    """The body's label/value pairs, and the text a form's message falls back to."""
    if preset is GENERIC:
        return _label_pairs(body), body
    return notification_pairs(body, preset), form_text(body, preset)


def _not_a_lead(
    message: EmailMessage, headers: _Headers, subject: str, sender: str
) -> ParseSkip | None:
    local_part = sender.partition("@")[0]
    if (
        local_part in _BOUNCE_SENDERS
        or message.get_content_type() == "multipart/report"
        or _BOUNCE_SUBJECT.search(subject)
    ):
        return ParseSkip("bounce: a delivery failure report")
    auto_submitted = (headers.get("auto-submitted") or "no").lower()
    precedence = headers.get("precedence").lower()
    if (
        auto_submitted.startswith("auto-replied")
        or headers.get("x-autoreply")
        or headers.get("x-autorespond")
        or precedence == "auto_reply"
        or _AUTO_REPLY_SUBJECT.search(subject)
    ):
        return ParseSkip("auto-reply: an automatic answer, not an inquiry")
    if (
        precedence in ("bulk", "list", "junk")
        or auto_submitted != "no"
        or headers.get("list-unsubscribe")
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


def _lead_id(headers: _Headers, data: bytes) -> str:
    message_id = headers.get("message-id").strip("<> ")
    basis = message_id.encode() if message_id else data
    return "email:" + hashlib.sha256(basis).hexdigest()[:24]


def _date(headers: _Headers) -> datetime | None:
    """The Date header as a real moment; None (the time the mail was received is
    used) when there is none or it is not one."""
    raw = headers.get("date")
    if not raw:
        return None
    try:
        parsed = parsedate_to_datetime(raw)
        moment = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        moment.astimezone(UTC)  # 9999-12-31 23:59:59 -1200 is after the last moment there is
    except (TypeError, ValueError, IndexError, OverflowError):
        headers.warnings.append(f"the Date header {raw[:80]!r} is not a real date and time; "
                                "the time the mail was received is used")
        return None
    return moment


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
