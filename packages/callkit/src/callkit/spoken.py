"""Numbers as people say them, written with digits: "forty two" -> 42, "five five five one" ->
"5551", "сорок пять" -> 45.

Shared by the ASR gateway (which writes finals with digits), the policy engine (which must also
understand text that did not come through it) and callsim's word error rate. The conversion
itself is the maintained libraries': ``text2num`` for English (and the other languages it
knows), ``number-parser`` for Russian, which text2num lacks. What stays here is what a phone
call adds to them:

- digits said one by one are one run of digits ("five five five one" -> "5551", "девять один
  шесть" -> "916"), as a phone number is read;
- English "oh" is a zero only among digits ("seven oh seven"): "Oh, my name is Anna" keeps it;
- text2num leaves a lone "zero", "one" or "two" a word, so that "no one told me" and "the first
  one" stay words; "two" is always a number, "zero" too, and "one" where it counts or tells the
  time ("at one", "one o'clock", "one week").
"""

from __future__ import annotations

import re

# Neither library ships type hints.
from number_parser import parse as _parse_number_words  # type: ignore[import-untyped]
from number_parser import parse_number as _parse_number
from text_to_num import alpha2digit, text2num  # type: ignore[import-untyped]

DEFAULT_LOCALE = "en"
# The languages text2num converts, by their two-letter code.
TEXT2NUM_LANGUAGES = frozenset(["en", "fr", "es", "pt", "de", "nl", "da", "it"])
# Languages number-parser converts well where text2num has none.
NUMBER_PARSER_LANGUAGES = frozenset(["ru"])

_EN_DIGITS = {
    "zero": "0",
    "oh": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
}
_EN_DIGIT = rf"(?:{'|'.join(_EN_DIGITS)}|\d)"
# "double five" (as the British read a number) is "five five".
_DOUBLE = re.compile(rf"(?i)\b(double|triple)[\s-]+({_EN_DIGIT})\b")
# "oh" with a digit before it, or two after it ("oh seven seven"), is a zero.
_OH = re.compile(r"(?i)\boh\b")
_DIGIT_BEFORE = re.compile(rf"(?i)\b{_EN_DIGIT}[\s,-]+$")
_TWO_DIGITS_AFTER = re.compile(rf"(?i)^[\s,-]+{_EN_DIGIT}[\s,-]+{_EN_DIGIT}\b")
# Three or more digits said one by one, apart by spaces or hyphens (a comma ends the run).
_EN_DIGIT_RUN = re.compile(
    r"(?i)\b(?:zero|one|two|three|four|five|six|seven|eight|nine)"
    r"(?:(?:\s+|-)(?:zero|one|two|three|four|five|six|seven|eight|nine)){2,}\b"
)
_DIGIT_RUN = re.compile(r"(?<![\d.,:])\d(?:[ -]\d){2,}(?![\d:]|[.,]\d)")
# What text2num keeps a word when alone, and when it is a number all the same.
_ZERO_OR_TWO = re.compile(r"(?i)\b(zero|two)\b(?!-)")
_ONE_COUNTED = re.compile(
    r"(?i)(?:(?<=\bat )|(?<=\bafter )|(?<=\bbefore )|(?<=\bby )|(?<=\buntil )|(?<=\btill )"
    r"|(?<=\bfrom )|(?<=\baround )|(?<=\babout )|(?<=\bpast )|(?<=\bto ))\bone\b(?! of\b)"
    r"|\bone\b(?=\s+(?:o'?clock|[ap]\.?m\b|minutes?\b|hours?\b|days?\b|weeks?\b|months?\b"
    r"|years?\b|kilos?\b|kilograms?\b|pounds?\b))"
)


def language_of(locale: str | None) -> str:
    """ "ru-RU" -> "ru"; no locale is the default's language."""
    return (locale or DEFAULT_LOCALE).replace("_", "-").split("-")[0].lower()


def _among_digits(m: re.Match[str], text: str) -> bool:
    before, after = text[: m.start()], text[m.end() :]
    return bool(_DIGIT_BEFORE.search(before) or _TWO_DIGITS_AFTER.search(after))


def _english(text: str) -> str:
    text = _DOUBLE.sub(
        lambda m: " ".join([m.group(2)] * (3 if m.group(1) == "triple" else 2)), text
    )
    text = _OH.sub(lambda m: "zero" if _among_digits(m, text) else m.group(0), text)
    text = _EN_DIGIT_RUN.sub(
        lambda m: "".join(_EN_DIGITS[w.lower()] for w in re.split(r"[\s-]+", m.group(0))), text
    )
    text = str(alpha2digit(text, "en"))
    text = _ZERO_OR_TWO.sub(lambda m: _EN_DIGITS[m.group(1).lower()], text)
    return _ONE_COUNTED.sub("1", text)


def numbers_to_digits(text: str, locale: str = DEFAULT_LOCALE) -> str:
    """Every spoken number or digit run in ``text`` written with digits, in ``locale``'s
    language ("en", "ru", "ru-RU"…); text in a language neither library knows is left as is."""
    language = language_of(locale)
    if language == "en":
        converted = _english(text)
    elif language in TEXT2NUM_LANGUAGES:
        converted = str(alpha2digit(text, language))
    elif language in NUMBER_PARSER_LANGUAGES:
        converted = str(_parse_number_words(text, language=language))
    else:
        return text
    return _DIGIT_RUN.sub(lambda m: re.sub(r"[ -]", "", m.group(0)), converted)


def words_to_number(phrase: str, locale: str = DEFAULT_LOCALE) -> int | None:
    """ "forty two" -> 42, "one hundred and twenty" -> 120, "сорок пять" -> 45; None if the
    phrase is not one number."""
    language = language_of(locale)
    phrase = phrase.strip()
    if not phrase:
        return None
    if language in NUMBER_PARSER_LANGUAGES:
        value = _parse_number(phrase, language=language)
        return int(value) if isinstance(value, int | float) else None
    if language not in TEXT2NUM_LANGUAGES:
        return None
    try:
        return int(text2num(phrase.lower(), language))
    except ValueError:
        return None
