"""The graph's nodes: one function per entry node, one factory per kind of script state.

A node reads the turn from the run's context, changes the call's session, and returns a partial
update naming the next node in ``goto``. Entry nodes start a turn: ``understand`` (a caller
utterance), ``silence``, ``resume`` (continue where the call is); ``answer`` handles what is off
the script. A script state's node skips a question already answered, speaks an announcement and
moves on, and stops the turn at the first question that still needs an answer or at an exit.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import time
from typing import Literal

from langgraph.graph import END
from langgraph.runtime import Runtime

from policy_engine.dialog.answers import free_answer
from policy_engine.dialog.booking import book, prepare_offer, release_hold
from policy_engine.dialog.context import Turn, sentences_of
from policy_engine.dialog.slots import apply_heard, clear_slot
from policy_engine.dialog.state import DialogState
from policy_engine.dialog.walk import taken, walk
from policy_engine.script import EXIT_INTENTS, RECOMMENDATION, SILENCE_EXIT, TIME_OFFER, StateDef
from policy_engine.session import Sentence
from policy_engine.understand import (
    Context,
    fill_from_words,
    llm_read,
    merge_llm,
    needs_llm,
    parse_utterance,
    study_in,
)

NodeFn = Callable[[DialogState, Runtime[Turn]], Awaitable[DialogState]]

# ------------------------------------------------------------------ entry nodes


async def understand(state: DialogState, runtime: Runtime[Turn]) -> DialogState:
    """Read the utterance (parsers, then the LLM if it can add something) and apply it."""
    t = runtime.context
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
            merge_llm(heard, facts, ctx, t.script.words)
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
    t = runtime.context
    t.session.silences += 1
    if t.session.silences > t.deps.max_silences:
        return {"goto": SILENCE_EXIT}
    return {"goto": "resume"}


async def resume(state: DialogState, runtime: Runtime[Turn]) -> DialogState:
    """Continue where the call is, or at an earlier question the caller's changes reopened."""
    t = runtime.context
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
    t = runtime.context
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


# ------------------------------------------------------------------ script state nodes


def _next_of(t: Turn, state: StateDef) -> str:
    transition = taken(state, t.session.slots)
    for slot in transition.clear:
        clear_slot(t.session, slot)
    return transition.to


async def _speak(t: Turn, state_def: StateDef, which: Literal["say", "reprompt"]) -> None:
    template = getattr(state_def, which)[t.locale]
    if "{" not in template:
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


def question_node(state_def: StateDef) -> NodeFn:
    sid = state_def.id

    async def node(state: DialogState, runtime: Runtime[Turn]) -> DialogState:
        t = runtime.context
        s = t.session
        if all(s.slots.get(slot) is not None for slot in state_def.slots):
            return {"goto": _next_of(t, state_def)}
        if "appointment_time" in state_def.slots and not await prepare_offer(t):
            return {"goto": "resume"}  # the day is full: back to the date question
        # Asked again with nothing new learned: the shorter reprompt; otherwise the question.
        learned = t.heard is not None and bool(t.heard.slots)
        repeat = s.state == sid and s.asked.get(sid, 0) > 0 and not learned
        t.enter(sid)
        s.asked[sid] = s.asked.get(sid, 0) + 1
        await _speak(t, state_def, "reprompt" if repeat else "say")
        return {"goto": END}

    node.__name__ = sid
    return node


def announce_node(state_def: StateDef) -> NodeFn:
    sid = state_def.id

    async def node(state: DialogState, runtime: Runtime[Turn]) -> DialogState:
        t = runtime.context
        s = t.session
        if sid == RECOMMENDATION or "{study_name" in state_def.say.get(t.locale, ""):
            _choose_study(t)
        t.enter(sid)
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
        t = runtime.context
        s = t.session
        if state_def.status == "booked":
            if not await book(t):
                await t.phrase("booking_failed")
                for slot in ("appointment_time", "appointment_confirmed"):
                    clear_slot(s, slot)
                s.offered_times = []
                s.state = TIME_OFFER
                return {"goto": "resume"}
        else:
            await release_hold(t)
        t.enter(sid)
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


def end_node(state_def: StateDef) -> NodeFn:
    async def node(state: DialogState, runtime: Runtime[Turn]) -> DialogState:
        runtime.context.enter(state_def.id)
        return {"goto": END}

    node.__name__ = state_def.id
    return node
