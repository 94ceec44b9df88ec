"""Web-form posts (presets): what each form service sends to `POST /forms/{form_id}`.

The HTTP layer decodes the body: JSON into a dict (or list), urlencoded and
multipart bodies into (name, value) pairs, where a name may repeat. A preset
turns that into a flat label/value record for `parse_submission`, plus the
provider's own submission id, form name and whether the post is only the
provider's test ping. Pure functions, no I/O.

The Google Forms preset reads what LeadHub's Apps Script sends (README):
`{"namedValues": {"Question": ["answer"]}, "responseId", "timestamp", "formTitle"}`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import unquote

from transforms.submissions import flatten

Pairs = list[tuple[str, str]]

# Labels LeadHub adds ahead of the provider's fields; first in the record so
# that a visitor's field called "ID" or "Date" never replaces them.
_ID_LABEL = "submission_id"
_TIME_LABEL = "submitted_at"

# Typeform's documented example payload, which people post by hand to try a webhook.
_TYPEFORM_EXAMPLE_TOKEN = "a3a12ec67a1365927098a606107fac15"
# Refs Typeform generates (UUIDs, ULIDs) say nothing; people rename the useful ones.
_GENERATED_REF = re.compile(
    r"^(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9A-HJKMNP-TV-Z]{26})$",
    re.IGNORECASE,
)
# Answer types whose value says what it is, whatever the question's title.
_TYPED_LABELS = {
    "email": "email",
    "phone_number": "phone",
    "INPUT_EMAIL": "email",
    "INPUT_PHONE_NUMBER": "phone",
}
# Contact Form 7 names fields `your-name`, or `tel-123` when the owner kept the generated name.
_CF7_GENERATED_NAME = re.compile(r"^([a-z]+)-\d+$")
_CF7_TYPE_LABELS = {"tel": "phone", "email": "email", "textarea": "message"}
_CF7_SERVICE_FIELD = re.compile(r"^_wpcf7|^_wpnonce|recaptcha|^g-recaptcha", re.IGNORECASE)
_GENERIC_ID_KEYS = ("submission_id", "submissionId", "id", "tranid", "response_id", "responseId")
_GENERIC_FORM_KEYS = ("form_name", "formName", "formname", "form")


class FormPayloadError(ValueError):
    """The post is not what the form's preset expects; the message says what is wrong."""


@dataclass(frozen=True)
class Submission:
    """One form post, read: ready for `parse_submission(record, "form", ...)`."""

    record: dict[str, str]
    submission_id: str = ""
    form_name: str = ""
    is_test: bool = False


def parse_form_post(preset: str, body: object) -> Submission:
    """Read a decoded form post the way the named preset's service sends it."""
    parser = _PARSERS.get(preset)
    if parser is None:
        raise ValueError(f"unknown form preset {preset!r}; expected one of {', '.join(PRESETS)}")
    return parser(body)


def _tilda(body: object) -> Submission:
    """Flat fields as the site owner named them, plus `tranid`, `formid`, UTM and `COOKIES`.

    When a webhook is connected Tilda posts `test=test` and expects 200.
    """
    fields = _fields(body, "Tilda")
    if fields.get("test") == "test" and "tranid" not in fields:
        return Submission(record=fields, is_test=True)
    cookies = fields.pop("COOKIES", "")
    for label, value in _tilda_utm(cookies).items():
        fields.setdefault(label, value)
    return _submission(fields, fields.get("tranid", ""), fields.get("formname", ""))


def _tilda_utm(cookies: str) -> dict[str, str]:
    """UTM tags Tilda keeps in its TILDAUTM cookie: `utm_source=vk|||utm_medium=cpc|||`."""
    for cookie in cookies.split(";"):
        name, _, value = cookie.strip().partition("=")
        if name == "TILDAUTM":
            tags = (tag.removeprefix("amp;").partition("=") for tag in unquote(value).split("|||"))
            return {
                label: unquote(tag) for label, _, tag in tags if label.startswith("utm_") and tag
            }
    return {}


def _typeform(body: object) -> Submission:
    """A `form_response` event: answers keyed by field id, titles in `definition.fields`."""
    event = _json_object(body, "Typeform")
    event_type = event.get("event_type", "form_response")
    if event_type != "form_response":
        raise FormPayloadError(
            f"expected a Typeform form_response event, got event_type {event_type!r}"
        )
    response = event.get("form_response")
    if not isinstance(response, Mapping) or not isinstance(response.get("answers"), list):
        raise FormPayloadError("expected form_response.answers in a Typeform payload")
    definition = response.get("definition")
    titles = _typeform_titles(definition)
    pairs = [_typeform_answer(answer, titles) for answer in response["answers"]]
    pairs += _typeform_hidden(response.get("hidden"))
    token = _text(response.get("token")) or _text(event.get("event_id"))
    return _submission(
        _joined(pairs),
        token,
        _text(definition.get("title")) if isinstance(definition, Mapping) else "",
        submitted_at=_text(response.get("submitted_at")),
        is_test=token == _TYPEFORM_EXAMPLE_TOKEN,
    )


