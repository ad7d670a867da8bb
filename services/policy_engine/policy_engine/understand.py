"""Understanding one caller utterance: deterministic parsers first, the LLM only for the rest.

Exact things (phone numbers, ages, weights, dates, times, yes/no) come from the parsers and are
never taken from the model. The LLM is asked only when the question just asked wants something
the parsers cannot read (a name said without a cue, symptoms in unusual words) or when the
utterance says nothing the parsers understand; whatever it returns is checked against the
caller's own words before it is used.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any, Literal

from pydantic import BaseModel, Field

from callkit.errors import AgentError
from policy_engine import parsers as p
from policy_engine.dialog.llm import DialogLlm
from policy_engine.lexicon import Words, alternation, longest_first, phrase_pattern
from policy_engine.script import CORRECTION, NOT_NOW_SLOTS, YES_NO_SLOTS, Script

log = logging.getLogger("policy_engine.understand")

Intent = Literal[
    "answer",
    "question",
    "objection",
    "correction",
    "wants_human",
    "wrong_number",
    "not_interested",
    "call_back_later",
]


class IntentFacts(BaseModel):
    """What the LLM is asked when only the caller's intent is unclear."""

    intent: Intent = "answer"


class NameFacts(IntentFacts):
    client_name: str | None = Field(None, max_length=60)


class SymptomFacts(IntentFacts):
    symptoms: str | None = Field(None, max_length=60)


class CallerFacts(NameFacts, SymptomFacts):
    pain_character: str | None = Field(None, max_length=40)


@dataclass
class Heard:
    text: str
    slots: dict[str, Any] = field(default_factory=dict)
    date: date | None = None
    time: time | None = None
    intents: set[str] = field(default_factory=set)
    question: bool = False
    faq: str | None = None
    change: list[str] = field(default_factory=list)  # slots the caller wants to change
    correction: bool = False
    declined: bool = False  # the caller would rather not answer
    greeting: bool = False  # "Hello?" and nothing else
    callback: p.Callback | None = None  # when the caller asked to be called back
    llm_used: bool = False
    llm_error: str | None = None


@dataclass
class Context:
    """Where the call is: the state whose question was just asked, and what it offered."""

    state: str
    expects: tuple[str, ...]
    question_text: str
    today: date
    offered: tuple[time, ...]
    caller_number: str | None
    known: dict[str, Any]
    strategy: str | None = None  # the question's fallback in use ("spell": a spelled name)
    now: datetime | None = None  # the clinic's clock, for a call-back time ("in two hours")


def study_in(text: str, script: Script, locale: str, *, need_modality: bool) -> str | None:
    """The catalogue study the text names (a body part, with a modality word if required)."""
    t = text.lower()
    named = {m for m, pattern in script.words.modalities.items() if pattern.search(t)}
    if need_modality and not named:
        return None
    for study in script.catalogue.studies:
        if named and study.modality not in named:
            continue
        words = study.keywords.get(locale, [])
        if words and phrase_pattern(words).search(t):
            return study.id
    if len(named) == 1 and need_modality:
        only = [s for s in script.catalogue.studies if s.modality in named]
        if len(only) == 1:
            return only[0].id
    return None


def body_words(script: Script, locale: str) -> list[str]:
    return [w for s in script.catalogue.studies for w in s.keywords.get(locale, [])]


def _strip_durations(text: str, words: Words) -> str:
    """The text without how long the complaint has lasted, which names no day to come in
    ("since Monday", "for the last two weeks", "3 days ago")."""
    weekdays = alternation(longest_first(words.weekdays))
    return re.sub(
        rf"\b{words.not_a_date_after}\s+[\w' ]{{0,20}}?\b{words.complaint_units}\b"
        rf"|\b(?:{words.since}|{words.last})\s+(?:the\s+)?"
        rf"(?:{weekdays}|{words.moment_words})\b"
        rf"|\b\w+ {words.ago}\b",
        " ",
        text,
        flags=re.I,
    )


