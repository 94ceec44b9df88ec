"""The plain records passed between the layers.

Typed records at the edges are pydantic (config, webhook payloads); inside
the pipeline they are these dataclasses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

# crm: a row a person typed into the CRM (a call, a walk-in, a referral)
Channel = Literal["email", "form", "import", "crm"]
RawKind = Literal["email", "form", "row"]


@dataclass(frozen=True)
class RawItem:
    """One email, one form post or one CSV row, exactly as it arrived."""

    item_id: str
    source: str
    kind: RawKind
    payload: bytes
    received_at: datetime
    meta: dict = field(default_factory=dict)


@dataclass
class ParsedLead:
    """What a parser found in one raw item, before normalization."""

    lead_id: str
    channel: Channel
    received_at: datetime
    name: str = ""
    phones: list[str] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)
    company: str = ""
    position: str = ""
    city: str = ""
    subject: str = ""
    message: str = ""
    kind: str = ""
    raw_source: dict[str, str] = field(default_factory=dict)
    # what the parser noticed but could still read (a header cut, a date it could not use)
    warnings: list[str] = field(default_factory=list)
    # labels (columns, form fields) that hold a value but match no lead field
    unrecognised: list[str] = field(default_factory=list)
    # a hash of the inquiry's content, the same for every copy of it (see normalize)
    fingerprint: str = ""


@dataclass(frozen=True)
class ParseSkip:
    """The item is not a lead (an auto-reply, a bounce); kept with the reason."""

    reason: str


@dataclass(frozen=True)
class Rejection:
    """The item cannot become a lead until someone fixes it (quarantine)."""

    reason: str


@dataclass
class Lead:
    """One normalized inquiry, ready to be matched to a contact."""

    lead_id: str
    channel: Channel
    received_at: datetime
    name: str
    phone: str
    phone_display: str
    phone_valid: bool
    email: str
    company: str
    legal_form: str
    position: str
    city: str
    source: str
    source_matched: bool
    raw_source: dict[str, str]
    subject: str
    message: str
    warnings: list[str] = field(default_factory=list)
    # the office extension of `phone` ("" when none): part of the phone's identity
    phone_extension: str = ""
    # what identifies the inquiry's content (a Message-ID alone does not)
    fingerprint: str = ""


@dataclass
class Contact:
    """One person: the row people see in the CRM."""

    contact_key: str
    name: str = ""
    phone: str = ""
    phone_display: str = ""
    email: str = ""
    company: str = ""
    legal_form: str = ""
    position: str = ""
    city: str = ""
    source: str = ""
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    leads_count: int = 0
    segment: str = ""
