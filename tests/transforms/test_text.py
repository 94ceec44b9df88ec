import pytest

from transforms.text import decode_text, repair_header

RUSSIAN = "Здравствуйте, хотим заказать доставку в Казань"


@pytest.mark.parametrize(
    ("encoding", "declared"),
    [
        pytest.param("utf-8", None, id="utf8-undeclared"),
        pytest.param("cp1251", None, id="cp1251-undeclared"),
        pytest.param("koi8-r", None, id="koi8r-undeclared"),
        pytest.param("cp1251", "windows-1251", id="cp1251-declared"),
        pytest.param("koi8-r", "koi8-r", id="koi8r-declared"),
        pytest.param("cp1251", "koi8-r", id="cp1251-declared-wrongly-as-koi8r"),
        pytest.param("koi8-r", "windows-1251", id="koi8r-declared-wrongly-as-cp1251"),
        pytest.param("utf-8", "us-ascii", id="utf8-declared-as-ascii"),
        pytest.param("cp1251", "x-unknown", id="unknown-charset-name"),
    ],
)
def test_russian_text_survives_any_declaration(encoding, declared):
    assert decode_text(RUSSIAN.encode(encoding), declared)[0] == RUSSIAN


def test_bom_is_dropped():
    assert decode_text(b"\xef\xbb\xbf" + RUSSIAN.encode())[0] == RUSSIAN


def test_raw_8bit_header_is_decoded():
    escaped = RUSSIAN.encode("cp1251").decode("utf-8", "surrogateescape")
    assert repair_header(escaped) == RUSSIAN
