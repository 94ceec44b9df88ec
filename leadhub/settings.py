"""The YAML config: defaults from config/defaults.yaml, the user's file on top,
`${VAR}` secrets from the environment, validated with errors that name the key."""

from __future__ import annotations

import os
import re
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

import flows  # noqa: F401  (Prefect settings before prefect is imported)
from leadhub import CONFIG_DIR
from leadhub.errors import ConfigError
from leadhub.i18n import _
from transforms.fields import FieldMap
from transforms.form_posts import FormRules
from transforms.identity_rules import IdentityRules, MailboxRule
from transforms.mail import MailRules
from transforms.normalize import NormalizeRules
from transforms.notification_presets import Layout, NotificationPreset
from transforms.orders import order_field_map
from transforms.sources import RULE_FIELDS
from transforms.submissions import SubmissionRules

DEFAULTS_FILE = CONFIG_DIR / "defaults.yaml"
# The built-in lists of identity matching; a user's `identity:` adds to them.
IDENTITY_FILE = CONFIG_DIR / "identity.yaml"
_FAST_YAML = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# ${NAME}: an environment variable; ${secret:NAME}: a Prefect Secret block.
_SECRET_REF = re.compile(r"\$\{(secret:)?([A-Za-z0-9_][A-Za-z0-9_-]*)\}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CsvOptions(_Strict):
    """How CSV lead lists are read; detected when left out."""

    delimiter: Literal[",", ";", "\t"] | None = None
    encoding: str | None = None
    # lead field -> the header in your file, on top of the built-in aliases
    columns: dict[str, str] = Field(default_factory=dict)
    # order / order item field -> headers in your files (order_id, ordered_at,
    # status, phone, email, comment, product, price, cost, quantity)
    order_columns: dict[str, list[str]] = Field(default_factory=dict)


class NotificationPresetConfig(_Strict):
    """A form service's notification mails: how to know them and read their
    fields (`notification_presets` in config/defaults.yaml says what each key does)."""

    name: str = Field(min_length=1)
    senders: list[str] = Field(default_factory=list)
    subjects: list[str] = Field(default_factory=list)
    field_aliases: dict[str, list[str]] = Field(default_factory=dict)
    layout: Layout = "label_value"
    start_after: list[str] = Field(default_factory=list)
    footer: list[str] = Field(default_factory=list)
    skip_lines: list[str] = Field(default_factory=list)
    label_patterns: list[str] = Field(default_factory=list)

    @field_validator("label_patterns")
    @classmethod
    def _patterns_name_the_label(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            try:
                groups = re.compile(pattern).groupindex
            except re.error as error:
                raise ValueError(f"{pattern!r} is not a regular expression: {error}") from None
            if "label" not in groups:
                raise ValueError(f"{pattern!r} has no (?P<label>...) group")
        return patterns

    @model_validator(mode="after")
    def _can_match(self) -> NotificationPresetConfig:
        if not self.senders and not self.subjects:
            raise ValueError(f"preset {self.name!r} has neither senders nor subjects to match")
        return self

    def preset(self) -> NotificationPreset:
        return NotificationPreset(**self.model_dump())


class FilesSourceConfig(_Strict):
    """Files and folders: .eml, maildir, .mbox, .csv, .json, .jsonl."""

    type: Literal["files"]
    name: str = "files"
    paths: list[Path]
    # the form name given to .json/.jsonl posts that do not name their form
    form: str = ""


_LOOPBACK = ("127.0.0.1", "localhost", "::1")
_POLICY = re.compile(r"^(leave|seen|move:.+|label:.+)$")


class ImapSourceConfig(_Strict):
    """One mailbox account; every folder listed is watched with its own checkpoint."""

    type: Literal["imap"]
    name: str
    host: str
    port: int | None = None
    tls: Literal["implicit", "starttls", "none"] = "implicit"
    username: str
    password: SecretStr | None = None
    # an OAuth2 access token (Gmail, Outlook) instead of a password: XOAUTH2
    oauth2_token: SecretStr | None = None
    folders: list[str] = Field(default_factory=lambda: ["INBOX"], min_length=1)
    # leave | seen | move:FOLDER | label:NAME (Gmail)
    after_processing: str = "leave"
    # how far back the first run reaches; nothing older is fetched
    since: date | None = None
    max_message_size: int = Field(default=10 * 1024 * 1024, ge=64 * 1024)
    batch_size: int = Field(default=100, ge=1, le=1000)
    timeout: float = Field(default=60.0, gt=0)
    # keep an IDLE connection per folder under `leadhub serve`
    idle: bool = True

    @field_validator("after_processing")
    @classmethod
    def _known_policy(cls, policy: str) -> str:
        if not _POLICY.match(policy):
            raise ValueError(f"{policy!r}: use leave, seen, move:FOLDER or label:NAME")
        return policy

    @model_validator(mode="after")
    def _credentials_and_transport(self) -> ImapSourceConfig:
        if (self.password is None) == (self.oauth2_token is None):
            raise ValueError(f"mailbox {self.name!r}: set exactly one of password, oauth2_token")
        if self.tls == "none" and self.host not in _LOOPBACK:
            raise ValueError(
                f"mailbox {self.name!r}: tls: none sends the password in clear text and is only"
                " allowed for a server on this machine; use implicit (993) or starttls (143)"
            )
        if self.port is None:
            self.port = 993 if self.tls == "implicit" else 143
        return self


# What a provider signs and where, when a form's auth is `hmac` and the
# config leaves it out: (header, encoding, prefix, timestamp header, template).
HMAC_DEFAULTS = {
    "typeform": ("Typeform-Signature", "base64", "sha256=", None, "{body}"),
    "tally": ("Tally-Signature", "base64", "", None, "{body}"),
    "webflow": ("X-Webflow-Signature", "hex", "", "X-Webflow-Timestamp", "{timestamp}:{body}"),
}


class WebhookSourceConfig(_Strict):
    """One web form posting to POST /forms/{form}."""

    type: Literal["webhook"]
    form: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    name: str = ""
    preset: Literal["tilda", "typeform", "google_forms", "cf7", "webflow", "tally", "generic"] = (
        "generic"
    )
    # token: the secret in a header or query parameter; hmac: a signature of
    # the raw body with the secret; none: only for a form on this machine
    auth: Literal["token", "hmac", "none"] = "token"
    secret: SecretStr | None = None
    token_header: str = "X-LeadHub-Token"
    token_param: str = "token"
    signature_header: str | None = None
    signature_encoding: Literal["hex", "base64"] | None = None
    signature_prefix: str | None = None
    timestamp_header: str | None = None
    signed_content: str | None = None  # e.g. "{timestamp}:{body}"
    timestamp_tolerance_seconds: int = Field(default=300, ge=1)
    # form fields that people never fill (hidden from them): filled means a bot
    honeypot_fields: list[str] = Field(default_factory=list)
    # a submission whose text contains one of these is quarantined as spam
    spam_words: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _secret_and_signature(self) -> WebhookSourceConfig:
        self.name = self.name or f"form-{self.form}"
        if self.auth != "none" and self.secret is None:
            raise ValueError(f"form {self.form!r}: auth {self.auth} needs a secret")
        if self.auth == "hmac":
            header, encoding, prefix, timestamp, template = HMAC_DEFAULTS.get(
                self.preset, ("X-LeadHub-Signature", "hex", "", None, "{body}"))
            self.signature_header = self.signature_header or header
            self.signature_encoding = self.signature_encoding or encoding
            if self.signature_prefix is None:
                self.signature_prefix = prefix
            self.timestamp_header = self.timestamp_header or timestamp
            self.signed_content = self.signed_content or template
        return self


class WebSettings(_Strict):
    """The web-form endpoint served by `leadhub serve`."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    max_json_depth: int = Field(default=10, ge=2)
    max_fields: int = Field(default=200, ge=1)
    # per client address; behind a reverse proxy set trusted_proxies
    requests_per_minute: int = Field(default=60, ge=1)
    # addresses of proxies whose X-Forwarded-For is believed
    trusted_proxies: list[str] = Field(default_factory=list)
    # seconds to wait for more posts before processing (a burst, one run)
    process_debounce_seconds: float = Field(default=0.5, ge=0)
    # a resend of the same content within this window is the same submission
    duplicate_window_seconds: int = Field(default=600, ge=0)
    # posts arriving together are stored in one transaction (one fsync'd
    # commit); false: one transaction per post
    group_commit: bool = True
    # posts waiting for the store at most; past it: 503 with Retry-After
    write_queue_size: int = Field(default=1000, ge=1)


_DOMAIN = re.compile(r"^[a-z0-9-]+(\.[a-z0-9-]+)+$")


class IdentitySettings(_Strict):
    """The lists people are matched with: config/identity.yaml says what each
    does; the `identity:` section of a config adds to them."""

    # gender (m, f) -> full first name -> diminutives and spelling variants
    diminutives: dict[Literal["m", "f"], dict[str, list[str]]] = Field(default_factory=dict)
    role_mailboxes: list[str] = Field(default_factory=list)
    family_mailboxes: list[str] = Field(default_factory=list)
    # main domain -> domains that are the same mailbox service
    email_aliases: dict[str, list[str]] = Field(default_factory=dict)
    # main domain -> ignore_dots | drop_plus_tag | dot_is_hyphen
    mailbox_rules: dict[str, list[MailboxRule]] = Field(default_factory=dict)
    provider_domains: list[str] = Field(default_factory=list)

    @field_validator("diminutives")
    @classmethod
    def _names_are_words(cls, diminutives: dict) -> dict:
        for gender, names in diminutives.items():
            for full, variants in names.items():
                for name in (full, *variants):
                    if not name.strip() or any(ch.isdigit() or ch == "@" for ch in name):
                        raise ValueError(f"{gender}.{full}: {name!r} is not a first name")
        return diminutives

    @field_validator("role_mailboxes", "family_mailboxes")
    @classmethod
    def _local_parts(cls, words: list[str]) -> list[str]:
        for word in words:
            if not word.strip() or "@" in word or " " in word.strip():
                raise ValueError(f"{word!r} is not the part of an address before @")
        return [word.strip().lower() for word in words]

    @field_validator("provider_domains")
    @classmethod
    def _domains(cls, domains: list[str]) -> list[str]:
        return [_domain_checked(domain) for domain in domains]

    @field_validator("email_aliases")
    @classmethod
    def _alias_domains(cls, aliases: dict[str, list[str]]) -> dict[str, list[str]]:
        return {_domain_checked(domain): [_domain_checked(alias) for alias in others]
                for domain, others in aliases.items()}

    @field_validator("mailbox_rules")
    @classmethod
    def _rule_domains(cls, rules: dict[str, list[str]]) -> dict[str, list[str]]:
        return {_domain_checked(domain): read for domain, read in rules.items()}

    def rules(self) -> IdentityRules:
        return IdentityRules(
            diminutives={gender: {full: tuple(variants) for full, variants in names.items()}
                         for gender, names in self.diminutives.items()},
            role_mailboxes=tuple(self.role_mailboxes),
            family_mailboxes=tuple(self.family_mailboxes),
            email_aliases={d: tuple(aliases) for d, aliases in self.email_aliases.items()},
            mailbox_rules={d: tuple(rules) for d, rules in self.mailbox_rules.items()},
            provider_domains=tuple(self.provider_domains),
        )


def _domain_checked(domain: str) -> str:
    domain = str(domain).strip().lower()
    if not _DOMAIN.match(domain):
        raise ValueError(f"{domain!r} is not a mail domain like yandex.ru")
    return domain


class RfmSegmentConfig(_Strict):
    """Scores are 1..5; the first rule whose ranges all hold names the segment."""

    segment: str
    r_min: int = Field(default=1, ge=1, le=5)
    r_max: int = Field(default=5, ge=1, le=5)
    f_min: int = Field(default=1, ge=1, le=5)
    f_max: int = Field(default=5, ge=1, le=5)
    m_min: int = Field(default=1, ge=1, le=5)
    m_max: int = Field(default=5, ge=1, le=5)


class AfterIntakeExport(_Strict):
    out: Path
    preset: Literal["looker", "powerbi", "excel-ru"] = "looker"


class ExportSettings(_Strict):
    """BI exports: CSV presets, the dashboard, and the rules of the reports."""

    language: Literal["ru", "en"] = "ru"
    # preset -> options to change: encoding, delimiter, decimal, date_format, datetime_format,
    # midnight (day: a time of 00:00:00 is written as the date alone; time: with it)
    presets: dict[Literal["looker", "powerbi", "excel-ru"], dict[str, str]] = Field(
        default_factory=dict
    )
    # the funnel's stages under their older key (funnel.stages: set one of them)
    funnel_stages: list[str] | None = Field(default=None, min_length=2)
    cancelled_statuses: list[str] = Field(
        default_factory=lambda: ["Отменён", "Отменен", "Отмена", "Cancelled", "Canceled"]
    )
    # the same keys as bi.rfm_segments / bi.rfm_fallback (set them in one place)
    rfm_segments: list[RfmSegmentConfig] = Field(default_factory=list)
    rfm_fallback: str | None = None
    # export after every intake run too (besides the nightly deployment)
    after_intake: AfterIntakeExport | None = None

    @field_validator("presets")
    @classmethod
    def _known_options(cls, presets: dict) -> dict:
        from transforms.exports import MIDNIGHT_CHOICES, PRESET_OPTIONS

        for name, options in presets.items():
            unknown = set(options) - set(PRESET_OPTIONS)
            if unknown:
                raise ValueError(f"{name}: unknown option(s) {sorted(unknown)}; use"
                                 f" {', '.join(PRESET_OPTIONS)}")
            if options.get("delimiter", ",") not in (",", ";", "\t", "|"):
                raise ValueError(f"{name}.delimiter: use , ; | or a tab")
            if options.get("midnight", "time") not in MIDNIGHT_CHOICES:
                raise ValueError(f"{name}.midnight: use {' or '.join(MIDNIGHT_CHOICES)}")
        return presets


class FunnelSettings(_Strict):
    """The stages a lead goes through (the CRM's Stage select, in order; the
    last is the won one), the stage of a lost lead, and why leads are lost
    (the CRM's Loss reason select)."""

    stages: list[str] = Field(default_factory=lambda: [
        "Новый", "Квалификация", "Встреча/Звонок", "КП отправлено", "Переговоры", "Оплачен"],
        min_length=2)
    lost_stage: str = "Отказ"
    loss_reasons: list[str] = Field(default_factory=lambda: [
        "дорого", "не дозвонились", "купил у конкурента", "нецелевой", "не актуально",
        "другое"])


class TeamMember(_Strict):
    """A person who works the leads: the Owner of leads, contacts and tasks."""

    name: str = Field(min_length=1)
    email: str = ""
    # where their alerts and reminders go: a channel's name from `channels:`
    channel: str | None = None


class AssignmentRule(_Strict):
    """New leads that match go to `owner` (first matching rule wins)."""

    owner: str
    categories: list[str] = Field(default_factory=list)
    # source names: a mailbox, a form (form-NAME or its name), a files source
    sources: list[str] = Field(default_factory=list)


class AssignmentSettings(_Strict):
    """Who gets a new lead: the contact's owner when it has one, else the first
    rule that matches, else the team in turn (round robin)."""

    keep_contact_owner: bool = True
    rules: list[AssignmentRule] = Field(default_factory=list)
    round_robin: bool = True


class BiSettings(_Strict):
    """`bi:` the RFM segment table; empty: the built-in one (README, "RFM segments")."""

    rfm_segments: list[RfmSegmentConfig] = Field(default_factory=list)
    # a client no rule matches; default Прочие (Other)
    rfm_fallback: str | None = None


class CrmTableConfig(_Strict):
    """Your own title for a table (sheet) and its fields (columns)."""

    title: str | None = None
    # LeadHub's field name -> your field title, e.g. name: ФИО
    fields: dict[str, str] = Field(default_factory=dict)


class _SinkConfig(_Strict):
    name: str = ""
    # contacts, leads, needs_review, orders, order_items, tasks -> your titles
    tables: dict[str, CrmTableConfig] = Field(default_factory=dict)
    # the titles of the tables and fields a new base or sheet gets (ru: Контакты,
    # Имя, Телефон...); a table the base already has in English keeps its titles
    language: Literal["en", "ru"] = "en"
    # a row a person deleted: recreate it (the lead is still in the ledger) or leave it gone
    deleted_rows: Literal["recreate", "leave"] = "recreate"
    # how often every key is listed to notice deleted rows (minutes; 0: every run)
    full_scan_minutes: int = Field(default=60, ge=0)
    # read people's columns and the Orders / Order items tables back into the ledger
    read_back: bool = True
    # the CRM people work in: their rows, corrections and stages are read from it;
    # another sink is a mirror of the store (without the flag: the first sink)
    record: bool = False
    timeout: float = Field(default=30.0, gt=0)

    def crm_tables(self, settings: Settings) -> dict:
        from transforms.crm import TableNames, default_tables, mirror_tables, titled_tables

        funnel = settings.funnel
        tables = default_tables(settings.source_categories, settings.stages(),
                                funnel.lost_stage, funnel.loss_reasons)
        if not settings.is_record(self):
            tables = mirror_tables(tables)
        names = {name: TableNames(t.title, t.fields) for name, t in self.tables.items()}
        try:
            return titled_tables(tables, self.language, names)
        except ValueError as error:
            raise ConfigError(f"sinks[{self.name}].tables: {error}") from None


class AirtableSinkConfig(_SinkConfig):
    """An Airtable base as the system of record."""

    type: Literal["airtable"]
    base: str = Field(pattern=r"^app[A-Za-z0-9]{14}$")
    token: SecretStr
    endpoint_url: str = "https://api.airtable.com"
    # Airtable allows 5 per second per base; lower it when other tools share the base
    requests_per_second: int = Field(default=5, ge=1, le=5)
    # after a 429 Airtable refuses every request for 30 seconds
    rate_limit_wait_seconds: float = Field(default=30.0, ge=0)
    # let Airtable add a select option it does not know yet (a new source category)
    typecast: bool = True


class SheetsSinkConfig(_SinkConfig):
    """A Google spreadsheet as the system of record."""

    type: Literal["sheets"]
    # the key, or the whole URL of the spreadsheet
    spreadsheet: str = Field(min_length=10)
    # a service-account key: a file path, or the JSON itself (from an env variable)
    credentials: SecretStr | None = None
    # or an OAuth access token of a user (ya29....)
    oauth_token: SecretStr | None = None
    base_url: str = "https://sheets.googleapis.com"
    # Google allows 60 write requests per minute per user
    writes_per_minute: int = Field(default=60, ge=1, le=300)
    reads_per_minute: int = Field(default=60, ge=1, le=300)

    @model_validator(mode="after")
    def _one_credential(self) -> SheetsSinkConfig:
        if (self.credentials is None) == (self.oauth_token is None):
            raise ValueError("give either credentials (a service-account key) or oauth_token")
        return self


SinkConfig = Annotated[AirtableSinkConfig | SheetsSinkConfig, Field(discriminator="type")]
SINK_TYPES = ("airtable", "sheets")


SourceConfig = Annotated[
    FilesSourceConfig | ImapSourceConfig | WebhookSourceConfig, Field(discriminator="type")
]
SOURCE_TYPES = ("files", "imap", "webhook")


_RULE_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
_CLOCK = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


def _template_checked(text: str | None) -> str | None:
    from transforms.alerts import template_problem

    problem = template_problem(text) if text is not None else None
    if problem:
        raise ValueError(problem)
    return text


class ChannelConfig(_Strict):
    """Where alerts go: one apprise URL (tgram://, mailtos://, slack://, a Teams
    workflow's https:// URL, json://...), with its secrets from the environment.
    Written as the URL alone, or as a mapping with more options."""

    url: SecretStr
    # more alerts than this for the channel in one run go as one combined message
    batch_over: int = Field(default=5, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _url_alone(cls, value: Any) -> Any:
        return {"url": value} if isinstance(value, str) else value

    @field_validator("url")
    @classmethod
    def _apprise_can_use_it(cls, url: SecretStr) -> SecretStr:
        from connectors.notify import url_problem

        problem = url_problem(url.get_secret_value())
        if problem:
            raise ValueError(problem)
        return url


class AlertRuleConfig(_Strict):
    """Which events go to which channels, and with what text."""

    name: str = Field(pattern=_RULE_NAME)
    events: list[Literal["new_lead", "new_contact", "repeat_inquiry", "quarantined",
                         "source_down", "sink_down", "sink_error"]] = Field(min_length=1)
    channels: list[str] = Field(min_length=1)
    # lead source categories (Сайт, Авито...); empty: all
    categories: list[str] = Field(default_factory=list)
    # configured source or sink names (a mailbox, a form, a sink); empty: all
    sources: list[str] = Field(default_factory=list)
    title: str | None = None
    template: str | None = None
    during_quiet_hours: Literal["wait", "send"] = "wait"
    # a lead or item already older than this when LeadHub reads it (an import
    # of old mail) is not alerted on
    max_age_hours: float = Field(default=24, gt=0)

    _templates_known = field_validator("title", "template")(_template_checked)

    def rule(self) -> Any:
        """As transforms.alerts.AlertRule."""
        from datetime import timedelta

        from transforms.alerts import AlertRule

        return AlertRule(
            name=self.name, events=frozenset(self.events), channels=tuple(self.channels),
            categories=frozenset(self.categories), sources=frozenset(self.sources),
            title=self.title, template=self.template,
            waits_quiet_hours=self.during_quiet_hours == "wait",
            max_age=timedelta(hours=self.max_age_hours))


class TaskRuleConfig(_Strict):
    """A follow-up task made once per trigger: a lead event, a lead reaching a
    stage, an order reaching a status, or a client quiet for `days`."""

    name: str = Field(pattern=_RULE_NAME)
    trigger: Literal["new_lead", "new_contact", "repeat_inquiry", "stage", "order_status",
                     "no_contact"]
    title: str = Field(min_length=1)
    # 30m, 2h, 3d, 1d 12h: from the lead's arrival, or from when the change was seen
    due_in: str = "0"
    details: str | None = None
    categories: list[str] = Field(default_factory=list)
    stages: list[str] = Field(default_factory=list)
    statuses: list[str] = Field(default_factory=list)
    days: int | None = Field(default=None, ge=1)
    max_age_hours: float = Field(default=24, gt=0)

    _templates_known = field_validator("title", "details")(_template_checked)

    @field_validator("due_in", mode="before")
    @classmethod
    def _a_duration(cls, value: Any) -> str:
        from transforms.alerts import parse_duration

        parse_duration(str(value))
        return str(value)

    @model_validator(mode="after")
    def _trigger_has_what_it_needs(self) -> TaskRuleConfig:
        needs = {"stage": "stages", "order_status": "statuses", "no_contact": "days"}
        for trigger, key in needs.items():
            given = bool(getattr(self, key))
            if (self.trigger == trigger) != given:
                raise ValueError(f"{key} goes with trigger {trigger}, and only with it")
        return self

    def rule(self) -> Any:
        """As transforms.alerts.TaskRule."""
        from datetime import timedelta

        from transforms.alerts import TaskRule, parse_duration

        return TaskRule(
            name=self.name, trigger=self.trigger, title=self.title,
            due_in=parse_duration(self.due_in), details=self.details or "",
            categories=frozenset(self.categories), stages=frozenset(self.stages),
            statuses=frozenset(self.statuses), silent_days=self.days or 0,
            max_age=timedelta(hours=self.max_age_hours))


class QuietHoursConfig(_Strict):
    """A daily window, in the config's `timezone`, when alerts wait (it may
    cross midnight: 22:00-08:00)."""

    start: str
    end: str

    @field_validator("start", "end", mode="before")
    @classmethod
    def _clock_time(cls, value: Any) -> str:
        # YAML reads an unquoted 22:00 as the base-60 number 1320
        if isinstance(value, int):
            value = f"{value // 60}:{value % 60:02d}"
        if not isinstance(value, str) or not _CLOCK.match(value.strip()):
            raise ValueError(f"{value!r} is not a time like 22:00")
        return value.strip()

    def quiet_hours(self, timezone: str) -> Any:
        """As transforms.alerts.QuietHours."""
        from datetime import time

        from transforms.alerts import QuietHours

        def clock(text: str) -> time:
            hours, minutes = _CLOCK.match(text).groups()
            return time(int(hours), int(minutes))

        return QuietHours(clock(self.start), clock(self.end), ZoneInfo(timezone))


class RemindersConfig(_Strict):
    """Reminders of follow-up tasks that are due and not done (the reminders flow)."""

    channels: list[str] = Field(default_factory=list)
    title: str | None = None
    template: str | None = None
    during_quiet_hours: Literal["wait", "send"] = "wait"

    _templates_known = field_validator("title", "template")(_template_checked)


class DigestConfig(_Strict):
    """The morning summary of yesterday (the digest flow; its time is in prefect.yaml)."""

    channels: list[str] = Field(default_factory=list)


class DeliveryConfig(_Strict):
    """How alerts, reminders and the digest are sent."""

    # the language of the built-in alert texts and the digest
    language: Literal["ru", "en"] = "ru"
    # a failing channel is tried again, in later runs, for this long after the
    # first failure; then the alert is given up (`leadhub alert replay` resends it)
    retry_for_hours: float = Field(default=12, ge=0, le=24 * 30)
    # the wait between tries: a random half to all of base * 2^n, at most the cap
    retry_base_seconds: float = Field(default=60, gt=0)
    retry_cap_seconds: float = Field(default=3600, gt=0)
    # older configs: the fewest tries before giving up (it no longer cuts the
    # retry window short; a shorter window is a smaller retry_for_hours)
    max_attempts: int | None = Field(default=None, ge=1, le=1000)
    # an alert left "sending" by a crashed run this long is reported, not sent again
    unconfirmed_after_minutes: int = Field(default=15, ge=1)
    # characters of a lead's message shown in an alert
    excerpt_chars: int = Field(default=300, ge=20)

    def retry_policy(self) -> Any:
        """As transforms.alerts.RetryPolicy."""
        from datetime import timedelta

        from transforms.alerts import RetryPolicy

        return RetryPolicy(retry_for=timedelta(hours=self.retry_for_hours),
                           base=timedelta(seconds=self.retry_base_seconds),
                           cap=timedelta(seconds=self.retry_cap_seconds),
                           min_attempts=self.max_attempts or 1)


class Settings(_Strict):
    # a SQLite file (relative to the config file) or postgresql://user@host/db
    store: str = "leadhub.db"
    # a source failing for longer than this is reported as down by `leadhub status`
    down_after_minutes: int = Field(default=30, ge=1)
    region: str = "RU"
    phone_display: Literal["pretty", "international", "national", "e164"] = "pretty"
    timezone: str = "UTC"
    sources: list[SourceConfig] = Field(default_factory=list)
    sinks: list[SinkConfig] = Field(default_factory=list)
    csv: CsvOptions = Field(default_factory=CsvOptions)
    web: WebSettings = Field(default_factory=WebSettings)
    export: ExportSettings = Field(default_factory=ExportSettings)
    bi: BiSettings = Field(default_factory=BiSettings)
    source_categories: list[str]
    source_rules: list[dict[str, Any]]
    fallback_category: str
    legal_forms: dict[str, list[str]]
    field_aliases: dict[str, list[str]]
    robot_senders: list[str]
    form_subjects: list[str]
    position_words: list[str]
    notification_presets: list[NotificationPresetConfig] = Field(default_factory=list)
    # alerts, follow-up tasks, reminders and the digest (README: "Alerts and reminders")
    channels: dict[str, ChannelConfig] = Field(default_factory=dict)
    alerts: list[AlertRuleConfig] = Field(default_factory=list)
    quiet_hours: QuietHoursConfig | None = None
    task_rules: list[TaskRuleConfig] = Field(default_factory=list)
    reminders: RemindersConfig = Field(default_factory=RemindersConfig)
    digest: DigestConfig = Field(default_factory=DigestConfig)
    delivery: DeliveryConfig = Field(default_factory=DeliveryConfig)
    # diminutives, role and family mailboxes, mail services (config/identity.yaml)
    identity: IdentitySettings = Field(default_factory=IdentitySettings)
    # the sales funnel: stages, the lost stage and loss reasons
    funnel: FunnelSettings = Field(default_factory=FunnelSettings)
    # the people who work the leads, and who gets a new one
    team: list[TeamMember] = Field(default_factory=list)
    assignment: AssignmentSettings = Field(default_factory=AssignmentSettings)
    _identity_rules: IdentityRules | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _alert_rules_name_known_things(self) -> Settings:
        """Channels, categories, sources and stages named in alert and task
        rules exist; rule names are unique."""
        channels = set(self.channels)
        categories = set(self.source_categories)
        origins = {s.name for s in self.sources} | {s.name for s in self.sinks}
        stages = set(self.stages()) | {self.funnel.lost_stage}
        uses = [(f"alerts[{i}]", rule) for i, rule in enumerate(self.alerts)]
        uses += [(f"task_rules[{i}]", rule) for i, rule in enumerate(self.task_rules)]
        for where, rule in uses:
            for key, known, listed in (
                ("channels", channels, "channels"),
                ("categories", categories, "source_categories"),
                ("sources", origins, "the names of sources and sinks"),
                ("stages", stages, "funnel.stages"),
            ):
                for value in getattr(rule, key, ()):
                    if value not in known:
                        raise ValueError(f"{where}.{key}: {value!r} is not in {listed}"
                                         f" ({', '.join(sorted(known)) or 'none'})")
        for where, rules in (("alerts", self.alerts), ("task_rules", self.task_rules)):
            names = [rule.name for rule in rules]
            repeated = sorted({name for name in names if names.count(name) > 1})
            if repeated:
                raise ValueError(f"{where}: rule names must be unique; repeated:"
                                 f" {', '.join(repeated)}")
        for where in ("reminders", "digest"):
            for value in getattr(self, where).channels:
                if value not in channels:
                    raise ValueError(f"{where}.channels: {value!r} is not in channels"
                                     f" ({', '.join(sorted(channels)) or 'none'})")
        return self

    @model_validator(mode="after")
    def _funnel_and_team_agree(self) -> Settings:
        if self.export.funnel_stages and "funnel" in self.model_fields_set and (
                "stages" in self.funnel.model_fields_set):
            raise ValueError("funnel.stages and export.funnel_stages are the same setting:"
                             " keep funnel.stages")
        if self.funnel.lost_stage in self.stages():
            raise ValueError(f"funnel.lost_stage {self.funnel.lost_stage!r} is also one of the"
                             " stages: a lost lead is at a stage of its own")
        names = [member.name for member in self.team]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"team: names must be unique; repeated: {', '.join(repeated)}")
        for index, member in enumerate(self.team):
            if member.channel and member.channel not in self.channels:
                raise ValueError(f"team[{index}].channel: {member.channel!r} is not in channels"
                                 f" ({', '.join(sorted(self.channels)) or 'none'})")
        for index, rule in enumerate(self.assignment.rules):
            if rule.owner not in names:
                raise ValueError(f"assignment.rules[{index}].owner: {rule.owner!r} is not in"
                                 f" team ({', '.join(names) or 'none'})")
        records = [sink.name for sink in self.sinks if sink.record]
        if len(records) > 1:
            raise ValueError(f"sinks: only one can be the record (record: true); now"
                             f" {', '.join(records)}")
        return self

    def assignment_of(self):
        """Who gets a new lead (transforms.owners.Assignment)."""
        from transforms.owners import assignment_of

        return assignment_of([member.name for member in self.team],
                             [rule.model_dump() for rule in self.assignment.rules],
                             self.assignment.keep_contact_owner, self.assignment.round_robin)

    def owner_channels(self) -> dict[str, str]:
        """Team members who have a channel of their own: name -> channel."""
        return {member.name: member.channel for member in self.team if member.channel}

    def stages(self) -> list[str]:
        """The funnel's stages in order (the last is won)."""
        return list(self.export.funnel_stages or self.funnel.stages)

    def record_sink(self) -> str | None:
        """The name of the sink people work in: the one marked `record: true`,
        else the first."""
        marked = [sink.name for sink in self.sinks if sink.record]
        return marked[0] if marked else (self.sinks[0].name if self.sinks else None)

    def is_record(self, sink) -> bool:
        return sink.name == self.record_sink()

    @model_validator(mode="after")
    def _rfm_table_in_one_place(self) -> Settings:
        for key in ("rfm_segments", "rfm_fallback"):
            if getattr(self.bi, key) and getattr(self.export, key):
                raise ValueError(f"bi.{key} and export.{key} are the same setting: keep one")
        return self


    @field_validator("sources", mode="before")
    @classmethod
    def _known_source_types(cls, sources: Any) -> Any:
        for index, source in enumerate(sources or []):
            kind = source.get("type") if isinstance(source, dict) else None
            if kind not in SOURCE_TYPES:
                raise ValueError(
                    f"sources[{index}].type is {kind!r}; this version reads: "
                    + ", ".join(SOURCE_TYPES)
                )
        return sources

    @field_validator("sources")
    @classmethod
    def _unique_source_names(cls, sources: list) -> list:
        names = [source.name for source in sources]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"source names must be unique; repeated: {', '.join(repeated)}")
        return sources

    @field_validator("sinks", mode="before")
    @classmethod
    def _known_sink_types(cls, sinks: Any) -> Any:
        for index, sink in enumerate(sinks or []):
            kind = sink.get("type") if isinstance(sink, dict) else None
            if kind not in SINK_TYPES:
                raise ValueError(f"sinks[{index}].type is {kind!r}; use one of: "
                                 + ", ".join(SINK_TYPES))
        return sinks

    @field_validator("sinks")
    @classmethod
    def _unique_sink_names(cls, sinks: list) -> list:
        for sink in sinks:
            same_type = [s for s in sinks if s.type == sink.type]
            if not sink.name:
                sink.name = sink.type if len(same_type) == 1 else (
                    f"{sink.type}-{same_type.index(sink) + 1}")
        names = [sink.name for sink in sinks]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"sink names must be unique; repeated: {', '.join(repeated)}")
        return sinks

    @model_validator(mode="after")
    def _sink_tables_exist(self) -> Settings:
        for sink in self.sinks:
            sink.crm_tables(self)
        return self

    @field_validator("region")
    @classmethod
    def _known_region(cls, region: str) -> str:
        region = region.upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"{region!r} is not a two-letter region code like RU, KZ, BY, US")
        return region

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"{name!r} is not a time zone name like Europe/Moscow or UTC"
            ) from None
        return name

    @model_validator(mode="after")
    def _open_forms_stay_local(self) -> Settings:
        open_forms = [s.form for s in self.sources
                      if isinstance(s, WebhookSourceConfig) and s.auth == "none"]
        if open_forms and self.web.host not in _LOOPBACK:
            raise ValueError(
                f"form(s) {', '.join(open_forms)} have auth: none, which is only allowed while"
                f" web.host is this machine (127.0.0.1); give them a secret"
            )
        return self

    @model_validator(mode="after")
    def _rules_use_the_fixed_list(self) -> Settings:
        categories = set(self.source_categories)
        if self.fallback_category not in categories:
            raise ValueError(
                f"fallback_category {self.fallback_category!r} is not in source_categories"
            )
        for index, rule in enumerate(self.source_rules):
            where = f"source_rules[{index}]"
            if rule.get("category") not in categories:
                raise ValueError(
                    f"{where}.category {rule.get('category')!r} is not in source_categories"
                )
            unknown = set(rule) - {"category", *RULE_FIELDS}
            if unknown:
                raise ValueError(
                    f"{where} has unknown field(s) {sorted(unknown)}; use: {', '.join(RULE_FIELDS)}"
                )
        return self

    def field_map(self) -> FieldMap:
        aliases = {name: list(labels) for name, labels in self.field_aliases.items()}
        for field_name, header in self.csv.columns.items():
            aliases.setdefault(field_name, []).insert(0, header)
        return FieldMap(aliases)

    def mail_rules(self) -> MailRules:
        return MailRules(
            fields=self.field_map(),
            robot_senders=self.robot_senders,
            form_subjects=self.form_subjects,
            position_words=self.position_words,
            legal_forms=self.legal_forms,
            region=self.region,
            presets=[preset.preset() for preset in self.notification_presets],
        )

    def submission_rules(self) -> SubmissionRules:
        return SubmissionRules(fields=self.field_map(), region=self.region,
                               tz=ZoneInfo(self.timezone))

    def order_field_map(self) -> FieldMap:
        return order_field_map(self.csv.order_columns)

    def rfm_segments(self) -> list[RfmSegmentConfig]:
        """`bi.rfm_segments`, or the same table under its older key `export.rfm_segments`."""
        return self.bi.rfm_segments or self.export.rfm_segments

    def rfm_fallback(self) -> str | None:
        return self.bi.rfm_fallback or self.export.rfm_fallback

    def form_rules(self) -> dict[str, FormRules]:
        return {
            source.name: FormRules(source.preset, tuple(source.honeypot_fields),
                                   tuple(source.spam_words))
            for source in self.sources
            if isinstance(source, WebhookSourceConfig)
        }

    def normalize_rules(self) -> NormalizeRules:
        return NormalizeRules(
            region=self.region,
            phone_display=self.phone_display,
            legal_forms=self.legal_forms,
            source_rules=self.source_rules,
            fallback_category=self.fallback_category,
            identity=self.identity_rules(),
            categories=tuple(self.source_categories),
        )

    def identity_rules(self) -> IdentityRules:
        """One rules object per settings: the matching functions cache their
        lookups per rules object."""
        if self._identity_rules is None:
            self._identity_rules = self.identity.rules()
        return self._identity_rules


