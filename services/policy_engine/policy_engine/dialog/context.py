"""The run's context: the dependencies every turn shares, and the turn itself.

``Deps`` is fixed for the engine's lifetime (script, calendar, LLM, prompt, limits); a ``Turn``
is one event of one call: the session it changes, the clock's reading, where sentences go the
moment they are ready, and what the turn did (replies, actions, LLM use, transitions).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time as monotonic
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time

from callkit.contracts.dialog import Action
from policy_engine import render
from policy_engine.dialog.calendar import Calendar
from policy_engine.dialog.caller import caller_number
from policy_engine.dialog.llm import DialogLlm
from policy_engine.outcome import total_price
from policy_engine.script import Script, Study
from policy_engine.session import Sentence, Session
from policy_engine.understand import Heard

SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
Emit = Callable[[Sentence], Awaitable[None]]


@dataclass
class Deps:
    script: Script
    calendar: Calendar
    llm: DialogLlm | None
    system_prompt: str
    max_silences: int = 2
    answer_with_llm: bool = True
    # From the event's arrival: the LLM's work past this is dropped and the script goes on.
    llm_deadline_s: float = 2.0
    # A turn waiting on the LLM that has said nothing this long says an acknowledgement first.
    ack_after_s: float = 0.7


@dataclass
class Turn:
    """The run's context: the call, the clock, and where sentences go as they are ready."""

    deps: Deps
    session: Session
    now: datetime
    emit: Emit
    reply: list[Sentence] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)
    heard: Heard | None = None
    llm_calls: int = 0
    llm_wanted: bool = False  # the parsers alone did not understand (asked of the LLM if up)
    llm_failed: bool = False
    keypad: bool = False  # the event was keypad input
    aside: bool = False  # the caller asked or remarked something off the script
    transitions: list[tuple[str, str]] = field(default_factory=list)
    started: float = field(default_factory=monotonic.monotonic)  # the event's arrival
    acknowledged: bool = False  # the turn said its acknowledgement
    llm_late: bool = False  # the LLM passed the deadline: its result was dropped

    @property
    def script(self) -> Script:
        return self.deps.script

    @property
    def locale(self) -> str:
        return self.session.locale

    @property
    def today(self) -> date:
        return self.now.date()

    @property
    def caller_number(self) -> str | None:
        """The caller id as a number to call (E.164); None when it is withheld or no number."""
        return caller_number(self.session.caller, self.script.clinic.default_country_code)

    async def say(self, sentence: Sentence) -> None:
        """Say a sentence, unless this reply said it already (an answer to "how much is it?"
        followed by the question whose text holds the price)."""
        if any(said.text == sentence.text for said in self.reply):
            return
        self.reply.append(sentence)
        await self.emit(sentence)

    async def phrase(self, name: str, **values: str) -> None:
        template = self.script.phrases[name][self.locale]
        for sentence in sentences_of(template, {**self.values(), **values}):
            await self.say(
                Sentence(
                    text=sentence,
                    source="phrase",
                    cache_key=f"phrase.{name}.{self.locale}" if "{" not in template else None,
                    state=self.session.state,
                )
            )

    @contextlib.asynccontextmanager
    async def waiting_on_llm(self) -> AsyncIterator[asyncio.Timeout]:
        """Bound the LLM's share of the turn: the block is cancelled ``llm_deadline_s`` after
        the event came (``TimeoutError`` out of it; ``reschedule`` the yielded deadline once
        the caller hears the answer), and while it runs, the acknowledgement is said once
        ``ack_after_s`` has passed with nothing said."""
        loop = asyncio.get_running_loop()
        due = loop.time() + self.started + self.deps.llm_deadline_s - monotonic.monotonic()
        ack = None
        if self.deps.ack_after_s > 0 and not self.acknowledged:
            ack = asyncio.create_task(self._acknowledge_when_slow())
        try:
            async with asyncio.timeout_at(due) as deadline:
                yield deadline
        finally:
            if ack is not None:
                ack.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await ack

    async def _acknowledge_when_slow(self) -> None:
        await asyncio.sleep(self.started + self.deps.ack_after_s - monotonic.monotonic())
        if self.reply or self.acknowledged:
            return  # the caller is already hearing the turn
        self.acknowledged = True
        phrases = self.script.acknowledgements[self.locale]
        index = self.session.acknowledgements % len(phrases)
        self.session.acknowledgements += 1  # the next one is another phrase
        await self.say(
            Sentence(
                text=phrases[index],
                cache_key=f"ack.{index}.{self.locale}",
                source="ack",
                state=self.session.state,
            )
        )

    def enter(self, state_id: str) -> None:
        """Move the call to ``state_id``, counting the transition."""
        s = self.session
        if s.state != state_id:
            self.transitions.append((s.state, state_id))
            s.state = state_id

    # ------------------------------------------------------------ template values

    def study(self) -> Study | None:
        sid = self.session.slots.get("study_type")
        return self.script.catalogue.study(sid) if sid else None

    def total_price(self) -> float | None:
        return total_price(self.script, self.session.slots)

    def values(self, *, study: Study | None = None) -> dict[str, str | None]:
        """The placeholders' values; ``study`` stands in for the call's study while it has
        none (the one the symptoms point to, for a price asked early)."""
        s, script, loc = self.session, self.script, self.locale
        cur = script.clinic.currency
        study = self.study() or study
        total = self.total_price()
        day = (
            date.fromisoformat(s.slots["appointment_date"])
            if s.slots.get("appointment_date")
            else None
        )
        at = (
            time.fromisoformat(s.slots["appointment_time"])
            if s.slots.get("appointment_time")
            else None
        )
        offered = [time.fromisoformat(t) for t in s.offered_times]
        return {
            "client_name": s.slots.get("client_name"),
            "study_name": study.name[loc] if study else None,
            "study_name_cap": render.capitalized(study.name[loc]) if study else None,
            "price": render.spoken_price(study.price, cur, loc) if study else None,
            "prices_from": render.spoken_price(
                min(study.price for study in script.catalogue.studies), cur, loc
            ),
            "video_price": render.spoken_price(script.catalogue.video_conclusion.price, cur, loc),
            "total_price": render.spoken_price(total, cur, loc) if total is not None else None,
            "date": render.spoken_date(day, loc, self.today) if day else None,
            "time": render.spoken_time(at, loc) if at else None,
            "times": render.spoken_times(offered, loc) if offered else None,
            "address": script.clinic.address[loc],
            "clinic_phone": script.clinic.phone,
            "hours": script.clinic.hours[loc],
            "discount_percent": f"{script.catalogue.discount.percent:g}",
            "horizon_days": str(script.schedule.horizon_days),
            "clinic_name": script.clinic.name[loc],
            "agent_name": script.clinic.agent_name[loc],
            "phone_digits": (
                render.spoken_phone(s.slots["phone"], script.clinic.default_country_code, loc)
                if s.slots.get("phone")
                else None
            ),
            "call_reason": s.call_reason,
            "callback_when": s.callback_when,
        }


def sentences_of(template: str, values: dict[str, str | None]) -> list[str]:
    """The template's sentences with placeholders filled; a sentence whose value is not known
    yet is left out ("Nice to meet you, {client_name}." when the caller gave no name)."""
    out = []
    for part in SENTENCE_END.split(template.strip()):
        filled = render.fill(part, values)
        if filled:
            out.append(filled)
    return out
