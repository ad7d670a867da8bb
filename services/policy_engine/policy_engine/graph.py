"""The script compiled into a LangGraph StateGraph.

One turn of the call is one run of the graph. It enters at ``understand`` (a caller utterance),
``silence`` or ``resume`` (the call just started), and walks the script's states: a question
whose slots are already known is skipped, an announcement speaks and moves on, and the walk
stops at the first question that still needs an answer (or at an exit). Nodes are small
functions that update the call's session; routers only read ``goto`` and return the next node.

The session is not LangGraph state: it lives in Redis (plain commands, no RedisJSON), is loaded
before the run and saved after it, and reaches the nodes through the run's context.
"""

from __future__ import annotations

import logging
import re
import time as _time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any, Literal, TypedDict, cast

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime

from callkit.errors import AgentError
from callkit.llm_client import LlmClient
from policy_engine import render
from policy_engine.calendar import Calendar
from policy_engine.outcome import total_price
from policy_engine.script import Script, StateDef
from policy_engine.session import Hold, Sentence, Session
from policy_engine.understand import (
    Context,
    Heard,
    fill_from_words,
    llm_read,
    merge_llm,
    needs_llm,
    parse_utterance,
    study_in,
)

log = logging.getLogger("policy_engine.graph")
EXIT_INTENTS = {
    "wants_human": "transfer_to_human",
    "wrong_number": "goodbye_wrong_number",
    "not_interested": "goodbye_not_interested",
    "call_back_later": "goodbye_callback",
}
# Words that must never reach the caller from the model: numbers (prices and times come from the
# catalogue) and talk about its own instructions.
_UNSAFE_ANSWER = re.compile(
    r"\d|\$|€|£|₽|\b(?:prompt|instruction|system message|as an ai|language model)\b", re.I
)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


class DialogState(TypedDict, total=False):
    """What flows between nodes within one turn."""

    entry: Literal["understand", "silence", "resume"]
    text: str
    goto: str
    steps: int


# A script state's node: reads the turn from the run's context, returns where to go next.
NodeFn = Callable[[DialogState, Runtime["Turn"]], Awaitable[DialogState]]


@dataclass
class Deps:
    script: Script
    calendar: Calendar
    llm: LlmClient | None
    system_prompt: str
    max_silences: int = 2
    answer_with_llm: bool = True


@dataclass
class Turn:
    """The run's context: the call, the clock, and where sentences go as they are ready."""

    deps: Deps
    session: Session
    now: datetime
    emit: Callable[[Sentence], Awaitable[None]]
    reply: list[Sentence] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)
    heard: Heard | None = None
    llm_calls: int = 0
    llm_failed: bool = False
    transitions: list[tuple[str, str]] = field(default_factory=list)

    @property
    def script(self) -> Script:
        return self.deps.script

    @property
    def locale(self) -> str:
        return self.session.locale

    @property
    def today(self) -> date:
        return self.now.date()

    async def say(self, sentence: Sentence) -> None:
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

    # ------------------------------------------------------------ template values

    def study(self) -> Any:
        sid = self.session.slots.get("study_type")
        return self.script.catalogue.study(sid) if sid else None

    def total_price(self) -> float | None:
        return total_price(self.script, self.session.slots)

    def values(self) -> dict[str, str | None]:
        s, script, loc = self.session, self.script, self.locale
        cur = script.clinic.currency
        study = self.study()
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
        }


def sentences_of(template: str, values: dict[str, str | None]) -> list[str]:
    """The template's sentences with placeholders filled; a sentence whose value is not known
    yet is left out ("Nice to meet you, {client_name}." when the caller gave no name)."""
    parts = _SENTENCE_END.split(template.strip())
    out = []
    for part in parts:
        filled = render.fill(part, values)
        if filled:
            out.append(filled)
    return out


def condition_holds(condition: str | None, slots: dict[str, Any]) -> bool:
    if condition is None:
        return True
    kind, slot = condition.split(":", 1)
    value = slots.get(slot)
    if kind == "filled":
        return value is not None
    if kind == "missing":
        return value is None
    if kind == "yes":
        return value is True
    return value is False  # "no"


