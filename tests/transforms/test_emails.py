import random
import re

import pytest

from transforms.emails import (
    _PLURAL_SURNAME,
    canonical_email,
    email_domain_typo,
    find_emails,
    mailbox_kind,
    normalize_email,
    same_mailbox_reason,
    validated_email,
)


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        pytest.param("Olga@Example.RU", "olga@example.ru", id="mixed-case"),
        pytest.param("  ivan@mail.ru  ", "ivan@mail.ru", id="padded"),
        pytest.param("<ivan@mail.ru>", "ivan@mail.ru", id="angle-brackets"),
        pytest.param("mailto:ivan@mail.ru", "ivan@mail.ru", id="mailto"),
        pytest.param("ivan.petrov+leads@yandex.ru", "ivan.petrov+leads@yandex.ru", id="plus-tag"),
    ],
)
def test_valid_addresses_are_trimmed_and_lower_cased(written, expected):
    assert normalize_email(written) == expected


@pytest.mark.parametrize(
    "written",
    [
        pytest.param("ivan@", id="no-domain"),
        pytest.param("ivan.mail.ru", id="no-at"),
        pytest.param("ivan@@mail.ru", id="double-at"),
        pytest.param("", id="empty"),
        pytest.param("ivan@mail", id="no-tld"),
    ],
)
def test_invalid_addresses_are_rejected(written):
    assert normalize_email(written) is None


def test_find_emails_in_text_normalized_and_unique():
    text = "Пишите: Ivan.Petrov@Mail.ru. Копия: <ivan.petrov@mail.ru>, a@b.co"
    assert find_emails(text) == ["ivan.petrov@mail.ru", "a@b.co"]


@pytest.mark.parametrize(
    ("first", "second"),
    [
        pytest.param("Nesterova.Y+crm@gmail.Com", "nesterovay@gmail.com", id="gmail-dots-tag-case"),
        pytest.param("nesterova.y@googlemail.com", "nesterovay@gmail.com", id="googlemail"),
        pytest.param("ivan.petrov@ya.ru", "ivan.petrov@yandex.ru", id="ya-ru"),
        pytest.param("ivan.petrov@yandex.com", "ivan.petrov@yandex.kz", id="yandex-com-kz"),
        pytest.param("ivan.petrov@yandex.by", "ivan.petrov@narod.ru", id="yandex-by-narod"),
        pytest.param("ivan.petrov@yandex.ua", "ivan.petrov@ya.ru", id="yandex-ua"),
        pytest.param("ivan.petrov+shop@yandex.ru", "ivan.petrov@yandex.ru", id="yandex-plus-tag"),
        pytest.param("ivan.petrov@yandex.ru", "ivan-petrov@yandex.ru", id="yandex-dot-is-hyphen"),
        pytest.param("nesterovay@gmial.com", "nesterovay@gmail.com", id="typo-gmial"),
        pytest.param("ivan@yandex.ry", "ivan@yandex.ru", id="typo-yandex-ry"),
        pytest.param("ivan@yadnex.ru", "ivan@yandex.ru", id="typo-yadnex"),
        pytest.param("ivan@gmail.co", "ivan@gmail.com", id="typo-gmail-co"),
        pytest.param("ivan@mail.ri", "ivan@mail.ru", id="typo-mail-ri"),
        pytest.param("ivan@rambler.ry", "ivan@rambler.ru", id="typo-rambler"),
    ],
)
def test_one_mailbox_has_one_canonical_address(first, second, identity_rules):
    assert canonical_email(first, identity_rules) == canonical_email(second, identity_rules)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        pytest.param("ivan@mail.ru", "ivan@inbox.ru", id="mail-ru-inbox-ru"),
        pytest.param("ivan@list.ru", "ivan@bk.ru", id="list-ru-bk-ru"),
        pytest.param("ivan.petrov@mail.ru", "ivanpetrov@mail.ru", id="mail-ru-dots-count"),
        pytest.param("ivan.petrov@yandex.ru", "ivanpetrov@yandex.ru", id="yandex-dots-count"),
        pytest.param("ivan+a@mail.ru", "ivan@mail.ru", id="mail-ru-plus-is-its-own"),
        pytest.param("i.petrov@romashka.ru", "ipetrov@romashka.ru", id="corporate-as-written"),
        pytest.param("ivan@gmail.com", "ivan@yandex.ru", id="two-services"),
    ],
)
def test_other_mailboxes_stay_apart(first, second, identity_rules):
    assert canonical_email(first, identity_rules) != canonical_email(second, identity_rules)