def load_settings(path: Path | None = None, **overrides: Any) -> Settings:
    """Defaults, then the user's file, then explicit overrides (CLI flags)."""
    data = _read_yaml(DEFAULTS_FILE)
    data["identity"] = _read_yaml(IDENTITY_FILE)
    if path is not None:
        user = _read_yaml(path)
        aliases = user.pop("field_aliases", {}) or {}
        data["identity"] = _added(data["identity"], user.pop("identity", None) or {})
        data.update(user)
        for field_name, labels in aliases.items():
            # Extra aliases add to the built-in ones instead of replacing them.
            data["field_aliases"][field_name] = list(labels) + data["field_aliases"].get(
                field_name, []
            )
        base = path.resolve().parent
        for source in data.get("sources") or []:
            if isinstance(source, dict) and isinstance(source.get("paths"), list):
                source["paths"] = [str(base / Path(os.path.expanduser(p))) for p in source["paths"]]
        after = (user.get("export") or {}).get("after_intake") if isinstance(
            user.get("export"), dict) else None
        if isinstance(after, dict) and after.get("out"):
            after["out"] = str(base / Path(os.path.expanduser(str(after["out"]))))
        if "store" in user and "://" not in str(user["store"]):
            data["store"] = str(base / Path(os.path.expanduser(str(user["store"]))))
    data.update({key: value for key, value in overrides.items() if value is not None})
    try:
        return Settings.model_validate(_expand_env(data, ""))
    except ValidationError as error:
        raise ConfigError(_describe(error, path)) from None


