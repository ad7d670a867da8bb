"""The words the parsers listen for, as data: prompts/clinic/lexicon.yaml, loaded and checked.

Two kinds of tables. Per-locale lists (yes, no, intents, question words…) are read in the
call's locale: ``Lexicon``. Tables that name things (weekdays, months, ordinals, units, spoken
numbers, modalities), the words that are never a name and the words the parsers' grammar is
made of (clock times, durations, spelled names) are read in every locale of the script, because
callers mix languages ("на Monday"): ``Words``, built once per script. Those words reach the
parsers as regular-expression alternations; the parsers hold the grammar around them. The
grammar's words are required keys of the file: a clinic that lacks one is refused at start-up.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

PerLocale = dict[str, list[str]]
DurationUnit = Literal["day", "week", "month", "year"]
_WRITTEN_DURATION = r"^\d+ (?:day|week|month|year)s?$"  # "6 months", as the outcome writes it
ValuesPerLocale = dict[str, dict[str, Any]]


def phrase_pattern(phrases: Iterable[str]) -> re.Pattern[str]:
    """Whole words or phrases, case-insensitive; a trailing "*" matches any ending."""
    alts = sorted(
        (re.escape(p.rstrip("*")) + (r"\w*" if p.endswith("*") else "") for p in phrases),
        key=len,
        reverse=True,
    )
    # "shoulder's", "knee's": the word with a possessive or "is"/"has" after it.
    # A hyphen and a letter go on with the word: "где-то" is not "где".
    return re.compile(rf"(?<![\w'])(?:{'|'.join(alts)})(?:'s)?(?![\w'])(?!-\w)", re.I)


def alternation(words: Iterable[str]) -> str:
    """A regex group matching any of ``words``, in order; "*" matches any ending. With no
    words, a group that never matches."""
    alts = [re.escape(w.rstrip("*")) + (r"\w*" if w.endswith("*") else "") for w in words]
    return f"(?:{'|'.join(alts)})" if alts else "(?!)"


def longest_first(words: Iterable[str]) -> list[str]:
    """Phrases longest first, so that an alternation of them takes "a couple of" before "a"."""
    return sorted(words, key=len, reverse=True)


def word_pattern(words: Iterable[str]) -> re.Pattern[str]:
    """Whole words or phrases at word boundaries, case-insensitive; "*" matches any ending."""
    return re.compile(rf"\b{alternation(words)}\b", re.I)


class NameCue(BaseModel):
    """Words said just before a name, and where they count: after any word boundary, or only
    at the start of a sentence (or after one of ``or_after``: "no it's Anna")."""

    model_config = ConfigDict(extra="forbid")
    cue: list[str] = Field(min_length=1)
    at: Literal["word", "sentence"] = "word"
    or_after: list[str] = Field(default_factory=list)

    def pattern(self) -> str:
        said = alternation(self.cue)
        if self.at == "word":
            # "My name is. Peter Brown.": a pause after the cue, which the recognizer ended
            # with a stop (the bridge joins the two finals), or written as a comma or a dash.
            return rf"\b{said}(?:\s*[.,:;–—-])?\s+"
        starts = [r"^", r"[.,!?]\s*"]
        if self.or_after:
            starts.append(rf"\b{alternation(self.or_after)},?\s+")
        return rf"(?:{'|'.join(starts)}){said}\s+"


class LexiconFile(BaseModel):
    """lexicon.yaml as written; every table is keyed by locale."""

    model_config = ConfigDict(extra="forbid")
    affirmative: PerLocale
    negative: PerLocale
    not_negative: PerLocale
    intents: dict[str, PerLocale]
    question_words: PerLocale
    same_number: PerLocale
    pain: PerLocale
    symptoms: PerLocale
    booking_cues: PerLocale
    correction_openers: PerLocale
    correction_phrases: PerLocale
    change_topics: dict[str, PerLocale]
    not_names: PerLocale
    never_say: PerLocale
    weekdays: dict[str, dict[str, int]]
    relative_days: dict[str, dict[str, int]]
    next_week: PerLocale
    noon: PerLocale
    months: dict[str, dict[str, int]]
    ordinals: dict[str, dict[str, int]]
    day_parts: dict[str, dict[str, tuple[int, int]]]
    duration_units: dict[str, dict[str, DurationUnit]]
    spoken_numbers: dict[str, dict[str, int]] = Field(default_factory=dict)
    day_ordinals: dict[str, dict[str, int]] = Field(default_factory=dict)
    fillers: PerLocale = Field(default_factory=dict)
    decline: PerLocale = Field(default_factory=dict)
    greetings: PerLocale = Field(default_factory=dict)
    not_now: PerLocale = Field(default_factory=dict)
    no_thanks: PerLocale = Field(default_factory=dict)
    later_by: PerLocale = Field(default_factory=dict)
    after_time: PerLocale = Field(default_factory=dict)
    time_units: dict[str, dict[str, int]] = Field(default_factory=dict)
    # The words after a clock time that say which half of the day it is ("в 3 часа дня").
    meridiem: dict[str, dict[str, Literal["am", "pm"]]] = Field(default_factory=dict)
    modalities: dict[str, PerLocale]
    # The grammar's own words: a table may be empty for a locale, but every file names them all,
    # so that no clinic is left without one by leaving its key out.
    interjections: PerLocale
    plus: PerLocale
    question_openers: PerLocale
    correction_contrasts: dict[str, list[tuple[str, str]]]
    after_name: PerLocale
    spelling_breaks: PerLocale
    next_one: PerLocale
    day_of_month: PerLocale
    clock_at: PerLocale
    oclock: PerLocale
    minutes_past: dict[str, dict[str, Annotated[int, Field(gt=0, lt=60)]]]
    minutes_to: dict[str, dict[str, Annotated[int, Field(gt=0, lt=60)]]]
    to_hour: PerLocale
    quarter: PerLocale
    half_to_hour: PerLocale
    hour_words: PerLocale
    one_oclock: PerLocale
    minute_words: PerLocale
    unit_then_number: PerLocale
    duration_halves: dict[str, dict[str, Annotated[str, Field(pattern=_WRITTEN_DURATION)]]]
    one_of: PerLocale
    vague_counts: dict[str, dict[str, str]]
    since: PerLocale
    last: PerLocale
    start_of: PerLocale
    past_moments: PerLocale
    moment_words: PerLocale
    rough_durations: PerLocale
    single_units: PerLocale
    complaint_lead: PerLocale
    complaint_units: PerLocale
    complaint_openers: PerLocale
    not_a_date_after: PerLocale
    ago: PerLocale
    name_cues: dict[str, list[NameCue]]
    before_name: PerLocale
    age_units: PerLocale
    age_cues: PerLocale
    weight_units: dict[str, dict[str, Literal["kg", "lb"]]]
    weight_cues: PerLocale
    roughly: PerLocale


@dataclass(frozen=True)
class Lexicon:
    """The script's word lists for one locale."""

    yes: tuple[str, ...]
    no: tuple[str, ...]
    intents: dict[str, tuple[str, ...]]
    question_words: tuple[str, ...]
    same_number: tuple[str, ...]
    pain: tuple[str, ...]
    decline: tuple[str, ...] = ()
    # Said on picking up the phone ("Hello?"): nothing to read, nothing to ask the LLM about.
    greetings: tuple[str, ...] = ()
    # At the outbound opening's "is now a good time?": not now (a call back), and a refusal.
    not_now: tuple[str, ...] = ()
    no_thanks: tuple[str, ...] = ()
    # Said before a question word and no part of it ("and what…", "so how much…").
    question_openers: tuple[str, ...] = ()
    _compiled: dict[str, re.Pattern[str]] = field(default_factory=dict, compare=False, repr=False)

    def pattern(self, phrases: Sequence[str]) -> re.Pattern[str]:
        key = "\x00".join(phrases)
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = self._compiled[key] = phrase_pattern(phrases)
        return compiled

    def find(self, phrases: Sequence[str], text: str) -> re.Match[str] | None:
        return self.pattern(phrases).search(text) if phrases else None


