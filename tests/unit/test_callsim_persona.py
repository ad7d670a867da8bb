"""Persona callers answer the question the agent asked, in their own manner, and judge the
outcome against their own facts."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest

from callkit.errors import ConfigError
from callsim.persona import Persona, PersonaSpec, offered_times, spoken_digits
from callsim.script import load_script

TODAY = date(2026, 12, 1)  # a Tuesday
GREETING = (
    "Hello! You've reached the RUMA Diagnostic Center, this is Anna speaking. "
    "May I have your name, please?"
)
TIMES = "On Tuesday, December 8 we have 8 AM, 2 PM or 7:30 PM. Which time suits you?"


def persona(facts: dict[str, Any] | None = None, **manner: Any) -> Persona:
    spec = PersonaSpec.model_validate(
        {
            "facts": {
                "client_name": "Helen Carter",
                "phone": "5551234567",
                "age": 62,
                "weight_kg": 70,
                "symptoms": "My lower back aches",
                **(facts or {}),
            },
            "manner": manner,
        }
    )
    return Persona(spec, "+15550001111", today=TODAY)


def test_answers_follow_the_question_not_the_order() -> None:
    p = persona()
    assert p.respond(GREETING).text == "My name is Helen Carter."
    # The agent asks the same again: the persona answers it again, it does not move on.
    assert p.respond("Sorry, could you tell me your name?").text == "My name is Helen Carter."
    assert p.respond("What kind of pain is it: sharp, dull or aching?").text == "It's aching."
    assert p.respond("Nice to meet you. What is bothering you?").text == "My lower back aches."
    reply = p.respond("For the scanner settings, may I have your age and weight?")
    assert reply.text == "I'm 62 years old. I weigh 70 kilos."
    assert p.respond("What phone number can we reach you on?").text == (
        "It's five five five, one two three, four five six seven."
    )


def test_the_keypad_when_offered() -> None:
    p = persona()
    reply = p.respond("Could you type your phone number on your phone's keypad?")
    assert reply.dtmf == "5551234567"
    assert not reply.parts
    # Without a number of its own it types the one it calls from.
    p = persona({"phone": None})
    assert p.respond("Could you type your phone number on your phone's keypad?").dtmf == (
        "5550001111"
    )
    # One that will not use the keypad says the number again.
    p = persona(keypad=False)
    reply = p.respond("Could you type your phone number on your phone's keypad?")
    assert reply.dtmf is None
    assert "five five five" in reply.text


def test_keypad_yes_no_answers_the_last_yes_no_question() -> None:
    p = persona({"visited_doctor": True, "video_conclusion": False})
    p.respond("Have you seen a doctor about it?")
    assert p.respond("Please press 1 for yes or 2 for no.").dtmf == "1"
    p.respond("We can also record a video conclusion. Would you like that?")
    assert p.respond("Please press 1 for yes or 2 for no.").dtmf == "2"


def test_spelling_the_name() -> None:
    p = persona()
    reply = p.respond("Could you spell your name for me, letter by letter?")
    assert reply.text == "H E L E N, C A R T E R."


def test_one_word_answers() -> None:
    p = persona({"days": ["Thursday"]}, brief=True)
    assert p.respond(GREETING).text == "Helen Carter."
    assert p.respond("Have you seen a doctor about it?").text == "No."
    assert p.respond("What day would suit you?").text == "Thursday."
    assert p.respond("May I have your age and weight?").text == "62, 70 kilos."


def test_hesitation_is_a_filler_and_a_real_pause() -> None:
    p = persona(hesitate=["appointment_date"], hesitation_pause_ms=900)
    reply = p.respond("What day would suit you?")
    assert reply.parts == ["Um, let me think.", "Tuesday, please."]
    assert reply.pause_ms == 900
    assert p.respond(TIMES).pause_ms == 0


def test_volunteering_later_answers_early() -> None:
    p = persona(
        {"symptoms_duration": "three weeks"},
        volunteer={"client_name": ["symptoms", "symptoms_duration"]},
    )
    reply = p.respond(GREETING)
    assert reply.parts == [
        "My name is Helen Carter.",
        "My lower back aches.",
        "For about three weeks.",
    ]
    # Asked anyway, it answers again.
    assert p.respond("How long has it been bothering you?").text == "For about three weeks."
    vague = persona({"symptoms_duration": "about a month"})
    assert vague.respond("How long has it been bothering you?").text == "For about a month."


def test_a_slip_corrected_at_the_next_answer() -> None:
    p = persona(correct={"fact": "age", "first": 52})
    reply = p.respond("For the scanner settings, may I have your age and weight?")
    assert reply.text == "I'm 52 years old. I weigh 70 kilos."
    reply = p.respond("Do you have a pacemaker, any metal implants, or could you be pregnant?")
    assert reply.parts == ["Sorry, I said that wrong before: I'm 62.", "No, none of those."]
    # Once: asked again, the true value.
    assert p.respond("Could you tell me your age?").text == "I'm 62 years old."
    assert p.expected()["slots"]["age"] == 62


def test_a_slip_corrected_in_the_same_breath() -> None:
    p = persona(
        {"days": ["Wednesday"]},
        correct={"fact": "appointment_date", "first": "Monday", "when": "same_breath"},
    )
    assert p.respond("What day would suit you?").text == "Monday. No, sorry, Wednesday, please."
    assert p.expected()["slots"]["appointment_date"] == "wednesday"


def test_choosing_among_the_offered_times() -> None:
    assert [t for _, t in offered_times(TIMES)] == ["08:00", "14:00", "19:30"]
    cases = {"first": "08:00", "last": "19:30", "second": "14:00", "afternoon": "14:00",
             "evening": "19:30", "2 PM": "14:00", "11 AM": "08:00"}  # fmt: skip
    for want, chosen in cases.items():
        p = persona({"time": want})
        p.respond(TIMES)
        assert p.time_chosen == chosen, want
    p = persona({"time": "2 PM"})
    assert p.respond(TIMES).text == "2 PM, please."


def test_a_refused_day_or_time_moves_to_the_next() -> None:
    p = persona({"days": ["Sunday", "Monday"]})
    assert p.respond("What day would suit you?").text == "Sunday, please."
    reply = p.respond("Sorry, we are closed on Sunday. Which day works for you?")
    assert reply.text == "Monday, please."
    p.respond(TIMES)
    assert p.time_chosen == "08:00"
    p.respond(
        "Sorry, that time has just been taken. We have 2 PM or 7:30 PM. Which one would you like?"
    )
    assert p.time_chosen == "14:00"


def test_a_wrong_read_back_is_refused_and_put_right() -> None:
    p = persona({"days": ["Tuesday"], "time": "2 PM"})
    p.respond("What day would suit you?")
    p.respond(TIMES)
    reply = p.respond("I'm holding Wednesday, December 9 at 2 PM for you. Does that work?")
    assert reply.text == "No, that's not right."
    assert p.respond("I'm holding Tuesday, December 8 at 2 PM for you. Does that work?").text == (
        "Yes, that works."
    )
    reply = p.respond(
        "So, Ellen Carter. That is an MRI of the spine on Tuesday, December 8 at 8 AM, $400 in "
        "total. Shall I confirm the booking?"
    )
    assert reply.text == "No, that's not right."
    assert p.respond("What should I change?").text == (
        "The time: I wanted 2 PM. My name: it's Helen Carter."
    )


def test_no_question_heard_asks_again_then_gives_up() -> None:
    p = persona()
    assert p.respond("One moment.").text == "Sorry, could you say that again?"
    assert not p.respond("Let me check.").hangup
    assert p.respond("Hmm.").hangup


def test_repeated_questions_are_counted_in_a_row() -> None:
    p = persona()
    for text in [GREETING, "Sorry, could you tell me your name?", "Sorry, could you tell me your name?",
                 "What is bothering you?", "What day would suit you?", "What day would suit you?"]:  # fmt: skip
        p.respond(text)
    assert p.repeats() == {
        "max_in_row": 3,
        "over_two": [{"ask": "client_name", "times": 3}],
        "most_asked": {"ask": "client_name", "times": 3},
    }
    p = persona()
    offer = "Would you like me to put you through to a colleague?"
    for text in ["What day would suit you?", offer] * 3:
        p.respond(text)
    assert p.repeats()["max_in_row"] == 1
    assert p.repeats()["most_asked"] == {"ask": "appointment_date", "times": 3}


def test_the_verdict_compares_every_slot_it_gave() -> None:
    p = persona({"days": ["Tuesday"], "time": "last", "video_conclusion": True})
    p.respond("What day would suit you?")
    p.respond(TIMES)
    right = {
        "client_name": "helen carter",
        "phone": "+15551234567",
        "age": 62,
        "weight_kg": 70.0,
        "appointment_date": "2026-12-08",
        "appointment_time": "19:30",
        "video_conclusion": True,
        "contraindications": False,
        "discount": False,
    }
    assert all(c["passed"] for c in p.checks("booked", right))
    wrong = {**right, "appointment_date": "2026-12-09", "age": 52}
    failed = {c["check"] for c in p.checks("booked", wrong) if not c["passed"]}
    assert failed == {"slots.appointment_date", "slots.age"}
    assert not p.checks("not_interested", right)[0]["passed"]
    tomorrow = persona({"days": ["tomorrow"]})
    tomorrow.respond("What day would suit you?")
    assert tomorrow.expected()["slots"]["appointment_date"] == "2026-12-02"


def test_spoken_digits_in_groups() -> None:
    assert spoken_digits("5551234567") == "five five five, one two three, four five six seven"
    assert spoken_digits("1234567") == "one two three four five six seven"


def test_a_persona_script_loads_and_a_mixed_one_is_refused(tmp_path: Path) -> None:
    good = tmp_path / "p.yaml"
    good.write_text(
        "caller: {voice: 'espeak:en-gb', codec: G722, speed: 0.8}\n"
        "persona:\n  facts: {client_name: Ann Lee, symptoms: My knee hurts}\n"
        "  manner: {brief: true}\n"
    )
    script = load_script(good)
    assert script.persona is not None
    assert script.persona.manner.brief
    assert script.caller.speed == 0.8
    bad = tmp_path / "bad.yaml"
    bad.write_text(good.read_text() + "turns: ['Hello']\n")
    with pytest.raises(ConfigError, match="either turns"):
        load_script(bad)
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text(good.read_text() + "  questions: [{pattern: x, ask: shoe_size}]\n")
    with pytest.raises(ConfigError, match="unknown ask"):
        load_script(unknown)


@pytest.mark.parametrize(
    "path", sorted((Path(__file__).parents[2] / "tests" / "calls").glob("*.yaml"))
)
def test_fixed_line_scripts_still_load(path: Path) -> None:
    script = load_script(path)
    assert script.persona is None
    assert script.turns or script.expect.status