def parse_utterance(text: str, ctx: Context, script: Script, locale: str) -> Heard:
    """Everything the deterministic parsers can read from ``text`` in this context."""
    lex = script.lexicons[locale]
    words = script.words
    norm = p.normalize(text, words, locale)
    heard = Heard(text=norm)
    expects = ctx.expects
    heard.intents = p.detect_intents(norm, lex)
    heard.question = p.is_question(norm, lex)
    heard.correction = bool(words.correction_cues.search(norm))
    if lex.greetings:
        rest = lex.pattern(lex.greetings).sub(" ", norm)
        heard.greeting = rest != norm and not re.sub(r"[\W_]+", "", rest)
        heard.question = heard.question and not heard.greeting  # "Hello?" asks nothing
    if heard.question:
        heard.faq = _faq_topic(norm, script, locale)

    # Names: with a cue anywhere, bare only when the name was asked for.
    name = p.parse_name(norm, words, expecting="client_name" in expects or ctx.state == CORRECTION)
    if ctx.strategy == "spell" and "client_name" in expects:
        name = p.parse_spelled_name(norm, words) or name
    if name:
        heard.slots["client_name"] = name

    phone = p.parse_phone(norm, script.clinic.default_country_code, words)
    if phone:
        heard.slots["phone"] = phone
    elif (
        "phone" in expects
        and ctx.caller_number
        # "this one", "same one": before "one" became a digit
        and (lex.find(lex.same_number, norm) or lex.find(lex.same_number, text))
    ):
        heard.slots["phone"] = ctx.caller_number
    digits_free = re.sub(r"\+?\d[\d\s().,-]{5,}\d", " ", norm) if phone else norm

    if "age" in expects or "weight_kg" in expects:
        age, weight = p.parse_age_weight(digits_free, words)
    else:
        age, weight = p.parse_age(digits_free, words), p.parse_weight(digits_free, words)
    if age is not None:
        heard.slots["age"] = age
    if weight is not None:
        heard.slots["weight_kg"] = weight

    # Symptoms and what the pain is like.
    bodies = body_words(script, locale)
    if (
        p.mentions_symptom(norm, bodies, words)
        and ("symptoms" in expects or "symptoms" not in ctx.known)
        and not heard.question
    ):
        about = [
            sentence
            for sentence in re.split(r"(?<=[.!?])\s+", norm)
            if p.mentions_symptom(sentence, bodies, words)
        ]
        phrase = p.symptom_phrase(" ".join(about) or norm, words)
        if phrase:
            heard.slots["symptoms"] = phrase
    duration = _duration(norm, heard, words)
    if duration and (
        "symptoms_duration" in expects
        or (
            "symptoms_duration" not in ctx.known
            and ("symptoms" in heard.slots or "symptoms" in ctx.known)
        )
    ):
        heard.slots["symptoms_duration"] = duration
    pain = p.parse_pain(norm, lex)
    if pain:
        heard.slots["pain_character"] = pain

    # A study named outright ("an MRI of my knee").
    study = study_in(norm, script, locale, need_modality=True)
    if study:
        heard.slots["study_type"] = study
        if "study_requested" in expects:
            heard.slots["study_requested"] = True

    # Dates and times: when asked, or when the caller talks about booking.
    booking_talk = bool(words.booking_cues.search(norm))
    date_text = _strip_durations(norm, words)
    picking_a_time = "appointment_time" in expects and bool(ctx.offered)
    if "appointment_date" in expects or "appointment_time" in expects or booking_talk:
        # While times are offered, "the third one" picks one of them: it is no day.
        heard.date = p.parse_date(date_text, ctx.today, words, bare_day=not picking_a_time)
    if "appointment_time" in expects or "appointment_date" in expects or booking_talk:
        heard.time = p.parse_time(
            date_text,
            words,
            ctx.offered if "appointment_time" in expects else (),
            script.schedule.earliest_opening,
        )

    # Yes or no to the question just asked.
    yes_no = [s for s in expects if s in YES_NO_SLOTS]
    if yes_no and yes_no[0] in NOT_NOW_SLOTS:
        _not_now(heard, ctx, script, locale, yes_no[0], booking_talk=booking_talk)
    elif yes_no:
        answer = p.parse_yes_no(norm, lex, words)
        if answer is None and "not_interested" in heard.intents:
            answer = False
            heard.intents.discard("not_interested")
        if answer is None and "study_requested" in yes_no and study:
            answer = True
        if answer is not None:
            heard.slots[yes_no[0]] = answer
        if answer is False and "call_back_later" not in heard.intents:
            heard.intents.discard("not_interested")

    # "Would Saturday be possible?", "Three o'clock?": said as a question, but it answers the
    # one just asked. A question about something else (the FAQ's topics) stays a question.
    if heard.question and heard.faq is None and _answers_the_question(heard, expects):
        heard.question = False
    heard.declined = bool(lex.find(lex.decline, norm)) and not any(
        slot in heard.slots for slot in expects if slot in YES_NO_SLOTS
    )

    _other_question(heard, ctx, norm, date_text, words)

    if ctx.state == CORRECTION:
        heard.change = [
            slot for slot, pattern in words.change_topics.items() if pattern.search(norm)
        ]
    read_callback(heard, ctx, script, locale)
    return heard