def walk(script: Script, slots: dict[str, Any], said: list[str]) -> tuple[list[str], str | None]:
    """Walk the script from its start over what is known, saying and changing nothing.

    Returns the states passed and where the walk stops: the first question still open, the
    first announcement not yet made, or the exit the answers lead to (None at the end).
    """
    path: list[str] = []
    current: str | None = script.start
    while current is not None and current not in path:
        state = script.states[current]
        if state.kind == "end":
            return path, None
        if (
            state.kind == "exit"
            or (state.kind == "question" and any(slots.get(s) is None for s in state.slots))
            or (state.kind == "announce" and current not in said)
        ):
            return path, current
        path.append(current)
        current = next((tr.to for tr in state.transitions if condition_holds(tr.when, slots)), None)
    return path, None


def _turn(runtime: Runtime[Turn]) -> Turn:
    return runtime.context


# ------------------------------------------------------------------ entry nodes


async def understand(state: DialogState, runtime: Runtime[Turn]) -> DialogState:
    """Read the utterance (parsers, then the LLM if it can add something) and apply it."""
    t = _turn(runtime)
    s = t.session
    current = t.script.states.get(s.state)
    expects = tuple(current.slots) if current and current.kind == "question" else ()
    ctx = Context(
        state=s.state,
        expects=expects,
        question_text=(current.say.get(t.locale, "") if current else ""),
        today=t.today,
        offered=tuple(time.fromisoformat(x) for x in s.offered_times),
        caller_number=s.caller,
        known={k: v for k, v in s.slots.items() if v is not None},
    )
    heard = parse_utterance(state.get("text", ""), ctx, t.script, t.locale)
    t.heard = heard
    if t.deps.llm is not None and needs_llm(heard, ctx):
        t.llm_calls += 1
        facts = await llm_read(t.deps.llm, t.deps.system_prompt, heard, ctx)
        if facts is None:
            t.llm_failed = True
        else:
            merge_llm(heard, facts, ctx)
    fill_from_words(heard, ctx)
    s.silences = 0
    for intent, target in EXIT_INTENTS.items():
        if intent in heard.intents:
            return {"goto": target}
    await apply_heard(t, heard)
    if heard.question or "prompt_injection" in heard.intents or "objection_price" in heard.intents:
        return {"goto": "answer"}
    return {"goto": "resume"}


async def silence(state: DialogState, runtime: Runtime[Turn]) -> DialogState:
    t = _turn(runtime)
    t.session.silences += 1
    if t.session.silences > t.deps.max_silences:
        return {"goto": "goodbye_silence"}
    return {"goto": "resume"}


async def resume(state: DialogState, runtime: Runtime[Turn]) -> DialogState:
    """Continue where the call is, or at an earlier question the caller's changes reopened."""
    t = _turn(runtime)
    s = t.session
    if not s.state:
        s.state = t.script.start
    if t.script.states[s.state].kind in ("exit", "end"):
        return {"goto": s.state}
    path, stop = walk(t.script, s.slots, s.said)
    if stop is not None and stop != s.state and s.state not in path:
        # The caller's answers changed the way through the script (a correction, a cleared
        # date): go on from the first thing not yet done on the new way.
        return {"goto": stop}
    return {"goto": s.state}


async def answer(state: DialogState, runtime: Runtime[Turn]) -> DialogState:
    """Questions and remarks off the script: FAQ answers, objections, and free answers."""
    t = _turn(runtime)
    heard = t.heard
    assert heard is not None
    if "prompt_injection" in heard.intents:
        await t.phrase("off_topic")
    elif "objection_price" in heard.intents and t.study() is not None:
        await t.phrase("objection_price")
    elif heard.faq is not None:
        topic = t.script.faq[heard.faq]
        template = topic.say[t.locale]
        for text in sentences_of(template, t.values()) or []:
            await t.say(
                Sentence(
                    text=text,
                    source="faq",
                    state=t.session.state,
                    cache_key=f"faq.{heard.faq}.{t.locale}" if "{" not in template else None,
                )
            )
    elif heard.question and not heard.slots:
        await free_answer(t, heard.text)
    return {"goto": "resume"}


