"""No dead air: a turn waiting on a slow LLM says a prerendered acknowledgement first and then its
answer; a fast turn says none; past the deadline the LLM's result is dropped and the script goes
on. The engine on in-memory stores with a fake LLM that takes as long as it is told."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from policy_fakes import MemoryCalendar, MemoryPublisher, MemorySessions
from pydantic import BaseModel

from callkit.contracts.dialog import CallStarted, UserUtterance
from policy_engine.engine import DialogEngine
from policy_engine.metrics import PolicyMetrics
from policy_engine.script import load_script
from policy_engine.session import Sentence

ROOT = Path(__file__).parents[2]
SCRIPT = load_script(ROOT / "prompts" / "clinic")
ACKS = SCRIPT.acknowledgements["en"]
T = TypeVar("T", bound=BaseModel)
# Symptoms in words the lexicon lacks: the parsers leave them to the LLM.
UNUSUAL = "I keep seeing flashing lights."


class SlowLlm:
    """Answers like the model would, after ``delay_s``; records what was cancelled."""

    def __init__(self, delay_s: float, facts: dict[str, Any], answer: str = "") -> None:
        self.delay_s = delay_s
        self.facts = facts
        self.answer = answer
        self.calls = 0
        self.cancelled = 0

    async def extract(
        self,
        messages: Sequence[dict[str, Any]],
        schema: type[T],
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
    ) -> T:
        self.calls += 1
        try:
            await asyncio.sleep(self.delay_s)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        return schema.model_validate(
            {k: v for k, v in self.facts.items() if k in schema.model_fields}
        )

    async def stream(
        self,
        messages: Sequence[dict[str, Any]],
        *,
        max_tokens: int = 256,
        temperature: float = 0.3,
        kind: str = "chat",
    ) -> AsyncIterator[str]:
        self.calls += 1
        try:
            await asyncio.sleep(self.delay_s)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        for word in self.answer.split(" "):
            yield word + " "


class Heard:
    """The sentences of one turn as the SSE stream would send them, with when each came."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.sentences: list[tuple[float, Sentence]] = []

    async def __call__(self, sentence: Sentence) -> None:
        self.sentences.append((time.perf_counter() - self.started, sentence))

    @property
    def texts(self) -> list[str]:
        return [s.text for _, s in self.sentences]


def engine_with(llm: SlowLlm, *, ack_after_s: float, deadline_s: float) -> DialogEngine:
    return DialogEngine(
        SCRIPT,
        sessions=MemorySessions(),
        calendar=MemoryCalendar(SCRIPT.schedule),
        publisher=MemoryPublisher(),
        llm=llm,
        system_prompt="You are a clinic receptionist.",
        llm_deadline_s=deadline_s,
        ack_after_s=ack_after_s,
        clock=lambda: datetime.now(SCRIPT.schedule.zone),
        metrics=PolicyMetrics(),
    )


async def at_symptoms(engine: DialogEngine, call: str = "c1") -> None:
    await engine.handle(call, CallStarted(direction="inbound", caller="+15550001111"))
    await engine.handle(call, UserUtterance(text="My name is Helen Carter.", segment_id=0))


async def say(engine: DialogEngine, text: str, segment: int, call: str = "c1") -> Heard:
    heard = Heard()
    await engine.handle(call, UserUtterance(text=text, segment_id=segment), heard)
    return heard


async def test_a_slow_llm_turn_acknowledges_at_once_then_answers() -> None:
    llm = SlowLlm(0.4, {"symptoms": "flashing lights"})
    engine = engine_with(llm, ack_after_s=0.05, deadline_s=3.0)
    await at_symptoms(engine)
    heard = await say(engine, UNUSUAL, 1)
    at, first = heard.sentences[0]
    assert first.text in ACKS
    assert first.cache_key == f"ack.{ACKS.index(first.text)}.en"
    assert at < 0.3  # long before the model's answer
    assert heard.texts[1:] == ["How long has it been bothering you?"]
    assert heard.sentences[1][0] >= 0.4
    session = await engine.get("c1")
    assert session.slots["symptoms"] == "flashing lights"  # the model's reading was used
    assert [line.text for line in session.transcript][-1].startswith(first.text)
    assert engine.metrics.acknowledgements._value.get() == 1


async def test_a_fast_turn_says_no_acknowledgement() -> None:
    llm = SlowLlm(0.0, {"symptoms": "flashing lights"})
    engine = engine_with(llm, ack_after_s=0.2, deadline_s=3.0)
    await at_symptoms(engine)
    heard = await say(engine, UNUSUAL, 1)
    assert llm.calls == 1
    assert heard.texts == ["How long has it been bothering you?"]
    # A scripted turn never waits on the LLM, however small the threshold.
    scripted = engine_with(SlowLlm(5.0, {}), ack_after_s=0.001, deadline_s=3.0)
    await at_symptoms(scripted, "c2")
    heard = await say(scripted, "My left knee hurts.", 1, "c2")
    assert heard.texts == ["How long has it been bothering you?"]
    assert engine.metrics.acknowledgements._value.get() == 0


async def test_past_the_deadline_the_script_goes_on_without_the_llm() -> None:
    llm = SlowLlm(5.0, {"symptoms": "flashing lights"})
    engine = engine_with(llm, ack_after_s=0.05, deadline_s=0.3)
    await at_symptoms(engine)
    started = time.perf_counter()
    heard = await say(engine, UNUSUAL, 1)
    assert time.perf_counter() - started < 1.0
    assert heard.texts[0] in ACKS
    assert heard.texts[1:] == ["How long has it been bothering you?"]
    assert llm.cancelled == 1  # the model's work was dropped, not left running
    session = await engine.get("c1")
    assert session.slots["symptoms"] == "I keep seeing flashing lights"  # the caller's words
    assert engine.metrics.late._value.get() == 1
    assert engine.metrics.degraded._value.get() == 0


async def test_a_slow_free_answer_is_acknowledged_and_then_spoken() -> None:
    llm = SlowLlm(0.3, {}, answer="Yes, our staff are very friendly.")
    engine = engine_with(llm, ack_after_s=0.05, deadline_s=3.0)
    await at_symptoms(engine)
    heard = await say(engine, "Are your staff friendly?", 1)
    assert heard.texts[0] in ACKS
    assert heard.texts[1] == "Yes, our staff are very friendly."
    assert heard.texts[-1] == "What is bothering you?"  # then the question, again


async def test_a_free_answer_past_the_deadline_says_the_scripted_fallback() -> None:
    llm = SlowLlm(5.0, {}, answer="Yes, they are.")
    engine = engine_with(llm, ack_after_s=0.05, deadline_s=0.3)
    await at_symptoms(engine)
    heard = await say(engine, "Are your staff friendly?", 1)
    assert heard.texts[0] in ACKS
    assert heard.texts[1] == SCRIPT.phrases["cannot_answer"]["en"]
    assert "Yes, they are." not in heard.texts


async def test_acknowledgements_vary_and_never_come_twice_in_one_turn() -> None:
    llm = SlowLlm(0.25, {})  # the model finds nothing: the question is asked again
    engine = engine_with(llm, ack_after_s=0.05, deadline_s=3.0)
    await engine.handle("c1", CallStarted(direction="inbound", caller="+15550001111"))
    said = []
    for n in range(3):
        heard = await say(engine, "Hmm, well, let me think.", n)
        acks = [t for t in heard.texts if t in ACKS]
        assert len(acks) == 1
        assert heard.texts[0] == acks[0]
        said.append(acks[0])
    assert all(a != b for a, b in itertools.pairwise(said))
