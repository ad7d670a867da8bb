"""Russian number words with case and gender (num2words), and nouns that agree with a number.

``case`` is one of ``n`` (nominative), ``g`` (genitive), ``d`` (dative), ``a`` (accusative),
``i`` (instrumental) and ``p`` (prepositional); ``gender`` is ``m``, ``f`` or ``n``. Numbers
count things, so the accusative is always the inanimate one ("на две минуты").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from num2words import num2words  # type: ignore[import-untyped]  # ships no type information

CASES = ("n", "g", "d", "a", "i", "p")

# "одна тысяча двести" is said "тысяча двести"; likewise "один миллион" is "миллион".
_LEADING_ONE = re.compile(
    r"^(?:одна|одной|одну|одною|один|одного|одному|одним|одном) (?=тысяч|миллион|миллиард)"
)


def cardinal(n: int, case: str = "n", gender: str = "m") -> str:
    """4500 -> "четыре тысячи пятьсот"; (4500, "g") -> "четырёх тысяч пятисот"."""
    if n < 0:
        return "минус " + cardinal(-n, case, gender)
    words = str(num2words(n, lang="ru", case=case, gender=gender, animate=False))
    return _LEADING_ONE.sub("", words)


def ordinal(n: int, case: str = "n", gender: str = "m", plural: bool = False) -> str:
    """(1, "g", "n") -> "первого"; (2026, "p") -> "две тысячи двадцать шестом"."""
    return str(
        num2words(
            n, lang="ru", to="ordinal", case=case, gender=gender, plural=plural, animate=False
        )
    )


def digit_group(group: str, case: str = "n") -> str:
    """A group of a phone number or a code: "045" -> "ноль сорок пять", "00" -> "ноль ноль"."""
    zeros = len(group) - len(group.lstrip("0"))
    rest = group[zeros:]
    words = [cardinal(0, case)] * zeros
    if rest:
        words.append(cardinal(int(rest), case))
    return " ".join(words)


def decimal(whole: int, fraction: str, case: str = "n") -> str:
    """(72, "5") -> "семьдесят две целых пять десятых"."""
    scale = ("десят", "сот", "тысячн", "десятитысячн")[min(len(fraction), 4) - 1]
    numerator = int(fraction[:4])
    head = cardinal(whole, case, "f") + " " + _agree(whole, case, _WHOLE)
    tail = cardinal(numerator, case, "f") + " " + _agree(numerator, case, _fraction_noun(scale))
    return f"{head} {tail}"


@dataclass(frozen=True, slots=True)
class Noun:
    """A counted noun: its gender and the forms a number takes it in.

    ``one``, ``few`` and ``many`` are the forms after 1, 2–4 and 5+ in the nominative
    ("рубль", "рубля", "рублей"); ``oblique`` gives (singular, plural) per other case.
    """

    gender: str
    one: str
    few: str
    many: str
    oblique: dict[str, tuple[str, str]]


def _agree(n: int, case: str, noun: Noun) -> str:
    """The noun's form after the number ``n`` in ``case``."""
    singular = n % 10 == 1 and n % 100 != 11
    if case in ("n", "a"):
        if singular:
            # The accusative singular of a feminine noun differs: "одну минуту".
            return noun.oblique["a"][0] if case == "a" else noun.one
        if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
            return noun.few
        return noun.many
    sg, pl = noun.oblique[case]
    return sg if singular else pl


def agree(n: int, case: str, noun: Noun) -> str:
    """The number and its noun: (21, "n", RUBLE) -> "двадцать один рубль"."""
    return f"{cardinal(n, case, noun.gender)} {_agree(n, case, noun)}"


def _masculine(one: str, few: str, many: str, dat: str, ins: str, prep: str) -> Noun:
    """A masculine noun; its plural oblique forms follow from the dative singular
    (рублю -> рублям, рублями, рублях; проценту -> процентам, процентами, процентах)."""
    plural = dat[:-1] + ("я" if dat.endswith("ю") else "а")
    return Noun(
        "m",
        one,
        few,
        many,
        {
            "g": (few, many),
            "d": (dat, plural + "м"),
            "a": (one, many),
            "i": (ins, plural + "ми"),
            "p": (prep, plural + "х"),
        },
    )


def _feminine(one: str, many: str) -> Noun:
    """A feminine noun in -а: копейка, копейки, копейке, копейку, копейкой; копейкам …"""
    stem = one[:-1]
    few = stem + ("и" if stem[-1] in "кгхжшчщ" else "ы")  # the spelling rule: копейки, минуты
    return Noun(
        "f",
        one,
        few,
        many,
        {
            "g": (few, many),
            "d": (stem + "е", stem + "ам"),
            "a": (stem + "у", many),
            "i": (stem + "ой", stem + "ами"),
            "p": (stem + "е", stem + "ах"),
        },
    )


RUBLE = _masculine("рубль", "рубля", "рублей", "рублю", "рублём", "рубле")
DOLLAR = _masculine("доллар", "доллара", "долларов", "доллару", "долларом", "долларе")
CENT = _masculine("цент", "цента", "центов", "центу", "центом", "центе")
PERCENT = _masculine("процент", "процента", "процентов", "проценту", "процентом", "проценте")
DEGREE = _masculine("градус", "градуса", "градусов", "градусу", "градусом", "градусе")
HOUR = _masculine("час", "часа", "часов", "часу", "часом", "часе")
KOPECK = _feminine("копейка", "копеек")
MINUTE = _feminine("минута", "минут")
SECOND = _feminine("секунда", "секунд")
EURO = Noun("n", "евро", "евро", "евро", {c: ("евро", "евро") for c in CASES[1:]})
_WHOLE = Noun(
    "f",
    "целая",
    "целых",
    "целых",
    {
        "g": ("целой", "целых"),
        "d": ("целой", "целым"),
        "a": ("целую", "целых"),
        "i": ("целой", "целыми"),
        "p": ("целой", "целых"),
    },
)


def _fraction_noun(stem: str) -> Noun:
    """десятая, сотая, тысячная: feminine adjectives agreeing with an unsaid "часть"."""
    return Noun(
        "f",
        stem + "ая",
        stem + "ых",
        stem + "ых",
        {
            "g": (stem + "ой", stem + "ых"),
            "d": (stem + "ой", stem + "ым"),
            "a": (stem + "ую", stem + "ых"),
            "i": (stem + "ой", stem + "ыми"),
            "p": (stem + "ой", stem + "ых"),
        },
    )


def _unit(stem: str, *, gen_plural: str | None = None) -> Noun:
    """килограмм, сантиметр, миллилитр: masculine, genitive plural -ов unless given."""
    return _masculine(
        stem, stem + "а", gen_plural or stem + "ов", stem + "у", stem + "ом", stem + "е"
    )


UNITS: dict[str, Noun] = {
    "кг": _unit("килограмм"),
    "г": _unit("грамм"),
    "мг": _unit("миллиграмм"),
    "мкг": _unit("микрограмм"),
    "см": _unit("сантиметр"),
    "мм": _unit("миллиметр"),
    "м": _unit("метр"),
    "км": _unit("километр"),
    "мл": _unit("миллилитр"),
    "л": _unit("литр"),
    "мин": MINUTE,
    "сек": SECOND,
    "ч": HOUR,
}
