"""Realistic Russian lead data with the truth kept: who wrote each lead.

A synthetic population (Faker `ru_RU` surnames, rare first names, company
names and user names; common first names weighted the way Russians are named)
and the leads they send a small business, written the way mail, web forms and
CSV exports write them. The generator keeps the person behind every lead and
what each lead shares with others, so a benchmark can tell a right merge from
a wrong one and say which hard case a matcher got wrong. Seeded and
deterministic for a given seed and Faker version.

`generate(people, leads, seed)` is the interface; `negative_keys` and
`positive_kind` say what the hard cases are (for `cluster_metrics.py`).

The shares below are what a small business's inbox and CRM exports look like,
not what any matcher finds easy. Why each one, in brackets.

## People (shares of people)

- First names: 95% from a table of the common modern names weighted after
  Russian name statistics (Александр ~8% of men, Елена ~6% of women), 5% rare
  ones from Faker; patronymics from the fathers' names. Surnames: 40% from
  Faker's 250 most common, Zipf-weighted (Смирнов, Иванов, Кузнецов first),
  60% from a tail of ~670 formed the way real ones were (Никитин, Аверкиев,
  Никитенко) and invariant ones (Шевченко, Петросян, Черных). [Namesakes and
  two different Игорь then occur as often as chance makes them, not by
  injection: 6.7% of 3,000 people share first name and surname with another,
  close to what Russian surname frequencies give.]
- 40% write on behalf of a company, 60% privately. A company has 1 (62%),
  2 (18%), 3 (9%), 4 (5%), 5 (3%), 8 (2%) or 12 (1%) people who write.
  [LeadHub's users sell to both; most client firms have one contact person,
  a few have a purchasing department.]
- Office lines: 70% of companies with several writers and 30% of one-person
  ones have a city switchboard, each of its people an extension. Such a person
  gives the mobile in 50% of leads, the line with the extension in 35%
  (`8 (342) 252-16-74 доб. 280`, `ext. 12`), the bare switchboard in 15%.
  [A multi-line city number with `доб.` is what Russian firms print in
  signatures and on their sites.]
- Role mailboxes (`info@`, `sales@`, `zakaz@`, `office@`, `mail@`, `snab@`):
  60% of companies with several writers, 30% of one-person ones; 60% of their
  people write from it, in half of their emailed leads. [The address on the
  site is the one people answer from.]
- Addresses: work ones for 75% of company people (`i.petrov@romashka.ru`);
  a free-mail one for 35% of them and 75% of private people (Mail.ru group 37%,
  Yandex 28%, Gmail 24%, Rambler 5%, others 6%). [Russian mailbox market.]
- Couples: 8% of private people are husband and wife (one surname in its two
  genders); 70% of couples share a family mailbox (`zhuravlevy@mail.ru`), used
  in 60% of the emailed leads of a member who also has an own one. [Common
  for household services: renovation, furniture, travel.]
- 5% change their mobile once; later leads give the new one. [Two years of
  leads; a new SIM is how Russians change numbers.]

## Leads (shares of leads)

- Every person writes once (when leads >= people); the rest go to repeat
  customers with Pareto weights (alpha 1.8), at most 15 a person: at the
  defaults 42% of people write more than once. Times spread over two years;
  leads come in time order. [Pairwise metrics weigh a person with n leads by
  n^2: a heavier tail would let a handful of people decide the score.]
- Channels: web form 50% (a phone 95%, an email 45%), email 35% (the sender's
  address always, a signature phone 55%), CSV import 15% (phone 85%, email
  55%); so some leads have only a phone, some only an email. 15% of emailed
  company leads that give the office line give the mobile after it. 0.5% of
  phones lose a digit (invalid). [Callback forms ask a name and a phone.]
- Phones as people type them: `8 912 345-67-89`, `+7(912)3456789`,
  `79123456789`, `8-912-345-67-89`, `+7 (912) 345-67-89` and more.
- Emails: 85% lower case, the rest Capitalised, UPPER or `Nesterova.Y@gmail.Com`;
  a Gmail address with other dots 25% and a `+tag` 8% (Gmail ignores both);
  a Yandex one on another Yandex domain 25% (ya.ru, yandex.ru, yandex.com,
  yandex.kz, yandex.by, narod.ru reach one mailbox); an obvious domain typo
  2% (`yandex.ry`, `gmial.com`).
- Names: a person has a habitual way (used 60% of the time) among Имя 22%,
  Имя Фамилия 30%, Фамилия Имя 10%, Фамилия Имя Отчество 12%, Имя Отчество
  5%, `Петров И.И.` 5%, `И. Петров` 2%, Latin `Ivan Petrov` 5% (passport and
  popular transliteration), a Latin first name 1%, none 8%. A diminutive
  (Саша, Катя, Женя for Евгений and Евгения, Слава for four names) takes the
  place of the first name in 25% of first-name-only writings and 10% of the
  others; ё is written е 60%; lower case 10%, upper case 3%; a typo in one
  word 3%. [Forms ask "как к вам обращаться"; business mail signs in full or
  with initials; Gmail display names are Latin.]
- Companies are named in 65% of company leads: `ООО «Ромашка»`, `ООО "Ромашка"`,
  `«ООО "Ромашка"»`, `Ромашка`, `ООО Ромашка`, the legal form in words,
  `ИП Петров И. И.` for sole traders (25% of one-person companies); 3% with a
  typo.
"""

from __future__ import annotations

import bisect
import random
import re
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import accumulate

from faker import Faker
from faker.providers.person.ru_RU import Provider as RussianNames

from transforms.records import Channel, ParsedLead

DEFAULT_PEOPLE = 3_000
DEFAULT_LEADS = 5_000
DEFAULT_SEED = 20240612

START_TIME = datetime(2023, 1, 9, 8, 0, tzinfo=UTC)
SPAN_SECONDS = 730 * 24 * 3600
MAX_LEADS_PER_PERSON = 15
REPEAT_PARETO_ALPHA = 1.8