@dataclass(frozen=True)
class Words:
    """The tables read in every locale, merged in the file's locale order."""

    weekdays: dict[str, int]
    months: dict[str, int]
    ordinals: dict[str, int]
    day_parts: dict[str, tuple[int, int]]
    duration_units: dict[str, str]
    spoken_numbers: dict[str, int]
    day_ordinals: dict[str, int]
    fillers: re.Pattern[str] | None
    not_names: frozenset[str]
    not_negative: re.Pattern[str]
    symptoms: re.Pattern[str]
    booking_cues: re.Pattern[str]
    correction_cues: re.Pattern[str]
    relative_days: list[tuple[re.Pattern[str], int]]
    next_week: re.Pattern[str]
    noon: re.Pattern[str]
    change_topics: dict[str, re.Pattern[str]]
    never_say: re.Pattern[str]
    modalities: dict[str, re.Pattern[str]]
    # Regex alternations (see ``alternation``), composed with the grammar in parsers.py.
    name_cues: tuple[str, ...]  # each cue with its position, in the order they are tried
    before_name: str
    age_units: str
    age_cues: str
    kg_units: str
    lb_units: str
    weight_cues: str
    roughly: str
    # Calling back: "in two hours", "через час" (the units in minutes), "after six", "после 6".
    later_by: str
    after_time: str
    time_units: dict[str, int]
    # Sounds dropped once numbers are digits ("Oh, hi"); the "+" of a phone number said.
    interjections: re.Pattern[str]
    plus: str
    after_name: str  # "Nancy White here"
    spelling_breaks: str  # between the words of a spelled name: "J O N space S M I T H"
    next_one: str  # "next Tuesday": the one in next week
    day_of_month: str  # "пятого числа"
    # Clock times: "at 3", "3 o'clock", "half past 3", "quarter to 4"; and the Russian way,
    # "без 15 минут 3", "без четверти час", "в половине третьего", "10 часов 30 минут".
    clock_at: str
    oclock: str
    minutes_past: dict[str, int]
    minutes_to: dict[str, int]
    to_hour: str
    quarter: str
    half_to_hour: str
    hour_words: str
    one_oclock: str
    minute_words: str
    # How long a complaint has lasted (see parse_duration); the units by their start
    # ("недел*" is "неделями" too) besides ``duration_units``, which are whole words.
    duration_stems: dict[str, str]
    unit_then_number: str
    duration_halves: dict[str, str]
    one_of: str
    vague_counts: dict[str, str]
    since: str
    last: str
    start_of: str
    past_moments: str
    moment_words: str
    rough_durations: str
    single_units: str
    # What is left out of the complaint in the caller's words, and out of what is read for a
    # day to book ("since Monday" is no day to come in).
    complaint_lead: str
    complaint_units: str
    complaint_openers: str
    not_a_date_after: str
    ago: str
    meridiem: dict[str, str] = field(default_factory=dict)  # "дня": "pm"


