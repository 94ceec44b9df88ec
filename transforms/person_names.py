"""People's names as evidence: which parts a written name has, who it can be,
and whether two written names can be one person.

Russian names come in any order (Фамилия Имя Отчество, Имя Фамилия, Имя
Отчество Фамилия, `Петров И.И.`, `И. Петров`), in Cyrillic or Latin, with
diminutives (Саша, Женя), gendered surnames (Петров/Петрова) and typos. Every
part is compared through `fold`, a spelling-blind Latin key, so Юрий, Yuri,
Yury and Iurii are one name and Журавлёв, Zhuravlev and Zhuravlyov one surname.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from enum import IntEnum
from functools import lru_cache
from itertools import permutations
from typing import Literal

from rapidfuzz import process
from rapidfuzz.distance import OSA

from transforms.identity_rules import Gender, IdentityRules
from transforms.names import normalize_name

Script = Literal["cyrillic", "latin", "mixed", ""]

_CYRILLIC = dict(zip(
    "абвгдезийклмнопрстуфхцчшщъыьэюя",
    "a b v g d e z i i k l m n o p r s t u f kh ts ch sh shch _ y _ e iu ia".split(),
    strict=True,
))
_CYRILLIC.update({"ж": "zh", "ё": "e", "ъ": "", "ь": ""})
# Latin spellings of one Russian sound, in the order they are rewritten.
_LATIN_SPELLINGS = (
    ("x", "ks"), ("w", "v"), ("ph", "f"), ("q", "k"),
    ("shch", "sh"), ("sch", "sh"), ("shh", "sh"), ("tch", "ch"), ("kh", "h"),
    ("tz", "ts"), ("tc", "ts"), ("ck", "k"),
)
_C_BEFORE_SOFT = re.compile(r"c(?=[eiy])")
_C_HARD = re.compile(r"c(?!h)")
_YE_YO = re.compile(r"[yj][eo]")
_DOUBLED = re.compile(r"(.)\1+")
_CYRILLIC_LETTER = re.compile(r"[а-яё]", re.IGNORECASE)
_LATIN_LETTER = re.compile(r"[a-z]", re.IGNORECASE)
_WORD = re.compile(r"[^\W\d_]+(?:[-'’][^\W\d_]+)*\.?")
_HONORIFICS = frozenset({"г-н", "г-жа", "гн", "гжа", "mr", "mrs", "ms", "miss", "dr",
                         "господин", "госпожа"})
# `Мамедов Ильхам Гейдар оглы`: the word before the particle is the patronymic.
_PATRONYMIC_PARTICLES = {"оглы": "m", "улы": "m", "ogly": "m", "oglu": "m", "uly": "m",
                         "кызы": "f", "гызы": "f", "kyzy": "f", "qizi": "f", "gyzy": "f"}
_OTHER_PARTICLES = frozenset({"van", "von", "de", "der", "da", "di", "la", "le", "bin", "ibn"})
# Folded endings, longest first: (ending, gender, what the gender-neutral key keeps).
_PATRONYMIC_ENDINGS = (
    ("inichna", "f", "ich"), ("ovich", "m", "ov"), ("evich", "m", "ev"),
    ("ovna", "f", "ov"), ("evna", "f", "ev"), ("ichna", "f", "ich"), ("ich", "m", "ich"),
)
_SURNAME_ENDINGS = (
    ("skaia", "f", "ski"), ("ova", "f", "ov"), ("eva", "f", "ev"), ("ina", "f", "in"),
    ("aia", "f", "aia"), ("ska", "f", "ski"), ("ski", "m", "ski"), ("ov", "m", "ov"),
    ("ev", "m", "ev"), ("in", "m", "in"), ("oi", "m", "oi"),
    ("enko", "", "enko"), ("ko", "", "ko"), ("uk", "", "uk"), ("ian", "", "ian"),
    ("ih", "", "ih"), ("dze", "", "dze"), ("shvili", "", "shvili"),
)
_VOWELS = re.compile(r"[aeiouy]")
# Initials that take two Latin letters (Ya. for Я., Zh. for Ж.), and the
# first sounds that are two letters once folded.
_LATIN_INITIALS = frozenset({"ya", "yu", "ye", "yo", "ja", "ju", "ia", "iu", "zh", "kh", "ts",
                             "ch", "sh", "shch", "sch"})
_TWO_LETTER_SOUNDS = frozenset({"ia", "iu", "zh", "ts", "ch", "sh"})
# Typo tolerance: one edit, and only in words long enough that one edit
# rarely turns one real name into another.
_SHORTEST_FOR_TYPO = 6


class NameLevel(IntEnum):
    """How two written names compare, from most against to most for; negative
    levels say the names belong to different people."""

    DIFFERENT_GENDER = -4  # Евгений / Евгения, Петров / Петрова
    DIFFERENT_FIRST_NAME = -3  # Игорь / Олег, a husband and a wife
    DIFFERENT_PATRONYMIC = -2  # Иван Петрович / Иван Сергеевич
    DIFFERENT_SURNAME = -1  # Анна Петрова / Анна Сидорова
    MISSING = 0  # one side gives no name
    FIRST_NAME_ONLY = 1  # Игорь / Игорь Смирнов; or a surname alone on one side
    INITIALS = 2  # Петров И. / Иван Петров
    LIKELY = 3  # Саша Петров / Александр Петров, a typo, a missing patronymic
    EXACT = 4  # the same full name, in whatever order and script

    @property
    def compatible(self) -> bool:
        return self >= NameLevel.MISSING


@dataclass(frozen=True)
class NameComparison:
    level: NameLevel
    reason: str

    @property
    def compatible(self) -> bool:
        return self.level.compatible


@dataclass(frozen=True)
class PersonName:
    """One written name, split into its parts, with the keys it is compared by."""

    text: str = ""
    surname: str = ""
    first_name: str = ""
    patronymic: str = ""
    # parts given only as initials, in order (`Петров И.И.` -> ("И", "И"))
    initials: tuple[str, ...] = ()
    gender: Gender = ""
    script: Script = ""
    # gender-neutral and spelling-blind: Петров, Petrova -> petrov
    surname_key: str = ""
    # the first name as written, folded: Саша -> sasha
    first_key: str = ""
    # the full first names it can be, folded, for its gender: Саша -> aleksandr
    first_names: frozenset[str] = frozenset()
    # every full name sharing a diminutive with it, of either gender
    first_roots: frozenset[str] = frozenset()
    first_known: bool = False
    # initial sounds (`initial_key`) of the first name as written and of the
    # full names it can be: Саша -> {s, a}
    first_initials: frozenset[str] = frozenset()
    patronymic_key: str = ""
    # the initial sound of the patronymic, written in full or as an initial
    patronymic_initial: str = ""
    # the surname and first name could be the other way round (neither is known)
    other_reading: PersonName | None = field(default=None, compare=False, repr=False)

    @property
    def empty(self) -> bool:
        return not (self.surname or self.first_name or self.patronymic or self.initials)

    @property
    def ambiguous_order(self) -> bool:
        return self.other_reading is not None


@lru_cache(maxsize=65536)
def fold(word: str) -> str:
    """A spelling-blind Latin key: transliteration, ё/е, й/и, y/i, kh/h,
    ts/tz/c, doubled letters and hard and soft signs do not count."""
    text = word.lower().replace("-", "").replace("'", "").replace("’", "")
    text = "".join(_CYRILLIC.get(ch, ch) for ch in text).replace("_", "")
    for spelling, sound in _LATIN_SPELLINGS:
        text = text.replace(spelling, sound)
    text = _C_HARD.sub("k", _C_BEFORE_SOFT.sub("ts", text))
    text = _YE_YO.sub("e", text).replace("ie", "e")
    text = text.replace("y", "i").replace("j", "i")
    return _DOUBLED.sub(r"\1", text)


# About 1.4 kB a name: the cache stays near 25 MB.
@lru_cache(maxsize=16384)
def parse_person_name(text: str, rules: IdentityRules) -> PersonName:
    """`Петров И.И.`, `Иван Иванович Петров`, `Ivan Petrov`, `Саша` -> the
    parts and keys; an empty PersonName when the text is not a name."""
    shown = normalize_name(text)
    words, initials, particle_gender = _words(shown)
    if not words and not initials:
        return PersonName()
    lexicon = _lexicon(rules)
    facts = [_facts(word, lexicon, particle_gender.get(i)) for i, word in enumerate(words)]
    readings = _readings(facts)
    best = readings[0]
    name = _build(shown, words, facts, best[1], initials, lexicon)
    if len(words) == 2 and len(readings) > 1 and best[0] - readings[1][0] <= 0.5:
        name = replace(name, other_reading=_build(shown, words, facts, readings[1][1],
                                                  initials, lexicon))
    return name


def compare_names(a: PersonName | str, b: PersonName | str, rules: IdentityRules
                  ) -> NameComparison:
    """Whether two written names can be one person, with a reason for people."""
    first, second = _parsed(a, rules), _parsed(b, rules)
    if first.empty or second.empty:
        return NameComparison(NameLevel.MISSING, "no name on one side")
    pairs = [(first, second)]
    pairs += [(first.other_reading, second)] if first.other_reading else []
    pairs += [(first, second.other_reading)] if second.other_reading else []
    return max((_compare(x, y) for x, y in pairs), key=lambda result: result.level)


def name_block_keys(name: PersonName) -> set[str]:
    """The keys a contact of this name is found by: the surname with each
    full first name it can be and a vowel-blind surname with each (for a typo
    in a vowel), and, for the names written only as initials, the surname with
    each initial. A full name is also filed under its initials with a dot, for
    a lead that gives only initials; a first name not on the list (maybe a
    typo) under its initial as well. A first name alone or a surname alone
    gives none (too common)."""
    keys: set[str] = set()
    for reading in _surnamed_readings(name):
        surname, skeleton = reading.surname_key, _skeleton(reading.surname_key)
        if reading.first_name:
            keys.update(f"{surname}|{first}" for first in reading.first_names)
            keys.update(f"~{skeleton}|{first}" for first in reading.first_names)
            keys.update(f"{surname}|{initial}." for initial in reading.first_initials)
            keys.update(_patronymic_keys(reading))
            if not reading.first_known:
                # maybe a typo: filed with the initials too, where full names look
                keys.update(f"{surname}|{initial}" for initial in reading.first_initials)
        else:
            keys.update(f"{surname}|{initial}" for initial in reading.first_initials)
            keys.update(f"~{skeleton}|{initial}" for initial in reading.first_initials)
    return keys


def name_query_keys(name: PersonName) -> set[str]:
    """The keys to look the contacts of this name up by (`name_block_keys`
    are what they are filed under): a full name meets the same full names
    and the names written as initials that fit it, not every namesake whose
    first name starts with its letter (Иван Петров is not compared with Игорь
    Петров); initials meet both. A first name not on the list may be a typo:
    it meets the full names of its initial too. A store filed before full
    names had their dotted initials keeps every name under its initials
    without the dot, which is still looked up (`leadhub dedupe --rescan`
    files them anew)."""
    keys: set[str] = set()
    for reading in _surnamed_readings(name):
        surname, skeleton = reading.surname_key, _skeleton(reading.surname_key)
        initials = reading.first_initials
        keys.update(f"{surname}|{initial}" for initial in initials)
        if reading.first_name:
            keys.update(f"{surname}|{first}" for first in reading.first_names)
            keys.update(f"~{skeleton}|{first}" for first in reading.first_names)
            keys.update(_patronymic_keys(reading))
            if not reading.first_known:
                keys.update(f"{surname}|{initial}." for initial in initials)
        else:
            keys.update(f"~{skeleton}|{initial}" for initial in initials)
            keys.update(f"{surname}|{initial}." for initial in initials)
    return keys


def _patronymic_keys(reading: PersonName) -> set[str]:
    """The full name with its patronymic: still a small block when the name
    without it is shared by too many to block on."""
    if not reading.patronymic_key:
        return set()
    return {f"{reading.surname_key}|{first}|{reading.patronymic_key}"
            for first in reading.first_names}


def _surnamed_readings(name: PersonName) -> list[PersonName]:
    return [reading for reading in (name, name.other_reading)
            if reading is not None and reading.surname_key]


def surname_keys(name: PersonName) -> set[str]:
    """The surname's key in each reading of the name (for blocking a surname
    with something else that narrows it, such as the company)."""
    return {reading.surname_key for reading in (name, name.other_reading)
            if reading is not None and reading.surname_key}


# --- parsing -------------------------------------------------------------


@dataclass(frozen=True)
class _Entry:
    key: str
    name: str
    gender: Gender


@dataclass(frozen=True, eq=False)
class _Lexicon:
    by_key: dict[str, tuple[_Entry, ...]]
    roots: dict[str, frozenset[str]]
    keys: tuple[str, ...]
    full_keys: tuple[str, ...]


@dataclass(frozen=True)
class _Facts:
    key: str
    entries: tuple[_Entry, ...]
    known_exactly: bool
    patronymic: tuple[Gender, str] | None
    surname: tuple[Gender, str] | None


@lru_cache(maxsize=8)
def _lexicon(rules: IdentityRules) -> _Lexicon:
    """Every written form of a first name -> the full names it stands for;
    and the full names that share a diminutive (Евгений, Евгения)."""
    by_key: dict[str, list[_Entry]] = {}
    for gender, names in rules.diminutives.items():
        for full, variants in names.items():
            entry = _Entry(fold(full), full, gender)
            for written in {full, *variants}:
                listed = by_key.setdefault(fold(written), [])
                if entry not in listed:
                    listed.append(entry)
    roots: dict[str, set[str]] = {}
    for entries in by_key.values():
        for entry in entries:
            roots.setdefault(entry.key, set()).update(e.key for e in entries)
    full_keys = tuple(sorted(roots))
    return _Lexicon(
        by_key={key: tuple(entries) for key, entries in by_key.items()},
        roots={key: frozenset(group) for key, group in roots.items()},
        keys=tuple(sorted(by_key)),
        full_keys=full_keys,
    )


def _words(shown: str) -> tuple[list[str], list[str], dict[int, Gender]]:
    """Full words, initials, and the gender a particle gives the word before it."""
    words: list[str] = []
    initials: list[str] = []
    particle_gender: dict[int, Gender] = {}
    for token in _WORD.findall(shown):
        bare = token.rstrip(".")
        lowered = bare.lower()
        if lowered in _HONORIFICS or lowered in _OTHER_PARTICLES:
            continue
        if lowered in _PATRONYMIC_PARTICLES:
            if words:
                particle_gender[len(words) - 1] = _PATRONYMIC_PARTICLES[lowered]
            continue
        if len(bare) == 1 or (token.endswith(".") and lowered in _LATIN_INITIALS):
            initials.append(bare.capitalize())
        else:
            words.append(bare)
    return words[:4], initials[:2], particle_gender


@lru_cache(maxsize=65536)
def _facts_cached(word: str, lexicon: _Lexicon) -> tuple[str, tuple[_Entry, ...], bool]:
    key = fold(word)
    entries = lexicon.by_key.get(key, ())
    if entries or len(key) < _SHORTEST_FOR_TYPO:
        return key, entries, bool(entries)
    close = process.extract(key, lexicon.keys, scorer=OSA.distance, score_cutoff=1, limit=None)
    # A typo is read as a name only when every nearest spelling means the same.
    meanings = {frozenset(lexicon.by_key[found]) for found, distance, _ in close
                if distance == close[0][1] and len(found) >= _SHORTEST_FOR_TYPO}
    return key, (tuple(meanings.pop()) if len(meanings) == 1 else ()), False


def _facts(word: str, lexicon: _Lexicon, particle_gender: Gender | None) -> _Facts:
    key, entries, exact = _facts_cached(word, lexicon)
    patronymic = ((particle_gender, key) if particle_gender
                  else _patronymic_form(key, lexicon))
    return _Facts(key=key, entries=entries, known_exactly=exact, patronymic=patronymic,
                  surname=_surname_form(key))


def _patronymic_form(key: str, lexicon: _Lexicon) -> tuple[Gender, str] | None:
    """(gender, gender-neutral key) when the word is a patronymic: Иванович,
    Ивановна -> ivanov; Ильич, Ильинична -> ilich. A bare -ич counts only
    after a first name (Ильич, Никитич), so Бабич stays a surname."""
    for ending, gender, kept in _PATRONYMIC_ENDINGS:
        stem = key[: -len(ending)]
        if not key.endswith(ending) or len(stem) < 2:
            continue
        if ending in ("ovich", "evich", "ovna", "evna") and len(stem) >= 3:
            return gender, stem + kept
        if ending in ("ich", "ichna", "inichna") and any(
                full.startswith(stem) for full in lexicon.full_keys):
            return gender, stem + kept
    return None


def _surname_form(key: str) -> tuple[Gender, str] | None:
    """(gender, gender-neutral key) when the word looks like a surname:
    Петрова, Petrova -> (f, petrov); Журавский -> (m, zhuravski)."""
    for ending, gender, kept in _SURNAME_ENDINGS:
        if key.endswith(ending) and len(key) > len(ending) + 1:
            return gender, key[: -len(ending)] + kept
    return None


# Which order the parts come in, as a small bonus: the official Фамилия Имя
# Отчество first, then Имя Отчество Фамилия, then the two-word forms.
_ORDER_BONUS = {"SFP": 1.0, "FPS": 0.5, "FS": 0.5, "FP": 0.5, "SF": 0.4, "F": 0.1}


def _readings(facts: list[_Facts]) -> list[tuple[float, tuple[str, ...]]]:
    """Every way to give the words the roles S(urname), F(irst name),
    P(atronymic) or X (ignored), best first (ties: in the order tried)."""
    table = [{role: _role_score(fact, role) for role in "SFPX"} for fact in facts]
    scored = [
        (sum(table[i][role] for i, role in enumerate(roles)) + _order_score(roles), roles)
        for roles in _assignments(len(facts), any(fact.patronymic for fact in facts))
    ]
    scored.sort(key=lambda item: -item[0])
    return scored


@lru_cache(maxsize=16)
def _assignments(count: int, patronymic: bool) -> tuple[tuple[str, ...], ...]:
    """Each role at most once; a word is ignored only when there are more
    words than roles."""
    roles = "SFP" if patronymic else "SF"
    roles += "X" * max(0, count - len(roles))
    return tuple(dict.fromkeys(permutations(roles, count)))


@lru_cache(maxsize=512)
def _order_score(roles: tuple[str, ...]) -> float:
    order = "".join(role for role in roles if role != "X")
    score = _ORDER_BONUS.get(order, 0.0)
    if "P" in order and ("F" not in order or order.index("P") < order.index("F")):
        score -= 4
    return score


def _role_score(fact: _Facts, role: str) -> float:
    known = 3.0 if fact.known_exactly else (2.0 if fact.entries else 0.0)
    if role == "F":
        # a surname form beats a name one typo away (Андреева is not Andrew)
        return known - (3 if fact.patronymic else 0) - (
            2 if fact.surname and not fact.known_exactly else 0)
    if role == "S":
        return (2.0 if fact.surname else 0.0) - (2 if fact.entries and not fact.surname else 0) - (
            1 if fact.patronymic else 0)
    if role == "P":
        return 3.0 if fact.patronymic else -10.0
    return -4.0


def _build(shown: str, words: list[str], facts: list[_Facts], roles: tuple[str, ...],
           initials: list[str], lexicon: _Lexicon) -> PersonName:
    part = {role: (word, fact) for word, fact, role in zip(words, facts, roles, strict=True)}
    surname, surname_fact = part.get("S", ("", None))
    first, first_fact = part.get("F", ("", None))
    patronymic, patronymic_fact = part.get("P", ("", None))
    first_initial = "" if first else (initials[0] if initials else "")
    patronymic_initial = "" if patronymic else next(
        iter(initials[1:] if not first else initials[:1]), "")
    gender = _gender(first_fact, surname_fact, patronymic_fact)
    entries = first_fact.entries if first_fact else ()
    narrowed = [e for e in entries if not gender or e.gender == gender] or list(entries)
    first_names = frozenset(e.key for e in narrowed) or (
        frozenset({first_fact.key}) if first_fact else frozenset())
    roots = frozenset().union(*(lexicon.roots.get(e.key, frozenset()) for e in entries))
    written_initial = initial_key(first or first_initial)
    return PersonName(
        text=shown,
        surname=surname,
        first_name=first,
        patronymic=patronymic,
        initials=tuple(initial for initial in (first_initial, patronymic_initial) if initial),
        gender=gender,
        script=_script(shown),
        surname_key=(surname_fact.surname[1] if surname_fact and surname_fact.surname
                     else surname_fact.key if surname_fact else ""),
        first_key=first_fact.key if first_fact else "",
        first_names=first_names,
        first_roots=roots or first_names,
        first_known=bool(entries),
        first_initials=frozenset({written_initial} if written_initial else set())
        | {initial_key(entry.name) for entry in narrowed},
        patronymic_key=_patronymic_key(patronymic_fact),
        patronymic_initial=initial_key(patronymic or patronymic_initial),
    )


def _patronymic_key(fact: _Facts | None) -> str:
    if fact is None:
        return ""
    return fact.patronymic[1] if fact.patronymic else fact.key


def _gender(first: _Facts | None, surname: _Facts | None, patronymic: _Facts | None
            ) -> Gender:
    """The patronymic says it best, then a first name of one gender only,
    then the surname's form."""
    if patronymic and patronymic.patronymic and patronymic.patronymic[0]:
        return patronymic.patronymic[0]
    genders = {entry.gender for entry in first.entries} if first else set()
    if len(genders) == 1:
        return genders.pop()
    if surname and surname.surname:
        return surname.surname[0]
    return ""