B2B_SHARE = 0.40
COMPANY_SIZES = {1: 62, 2: 18, 3: 9, 4: 5, 5: 3, 8: 2, 12: 1}
OFFICE_LINE_SHARE = {"several": 0.70, "one": 0.30}
ROLE_MAILBOX_SHARE = {"several": 0.60, "one": 0.30}
ROLE_MAILBOX_USER_SHARE = 0.60
ROLE_MAILBOX_USE = 0.50
WORK_EMAIL_SHARE = 0.75
B2B_PERSONAL_EMAIL_SHARE = 0.35
PRIVATE_EMAIL_SHARE = 0.75
COUPLE_SHARE = 0.08
FAMILY_MAILBOX_SHARE = 0.70
FAMILY_MAILBOX_USE = 0.60
PHONE_CHANGE_SHARE = 0.05
SOLE_TRADER_SHARE = 0.25  # of one-person companies

OFFICE_PHONE_USE = {"mobile": 50, "extension": 35, "switchboard": 15}
CHANNELS: dict[Channel, float] = {"form": 50, "email": 35, "import": 15}
# (phone, email) given, per channel
CARRIES = {"form": (0.95, 0.45), "email": (0.55, 1.0), "import": (0.85, 0.55)}
COMPANY_NAMED_SHARE = 0.65
COMPANY_TYPO_SHARE = 0.03
TWO_PHONES_SHARE = 0.15
INVALID_PHONE_SHARE = 0.005

NAME_HABIT_SHARE = 0.60
NAME_WAYS = {
    "first": 22,
    "first last": 30,
    "last first": 10,
    "last first middle": 12,
    "first middle": 5,
    "last initials": 5,
    "initial last": 2,
    "latin first last": 5,
    "latin first": 1,
    "none": 8,
}
DIMINUTIVE_SHARE = {"alone": 0.25, "with others": 0.10}
YO_AS_YE_SHARE = 0.60
NAME_LOWER_SHARE = 0.10
NAME_UPPER_SHARE = 0.03
NAME_TYPO_SHARE = 0.03

EMAIL_CASE = {"lower": 85, "capitalised": 8, "upper": 4, "mixed": 3}
GMAIL_DOTS_SHARE = 0.25
GMAIL_TAG_SHARE = 0.08
YANDEX_ALIAS_SHARE = 0.25
DOMAIN_TYPO_SHARE = 0.02

# name, weight, diminutives, patronymic (his children's: son, daughter)
MALE_NAMES: tuple[tuple[str, float, tuple[str, ...], str, str], ...] = (
    ("Александр", 10, ("Саша",), "Александрович", "Александровна"),
    ("Сергей", 8, ("Серёжа",), "Сергеевич", "Сергеевна"),
    ("Дмитрий", 7, ("Дима",), "Дмитриевич", "Дмитриевна"),
    ("Андрей", 7, (), "Андреевич", "Андреевна"),
    ("Алексей", 7, ("Лёша",), "Алексеевич", "Алексеевна"),
    ("Максим", 4, ("Макс",), "Максимович", "Максимовна"),
    ("Евгений", 4, ("Женя",), "Евгеньевич", "Евгеньевна"),
    ("Иван", 4, ("Ваня",), "Иванович", "Ивановна"),
    ("Михаил", 4, ("Миша",), "Михайлович", "Михайловна"),
    ("Владимир", 4, ("Вова", "Володя"), "Владимирович", "Владимировна"),
    ("Николай", 3, ("Коля",), "Николаевич", "Николаевна"),
    ("Артём", 3, ("Тёма",), "Артёмович", "Артёмовна"),
    ("Денис", 3, (), "Денисович", "Денисовна"),
    ("Игорь", 3, (), "Игоревич", "Игоревна"),
    ("Павел", 3, ("Паша",), "Павлович", "Павловна"),
    ("Роман", 3, ("Рома",), "Романович", "Романовна"),
    ("Олег", 2.5, (), "Олегович", "Олеговна"),
    ("Антон", 2.5, (), "Антонович", "Антоновна"),
    ("Никита", 2, (), "Никитич", "Никитична"),
    ("Илья", 2, (), "Ильич", "Ильинична"),
    ("Кирилл", 2, (), "Кириллович", "Кирилловна"),
    ("Виктор", 2, ("Витя",), "Викторович", "Викторовна"),
    ("Юрий", 2, ("Юра",), "Юрьевич", "Юрьевна"),
    ("Вадим", 1.5, (), "Вадимович", "Вадимовна"),
    ("Константин", 1.5, ("Костя",), "Константинович", "Константиновна"),
    ("Владислав", 1.5, ("Влад", "Слава"), "Владиславович", "Владиславовна"),
    ("Вячеслав", 1, ("Слава",), "Вячеславович", "Вячеславовна"),
    ("Станислав", 1, ("Стас",), "Станиславович", "Станиславовна"),
    ("Егор", 1.5, (), "Егорович", "Егоровна"),
    ("Руслан", 1.5, (), "Русланович", "Руслановна"),
    ("Даниил", 1.2, ("Даня",), "Даниилович", "Данииловна"),
    ("Георгий", 1, ("Гоша",), "Георгиевич", "Георгиевна"),
    ("Василий", 1, ("Вася",), "Васильевич", "Васильевна"),
    ("Пётр", 1, ("Петя",), "Петрович", "Петровна"),
    ("Валерий", 1, ("Валера",), "Валерьевич", "Валерьевна"),
    ("Анатолий", 1, ("Толя",), "Анатольевич", "Анатольевна"),
    ("Тимур", 1, (), "Тимурович", "Тимуровна"),
    ("Фёдор", 0.7, ("Федя",), "Фёдорович", "Фёдоровна"),
    ("Леонид", 0.7, ("Лёня",), "Леонидович", "Леонидовна"),
    ("Борис", 0.7, ("Боря",), "Борисович", "Борисовна"),
    ("Григорий", 0.7, ("Гриша",), "Григорьевич", "Григорьевна"),
    ("Геннадий", 0.7, ("Гена",), "Геннадьевич", "Геннадьевна"),
    ("Ярослав", 0.7, ("Слава",), "Ярославович", "Ярославовна"),
    ("Валентин", 0.5, ("Валя",), "Валентинович", "Валентиновна"),
    ("Матвей", 0.8, (), "Матвеевич", "Матвеевна"),
    ("Лев", 0.5, ("Лёва",), "Львович", "Львовна"),
)
FEMALE_NAMES: tuple[tuple[str, float, tuple[str, ...]], ...] = (
    ("Елена", 8, ("Лена",)),
    ("Ольга", 7, ("Оля",)),
    ("Наталья", 6, ("Наташа",)),
    ("Татьяна", 6, ("Таня",)),
    ("Анна", 6, ("Аня",)),
    ("Екатерина", 6, ("Катя",)),
    ("Ирина", 5, ("Ира",)),
    ("Мария", 5, ("Маша",)),
    ("Юлия", 5, ("Юля",)),
    ("Анастасия", 5, ("Настя",)),
    ("Светлана", 4, ("Света",)),
    ("Марина", 3, ()),
    ("Дарья", 3, ("Даша",)),
    ("Ксения", 2.5, ("Ксюша",)),
    ("Виктория", 2.5, ("Вика",)),
    ("Евгения", 2, ("Женя",)),
    ("Александра", 2, ("Саша",)),
    ("Алёна", 2, ()),
    ("Людмила", 2, ("Люда",)),
    ("Надежда", 2, ("Надя",)),
    ("Галина", 1.5, ("Галя",)),
    ("Оксана", 1.5, ()),
    ("Кристина", 1.5, ()),
    ("Полина", 1.5, ("Поля",)),
    ("Алина", 1.5, ()),
    ("Валентина", 1, ("Валя",)),
    ("Любовь", 1, ("Люба",)),
    ("Вера", 1, ()),
    ("Елизавета", 1, ("Лиза",)),
    ("Маргарита", 1, ("Рита",)),
    ("Яна", 1, ()),
    ("Вероника", 1, ("Ника",)),
    ("Лариса", 1, ()),
    ("Валерия", 1, ("Лера",)),
    ("Олеся", 0.8, ("Леся",)),
    ("Софья", 0.8, ("Соня",)),
    ("Диана", 0.8, ()),
    ("Нина", 0.7, ()),
    ("Ярослава", 0.4, ("Слава",)),
)
RARE_FIRST_NAME_SHARE = 0.05
COMMON_SURNAME_SHARE = 0.40
INVARIANT_SURNAMES = (
    "Шевченко", "Бондаренко", "Коваленко", "Кравченко", "Ткаченко", "Марченко",
    "Литвиненко", "Руденко", "Савченко", "Мельниченко", "Ковальчук", "Полищук",
    "Мельник", "Кравец", "Петросян", "Саркисян", "Акопян", "Григорян", "Арутюнян",
    "Геворкян", "Оганесян", "Гогуадзе", "Беридзе", "Капанадзе", "Черных", "Белых",
    "Седых", "Долгих", "Русских", "Кудрявых", "Ким", "Пак", "Цой", "Шульц", "Миллер",
)  # fmt: skip