def _not_now(
    heard: Heard, ctx: Context, script: Script, locale: str, slot: str, *, booking_talk: bool
) -> None:
    """The answer to "is now a good time?". A refusal answers nothing: the call ends as not
    interested. "Not now", a no, or a moment said on its own ("tomorrow after six") is a no,
    and the call ends with a call back; talk about the booking itself is a yes."""
    lex, norm = script.lexicons[locale], heard.text
    if lex.find(lex.no_thanks, norm) or "not_interested" in heard.intents:
        heard.intents.add("not_interested")
        return
    answer = False if lex.find(lex.not_now, norm) else p.parse_yes_no(norm, lex, script.words)
    if (
        answer is None
        and ctx.now is not None
        and not booking_talk
        and p.parse_callback(norm, ctx.now, lex, script.words, script.schedule.earliest_opening)
    ):
        answer = False
    if answer is None and (heard.slots or heard.date is not None or heard.time is not None):
        answer = True
    if answer is False:
        heard.date = heard.time = None  # the moment said is the call back's, not a booking's
    if answer is not None:
        heard.slots[slot] = answer


def read_callback(heard: Heard, ctx: Context, script: Script, locale: str) -> None:
    """When to call back, if the caller asked for a call back (or said now is not a good time)
    and named a moment."""
    if heard.callback is not None or ctx.now is None:
        return
    asked = "call_back_later" in heard.intents or any(
        heard.slots.get(slot) is False for slot in ctx.expects if slot in NOT_NOW_SLOTS
    )
    if asked:
        heard.callback = p.parse_callback(
            heard.text,
            ctx.now,
            script.lexicons[locale],
            script.words,
            script.schedule.earliest_opening,
        )
    if heard.callback is not None:
        heard.question, heard.faq = False, None  # "can you call back in two hours?"


def _duration(norm: str, heard: Heard, words: Words) -> str | None:
    """How long the complaint has lasted, unless the number is the caller's age ("63 года" is
    an age when it is read as one)."""
    duration = p.parse_duration(norm, words)
    age = heard.slots.get("age")
    if duration and age is not None and duration.split()[0] == str(age):
        return None
    return duration


def _answers_the_question(heard: Heard, expects: tuple[str, ...]) -> bool:
    if any(slot in heard.slots for slot in expects):
        return True
    return ("appointment_date" in expects and heard.date is not None) or (
        "appointment_time" in expects and heard.time is not None
    )


def _other_question(heard: Heard, ctx: Context, norm: str, date_text: str, words: Words) -> None:
    """An answer to a question the script has yet to ask, taken for it when it clearly fits:
    a duration or a day said when something else was asked and answered nothing of it."""
    expects = ctx.expects
    if heard.question or any(slot in heard.slots for slot in expects):
        return
    booking = {"appointment_date", "appointment_time"}
    if booking & set(expects) or ctx.state == CORRECTION:
        return
    if "symptoms_duration" not in ctx.known and "symptoms_duration" not in heard.slots:
        duration = _duration(norm, heard, words)
        if duration:
            heard.slots["symptoms_duration"] = duration
            return
    if heard.date is None and "appointment_date" not in ctx.known:
        day = p.parse_date(date_text, ctx.today, words)
        if day is not None and day > ctx.today:
            heard.date = day


def _faq_topic(text: str, script: Script, locale: str) -> str | None:
    lex = script.lexicons[locale]
    for topic_id, topic in script.faq.items():
        if lex.find(topic.keywords.get(locale, []), text):
            return topic_id
    return None


def needs_llm(heard: Heard, ctx: Context) -> bool:
    """Whether the model has anything to add to what the parsers found."""
    if heard.intents or heard.faq or heard.declined or heard.greeting:
        return False
    missing = [s for s in ctx.expects if s not in heard.slots]
    if not missing:
        return False
    if heard.question:
        return False  # answered as a question, not read as an answer
    if len(missing) == len(ctx.expects) and any(k not in ctx.expects for k in heard.slots):
        return False  # it answered another question ("about three weeks"): not this one's words
    understood = bool(heard.slots) or heard.date is not None or heard.time is not None
    wants_words = {"client_name", "symptoms", "pain_character"} & set(missing)
    return bool(wants_words) or not understood


