"""The graph's nodes: one function per entry node, one factory per kind of script state.

A node reads the turn from the run's context, changes the call's session, and returns a partial
update naming the next node in ``goto``. Entry nodes start a turn: ``understand`` (a caller
utterance), ``silence``, ``resume`` (continue where the call is); ``answer`` handles what is off
the script. A script state's node skips a question already answered, speaks an announcement and
moves on, and stops the turn at the first question that still needs an answer or at an exit.

The repeat rule: a question is asked at most twice in a row (its text, then its reprompt); each
further failure takes the next of its fallback strategies (spell the name, the keypad, go on
without the slot, offer a person), so the caller is never asked the same thing a third time.
The fallbacks never start over: a caller who declines the person goes on without the slots
when the booking can do without them, else the call ends politely; and once a question has
been left unanswered as often as its text, reprompt and fallbacks allow in one call, its first
failure on any later visit takes its last fallback at once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, time
from typing import Literal

from langgraph.graph import END
from langgraph.runtime import Runtime

from callkit.contracts.dialog import HangupAction, TransferAction
from policy_engine import render
from policy_engine.dialog.answers import free_answer
from policy_engine.dialog.booking import book, prepare_offer, release_hold
from policy_engine.dialog.context import Turn, sentences_of
from policy_engine.dialog.slots import apply_heard, clear_slot
from policy_engine.dialog.state import DialogState
from policy_engine.dialog.walk import say_of, taken, walk
from policy_engine.parsers import parse_yes_no
from policy_engine.script import (
    EXIT_INTENTS,
    OPTIONAL_SLOTS,
    RECOMMENDATION,
    SILENCE_EXIT,
    TIME_OFFER,
    UNRESOLVED_EXIT,
    VOICEMAIL_EXIT,
    YES_NO_SLOTS,
    StateDef,
    Strategy,
    Study,
)
from policy_engine.session import Sentence, Session
from policy_engine.understand import (
    Context,
    fill_from_words,
    llm_read,
    merge_llm,
    needs_llm,
    parse_utterance,
    read_callback,
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
    offered_person = s.person_offered
    if offered_person is not None:
        expects = tuple(
            slot for slot in expects if slot not in YES_NO_SLOTS
        )  # yes is for the offer
    ctx = Context(
        state=s.state,
        expects=expects,
        question_text=(current.say.get(t.locale, "") if current else ""),
        today=t.today,
        offered=tuple(time.fromisoformat(x) for x in s.offered_times),
        caller_number=t.caller_number,  # "the same number" is no number when it is withheld
        known={k: v for k, v in s.slots.items() if v is not None},
        strategy=strategy_in_use(current, s) if current else None,
        now=t.now,
    )
    heard = parse_utterance(state.get("text", ""), ctx, t.script, t.locale)
    t.heard = heard
    # Keys are digits the parsers read in full; the model could only guess at them (a lone 0
    # taken for the operator while the caller keys in a number).
    wanted = needs_llm(heard, ctx) and not t.keypad
    t.llm_wanted |= wanted
    if t.deps.llm is not None and wanted:
        t.llm_calls += 1
        facts = None
        try:
            async with t.waiting_on_llm():
                facts = await llm_read(t.deps.llm, t.deps.system_prompt, heard, ctx)
            if facts is None:
                t.llm_failed = True
        except TimeoutError:
            t.llm_late = True  # too late to be worth the wait: go on as if it found nothing
        if facts is not None:
            merge_llm(heard, facts, ctx, t.script.words)
    fill_from_words(heard, ctx, t.script.words)
    read_callback(heard, ctx, t.script, t.locale)  # the LLM may have heard the request
    if heard.callback is not None:
        s.slots["callback_at"] = heard.callback.at.astimezone(UTC).isoformat()
        s.callback_when = render.spoken_callback(heard.callback, t.locale, t.today)
    s.silences = 0
    if "opt_out" in heard.intents:
        # Before anything else, an offered person included: the caller wants no more calls.
        s.person_offered = None
        return {"goto": EXIT_INTENTS["opt_out"]}
    declined: StateDef | None = None
    if offered_person is not None:
        s.person_offered = None
        lex = t.script.lexicons[t.locale]
        if parse_yes_no(heard.text, lex, t.script.words) is True:
            return {"goto": EXIT_INTENTS["wants_human"]}
        declined = t.script.states[offered_person]
    for intent, target in EXIT_INTENTS.items():
        if intent in heard.intents:
            if intent == "call_back_later" and heard.slots.get("phone"):
                # "Call me back on 555…": the number to call back, said with the request.
                s.slots["phone"] = heard.slots["phone"]
            return {"goto": target}
    if "leaving" in heard.intents and not heard.slots and not heard.question:
        # "That is too much. Goodbye.": the caller is going; asking on would talk to no one.
        return {"goto": EXIT_INTENTS["not_interested"]}
    await apply_heard(t, heard)
    if declined is not None:
        _person_declined(t, declined)
    if heard.declined:
        # The caller would rather not say: go on without what the booking can do without.
        s.skipped.extend(
            slot
            for slot in expects
            if slot in OPTIONAL_SLOTS and s.slots.get(slot) is None and slot not in s.skipped
        )
    if "phone" in heard.slots and (t.keypad or ctx.strategy == "keypad"):
        await t.phrase("phone_read_back")  # digits typed or hard to catch: say them back
    if heard.question or "prompt_injection" in heard.intents or "objection_price" in heard.intents:
        t.aside = True
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
        s.state = t.script.start_for(s.direction)
    if t.script.states[s.state].kind in ("exit", "end"):
        return {"goto": s.state}
    path, stop = walk(
        t.script,
        s.slots,
        s.said,
        s.skipped,
        direction=s.direction,
        no_caller_id=t.caller_number is None,
    )
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
        values = t.values()
        if not sentences_of(template, values) and (likely := _likely_study(t)) is not None:
            values = t.values(study=likely)  # "how much?" once the complaint says which study
        if topic.otherwise is not None and not sentences_of(template, values):
            template = topic.otherwise[t.locale]  # the answer needs what the call lacks yet
        for text in sentences_of(template, values):
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


# ------------------------------------------------------------------ the repeat rule


def max_unanswered(state_def: StateDef) -> int:
    """How many asks of a question one call may leave unanswered before only its last fallback
    is left: its text, its reprompt, and each fallback but the last."""
    return 1 + len(state_def.strategies)


def strategy_in_use(state_def: StateDef, session: Session) -> Strategy | None:
    """The fallback the question is on: None for its text and its reprompt (the first two
    asks in a row), then one strategy per further failure, the last one kept. A question
    whose asks this call has already left unanswered :func:`max_unanswered` times is on its
    last fallback from its first failure on (the cycle never starts over)."""
    misses = session.misses.get(state_def.id, 0)
    if state_def.kind != "question" or misses < 1:
        return None
    strategies = state_def.strategies
    if session.unanswered.get(state_def.id, 0) >= max_unanswered(state_def):
        return strategies[-1]
    if misses < 2:
        return None
    return strategies[min(misses - 2, len(strategies) - 1)]


def misses_now(t: Turn, sid: str) -> int:
    """How many asks in a row of ``sid`` the caller's answers have left unfilled so far."""
    s = t.session
    if s.state != sid or not s.asked.get(sid):
        return 0  # a question newly reached
    if t.aside:
        return s.misses.get(sid, 0)  # the caller asked something: not a failed answer
    return s.misses.get(sid, 0) + 1


