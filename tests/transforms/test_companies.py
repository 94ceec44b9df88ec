import pytest

from transforms.companies import split_company


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
