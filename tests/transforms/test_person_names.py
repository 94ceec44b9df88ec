import pytest

from transforms.person_names import (
    NameLevel,
    compare_names,
    fold,
    name_block_keys,
    name_query_keys,
    parse_person_name,
)


@pytest.mark.parametrize(
    ("written", "surname", "first", "patronymic", "initials"),
    [
        pytest.param("Петров Иван Иванович", "Петров", "Иван", "Иванович", "",
                     id="surname-first-patronymic"),
        pytest.param("Иван Иванович Петров", "Петров", "Иван", "Иванович", "",
                     id="first-patronymic-surname"),
        pytest.param("Иван Петров", "Петров", "Иван", "", "", id="first-surname"),
        pytest.param("Петров Иван", "Петров", "Иван", "", "", id="surname-first"),
        pytest.param("Петров И.И.", "Петров", "", "", "ИИ", id="surname-initials"),
        pytest.param("И. Петров", "Петров", "", "", "И", id="initial-surname"),
        pytest.param("Иван Петрович", "", "Иван", "Петрович", "", id="first-patronymic"),
        pytest.param("ИВАНОВ иван", "Иванов", "Иван", "", "", id="any-case"),
        pytest.param("Ivan Petrov", "Petrov", "Ivan", "", "", id="latin"),
        pytest.param("Petrova Olga", "Petrova", "Olga", "", "", id="latin-surname-first"),
        pytest.param("Саша", "", "Саша", "", "", id="first-name-alone"),
        pytest.param("Петров", "Петров", "", "", "", id="surname-alone"),
        pytest.param("Бабич Иван", "Бабич", "Иван", "", "", id="surname-in-ich-is-no-patronymic"),
        pytest.param("Абрамович Роман Аркадьевич", "Абрамович", "Роман", "Аркадьевич", "",
                     id="surname-in-ovich"),
        pytest.param("Мамедов Ильхам Гейдар оглы", "Мамедов", "Ильхам", "Гейдар", "",
                     id="patronymic-with-oglu"),
        pytest.param("Константин Ильин", "Ильин", "Константин", "", "", id="first-name-ending-in"),
        pytest.param("Алексеев М.Ч.", "Алексеев", "", "", "МЧ",
                     id="surname-one-letter-from-a-name"),
        pytest.param("Михей Андреев", "Андреев", "Михей", "", "", id="unknown-first-name"),
    ],
)
def test_parts_in_any_order(written, surname, first, patronymic, initials, identity_rules):
    name = parse_person_name(written, identity_rules)
    assert (name.surname, name.first_name, name.patronymic, "".join(name.initials)) == (
        surname, first, patronymic, initials)


@pytest.mark.parametrize(
    ("written", "gender"),
    [
        pytest.param("Иванов Иван", "m", id="first-name"),
        pytest.param("Саша Петрова", "f", id="surname-form"),
        pytest.param("Саша Петров", "m", id="surname-form-male"),
        pytest.param("Женя Смирнова", "f", id="zhenya-woman"),
        pytest.param("Женя Смирнов", "m", id="zhenya-man"),
        pytest.param("Саша Ким", "", id="nothing-tells"),
        pytest.param("Ким Саша Сергеевна", "f", id="patronymic"),
        pytest.param("Zhuravleva Olga", "f", id="latin"),
    ],
)
def test_gender_comes_from_patronymic_first_name_and_surname(written, gender, identity_rules):
    assert parse_person_name(written, identity_rules).gender == gender


def test_script(identity_rules):
    assert parse_person_name("Иван Петров", identity_rules).script == "cyrillic"
    assert parse_person_name("Ivan Petrov", identity_rules).script == "latin"


@pytest.mark.parametrize(
    "spellings",
    [
        pytest.param(["Юрий", "Yuri", "Yury", "Iurii", "Yuriy"], id="yuri"),
        pytest.param(["Журавлёв", "Журавлев", "Zhuravlev", "Zhuravlyov"], id="zhuravlev"),
        pytest.param(["Хабибуллин", "Khabibullin", "Habibulin"], id="kh-h"),
        pytest.param(["Кузнецов", "Kuznetsov", "Kuznetzov", "Kuznetcov"], id="ts-tz-tc"),
        pytest.param(["Алексей", "Aleksey", "Alexei", "Alexey"], id="ks-x-i-y"),
        pytest.param(["Наталья", "Наталия", "Natalya", "Natalia", "Natalja"], id="natalya"),
        pytest.param(["Артём", "Артем", "Artem"], id="yo-e"),
        pytest.param(["Фёдоров", "Fedorov", "Fyodorov"], id="yo-latin"),
    ],
)
def test_transliteration_either_way_gives_one_key(spellings):
    assert len({fold(word) for word in spellings}) == 1


