"""Form-notification templates (presets): which service sent a mail, and how
that service lays out the visitor's answers.

A preset is picked by the mail's sender or subject (config
`notification_presets`); a mail no preset claims is read by the generic
`Label: value` parser in transforms/mail.py. Pure functions, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from itertools import pairwise
from typing import Literal

from transforms.fields import label_key

Layout = Literal["label_value", "question_then_answer"]

_LABEL_LINE = re.compile(r"^([^:\n]{1,60}?)\s*:\s*(.*)$")
# A line of `***`, `---` or `===` separates parts of a template; Bitrix web
# forms underline each question with `***`.
_RULE = re.compile(r"^[*=_\-]{3,}$")
_UNDERLINE = re.compile(r"^\*{3,}$")
_BARE_LINK = re.compile(r"^https?://\S+$", re.IGNORECASE)


@dataclass(frozen=True)
class NotificationPreset:
    """One form service's notification template.

    Line patterns (`start_after`, `footer`, `skip_lines`) match a whole
    stripped line, case-insensitive, with `*`/`?` wildcards.
    """

    name: str
    senders: Sequence[str] = ()
    subjects: Sequence[str] = ()
    field_aliases: Mapping[str, Sequence[str]] = field(default_factory=dict)
    layout: Layout = "label_value"
    # the fields start below the first line matching one of these
    start_after: Sequence[str] = ()
    # the footer starts at the first line matching one of these: its
    # `Label: value` lines and a bare link (the page) are read, nothing more
    footer: Sequence[str] = ()
    # template text that is never a field nor part of an answer
    skip_lines: Sequence[str] = ()
    # regular expressions for lines that wrap their label, e.g. Yandex Forms'
    # `Ответ на вопрос «Имя»: ...`; groups `label` and (optional) `value`
    label_patterns: Sequence[str] = ()


GENERIC = NotificationPreset(name="generic")


def choose_preset(
    sender: str, subject: str, presets: Sequence[NotificationPreset]
) -> NotificationPreset:
    """The first preset whose sender or subject patterns match; else GENERIC."""
    sender, subject = sender.lower(), subject.lower()
    for preset in presets:
        if _any_match(sender, preset.senders) or _any_match(subject, preset.subjects):
            return preset
    return GENERIC


def notification_pairs(text: str, preset: NotificationPreset) -> list[tuple[str, str]]:
    """The label/value pairs of a notification body laid out as `preset` says.

    A label that is one of the preset's own aliases is replaced by its lead
    field name, so the shared field map reads it.
    """
    body, footer = _sections(text, preset)
    if preset.layout == "question_then_answer":
        pairs = _question_answer_pairs(body, preset)
    else:
        pairs = _label_value_pairs(body, preset)
    pairs += _footer_pairs(footer, preset)
    aliases = {
        label_key(label): field_name
        for field_name, labels in preset.field_aliases.items()
        for label in labels
    }
    return [(aliases.get(label_key(label), label), value) for label, value in pairs]


def form_text(text: str, preset: NotificationPreset) -> str:
    """The body without the template's heading, footer and chrome lines."""
    body, _ = _sections(text, preset)
    return "\n".join(body).strip()


def _sections(text: str, preset: NotificationPreset) -> tuple[list[str], list[str]]:
    lines = [
        line.strip()
        for line in text.splitlines()
        if not _any_match(line.strip().lower(), preset.skip_lines)
    ]
    for index, line in enumerate(lines):
        if _any_match(line.lower(), preset.start_after):
            lines = lines[index + 1 :]
            break
    for index, line in enumerate(lines):
        if _any_match(line.lower(), preset.footer):
            return lines[:index], lines[index + 1 :]
    return lines, []


def _label_value_pairs(lines: list[str], preset: NotificationPreset) -> list[tuple[str, str]]:
    """`Label: value` lines; the lines below a label continue its value (or
    hold it, when the label line has none) until the next label or a rule."""
    pairs: list[tuple[str, str]] = []
    taking_lines = False
    for line in lines:
        if _RULE.match(line):
            taking_lines = False
            continue
        pair = _label_line(line, preset)
        if pair:
            pairs.append(pair)
            taking_lines = True
        elif line and taking_lines:
            _continue_value(pairs, line)
    return pairs


def _question_answer_pairs(lines: list[str], preset: NotificationPreset) -> list[tuple[str, str]]:
    if any(line and _UNDERLINE.match(below) for line, below in pairwise(lines)):
        return _underlined_pairs(lines, preset)
    return _alternating_pairs(lines, preset)


def _underlined_pairs(lines: list[str], preset: NotificationPreset) -> list[tuple[str, str]]:
    """Bitrix web forms: the question, a line of `*` under it, the answer
    below up to a blank line. Other `Label: value` lines are read as they are."""
    pairs: list[tuple[str, str]] = []
    answering = False
    for index, line in enumerate(lines):
        if not line:
            answering = False
        elif _RULE.match(line):
            continue
        elif index + 1 < len(lines) and _UNDERLINE.match(lines[index + 1]):
            pairs.append((_question(line), ""))
            answering = True
        elif answering:
            _continue_value(pairs, line)
        elif pair := _label_line(line, preset):
            pairs.append(pair)
            answering = not pair[1]
    return pairs


def _alternating_pairs(lines: list[str], preset: NotificationPreset) -> list[tuple[str, str]]:
    """Google Forms: a question on one line, its answer on the next.

    Each paragraph starts afresh, so a question left unanswered (a paragraph
    of one line) does not shift the answers after it. Where a question is
    expected, a `Label: value` line is a pair by itself, and in text with
    paragraphs a bare `Label:` takes the rest of its paragraph (Bitrix's
    feedback form puts a message of several lines under `Текст сообщения:`).
    """
    has_paragraphs = "" in lines
    pairs: list[tuple[str, str]] = []
    question: str | None = None
    taking_paragraph = False
    for line in lines:
        if not line:
            question, taking_paragraph = None, False
        elif _RULE.match(line):
            continue
        elif taking_paragraph:
            _continue_value(pairs, line)
        elif question is not None:
            pairs.append((question, line))
            question = None
        elif (pair := _label_line(line, preset)) and (pair[1] or has_paragraphs):
            pairs.append(pair)
            taking_paragraph = not pair[1]
        else:
            question = _question(pair[0] if pair else line)
    return pairs


def _footer_pairs(lines: list[str], preset: NotificationPreset) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for line in lines:
        if _BARE_LINK.match(line):
            pairs.append(("referrer", line))
        elif pair := _label_line(line, preset):
            pairs.append(pair)
    return pairs


def _label_line(line: str, preset: NotificationPreset) -> tuple[str, str] | None:
    for pattern in preset.label_patterns:
        match = re.match(pattern, line, re.IGNORECASE)
        if match:
            return match.group("label").strip(), (match.groupdict().get("value") or "").strip()
    match = _LABEL_LINE.match(line)
    if match and not match.group(1).lower().startswith("http"):
        return match.group(1), match.group(2).strip()
    return None


def _continue_value(pairs: list[tuple[str, str]], line: str) -> None:
    label, value = pairs[-1]
    pairs[-1] = (label, f"{value}\n{line}" if value else line)


def _question(text: str) -> str:
    """`Как вас зовут? *` -> `Как вас зовут`: the marks are not the label."""
    return text.strip().rstrip(":?* ").strip()


def _any_match(value: str, patterns: Sequence[str]) -> bool:
    return any(fnmatchcase(value, pattern.lower()) for pattern in patterns)