PERSONAL_DOMAINS = {
    "mail.ru": 26, "bk.ru": 4, "list.ru": 4, "inbox.ru": 3, "yandex.ru": 22, "ya.ru": 6,
    "gmail.com": 24, "rambler.ru": 5, "icloud.com": 3, "outlook.com": 2, "hotmail.com": 1,
}  # fmt: skip
FAMILY_DOMAINS = {"mail.ru": 50, "yandex.ru": 30, "gmail.com": 20}
YANDEX_DOMAINS = ("yandex.ru", "ya.ru", "yandex.com", "yandex.kz", "yandex.by", "narod.ru")
DOMAIN_TYPOS = {
    "yandex.ru": ("yandex.ry", "yandx.ru", "yandex.ri"),
    "ya.ru": ("ya.ry",),
    "gmail.com": ("gmial.com", "gmail.co", "gmai.com", "gmaill.com"),
    "mail.ru": ("mail.ry", "mai.ru", "mial.ru"),
    "bk.ru": ("bk.ry",),
    "list.ru": ("list.ry", "lits.ru"),
    "inbox.ru": ("inbox.ry", "inbx.ru"),
    "rambler.ru": ("rambler.ry", "ramber.ru"),
}
ROLE_LOGINS = {"info": 40, "sales": 20, "zakaz": 15, "office": 15, "mail": 5, "snab": 5}
GMAIL_TAGS = ("shop", "site", "leads", "work", "2024", "zakaz")
COMPANY_DOMAIN_TLDS = {"ru": 80, "com": 10, "su": 5, "net": 5}
LEGAL_FORMS = {"ООО": 82, "АО": 8, "ЗАО": 5, "ПАО": 1, "": 4}
LEGAL_FORM_WORDS = {
    "ООО": "Общество с ограниченной ответственностью",
    "АО": "Акционерное общество",
    "ЗАО": "Закрытое акционерное общество",
    "ПАО": "Публичное акционерное общество",
    "ИП": "Индивидуальный предприниматель",
}
BRAND_PARTS = (
    ("Строй", "Техно", "Торг", "Альфа", "Профи", "Мастер", "Пром", "Эко", "Сибирь", "Урал",
     "Волга", "Север", "Нева", "Гарант", "Вектор", "Лидер", "Мега", "Интер", "Авто", "Агро",
     "Экспо", "Дом", "Мебель", "Пласт", "Металл", "Энерго", "Электро", "Комплект", "Стандарт",
     "Ромашка", "Радуга", "Кедр", "Берёза", "Сокол", "Орион", "Гефест", "Атлант"),
    ("", "Сервис", "Монтаж", "Снаб", "Трейд", "Групп", "Плюс", "Логистик", "Ресурс", "Инвест",
     "Проект", "Систем", "Маркет", "Центр", "Холдинг", "Технологии", "Оптторг"),
)  # fmt: skip
COMPANY_WAYS = {
    "{form} «{name}»": 30,
    '{form} "{name}"': 15,
    '«{form} "{name}"»': 5,
    "{name}": 25,
    "{form} {name}": 10,
    '"{name}"': 5,
    "{name}, {form}": 3,
    "{words} «{name}»": 5,
    "{lower}": 2,
}
MOBILE_WAYS = {
    "8 {a} {b}-{c}-{d}": 20,
    "+7 ({a}) {b}-{c}-{d}": 15,
    "+7 {a} {b}-{c}-{d}": 15,
    "8{a}{b}{c}{d}": 12,
    "+7{a}{b}{c}{d}": 10,
    "+7({a}){b}{c}{d}": 8,
    "7{a}{b}{c}{d}": 8,
    "8-{a}-{b}-{c}-{d}": 8,
    "8 ({a}) {b} {c} {d}": 4,
}
EXTENSION_WAYS = {
    "8 ({a}) {b}-{c}-{d} доб. {x}": 35,
    "+7 ({a}) {b}-{c}-{d}, доб. {x}": 25,
    "8({a}){b}-{c}-{d} доб.{x}": 15,
    "+7 ({a}) {b}-{c}-{d} (доб. {x})": 15,
    "+7 {a} {b}{c}{d} ext. {x}": 10,
}
SWITCHBOARD_WAYS = {"8 ({a}) {b}-{c}-{d}": 50, "+7 ({a}) {b}-{c}-{d}": 35, "8{a}{b}{c}{d}": 15}
CITY_CODES = {
    "495": 25, "499": 5, "812": 15, "343": 6, "342": 4, "383": 5, "846": 4, "861": 4,
    "863": 4, "831": 4, "843": 4, "351": 3, "347": 3, "391": 3, "473": 3,
}  # fmt: skip

