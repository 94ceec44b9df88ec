import pytest

from transforms.fields import FieldMap, label_key


@pytest.mark.parametrize(
    ("label", "field"),
    [
        pytest.param("E-mail:", "email", id="email-dash-colon"),
        pytest.param("Ваш телефон", "phone", id="your-phone-ru"),
        pytest.param("ФИО", "name", id="fio"),
        pytest.param("Phone Number", "phone", id="phone-number-en"),
        pytest.param("utm_source", "utm_source", id="utm"),
        pytest.param("Комментарий", "message", id="comment-ru"),
        pytest.param("Form Name", "form", id="tilda-form-name"),
        pytest.param("Населённый пункт", "city", id="yo-spelling"),
    ],
)
def test_default_aliases(label, field, settings):
    assert settings.field_map().field_for(label) == field


def test_label_key_ignores_case_and_punctuation():
    assert label_key(" E_Mail: ") == label_key("e-mail") == "email"


def test_unknown_labels_are_kept_aside_and_several_phones_joined():
    fields = FieldMap({"phone": ["телефон"], "name": ["имя"]})
    known, unknown = fields.map_pairs(
        [("Имя", "Анна"), ("Телефон", "8 912"), ("phone", "8 916"), ("Размер", "XL"), ("Имя", "")]
    )
    assert known == {"name": "Анна", "phone": "8 912, 8 916"}
    assert unknown == {"Размер": "XL"}


def test_csv_column_override_from_config(settings):
    custom = settings.model_copy(update={"csv": settings.csv.model_copy(
        update={"columns": {"phone": "Моб. тел. клиента"}})})
    assert custom.field_map().field_for("Моб. тел. клиента") == "phone"
