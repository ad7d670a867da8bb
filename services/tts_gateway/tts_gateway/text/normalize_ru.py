"""Russian text normalization for speech: what a receptionist would say aloud.

Numbers agree with their context: a preposition before a number sets its case ("от 4 500 ₽" →
"от четырёх тысяч пятисот рублей", "к 14:30" → "к четырнадцати тридцати"), and the noun after it
its gender ("1 минута" → "одна минута", "2 недели" → "две недели"). Prices are said in roubles
and kopecks, dates as ordinals in the genitive ("1 декабря" → "первого декабря"; "на 1 декабря"
→ "на первое декабря"), times as hours and minutes ("14:30" → "четырнадцать тридцать"), phone
numbers in their usual groups of hundreds and tens ("+7 916 123-45-67" → "плюс семь,
девятьсот шестнадцать, сто двадцать три, сорок пять, шестьдесят семь"), and abbreviations by
their letters ("МРТ" → "эм-эр-тэ"). Each rule is one regex and one function, applied in an order
where the more specific patterns run before the generic number rule.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from tts_gateway.text.numbers_ru import (
    DEGREE,
    DOLLAR,
    EURO,
    KOPECK,
    PERCENT,
    RUBLE,
    UNITS,
    Noun,
    agree,
    cardinal,
    decimal,
    digit_group,
    ordinal,
)
from tts_gateway.text.spacing import tidy

MONTHS_GENITIVE = [
    "января",
    "февраля",
    "марта",
    "апреля",
    "мая",
    "июня",
    "июля",
    "августа",
    "сентября",
    "октября",
    "ноября",
    "декабря",
]
# Written forms of a month in the genitive, full or abbreviated, mapped to its number.
_MONTH_FORMS = {m: i + 1 for i, m in enumerate(MONTHS_GENITIVE)} | {
    "янв": 1,
    "фев": 2,
    "февр": 2,
    "мар": 3,
    "апр": 4,
    "июн": 6,
    "июл": 7,
    "авг": 8,
    "сен": 9,
    "сент": 9,
    "окт": 10,
    "ноя": 11,
    "нояб": 11,
    "дек": 12,
}
_MONTH_RE = (
    r"(?P<month>(?:"
    + "|".join(MONTHS_GENITIVE)
    + r")(?![а-яё])|(?:"
    + "|".join(sorted((k for k in _MONTH_FORMS if k not in MONTHS_GENITIVE), key=len, reverse=True))
    + r")(?![а-яё])\.?)"
)
# A month in any case ("в декабре", "декабрь"), before a year.
_ANY_MONTH_RE = (
    r"(?P<month>(?:январ|феврал|март|апрел|июн|июл|август|сентябр|октябр|ноябр|декабр)"
    r"[а-яё]*|ма[йяюе](?![а-яё]))"
)
WEEKDAYS = ["понедельник", "вторник", "среда", "четверг", "пятница", "суббота", "воскресенье"]
_WEEKDAY_ABBR = {"пн": 0, "вт": 1, "ср": 2, "чт": 3, "пт": 4, "сб": 5, "вс": 6}
_WEEKDAY_GENITIVE = [
    "понедельника",
    "вторника",
    "среды",
    "четверга",
    "пятницы",
    "субботы",
    "воскресенья",
]
_WEEKDAY_ACCUSATIVE = [
    "понедельник",
    "вторник",
    "среду",
    "четверг",
    "пятницу",
    "субботу",
    "воскресенье",
]

# The case a preposition gives the number after it.
_PREPOSITION_CASE = {
    **dict.fromkeys(
        (
            "от",
            "до",
            "с",
            "со",
            "около",
            "после",
            "из",
            "без",
            "для",
            "кроме",
            "более",
            "менее",
            "свыше",
            "больше",
            "меньше",
            "у",
            "вместо",
            "возле",
            "начиная",
        ),
        "g",
    ),
    **dict.fromkeys(("к", "ко", "благодаря", "согласно"), "d"),
    **dict.fromkeys(("в", "во", "на", "за", "через", "про", "спустя"), "a"),
    **dict.fromkeys(("о", "об", "обо", "при"), "p"),
    **dict.fromkeys(("между", "перед", "над", "под"), "i"),
}
# Words after which a date is named, not placed: "Сегодня 1 декабря" → "первое декабря".
_DATE_NOMINATIVE = {"сегодня", "завтра", "вчера", "послезавтра", "позавчера"}

# Nouns whose gender a number before them takes, by the start of the word.
_FEMININE = (
    "минут",
    "секунд",
    "недел",
    "ноч",
    "процедур",
    "копе",
    "тысяч",
    "таблетк",
    "капсул",
    "ампул",
    "зон",
    "част",
    "порци",
    "сесси",
    "консультаци",
    "запис",
    "смен",
    "очеред",
    "женщин",
    "девочк",
    "доч",
    "клиник",
    "поликлиник",
    "палат",
    "категори",
    "строк",
    "бутылк",
    "ложк",
    "доз",
    "инъекци",
    "штук",
    "сотн",
    "проекци",
    "попытк",
    "услуг",
    "скидк",
)
_NEUTER = (
    "мест",
    "окн",
    "утр",
    "исследовани",
    "обследовани",
    "отделени",
    "посещени",
    "заключени",
    "направлени",
    "числ",
    "сообщени",
    "кресл",
    "письм",
    "евро",
    "занят",
    "окошк",
)

_ACRONYMS = {
    "МРТ": "эм-эр-тэ",
    "КТ": "ка-тэ",
    "УЗИ": "у-зи",
    "ЭКГ": "э-ка-гэ",
    "ЭЭГ": "э-э-гэ",
    "ЭхоКГ": "эхо-ка-гэ",
    "ФГДС": "эф-гэ-дэ-эс",
    "ПЭТ": "пэт",
    "ЛОР": "лор",
    "ОМС": "о-эм-эс",
    "ДМС": "дэ-эм-эс",
    "СМС": "эс-эм-эс",
    "SMS": "эс-эм-эс",
    "OK": "окей",
    "ОАК": "о-а-ка",
    "ЖКТ": "жэ-ка-тэ",
    "ЦНС": "цэ-эн-эс",
    "РФ": "эр-эф",
    "ВИЧ": "вич",
    "ОРВИ": "орви",
}
# The letters' names, to spell an abbreviation that has no vowel to read it by ("ГКБ").
_LETTER_NAMES = (
    "а бэ вэ гэ дэ е ё жэ зэ и и_краткое ка эль эм эн о пэ эр эс тэ у эф ха цэ че ша ща"
    " твёрдый_знак ы мягкий_знак э ю я"
)
_LETTERS = dict(
    zip(
        "АБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯ",
        (name.replace("_", " ") for name in _LETTER_NAMES.split()),
        strict=True,
    )
)
_VOWELS = set("АЕЁИОУЫЭЮЯ")
# Written abbreviations, expanded after dates and times are said (so "2026 г." is a year).
_ABBREVIATIONS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"(?<![\w.])т\.\s?е\."), "то есть"),
    (re.compile(r"(?<![\w.])т\.\s?к\."), "так как"),
    (re.compile(r"(?<![\w.])т\.\s?н\."), "так называемый"),
    (re.compile(r"\bи\s+т\.\s?д\."), "и так далее"),
    (re.compile(r"\bи\s+т\.\s?п\."), "и тому подобное"),
    (re.compile(r"\bи\s+др\."), "и другие"),
    (re.compile(r"(?<![\w.])напр\."), "например"),
    (re.compile(r"(?<![\w.])ул\."), "улица"),
    (re.compile(r"(?<![\w.])(?:просп\.|пр-т\.?)"), "проспект"),
    (re.compile(r"(?<![\w.])пер\."), "переулок"),
    (re.compile(r"(?<![\w.])наб\."), "набережная"),
    (re.compile(r"(?<![\w.])пл\."), "площадь"),
    (re.compile(r"(?<![\w.])б-р\.?"), "бульвар"),
    (re.compile(r"(?<![\w.])ш\.(?=\s)"), "шоссе"),
    (re.compile(r"(?<![\w.])д\.\s?(?=\d)"), "дом "),
    (re.compile(r"(?<![\w.])кв\.\s?(?=\d)"), "квартира "),
    (re.compile(r"(?<![\w.])корп\.\s?"), "корпус "),
    (re.compile(r"(?<![\w.])стр\.\s?(?=\d)"), "строение "),
    (re.compile(r"(?<![\w.])каб\.\s?"), "кабинет "),
    (re.compile(r"(?<![\w.])эт\.\s?(?=\d)"), "этаж "),
    (re.compile(r"(?<![\w.])оф\.\s?(?=\d)"), "офис "),
    (re.compile(r"(?<![\w.])г\.\s?(?=[А-ЯЁ])"), "город "),
    (re.compile(r"(?<![\w.])тел\.\s?"), "телефон "),
    (re.compile(r"(?<![\w.])д-р\b\.?"), "доктор"),
    (re.compile(r"(?<![\w.])проф\.\s?(?=[А-ЯЁ])"), "профессор "),
    (re.compile(r"(?<![\w.])им\.\s?(?=[А-ЯЁ])"), "имени "),
]
_SYMBOLS = {"&": " и ", "@": " собака ", "№": " номер "}


# ---------------------------------------------------------------------------- context


def _case_before(m: re.Match[str], default: str = "n") -> str:
    """The case the word before the match gives a number ("от" → genitive)."""
    before = re.search(r"([А-Яа-яЁё]+)[\s\u00a0]*$", m.string[: m.start()])
    if before is None:
        return default
    return _PREPOSITION_CASE.get(before.group(1).lower(), default)


def _word_before(m: re.Match[str]) -> str:
    before = re.search(r"([А-Яа-яЁё]+)[\s,\u00a0]*$", m.string[: m.start()])
    return before.group(1).lower() if before else ""


def _words_after(m: re.Match[str]) -> list[str]:
    """Up to two words after the match (skipping other numbers: "1-2 дня")."""
    return [w.lower() for w in re.findall(r"[А-Яа-яЁё]+", m.string[m.end() : m.end() + 40])[:2]]


def _singular(n: int) -> bool:
    return n % 10 == 1 and n % 100 != 11


def _gender_after(m: re.Match[str], n: int, case: str) -> str:
    """The gender of the counted noun after the number: from the lexicon, else its ending."""
    words = _words_after(m)
    second = re.match(r"\s*-\s*(\d+)", m.string[m.end() :])
    if second:  # "1-2 дня": the noun agrees with the second number
        n = int(second.group(1))
    for word in words:
        if word.startswith(_FEMININE):
            return "f"
        if word.startswith(_NEUTER):
            return "n"
    if not words:
        return "m"
    word = words[0]
    if _singular(n) and case in ("n", "a"):
        if word.endswith(("а", "я", "у", "ю")):
            return "f"
        if word.endswith(("о", "е")):
            return "n"
    elif _singular(n):
        if word.endswith(("ы", "и", "ой", "ей")):
            return "f"
    elif n % 10 == 2 and n % 100 != 12 and word.endswith(("ы", "и")):
        return "f"
    return "m"


def _agreeing(m: re.Match[str], n: int) -> str:
    """A number before a noun, in the case of its preposition or, after one of a feminine
    noun, of the noun's own ending ("займёт 1 минуту" → "одну")."""
    case = _case_before(m)
    gender = _gender_after(m, n, case)
    words = _words_after(m)
    if case == "n" and gender == "f" and _singular(n) and words:
        if words[0].endswith(("у", "ю")):
            case = "a"
        elif words[0].endswith(("ы", "и", "ой", "ей", "е")):
            case = "g"
    return cardinal(n, case, gender)


