"""The repeat rule: no question is asked more than twice in a row; each further failure takes
the question's next fallback (spell, keypad, skip, a person), with the parsers and read-back
those need."""

from __future__ import annotations

from pathlib import Path

import pytest

from policy_engine import parsers as p
from policy_engine.dialog.nodes import strategy_in_use
from policy_engine.render import spoken_phone
from policy_engine.script import OPTIONAL_SLOTS, StateDef, load_script
from policy_engine.session import Session

SCRIPT = load_script(Path(__file__).parents[2] / "prompts" / "clinic")
QUESTIONS = [s for s in SCRIPT.states.values() if s.kind == "question"]


def prompts_after_failures(state: StateDef, failures: int) -> list[str]:
    """What the caller hears on each ask of ``state`` when every answer fails."""
    heard = []
    for misses in range(failures + 1):
        session = Session(session_id="c", state=state.id, misses={state.id: misses})
        strategy = strategy_in_use(state, session)
        heard.append(strategy or ("say" if misses == 0 else "reprompt"))
        if strategy in ("skip", "offer_person"):
            break  # the question is left or handed to a person
    return heard


@pytest.mark.parametrize("state", QUESTIONS, ids=[s.id for s in QUESTIONS])
def test_no_question_is_asked_a_third_time_in_a_row(state: StateDef) -> None:
    heard = prompts_after_failures(state, failures=8)
    assert heard[:2] == ["say", "reprompt"]
    assert heard[-1] in ("skip", "offer_person")
    assert len(heard) == len(set(heard)), heard  # each prompt once: never the same thing again


@pytest.mark.parametrize(
    ("state_id", "expected"),
    [
        ("ask_client_name", ["say", "reprompt", "spell", "offer_person"]),
        ("ask_symptoms_duration", ["say", "reprompt", "skip"]),
        ("ask_phone", ["say", "reprompt", "keypad", "offer_person"]),
        ("check_discounts", ["say", "reprompt", "keypad", "skip"]),
        ("ask_appointment_date", ["say", "reprompt", "offer_person"]),
    ],
)
def test_the_script_declares_what_changes_after_the_second_failure(
    state_id: str, expected: list[str]
) -> None:
    assert prompts_after_failures(SCRIPT.states[state_id], failures=8) == expected


def test_only_slots_a_booking_can_do_without_are_ever_skipped() -> None:
    for state in QUESTIONS:
        if "skip" in state.strategies:
            assert set(state.slots) <= OPTIONAL_SLOTS, state.id
    assert "skip" not in SCRIPT.states["ask_phone"].strategies
    assert "skip" not in SCRIPT.states["check_contraindications"].strategies


def test_without_a_declared_fallback_the_question_still_ends_in_skip_or_a_person() -> None:
    required = StateDef(id="q", kind="question", slots=["phone"])
    optional = StateDef(id="q", kind="question", slots=["symptoms_duration"])
    assert required.strategies == ["offer_person"]
    assert optional.strategies == ["skip"]


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("J-O-H-N, S-M-I-T-H", "John Smith"),
        ("It's S-A-R-A-H, M-I-T-C-H-E-L-L.", "Sarah Mitchell"),
        ("J O H N space S M I T H", "John Smith"),
        ("It is J O N.", "Jon"),
        ("L. I.", "Li"),
        ("Ж А Н Н А", "Жанна"),
        ("I said no", None),
        ("Thank you for watching.", None),
    ],
)
def test_a_spelled_name(text: str, name: str | None) -> None:
    assert p.parse_spelled_name(text, SCRIPT.words) == name


@pytest.mark.parametrize(
    ("e164", "spoken"),
    [
        ("+15552525252", "5 5 5, 2 5 2, 5 2 5 2"),
        ("+79161234567", "7, 9 1 6, 1 2 3, 4 5, 6 7"),  # from abroad: its own groups
        ("+1555123", "1 5 5, 5 1 2 3"),
    ],
)
def test_a_number_is_read_back_in_groups_of_digits(e164: str, spoken: str) -> None:
    assert spoken_phone(e164, "1") == spoken
