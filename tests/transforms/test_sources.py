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