PASSPORT_LATIN = dict(zip(
    "абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
    ["a", "b", "v", "g", "d", "e", "e", "zh", "z", "i", "i", "k", "l", "m", "n", "o", "p", "r",
     "s", "t", "u", "f", "kh", "ts", "ch", "sh", "shch", "ie", "y", "", "e", "iu", "ia"],
    strict=True,
))  # fmt: skip
POPULAR_LATIN = PASSPORT_LATIN | {"й": "y", "ъ": "", "ю": "yu", "я": "ya", "х": "h"}
POPULAR_FIRST_NAMES = {
    "Александр": "Alexander", "Алексей": "Alexey", "Юлия": "Julia", "Мария": "Maria",
    "Наталья": "Natalia", "Дмитрий": "Dmitry", "Сергей": "Sergey", "Ксения": "Ksenia",
}  # fmt: skip


class Weighted:
    """A fixed weighted choice, drawn with one random number."""

    def __init__(self, weights: Mapping[Hashable, float]) -> None:
        self.items = list(weights)
        self.cumulative = list(accumulate(weights.values()))

    def pick(self, rng: random.Random):
        return self.items[bisect.bisect(self.cumulative, rng.random() * self.cumulative[-1])]


# --- the world: people, companies, phone lines, mailboxes -----------------------------


@dataclass(slots=True)
class Line:
    """One phone line: a mobile, or an office switchboard shared by its people."""

    digits: str  # 10-digit national number
    office: bool


@dataclass(slots=True)
class Mailbox:
    """One mailbox, however people spell its address."""

    login: str
    domain: str
    kind: str  # personal | work | family | role


@dataclass(slots=True)
class Company:
    company_id: int
    name: str
    legal_form: str
    domain: str
    line: int | None = None
    role_mailbox: int | None = None


@dataclass(slots=True)
class Person:
    person_id: int
    male: bool
    first: str
    middle: str
    last: str
    diminutives: tuple[str, ...]
    mobile: int
    new_mobile: int | None = None
    company: int | None = None
    extension: str = ""
    personal_mailbox: int | None = None
    work_mailbox: int | None = None
    family_mailbox: int | None = None
    role_user: bool = False
    name_habit: str = ""
    # What the person's leads actually used, filled while writing them.
    used_office_line: int | None = None
    used_family_mailbox: int | None = None
    used_role_mailbox: int | None = None


@dataclass(slots=True)
class LeadFacts:
    """What the generator knows about one lead beyond its text."""

    line: int | None  # the line of the first phone, when it is valid
    mobile: bool  # that line is one of the person's own mobiles
    mailbox: int | None
    email_written: str  # lower-cased and trimmed, as given
    company: int | None  # the company, when the lead names it
    has_phone: bool
    has_email: bool


@dataclass
class LeadSet:
    records: list[ParsedLead]
    person_ids: list[int]
    facts: list[LeadFacts]
    persons: list[Person]
    events: Counter[str] = field(default_factory=Counter)

    @property
    def people_with_leads(self) -> int:
        return len(set(self.person_ids))


@dataclass
class World:
    persons: list[Person] = field(default_factory=list)
    companies: list[Company] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)
    mailboxes: list[Mailbox] = field(default_factory=list)
    used_digits: set[str] = field(default_factory=set)
    used_addresses: set[tuple[str, str]] = field(default_factory=set)
    used_domains: set[str] = field(default_factory=set)

    def new_line(self, digits: str, office: bool) -> int:
        self.lines.append(Line(digits, office))
        return len(self.lines) - 1

    def new_mailbox(self, login: str, domain: str, kind: str, rng: random.Random) -> int:
        canonical = canonical_login(login, domain)
        while (canonical, mailbox_family(domain)) in self.used_addresses:
            login = f"{login}{rng.randint(1, 99)}"
            canonical = canonical_login(login, domain)
        self.used_addresses.add((canonical, mailbox_family(domain)))
        self.mailboxes.append(Mailbox(login, domain, kind))
        return len(self.mailboxes) - 1


@dataclass(frozen=True)
class Pools:
    """Faker output made once: a million Faker calls would take minutes."""

    surnames: Weighted  # male forms; the female form is derived
    female_surnames: dict[str, str]
    male_names: Weighted
    female_names: Weighted
    rare_male: list[str]
    rare_female: list[str]
    patronymics: Weighted  # (son's, daughter's)
    diminutives: dict[str, tuple[str, ...]]
    company_names: list[str]
    logins: list[str]


def build_pools(seed: int) -> Pools:
    fake = Faker("ru_RU")
    fake.seed_instance(seed)
    common = list(RussianNames.last_names_male)
    tail = [name for name in dict.fromkeys(surname_tail()) if name not in common]
    weights = {name: 1 / (rank + 20) for rank, name in enumerate(common)}
    tail_weight = sum(weights.values()) * (1 / COMMON_SURNAME_SHARE - 1) / len(tail)
    weights |= dict.fromkeys(tail, tail_weight)
    female = dict(zip(RussianNames.last_names_male, RussianNames.last_names_female, strict=True))
    female |= {name: feminine_surname(name) for name in tail}
    diminutives = {name: dims for name, _, dims, *_ in MALE_NAMES + FEMALE_NAMES}
    return Pools(
        surnames=Weighted(weights),
        female_surnames=female,
        male_names=Weighted({name: weight for name, weight, *_ in MALE_NAMES}),
        female_names=Weighted({name: weight for name, weight, _ in FEMALE_NAMES}),
        rare_male=rare_names(RussianNames.first_names_male, diminutives),
        rare_female=rare_names(RussianNames.first_names_female, diminutives),
        patronymics=Weighted({(son, daughter): w for _, w, _, son, daughter in MALE_NAMES}),
        diminutives=diminutives,
        company_names=[company_name(fake) for _ in range(5_000)],
        logins=[fake.user_name() for _ in range(20_000)],
    )


