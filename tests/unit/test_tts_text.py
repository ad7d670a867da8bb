"""What the TTS gateway says aloud: sentence splitting and English normalization tables."""

from __future__ import annotations

import pytest

from callkit.errors import UnsupportedFormat
from tts_gateway.text import normalizer_for, split_sentences
from tts_gateway.text.numbers_en import cardinal, ordinal, year


@pytest.mark.parametrize(
    ("text", "sentences"),
    [
        ("Hello there. How are you?", ["Hello there.", "How are you?"]),
        (
            "Dr. Smith will see you. Please arrive early.",
            ["Dr. Smith will see you.", "Please arrive early."],
        ),
        (
            "The MRI costs $1,299.99. Shall I book it?",
            ["The MRI costs $1,299.99.", "Shall I book it?"],
        ),
        ("It takes 3.5 hours. Really!", ["It takes 3.5 hours.", "Really!"]),
        ("Come at 3:30 p.m. Monday, please.", ["Come at 3:30 p.m. Monday, please."]),
        ("Come at 3 p.m. Then call us.", ["Come at 3 p.m.", "Then call us."]),
        ("Bring your ID, e.g. a passport. Thanks.", ["Bring your ID, e.g. a passport.", "Thanks."]),
        ("Ask for J. Smith at reception.", ["Ask for J. Smith at reception."]),
        ("Wait... Are you sure? Yes!", ["Wait...", "Are you sure?", "Yes!"]),
        ("First line\nSecond line", ["First line", "Second line"]),
        ('He said "Hi." Then left.', ['He said "Hi."', "Then left."]),
        ("No trailing punctuation", ["No trailing punctuation"]),
        ("We open at 9. 30 people are waiting.", ["We open at 9.", "30 people are waiting."]),
    ],
)
def test_sentence_splitting(text: str, sentences: list[str]) -> None:
    assert split_sentences(text) == sentences


@pytest.mark.parametrize(
    ("n", "words"),
    [
        (0, "zero"),
        (7, "seven"),
        (13, "thirteen"),
        (21, "twenty-one"),
        (100, "one hundred"),
        (115, "one hundred fifteen"),
        (1000, "one thousand"),
        (1299, "one thousand two hundred ninety-nine"),
        (2_000_005, "two million five"),
        (-4, "minus four"),
    ],
)
def test_cardinals(n: int, words: str) -> None:
    assert cardinal(n) == words


@pytest.mark.parametrize(
    ("n", "words"),
    [
        (1, "first"),
        (2, "second"),
        (3, "third"),
        (5, "fifth"),
        (12, "twelfth"),
        (20, "twentieth"),
        (21, "twenty-first"),
        (23, "twenty-third"),
        (30, "thirtieth"),
        (101, "one hundred first"),
    ],
)
def test_ordinals(n: int, words: str) -> None:
    assert ordinal(n) == words


@pytest.mark.parametrize(
    ("n", "words"),
    [
        (2026, "twenty twenty-six"),
        (2005, "two thousand five"),
        (1999, "nineteen ninety-nine"),
        (1900, "nineteen hundred"),
        (1905, "nineteen oh five"),
    ],
)
def test_years(n: int, words: str) -> None:
    assert year(n) == words


EN = normalizer_for("en-US")


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        # phone numbers: digit by digit, in their groups
        ("Call 555-123-4567.", "Call five five five, one two three, four five six seven."),
        (
            "My number is (555) 123-4567",
            "My number is five five five, one two three, four five six seven",
        ),
        ("+1 555 123 4567", "plus one, five five five, one two three, four five six seven"),
        ("5551234567", "five five five, one two three, four five six seven"),
        # prices
        (
            "The MRI costs $1,299.99.",
            "The M R I costs one thousand two hundred ninety-nine dollars and ninety-nine cents.",
        ),
        ("It is $1.", "It is one dollar."),
        ("Price: 3500 ₽", "Price: three thousand five hundred rubles"),
        ("A video conclusion is 500 rubles", "A video conclusion is five hundred rubles"),
        ("€45.50 total", "forty-five euros and fifty cents total"),
        # times
        ("Come at 3:30 pm", "Come at three thirty PM"),
        ("at 15:00", "at three PM"),
        ("at 9:05 a.m.", "at nine oh five AM"),
        ("at 10am", "at ten AM"),
        ("at 12:00", "at noon"),
        ("at 3:00", "at three o'clock"),
        # dates
        ("on 2026-11-23", "on November twenty-third, twenty twenty-six"),
        ("on 11/23/2026", "on November twenty-third, twenty twenty-six"),
        ("on Nov 23rd", "on November twenty-third"),
        ("the 1st of March", "the first of March"),
        ("in 2026", "in twenty twenty-six"),
        # numbers, units, percentages
        ("I weigh 80 kg", "I weigh eighty kilograms"),
        ("1 kg", "one kilogram"),
        ("20% off", "twenty percent off"),
        ("2.5 mm", "two point five millimeters"),
        ("I am 42 years old", "I am forty-two years old"),
        # abbreviations and acronyms
        ("Dr. Smith, St. Mary's", "Doctor Smith, Saint Mary's"),
        ("12 Main St.", "twelve Main Street"),
        ("an MRI or CT scan", "an M R I or C T scan"),
        ("bring ID & referral", "bring I D and referral"),
        ("room No. 5", "room number five"),
    ],
)
def test_english_normalization(text: str, spoken: str) -> None:
    assert EN.normalize(text) == spoken


def test_unknown_language_is_refused_naming_the_supported_ones() -> None:
    with pytest.raises(
        UnsupportedFormat, match="no text normalizer for language 'xx'; supported: en"
    ):
        normalizer_for("xx")
