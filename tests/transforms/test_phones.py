import random

import pytest

from transforms.phones import (
    _parsed_phone,
    find_phones,
    matched_phones,
    normalize_phone,
    russian_mobile,
    split_extension,
)

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


EXTENSIONS = [
    pytest.param("8 (342) 052-16-74 доб. 280", "+73420521674", "280", id="dob-dot-space"),
    pytest.param("+7 495 123-45-67 доб.12", "+74951234567", "12", id="dob-no-space"),
    pytest.param("+7 495 123-45-67 (доб. 280)", "+74951234567", "280", id="dob-in-brackets"),
    pytest.param("+7 495 123-45-67, доб 280", "+74951234567", "280", id="dob-after-comma"),
    pytest.param("+7 495 123-45-67 добавочный 280", "+74951234567", "280", id="dob-in-full"),
    pytest.param("+7 495 123-45-67 вн. 280", "+74951234567", "280", id="vn"),
    pytest.param("+7 495 123-45-67 внутр. 280", "+74951234567", "280", id="vnutr"),
    pytest.param("+7 495 123-45-67 ext. 12", "+74951234567", "12", id="ext-dot"),
    pytest.param("+7 495 123-45-67 ext 12", "+74951234567", "12", id="ext-no-dot"),
    pytest.param("+7 495 123-45-67 x12", "+74951234567", "12", id="x"),
    pytest.param("+7 495 123-45-67 #12", "+74951234567", "12", id="hash"),
    pytest.param("79123456789 доб 5", "+79123456789", "5", id="eleven-digits-no-plus"),
    pytest.param("+74951234567;ext=12", "+74951234567", "12", id="rfc3966-identity"),
]


@pytest.mark.parametrize(("written", "e164", "extension"), EXTENSIONS)
def test_an_extension_is_kept_apart_from_the_number(written, e164, extension):
    phone = normalize_phone(written, "RU")
    assert (phone.e164, phone.extension) == (e164, extension)
    assert phone.identity == f"{e164};ext={extension}"


def test_colleagues_behind_one_switchboard_have_different_identities():
    first = normalize_phone("8 (342) 052-16-74 доб. 280", "RU")
    second = normalize_phone("+7 342 052 16 74 вн. 281", "RU")
    assert first.e164 == second.e164
    assert first.identity != second.identity


def test_a_number_without_extension_is_its_own_identity():
    phone = normalize_phone("8 912 345-67-89", "RU")
    assert (phone.extension, phone.identity) == ("", "+79123456789")


@pytest.mark.parametrize(
    ("written", "style", "expected"),
    [
        pytest.param("8 (342) 052-16-74 доб. 280", "pretty", "+7 (342) 052-16-74 доб. 280",
                     id="ru-pretty"),
        pytest.param("8 (342) 052-16-74 ext 280", "national", "8 (342) 052-16-74 доб. 280",
                     id="ru-national"),
        pytest.param("+7 7272 58-00-00 доб. 5", "international", "+7 7272 58 00 00 доб. 5",
                     id="kz-international"),
        pytest.param("+375 29 123-45-67 доб. 5", "pretty", "+375 (29) 123-45-67 доб. 5",
                     id="by-pretty"),
        pytest.param("+1 650 253 0000 доб. 12", "pretty", "+1 (650) 253-0000 ext. 12",
                     id="us-ext"),
        pytest.param("8 (342) 052-16-74 доб. 280", "e164", "+73420521674;ext=280",
                     id="e164-rfc3966"),
    ],
)
def test_display_writes_the_extension_the_way_the_region_does(written, style, expected):
    assert normalize_phone(written, "RU", style).display == expected


def test_find_phones_keeps_extensions_in_free_text():
    text = ("Звоните 8 (342) 052-16-74 доб. 280, коллега: +7 (342) 052-16-74 вн. 281; "
            "мобильный 8 912 345-67-89")
    assert find_phones(text, "RU") == [
        "+73420521674;ext=280", "+73420521674;ext=281", "+79123456789"]


def _written_mobiles(count: int, seed: int) -> list[str]:
    """Mobiles written every way people do, and near misses: codes outside the
    mobile ranges (93x), a digit too many or too few, odd brackets, other
    prefixes, extensions."""
    rng = random.Random(seed)
    prefixes = ["+7", "8", "7", ""] * 4 + ["+8", "+7 ", "8-", "+77", "07", "+ 7"]
    gaps = ["", " ", "-"] * 5 + ["  ", " - ", ".", "/"]
    written = []
    for _ in range(count):
        area = f"9{rng.randrange(100):02d}" if rng.random() < 0.8 else f"{rng.randrange(1000):03d}"
        digits = f"{rng.randrange(10**7):07d}"
        if rng.random() < 0.05:
            digits = digits[: rng.choice((6, 8))] if rng.random() < 0.5 else digits + "1"
        if rng.random() < 0.4:
            area = rng.choice([f"({area})"] * 4 + [f"({area}", f"{area})", f"[{area}]"])
        parts = [rng.choice(prefixes), area, digits[:3], digits[3:5], digits[5:]]
        text = "".join(part + rng.choice(gaps) for part in parts).strip()
        if rng.random() < 0.05:
            text += rng.choice([" доб. 12", ", доб.280", " ext. 5", " x7"])
        written.append(text)
    return written


@pytest.mark.parametrize("seed", [pytest.param(seed, id=f"seed-{seed}") for seed in (1, 2, 3)])
def test_the_fast_path_for_russian_mobiles_reads_what_phonenumbers_reads(seed):
    written = _written_mobiles(4000, seed)
    assert sum(bool(russian_mobile(" ".join(t.split()), "RU")) for t in written) > 400
    for text in written:
        raw = " ".join(text.split())
        base, extension = split_extension(raw)
        for style in ("pretty", "international", "national", "e164"):
            assert normalize_phone(text, "RU", style) == _parsed_phone(
                raw, base, extension, "RU", style), (text, style)
        assert find_phones(text, "RU") == matched_phones(text, "RU"), text


def test_a_cached_phone_list_cannot_be_changed_by_its_caller():
    first = find_phones("+7 912 345-67-89", "RU")
    first.append("+70000000000")
    assert find_phones("+7 912 345-67-89", "RU") == ["+79123456789"]
