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


@pytest.mark.parametrize(
    ("pairs", "name"),
    [
        pytest.param([("Фамилия", "Петров"), ("Имя", "Иван"), ("Отчество", "Сергеевич")],
                     "Петров Иван Сергеевич", id="in-the-order-they-came"),
        pytest.param([("Имя", "Иван"), ("Телефон", "1"), ("Фамилия", "Петров")], "Иван Петров",
                     id="parts-apart"),
        pytest.param([("Имя", "Иван"), ("Фамилия", "")], "Иван", id="empty-surname"),
        pytest.param([("Фамилия", "Петров")], "Петров", id="surname-alone"),
        pytest.param([("ФИО", "Петров Иван"), ("Фамилия", "петров")], "Петров Иван",
                     id="part-already-in-the-full-name"),
    ],
)
def test_name_parts_are_joined(settings, pairs, name):
    known, _ = settings.field_map().map_pairs(pairs)
    assert known["name"] == name
    assert not {"first_name", "middle_name", "last_name"} & known.keys()


@pytest.mark.parametrize("label", [" E_Mail: ", "Ёлка", "ЁЛКА", "q3_name[first]", "«Имя»",
                                   "Phone—Number?", "", "  ", "a\\b/c"])
def test_cached_label_key_is_the_computed_one(label):
    assert label_key(label) == label_key.__wrapped__(label)
    assert label_key(label) == label_key(label)


def test_each_field_map_answers_from_its_own_aliases():
    first, second = FieldMap({"phone": ["Контакт"]}), FieldMap({"email": ["Контакт"]})
    assert [first.field_for("контакт:"), second.field_for("контакт:")] == ["phone", "email"]