def test_canonical_form_of_gmail_and_yandex(identity_rules):
    assert canonical_email("Nesterova.Y+crm@gmail.Com", identity_rules) == "nesterovay@gmail.com"
    assert canonical_email("Ivan.Petrov@ya.ru", identity_rules) == "ivan-petrov@yandex.ru"
    assert canonical_email("not an address", identity_rules) == ""


@pytest.mark.parametrize(
    ("domain", "meant"),
    [
        pytest.param("yandex.ry", "yandex.ru", id="neighbour-key"),
        pytest.param("gmial.com", "gmail.com", id="swapped-letters"),
        pytest.param("gmail.co", "gmail.com", id="letter-left-out"),
        pytest.param("gmaill.com", "gmail.com", id="letter-doubled"),
        pytest.param("mail.ri", "mail.ru", id="mail-ri"),
        pytest.param("yadnex.ru", "yandex.ru", id="yadnex"),
        pytest.param("outlok.com", "outlook.com", id="outlook"),
        pytest.param("yandex.ru", "", id="the-service-itself"),
        pytest.param("ya.ru", "", id="an-alias"),
        pytest.param("mail.com", "", id="another-service"),
        pytest.param("email.ru", "", id="similar-corporate-domain"),
        pytest.param("mail.su", "", id="far-key-is-not-a-slip"),
        pytest.param("mai.ru", "", id="short-real-domain"),
        pytest.param("bk.su", "", id="short-provider-never-corrected"),
        pytest.param("yandex-team.ru", "", id="company-of-the-provider"),
        pytest.param("romashka.ru", "", id="unrelated"),
    ],
)
def test_only_obvious_typos_of_mail_services_are_corrected(domain, meant, identity_rules):
    assert email_domain_typo(domain, identity_rules) == meant


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        pytest.param("info@romashka.ru", "role", id="info"),
        pytest.param("Sales@romashka.ru", "role", id="sales-any-case"),
        pytest.param("zakaz-msk@romashka.ru", "role", id="zakaz-with-city"),
        pytest.param("office2@romashka.ru", "role", id="office-with-number"),
        pytest.param("buh@romashka.ru", "role", id="buh"),
        pytest.param("hello@romashka.ru", "role", id="hello"),
        pytest.param("zhuravlevy@mail.ru", "family", id="plural-surname"),
        pytest.param("ivanovy1985@mail.ru", "family", id="plural-surname-with-year"),
        pytest.param("sorokiny@yandex.ru", "family", id="plural-in-surname"),
        pytest.param("semya.petrovyh@mail.ru", "family", id="semya"),
        pytest.param("ivanovfamily@gmail.com", "family", id="family-inside"),
        pytest.param("ivan.petrov@mail.ru", "personal", id="first-and-surname"),
        pytest.param("manager.ivanova@romashka.ru", "personal", id="role-word-and-a-name"),
        pytest.param("petrov.y@mail.ru", "personal", id="surname-and-initial"),
        pytest.param("nesterovay@gmail.com", "personal", id="surname-with-initial-joined"),
    ],
)
def test_mailbox_kind(address, kind, identity_rules):
    assert mailbox_kind(address, identity_rules) == kind


def _mailbox_kind_as_written(address, rules):
    """`mailbox_kind` read straight from the rules, without its cache or index."""
    roles = {word.lower() for word in rules.role_mailboxes}
    family = {word.lower() for word in rules.family_mailboxes}
    local = address.strip().lower().rpartition("@")[0].partition("+")[0]
    tokens = [token for token in re.split(r"[._+\-\d]+", local) if token]
    if local in roles or (any(token in roles for token in tokens) and all(
            token in roles or len(token) <= 3 for token in tokens)):
        return "role"
    if any(token in family or _PLURAL_SURNAME.fullmatch(token) for token in tokens):
        return "family"
    if any(len(word) >= 5 and word in local for word in family):
        return "family"
    return "personal"