def _integer(text: str) -> int:
    return int(re.sub(r"[\s\u00a0]", "", text))


# ---------------------------------------------------------------------------- phones


def _split_run(run: str) -> list[str]:
    """A long run of digits in the groups it is said in: 1234567 → 123 45 67."""
    if len(run) <= 3:
        return [run]
    if len(run) == 4:
        return [run[:2], run[2:]]
    if len(run) == 5:
        return [run[:3], run[3:]]
    if len(run) == 6:
        return [run[:2], run[2:4], run[4:]]
    if len(run) == 7:
        return [run[:3], run[3:5], run[5:]]
    return [run[:3], *_split_run(run[3:])]


def _phone(m: re.Match[str]) -> str:
    raw = m.group(0)
    runs = re.findall(r"\d+", raw)
    if len(runs) == 1 and len(runs[0]) == 11 and runs[0][0] in "78":
        run = runs[0]
        runs = [run[0], run[1:4], run[4:7], run[7:9], run[9:]]
    elif len(runs) == 1 and len(runs[0]) == 10:
        run = runs[0]
        runs = [run[:3], run[3:6], run[6:8], run[8:]]
    groups = [g for run in runs for g in _split_run(run)]
    spoken = ", ".join(digit_group(g) for g in groups)
    return (" плюс " if raw.lstrip().startswith("+") else " ") + spoken + ", "


