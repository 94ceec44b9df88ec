import random
from fnmatch import fnmatchcase

import pytest

from transforms.sources import categorize


@pytest.mark.parametrize(
    ("signals", "category"),
    [
        pytest.param({"utm_source": "yandex", "utm_medium": "cpc"}, "Реклама", id="paid-click"),
        pytest.param({"utm_source": "avito"}, "Авито", id="avito-utm"),
        pytest.param({"sender_domain": "avito.ru", "channel": "email"}, "Авито", id="avito-mail"),
        pytest.param({"source_text": "Авито"}, "Авито", id="avito-csv-column"),
        pytest.param({"utm_source": "vk"}, "Соцсети", id="vk"),
        pytest.param({"source_text": "по рекомендации"}, "Рекомендация", id="referral-text"),
        pytest.param({"utm_source": "newsletter"}, "Сайт", id="any-other-utm-is-site"),
        pytest.param({"channel": "form", "form": "callback"}, "Сайт", id="web-form"),
        pytest.param({"channel": "email", "mailbox": "sales"}, "Email", id="direct-mail"),
    ],
)
def test_default_rules(signals, category, settings):
    assert categorize(signals, settings.source_rules, settings.fallback_category) == (
        category,
        True,
    )


def test_unmatched_source_falls_back_and_says_so(settings):
    result = categorize(
        {"channel": "import", "source_text": "выставка"},
        settings.source_rules,
        settings.fallback_category,
    )
    assert result == ("Другое", False)


def test_every_named_field_of_a_rule_must_match():
    rules = [{"category": "Реклама", "utm_source": ["yandex"], "utm_medium": ["cpc"]}]
    assert categorize({"utm_source": "yandex"}, rules, "Другое") == ("Другое", False)
    assert categorize({"utm_source": "yandex", "utm_medium": "CPC"}, rules, "Другое") == (
        "Реклама",
        True,
    )


def test_wildcards_match_the_whole_value():
    rules = [{"category": "Сайт", "referrer": ["https://site.ru/*"]}]
    assert categorize({"referrer": "https://site.ru/promo"}, rules, "X")[0] == "Сайт"
    assert categorize({"referrer": "https://other.ru/site.ru/"}, rules, "X")[0] == "X"


def test_form_notification_by_mail_counts_as_site(settings):
    signals = {"channel": "email", "form": "Новая заявка с сайта", "mailbox": "sales"}
    assert categorize(signals, settings.source_rules, settings.fallback_category)[0] == "Сайт"


def _reference(signals, rules, fallback):
    """The rules read one by one, as written, without any compiling or caching."""
    for rule in rules:
        conditions = {key: value for key, value in rule.items() if key != "category"}
        if conditions and all(
            _reference_matches(signals.get(key, ""), patterns)
            for key, patterns in conditions.items()
        ):
            return str(rule["category"]), True
    return fallback, False


def _reference_matches(value, patterns):
    value = value.strip().lower()
    for pattern in patterns if isinstance(patterns, list | tuple) else [patterns]:
        pattern = str(pattern).lower()
        if value and ("*" in pattern or "?" in pattern):
            if fnmatchcase(value, pattern):
                return True
        elif value and pattern in value:
            return True
    return False


CUSTOM_RULES = [
    {"category": "Пусто"},
    {"category": "Выставка", "source_text": "Выставка"},
    {"category": "Промо", "referrer": ["https://SITE.ru/*", "*promo?"], "channel": ("form",)},
    {"category": "Звонок", "utm_medium": ["CALL"], "source_text": ["звон"]},
    {"category": "Любой", "utm_campaign": "*"},
]
VALUES = {
    "utm_source": ["", "yandex", "Avito", " VK ", "newsletter"],
    "utm_medium": ["", "cpc", "Call", "retargeting-ads", "email"],
    "utm_campaign": ["", "spring"],
    "form": ["", "callback", "Новая заявка"],
    "mailbox": ["", "sales"],
    "sender_domain": ["", "avito.ru", "mail.ru"],
    "referrer": ["", "https://site.ru/promo1", "https://other.ru/promo", "https://site.ru"],
    "channel": ["import", "form", "email", "crm"],
    "source_text": ["", "Сайт", "Авито", "Яндекс Директ", "Рекомендация", "  ВЫСТАВКА  ",
                    "звонок", "call center"],
}


def test_compiled_and_cached_rules_choose_as_the_rules_read_one_by_one(settings):
    rng = random.Random(16)
    for rules in (settings.source_rules, CUSTOM_RULES):
        for _ in range(2000):
            signals = {key: rng.choice(values) for key, values in VALUES.items()
                       if rng.random() < 0.6}
            assert categorize(signals, rules, "Другое") == _reference(signals, rules, "Другое")


def test_other_rules_are_not_answered_from_the_cache_of_the_first():
    signals = {"source_text": "Выставка"}
    assert categorize(signals, [{"category": "А", "source_text": "выстав"}], "X") == ("А", True)
    assert categorize(signals, [{"category": "Б", "source_text": "выстав"}], "X") == ("Б", True)
    assert categorize(signals, [{"category": "Б", "source_text": "выстав"}], "Y") == ("Б", True)
    assert categorize(signals, [{"category": "Б", "channel": "form"}], "Y") == ("Y", False)