def rare_names(names: Sequence[str], common: Mapping[str, object]) -> list[str]:
    known = {name.replace("ё", "е") for name in common}
    return [name for name in names if name.replace("ё", "е") not in known]


def surname_tail() -> list[str]:
    """Rarer surnames, most grown from a forefather's or mother's name the way
    real ones did: Никита -> Никитин, Никитенко; Аверкий -> Аверкиев; Анна -> Аннин."""
    male = [n for n in RussianNames.first_names_male if not n.endswith(("ов", "ев"))]
    female = [n for n in RussianNames.first_names_female if n.endswith(("а", "я"))]
    return (
        [surname_from_first_name(name) for name in male + female]
        + [name.rstrip("аяйь") + "енко" for name in male]
        + list(INVARIANT_SURNAMES)
    )


def surname_from_first_name(name: str) -> str:
    if name.endswith(("а", "я")):
        return name[:-1] + "ин"
    if name.endswith(("й", "ь")):
        return name[:-1] + "ев"
    return name + "ов"


def feminine_surname(surname: str) -> str:
    if surname.endswith(("ов", "ев", "ёв", "ин", "ын")):
        return surname + "а"
    if surname.endswith(("ский", "цкий")):
        return surname[:-2] + "ая"
    if surname.endswith(("ой", "ый")):
        return surname[:-2] + "ая"
    return surname


def company_name(fake: Faker) -> str:
    """`Строймонтаж`, `Урал-Снаб`, `Исаева и партнеры`: a name without a legal form."""
    roll = fake.random.random()
    if roll < 0.4:
        match = re.fullmatch(r"\S+ «(.+)»", fake.company())
        if match:
            return match.group(1)
    first, second = fake.random.choice(BRAND_PARTS[0]), fake.random.choice(BRAND_PARTS[1])
    if not second:
        return first
    if roll < 0.7:
        return first + second.lower()
    return f"{first}-{second}" if roll < 0.85 else f"{first} {second}"


def latin(text: str, table: Mapping[str, str]) -> str:
    out = []
    for char in text:
        low = char.lower()
        mapped = table.get(low, char)
        out.append(mapped.capitalize() if char != low else mapped)
    return "".join(out)


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", latin(text.lower(), PASSPORT_LATIN)).strip("-")


def mailbox_family(domain: str) -> str:
    """The provider whose mailbox an address reaches: all Yandex domains are one."""
    return "yandex" if domain in YANDEX_DOMAINS else domain


def canonical_login(login: str, domain: str) -> str:
    if domain == "gmail.com":
        return login.split("+", 1)[0].replace(".", "")
    return login


def new_person(person_id: int, male: bool, pools: Pools, world: World, rng: random.Random):
    if male:
        first = pools.male_names.pick(rng)
        if rng.random() < RARE_FIRST_NAME_SHARE:
            first = rng.choice(pools.rare_male)
    else:
        first = pools.female_names.pick(rng)
        if rng.random() < RARE_FIRST_NAME_SHARE:
            first = rng.choice(pools.rare_female)
    son, daughter = pools.patronymics.pick(rng)
    surname = pools.surnames.pick(rng)
    person = Person(
        person_id=person_id,
        male=male,
        first=first,
        middle=son if male else daughter,
        last=surname if male else pools.female_surnames[surname],
        diminutives=pools.diminutives.get(first, ()),
        mobile=world.new_line(unique_mobile(world, rng), office=False),
        name_habit=NAME_WAY_CHOICE.pick(rng),
    )
    if rng.random() < PHONE_CHANGE_SHARE:
        person.new_mobile = world.new_line(unique_mobile(world, rng), office=False)
    world.persons.append(person)
    return person


def unique_mobile(world: World, rng: random.Random) -> str:
    while True:
        digits = f"9{rng.randrange(10**9):09d}"
        if digits not in world.used_digits:
            world.used_digits.add(digits)
            return digits


def unique_city_number(world: World, rng: random.Random) -> str:
    while True:
        digits = CITY_CODE_CHOICE.pick(rng) + str(rng.randint(2, 9)) + f"{rng.randrange(10**6):06d}"
        if digits not in world.used_digits:
            world.used_digits.add(digits)
            return digits


def personal_login(person: Person, pools: Pools, rng: random.Random) -> str:
    first = latin(person.first.lower(), PASSPORT_LATIN)
    last = latin(person.last.lower(), PASSPORT_LATIN)
    roll = rng.random()
    if roll < 0.3:
        return rng.choice(pools.logins)
    if roll < 0.45:
        return f"{first}.{last}"
    if roll < 0.55:
        return f"{last}.{first}"
    if roll < 0.65:
        return f"{first[0]}{last}"
    if roll < 0.8:
        return f"{last}{rng.randint(1965, 2005)}"
    if roll < 0.9:
        return f"{first}_{last}{rng.randint(1, 99)}"
    return f"{last}.{first[0]}"


def work_login(person: Person, rng: random.Random) -> str:
    first = latin(person.first.lower(), PASSPORT_LATIN)
    last = latin(person.last.lower(), PASSPORT_LATIN)
    return rng.choice((f"{first[0]}.{last}", last, f"{first}.{last}", first, f"{last}.{first[0]}"))


def private_email(person: Person, pools: Pools, world: World, rng: random.Random) -> int:
    domain = PERSONAL_DOMAIN_CHOICE.pick(rng)
    return world.new_mailbox(personal_login(person, pools, rng), domain, "personal", rng)


