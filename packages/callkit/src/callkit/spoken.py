"""Numbers as people say them: "forty two" -> 42, "five five five one" -> "5551".

Shared by the ASR gateway (which writes finals with digits) and the policy engine (which must
also understand text that did not come through it).
"""

from __future__ import annotations

import re

SMALL = {
    "zero": 0,
    "oh": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
}
TENS = {
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
}
_NUMBER_WORDS = "|".join([*SMALL, *TENS, "hundred"])
NUMBER_PHRASE = re.compile(
    rf"\b(?:{_NUMBER_WORDS})(?:[\s-]+(?:and\s+)?(?:{_NUMBER_WORDS}))*\b", re.I
)


def _groups(words: list[str]) -> list[list[str]]:
    """Split number words into the numbers they say: "ten thirty" is 10 and 30, not 40."""
    groups: list[list[str]] = []
    last: str | None = None  # kind of the previous word in the current group
    for word in words:
        kind = (
            "tens"
            if word in TENS
            else "hundred"
            if word == "hundred"
            else "and"
            if word == "and"
            else "small"
        )
        starts_new = (
            not groups
            or (kind == "tens" and last in ("small", "tens"))
            or (kind == "small" and last == "small")
            or (kind == "small" and last == "tens" and SMALL[word] >= 10)
        )
        if starts_new:
            groups.append([])
        if kind != "and":
            groups[-1].append(word)
        last = kind if kind != "and" else last
    return [g for g in groups if g]


def _value(group: list[str]) -> int:
    current = 0
    for word in group:
        if word == "hundred":
            current = (current or 1) * 100
        else:
            current += SMALL.get(word, 0) + TENS.get(word, 0)
    return current


def words_to_number(phrase: str) -> int | None:
    """ "forty two" -> 42, "one hundred and twenty" -> 120; None if it is not one number."""
    words = re.split(r"[\s-]+", phrase.lower().strip())
    if not words or any(
        w not in SMALL and w not in TENS and w not in ("hundred", "and") for w in words
    ):
        return None
    groups = _groups(words)
    return _value(groups[0]) if len(groups) == 1 else None


def digits_run(phrase: str) -> str | None:
    """ "five five five one two three" -> "555123" when every word is a single digit."""
    words = re.split(r"[\s,-]+", phrase.lower().strip())
    if len(words) >= 3 and all(w in SMALL and SMALL[w] < 10 for w in words):
        return "".join(str(SMALL[w]) for w in words)
    return None


def numbers_to_digits(text: str) -> str:
    """Every spoken number or digit run in ``text`` written with digits."""

    def spoken(m: re.Match[str]) -> str:
        phrase = m.group(0)
        run = digits_run(phrase)
        if run is not None:
            return run
        words = re.split(r"[\s-]+", phrase.lower().strip())
        return " ".join(str(_value(g)) for g in _groups(words))

    return NUMBER_PHRASE.sub(spoken, text)