def _typeform_titles(definition: object) -> dict[str, str]:
    if not isinstance(definition, Mapping) or not isinstance(definition.get("fields"), list):
        return {}
    return {
        _text(field.get("id")): _text(field.get("title"))
        for field in definition["fields"]
        if isinstance(field, Mapping)
    }


def _typeform_answer(answer: object, titles: Mapping[str, str]) -> tuple[str, str]:
    """An answer's value sits under the key its `type` names: `{"type": "email", "email": ...}`."""
    if not isinstance(answer, Mapping):
        raise FormPayloadError("expected each Typeform answer to be an object")
    answer_type = _text(answer.get("type"))
    field = answer.get("field") if isinstance(answer.get("field"), Mapping) else {}
    ref, field_id = _text(field.get("ref")), _text(field.get("id"))
    if answer_type in _TYPED_LABELS:
        label = _TYPED_LABELS[answer_type]
    elif ref and not _GENERATED_REF.match(ref):
        label = ref
    else:
        label = _question_label(titles.get(field_id, "")) or ref or field_id or answer_type
    return label, _answer_text(answer.get(answer_type))


def _typeform_hidden(hidden: object) -> Pairs:
    """Hidden fields carry what the page knew: utm_source, utm_campaign..."""
    return flatten(hidden) if isinstance(hidden, Mapping) else []


def _google_forms(body: object) -> Submission:
    """LeadHub's Apps Script: each question's title and its answers as a list."""
    post = _json_object(body, "Google Forms")
    named_values = post.get("namedValues")
    if not isinstance(named_values, Mapping):
        raise FormPayloadError(
            "expected namedValues in a Google Forms payload (see the README script)"
        )
    pairs = [
        (_question_label(title), _answer_text(answers)) for title, answers in named_values.items()
    ]
    return _submission(
        _joined(pairs),
        _text(post.get("responseId")),
        _text(post.get("formTitle")),
        submitted_at=_text(post.get("timestamp")),
    )


def _cf7(body: object) -> Submission:
    """Contact Form 7's posted data as a webhook plugin forwards it: `your-name`, `tel-123`..."""
    fields = _fields(body, "Contact Form 7")
    pairs = [
        (_cf7_label(name), value)
        for name, value in fields.items()
        if not _CF7_SERVICE_FIELD.search(name)
    ]
    return _submission(_joined(pairs), "", "")


def _cf7_label(name: str) -> str:
    """`your-email` -> `email`, `tel-123` -> `phone`, `textarea-42` -> `message`."""
    if name.startswith("your-"):
        base = name.removeprefix("your-")
        return _CF7_TYPE_LABELS.get(base, base)
    generated = _CF7_GENERATED_NAME.match(name)
    if generated and generated.group(1) in _CF7_TYPE_LABELS:
        return _CF7_TYPE_LABELS[generated.group(1)]
    return name


def _webflow(body: object) -> Submission:
    """A `form_submission` webhook: v2 `{"triggerType", "payload": {...}}` or the v1 object."""
    event = _json_object(body, "Webflow")
    submission = event.get("payload") if "triggerType" in event else event
    trigger = event.get("triggerType", "form_submission")
    if trigger != "form_submission":
        raise FormPayloadError(
            f"expected a Webflow form_submission event, got triggerType {trigger!r}"
        )
    if not isinstance(submission, Mapping) or not isinstance(submission.get("data"), Mapping):
        raise FormPayloadError("expected payload.data (the form's fields) in a Webflow payload")
    return _submission(
        _joined(flatten(submission["data"])),
        _text(submission.get("id")) or _text(submission.get("_id")),
        _text(submission.get("name")),
        submitted_at=_text(submission.get("submittedAt")) or _text(submission.get("d")),
    )


def _tally(body: object) -> Submission:
    """A `FORM_RESPONSE` event: `data.fields` with labels; choices are option ids."""
    event = _json_object(body, "Tally")
    event_type = event.get("eventType", "FORM_RESPONSE")
    if event_type != "FORM_RESPONSE":
        raise FormPayloadError(
            f"expected a Tally FORM_RESPONSE event, got eventType {event_type!r}"
        )
    data = event.get("data")
    if not isinstance(data, Mapping) or not isinstance(data.get("fields"), list):
        raise FormPayloadError("expected data.fields in a Tally payload")
    pairs = [pair for field in data["fields"] for pair in _tally_field(field)]
    return _submission(
        _joined(pairs),
        _text(data.get("responseId"))
        or _text(data.get("submissionId"))
        or _text(event.get("eventId")),
        _text(data.get("formName")),
        submitted_at=_text(data.get("createdAt")) or _text(event.get("createdAt")),
    )


