import pytest

from transforms.masking import mask_pii


@pytest.mark.parametrize(
    ("text", "hidden", "kept"),
    [
        pytest.param("lead ivan.petrov@mail.ru added", "ivan.petrov", "@mail.ru", id="email"),
        pytest.param("call +7 912 345-67-89 now", "345-67", "+79", id="phone-international"),
        pytest.param("тел 8(912)3456789", "3456", "89", id="phone-national"),
    ],
)
def test_phones_and_emails_are_masked(text, hidden, kept):
    masked = mask_pii(text)
    assert hidden not in masked
    assert kept in masked


def test_short_numbers_and_dates_stay_readable():
    assert mask_pii("3 item(s) at 2026-11-23, batch 500") == "3 item(s) at 2026-11-23, batch 500"


def test_date_time_is_not_a_phone():
    assert mask_pii("run at 2026-11-23 19:38:13") == "run at 2026-11-23 19:38:13"