async def free_answer(t: Turn, question: str) -> None:
    """A short answer written by the LLM, streamed sentence by sentence and checked: it never
    states numbers (prices and times come from the catalogue) or talks about its instructions."""
    llm = t.deps.llm
    if llm is None or not t.deps.answer_with_llm:
        await t.phrase("cannot_answer")
        return
    facts = (
        f"Clinic: {t.script.clinic.name['en']}. "
        "Answer the caller's question in one short sentence, then stop. Do not mention "
        "prices, times, dates or numbers; do not give medical advice."
    )
    history = [
        {"role": "assistant" if line.role == "agent" else "user", "content": line.text}
        for line in t.session.transcript[-6:]
    ]
    messages = [
        {"role": "system", "content": t.deps.system_prompt},
        {"role": "system", "content": facts},
        *history,
        {"role": "user", "content": question},
    ]
    t.llm_calls += 1
    spoken = 0
    buffer = ""
    try:
        async for delta in llm.stream(messages, max_tokens=60, temperature=0.3, kind="answer"):
            buffer += delta
            *done, buffer = _SENTENCE_END.split(buffer)
            for sentence in done:
                if spoken < 2 and await _say_answer(t, sentence):
                    spoken += 1
        complete = re.search(r"[.!?]$", buffer.strip())
        if complete and spoken < 2 and await _say_answer(t, buffer):
            spoken += 1
    except AgentError as exc:
        t.llm_failed = True
        log.warning("LLM answer failed; saying the scripted fallback", extra={"code": exc.code})
    if spoken == 0:
        await t.phrase("cannot_answer")


async def _say_answer(t: Turn, sentence: str) -> bool:
    sentence = sentence.strip()
    if not sentence or _UNSAFE_ANSWER.search(sentence) or len(sentence) > 240:
        return False
    await t.say(Sentence(text=sentence, source="answer", state=t.session.state))
    return True


# ------------------------------------------------------------------ applying what was heard


async def apply_heard(t: Turn, heard: Heard) -> None:
    """Merge the utterance's slots into the call, validating dates and times on the calendar."""
    s = t.session
    slots = dict(heard.slots)
    for slot in heard.change:
        if slot not in slots:
            _clear(t, slot)
    if heard.change or s.state == "ask_correction":
        slots["correction"] = heard.text[:200]
    others = {k for k in slots if k not in ("appointment_confirmed", "correction")}
    if slots.get("appointment_confirmed") is False and (others or heard.date or heard.time):
        del slots["appointment_confirmed"]  # a correction, not a refusal: confirm again
    for key, value in slots.items():
        s.slots[key] = value
    if slots.get("contraindications") is True:
        s.slots["contraindication_notes"] = heard.text[:200]
        await t.phrase("contraindication_noted")
    auto_age = t.script.catalogue.discount.automatic_from_age
    age = s.slots.get("age")
    if (
        s.slots.get("discount") is None
        and auto_age is not None
        and isinstance(age, int)
        and age >= auto_age
    ):
        s.slots["discount"] = True
        slots["discount"] = True
    if slots.get("discount") is True:
        await t.phrase("discount_applied")
    if heard.date is not None:
        await _take_date(t, heard.date)
    if heard.time is not None and s.slots.get("appointment_date"):
        await _take_time(t, heard.time)


def _clear(t: Turn, slot: str) -> None:
    s = t.session
    if slot == "appointment_date":
        for key in ("appointment_date", "appointment_time", "time_confirmed"):
            s.slots.pop(key, None)
        s.offered_times = []
    elif slot == "appointment_time":
        s.slots.pop("appointment_time", None)
        s.slots.pop("time_confirmed", None)
    else:
        s.slots.pop(slot, None)


def _modality(t: Turn) -> str:
    study = t.study() or t.script.catalogue.study(t.script.catalogue.default_study)
    return str(study.modality)


async def _take_date(t: Turn, day: date) -> None:
    s = t.session
    why = t.deps.calendar.bookable(day, t.now)
    if why is not None:
        spoken = render.spoken_date(day, t.locale, t.today)
        await t.phrase("date_closed" if why == "closed" else "date_out_of_range", date=spoken)
        return
    if s.slots.get("appointment_date") != day.isoformat():
        await release_hold(t)
        s.slots.pop("appointment_time", None)
        s.slots.pop("time_confirmed", None)
        s.offered_times = []
    s.slots["appointment_date"] = day.isoformat()


