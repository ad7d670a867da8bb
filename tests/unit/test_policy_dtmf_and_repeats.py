"""Keys and repeats on the call path: a 0 keyed into a number is part of it, not a request for a
person; a caller who declines the person after a question's fallbacks is never walked through
them again; within one call a question is left unanswered at most as often as its text,
reprompt and fallbacks allow. The script's graph run turn by turn, without an LLM."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, TypeVar

import pytest
from pydantic import BaseModel

from callkit.contracts.dialog import Dtmf, Event, HangupAction, TransferAction, UserUtterance
from policy_engine.dialog.context import Deps
from policy_engine.dialog.nodes import max_unanswered, strategy_in_use
from policy_engine.dialog.rollback import roll_back
from policy_engine.graph import compile_graph
from policy_engine.script import Schedule, load_script
from policy_engine.session import Hold, Sentence, Session
from policy_engine.turns import TurnRunner

SCRIPT = load_script(Path(__file__).parents[2] / "prompts" / "clinic")
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=SCRIPT.schedule.zone)
PHONE_QUESTION = SCRIPT.states["ask_phone"].say["en"]
PHONE_REPROMPT = SCRIPT.states["ask_phone"].reprompt["en"]
OFFER = SCRIPT.phrases["offer_person"]["en"]
KEYPAD = SCRIPT.phrases["keypad_phone"]["en"]
UNRESOLVED = SCRIPT.states["goodbye_unresolved"].say["en"]
TRANSFER = SCRIPT.states["transfer_to_human"].say["en"]
T = TypeVar("T", bound=BaseModel)
AGE_WEIGHT = SCRIPT.states["ask_age_weight"].say["en"]


class ReleasingCalendar:
    """The calendar of a call past its time offer: it only ever gives the held slot back."""

    def __init__(self, schedule: Schedule) -> None:
        self.schedule = schedule
        self.released: list[tuple[str, date, time, str]] = []

    async def release(self, modality: str, day: date, at: time, call_id: str) -> bool:
        self.released.append((modality, day, at, call_id))
        return True

    async def free(self, modality: str, day: date, now: datetime) -> list[time]:
        raise AssertionError("no time is offered after the time was confirmed")

    async def hold(self, modality: str, day: date, at: time, call_id: str) -> bool:
        raise AssertionError("no slot is held after the time was confirmed")

    async def book(self, modality: str, day: date, at: time, call_id: str, now: datetime) -> bool:
        raise AssertionError("these calls never reach the booking")

    async def owner(self, modality: str, day: date, at: time) -> str | None:
        raise AssertionError("not asked")


class OperatorMinded:
    """A model that takes whatever it is shown for a request for a person."""

    def __init__(self) -> None:
        self.calls = 0

    async def extract(
        self,
        messages: Sequence[dict[str, Any]],
        schema: type[T],
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
    ) -> T:
        self.calls += 1
        return schema.model_validate({"intent": "wants_human"})

    async def stream(
        self,
        messages: Sequence[dict[str, Any]],
        *,
        max_tokens: int = 256,
        temperature: float = 0.3,
        kind: str = "chat",
    ) -> AsyncIterator[str]:
        raise AssertionError("no free answer is wanted here")
        yield ""


class Call:
    """One call driven event by event, remembering what the agent said on each turn."""

    def __init__(self, session: Session, llm: OperatorMinded | None = None) -> None:
        self.calendar = ReleasingCalendar(SCRIPT.schedule)
        deps = Deps(script=SCRIPT, calendar=self.calendar, llm=llm, system_prompt="")
        self.runner = TurnRunner(deps, compile_graph(SCRIPT), lambda: NOW)
        self.session = session
        self.replies: list[str] = []
        self.actions: list[object] = []
        self._segment = 0

    async def event(self, event: Event) -> str:
        """What the agent says to the event, its sentences joined."""
        self.session, turn = await self.runner.run(self.session, event, self._discard)
        assert turn is not None
        said = " ".join(s.text for s in turn.reply)
        self.replies.append(said)
        self.actions.extend(turn.actions)
        return said

    async def say(self, text: str) -> str:
        self._segment += 1
        return await self.event(UserUtterance(text=text, segment_id=self._segment))

    async def key(self, digits: str) -> str:
        return await self.event(Dtmf(digits=digits))

    @staticmethod
    async def _discard(sentence: object) -> None:
        return None


def booked_up_to(state: str, **extra: object) -> Session:
    """A call that answered everything before ``state`` and was just asked its question."""
    slots: dict[str, object] = {
        "client_name": "Irene Carter",
        "symptoms": "knee pain",
        "symptoms_duration": "a week",
        "pain_character": "sharp",
        "visited_doctor": False,
        "study_type": "mri_knee",
        "study_decision": True,
        "video_conclusion": False,
        "appointment_date": "2026-11-24",
        "appointment_time": "10:00",
        "time_confirmed": True,
    }
    if state == "ask_age_weight":
        slots["phone"] = "+15552525252"
    session = Session(
        session_id="call-1",
        caller="+15552525252",
        state=state,
        slots=slots,
        said=["greeting", "recommend_study", "announce_price"],
        asked={state: 1},
        hold=Hold(modality="mri", date="2026-11-24", time="10:00"),
    )
    return session.model_copy(update=extra)


# ------------------------------------------------------------------ a 0 in a number


async def test_a_0_keyed_while_the_phone_is_asked_is_no_request_for_a_person() -> None:
    call = Call(booked_up_to("ask_phone"))
    said = await call.key("0")
    assert said == PHONE_REPROMPT  # not a number yet: asked again, not transferred
    assert call.session.status is None
    assert not any(isinstance(a, TransferAction) for a in call.actions)


async def test_keys_are_never_left_to_the_model_to_read() -> None:
    llm = OperatorMinded()
    call = Call(booked_up_to("ask_phone"), llm)
    assert await call.key("0") == PHONE_REPROMPT
    assert llm.calls == 0
    assert call.session.status is None
    await call.say("Um, hold on.")  # words still go to the model, which takes them its way
    assert llm.calls == 1
    assert call.session.status == "transferred"


async def test_a_number_keyed_with_0s_in_it_is_the_phone() -> None:
    call = Call(booked_up_to("ask_phone"))
    said = await call.key("5550100200")
    assert call.session.slots["phone"] == "+15550100200"
    assert said == f"Thank you, I have 5 5 5, 0 1 0, 0 2 0 0. {AGE_WEIGHT}"


async def test_age_and_weight_keyed_apart_by_a_star() -> None:
    call = Call(booked_up_to("ask_age_weight"))
    await call.key("35*70")
    assert (call.session.slots["age"], call.session.slots["weight_kg"]) == (35, 70.0)
    assert call.session.status is None


@pytest.mark.parametrize("state", ["ask_client_name", "confirm_time", "check_contraindications"])
async def test_a_lone_0_outside_a_number_still_asks_for_a_person(state: str) -> None:
    session = booked_up_to(state)
    if state == "ask_client_name":
        session = Session(session_id="call-1", state=state, said=["greeting"], asked={state: 1})
    call = Call(session)
    said = await call.key("0")
    assert said == TRANSFER
    assert call.session.status == "transferred"
    assert any(isinstance(a, TransferAction) for a in call.actions)


@pytest.mark.parametrize(("key", "status"), [("1", "transferred"), ("2", "incomplete")])
async def test_the_offer_of_a_person_is_answered_on_the_keypad(key: str, status: str) -> None:
    call = Call(booked_up_to("ask_phone", misses={"ask_phone": 3}, asked={"ask_phone": 4}))
    call.session.person_offered = "ask_phone"
    call.session.unanswered = {"ask_phone": 3}
    await call.key(key)
    assert call.session.status == status


# ------------------------------------------------------------------ a person declined


async def test_a_caller_who_declines_a_person_is_not_asked_for_the_phone_again() -> None:
    call = Call(booked_up_to("ask_phone"))
    assert await call.say("Hang on.") == PHONE_REPROMPT
    assert await call.say("Sorry, I don't remember it.") == KEYPAD
    assert await call.say("Um.") == OFFER
    said = await call.say("No.")
    assert said == UNRESOLVED  # the call ends politely, the fallbacks do not start over
    assert call.session.status == "incomplete"
    assert call.session.final_state == "goodbye_unresolved"
    assert any(isinstance(a, HangupAction) for a in call.actions)
    assert not any(isinstance(a, TransferAction) for a in call.actions)
    # The held time is given back for other callers.
    assert call.calendar.released == [("mri", date(2026, 11, 24), time(10, 0), "call-1")]
    # After its first ask: the reprompt, the keypad and the offer, once each, and no more.
    asks = [t for t in call.replies if t in (PHONE_QUESTION, PHONE_REPROMPT, KEYPAD, OFFER)]
    assert len(asks) == max_unanswered(SCRIPT.states["ask_phone"])


async def test_a_number_said_with_the_no_to_a_person_is_taken() -> None:
    call = Call(booked_up_to("ask_phone"))
    for text in ("Hang on.", "Sorry, I don't remember it.", "Um."):
        await call.say(text)
    said = await call.say("No, it's 555 343 2121.")
    assert call.session.slots["phone"] == "+15553432121"
    assert said.endswith(AGE_WEIGHT)
    assert call.session.status is None


async def test_a_declined_person_for_a_question_the_booking_can_do_without_skips_it() -> None:
    call = Call(Session(session_id="call-1", state="ask_client_name", said=["greeting"]))
    call.session.asked = {"ask_client_name": 1}
    for text in ("Thank you for watching.", "See you in the next video.", "Hmm."):
        await call.say(text)
    assert call.replies[-1] == OFFER
    said = await call.say("No.")
    assert said == "What is bothering you?"  # the next question, without a name to greet
    assert "client_name" in call.session.skipped
    assert call.session.status is None


# ------------------------------------------------------------------ the call's budget


def test_a_question_the_call_left_unanswered_too_often_goes_to_its_last_fallback() -> None:
    phone = SCRIPT.states["ask_phone"]
    spent = {"ask_phone": max_unanswered(phone)}
    reached_again = Session(session_id="c", state="ask_phone", misses={}, unanswered=spent)
    failed_once = Session(
        session_id="c", state="ask_phone", misses={"ask_phone": 1}, unanswered=spent
    )
    assert strategy_in_use(phone, reached_again) is None  # the question itself, once
    assert strategy_in_use(phone, failed_once) == "offer_person"  # not its reprompt again
    fresh = Session(session_id="c", state="ask_phone", misses={"ask_phone": 1})
    assert strategy_in_use(phone, fresh) is None  # a first failure: the reprompt


async def test_a_question_reached_again_after_its_budget_is_spent_is_not_cycled_again() -> None:
    phone = SCRIPT.states["ask_phone"]
    # The call walked ask_phone's fallbacks before, got the number, and a change cleared it.
    session = booked_up_to("ask_phone", unanswered={"ask_phone": max_unanswered(phone)})
    call = Call(session)
    assert await call.say("Hmm.") == OFFER
    assert await call.say("No.") == UNRESOLVED


def test_an_ask_the_caller_cut_short_is_not_counted_against_the_question() -> None:
    reprompt = Sentence(text=PHONE_REPROMPT, state="ask_phone", source="reprompt")
    session = booked_up_to(
        "ask_phone",
        asked={"ask_phone": 2},
        misses={"ask_phone": 1},
        unanswered={"ask_phone": 1},
        last_reply=[reprompt],
    )
    after = roll_back(session, "Could you", SCRIPT.states)
    assert (after.misses["ask_phone"], after.unanswered["ask_phone"]) == (0, 0)
