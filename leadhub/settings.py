"""The YAML config: defaults from config/defaults.yaml, the user's file on top,
`${VAR}` secrets from the environment, validated with errors that name the key."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from leadhub import CONFIG_DIR
from leadhub.errors import ConfigError
from transforms.fields import FieldMap
from transforms.mail import MailRules
from transforms.normalize import NormalizeRules
from transforms.sources import RULE_FIELDS
from transforms.submissions import SubmissionRules

DEFAULTS_FILE = CONFIG_DIR / "defaults.yaml"
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CsvOptions(_Strict):
    """How CSV lead lists are read; detected when left out."""

    delimiter: Literal[",", ";", "\t"] | None = None
    encoding: str | None = None
    # lead field -> the header in your file, on top of the built-in aliases
    columns: dict[str, str] = Field(default_factory=dict)


class FilesSourceConfig(_Strict):
    """Files and folders: .eml, maildir, .mbox, .csv, .json, .jsonl."""

    type: Literal["files"]
    name: str = "files"
    paths: list[Path]
    # the form name given to .json/.jsonl posts that do not name their form
    form: str = ""


SourceConfig = Annotated[FilesSourceConfig, Field(discriminator="type")]
SOURCE_TYPES = ("files",)


class Settings(_Strict):
    store: Path = Path("leadhub.db")
    region: str = "RU"
    phone_display: Literal["pretty", "international", "national", "e164"] = "pretty"
    timezone: str = "UTC"
    sources: list[SourceConfig] = Field(default_factory=list)
    csv: CsvOptions = Field(default_factory=CsvOptions)
    source_categories: list[str]
    source_rules: list[dict[str, Any]]
    fallback_category: str
    legal_forms: dict[str, list[str]]
    field_aliases: dict[str, list[str]]
    robot_senders: list[str]
    form_subjects: list[str]
    position_words: list[str]

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
        )

    def submission_rules(self) -> SubmissionRules:
        return SubmissionRules(fields=self.field_map(), region=self.region)

    def normalize_rules(self) -> NormalizeRules:
        return NormalizeRules(
            region=self.region,
            phone_display=self.phone_display,
            legal_forms=self.legal_forms,
            source_rules=self.source_rules,
            fallback_category=self.fallback_category,
        )


def load_settings(path: Path | None = None, **overrides: Any) -> Settings:
    """Defaults, then the user's file, then explicit overrides (CLI flags)."""
    data = _read_yaml(DEFAULTS_FILE)
    if path is not None:
        user = _read_yaml(path)
        aliases = user.pop("field_aliases", {}) or {}
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
        if "store" in user:
            data["store"] = str(base / Path(os.path.expanduser(str(user["store"]))))
    data.update({key: value for key, value in overrides.items() if value is not None})
    try:
        return Settings.model_validate(_expand_env(data, ""))
    except ValidationError as error:
        raise ConfigError(_describe(error, path)) from None


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"cannot read config file {path}: {error.strerror}") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{path} is not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must be a mapping of keys (store:, sources:, ...)")
    return data


def _expand_env(value: Any, where: str) -> Any:
    if isinstance(value, dict):
        return {k: _expand_env(v, f"{where}.{k}" if where else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, str):
        return _ENV_REF.sub(lambda match: _env(match.group(1), where), value)
    return value


def _env(name: str, where: str) -> str:
    if name not in os.environ:
        raise ConfigError(f"{where}: environment variable {name} is not set")
    return os.environ[name]


def _describe(error: ValidationError, path: Path | None) -> str:
    where = f"config {path}" if path else "config"
    lines = []
    for problem in error.errors():
        key = ".".join(str(part) for part in problem["loc"] if part != "files")
        message = problem["msg"].removeprefix("Value error, ")
        if problem["type"] == "extra_forbidden":
            message = "unknown key (see config/leadhub.example.yaml for the keys)"
        lines.append(f"{key}: {message}" if key else message)
    return f"{where} is not valid:\n  " + "\n  ".join(lines)
