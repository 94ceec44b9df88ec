import pytest

from transforms.companies import _patterns, _split, split_company


@pytest.mark.parametrize(
    ("written", "name", "legal_form"),
    [
        pytest.param("ООО «Ромашка»", "Ромашка", "ООО", id="ooo-guillemets"),
        pytest.param('«ООО "Ромашка"»', "Ромашка", "ООО", id="form-inside-outer-quotes"),
        pytest.param('ООО "Ромашка"', "Ромашка", "ООО", id="ooo-straight-quotes"),
        pytest.param(
            "Общество с ограниченной ответственностью «Ромашка Плюс»",
            "Ромашка Плюс",
            "ООО",
            id="ooo-spelled-out",
        ),
        pytest.param("ИП Сидоров А.А.", "Сидоров А.А.", "ИП", id="ip"),
        pytest.param("АО «Газ»", "Газ", "АО", id="ao"),
        pytest.param("«Ромашка» ООО", "Ромашка", "ООО", id="form-after-name"),
        pytest.param("Acme LLC", "Acme", "LLC", id="llc"),
        pytest.param("Acme, Inc.", "Acme", "Inc", id="inc-with-comma"),
        pytest.param("Bosch GmbH", "Bosch", "GmbH", id="gmbh"),
        pytest.param('Ромашка "Плюс"', 'Ромашка "Плюс"', "", id="inner-quotes-kept"),
        pytest.param("ИПотека Центр", "ИПотека Центр", "", id="form-letters-inside-a-word"),
        pytest.param("Аошка", "Аошка", "", id="no-form"),
        pytest.param("", "", "", id="empty"),
    ],
)
def test_legal_form_moves_out_of_the_name(written, name, legal_form, settings):
    assert split_company(written, settings.legal_forms) == (name, legal_form)


@pytest.mark.parametrize("written", ["", " ", "\u00a0\t", "ООО «Ромашка»", "  ооо   ромашка ",
                                     "Acme, Inc.", "«Ромашка»", "Ромашка"])
def test_cached_split_is_the_computed_one_for_each_mapping(written):
    for legal_forms in ({"ООО": ["ООО"], "Inc": ["Inc", "Inc."]}, {"ИП": ["ИП"]}):
        expected = _split.__wrapped__(written, _patterns(legal_forms))
        assert expected == ("", "") or written.strip()
        assert split_company(written, legal_forms) == expected
        assert split_company(written, legal_forms) == expected


def test_a_mapping_is_not_answered_from_another_mappings_cache():
    assert split_company("ООО Ромашка", {"ООО": ["ООО"]}) == ("Ромашка", "ООО")
    assert split_company("ООО Ромашка", {"АО": ["АО"]}) == ("ООО Ромашка", "")