async def _take_time(t: Turn, at: time) -> None:
    s = t.session
    day = date.fromisoformat(s.slots["appointment_date"])
    modality = _modality(t)
    cal = t.deps.calendar
    if at not in cal.slots(day, t.now):
        await t.phrase("time_not_offered")
        return
    if s.hold and s.hold.date == day.isoformat() and s.hold.time == f"{at:%H:%M}":
        s.slots["appointment_time"] = f"{at:%H:%M}"
        return
    if not await cal.hold(modality, day, at, s.session_id):
        await t.phrase("time_taken")
        s.offered_times = []
        return
    await release_hold(t)
    s.hold = Hold(modality=modality, date=day.isoformat(), time=f"{at:%H:%M}")
    if s.slots.get("appointment_time") != f"{at:%H:%M}":
        s.slots.pop("time_confirmed", None)
    s.slots["appointment_time"] = f"{at:%H:%M}"


async def release_hold(t: Turn) -> None:
    s = t.session
    if s.hold is not None and not s.hold.booked:
        await t.deps.calendar.release(
            s.hold.modality,
            date.fromisoformat(s.hold.date),
            time.fromisoformat(s.hold.time),
            s.session_id,
        )
    if s.hold is None or not s.hold.booked:
        s.hold = None


# ------------------------------------------------------------------ script state nodes


def _next_of(t: Turn, state: StateDef) -> str:
    for tr in state.transitions:
        if condition_holds(tr.when, t.session.slots):
            for slot in tr.clear:
                _clear(t, slot)
            return tr.to
    raise AssertionError("validated scripts always end with a default transition")


def _enter(t: Turn, state_id: str) -> None:
    s = t.session
    if s.state != state_id:
        t.transitions.append((s.state, state_id))
        s.state = state_id


def question_node(state_def: StateDef) -> NodeFn:
    sid = state_def.id

    async def node(state: DialogState, runtime: Runtime[Turn]) -> DialogState:
        t = _turn(runtime)
        s = t.session
        if all(s.slots.get(slot) is not None for slot in state_def.slots):
            return {"goto": _next_of(t, state_def)}
        if "appointment_time" in state_def.slots:
            detour = await _prepare_offer(t)
            if detour is not None:
                return {"goto": detour}
        # Asked again with nothing new learned: the shorter reprompt; otherwise the question.
        learned = t.heard is not None and bool(t.heard.slots)
        repeat = s.state == sid and s.asked.get(sid, 0) > 0 and not learned
        _enter(t, sid)
        s.asked[sid] = s.asked.get(sid, 0) + 1
        await _speak(t, state_def, "reprompt" if repeat else "say")
        return {"goto": END}

    node.__name__ = sid
    return node


async def _prepare_offer(t: Turn) -> str | None:
    """Free times for the chosen date; back to the date question when the day is full."""
    s = t.session
    day = date.fromisoformat(s.slots["appointment_date"])
    free = await t.deps.calendar.free(_modality(t), day, t.now)
    if s.offered_times and all(time.fromisoformat(x) in free for x in s.offered_times):
        return None
    offer = t.deps.calendar.offer(free)
    if not offer:
        await t.phrase("day_full", date=render.spoken_date(day, t.locale, t.today))
        _clear(t, "appointment_date")
        return "resume"
    s.offered_times = [f"{x:%H:%M}" for x in offer]
    return None


async def _speak(t: Turn, state_def: StateDef, which: Literal["say", "reprompt"]) -> None:
    template = getattr(state_def, which)[t.locale]
    fixed = "{" not in template
    if fixed:
        await t.say(
            Sentence(
                text=template.strip(),
                cache_key=f"{state_def.id}.{which}.{t.locale}",
                state=state_def.id,
                source=which,
            )
        )
        return
    for sentence in sentences_of(template, t.values()):
        await t.say(Sentence(text=sentence, state=state_def.id, source=which))


def announce_node(state_def: StateDef) -> NodeFn:
    sid = state_def.id

    async def node(state: DialogState, runtime: Runtime[Turn]) -> DialogState:
        t = _turn(runtime)
        s = t.session
        if sid == "recommend_study" or "{study_name" in state_def.say.get(t.locale, ""):
            _choose_study(t)
        _enter(t, sid)
        if sid not in s.said:
            s.said.append(sid)
            await _speak(t, state_def, "say")
        return {"goto": _next_of(t, state_def)}

    node.__name__ = sid
    return node


