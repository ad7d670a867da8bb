"""Spoken numbers written with digits, as the ASR gateway, the policy engine and callsim's WER
read them: English (text2num), Russian (number-parser), and what a phone call adds."""

from __future__ import annotations

import pytest

from callkit.spoken import language_of, numbers_to_digits, words_to_number


@pytest.mark.parametrize(
    ("said", "written"),
    [
        # "Oh" is a sound, not a zero, outside a number.
        ("Oh, my name is Anna", "Oh, my name is Anna"),
        ("Oh, one more thing", "Oh, one more thing"),
        # "one" as a pronoun stays a word.
        ("no one told me", "no one told me"),
        ("the first one", "the first one"),
        ("one of them, please", "one of them, please"),
        # One number, not "1 thousand 200".
        ("one thousand two hundred", "1200"),
        ("one hundred and twenty dollars", "120 dollars"),
        ("I'm forty five and I weigh eighty kilos", "I'm 45 and I weigh 80 kilos"),
        ("ten thirty", "10 30"),
        ("I have two knees", "I have 2 knees"),
        # "one" that counts or tells the time is a number.
        ("at one", "at 1"),
        ("one o'clock", "1 o'clock"),
        ("in one hour", "in 1 hour"),
        # Digits said one by one are one run; a comma ends it.
        ("five five five one two three four five six seven", "5551234567"),
        ("five five five, oh one two", "555, 012"),
        ("seven oh seven", "707"),
        ("oh seven seven double oh, nine double oh one two three", "07700, 900123"),
        # Ordinals in a date become digits; a lone "first" stays for the parsers.
        ("on the twenty first", "on the 21st"),
        ("December the first", "December the first"),
        ("the 31st", "the 31st"),
        ("wait a second", "wait a second"),
    ],
)
def test_english_numbers(said: str, written: str) -> None:
    assert numbers_to_digits(said) == written
    assert numbers_to_digits(said, "en-GB") == written


@pytest.mark.parametrize(
    ("said", "written"),
    [
        ("сорок пять", "45"),
        ("Мне сорок пять лет, вес семьдесят килограмм.", "Мне 45 лет, вес 70 килограмм."),
        ("девятьсот шестнадцать сто двадцать три сорок пять шестьдесят семь", "916 123 45 67"),
        ("восемь девять один шесть один два три четыре пять шесть семь", "89161234567"),
        ("в четырнадцать тридцать", "в 14 30"),
        ("одна тысяча двести", "1200"),
        ("Алло, это Анна Сергеевна.", "Алло, это Анна Сергеевна."),
        ("Да, первое.", "Да, первое."),
    ],
)
def test_russian_numbers(said: str, written: str) -> None:
    assert numbers_to_digits(said, "ru") == written
    assert numbers_to_digits(said, "ru-RU") == written


def test_the_default_is_english_and_an_unknown_language_is_left_as_said() -> None:
    assert numbers_to_digits("forty two") == "42"
    assert numbers_to_digits("сорок пять") == "сорок пять"  # not read as English
    assert numbers_to_digits("forty two", "xx") == "forty two"
    assert language_of("ru_RU") == "ru"
    assert language_of(None) == "en"


def test_one_number_from_words() -> None:
    assert words_to_number("one hundred and twenty") == 120
    assert words_to_number("forty-two") == 42
    assert words_to_number("сорок пять", "ru") == 45
    assert words_to_number("banana") is None
    assert words_to_number("банан", "ru") is None
    assert words_to_number("") is None
