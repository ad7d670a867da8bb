"""Phone numbers in every locale, through libphonenumber: parsed for the clinic's country,
accepted when plausible (test numbers included), refused when no such number can exist, and read
back in the groups that country writes them in."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from policy_engine import parsers as p
from policy_engine.render import spoken_phone, spoken_price
from policy_engine.script import load_script

EN = load_script(Path(__file__).parents[2] / "prompts" / "clinic")


@pytest.mark.parametrize(
    ("said", "country_code", "e164"),
    [
        ("916 123 45 67", "7", "+79161234567"),  # Russia, without the trunk 8
        ("8 (916) 123-45-67", "7", "+79161234567"),
        ("07700 900123", "44", "+447700900123"),  # the UK's range for drama: possible, not valid
        ("07700 900123", "GB", "+447700900123"),
        ("555 123 4567", "1", "+15551234567"),  # fictional, and still a test number
        ("+44 20 7946 0958", "1", "+442079460958"),  # from abroad, with its own code
        ("123 456 7890", "1", None),  # no North American area code starts with 1
        ("123 45", "1", None),
    ],
)
def test_numbers_are_read_for_the_clinics_country(
    said: str, country_code: str, e164: str | None
) -> None:
    assert p.parse_phone(said, country_code, EN.words) == e164


def test_a_number_then_something_else_after_a_comma() -> None:
    assert p.parse_phone("555 123 4567, 45 years", "1", EN.words) == "+15551234567"


@pytest.mark.parametrize(
    ("e164", "country_code", "locale", "spoken"),
    [
        ("+15552525252", "1", "en", "5 5 5, 2 5 2, 5 2 5 2"),
        ("+79161234567", "7", "ru", "916, 123, 45, 67"),  # no trunk 8, groups as numbers
        ("+79160012345", "7", "ru", "916, 0 0 1, 23, 45"),  # a group starting with 0: digits
        ("+447700900123", "44", "en", "0 7 7 0 0, 9 0 0 1 2 3"),
        ("+79161234567", "1", "en", "7, 9 1 6, 1 2 3, 4 5, 6 7"),  # from abroad: its code too
    ],
)
def test_a_number_is_read_back_in_its_countrys_groups(
    e164: str, country_code: str, locale: str, spoken: str
) -> None:
    assert spoken_phone(e164, country_code, locale) == spoken


@pytest.mark.parametrize(
    ("amount", "said"),
    [(5500, "5500 рублей"), (1, "1 рубль"), (2, "2 рубля"), (21, "21 рубль"), (12, "12 рублей")],
)
def test_prices_in_roubles_agree_with_their_number(amount: int, said: str) -> None:
    assert spoken_price(amount, "RUB", "ru") == said


NOVEMBER_23 = date(2026, 11, 23)


@pytest.mark.parametrize(
    ("said", "expected"),
    [
        ("December the first", date(2026, 12, 1)),
        ("on the twenty first", date(2026, 12, 21)),  # the 21st of November has passed
        ("the 31st", date(2026, 12, 31)),  # November has no 31st: December's
        ("the thirty first", date(2026, 12, 31)),
    ],
)
def test_english_days_of_the_month(said: str, expected: date) -> None:
    assert p.parse_date(p.normalize(said, EN.words), NOVEMBER_23, EN.words) == expected


def test_while_times_are_offered_an_ordinal_picks_a_time_not_a_day() -> None:
    text = p.normalize("The third one.", EN.words)
    assert p.parse_date(text, NOVEMBER_23, EN.words, bare_day=False) is None
    assert p.parse_date(p.normalize("the 3rd", EN.words), NOVEMBER_23, EN.words) == date(
        2026, 12, 3
    )
