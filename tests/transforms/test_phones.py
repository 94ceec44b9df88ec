import pytest

from transforms.phones import find_phones, normalize_phone

SAME_NUMBER = [
    pytest.param("8 912 345-67-89", id="eight-prefix-spaced"),
    pytest.param("+7(912)3456789", id="plus-seven-brackets"),
    pytest.param("79123456789", id="seven-no-plus"),
    pytest.param("89123456789", id="eight-no-separators"),
    pytest.param("8(912)345 67 89", id="eight-brackets-spaces"),
    pytest.param("+7 912 345 67 89", id="plus-seven-spaces"),
    pytest.param(" +7-912-345-67-89 ", id="dashes-and-padding"),
    pytest.param("9123456789", id="ten-digits-no-prefix"),
]


@pytest.mark.parametrize("written", SAME_NUMBER)
def test_every_russian_format_gives_one_key(written):
    phone = normalize_phone(written, "RU")
    assert phone.e164 == "+79123456789"
    assert phone.display == "+7 (912) 345-67-89"


@pytest.mark.parametrize(
    ("style", "expected"),
    [
        pytest.param("pretty", "+7 (912) 345-67-89", id="pretty"),
        pytest.param("international", "+7 912 345-67-89", id="international"),
        pytest.param("national", "8 (912) 345-67-89", id="national"),
        pytest.param("e164", "+79123456789", id="e164"),
    ],
)
def test_display_style_comes_from_config(style, expected):
    assert normalize_phone("8 912 345-67-89", "RU", style).display == expected


@pytest.mark.parametrize(
    ("written", "region", "e164"),
    [
        pytest.param("+7 495 123-45-67", "RU", "+74951234567", id="moscow-landline"),
        pytest.param("+1 650 253 0000", "RU", "+16502530000", id="us-number-in-ru-config"),
        pytest.param("(650) 253-0000", "US", "+16502530000", id="us-region-local"),
        pytest.param("+375 29 123-45-67", "RU", "+375291234567", id="belarus"),
    ],
)
def test_other_regions(written, region, e164):
    assert normalize_phone(written, region).e164 == e164


@pytest.mark.parametrize(
    "written",
    [
        pytest.param("+7 000 000", id="too-short"),
        pytest.param("12345", id="five-digits"),
        pytest.param("позвоните мне", id="words"),
        pytest.param("8 800", id="fragment"),
    ],
)
def test_invalid_phone_is_kept_as_given_without_key(written):
    phone = normalize_phone(written, "RU")
    assert not phone.valid
    assert phone.e164 == ""
    assert phone.raw == " ".join(written.split())


def test_find_phones_in_free_text_in_order_without_repeats():
    text = "Звоните 8 912 345-67-89 или +7(916)1234567; ещё раз: +7 912 345 67 89"
    assert find_phones(text, "RU") == ["+79123456789", "+79161234567"]


@pytest.mark.parametrize(
    "requisite",
    [
        pytest.param("ИНН 7712345678", id="inn"),
        pytest.param("КПП: 771201001", id="kpp"),
        pytest.param("ОГРН 1027700132195", id="ogrn"),
        pytest.param("р/с 40702810900000012345", id="bank-account"),
    ],
)
def test_company_requisites_are_not_phones(requisite):
    assert find_phones(f"ООО Ромашка, {requisite}, тел. 8 903 123-45-67", "RU") == [
        "+79031234567"
    ]
