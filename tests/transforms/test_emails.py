import pytest

from transforms.emails import find_emails, normalize_email


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