def _script(text: str) -> Script:
    cyrillic, latin = bool(_CYRILLIC_LETTER.search(text)), bool(_LATIN_LETTER.search(text))
    if cyrillic and latin:
        return "mixed"
    return "cyrillic" if cyrillic else ("latin" if latin else "")


def initial_key(word: str) -> str:
    """The first sound of a name, for comparing initials: Ю., Yu., Юрий and
    Iurii -> iu; И., Ия, Иван -> i; Ж., Zh. -> zh."""
    if word[:1].lower() in _CYRILLIC:
        return fold(word[:1])
    key = fold(word)
    return key[:2] if key[:2] in _TWO_LETTER_SOUNDS else key[:1]


def _skeleton(key: str) -> str:
    return key[:1] + _DOUBLED.sub(r"\1", _VOWELS.sub("", key[1:]))


def _parsed(name: PersonName | str, rules: IdentityRules) -> PersonName:
    return name if isinstance(name, PersonName) else parse_person_name(name, rules)


# --- comparing -----------------------------------------------------------


def _compare(a: PersonName, b: PersonName) -> NameComparison:
    first = _first_names(a, b)
    surname = _surnames(a, b)
    patronymic = _patronymics(a, b)
    pair = f"{a.text} / {b.text}"
    if a.gender and b.gender and a.gender != b.gender and first != "different":
        return NameComparison(NameLevel.DIFFERENT_GENDER, f"a man and a woman: {pair}")
    if first in ("different", "other gender"):
        return NameComparison(NameLevel.DIFFERENT_FIRST_NAME,
                              f"names differ: {_first_shown(a)} / {_first_shown(b)}")
    if patronymic == "different":
        return NameComparison(NameLevel.DIFFERENT_PATRONYMIC,
                              f"patronymics differ: {a.patronymic or a.text} / "
                              f"{b.patronymic or b.text}")
    if surname == "different":
        return NameComparison(NameLevel.DIFFERENT_SURNAME,
                              f"surnames differ: {a.surname} / {b.surname}")
    return _compatible(a, b, first, surname, patronymic, pair)


