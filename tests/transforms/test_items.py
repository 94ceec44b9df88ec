"""`lead_from_item` is total: every hostile item becomes a rejection with a clear
reason (or a lead, when the rest of it is usable), and none raises, so one
item never fails the batch it is processed in."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

import pytest

from transforms import items as items_module
from transforms.form_posts import FormRules
from transforms.items import lead_from_item
from transforms.records import Lead, ParseSkip, RawItem, Rejection

RECEIVED = datetime(2026, 5, 20, 9, 30, tzinfo=UTC)
GOOD_MAIL = "From: Иван <ivan@mail.ru>\nSubject: Заявка\n\nПозвоните: 8 912 345-67-89\n"


def _item(kind: str, payload: bytes, **meta) -> RawItem:
    return RawItem(item_id=f"file:abc:{kind}", source="files", kind=kind, payload=payload,
                   received_at=RECEIVED, meta={"path": "x", "row": "1", **meta})


def _mail(headers: str, body: str = "Позвоните: 8 912 345-67-89") -> RawItem:
    return _item("email", f"{headers}\n\n{body}\n".encode("utf-8", "surrogateescape"))


@pytest.fixture
def outcome_of(settings):
    rules = (settings.mail_rules(), settings.submission_rules(), settings.normalize_rules(),
             {"form-site": FormRules("generic")})
    return lambda item: lead_from_item(item, *rules)


def _nested_mime(depth: int) -> bytes:
    inner = b"Content-Type: text/plain\n\n8 912 345 67 89\n"
    for level in range(depth):
        inner = (b"Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n" % (level, level)
                 + inner + b"\n--b%d--\n" % level)
    return b"From: ivan@mail.ru\nSubject: x\n" + inner


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        pytest.param(_item("form", b"[" * 1000 + b"]" * 1000), "nested too deep",
                     id="json-nested-1000-deep"),
        pytest.param(_item("form", b'{"a": ' * 1000 + b"1" + b"}" * 1000), "nested too deep",
                     id="json-objects-nested-1000-deep"),
        pytest.param(_item("form", b'{"phone": ' + b"9" * 4301 + b"}"),
                     "a number in the JSON has more than 4300 digits",
                     id="integer-over-4300-digits"),
        pytest.param(_item("form", b"\xff\xfe{}"), "not UTF-8 text", id="not-utf8"),
        pytest.param(_item("form", b"[1, 2]"), "expected one JSON object", id="not-an-object"),
        pytest.param(_item("email", _nested_mime(3000)),
                     "the mail has 3001 MIME parts; LeadHub reads mail with at most 200",
                     id="3000-nested-mime-parts"),
        pytest.param(_mail("From: ivan@mail.ru\nContent-Type: text/plain (" + "(" * 1000),
                     "nests comments too deep", id="content-type-with-1000-parentheses"),
        pytest.param(_item("row", b"", unreadable="crm.csv: the file is empty"),
                     "crm.csv: the file is empty", id="file-that-could-not-be-read"),
    ],
)
def test_hostile_item_is_rejected_with_the_reason(outcome_of, item, reason):
    outcome = outcome_of(item)
    assert isinstance(outcome, Rejection)
    assert reason in outcome.reason


@pytest.mark.parametrize(
    ("item", "warning"),
    [
        pytest.param(_item("form", b'{"name": "\\ud800", "phone": "89123456789"}'),
                     "broken characters", id="lone-surrogate-in-jsonl"),
        pytest.param(_item("form", b'{"\\udfff": "x", "phone": "89123456789"}'),
                     "broken characters", id="lone-surrogate-in-a-key"),
        pytest.param(_item("row", '{"Телефон": "89123456789", "Дата": '
                                  '"9999-12-31T23:59:59-12:00"}'.encode()),
                     "is not a date and time LeadHub can use", id="csv-date-past-the-last-moment"),
        pytest.param(_mail("From: ivan@mail.ru\nDate: Fri, 31 Dec 9999 23:59:59 -1200"),
                     "is not a real date and time", id="mail-date-past-the-last-moment"),
        pytest.param(_mail("From: " + "(" * 1000 + "ivan@mail.ru" + ")" * 1000),
                     "From header could not be parsed (RecursionError)",
                     id="from-with-1000-parentheses"),
        pytest.param(_mail('From: ivan@mail.ru\nContent-Type: text/plain; charset="utf\x00-8"'),
                     "", id="nul-byte-in-charset"),
    ],
)
def test_hostile_part_of_an_item_is_a_warning_and_the_lead_is_kept(outcome_of, item, warning):
    lead = outcome_of(item)
    assert isinstance(lead, Lead), lead
    assert lead.phone == "+79123456789"
    assert lead.received_at.astimezone(UTC)  # a real, convertible moment
    assert lead.received_at.year < 9999
    assert not warning or any(warning in text for text in lead.warnings), lead.warnings
    for text in (lead.name, lead.message, lead.subject, *lead.warnings):
        text.encode("utf-8")  # storable


def test_impossible_dates_fall_back_to_when_the_item_was_received(outcome_of):
    row = _item("row", '{"Телефон": "89123456789", "Дата": "0001-01-01T00:00:00+14:00"}'.encode())
    assert outcome_of(row).received_at == RECEIVED


def test_an_unforeseen_failure_names_the_exception_and_quarantines_only_that_item(
    outcome_of, monkeypatch
):
    def broken_parser(*args, **kwargs):
        raise KeyError("a case no rule foresaw")

    monkeypatch.setattr(items_module, "parse_email", broken_parser)
    outcome = outcome_of(_item("email", GOOD_MAIL.encode()))
    assert outcome == Rejection("could not be read (KeyError: 'a case no rule foresaw')")


@pytest.mark.parametrize("kind", ["email", "form", "row"])
def test_random_bytes_never_raise(outcome_of, kind):
    rng = random.Random(f"items-{kind}")
    seeds = [GOOD_MAIL.encode(), b'{"name": "Ann", "phone": "89123456789"}', b"From: x\n\n"]
    for _ in range(150):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randrange(1, 8)):
            data.insert(rng.randrange(len(data) + 1), rng.randrange(256))
        outcome = outcome_of(_item(kind, bytes(data)))
        assert isinstance(outcome, Lead | ParseSkip | Rejection)


def _lead(**changes) -> Lead:
    fields = dict(lead_id="import:1", channel="import", received_at=RECEIVED, name="Иван",
                  phone="+79123456789", phone_display="+7 (912) 345-67-89", phone_valid=True,
                  email="ivan@mail.ru", company="Ромашка", legal_form="ООО", position="",
                  city="", source="Сайт", source_matched=True, raw_source={"source": "Сайт"},
                  subject="", message="Перезвоните", warnings=["no name"])
    return Lead(**{**fields, **changes})


@pytest.mark.parametrize(
    "outcome",
    [
        pytest.param(_lead(), id="clean-lead"),
        pytest.param(_lead(name="Ив\ud800ан"), id="surrogate-in-a-field"),
        pytest.param(_lead(message="\udfff"), id="surrogate-in-the-message"),
        pytest.param(_lead(raw_source={"utm_source": "vk\ud83d"}), id="surrogate-in-raw-source"),
        pytest.param(_lead(raw_source={"\ud800": "vk"}), id="surrogate-in-a-raw-source-key"),
        pytest.param(_lead(warnings=["phone '\ud800' is not a valid number"]),
                     id="surrogate-in-a-warning"),
        pytest.param(_lead(received_at=datetime(9999, 12, 31, 23, 59,
                                                tzinfo=timezone(-timedelta(hours=12)))),
                     id="time-past-the-last-moment"),
        pytest.param(Rejection("no phone"), id="rejection"),
        pytest.param(Rejection("no phone (\ud800)"), id="rejection-with-a-surrogate"),
        pytest.param(ParseSkip("auto-reply"), id="skip"),
    ],
)
def test_storable_fast_path_gives_what_the_full_cleaning_gives(outcome, monkeypatch):
    item = _item("row", b"{}")
    quick = items_module._storable(outcome, item)
    monkeypatch.setattr(items_module, "_has_broken_text", lambda lead: True)
    monkeypatch.setattr(items_module, "has_lone_surrogate", lambda text: True)
    assert quick == items_module._storable(outcome, item)