# ---------------------------------------------------------------------------- dates and times


def _day_case(m: re.Match[str]) -> str:
    if _word_before(m) in _DATE_NOMINATIVE:
        return "n"
    case = _case_before(m, "g")
    return "g" if case == "i" else case


def _date(day: int, month: int, year: int | None, case: str) -> str:
    words = f"{ordinal(day, case, 'n')} {MONTHS_GENITIVE[month - 1]}"
    if year is not None:
        words += f" {ordinal(year, 'g')} года"
    return words


def _day_month(m: re.Match[str]) -> str:
    day = int(m.group("d"))
    month = _MONTH_FORMS[m.group("month").lower().rstrip(".")]
    year = int(m.group("y")) if m.group("y") else None
    if not 1 <= day <= 31:
        return m.group(0)
    return f" {_date(day, month, year, _day_case(m))} "


def _numeric_date(m: re.Match[str]) -> str:
    day, month, year = int(m.group("d")), int(m.group("mo")), int(m.group("y"))
    if len(m.group("y")) == 2:
        year += 2000
    if not (1 <= day <= 31 and 1 <= month <= 12):
        return m.group(0)
    return f" {_date(day, month, year, _day_case(m))} "


_YEAR_WORDS = {"год": "n", "года": "g", "году": "p", "годом": "i"}
_YEAR_NOUN = {"n": "год", "a": "год", "g": "года", "d": "году", "p": "году", "i": "годом"}


