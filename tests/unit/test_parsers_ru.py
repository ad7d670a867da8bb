"""The policy engine's parsers in Russian, against the Russian clinic (prompts/clinic_ru): what
callers say as they say it, numbers as words included."""

from __future__ import annotations

from datetime import date, time
from pathlib import Path

import pytest

from policy_engine import parsers as p
from policy_engine.script import load_script

SCRIPT = load_script(Path(__file__).parents[2] / "prompts" / "clinic_ru")
RU = SCRIPT.lexicons["ru"]
WORDS = SCRIPT.words
MONDAY = date(2026, 11, 23)
OPENS = SCRIPT.schedule.earliest_opening


def norm(text: str) -> str:
    return p.normalize(text, WORDS, "ru")


def test_the_russian_clinic_is_in_roubles_moscow_time_and_russian() -> None:
    assert SCRIPT.locales == ("ru",)
    assert SCRIPT.default_locale == "ru"
    assert SCRIPT.clinic.currency == "RUB"
    assert SCRIPT.clinic.default_country_code == "7"
    assert SCRIPT.schedule.timezone == "Europe/Moscow"


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Меня зовут Иван Петрович Сидоров.", "Иван Петрович Сидоров"),
        ("Здравствуйте, меня зовут Елена Иванова, у меня болит спина.", "Елена Иванова"),
        ("Это Ольга Викторовна.", "Ольга Викторовна"),
        ("Иванова Мария Петровна", "Иванова Мария Петровна"),
        ("меня зовут анна сергеевна", "Анна Сергеевна"),  # as a recognizer may write it
        ("Зовут меня Пётр.", "Пётр"),
        ("Алло, да.", None),
    ],
)
def test_names_in_cyrillic_with_patronymics(text: str, name: str | None) -> None:
    assert p.parse_name(norm(text), WORDS, expecting=True) == name


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Завтра.", date(2026, 11, 24)),
        ("Послезавтра.", date(2026, 11, 25)),
        ("В четверг.", date(2026, 11, 26)),
        ("Первого декабря, если можно.", date(2026, 12, 1)),
        ("двадцать первого декабря", date(2026, 12, 21)),
        ("На следующей неделе во вторник.", date(2026, 12, 1)),
        ("В следующий вторник.", date(2026, 12, 1)),
        ("Через неделю.", date(2026, 11, 30)),
        ("Через три дня.", date(2026, 11, 26)),
        ("Пятого числа.", date(2026, 12, 5)),  # the 5th has passed this month
        ("1 декабря", date(2026, 12, 1)),
        ("Не знаю пока.", None),
    ],
)
def test_dates(text: str, expected: date | None) -> None:
    assert p.parse_date(norm(text), MONDAY, WORDS) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("В три часа дня.", time(15, 0)),
        ("В половине третьего.", time(14, 30)),
        ("Полвторого.", time(13, 30)),
        ("К девяти утра.", time(9, 0)),
        ("В 14:30.", time(14, 30)),
        ("В четырнадцать тридцать.", time(14, 30)),
        ("В десять часов тридцать минут.", time(10, 30)),
        ("В час дня.", time(13, 0)),
        ("Без пятнадцати три.", time(14, 45)),
        ("Без четверти десять.", time(9, 45)),
        ("В восемь вечера.", time(20, 0)),
        ("В два.", time(14, 0)),  # before opening: the afternoon
    ],
)
def test_clock_times(text: str, expected: time) -> None:
    assert p.parse_time(norm(text), WORDS, (), OPENS) == expected


OFFERED = (time(8, 0), time(14, 0), time(20, 30))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Первое.", time(8, 0)),
        ("Давайте второе.", time(14, 0)),
        ("Последнее.", time(20, 30)),
        ("Вечером.", time(20, 30)),
        ("Попозже.", time(20, 30)),
    ],
)
def test_picks_among_the_offered_times(text: str, expected: time) -> None:
    assert p.parse_time(norm(text), WORDS, OFFERED, OPENS) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Да.", True),
        ("Ага.", True),
        ("Угу.", True),
        ("Конечно.", True),
        ("Давайте.", True),
        ("Да, всё верно.", True),
        ("Не против.", True),  # a negative word that means yes
        ("Нет.", False),
        ("Не надо.", False),
        ("Нет, не нужно.", False),
        ("Нет, спасибо.", False),
        ("Неа.", False),
        ("Подумаю.", None),
    ],
)
def test_yes_and_no(text: str, expected: bool | None) -> None:
    assert p.parse_yes_no(norm(text), RU, WORDS) is expected


@pytest.mark.parametrize(
    ("text", "age", "weight"),
    [
        ("Мне сорок пять лет, вес семьдесят килограмм.", 45, 70.0),
        ("Сорок пять и восемьдесят.", 45, 80.0),
        ("Мне 30, вешу 65.", 30, 65.0),
        ("Возраст 52, вес около 90 кг.", 52, 90.0),
        ("Шестьдесят пять лет, семьдесят четыре килограмма.", 65, 74.0),
        ("Мне уже шестьдесят семь.", 67, None),
    ],
)
def test_ages_and_weights(text: str, age: int | None, weight: float | None) -> None:
    assert p.parse_age_weight(norm(text), WORDS) == (age, weight)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Уже две недели.", "2 weeks"),
        ("Недели три.", "3 weeks"),
        ("Где-то неделю.", "1 week"),
        ("Болит уже год.", "1 year"),
        ("Полгода.", "6 months"),
        ("Пару недель.", "2 weeks"),
    ],
)
def test_how_long(text: str, expected: str) -> None:
    assert p.parse_duration(norm(text), WORDS) == expected


def test_a_hyphenated_word_is_not_its_first_part() -> None:
    """ "Где-то неделю" answers how long; it asks nothing."""
    assert not p.is_question(norm("Где-то неделю."), RU)
    assert p.is_question(norm("Где вы находитесь"), RU)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("916 123 45 67", "+79161234567"),
        ("8 916 123-45-67", "+79161234567"),
        ("Девятьсот шестнадцать, сто двадцать три, сорок пять, шестьдесят семь.", "+79161234567"),
        (
            "Восемь девятьсот двадцать шесть пятьсот пятьдесят пять двенадцать тридцать четыре.",
            "+79265551234",
        ),
        ("девять один шесть один два три четыре пять шесть семь", "+79161234567"),
        (
            "Плюс семь девятьсот двадцать пять сто двадцать три сорок пять шестьдесят семь",
            "+79251234567",
        ),
        ("Мне сорок пять лет.", None),
    ],
)
def test_phone_numbers_said_as_words(text: str, expected: str | None) -> None:
    assert p.parse_phone(norm(text), SCRIPT.clinic.default_country_code, WORDS) == expected