def _grounded(value: str, text: str) -> bool:
    """Every word of ``value`` is among the caller's words (no invented names)."""
    said = {w.lower() for w in re.findall(r"[\w'-]+", text)}
    words = [w.lower() for w in re.findall(r"[\w'-]+", value)]
    return bool(words) and all(w in said for w in words)


_FIELDS = {
    "client_name": "client_name: the caller's own name exactly as said, or null",
    "symptoms": "symptoms: the body part and the problem in at most five words, or null",
}
_INTENTS = (
    "intent: answer, question, objection, correction, wants_human, wrong_number, "
    "not_interested or call_back_later"
)


async def llm_read(
    llm: DialogLlm, system_prompt: str, heard: Heard, ctx: Context
) -> CallerFacts | None:
    """Ask the model for what the parsers missed; None if it is down or answers badly.

    The schema holds only the fields this question wants (plus the intent): every field the
    model writes costs decoding time on the call's critical path.
    """
    heard.llm_used = True
    wanted = [s for s in ("client_name", "symptoms") if s in ctx.expects and s not in heard.slots]
    schema: type[IntentFacts] = (
        CallerFacts
        if len(wanted) == 2
        else NameFacts
        if wanted == ["client_name"]
        else SymptomFacts
        if wanted == ["symptoms"]
        else IntentFacts
    )
    fields = "; ".join([*(_FIELDS[w] for w in wanted), _INTENTS])
    # Static first, so the server's prefix cache covers all but the last short message.
    messages = [
        {"role": "system", "content": system_prompt},
        {"role": "system", "content": f"Read the caller's reply. JSON only. Fields: {fields}."},
        {"role": "user", "content": f'Asked: "{ctx.question_text}"\nCaller: "{heard.text}"'},
    ]
    try:
        facts = await llm.extract(messages, schema, max_tokens=60)
    except AgentError as exc:
        heard.llm_error = exc.code
        log.warning("LLM extraction failed; using the parsers alone", extra={"code": exc.code})
        return None
    return CallerFacts.model_validate(facts.model_dump())


def merge_llm(heard: Heard, facts: CallerFacts, ctx: Context, words: Words) -> None:
    """Take from the model only what the caller's words support and the parsers did not find."""
    if facts.client_name and "client_name" not in heard.slots and "client_name" in ctx.expects:
        name = facts.client_name.strip(" .,")
        if _grounded(name, heard.text) and name.lower() not in words.not_names:
            heard.slots["client_name"] = " ".join(w.capitalize() for w in name.split())
    if facts.symptoms and "symptoms" not in heard.slots and "symptoms" in ctx.expects:
        said = set(re.findall(r"\w+", heard.text.lower()))
        first = re.split(r"[,.;]", facts.symptoms)[0].strip()
        if first and said & set(re.findall(r"\w+", first.lower())):
            heard.slots["symptoms"] = first
    if (
        facts.pain_character
        and "pain_character" not in heard.slots
        and "pain_character" in ctx.expects
        and _grounded(facts.pain_character, heard.text)
    ):
        heard.slots["pain_character"] = facts.pain_character.lower()
    if not heard.slots and facts.intent in (
        "wants_human",
        "wrong_number",
        "not_interested",
        "call_back_later",
    ):
        heard.intents.add(facts.intent)
    if facts.intent == "question" and not heard.slots:
        heard.question = True


def fill_from_words(heard: Heard, ctx: Context, script_words: Words) -> None:
    """Last resort for free-text answers (the LLM is down or found nothing): the caller's own
    words are the answer to "what is bothering you" and "what kind of pain"."""
    if heard.question or heard.intents or heard.declined or heard.greeting:
        return
    if any(k not in ctx.expects for k in heard.slots) or heard.date is not None:
        return  # the utterance answered another question: it is not this one's answer
    words = heard.text.split()
    if "symptoms" in ctx.expects and "symptoms" not in heard.slots and len(words) >= 2:
        heard.slots["symptoms"] = p.symptom_phrase(heard.text, script_words)
    if (
        "pain_character" in ctx.expects
        and "pain_character" not in heard.slots
        and 1 <= len(words) <= 6
    ):
        heard.slots["pain_character"] = heard.text.strip(" .!?").lower()