def _year(m: re.Match[str]) -> str:
    year = int(m.group("y"))
    word = m.group("word").lower()
    if word in _YEAR_WORDS:
        case = _YEAR_WORDS[word]
        if word == "год" and _case_before(m) == "a":
            case = "a"
    else:  # "г.": the case comes from the preposition ("в 2026 г." → "в … году")
        case = _case_before(m)
        if case == "a" and _word_before(m) in ("в", "во"):
            case = "p"
    return f" {ordinal(year, case)} {_YEAR_NOUN[case]} "


def _month_year(m: re.Match[str]) -> str:
    return f"{m.group('month')} {ordinal(int(m.group('y')), 'g')} года"


def _minutes(minute: int, case: str) -> str:
    if minute == 0:
        return "ноль-ноль" if case in ("n", "a") else ""
    if minute < 10:
        return f"{cardinal(0, case)} {cardinal(minute, case)}"
    return cardinal(minute, case)


def _clock(hour: int, minute: int, case: str) -> str:
    words = f"{cardinal(hour, case)} {_minutes(minute, case)}"
    return words.strip()


def _time(m: re.Match[str]) -> str:
    hour, minute = int(m.group("h")), int(m.group("m"))
    if hour > 24 or minute > 59:
        return m.group(0)
    case = _case_before(m)
    if (hour, minute) in ((0, 0), (24, 0)) and case in ("n", "a"):
        return " полночь "
    return f" {_clock(hour, minute, case)} "


def _time_range(m: re.Match[str]) -> str:
    h1, m1, h2, m2 = (int(m.group(k)) for k in ("h1", "m1", "h2", "m2"))
    if h1 > 24 or h2 > 24 or m1 > 59 or m2 > 59:
        return m.group(0)
    lead = "" if _word_before(m) in ("с", "со") else "с "
    return f" {lead}{_clock(h1, m1, 'g')} до {_clock(h2, m2, 'g')} "


def _weekday_range(m: re.Match[str]) -> str:
    first = _WEEKDAY_ABBR[m.group("a").lower()]
    last = _WEEKDAY_ABBR[m.group("b").lower()]
    return f"с {_WEEKDAY_GENITIVE[first]} по {_WEEKDAY_ACCUSATIVE[last]}"


