"""The lists identity matching works from (config/identity.yaml plus the
user's `identity:` section), as one plain record passed to the pure functions
of emails.py, person_names.py and matching.py."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

Gender = Literal["m", "f", ""]
MailboxRule = Literal["ignore_dots", "drop_plus_tag", "dot_is_hyphen"]


# eq=False: rules are compared and hashed by identity, so the per-rules
# indexes the modules build (functools caches keyed on the rules) cost one
# lookup, not a hash of every list.
@dataclass(frozen=True, eq=False)
class IdentityRules:
    # gender -> full first name -> diminutives and spelling variants
    diminutives: Mapping[str, Mapping[str, Sequence[str]]] = field(default_factory=dict)
    role_mailboxes: Sequence[str] = ()
    family_mailboxes: Sequence[str] = ()
    # main domain -> domains that are the same mailbox service
    email_aliases: Mapping[str, Sequence[str]] = field(default_factory=dict)
    # main domain -> how its local parts are read
    mailbox_rules: Mapping[str, Sequence[MailboxRule]] = field(default_factory=dict)
    provider_domains: Sequence[str] = ()