def _choose_study(t: Turn) -> None:
    s = t.session
    if s.slots.get("study_type"):
        return
    text = " ".join(str(s.slots.get(k) or "") for k in ("symptoms", "correction"))
    study = study_in(text, t.script, t.locale, need_modality=False)
    s.slots["study_type"] = study or t.script.catalogue.default_study


def exit_node(state_def: StateDef) -> NodeFn:
    sid = state_def.id

    async def node(state: DialogState, runtime: Runtime[Turn]) -> DialogState:
        t = _turn(runtime)
        s = t.session
        if state_def.status == "booked":
            booked = await _book(t)
            if not booked:
                await t.phrase("booking_failed")
                for slot in ("appointment_time", "appointment_confirmed"):
                    _clear(t, slot)
                s.offered_times = []
                s.state = "offer_appointment_times"
                return {"goto": "resume"}
        else:
            await release_hold(t)
        _enter(t, sid)
        s.status = state_def.status
        s.final_state = sid
        await _speak(t, state_def, "say")
        if state_def.action == "hangup":
            t.actions.append({"type": "hangup"})
        elif state_def.action == "transfer":
            t.actions.append({"type": "transfer", "target": t.script.clinic.transfer_target})
        return {"goto": _next_of(t, state_def)}

    node.__name__ = sid
    return node


async def _book(t: Turn) -> bool:
    s = t.session
    hold = s.hold
    if (
        hold is None
        or hold.date != s.slots.get("appointment_date")
        or hold.time != s.slots.get("appointment_time")
    ):
        return False
    if hold.booked:
        return True
    ok = await t.deps.calendar.book(
        hold.modality,
        date.fromisoformat(hold.date),
        time.fromisoformat(hold.time),
        s.session_id,
        t.now,
    )
    hold.booked = ok
    return ok


def end_node(state_def: StateDef) -> NodeFn:
    async def node(state: DialogState, runtime: Runtime[Turn]) -> DialogState:
        t = _turn(runtime)
        _enter(t, state_def.id)
        return {"goto": END}

    node.__name__ = state_def.id
    return node


# ------------------------------------------------------------------ building the graph


def _route(state: DialogState) -> str:
    return state["goto"]


def _entry(state: DialogState) -> str:
    return state.get("entry", "resume")


def build_graph(script: Script) -> CompiledStateGraph[DialogState, Turn, DialogState, DialogState]:
    """Compile the script: one node per state, plus the turn's entry and answer nodes."""
    graph: StateGraph[DialogState, Turn, DialogState, DialogState] = StateGraph(
        DialogState, context_schema=Turn
    )
    graph.add_node("understand", understand)
    graph.add_node("silence", silence)
    graph.add_node("resume", resume)
    graph.add_node("answer", answer)
    makers = {
        "question": question_node,
        "announce": announce_node,
        "exit": exit_node,
        "end": end_node,
    }
    states = list(script.states.values())
    for state_def in states:
        graph.add_node(state_def.id, cast(Any, makers[state_def.kind](state_def)))
    exits = sorted({*EXIT_INTENTS.values(), "goodbye_silence"})
    graph.add_conditional_edges(
        START, _entry, {"understand": "understand", "silence": "silence", "resume": "resume"}
    )
    graph.add_conditional_edges(
        "understand", _route, {name: name for name in ["answer", "resume", *exits]}
    )
    graph.add_conditional_edges(
        "silence", _route, {"resume": "resume", "goodbye_silence": "goodbye_silence"}
    )
    graph.add_edge("answer", "resume")
    graph.add_conditional_edges(
        "resume",
        _route,
        {s.id: s.id for s in states if s.kind in ("question", "announce", "exit", "end")},
    )
    for state_def in states:
        targets = {tr.to for tr in state_def.transitions}
        if state_def.kind == "question":
            targets |= {"resume", END}
        if state_def.kind == "exit":
            targets.add("resume")
        if state_def.kind == "end":
            targets = {END}
        graph.add_conditional_edges(state_def.id, _route, {x: x for x in sorted(targets)})
    return graph.compile(name="clinic_script")


def mermaid(script: Script) -> str:
    return build_graph(script).get_graph().draw_mermaid()


def run_config(steps: int) -> dict[str, Any]:
    return {"recursion_limit": steps}


def monotonic_ms(started: float) -> float:
    return (_time.perf_counter() - started) * 1000