def _tally_field(field: object) -> Pairs:
    if not isinstance(field, Mapping):
        raise FormPayloadError("expected each field in Tally data.fields to be an object")
    field_type, value, options = _text(field.get("type")), field.get("value"), field.get("options")
    if field_type == "CHECKBOXES" and isinstance(value, bool):
        return []  # one per option ("Checkboxes (Option 1)": true); the list field has them all
    if isinstance(options, list):
        value = _tally_choices(value, options)
    label = (
        _TYPED_LABELS.get(field_type)
        or _question_label(field.get("label"))
        or _text(field.get("key"))
    )
    return [(label, _answer_text(value))]


def _tally_choices(value: object, options: list) -> list[str]:
    """Option ids to the texts the visitor saw; an id Tally did not list is kept."""
    texts = {
        _text(option.get("id")): _text(option.get("text"))
        for option in options
        if isinstance(option, Mapping)
    }
    chosen = value if isinstance(value, list) else [value]
    return [texts.get(_text(option_id)) or _text(option_id) for option_id in chosen if option_id]


def _generic(body: object) -> Submission:
    """Any JSON object (nested labels dotted: `contact.phone`) or form fields."""
    fields = _joined(flatten(body)) if isinstance(body, Mapping) else _fields(body, "a form")
    top_level = body if isinstance(body, Mapping) else fields
    return _submission(
        fields,
        _first_scalar(top_level, _GENERIC_ID_KEYS),
        _first_scalar(top_level, _GENERIC_FORM_KEYS),
    )


def _first_scalar(record: Mapping, keys: Iterable[str]) -> str:
    """The first of these top-level keys holding a plain value (not a nested object)."""
    for key in keys:
        value = record.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool) and _text(value):
            return _text(value)
    return ""


def _submission(
    fields: dict[str, str],
    submission_id: str,
    form_name: str,
    submitted_at: str = "",
    is_test: bool = False,
) -> Submission:
    if not fields and not is_test:
        raise FormPayloadError("the post has no form fields")
    leading = {_ID_LABEL: submission_id, _TIME_LABEL: submitted_at}
    record = {label: value for label, value in leading.items() if value}
    record.update((label, value) for label, value in fields.items() if label not in record)
    return Submission(record, submission_id, form_name, is_test)


def _fields(body: object, service: str) -> dict[str, str]:
    """Form pairs or a flat JSON object, as one label -> value dict."""
    if isinstance(body, Mapping):
        return _joined(flatten(body))
    if isinstance(body, list | tuple) and all(_is_pair(item) for item in body):
        return _joined((str(name), _answer_text(value)) for name, value in body)
    raise FormPayloadError(
        f"expected form fields or a JSON object from {service}, got {_describe(body)}"
    )


def _json_object(body: object, service: str) -> Mapping:
    if isinstance(body, Mapping):
        return body
    raise FormPayloadError(f"expected a JSON object from {service}, got {_describe(body)}")


def _is_pair(item: object) -> bool:
    return isinstance(item, list | tuple) and len(item) == 2 and isinstance(item[0], str)


def _describe(body: object) -> str:
    if isinstance(body, list | tuple) and body and all(_is_pair(item) for item in body):
        return "form fields"
    if isinstance(body, list | tuple):
        return f"a list of {len(body)} items"
    return "nothing" if body in (None, "", b"") else f"a {type(body).__name__}"


def _joined(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Repeated labels (checkboxes, several emails) joined with ", "; empty values dropped."""
    record: dict[str, str] = {}
    for label, value in pairs:
        value = value.strip()
        if not value:
            continue
        record[label] = f"{record[label]}, {value}" if label in record else value
    return record


def _answer_text(value: object) -> str:
    """An answer as text: lists joined, Typeform's `{"label": ...}` choices, files by URL."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(text for text in (_answer_text(item) for item in value) if text)
    if isinstance(value, Mapping):
        return _mapping_text(value)
    return str(value).strip()


def _mapping_text(value: Mapping) -> str:
    for key in ("label", "labels", "url", "amount"):
        if key in value:
            return _answer_text([value[key], value.get("other")])
    if "other" in value:
        return _answer_text(value["other"])
    return "; ".join(f"{label}: {text}" for label, text in flatten(value) if text)


def _question_label(title: object) -> str:
    """`Как вы о нас узнали?` -> `Как вы о нас узнали`: field aliases name no question marks."""
    return _text(title).rstrip("?!:* ").strip()


def _text(value: object) -> str:
    return "" if value is None else str(value).strip()


_PARSERS: dict[str, Callable[[object], Submission]] = {
    "tilda": _tilda,
    "typeform": _typeform,
    "google_forms": _google_forms,
    "cf7": _cf7,
    "webflow": _webflow,
    "tally": _tally,
    "generic": _generic,
}
PRESETS: tuple[str, ...] = tuple(_PARSERS)