# ---------------------------------------------------------------------------- amounts


def _scaled(m: re.Match[str]) -> str:
    """ "4,5 тыс." → "4500", so the price and number rules read it."""
    factor = {"тыс": 1000, "млн": 10**6, "млрд": 10**9}[m.group("scale").lower()]
    whole = _integer(m.group("n"))
    frac = m.group("frac") or ""
    value = whole * factor + (int(frac) * factor // 10 ** len(frac) if frac else 0)
    return str(value)


_CURRENCIES: dict[str, tuple[Noun, Noun | None]] = {
    "₽": (RUBLE, KOPECK),
    "руб": (RUBLE, KOPECK),
    "р": (RUBLE, KOPECK),
    "rub": (RUBLE, KOPECK),
    "$": (DOLLAR, None),
    "usd": (DOLLAR, None),
    "долл": (DOLLAR, None),
    "€": (EURO, None),
    "eur": (EURO, None),
}


def _money(m: re.Match[str]) -> str:
    major, minor = _CURRENCIES[m.group("cur").lower().rstrip(".")]
    case = _case_before(m)
    whole = _integer(m.group("amount"))
    words = agree(whole, case, major)
    frac = m.group("frac")
    if frac:
        cents = int((frac + "0")[:2])
        if cents and minor is not None:
            words += " " + agree(cents, case, minor)
        elif cents:
            words = f"{decimal(whole, frac, case)} {major.few if case in ('n', 'a') else major.oblique[case][0]}"
    return f" {words} "


def _amount_with_word(m: re.Match[str]) -> str:
    """ "4 500 рублей": the noun is written; the number takes its case and gender."""
    return _agreeing(m, _integer(m.group("amount")))


def _fraction_noun(n: int, frac: str, noun: Noun, case: str) -> str:
    """ "2,5 кг" → "два с половиной килограмма", "1,5 ч" → "полтора часа"."""
    genitive = noun.few if case in ("n", "a") else noun.oblique["g"][0]
    if frac == "5" and n >= 1 and case in ("n", "a"):
        if n == 1:
            return ("полторы " if noun.gender == "f" else "полтора ") + noun.few
        return f"{cardinal(n, case, noun.gender)} с половиной {genitive}"
    return f"{decimal(n, frac, case)} {noun.oblique['g'][0]}"


def _measure(noun: Noun) -> Callable[[re.Match[str]], str]:
    def say(m: re.Match[str]) -> str:
        case = _case_before(m)
        n = _integer(m.group("n"))
        frac = m.groupdict().get("frac")
        if frac:
            return f" {_fraction_noun(n, frac.rstrip('0') or '0', noun, case)} "
        return f" {agree(n, case, noun)} "

    return say


def _unit(m: re.Match[str]) -> str:
    return _measure(UNITS[m.group("unit").lower()])(m)


def _suffix_ordinal(m: re.Match[str]) -> str:
    """ "3-й этаж", "на 2-м этаже", "1-го декабря", "в 90-х"."""
    n = int(m.group("n"))
    suffix = m.group("suffix").lower()
    gender, plural = "m", False
    if suffix in ("й", "ый", "ий"):
        case = "n"
    elif suffix == "ой":
        # "второй", "шестой" are masculine nominatives; "3-ой линии" a feminine oblique.
        case, gender = ("n", "m") if n % 10 in (2, 6, 7, 8) else ("g", "f")
    elif suffix in ("я", "ая"):
        case, gender = "n", "f"
    elif suffix in ("е", "ое", "ее", "ые", "ие"):
        words = _words_after(m)
        plural = bool(words) and words[0] in ("годы", "года")
        case, gender = "n", "n"
    elif suffix in ("го", "ого", "его"):
        case = "g"
    elif suffix in ("му", "ому", "ему"):
        case = "d"
    elif suffix in ("м", "ом", "ем", "ым", "им"):
        case = "p" if _case_before(m) in ("a", "p") else "i"
    elif suffix in ("ю", "ую"):
        case, gender = "a", "f"
    elif suffix in ("ей",):
        case, gender = "g", "f"
    else:  # х, ых, их
        case, plural = "p", True
    return ordinal(n, case, gender, plural)


def _number(m: re.Match[str]) -> str:
    whole = _integer(m.group("n"))
    frac = m.group("frac")
    if frac:
        return decimal(whole, frac, _case_before(m))
    return _agreeing(m, whole)


def _acronym(m: re.Match[str]) -> str:
    word = m.group(0)
    if word in _ACRONYMS:
        return _ACRONYMS[word]
    if re.fullmatch(r"[А-ЯЁ]{2,6}", word) and not _VOWELS & set(word):
        return "-".join(_LETTERS[c] for c in word)
    return word


_NUM = r"(?P<n>\d{1,3}(?:[ \u00a0]\d{3})+|\d+)"
_AMOUNT = r"(?P<amount>\d{1,3}(?:[ \u00a0]\d{3})+|\d+)"
_RULES: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str] | str]] = [
    # Phone numbers: +7 916 123-45-67, 8 (916) 123-45-67, 916 123 45 67, 123-45-67, 89161234567
    (re.compile(r"(?<![\w+])\+\d[\d\s()-]{8,}\d(?!\d)"), _phone),
    (re.compile(r"(?<![\w+])8[\s-]?\(?\d{3}\)?[\s-]?\d{3}[\s-]?\d{2}[\s-]?\d{2}(?!\d)"), _phone),
    (re.compile(r"(?<![\w+-])\(?\d{3}\)?[\s-]\d{3}[\s-]\d{2}[\s-]\d{2}(?!\d)"), _phone),
    (re.compile(r"(?<![\w+-])\d{3}-\d{2}-\d{2}(?![\d-])"), _phone),
    (re.compile(r"(?<![\w+])[78]?\d{10}(?!\d)"), _phone),
    # Dates: 1 декабря [2026 г.], 1-го дек., 01.12.2026, 2026-12-01
    (
        re.compile(
            r"(?<![\d,.])(?P<d>\d{1,2})(?:-?(?:го|е|ое|ого))?\s+"
            + _MONTH_RE
            + r"(?:\s+(?P<y>\d{4})(?:\s*(?:г\.|года)(?![а-яё]))?)?",
            re.I,
        ),
        _day_month,
    ),
    (
        re.compile(
            r"(?<![\d.,])(?P<d>\d{1,2})\.(?P<mo>\d{2})\.(?P<y>\d{4}|\d{2})(?![\d])"
            r"(?:\s*(?:г\.|года)(?![а-яё]))?"
        ),
        _numeric_date,
    ),
    (
        re.compile(r"(?<![\d.])(?P<y>\d{4})-(?P<mo>\d{2})-(?P<d>\d{2})(?!\d)"),
        _numeric_date,
    ),
    # Years: в 2026 году, 2026 г., в декабре 2026
    (
        re.compile(r"(?<![\d,.])(?P<y>[12]\d{3})\s*(?P<word>годом|году|года|год|г\.)(?![а-яё])"),
        _year,
    ),
    (
        re.compile(r"\b" + _ANY_MONTH_RE + r"\s+(?P<y>[12]\d{3})(?:\s*(?:г\.|года)(?![а-яё]))?"),
        _month_year,
    ),
    # Weekday ranges and times: Пн-Пт, 9:00-18:00, в 14:30
    (
        re.compile(r"(?<![\w])(?P<a>Пн|Вт|Ср|Чт|Пт|Сб|Вс)\s*-\s*(?P<b>Пн|Вт|Ср|Чт|Пт|Сб|Вс)(?!\w)"),
        _weekday_range,
    ),
    (
        re.compile(r"(?<![\w])(?P<a>Пн|Вт|Ср|Чт|Пт|Сб|Вс)\.?(?![\w])"),
        lambda m: WEEKDAYS[_WEEKDAY_ABBR[m.group("a").lower()]],
    ),
    (
        re.compile(
            r"(?<![\d:])(?P<h1>\d{1,2}):(?P<m1>\d{2})\s*-\s*(?P<h2>\d{1,2}):(?P<m2>\d{2})(?![\d:])"
        ),
        _time_range,
    ),
    (re.compile(r"(?<![\d:])(?P<h>\d{1,2}):(?P<m>\d{2})(?![\d:])"), _time),
]
_AMOUNT_RULES: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str] | str]] = [
    # "4,5 тыс." → "4500"
    (
        re.compile(
            r"(?<![\d,])(?P<n>\d{1,3}(?:[ \u00a0]\d{3})*|\d+)(?:,(?P<frac>\d{1,3}))?\s?(?P<scale>тыс|млн|млрд)\.?(?![а-яё])",
            re.I,
        ),
        _scaled,
    ),
    # Prices: 4 500 ₽, 4500 руб., 1 200,50 ₽, 4500 р., ₽4500, $450
    (
        re.compile(
            r"(?<![\d,])"
            + _AMOUNT
            + r"(?:[,.](?P<frac>\d{1,2}))?\s?(?P<cur>₽|руб\.?|р\.|(?i:rub|usd|eur)|долл\.?|\$|€)(?![\wа-яё])"
        ),
        _money,
    ),
    (
        re.compile(r"(?P<cur>[₽$€])\s?" + _AMOUNT + r"(?:[,.](?P<frac>\d{1,2}))?(?!\d)"),
        _money,
    ),
    (
        re.compile(r"(?<![\d,])(?P<n>\d+)\s?коп\.?(?![а-яё])"),
        _measure(KOPECK),
    ),
    (
        re.compile(r"(?<![\d,])" + _AMOUNT + r"(?=\s+(?:рубл|копе|доллар|евро))"),
        _amount_with_word,
    ),
    # Percentages, degrees, units
    (re.compile(r"(?<![\d,])" + _NUM + r"(?:,(?P<frac>\d+))?\s?%"), _measure(PERCENT)),
    (
        re.compile(r"(?<![\d,])" + _NUM + r"(?:,(?P<frac>\d+))?\s?°\s?C"),
        lambda m: _measure(DEGREE)(m).rstrip() + " Цельсия ",
    ),
    (
        re.compile(
            r"(?<![\d,])"
            + _NUM
            + r"(?:,(?P<frac>\d+))?\s?(?P<unit>кг|мкг|мг|г|см|мм|км|мл|м|л|мин|сек|ч)\.?(?![а-яёa-z])"
        ),
        _unit,
    ),
    # Ordinals written with their ending: 3-й, 2-м, 1-го, 90-х
    (
        re.compile(
            r"(?<![\d,])(?P<n>\d+)-(?P<suffix>ого|его|ому|ему|ый|ий|ой|ая|ое|ее|ые|ие|ым|им|ом|ем|ую|ых|их|ей|го|му|й|я|е|м|ю|х)(?![а-яё])"
        ),
        _suffix_ordinal,
    ),
    # Any other number, with a decimal comma: 1,5 → "одна целая пять десятых"
    (re.compile(r"(?<![\d,])" + _NUM + r"(?:,(?P<frac>\d+))?(?![\d])"), _number),
]