def test_cached_mailbox_kind_is_the_one_read_from_the_rules(identity_rules):
    rng = random.Random(16)
    words = [*identity_rules.role_mailboxes[:20], *identity_rules.family_mailboxes[:20],
             "ivan", "petrova", "ivanovy", "msk", "2", "zhuravskie", "a", "Семья", ""]
    for _ in range(3000):
        local = rng.choice(".-_+").join(rng.choice(words) for _ in range(rng.randint(1, 3)))
        address = f" {local.upper() if rng.random() < 0.2 else local}@mail.ru"
        expected = _mailbox_kind_as_written(address, identity_rules)
        assert mailbox_kind(address, identity_rules) == expected, address


def test_a_users_role_mailbox_adds_to_the_built_in_ones(tmp_path):
    from leadhub.settings import load_settings

    config = tmp_path / "leadhub.yaml"
    config.write_text("identity:\n  role_mailboxes: [kontora]\n"
                      "  diminutives: {m: {Александр: [Алик]}}\n", encoding="utf-8")
    rules = load_settings(config).identity_rules()
    assert mailbox_kind("kontora@romashka.ru", rules) == "role"
    assert mailbox_kind("info@romashka.ru", rules) == "role"
    assert "Алик" in rules.diminutives["m"]["Александр"]
    assert "Саша" in rules.diminutives["m"]["Александр"]


@pytest.mark.parametrize(
    ("first", "second", "reason"),
    [
        pytest.param("Nesterova.Y@gmail.com", "nesterovay@gmail.com", "Gmail ignores dots",
                     id="gmail"),
        pytest.param("ivan@ya.ru", "ivan@yandex.ru", "ya.ru and yandex.ru are one mailbox",
                     id="yandex-domains"),
        pytest.param("ivan@yandex.ry", "ivan@yandex.ru", "yandex.ry read as yandex.ru",
                     id="typo"),
        pytest.param("ivan+crm@gmail.com", "ivan@gmail.com", "a +tag reaches the same mailbox",
                     id="tag"),
    ],
)
def test_why_two_addresses_are_one_mailbox(first, second, reason, identity_rules):
    assert same_mailbox_reason(first, second, identity_rules) == reason


def _written_addresses(count: int, seed: int) -> list[str]:
    """Addresses as lists hold them, and ones email-validator refuses: dots at
    the ends or doubled, quotes, Cyrillic, over-long parts, reserved or
    numeric top-level domains, labels with hyphens at their ends."""
    rng = random.Random(seed)
    plain = "abcxyzABCXYZ0189._+-"
    every = plain * 3 + "'\"!#é ж@"
    domains = ["mail.ru", "Yandex.RU", "gmail.com", "bk.ru", "romashka-stroy.ru", "a.b",
               "localhost", "mail", "mail..ru", "-a.ru", "a-.ru", "почта.рф", "x.123",
               "site.test", "corp.local", "xn--80a1acny.xn--p1ai", "a_b.ru", "mail.ru.",
               "123.45.67.89", "[127.0.0.1]", "sub." * 60 + "ru", "a" * 63 + ".ru",
               "a" * 64 + ".ru", "example.invalid", "x.onion"]
    written = []
    for _ in range(count):
        length = rng.choice([1, 3, 8, 12, 20, 63, 64, 65])
        letters = plain if rng.random() < 0.5 else every
        local = "".join(rng.choice(letters) for _ in range(length))
        text = f"{local}@{rng.choice(domains)}"
        if rng.random() < 0.1:
            text = rng.choice([f" {text} ", f"<{text}>", f"mailto:{text}", text.upper()])
        written.append(text)
    return written


@pytest.mark.parametrize("seed", [pytest.param(seed, id=f"seed-{seed}") for seed in (1, 2, 3)])
def test_the_fast_path_for_plain_addresses_reads_what_email_validator_reads(seed):
    written = _written_addresses(5000, seed)
    results = [normalize_email(text) for text in written]
    assert sum(result is not None for result in results) > 500
    for text, result in zip(written, results, strict=True):
        candidate = text.strip().strip("<>").strip().removeprefix("mailto:")
        assert result == validated_email(candidate), text