def add_company(
    size: int, first_id: int, pools: Pools, world: World, rng: random.Random
) -> list[Person]:
    people = [new_person(first_id + i, rng.random() < 0.5, pools, world, rng) for i in range(size)]
    sole_trader = size == 1 and rng.random() < SOLE_TRADER_SHARE
    if sole_trader:
        owner = people[0]
        name, form = f"{owner.last} {owner.first[0]}. {owner.middle[0]}.", "ИП"
    else:
        name, form = rng.choice(pools.company_names), LEGAL_FORM_CHOICE.pick(rng)
    company = Company(len(world.companies), name, form, unique_domain(name, world, rng))
    world.companies.append(company)
    scale = "several" if size > 1 else "one"
    if rng.random() < OFFICE_LINE_SHARE[scale]:
        company.line = world.new_line(unique_city_number(world, rng), office=True)
    if rng.random() < ROLE_MAILBOX_SHARE[scale]:
        login = ROLE_LOGIN_CHOICE.pick(rng)
        company.role_mailbox = world.new_mailbox(login, company.domain, "role", rng)
    extensions = rng.sample(range(10, 999), size)
    for person, extension in zip(people, extensions, strict=True):
        person.company = company.company_id
        if company.line is not None:
            person.extension = str(extension)
        if company.role_mailbox is not None:
            person.role_user = rng.random() < ROLE_MAILBOX_USER_SHARE
        if rng.random() < WORK_EMAIL_SHARE:
            person.work_mailbox = world.new_mailbox(
                work_login(person, rng), company.domain, "work", rng
            )
        if rng.random() < B2B_PERSONAL_EMAIL_SHARE:
            person.personal_mailbox = private_email(person, pools, world, rng)
    return people


def unique_domain(name: str, world: World, rng: random.Random) -> str:
    base = slug(name) or "firma"
    domain = f"{base}.{COMPANY_TLD_CHOICE.pick(rng)}"
    while domain in world.used_domains:
        domain = f"{base}{rng.randint(1, 999)}.{COMPANY_TLD_CHOICE.pick(rng)}"
    world.used_domains.add(domain)
    return domain


def add_couple(first_id: int, pools: Pools, world: World, rng: random.Random) -> list[Person]:
    husband = new_person(first_id, True, pools, world, rng)
    wife = new_person(first_id + 1, False, pools, world, rng)
    wife.last = pools.female_surnames.get(husband.last, feminine_surname(husband.last))
    for person in (husband, wife):
        if rng.random() < PRIVATE_EMAIL_SHARE:
            person.personal_mailbox = private_email(person, pools, world, rng)
    if rng.random() < FAMILY_MAILBOX_SHARE:
        surname = latin(husband.last.lower(), PASSPORT_LATIN)
        him = latin(husband.first.lower(), PASSPORT_LATIN)
        her = latin(wife.first.lower(), PASSPORT_LATIN)
        login = Weighted({f"{surname}y": 60, f"semya.{surname}ykh": 20, f"{him}.i.{her}": 20}).pick(
            rng
        )
        mailbox = world.new_mailbox(login, FAMILY_DOMAIN_CHOICE.pick(rng), "family", rng)
        husband.family_mailbox = wife.family_mailbox = mailbox
    return [husband, wife]


def build_world(people: int, pools: Pools, rng: random.Random) -> World:
    world = World()
    b2b_target = round(people * B2B_SHARE)
    while len(world.persons) < b2b_target:
        size = min(COMPANY_SIZE_CHOICE.pick(rng), b2b_target - len(world.persons))
        add_company(size, len(world.persons), pools, world, rng)
    while len(world.persons) < people:
        if people - len(world.persons) >= 2 and rng.random() < COUPLE_SHARE / 2:
            add_couple(len(world.persons), pools, world, rng)
            continue
        person = new_person(len(world.persons), rng.random() < 0.5, pools, world, rng)
        if rng.random() < PRIVATE_EMAIL_SHARE:
            person.personal_mailbox = private_email(person, pools, world, rng)
    return world


# --- the leads: who writes when, and how ----------------------------------------------


def lead_counts(persons: int, leads: int, rng: random.Random) -> list[int]:
    """One lead each (as far as they go), the rest to repeat customers."""
    if leads <= persons:
        counts = [0] * persons
        for index in rng.sample(range(persons), leads):
            counts[index] = 1
        return counts
    counts = [1] * persons
    weights = list(accumulate(rng.paretovariate(REPEAT_PARETO_ALPHA) for _ in range(persons)))
    extra = leads - persons
    while extra:
        index = bisect.bisect(weights, rng.random() * weights[-1])
        if counts[index] < MAX_LEADS_PER_PERSON:
            counts[index] += 1
            extra -= 1
    return counts


@dataclass(slots=True)
class Written:
    """One lead before it is put in time order."""

    received_at: datetime
    person_id: int
    record: ParsedLead
    facts: LeadFacts


def write_leads(world: World, counts: Sequence[int], rng: random.Random, events: Counter):
    written: list[Written] = []
    for person, count in zip(world.persons, counts, strict=True):
        if not count:
            continue
        times = sorted(rng.randrange(SPAN_SECONDS) for _ in range(count))
        change_at = rng.choice(times) if person.new_mobile is not None else None
        for offset in times:
            received_at = START_TIME + timedelta(seconds=offset)
            phone_changed = change_at is not None and offset >= change_at
            written.append(write_lead(world, person, received_at, phone_changed, rng, events))
    written.sort(key=lambda lead: lead.received_at)
    return written


def write_lead(
    world: World,
    person: Person,
    received_at: datetime,
    phone_changed: bool,
    rng: random.Random,
    events: Counter,
) -> Written:
    channel = CHANNEL_CHOICE.pick(rng)
    gives_phone, gives_email = what_lead_gives(person, channel, rng)
    if not gives_email and channel == "email":
        channel = "form"
    phones, line, mobile = lead_phones(world, person, gives_phone, phone_changed, channel, rng)
    mailbox = choose_mailbox(world, person, rng) if gives_email else None
    emails, email_written = [], ""
    if mailbox is not None:
        text = written_email(world.mailboxes[mailbox], rng, events)
        emails, email_written = [text], text.strip().lower()
    company, company_text = None, ""
    if person.company is not None and rng.random() < COMPANY_NAMED_SHARE:
        company = person.company
        company_text = written_company(world.companies[company], rng)
    record = ParsedLead(
        lead_id="",
        channel=channel,
        received_at=received_at,
        name=written_name(person, rng, events),
        phones=phones,
        emails=emails,
        company=company_text,
    )
    facts = LeadFacts(
        line=line,
        mobile=mobile,
        mailbox=mailbox,
        email_written=email_written,
        company=company,
        has_phone=line is not None,
        has_email=mailbox is not None,
    )
    note_shared_use(world, person, line, mailbox)
    return Written(received_at, person.person_id, record, facts)


