"""Calling back and opting out, read from the caller's words: when to call back ("tomorrow after
six", "через два часа") relative to the clinic's clock, how the goodbye says it, and the
phrases that end any call with an opt-out."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import pytest

from policy_engine import parsers as p
from policy_engine.render import spoken_callback
from policy_engine.script import load_script
from policy_engine.understand import Context, needs_llm, parse_utterance

SCRIPT = load_script(Path(__file__).parents[2] / "prompts" / "clinic")
WORDS = SCRIPT.words
ZONE = SCRIPT.schedule.zone
# Monday 23 November 2026, nine in the morning in New York (UTC-5).
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=ZONE)
OPENS = SCRIPT.schedule.earliest_opening


def callback(text: str, locale: str = "en", now: datetime = NOW) -> p.Callback | None:
    norm = p.normalize(text, WORDS, locale)
    return p.parse_callback(norm, now, SCRIPT.lexicons[locale], WORDS, OPENS)


@pytest.mark.parametrize(
    ("text", "local", "said"),
    [
        ("Call me tomorrow after six.", "2026-11-24 18:00", "tomorrow after 6 PM"),
        ("Tomorrow after 6 pm, please.", "2026-11-24 18:00", "tomorrow after 6 PM"),
        ("Can you ring me tomorrow at 10:30?", "2026-11-24 10:30", "tomorrow at 10:30 AM"),
        ("Call me back in two hours.", "2026-11-23 11:00", "in 2 hours"),
        ("Try again in half an hour.", "2026-11-23 09:30", "in half an hour"),
        ("In about 20 minutes.", "2026-11-23 09:20", "in 20 minutes"),
        ("Call me back in an hour.", "2026-11-23 10:00", "in an hour"),
        ("After six.", "2026-11-23 18:00", "today after 6 PM"),
        # Said at nine in the morning, "after eight" is the evening.
        ("Call after eight.", "2026-11-23 20:00", "today after 8 PM"),
        ("Tomorrow evening.", "2026-11-24 17:00", "tomorrow after 5 PM"),
        ("Call me tonight.", "2026-11-23 18:00", "today after 6 PM"),
        ("Wednesday at 8 in the evening.", "2026-11-25 20:00", "on Wednesday, November 25 at 8 PM"),
        # A day alone: the clinic's opening hour that day, said as the day only.
        ("Call me on Friday.", "2026-11-27 08:00", "on Friday, November 27"),
        ("Next week.", "2026-11-30 08:00", "on Monday, November 30"),
    ],
)
def test_a_call_back_time_in_english(text: str, local: str, said: str) -> None:
    found = callback(text)
    assert found is not None
    assert found.at.astimezone(ZONE).strftime("%Y-%m-%d %H:%M") == local
    assert spoken_callback(found, "en", NOW.date()) == said


@pytest.mark.parametrize(
    ("text", "local", "said"),
    [
        ("Перезвоните завтра после шести.", "2026-11-24 18:00", "завтра после 18:00"),
        ("Завтра в шесть вечера.", "2026-11-24 18:00", "завтра в 18:00"),
        ("Позвоните в восемь вечера.", "2026-11-23 20:00", "сегодня в 20:00"),
        ("Перезвоните через час.", "2026-11-23 10:00", "через час"),
        ("Через два часа.", "2026-11-23 11:00", "через 2 часа"),
        ("Через полчаса.", "2026-11-23 09:30", "через полчаса"),
        ("Через пять минут.", "2026-11-23 09:05", "через 5 минут"),
        ("Во вторник вечером.", "2026-11-24 17:00", "завтра после 17:00"),
        ("В среду утром.", "2026-11-25 08:00", "в среду, 25 ноября после 8:00"),
        ("Перезвоните в четверг.", "2026-11-26 08:00", "в четверг, 26 ноября"),
    ],
)
def test_a_call_back_time_in_russian(text: str, local: str, said: str) -> None:
    found = callback(text, "ru")
    assert found is not None
    assert found.at.astimezone(ZONE).strftime("%Y-%m-%d %H:%M") == local
    assert spoken_callback(found, "ru", NOW.date()) == said


@pytest.mark.parametrize(
    "text",
    [
        "Call me back later.",
        "Not now, sorry.",
        "Later today maybe.",  # today without a time promises nothing
        "I'm driving right now.",
        "Перезвоните позже.",
        "Hello, good morning.",  # a greeting names no part of the day
    ],
)
def test_no_moment_named_is_no_call_back_time(text: str) -> None:
    locale = "ru" if any("а" <= c <= "я" for c in text.lower()) else "en"
    assert callback(text, locale) is None


def test_a_time_already_past_today_is_tomorrow() -> None:
    evening = datetime(2026, 11, 23, 19, 30, tzinfo=ZONE)
    found = callback("After six.", now=evening)
    assert found is not None
    assert found.at == datetime(2026, 11, 24, 18, 0, tzinfo=ZONE)
    assert spoken_callback(found, "en", evening.date()) == "tomorrow after 6 PM"


def test_a_day_and_time_already_past_is_no_call_back_time() -> None:
    assert callback("Today at 8 am.", now=datetime(2026, 11, 23, 9, 0, tzinfo=ZONE)) is None


def test_the_time_crosses_daylight_saving_in_the_clinics_zone() -> None:
    # New York leaves daylight saving on 1 November 2026: 18:00 is 22:00 UTC before, 23:00 after.
    before = datetime(2026, 10, 30, 9, 0, tzinfo=ZONE)
    found = callback("Call me tomorrow after six.", now=before)
    assert found is not None
    assert found.at.astimezone(UTC) == datetime(2026, 10, 31, 22, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "locale"),
    [
        ("Please don't call me again.", "en"),
        ("Remove me from your list.", "en"),
        ("Stop calling me.", "en"),
        ("Take me off your list, please.", "en"),
        ("I'm not interested, and don't call me back.", "en"),
        ("No. Do not call me again.", "en"),
        ("Не звоните мне больше.", "ru"),
        ("Удалите мой номер, пожалуйста.", "ru"),
        ("Больше не звоните.", "ru"),
        ("Мне больше не звоните, пожалуйста.", "ru"),
    ],
)
def test_opt_out_phrases(text: str, locale: str) -> None:
    assert "opt_out" in p.detect_intents(p.normalize(text, WORDS), SCRIPT.lexicons[locale])


@pytest.mark.parametrize(
    ("text", "locale"),
    [
        ("Call me back tomorrow.", "en"),
        ("I'm not interested, thanks.", "en"),
        ("Don't call me now, call me tomorrow.", "en"),
        ("No, I don't want the video.", "en"),
        ("Перезвоните завтра.", "ru"),
        ("Нет, не интересно.", "ru"),
    ],
)
def test_what_is_no_opt_out(text: str, locale: str) -> None:
    assert "opt_out" not in p.detect_intents(p.normalize(text, WORDS), SCRIPT.lexicons[locale])


# ------------------------------------------------------------------ "is now a good time?"


def opening(text: str, locale: str = "en") -> tuple[Any, set[str], p.Callback | None, bool]:
    ctx = Context(
        state="ask_good_time",
        expects=("good_time",),
        question_text="",
        today=NOW.date(),
        offered=(),
        caller_number=None,
        known={},
        now=NOW,
    )
    heard = parse_utterance(text, ctx, SCRIPT, locale)
    return heard.slots.get("good_time"), heard.intents, heard.callback, heard.greeting


@pytest.mark.parametrize(
    ("text", "locale", "good_time", "intent"),
    [
        ("Yes, go ahead.", "en", True, None),
        ("Sure, what is it about?", "en", True, None),
        ("Not now.", "en", False, None),
        ("Sorry, I'm busy.", "en", False, None),
        ("No.", "en", False, None),
        ("Tomorrow after six.", "en", False, None),  # a moment on its own: call then
        ("Hi. My back has been aching for two months.", "en", True, None),
        ("Can I book for tomorrow?", "en", True, None),
        ("No thanks.", "en", None, "not_interested"),
        ("No, I'm not interested.", "en", None, "not_interested"),
        ("Да, удобно.", "ru", True, None),
        ("Сейчас неудобно.", "ru", False, None),
        ("Нет, спасибо.", "ru", None, "not_interested"),
    ],
)
def test_the_answer_to_is_now_a_good_time(
    text: str, locale: str, good_time: bool | None, intent: str | None
) -> None:
    answer, intents, _, _ = opening(text, locale)
    assert answer is good_time
    if intent is not None:
        assert intent in intents


def test_a_no_with_a_moment_is_a_call_back_at_that_moment() -> None:
    answer, _, found, _ = opening("Not now, call me tomorrow after six.")
    assert answer is False
    assert found is not None
    assert found.at == datetime(2026, 11, 24, 18, 0, tzinfo=ZONE)


@pytest.mark.parametrize(("text", "locale"), [("Hello?", "en"), ("Hi!", "en"), ("Алло?", "ru")])
def test_a_greeting_answers_nothing_and_asks_nothing(text: str, locale: str) -> None:
    answer, intents, found, greeting = opening(text, locale)
    assert (answer, intents, found, greeting) == (None, set(), None, True)


def test_a_moment_said_while_booking_is_no_call_back() -> None:
    ctx = Context(
        state="ask_appointment_date",
        expects=("appointment_date",),
        question_text="",
        today=NOW.date(),
        offered=(),
        caller_number=None,
        known={},
        now=NOW,
    )
    heard = parse_utterance("Tomorrow at six would be good.", ctx, SCRIPT, "en")
    assert heard.callback is None
    assert heard.date == date(2026, 11, 24)
    assert heard.time == time(18, 0)


# ------------------------------------------------------------------ what the LLM is not asked


@pytest.mark.parametrize(
    ("state", "expects", "text"),
    [
        ("ask_good_time", ("good_time",), "Hello?"),
        ("ask_client_name", ("client_name",), "Hi!"),
        # The next question's answer: the model would only take it for this one's words.
        ("ask_symptoms", ("symptoms",), "About three weeks now."),
    ],
)
def test_what_the_llm_is_not_asked(state: str, expects: tuple[str, ...], text: str) -> None:
    ctx = Context(
        state=state,
        expects=expects,
        question_text="",
        today=NOW.date(),
        offered=(),
        caller_number=None,
        known={},
        now=NOW,
    )
    heard = parse_utterance(text, ctx, SCRIPT, "en")
    assert not needs_llm(heard, ctx)
    assert not any(slot in heard.slots for slot in expects)