COMPARISONS = [
    pytest.param("Иван Петров", "Петров Иван", NameLevel.EXACT, id="order"),
    pytest.param("Петров Иван Иванович", "Иван Иванович Петров", NameLevel.EXACT,
                 id="order-with-patronymic"),
    pytest.param("Ivan Petrov", "Иван Петров", NameLevel.EXACT, id="latin-cyrillic"),
    pytest.param("Yury Ivanov", "Юрий Иванов", NameLevel.EXACT, id="yury-yuri"),
    pytest.param("ЖУРАВЛЁВА ОЛЬГА", "Журавлева Ольга", NameLevel.EXACT, id="case-and-yo"),
    pytest.param("Наталия Смирнова", "Наталья Смирнова", NameLevel.EXACT, id="spelling-variant"),
    pytest.param("Саша Петров", "Александр Петров", NameLevel.LIKELY, id="sasha-aleksandr"),
    pytest.param("Катя Смирнова", "Екатерина Смирнова", NameLevel.LIKELY, id="katya"),
    pytest.param("Женя Петрова", "Евгения Петрова", NameLevel.LIKELY, id="zhenya-evgenia"),
    pytest.param("Женя Петров", "Евгений Петров", NameLevel.LIKELY, id="zhenya-evgeny"),
    pytest.param("Лёша Иванов", "Алексей Иванов", NameLevel.LIKELY, id="lyosha"),
    pytest.param("Вова Сидоров", "Владимир Сидоров", NameLevel.LIKELY, id="vova"),
    pytest.param("Володя Сидоров", "Вова Сидоров", NameLevel.LIKELY, id="volodya-vova"),
    pytest.param("Zhenya Petrova", "Евгения Петрова", NameLevel.LIKELY, id="diminutive-in-latin"),
    pytest.param("Алекандр Петров", "Александр Петров", NameLevel.LIKELY, id="typo-first-name"),
    pytest.param("Юлия Нестерова", "Юлия Несторова", NameLevel.LIKELY, id="typo-surname"),
    pytest.param("Иван Петров", "Иван Иванович Петров", NameLevel.LIKELY,
                 id="patronymic-on-one-side"),
    pytest.param("Петров И.", "Иван Петров", NameLevel.INITIALS, id="initial"),
    pytest.param("Петров И.И.", "Иван Иванович Петров", NameLevel.INITIALS, id="two-initials"),
    pytest.param("Петрова А.", "Саша Петрова", NameLevel.INITIALS, id="initial-of-full-form"),
    pytest.param("Morozov Ya.", "Ярослав Морозов", NameLevel.INITIALS,
                 id="latin-two-letter-initial"),
    pytest.param("Иванов Ю.", "Yuri Ivanov", NameLevel.INITIALS, id="initial-yu-latin-name"),
    pytest.param("Иванов Ю.", "Иван Иванович Иванов", NameLevel.DIFFERENT_FIRST_NAME,
                 id="initial-yu-is-not-i"),
    pytest.param("Авдеева И.Д.", "Авдеева Ия Даниловна", NameLevel.INITIALS,
                 id="initial-i-of-iya"),
    pytest.param("Андреева О.Л.", "Ольга Леоновна Андреева", NameLevel.INITIALS,
                 id="surname-near-a-name-stays-a-surname"),
    pytest.param("Игорь", "Игорь Смирнов", NameLevel.FIRST_NAME_ONLY, id="first-name-only"),
    pytest.param("Катя", "Екатерина Смирнова", NameLevel.FIRST_NAME_ONLY, id="diminutive-only"),
    pytest.param("", "Игорь Смирнов", NameLevel.MISSING, id="no-name"),
    pytest.param("Игорь", "Олег", NameLevel.DIFFERENT_FIRST_NAME, id="igor-oleg"),
    pytest.param("Андрей Журавлёв", "Ольга Журавлёва", NameLevel.DIFFERENT_FIRST_NAME,
                 id="husband-and-wife"),
    pytest.param("Иван Петров", "Сергей Петров", NameLevel.DIFFERENT_FIRST_NAME,
                 id="brothers-or-colleagues"),
    pytest.param("Вячеслав Орлов", "Владислав Орлов", NameLevel.DIFFERENT_FIRST_NAME,
                 id="both-slava-but-different"),
    pytest.param("Алина Котова", "Алена Котова", NameLevel.DIFFERENT_FIRST_NAME,
                 id="two-real-names-one-letter-apart"),
    pytest.param("Евгений", "Евгения", NameLevel.DIFFERENT_GENDER, id="evgeny-evgenia"),
    pytest.param("Женя Петров", "Женя Петрова", NameLevel.DIFFERENT_GENDER,
                 id="zhenya-two-genders"),
    pytest.param("Саша Петрова", "Александр Петров", NameLevel.DIFFERENT_GENDER,
                 id="sasha-woman-aleksandr"),
    pytest.param("Иван Петрович Сидоров", "Иван Сергеевич Сидоров",
                 NameLevel.DIFFERENT_PATRONYMIC, id="patronymic"),
    pytest.param("Игорь Смирнов", "Игорь Петров", NameLevel.DIFFERENT_SURNAME,
                 id="two-igors"),
]


