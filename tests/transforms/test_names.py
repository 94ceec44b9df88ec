import pytest

from transforms.names import normalize_name


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        pytest.param("  иван   петров ", "Иван Петров", id="lower-case-extra-spaces"),
        pytest.param("ИВАН ПЕТРОВ", "Иван Петров", id="upper-case"),
        pytest.param("анна-мария иванова", "Анна-Мария Иванова", id="hyphenated"),
        pytest.param("McDonald", "McDonald", id="mixed-case-kept"),
        pytest.param("мамедов ильхам оглы", "Мамедов Ильхам оглы", id="patronymic-particle"),
        pytest.param("ivan@mail.ru", "", id="an-email-is-not-a-name"),
        pytest.param("89123456789", "", id="a-phone-is-not-a-name"),
        pytest.param("", "", id="empty"),
    ],
)
def test_names(written, expected):
    assert normalize_name(written) == expected


@pytest.mark.parametrize("written", ["  иван   ПЕТРОВ ", "McDonald", "ivan@mail.ru", "", " , ",
                                     'Анна "Маша" оглы', "ёЖИК"])
def test_cached_name_is_the_computed_one(written):
    assert normalize_name(written) == normalize_name.__wrapped__(written)
    assert normalize_name(written) == normalize_name.__wrapped__(written)