def _person_declined(t: Turn, state_def: StateDef) -> None:
    """The caller said no to a person once the question's fallbacks were spent: go on without
    its slots when the booking can do without them, else end the call politely. Never the
    question again from the start, which would only walk the same fallbacks once more; what
    the caller's answer filled (a number said with the "no") stands."""
    s = t.session
    missing = [slot for slot in state_def.slots if s.slots.get(slot) is None]
    s.misses.pop(state_def.id, None)
    if not missing:
        return
    if set(missing) <= OPTIONAL_SLOTS:
        s.skipped.extend(slot for slot in missing if slot not in s.skipped)
        return
    # ``resume`` goes on from where the call is, and an exit there ends it.
    t.enter(UNRESOLVED_EXIT)


async def _fall_back(t: Turn, state_def: StateDef, strategy: Strategy) -> DialogState:
    s = t.session
    sid = state_def.id
    if strategy == "skip":
        s.skipped.extend(x for x in state_def.slots if s.slots.get(x) is None)
        s.misses.pop(sid, None)
        await t.phrase("skip_slot")
        return {"goto": _next_of(t, state_def)}
    if strategy == "offer_person":
        s.person_offered = sid
        await t.phrase("offer_person")
    elif strategy == "spell":
        await t.phrase("spell_name")
    else:
        await t.phrase("keypad_phone" if "phone" in state_def.slots else "keypad_yes_no")
    return {"goto": END}