@pytest.mark.parametrize(("first", "second", "level"), COMPARISONS)
def test_compare_names(first, second, level, identity_rules):
    assert compare_names(first, second, identity_rules).level == level
    assert compare_names(second, first, identity_rules).level == level


def test_incompatible_levels_say_so():
    assert not NameLevel.DIFFERENT_SURNAME.compatible
    assert NameLevel.MISSING.compatible
    assert NameLevel.DIFFERENT_GENDER < NameLevel.MISSING < NameLevel.EXACT


@pytest.mark.parametrize(
    ("first", "second", "reason"),
    [
        pytest.param("Игорь", "Олег", "names differ: Игорь / Олег", id="first-names"),
        pytest.param("Евгений", "Евгения", "a man and a woman: Евгений / Евгения", id="gender"),
        pytest.param("Иван Петров", "Петров Иван", "same name", id="same"),
    ],
)
def test_reasons_are_plain_words(first, second, reason, identity_rules):
    assert compare_names(first, second, identity_rules).reason == reason


def _meet(first: str, second: str, rules) -> bool:
    """Whichever comes first, the later name looks up a key the earlier is filed under."""
    a, b = parse_person_name(first, rules), parse_person_name(second, rules)
    return bool(name_query_keys(a) & name_block_keys(b)) and bool(
        name_query_keys(b) & name_block_keys(a))


@pytest.mark.parametrize(
    ("first", "second"),
    [
        pytest.param("Иван Петров", "Petrov Ivan", id="translit-and-order"),
        pytest.param("Петров И.И.", "Иван Петров", id="initials"),
        pytest.param("Саша Петрова", "Александра Петрова", id="diminutive"),
        pytest.param("Петрова А.", "Саша Петрова", id="initial-of-full-form"),
        pytest.param("Юлия Нестерова", "Юлия Несторова", id="vowel-typo-in-surname"),
        pytest.param("Журавлёва Ольга", "Olga Zhuravleva", id="yo-translit"),
        pytest.param("Петров Иван Сергеевич", "Иван Петров", id="with-and-without-patronymic"),
        pytest.param("Петров Иавн", "Иван Петров", id="typo-in-the-first-name"),
    ],
)
def test_two_spellings_of_one_person_share_a_block_key(first, second, identity_rules):
    assert _meet(first, second, identity_rules)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        pytest.param("Андрей Журавлёв", "Ольга Журавлёва", id="husband-and-wife"),
        pytest.param("Иван Петров", "Иван Сидоров", id="namesakes-of-first-name"),
        pytest.param("Игорь Смирнов", "Олег Смирнов", id="same-surname-other-initial"),
        # the same initial is not enough between two full first names
        pytest.param("Иван Петров", "Игорь Петров", id="same-surname-same-initial"),
    ],
)
def test_different_people_share_no_block_key(first, second, identity_rules):
    assert not _meet(first, second, identity_rules)


def test_a_first_name_alone_gives_no_block_key(identity_rules):
    name = parse_person_name("Игорь", identity_rules)
    assert name_block_keys(name) == set() == name_query_keys(name)


def test_the_patronymic_gives_a_key_of_its_own(identity_rules):
    """When the name without it is too common to block on, the full name still is."""
    with_it = parse_person_name("Петров Иван Сергеевич", identity_rules)
    without = parse_person_name("Иван Петров", identity_rules)
    own = (name_block_keys(with_it) & name_query_keys(with_it)) - name_block_keys(without)
    assert own and all(key.count("|") == 2 for key in own)


def test_an_unknown_name_in_either_order_is_one_person(identity_rules):
    assert compare_names("Ким Ен", "Ен Ким", identity_rules).level == NameLevel.EXACT
    assert _meet("Ким Ен", "Ен Ким", identity_rules)


def test_a_users_diminutive_joins_the_list(tmp_path):
    from leadhub.settings import load_settings

    config = tmp_path / "leadhub.yaml"
    config.write_text("identity:\n  diminutives: {m: {Александр: [Алик]}}\n", encoding="utf-8")
    rules = load_settings(config).identity_rules()
    assert compare_names("Алик Петров", "Александр Петров", rules).level == NameLevel.LIKELY
