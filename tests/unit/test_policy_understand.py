"""Reading one utterance in its context: an answer said as a question is an answer, and a
caller who would rather not say is not asked again for what the booking can do without."""

from __future__ import annotations

from datetime import date, time
from pathlib import Path

from policy_engine.script import load_script
from policy_engine.understand import Context, needs_llm, parse_utterance

SCRIPT = load_script(Path(__file__).parents[2] / "prompts" / "clinic")


def context(state: str, *expects: str, offered: tuple[time, ...] = ()) -> Context:
    return Context(
        state=state,
        expects=expects,
        question_text="",
        today=date(2026, 11, 23),
        offered=offered,
        caller_number="+15550001111",
        known={},
    )


def test_a_day_said_as_a_question_answers_the_date_question() -> None:
    heard = parse_utterance(
        "Would Saturday be possible?",
        context("ask_appointment_date", "appointment_date"),
        SCRIPT,
        "en",
    )
    assert heard.date == date(2026, 11, 28)
    assert not heard.question


def test_a_question_about_something_else_stays_a_question() -> None:
    heard = parse_utterance(
        "Where are you located?", context("ask_appointment_date", "appointment_date"), SCRIPT, "en"
    )
    assert heard.question


def test_a_time_said_as_a_question_answers_the_time_offer() -> None:
    offered = (time(8, 0), time(15, 0), time(19, 30))
    heard = parse_utterance(
        "Three o'clock?",
        context("offer_appointment_times", "appointment_time", offered=offered),
        SCRIPT,
        "en",
    )
    assert heard.time == time(15, 0)
    assert not heard.question


def test_a_declined_answer_needs_no_llm() -> None:
    ctx = context("ask_age_weight", "age", "weight_kg")
    heard = parse_utterance("I'm 52. I'd rather not say my weight.", ctx, SCRIPT, "en")
    assert heard.slots == {"age": 52}
    assert heard.declined
    assert not needs_llm(heard, ctx)


def test_the_number_called_from_said_with_one() -> None:
    heard = parse_utterance("Same one.", context("ask_phone", "phone"), SCRIPT, "en")
    assert heard.slots["phone"] == "+15550001111"
