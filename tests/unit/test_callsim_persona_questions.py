"""A persona takes the clinic script's own English questions for what they ask."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from callsim.persona import QuestionRule, notes_of, question_of, table

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = yaml.safe_load((ROOT / "prompts" / "clinic" / "script.yaml").read_text("utf-8"))
VALUES = {
    "client_name": "Helen Carter",
    "study_name": "an MRI of the knee",
    "study_name_cap": "An MRI of the knee",
    "price": "$450",
    "video_price": "$50",
    "total_price": "$500",
    "date": "Tuesday, December 8",
    "times": "8 AM, 2 PM or 7:30 PM",
    "time": "2 PM",
    "address": "12 Harbor Street, second floor",
    "clinic_phone": "+1 555 010 2030",
    "horizon_days": "30",
    "discount_percent": "10",
    "phone_digits": "5 5 5, 1 2 3, 4 5 6 7",
    "call_reason": "about your request for an MRI of the knee",
}
#: Each question state of the script, and what a caller should take it to ask.
STATE_ASKS = {
    "ask_client_name": "client_name",
    "ask_good_time": "good_time",
    "ask_contact_name": "client_name",
    "ask_symptoms": "symptoms",
    "ask_symptoms_duration": "symptoms_duration",
    "ask_pain_character": "pain_character",
    "ask_visited_doctor": "visited_doctor",
    "ask_study_request": "study_requested",
    "ask_study_decision": "study_decision",
    "offer_video_conclusion": "video_conclusion",
    "ask_appointment_date": "appointment_date",
    "offer_appointment_times": "appointment_time",
    "confirm_time": "time_confirmed",
    "ask_phone": "phone",
    "ask_age_weight": "age_weight",
    "check_contraindications": "contraindications",
    "check_discounts": "discount",
    "confirm_appointment": "confirm_booking",
    "ask_correction": "correction",
}
PHRASE_ASKS = {
    "spell_name": "spell_name",
    "keypad_phone": "keypad_phone",
    "keypad_yes_no": "keypad_yes_no",
    "offer_person": "offer_person",
    "unclear_study": "study_requested",
}


def en(entry: dict[str, Any]) -> str:
    return str(entry["en"]).format(**VALUES)


def states_of(kind: str) -> list[str]:
    return [name for name, state in SCRIPT["states"].items() if state["kind"] == kind]


def test_every_question_state_of_the_script_is_known() -> None:
    assert set(states_of("question")) == set(STATE_ASKS)


@pytest.mark.parametrize("state", sorted(STATE_ASKS))
def test_each_question_and_its_reprompt(state: str) -> None:
    entry = SCRIPT["states"][state]
    assert question_of(en(entry["say"])) == STATE_ASKS[state]
    assert question_of(en(entry["reprompt"])) == STATE_ASKS[state]


@pytest.mark.parametrize("phrase", sorted(PHRASE_ASKS))
def test_fallback_phrases(phrase: str) -> None:
    assert question_of(en(SCRIPT["phrases"][phrase])) == PHRASE_ASKS[phrase]


@pytest.mark.parametrize("state", states_of("announce") + states_of("exit"))
def test_announcements_ask_nothing(state: str) -> None:
    assert question_of(en(SCRIPT["states"][state]["say"])) is None


@pytest.mark.parametrize(
    "phrase",
    sorted(set(SCRIPT["phrases"]) - set(PHRASE_ASKS)),
)
def test_other_phrases_ask_nothing(phrase: str) -> None:
    assert question_of(en(SCRIPT["phrases"][phrase])) is None


def test_acknowledgements_ask_nothing() -> None:
    for text in SCRIPT["acknowledgements"]["say"]["en"]:
        assert question_of(text) is None


def test_the_last_question_of_a_turn_decides() -> None:
    states = SCRIPT["states"]
    turn = " ".join(
        en(states[s]["say"])
        for s in ("remind_documents", "provide_address", "provide_contacts", "confirm_appointment")
    )
    assert question_of(turn) == "confirm_booking"
    turn = (
        f"{en(states['announce_media_price']['say'])} {en(states['ask_appointment_date']['say'])}"
    )
    assert question_of(turn) == "appointment_date"
    turn = f"{en(states['greeting']['say'])} {en(states['ask_client_name']['say'])}"
    assert question_of(turn) == "client_name"
    # "Would you like that?" alone asks nothing: the sentence before it says what.
    assert question_of(en(states["offer_video_conclusion"]["say"])) == "video_conclusion"
    turn = f"{en(SCRIPT['phrases']['objection_price'])} {en(states['ask_study_decision']['say'])}"
    assert question_of(turn) == "study_decision"


def test_notes_of_refusals() -> None:
    phrases = SCRIPT["phrases"]
    assert notes_of(en(phrases["date_closed"])) == ["day_refused"]
    assert notes_of(en(phrases["day_full"])) == ["day_refused"]
    assert notes_of(en(phrases["date_out_of_range"])) == ["day_refused"]
    assert notes_of(en(phrases["time_taken"])) == ["time_refused"]
    assert notes_of(en(phrases["booking_failed"])) == ["time_refused"]
    assert notes_of(en(phrases["phone_read_back"])) == ["phone_read_back"]
    assert notes_of(en(SCRIPT["states"]["ask_phone"]["say"])) == []


def test_a_script_rule_comes_before_the_table() -> None:
    rules = table([QuestionRule(pattern=r"\bwhat do they call you\b", ask="client_name")])
    assert question_of("And what do they call you?", rules) == "client_name"
    assert question_of("And what do they call you?") is None


def test_a_rule_with_an_unknown_ask_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown ask"):
        QuestionRule(pattern="x", ask="favourite_colour")
