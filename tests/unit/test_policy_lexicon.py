"""Every word the parsers listen for is data in lexicon.yaml: both clinics name the same tables,
a clinic whose file lacks one is refused at start-up, and the words of clock times, durations,
phone numbers, spelled names and questions are read from the file, in each clinic's language."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import date, time
from pathlib import Path
from typing import Any

import pytest
import yaml

from callkit.errors import ConfigError
from policy_engine import parsers as p
from policy_engine.lexicon import LexiconFile
from policy_engine.script import Script, load_script
from policy_engine.understand import Context, parse_utterance

PROMPTS = Path(__file__).parents[2] / "prompts"
EN = load_script(PROMPTS / "clinic")
RU = load_script(PROMPTS / "clinic_ru")
MONDAY = date(2026, 11, 23)

# The tables that hold what the parsers' grammar is made of: a clinic must name every one.
GRAMMAR_TABLES = [
    "interjections",
    "plus",
    "question_openers",
    "correction_contrasts",
    "after_name",
    "spelling_breaks",
    "next_one",
    "day_of_month",
    "clock_at",
    "oclock",
    "minutes_past",
    "minutes_to",
    "to_hour",
    "quarter",
    "half_to_hour",
    "hour_words",
    "one_oclock",
    "minute_words",
    "unit_then_number",
    "duration_halves",
    "one_of",
    "vague_counts",
    "since",
    "last",
    "start_of",
    "past_moments",
    "moment_words",
    "rough_durations",
    "single_units",
    "complaint_lead",
    "complaint_units",
    "complaint_openers",
    "not_a_date_after",
    "ago",
]


def _lexicon(clinic: str) -> dict[str, Any]:
    raw: dict[str, Any] = yaml.safe_load(
        (PROMPTS / clinic / "lexicon.yaml").read_text(encoding="utf-8")
    )
    return raw


def _with_lexicon(tmp_path: Path, clinic: str, edit: Callable[[dict[str, Any]], None]) -> Path:
    target = tmp_path / clinic
    shutil.copytree(PROMPTS / clinic, target)
    lexicon = _lexicon(clinic)
    edit(lexicon)
    (target / "lexicon.yaml").write_text(
        yaml.safe_dump(lexicon, allow_unicode=True), encoding="utf-8"
    )
    return target


def test_both_clinics_name_the_same_tables_and_every_grammar_table() -> None:
    english, russian = _lexicon("clinic"), _lexicon("clinic_ru")
    assert set(english) == set(russian)
    assert set(GRAMMAR_TABLES) <= set(english)
    # Each clinic's file in its own language: the Russian one has no English table.
    assert "en" not in _locales(russian)
    assert {"en", "ru"} <= _locales(english)


def _locales(node: Any) -> set[str]:
    """Every mapping key two letters long, at any depth: the locales a file has tables for."""
    if isinstance(node, dict):
        return {k for k in node if isinstance(k, str) and len(k) == 2} | {
            loc for v in node.values() for loc in _locales(v)
        }
    if isinstance(node, list):
        return {loc for v in node for loc in _locales(v)}
    return set()


@pytest.mark.parametrize("table", GRAMMAR_TABLES)
def test_a_lexicon_without_a_table_is_refused_at_start_up(tmp_path: Path, table: str) -> None:
    broken = _with_lexicon(tmp_path, "clinic_ru", lambda lexicon: lexicon.pop(table))
    with pytest.raises(ConfigError, match=rf"lexicon.yaml: {table}: Field required"):
        load_script(broken)


def test_the_english_clinic_is_refused_without_a_table_too(tmp_path: Path) -> None:
    broken = _with_lexicon(tmp_path, "clinic", lambda lexicon: lexicon.pop("minutes_to"))
    with pytest.raises(ConfigError, match=r"lexicon.yaml: minutes_to: Field required"):
        load_script(broken)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda lexicon: lexicon["single_units"]["ru"].append("сутки"),
            r"single_units: 'сутки' is not in duration_units",
        ),
        (
            lambda lexicon: lexicon["duration_units"]["ru"].update({"сутки": "fortnight"}),
            r"duration_units\.ru\.сутки: Input should be 'day', 'week', 'month' or 'year'",
        ),
        (
            lambda lexicon: lexicon["duration_halves"]["ru"].update({"полнедели": "half week"}),
            r"duration_halves\.ru\.полнедели: String should match pattern",
        ),
        (
            lambda lexicon: lexicon["minutes_past"].update({"ru": {"три четверти": 75}}),
            r"minutes_past\.ru\.три четверти: Input should be less than 60",
        ),
    ],
    ids=["unit-not-a-unit", "unknown-unit", "half-not-written", "minutes-past-an-hour"],
)
def test_a_table_that_the_parsers_cannot_read_is_refused(
    tmp_path: Path, edit: Callable[[dict[str, Any]], None], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_script(_with_lexicon(tmp_path, "clinic_ru", edit))


def test_the_file_schema_has_a_field_for_every_grammar_table() -> None:
    fields = LexiconFile.model_fields
    assert all(fields[t].is_required() for t in GRAMMAR_TABLES)


# ---------------------------------------------------------------- the words as the parsers read them


def _norm(script: Script, text: str, locale: str) -> str:
    return p.normalize(text, script.words, locale)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Quarter to four, please.", time(15, 45)),
        ("quarter past ten", time(10, 15)),
        ("half past nine", time(9, 30)),
        ("Three o'clock is fine.", time(15, 0)),
    ],
)
def test_english_clock_words(text: str, expected: time) -> None:
    assert p.parse_time(_norm(EN, text, "en"), EN.words) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Без четверти три.", time(14, 45)),
        ("В половине третьего.", time(14, 30)),
        ("Без пятнадцати час.", time(12, 45)),
        ("В час дня.", time(13, 0)),
        ("В десять часов тридцать минут.", time(10, 30)),
    ],
)
def test_russian_clock_words(text: str, expected: time) -> None:
    assert p.parse_time(_norm(RU, text, "ru"), RU.words) == expected


@pytest.mark.parametrize(
    ("script", "locale", "text", "expected"),
    [
        (EN, "en", "For a couple of weeks.", "couple of weeks"),
        (EN, "en", "Half a year.", "6 months"),
        (EN, "en", "Since the weekend.", "since the weekend"),
        (EN, "en", "Since the beginning of the month.", "since the start of the month"),
        (EN, "en", "Since this morning.", "since this morning"),
        (RU, "ru", "Полгода.", "6 months"),
        (RU, "ru", "Неделю.", "1 week"),
        (RU, "ru", "Месяца два.", "2 months"),
        (RU, "ru", "Уже пару недель.", "2 weeks"),
        (RU, "ru", "Вчера заболело.", "since вчера"),
        (RU, "ru", "Через неделю.", None),  # a day to come, not how long
    ],
)
def test_duration_words(script: Script, locale: str, text: str, expected: str | None) -> None:
    assert p.parse_duration(_norm(script, text, locale), script.words) == expected


def test_the_russian_clinic_reads_its_own_language_only() -> None:
    # English words live in the English clinic's file: the Russian clinic does not read them.
    assert p.parse_duration("For a couple of weeks.", RU.words) is None
    assert p.parse_duration("For a couple of weeks.", EN.words) == "couple of weeks"


def test_fillers_are_dropped_but_a_yes_made_of_them_is_kept() -> None:
    lex = EN.lexicons["en"]
    assert _norm(EN, "Um, my name's uh Tom.", "en") == "my name's Tom."
    for said in ("Uh huh.", "Mm hmm.", "mm-hmm"):
        assert p.parse_yes_no(_norm(EN, said, "en"), lex, EN.words) is True, said


def test_phone_numbers_said_with_plus() -> None:
    said = _norm(EN, "plus four four seven seven zero zero nine zero zero one two three", "en")
    assert p.parse_phone(said, "1", EN.words) == "+447700900123"
    said = _norm(
        RU, "плюс семь девятьсот шестнадцать сто двадцать три сорок пять шестьдесят семь", "ru"
    )
    assert p.parse_phone(said, "7", RU.words) == "+79161234567"


def test_spelled_names_and_names_before_here() -> None:
    assert p.parse_spelled_name("J O H N then S M I T H", EN.words) == "John Smith"
    assert p.parse_spelled_name("И В А Н и П Е Т Р О В", RU.words) == "Иван Петров"
    assert p.parse_name("Anna Kowalski speaking.", EN.words, expecting=False) == "Anna Kowalski"


def test_a_question_opened_with_and_or_so() -> None:
    lex = EN.lexicons["en"]
    assert p.is_question("And what time do you open.", lex)
    assert p.is_question("So how much is it.", lex)
    assert not p.is_question("So my knee hurts.", lex)


def _context(state: str, *expects: str, offered: tuple[time, ...] = ()) -> Context:
    return Context(
        state=state,
        expects=expects,
        question_text="",
        today=MONDAY,
        offered=offered,
        caller_number=None,
        known={},
    )


def test_in_a_week_is_a_day_and_how_long_it_has_hurt_is_none() -> None:
    ask_date = _context("ask_appointment_date", "appointment_date")
    assert parse_utterance("In a week.", ask_date, EN, "en").date == date(2026, 11, 30)
    heard = parse_utterance("It hurts since last Monday. Can I come in?", ask_date, EN, "en")
    assert heard.date is None
    # "2" in "for 2 weeks" is no 2 o'clock among the times offered.
    ask_time = _context("offer_appointment_times", "appointment_time", offered=(time(8), time(14)))
    assert parse_utterance("For 2 weeks.", ask_time, EN, "en").time is None
    assert parse_utterance("2, please.", ask_time, EN, "en").time == time(14)


def test_not_one_but_another_is_a_correction() -> None:
    ask_date = _context("ask_appointment_date", "appointment_date")
    heard = parse_utterance("Not Monday but Tuesday.", ask_date, EN, "en")
    assert heard.correction
    assert heard.date == date(2026, 11, 24)


def test_a_complaint_without_how_long_or_its_opener() -> None:
    said = "Well, my knee has been hurting for the past two weeks."
    assert p.symptom_phrase(_norm(EN, said, "en"), EN.words) == "my knee has been hurting"
    # The Russian clinic's complaint keeps the caller's words as they are.
    said = "Болит колено уже две недели."
    assert p.symptom_phrase(_norm(RU, said, "ru"), RU.words) == "Болит колено уже 2 недели"