def _merged(table: dict[str, dict[str, Any]], locales: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for locale in locales:
        out.update(table.get(locale, {}))
    return out


def _all(table: PerLocale, locales: Sequence[str]) -> list[str]:
    return [w for locale in locales for w in table.get(locale, [])]


def _alt(table: PerLocale, locales: Sequence[str]) -> str:
    """A regex group of a table's words in every locale, longest first."""
    return alternation(longest_first(_all(table, locales)))


def lexicon_for(lex: LexiconFile, locale: str) -> Lexicon:
    return Lexicon(
        yes=tuple(lex.affirmative.get(locale, [])),
        no=tuple(lex.negative.get(locale, [])),
        intents={name: tuple(per.get(locale, [])) for name, per in lex.intents.items()},
        question_words=tuple(lex.question_words.get(locale, [])),
        same_number=tuple(lex.same_number.get(locale, [])),
        pain=tuple(lex.pain.get(locale, [])),
        decline=tuple(lex.decline.get(locale, [])),
        greetings=tuple(lex.greetings.get(locale, [])),
        not_now=tuple(lex.not_now.get(locale, [])),
        no_thanks=tuple(lex.no_thanks.get(locale, [])),
        question_openers=tuple(lex.question_openers.get(locale, [])),
    )


def words_of(lex: LexiconFile, locales: Sequence[str]) -> Words:
    weekdays = _merged(lex.weekdays, locales)
    months = _merged(lex.months, locales)
    relative = _merged(lex.relative_days, locales)
    weight_units: dict[str, str] = _merged(lex.weight_units, locales)
    openers = "|".join(re.escape(w) for w in _all(lex.correction_openers, locales)) or "(?!)"
    anywhere = (
        "|".join(
            [re.escape(w) for w in _all(lex.correction_phrases, locales)]
            + [
                rf"{re.escape(before)} \w+ {re.escape(after)}"  # "not Monday but Tuesday"
                for loc in locales
                for before, after in lex.correction_contrasts.get(loc, [])
            ]
        )
        or "(?!)"
    )
    units: dict[str, str] = _merged(lex.duration_units, locales)
    # Fillers inside a phrase that means yes ("uh huh", "mm hmm") are words there.
    fillers = list(dict.fromkeys(_all(lex.fillers, locales)))
    yes_sounds = [
        phrase
        for phrase in _all(lex.affirmative, locales)
        if any(w in fillers for w in re.split(r"[\s-]+", phrase))
    ]
    return Words(
        weekdays=weekdays,
        months=months,
        ordinals=_merged(lex.ordinals, locales),
        day_parts=_merged(lex.day_parts, locales),
        duration_units={w: u for w, u in units.items() if not w.endswith("*")},
        duration_stems={w.rstrip("*"): u for w, u in units.items() if w.endswith("*")},
        spoken_numbers=_merged(lex.spoken_numbers, locales),
        day_ordinals=_merged(lex.day_ordinals, locales),
        # A filler is dropped with the comma after it; a yes made of fillers ("uh huh", "mm
        # hmm") is kept whole: the group "keep".
        fillers=(
            re.compile(
                rf"(?<![\w'-])(?:(?P<keep>{alternation(longest_first(yes_sounds))})(?![\w'-])"
                rf"|{alternation(longest_first(fillers))}(?![\w'-]),?)",
                re.I,
            )
            if fillers
            else None
        ),
        # A weekday or a month at the start of a sentence is not a name either.
        not_names=frozenset(_all(lex.not_names, locales)) | set(weekdays) | set(months),
        not_negative=word_pattern(_all(lex.not_negative, locales)),
        symptoms=phrase_pattern(_all(lex.symptoms, locales)),
        booking_cues=word_pattern(_all(lex.booking_cues, locales)),
        # "No, …", "Actually …" open a correction; "I mean", "not X but" anywhere.
        correction_cues=re.compile(rf"^(?:{openers})\b|\b(?:{anywhere})\b", re.I),
        # The longest way ahead first: "day after tomorrow" before "tomorrow".
        relative_days=[
            (word_pattern([w for w, d in relative.items() if d == days]), days)
            for days in sorted(set(relative.values()), reverse=True)
        ],
        next_week=word_pattern(_all(lex.next_week, locales)),
        noon=word_pattern(_all(lex.noon, locales)),
        change_topics={
            slot: word_pattern(_all(per, locales)) for slot, per in lex.change_topics.items()
        },
        never_say=word_pattern(_all(lex.never_say, locales)),
        modalities={m: word_pattern(_all(per, locales)) for m, per in lex.modalities.items()},
        name_cues=tuple(c.pattern() for loc in locales for c in lex.name_cues.get(loc, [])),
        before_name=alternation(_all(lex.before_name, locales)),
        age_units=alternation(_all(lex.age_units, locales)),
        age_cues=alternation(_all(lex.age_cues, locales)),
        kg_units=alternation(w for w, u in weight_units.items() if u == "kg"),
        lb_units=alternation(w for w, u in weight_units.items() if u == "lb"),
        weight_cues=alternation(_all(lex.weight_cues, locales)),
        roughly=alternation(_all(lex.roughly, locales)),
        later_by=alternation(_all(lex.later_by, locales)),
        after_time=alternation(_all(lex.after_time, locales)),
        time_units=_merged(lex.time_units, locales),
        interjections=word_pattern(_all(lex.interjections, locales)),
        plus=_alt(lex.plus, locales),
        after_name=_alt(lex.after_name, locales),
        spelling_breaks=_alt(lex.spelling_breaks, locales),
        next_one=_alt(lex.next_one, locales),
        day_of_month=_alt(lex.day_of_month, locales),
        clock_at=_alt(lex.clock_at, locales),
        oclock=_alt(lex.oclock, locales),
        minutes_past=_merged(lex.minutes_past, locales),
        minutes_to=_merged(lex.minutes_to, locales),
        to_hour=_alt(lex.to_hour, locales),
        quarter=_alt(lex.quarter, locales),
        half_to_hour=_alt(lex.half_to_hour, locales),
        hour_words=_alt(lex.hour_words, locales),
        one_oclock=_alt(lex.one_oclock, locales),
        minute_words=_alt(lex.minute_words, locales),
        unit_then_number=_alt(lex.unit_then_number, locales),
        duration_halves=_merged(lex.duration_halves, locales),
        one_of=_alt(lex.one_of, locales),
        vague_counts=_merged(lex.vague_counts, locales),
        since=_alt(lex.since, locales),
        last=_alt(lex.last, locales),
        start_of=_alt(lex.start_of, locales),
        past_moments=_alt(lex.past_moments, locales),
        moment_words=_alt(lex.moment_words, locales),
        rough_durations=_alt(lex.rough_durations, locales),
        single_units=_alt(lex.single_units, locales),
        complaint_lead=_alt(lex.complaint_lead, locales),
        complaint_units=_alt(lex.complaint_units, locales),
        complaint_openers=_alt(lex.complaint_openers, locales),
        not_a_date_after=_alt(lex.not_a_date_after, locales),
        ago=_alt(lex.ago, locales),
        meridiem=_merged(lex.meridiem, locales),
    )


def problems(lex: LexiconFile, locales: Sequence[str], needed_intents: Iterable[str]) -> list[str]:
    """What the engine needs and the file lacks: a locale's list, an intent, a table."""
    out = []
    for name in ("affirmative", "negative", "question_words"):
        table: PerLocale = getattr(lex, name)
        out += [f"{name}: no {loc!r} words" for loc in locales if not table.get(loc)]
    out += [f"intents: {i!r} is missing" for i in needed_intents if i not in lex.intents]
    for name in ("weekdays", "months"):
        per: dict[str, dict[str, int]] = getattr(lex, name)
        for loc in locales:
            values = set(per.get(loc, {}).values())
            expected = set(range(7)) if name == "weekdays" else set(range(1, 13))
            if not expected <= values:
                out.append(f"{name}: {loc!r} does not name {sorted(expected - values)}")
    for slot in lex.change_topics:
        if not any(lex.change_topics[slot].values()):
            out.append(f"change_topics: {slot!r} has no words")
    # Words read as a duration's unit must be one of duration_units, whole or by its start.
    units = _merged(lex.duration_units, locales)
    stems = [w.rstrip("*") for w in units if w.endswith("*")]
    for name in ("unit_then_number", "single_units"):
        for word in _all(getattr(lex, name), locales):
            if word.rstrip("*") not in units and not any(word.startswith(s) for s in stems):
                out.append(f"{name}: {word!r} is not in duration_units")
    return out