def what_lead_gives(person: Person, channel: str, rng: random.Random) -> tuple[bool, bool]:
    phone_share, email_share = CARRIES[channel]
    mailboxes = (person.personal_mailbox, person.work_mailbox, person.family_mailbox)
    has_mailbox = person.role_user or any(m is not None for m in mailboxes)
    gives_email = has_mailbox and rng.random() < email_share
    gives_phone = rng.random() < phone_share or not gives_email
    return gives_phone, gives_email


def lead_phones(
    world: World,
    person: Person,
    gives_phone: bool,
    phone_changed: bool,
    channel: str,
    rng: random.Random,
) -> tuple[list[str], int | None, bool]:
    """The phones written and the line of the first one (None when invalid)."""
    if not gives_phone:
        return [], None, False
    mobile = person.new_mobile if phone_changed else person.mobile
    office = world.companies[person.company].line if person.company is not None else None
    use = OFFICE_PHONE_CHOICE.pick(rng) if office is not None else "mobile"
    if use == "mobile":
        phones, line = [written_mobile(world.lines[mobile].digits, rng)], mobile
    else:
        extension = person.extension if use == "extension" else ""
        phones, line = [written_office(world.lines[office].digits, extension, rng)], office
        if channel == "email" and rng.random() < TWO_PHONES_SHARE:
            phones.append(written_mobile(world.lines[mobile].digits, rng))
    if rng.random() < INVALID_PHONE_SHARE:
        phones[0] = drop_a_digit(phones[0], rng)
        return phones, None, False
    return phones, line, line == mobile


def choose_mailbox(world: World, person: Person, rng: random.Random) -> int | None:
    role = world.companies[person.company].role_mailbox if person.role_user else None
    if role is not None and rng.random() < ROLE_MAILBOX_USE:
        return role
    own = person.work_mailbox if person.work_mailbox is not None else person.personal_mailbox
    if person.work_mailbox is not None and person.personal_mailbox is not None:
        own = person.work_mailbox if rng.random() < 0.75 else person.personal_mailbox
    family = person.family_mailbox
    if family is not None and (own is None or rng.random() < FAMILY_MAILBOX_USE):
        return family
    return own if own is not None else role


def note_shared_use(world: World, person: Person, line: int | None, mailbox: int | None) -> None:
    if line is not None and world.lines[line].office:
        person.used_office_line = line
    if mailbox is None:
        return
    kind = world.mailboxes[mailbox].kind
    if kind == "family":
        person.used_family_mailbox = mailbox
    elif kind == "role":
        person.used_role_mailbox = mailbox


def split_digits(digits: str) -> dict[str, str]:
    return {"a": digits[:3], "b": digits[3:6], "c": digits[6:8], "d": digits[8:]}


def written_mobile(digits: str, rng: random.Random) -> str:
    return MOBILE_WAY_CHOICE.pick(rng).format(**split_digits(digits))


def written_office(digits: str, extension: str, rng: random.Random) -> str:
    if not extension:
        return SWITCHBOARD_WAY_CHOICE.pick(rng).format(**split_digits(digits))
    return EXTENSION_WAY_CHOICE.pick(rng).format(x=extension, **split_digits(digits))


def drop_a_digit(phone: str, rng: random.Random) -> str:
    positions = [i for i, char in enumerate(phone) if char.isdigit()]
    cut = rng.choice(positions[4:8])
    return phone[:cut] + phone[cut + 1 :]


def written_email(mailbox: Mailbox, rng: random.Random, events: Counter) -> str:
    login, domain = mailbox.login, mailbox.domain
    if domain == "gmail.com" and rng.random() < GMAIL_DOTS_SHARE:
        login = regmail_dots(login, rng)
        events["email: gmail dots"] += 1
    if domain == "gmail.com" and rng.random() < GMAIL_TAG_SHARE:
        login = f"{login}+{rng.choice(GMAIL_TAGS)}"
        events["email: gmail +tag"] += 1
    if domain in YANDEX_DOMAINS and rng.random() < YANDEX_ALIAS_SHARE:
        domain = rng.choice([d for d in YANDEX_DOMAINS if d != domain])
        events["email: yandex alias domain"] += 1
    if rng.random() < DOMAIN_TYPO_SHARE:
        domain = domain_typo(domain, rng)
        events["email: domain typo"] += 1
    return recased(f"{login}@{domain}", EMAIL_CASE_CHOICE.pick(rng), rng)


def regmail_dots(login: str, rng: random.Random) -> str:
    """The same Gmail mailbox with the dots elsewhere: ivan.petrov -> ivanpetrov, i.vanpetrov."""
    bare = login.replace(".", "")
    if "." in login or len(bare) < 4:
        return bare
    cut = rng.randrange(1, len(bare) - 1)
    return bare[:cut] + "." + bare[cut:]


def domain_typo(domain: str, rng: random.Random) -> str:
    if domain in DOMAIN_TYPOS:
        return rng.choice(DOMAIN_TYPOS[domain])
    return domain.rsplit(".", 1)[0] + ".ry" if domain.endswith(".ru") else domain + "m"


def recased(email: str, style: str, rng: random.Random) -> str:
    if style == "capitalised":
        return email[:1].upper() + email[1:]
    if style == "upper":
        return email.upper()
    if style == "mixed":
        login, _, domain = email.partition("@")
        parts = login.split(".")
        login = ".".join(p.capitalize() if i == 0 else p.upper() for i, p in enumerate(parts))
        return f"{login}@{domain.capitalize()}"
    return email


def written_name(person: Person, rng: random.Random, events: Counter) -> str:
    way = person.name_habit if rng.random() < NAME_HABIT_SHARE else NAME_WAY_CHOICE.pick(rng)
    events[f"name: {way}"] += 1
    if way == "none":
        return ""
    first = person.first
    alone = way in ("first", "latin first")
    if person.diminutives and way not in ("last first middle", "first middle", "last initials"):
        if rng.random() < DIMINUTIVE_SHARE["alone" if alone else "with others"]:
            first = rng.choice(person.diminutives)
            events["name: diminutive"] += 1
    text = name_in_way(way, first, person, rng)
    if rng.random() < YO_AS_YE_SHARE:
        text = text.replace("ё", "е").replace("Ё", "Е")
    roll = rng.random()
    if roll < NAME_LOWER_SHARE:
        text = text.lower()
    elif roll < NAME_LOWER_SHARE + NAME_UPPER_SHARE:
        text = text.upper()
    if rng.random() < NAME_TYPO_SHARE:
        text = with_typo(text, rng)
        events["name: typo"] += 1
    return text