# ------------------------------------------------------------------ script state nodes


def _next_of(t: Turn, state: StateDef) -> str:
    transition = taken(
        state, t.session.slots, t.session.direction, no_caller_id=t.caller_number is None
    )
    for slot in transition.clear:
        clear_slot(t.session, slot)
    return transition.to


async def _speak(t: Turn, state_def: StateDef, which: Literal["say", "reprompt"]) -> None:
    variant, texts = 0, state_def.reprompt
    if which == "say":
        variant, texts = say_of(
            state_def, t.session.slots, t.session.direction, no_caller_id=t.caller_number is None
        )
    template = texts[t.locale]
    if "{" not in template:
        await t.say(
            Sentence(
                text=template.strip(),
                cache_key=f"{state_def.id}.{which}{variant or ''}.{t.locale}",
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
        if all(s.slots.get(slot) is not None or slot in s.skipped for slot in state_def.slots):
            s.misses.pop(sid, None)
            return {"goto": _next_of(t, state_def)}
        if "appointment_time" in state_def.slots and not await prepare_offer(t):
            return {"goto": "resume"}  # the day is full: back to the date question
        misses = misses_now(t, sid)
        if misses > s.misses.get(sid, 0):
            s.unanswered[sid] = s.unanswered.get(sid, 0) + 1
        t.enter(sid)
        s.asked[sid] = s.asked.get(sid, 0) + 1
        s.misses[sid] = misses
        strategy = strategy_in_use(state_def, s)
        if strategy is not None:
            return await _fall_back(t, state_def, strategy)
        # The second ask is the shorter reprompt, unless the answer changed what the question
        # says (a corrected name at the confirmation): then the question again, in full.
        learned = t.heard is not None and bool(t.heard.slots)
        await _speak(t, state_def, "reprompt" if misses == 1 and not learned else "say")
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


def _likely_study(t: Turn) -> Study | None:
    """The study the caller's complaint points to, before one was recommended; None while
    it points to none (the default study is a recommendation, not a reading)."""
    text = " ".join(str(t.session.slots.get(k) or "") for k in ("symptoms", "correction"))
    sid = study_in(text, t.script, t.locale, need_modality=False) if text.strip() else None
    return t.script.catalogue.study(sid) if sid else None


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
        if not (sid == VOICEMAIL_EXIT and s.voicemail_silent):
            await _speak(t, state_def, "say")
        exit_action(t, state_def)
        return {"goto": _next_of(t, state_def)}

    node.__name__ = sid
    return node


def exit_action(t: Turn, state_def: StateDef) -> None:
    """What the switch does at an exit: hang up, or transfer to the clinic's people."""
    if state_def.action == "hangup":
        t.actions.append(HangupAction())
    elif state_def.action == "transfer":
        t.actions.append(TransferAction(target=t.script.clinic.transfer_target))


def end_node(state_def: StateDef) -> NodeFn:
    async def node(state: DialogState, runtime: Runtime[Turn]) -> DialogState:
        runtime.context.enter(state_def.id)
        return {"goto": END}

    node.__name__ = state_def.id
    return node