# Abbreviations the rules read together with their dot; one that also ends the sentence
# keeps a full stop (its dot is doubled first, and the rule takes one).
_FINAL_ABBREVIATION = re.compile(
    r"(\d\s?(?:(?i:тыс|млн|млрд)\.?\s?)?(?i:руб|р|коп|долл|кг|мкг|мг|г|гг|см|мм|км|мл|м|л|мин|сек|ч|тыс|млн|млрд"
    r"|янв|февр?|мар|апр|июн|июл|авг|сент?|нояб?|окт|дек)\.|\bт\.\s?[дп]\.|\bи\s+др\.)"
    r"(?=\s*$|\s+[А-ЯЁA-Z«\"])"
)


class RussianNormalizer:
    language = "ru"

    def normalize(self, text: str) -> str:
        text = _FINAL_ABBREVIATION.sub(r"\1.", text)
        for symbol, words in _SYMBOLS.items():
            text = text.replace(symbol, words)
        for pattern, repl in _RULES:
            text = pattern.sub(repl, text)
        for pattern, full in _ABBREVIATIONS:
            text = pattern.sub(full, text)
        for pattern, repl in _AMOUNT_RULES:
            text = pattern.sub(repl, text)
        text = re.sub(r"(?<!\w)[А-ЯЁA-Z][А-ЯЁA-Zа-яё]{1,5}(?!\w)", _acronym, text)
        # An abbreviation's dot that no rule took is not said twice.
        return tidy(re.sub(r"(?<!\.)\.\.(?!\.)", ".", text))