def name_in_way(way: str, first: str, person: Person, rng: random.Random) -> str:
    last, middle = person.last, person.middle
    if way == "first":
        return first
    if way == "first last":
        return f"{first} {last}"
    if way == "last first":
        return f"{last} {first}"
    if way == "last first middle":
        return f"{last} {first} {middle}"
    if way == "first middle":
        return f"{first} {middle}"
    if way == "last initials":
        return f"{last} {first[0]}.{' ' if rng.random() < 0.5 else ''}{middle[0]}."
    if way == "initial last":
        return f"{first[0]}. {last}"
    table = POPULAR_LATIN if rng.random() < 0.5 else PASSPORT_LATIN
    latin_first = POPULAR_FIRST_NAMES.get(first) if table is POPULAR_LATIN else None
    latin_first = latin_first or latin(first, table)
    if way == "latin first":
        return latin_first
    return f"{latin_first} {latin(last, table)}"


def with_typo(text: str, rng: random.Random) -> str:
    words = text.split(" ")
    candidates = [i for i, word in enumerate(words) if len(word) >= 4 and word.isalpha()]
    if not candidates:
        return text
    index = rng.choice(candidates)
    word = words[index]
    at = rng.randrange(1, len(word) - 1)
    kind = rng.randrange(3)
    if kind == 0:
        word = word[:at] + word[at + 1 :]
    elif kind == 1:
        word = word[:at] + word[at] + word[at:]
    else:
        word = word[: at - 1] + word[at] + word[at - 1] + word[at + 1 :]
    words[index] = word
    return " ".join(words)


def written_company(company: Company, rng: random.Random) -> str:
    name, form = company.name, company.legal_form
    if rng.random() < COMPANY_TYPO_SHARE:
        name = with_typo(name, rng)
    if not form:
        return name if rng.random() < 0.8 else f"«{name}»"
    return COMPANY_WAY_CHOICE.pick(rng).format(
        name=name,
        form=form,
        words=LEGAL_FORM_WORDS.get(form, form),
        lower=f"{form.lower()} {name.lower()}",
    )


NAME_WAY_CHOICE = Weighted(NAME_WAYS)
PERSONAL_DOMAIN_CHOICE = Weighted(PERSONAL_DOMAINS)
FAMILY_DOMAIN_CHOICE = Weighted(FAMILY_DOMAINS)
ROLE_LOGIN_CHOICE = Weighted(ROLE_LOGINS)
COMPANY_TLD_CHOICE = Weighted(COMPANY_DOMAIN_TLDS)
LEGAL_FORM_CHOICE = Weighted(LEGAL_FORMS)
COMPANY_SIZE_CHOICE = Weighted(COMPANY_SIZES)
CITY_CODE_CHOICE = Weighted(CITY_CODES)
OFFICE_PHONE_CHOICE = Weighted(OFFICE_PHONE_USE)
CHANNEL_CHOICE = Weighted(CHANNELS)
EMAIL_CASE_CHOICE = Weighted(EMAIL_CASE)
MOBILE_WAY_CHOICE = Weighted(MOBILE_WAYS)
EXTENSION_WAY_CHOICE = Weighted(EXTENSION_WAYS)
SWITCHBOARD_WAY_CHOICE = Weighted(SWITCHBOARD_WAYS)
COMPANY_WAY_CHOICE = Weighted(COMPANY_WAYS)


def generate(
    people: int = DEFAULT_PEOPLE, leads: int = DEFAULT_LEADS, seed: int = DEFAULT_SEED
) -> LeadSet:
    """`leads` leads from `people` people, in time order, with who wrote each."""
    rng = random.Random(seed)
    world = build_world(people, build_pools(seed), rng)
    events: Counter[str] = Counter()
    written = write_leads(world, lead_counts(people, leads, rng), rng, events)
    for index, lead in enumerate(written):
        lead.record.lead_id = f"lead-{index:07d}"
    return LeadSet(
        records=[lead.record for lead in written],
        person_ids=[lead.person_id for lead in written],
        facts=[lead.facts for lead in written],
        persons=world.persons,
        events=events,
    )


# --- the hard cases, for the metrics ----------------------------------------------------

NEGATIVE_KINDS = (
    "office line",
    "family mailbox",
    "role mailbox",
    "other colleagues",
    "namesakes",
    "same first name",
)
POSITIVE_KINDS = (
    "same written email",
    "email spelled otherwise",
    "same phone line",
    "changed mobile, no email",
    "phone-only vs email-only, same company",
    "phone-only vs email-only",
)


def negative_keys(leads: LeadSet) -> list[tuple[str, list[Hashable | None]]]:
    """For each hard-negative kind, a key per lead: two leads of different people
    with the same key are people related that way (colleagues who both wrote the
    office line, a couple who both wrote from the family mailbox, ...)."""
    relations = {
        "office line": lambda p: p.used_office_line,
        "family mailbox": lambda p: p.used_family_mailbox,
        "role mailbox": lambda p: p.used_role_mailbox,
        "other colleagues": lambda p: p.company,
        "namesakes": lambda p: (plain_name(p.first), p.last),
        "same first name": lambda p: plain_name(p.first),
    }
    persons = leads.persons
    return [
        (kind, [relations[kind](persons[person_id]) for person_id in leads.person_ids])
        for kind in NEGATIVE_KINDS
    ]


def plain_name(name: str) -> str:
    return name.replace("ё", "е")


def positive_kind(leads: LeadSet, first: int, second: int) -> str:
    """What two leads of one person share, the hard cases last: a matcher that
    keeps them apart missed a pair of this kind."""
    a, b = leads.facts[first], leads.facts[second]
    if a.email_written and a.email_written == b.email_written:
        return "same written email"
    if a.mailbox is not None and a.mailbox == b.mailbox:
        return "email spelled otherwise"
    if a.line is not None and a.line == b.line:
        return "same phone line"
    phone_only = a.has_phone and not a.has_email, b.has_phone and not b.has_email
    email_only = a.has_email and not a.has_phone, b.has_email and not b.has_phone
    if all(phone_only) and a.mobile and b.mobile:
        return "changed mobile, no email"
    if (phone_only[0] and email_only[1]) or (email_only[0] and phone_only[1]):
        if a.company is not None and a.company == b.company:
            return "phone-only vs email-only, same company"
        return "phone-only vs email-only"
    return "other"