def _added(built_in: Any, user: Any) -> Any:
    """The user's lists added to the built-in ones, mappings merged key by
    key; anything else is the user's, for validation to judge."""
    if isinstance(built_in, dict) and isinstance(user, dict):
        merged = dict(built_in)
        for key, value in user.items():
            merged[key] = _added(built_in[key], value) if key in built_in else value
        return merged
    if isinstance(built_in, list) and isinstance(user, list):
        return built_in + [item for item in user if item not in built_in]
    return user


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(_("cannot read config file {path}: {error}").format(
            path=path, error=error.strerror)) from None
    try:
        data = _parse_yaml(text)
    except yaml.YAMLError as error:
        raise ConfigError(_("{path} is not valid YAML: {error}").format(path=path, error=error)
                          ) from None
    if not isinstance(data, dict):
        raise ConfigError(_("{path} must be a mapping of keys (store:, sources:, ...)").format(
            path=path))
    return data


def _parse_yaml(text: str) -> Any:
    """libyaml when it is there (the built-in files parse ten times faster);
    a file it refuses is parsed again in Python, whose error shows the line."""
    try:
        return yaml.load(text, Loader=_FAST_YAML) or {}
    except yaml.YAMLError:
        return yaml.safe_load(text) or {}


def _expand_env(value: Any, where: str) -> Any:
    if isinstance(value, dict):
        return {k: _expand_env(v, f"{where}.{k}" if where else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, str):
        return _SECRET_REF.sub(lambda match: _secret(match.group(1), match.group(2), where),
                               value)
    return value


def _secret(kind: str | None, name: str, where: str) -> str:
    if kind:
        return _prefect_secret(name, where)
    if name not in os.environ:
        raise ConfigError(_("{where}: environment variable {name} is not set").format(
            where=where, name=name))
    return os.environ[name]


def _prefect_secret(name: str, where: str) -> str:
    from prefect.blocks.system import Secret

    try:
        value = Secret.load(name).get()
    except (ValueError, RuntimeError) as error:
        raise ConfigError(
            f"{where}: Prefect Secret block {name!r} cannot be loaded ({error}); create it with"
            f" `prefect block create secret` or in the Prefect UI"
        ) from None
    return str(value)


def _describe(error: ValidationError, path: Path | None) -> str:
    where = _("config {path}").format(path=path) if path else _("config")
    lines = []
    for problem in error.errors():
        key = ".".join(str(part) for part in problem["loc"]
                       if part not in SOURCE_TYPES + SINK_TYPES)
        message = problem["msg"].removeprefix("Value error, ")
        if problem["type"] == "extra_forbidden":
            message = _("unknown key (see config/leadhub.example.yaml for the keys)")
        lines.append(f"{key}: {message}" if key else message)
    return _("{config} is not valid:").format(config=where) + "\n  " + "\n  ".join(lines)