def _compatible(a: PersonName, b: PersonName, first: str, surname: str, patronymic: str,
                pair: str) -> NameComparison:
    if surname in ("same", "similar") and first in ("same", "variant"):
        exact = (surname == "same" and first == "same"
                 and patronymic in ("same", "none") and bool(a.patronymic) == bool(b.patronymic))
        if exact:
            return NameComparison(NameLevel.EXACT, "same name")
        return NameComparison(NameLevel.LIKELY, f"same person likely: {pair}")
    if surname in ("same", "similar") and first == "initial":
        return NameComparison(NameLevel.INITIALS, f"initials match: {pair}")
    if surname in ("same", "similar"):
        return NameComparison(NameLevel.FIRST_NAME_ONLY, f"same surname, no first name: {pair}")
    if first in ("same", "variant", "initial"):
        return NameComparison(NameLevel.FIRST_NAME_ONLY, f"same first name: {pair}")
    return NameComparison(NameLevel.MISSING, f"nothing to compare: {pair}")


def _first_names(a: PersonName, b: PersonName) -> str:
    """same | variant | initial | other gender | different | missing"""
    if a.first_name and b.first_name:
        if a.first_key == b.first_key:
            return "same"
        if a.first_names & b.first_names:
            return "variant"
        if a.first_roots & b.first_roots:
            return "other gender"
        unknown = not (a.first_known and b.first_known)
        if unknown and _one_typo(a.first_key, b.first_key):
            return "variant"
        return "different"
    if (a.first_name or a.initials[:1]) and (b.first_name or b.initials[:1]):
        return "initial" if a.first_initials & b.first_initials else "different"
    return "missing"


def _surnames(a: PersonName, b: PersonName) -> str:
    """same | similar | different | missing"""
    if not (a.surname_key and b.surname_key):
        return "missing"
    if a.surname_key == b.surname_key:
        return "same"
    return "similar" if _one_typo(a.surname_key, b.surname_key) else "different"


def _patronymics(a: PersonName, b: PersonName) -> str:
    """same | initial | different | none (not on both sides)"""
    if a.patronymic_key and b.patronymic_key:
        same = a.patronymic_key == b.patronymic_key or _one_typo(
            a.patronymic_key, b.patronymic_key)
        return "same" if same else "different"
    if a.patronymic_initial and b.patronymic_initial:
        return "initial" if a.patronymic_initial == b.patronymic_initial else "different"
    return "none"


def _one_typo(first: str, second: str) -> bool:
    return (min(len(first), len(second)) >= _SHORTEST_FOR_TYPO
            and OSA.distance(first, second, score_cutoff=1) <= 1)


def _first_shown(name: PersonName) -> str:
    return name.first_name or (f"{name.initials[0]}." if name.initials else name.text)
