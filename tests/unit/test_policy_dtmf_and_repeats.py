"""Keys on the call path: a 0 keyed into a number is part of it, not a request for a person, and
keys are read by the parsers, never guessed at by the model. The script's graph run turn by
turn."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, TypeVar

import pytest
from pydantic import BaseModel

from callkit.contracts.dialog import Dtmf, Event, TransferAction, UserUtterance
from policy_engine.dialog.context import Deps
from policy_engine.graph import compile_graph
from policy_engine.script import Schedule, load_script
from policy_engine.session import Hold, Session
from policy_engine.turns import TurnRunner

SCRIPT = load_script(Path(__file__).parents[2] / "prompts" / "clinic")
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=SCRIPT.schedule.zone)
PHONE_QUESTION = SCRIPT.states["ask_phone"].say["en"]
PHONE_REPROMPT = SCRIPT.states["ask_phone"].reprompt["en"]
OFFER = SCRIPT.phrases["offer_person"]["en"]
KEYPAD = SCRIPT.phrases["keypad_phone"]["en"]
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
