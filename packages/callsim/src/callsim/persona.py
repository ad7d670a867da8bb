"""Persona callers: facts and a manner, answering the question the agent actually asked.

A fixed-line script says its lines in order, so one re-ask puts every later line against the
wrong question. A persona hears each turn of the agent (its sentences), works out what it asks
from a table of question patterns (``questions.yaml``, package data; a script may put its own
entries first), and answers from its facts in its own manner: brief one-word answers, a
hesitation with a real pause, a later answer volunteered early, one slip corrected, the phone
number on the keypad when the agent offers it, the name letter by letter when asked to spell.
It also listens to what the agent says back (the day and time it holds, the name it confirms)
and says no when that is not what it asked for, as a caller would.

At the end it says which outcome would be right: booked (or not) with every slot it gave.
"""

from __future__ import annotations

import collections
import itertools
import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cache
from importlib import resources
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
YES_NO_ASKS = frozenset(
    {
        "visited_doctor",
        "study_decision",
        "video_conclusion",
        "time_confirmed",
        "contraindications",
        "discount",
        "confirm_booking",
        "good_time",  # an outbound call's "is now a good time to talk?"
    }
)
#: Asks a persona answers; a table entry naming another is refused when the script loads.
ASKS = frozenset(
    {
        "client_name",
        "spell_name",
        "symptoms",
        "symptoms_duration",
        "pain_character",
        "study_requested",
        "appointment_date",
        "appointment_time",
        "phone",
        "keypad_phone",
        "keypad_yes_no",
        "age_weight",
        "age",
        "weight_kg",
        "offer_person",
        "correction",
    }
    | YES_NO_ASKS
)
NOTES = frozenset({"day_refused", "time_refused", "phone_read_back"})
# Facts a persona can volunteer with another answer, or say wrong once and then correct.
SAYABLE = frozenset(
    {
        "client_name",
        "symptoms",
        "symptoms_duration",
        "pain_character",
        "appointment_date",
        "phone",
        "age",
        "weight_kg",
    }
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class QuestionRule(_Strict):
    pattern: str
    ask: str | None = None
    note: str | None = None

    @model_validator(mode="after")
    def _valid(self) -> QuestionRule:
        if (self.ask is None) == (self.note is None):
            raise ValueError("a rule has exactly one of ask or note")
        if self.ask is not None and self.ask not in ASKS:
            raise ValueError(f"unknown ask {self.ask!r}; known: {', '.join(sorted(ASKS))}")
        if self.note is not None and self.note not in NOTES:
            raise ValueError(f"unknown note {self.note!r}; known: {', '.join(sorted(NOTES))}")
        try:
            re.compile(self.pattern)
        except re.error as exc:
            raise ValueError(f"pattern {self.pattern!r}: {exc}") from None
        return self


class Facts(_Strict):
    """What the caller knows about itself and wants; None: it has no answer and says so."""

    client_name: str = Field(min_length=2)
    #: Digits the caller gives (``+`` and a country code allowed); None: "this number".
    phone: str | None = Field(None, pattern=r"^\+?[0-9]{7,15}$")
    age: int | None = Field(None, ge=1, le=120)
    weight_kg: int | None = Field(None, ge=2, le=300)
    symptoms: str = Field(min_length=3)
    symptoms_duration: str = "two weeks"
    pain_character: str = "aching"
    visited_doctor: bool = False
    study_requested: str | None = None  # what the doctor asked for, if the caller saw one
    book: bool = True  # says yes when the agent asks whether to book the study
    video_conclusion: bool = False
    #: Days in the order the caller would take them (a weekday, "tomorrow"); refused days are
    #: dropped and the next is offered.
    days: list[str] = Field(default_factory=lambda: ["Tuesday"], min_length=1)
    #: Of the times the agent offers: first, second, last, morning, afternoon, evening, or a
    #: time ("2 PM", "10:30 AM"); one not offered falls back to the first offered.
    time: str = "first"
    contraindications: bool = False
    discount: bool = False
    wants_person: bool = False

    @field_validator("days")
    @classmethod
    def _days(cls, days: list[str]) -> list[str]:
        for day in days:
            if day.lower() not in (*WEEKDAYS, "tomorrow"):
                raise ValueError(f"day {day!r}: a weekday name or 'tomorrow'")
        return days


class Correction(_Strict):
    """One slip, put right: ``first`` is said where ``fact`` is asked, then the true value."""

    fact: str
    first: str | int
    #: same_breath: "Monday. No, sorry, Wednesday." later: at the next answer, before it.
    when: Literal["same_breath", "later"] = "later"

    @field_validator("fact")
    @classmethod
    def _fact(cls, fact: str) -> str:
        if fact not in SAYABLE:
            raise ValueError(f"correct: fact {fact!r} is not one of {', '.join(sorted(SAYABLE))}")
        return fact


class Manner(_Strict):
    brief: bool = False  # one-word answers where one word will do
    #: Asks answered after a filler and a real pause ("Um, let me think... Tuesday.").
    hesitate: list[str] = Field(default_factory=list)
    hesitation_pause_ms: int = Field(700, ge=100, le=3000)
    #: Facts said along with the answer to an ask, before the agent asks for them.
    volunteer: dict[str, list[str]] = Field(default_factory=dict)
    correct: Correction | None = None
    keypad: bool = True  # types the phone number when the agent offers the keypad
    #: Said first, instead of the answer to the greeting's question.
    opening: str | None = None

    @model_validator(mode="after")
    def _known(self) -> Manner:
        for ask in [*self.hesitate, *self.volunteer]:
            if ask not in ASKS:
                raise ValueError(f"unknown ask {ask!r}; known: {', '.join(sorted(ASKS))}")
        for facts in self.volunteer.values():
            for fact in facts:
                if fact not in SAYABLE:
                    raise ValueError(f"volunteer: {fact!r} is not one of {sorted(SAYABLE)}")
        return self


class PersonaSpec(_Strict):
    facts: Facts
    manner: Manner = Field(default_factory=Manner)
    questions: list[QuestionRule] = Field(default_factory=list)
    #: Seconds the persona waits for more of the agent's turn when it has heard no question.
    patience_s: float = Field(4.0, gt=0, le=30)
    #: Seconds of the agent's silence after which the caller asks whether anyone is there; as
    #: long again and it hangs up.
    hello_after_s: float = Field(10.0, gt=0, le=60)
    #: Turns of the agent it answers before it gives up and hangs up.
    max_turns: int = Field(40, ge=1, le=200)


@dataclass(frozen=True)
class Table:
    questions: list[tuple[re.Pattern[str], str]]
    notes: list[tuple[re.Pattern[str], str]]


@cache
def default_rules() -> tuple[QuestionRule, ...]:
    text = resources.files("callsim").joinpath("questions.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    return tuple(QuestionRule.model_validate(rule) for rule in [*data["questions"], *data["notes"]])


def table(extra: list[QuestionRule] | None = None) -> Table:
    rules = [*(extra or []), *default_rules()]
    return Table(
        questions=[(re.compile(r.pattern, re.I), r.ask) for r in rules if r.ask is not None],
        notes=[(re.compile(r.pattern, re.I), r.note) for r in rules if r.note is not None],
    )


def sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.?!])\s+", text.strip()) if s]


def question_of(text: str, rules: Table | None = None) -> str | None:
    """What the agent's turn asks: the last sentence a question pattern matches decides."""
    rules = rules or table()
    for sentence in reversed(sentences(text)):
        for pattern, ask in rules.questions:
            if pattern.search(sentence):
                return ask
    return None


def notes_of(text: str, rules: Table | None = None) -> list[str]:
    rules = rules or table()
    return [note for pattern, note in rules.notes if pattern.search(text)]


_TIME = re.compile(r"\b(\d{1,2})(?::(\d{2}))?\s*([ap])\.?\s?m\b\.?|\b(\d{1,2}):(\d{2})\b", re.I)


def offered_times(text: str) -> list[tuple[str, str]]:
    """Times in the agent's words, as (how it said them, HH:MM)."""
    out = []
    for m in _TIME.finditer(text):
        if m.group(1) is not None:
            hour, minute = int(m.group(1)) % 12, int(m.group(2) or 0)
            if m.group(3).lower() == "p":
                hour += 12
        else:
            hour, minute = int(m.group(4)), int(m.group(5))
        if hour < 24 and minute < 60:
            out.append((m.group(0).strip().rstrip("."), f"{hour:02d}:{minute:02d}"))
    return out


def spoken_digits(digits: str) -> str:
    """A phone number as people read it: in groups, digit by digit."""
    groups = [digits[:-7], digits[-7:-4], digits[-4:]] if len(digits) > 7 else [digits]
    return ", ".join(" ".join(DIGIT_WORDS[int(d)] for d in g) for g in groups if g)


def national(number: str) -> str:
    digits = re.sub(r"\D", "", number)
    return digits[1:] if number.startswith("+1") and len(digits) == 11 else digits


@dataclass
class Reply:
    """What the persona does next: say ``parts`` (apart by ``pause_ms``), press ``dtmf``, or
    hang up."""

    ask: str | None
    parts: list[str] = field(default_factory=list)
    dtmf: str | None = None
    hangup: bool = False
    pause_ms: int = 0

    @property
    def text(self) -> str:
        return " ".join(self.parts)


class Persona:
    """One caller's side of the conversation; ``respond`` takes each turn of the agent."""

    def __init__(self, spec: PersonaSpec, caller_number: str, today: date | None = None) -> None:
        self.spec = spec
        self.facts = spec.facts
        self.manner = spec.manner
        self.caller_number = caller_number
        self.today = today or date.today()
        self.rules = table(spec.questions)
        self.asks: list[str | None] = []  # what each agent turn asked, in order
        self.days = list(self.facts.days)
        self.day_said: str | None = None
        self.time_chosen: str | None = None  # HH:MM
        self.refused_times: set[str] = set()
        self.told: set[str] = set()  # facts said at least once
        self._slip_pending: str | None = None  # a correction still to say
        self._slipped = False
        self._fix: list[str] = []  # what to change, after saying no to a read-back
        self._opened = False
        self._unknown_in_row = 0
        self._last_yes_no: str | None = None

    # ------------------------------------------------------------------ one turn

    def respond(self, agent_text: str) -> Reply:
        ask = question_of(agent_text, self.rules)
        self.asks.append(ask)
        for note in notes_of(agent_text, self.rules):
            if note == "day_refused" and self.day_said is not None and len(self.days) > 1:
                self.days = [d for d in self.days if d != self.day_said] or self.days
            elif note == "time_refused" and self.time_chosen is not None:
                self.refused_times.add(self.time_chosen)
        if len(self.asks) > self.spec.max_turns:
            return Reply(ask, ["Sorry, I have to go. Goodbye."], hangup=True)
        if ask is None:
            self._unknown_in_row += 1
            if self._unknown_in_row >= 3:
                return Reply(ask, ["I'm sorry, I don't follow. Goodbye."], hangup=True)
            return Reply(ask, ["Sorry, could you say that again?"])
        self._unknown_in_row = 0
        if ask in YES_NO_ASKS:
            self._last_yes_no = ask
        if not self._opened:
            self._opened = True
            if self.manner.opening:
                return Reply(ask, [self.manner.opening])
        if ask == "keypad_phone" and self.manner.keypad:
            self.told.add("phone")
            return Reply(ask, dtmf=national(self.facts.phone or self.caller_number))
        if ask == "keypad_yes_no" and self._last_yes_no is not None:
            return Reply(ask, dtmf="1" if self._yes(self._last_yes_no, agent_text) else "2")
        # A slip made in an earlier answer is put right before this one.
        pending, self._slip_pending = self._slip_pending, None
        reply = Reply(ask, self._answer(ask, agent_text))
        if pending is not None:
            reply.parts.insert(0, pending)
        for fact in self.manner.volunteer.get(ask, []):
            if fact not in self.told:
                reply.parts.append(self._say_fact(fact, brief=False))
        if ask in self.manner.hesitate and reply.parts:
            reply.parts.insert(0, "Um, let me think.")
            reply.pause_ms = self.manner.hesitation_pause_ms
        return reply

    # ------------------------------------------------------------------ answers

    def _answer(self, ask: str, agent_text: str) -> list[str]:
        f, brief = self.facts, self.manner.brief
        if ask in YES_NO_ASKS:
            return [self._yes_no_words(ask, agent_text)]
        if ask == "spell_name":
            words = f.client_name.split()
            return [", ".join(" ".join(w.upper()) for w in words) + "."]
        if ask == "keypad_phone":  # a persona that will not use the keypad says it again
            return [self._say_fact("phone", brief=brief)]
        if ask == "keypad_yes_no":
            return ["Sorry, what was the question?"]
        if ask == "offer_person":
            return ["Yes, please." if f.wants_person else "No, let's carry on."]
        if ask == "correction":
            if self._fix:
                fix, self._fix = " ".join(self._fix), []
                return [fix]
            return ["Nothing, it is all correct."]
        if ask == "study_requested":
            if f.study_requested:
                return [f.study_requested + "." if brief else f"Yes, {f.study_requested}."]
            return ["No." if brief else "No, nothing in particular."]
        if ask == "appointment_time":
            return [self._choose_time(agent_text)]
        if ask == "age_weight":
            if brief and f.age is not None and f.weight_kg is not None:
                self.told |= {"age", "weight_kg"}
                age, weight = self._slip_or("age", f.age), self._slip_or("weight_kg", f.weight_kg)
                return [f"{age}, {weight} kilos."]
            return [self._say_fact("age", brief=brief), self._say_fact("weight_kg", brief=brief)]
        return [self._say_fact(ask, brief=brief)]

    def _slip_or(self, fact: str, value: Any) -> Any:
        """The value to say now: the slip the first time the corrected fact is asked."""
        c = self.manner.correct
        if c is None or c.fact != fact or self._slipped:
            return value
        self._slipped = True
        if c.when == "same_breath":
            return f"{c.first}. No, sorry, {value}"
        self._slip_pending = f"Sorry, I said that wrong before: {self._fact_sentence(fact, value)}"
        return c.first

    def _say_fact(self, fact: str, *, brief: bool) -> str:
        f = self.facts
        self.told.add(fact)
        if fact == "appointment_date":
            day = self.days[0]
            said = self._slip_or(fact, day)
            self.day_said = day  # what it asks for in the end: a slip is put right
            return f"{said}." if brief else f"{said}, please."
        value: Any
        if fact == "client_name":
            value = self._slip_or(fact, f.client_name)
            return f"{value}." if brief else f"My name is {value}."
        if fact == "phone":
            if f.phone is None:
                return "This number." if brief else "You can call me on this number."
            value = self._slip_or(fact, spoken_digits(national(f.phone)))
            return f"{value}." if brief else f"It's {value}."
        if fact == "age":
            if f.age is None:
                return "I'd rather not say my age."
            value = self._slip_or(fact, f.age)
            return f"{value}." if brief else f"I'm {value} years old."
        if fact == "weight_kg":
            if f.weight_kg is None:
                return "I'd rather not say my weight."
            value = self._slip_or(fact, f.weight_kg)
            return f"{value} kilos." if brief else f"I weigh {value} kilos."
        if fact == "symptoms":
            return str(self._slip_or(fact, f.symptoms)).rstrip(".") + "."
        if fact == "symptoms_duration":
            value = self._slip_or(fact, f.symptoms_duration)
            if brief:
                return f"{str(value).capitalize()}."
            vague = re.match(r"(about|around|a few|since|over|almost|nearly)\b", str(value))
            return f"For {value}." if vague else f"For about {value}."
        if fact == "pain_character":
            value = self._slip_or(fact, f.pain_character)
            return f"{str(value).capitalize()}." if brief else f"It's {value}."
        raise ValueError(f"no fact {fact!r} to say")

    def _fact_sentence(self, fact: str, value: Any) -> str:
        return {
            "client_name": f"my name is {value}.",
            "phone": f"my number is {spoken_digits(national(str(self.facts.phone)))}."
            if self.facts.phone
            else "you can call me on this number.",
            "age": f"I'm {value}.",
            "weight_kg": f"I weigh {value} kilos.",
            "appointment_date": f"I'd like {value}.",
            "symptoms_duration": f"it's been {value}.",
            "pain_character": f"the pain is {value}.",
            "symptoms": f"{value}",
        }[fact]

    def _yes(self, ask: str, agent_text: str) -> bool:
        f = self.facts
        if ask == "time_confirmed":
            return not self._check_hold(agent_text, fix=False)
        if ask == "confirm_booking":
            return not self._check_hold(agent_text, fix=False, name=True)
        value = {
            "visited_doctor": f.visited_doctor,
            "study_decision": f.book,
            "video_conclusion": f.video_conclusion,
            "contraindications": f.contraindications,
            "discount": f.discount,
            "good_time": getattr(f, "good_time", True),
        }[ask]
        return bool(value)

    def _yes_no_words(self, ask: str, agent_text: str) -> str:
        brief = self.manner.brief
        if ask in ("time_confirmed", "confirm_booking"):
            wrong = self._check_hold(agent_text, fix=True, name=ask == "confirm_booking")
            if wrong:
                return "No, that's not right."
            if ask == "time_confirmed":
                return "Yes." if brief else "Yes, that works."
            return "Yes." if brief else "Yes, please confirm it."
        yes = self._yes(ask, agent_text)
        if brief:
            return "Yes." if yes else "No."
        return {
            ("visited_doctor", True): "Yes, I have.",
            ("visited_doctor", False): "No, I haven't.",
            ("study_decision", True): "Yes, please.",
            ("study_decision", False): "No, thank you.",
            ("video_conclusion", True): "Yes, I'd like that.",
            ("video_conclusion", False): "No, thank you.",
            ("contraindications", True): "Yes, I have a metal implant.",
            ("contraindications", False): "No, none of those.",
            ("discount", True): "Yes, I'm a senior.",
            ("discount", False): "No, I don't.",
        }[(ask, yes)]

    def _check_hold(self, agent_text: str, *, fix: bool, name: bool = False) -> bool:
        """Whether what the agent reads back differs from what the caller asked for; with
        ``fix``, what to say when asked what to change."""
        text = agent_text.lower()
        fixes = []
        said_days = [d for d in WEEKDAYS if re.search(rf"\b{d}\b", text)]
        want = (self.day_said or "").lower()
        if want in WEEKDAYS and said_days and want not in said_days:
            fixes.append(f"The day: I wanted {self.day_said}.")
        times = [hhmm for _, hhmm in offered_times(agent_text)]
        if self.time_chosen is not None and times and self.time_chosen not in times:
            fixes.append(f"The time: I wanted {_say_time(self.time_chosen)}.")
        if name:
            first = self.facts.client_name.split()[0].lower()
            if first not in text:
                fixes.append(f"My name: it's {self.facts.client_name}.")
        if fix:
            self._fix = fixes
        return bool(fixes)

    def _choose_time(self, agent_text: str) -> str:
        offered = [(s, t) for s, t in offered_times(agent_text) if t not in self.refused_times]
        want = self.facts.time.lower()
        brief = self.manner.brief
        if not offered:
            return "Whatever you have." if brief else "Whatever time you have, please."
        pick: tuple[str, str] | None = None
        words = want
        by_word = {"first": 0, "second": 1, "last": -1}
        if want in by_word and (want != "second" or len(offered) > 1):
            pick = offered[by_word[want]]
            words = f"The {want} one."
        elif want in ("morning", "afternoon", "evening"):
            span = {"morning": (0, 12), "afternoon": (12, 17), "evening": (17, 24)}[want]
            pick = next((o for o in offered if span[0] <= int(o[1][:2]) < span[1]), None)
            words = f"Something in the {want}, please."
        else:
            wanted = offered_times(self.facts.time)
            hhmm = wanted[0][1] if wanted else None
            pick = next((o for o in offered if o[1] == hhmm), None)
            words = f"{pick[0]}, please." if pick else ""
        if pick is None:
            pick = offered[0]
            words = f"{pick[0]}, please." if not brief else f"{pick[0]}."
        self.time_chosen = pick[1]
        return words

    # ------------------------------------------------------------------ the verdict

    def expected(self) -> dict[str, Any]:
        """The outcome that would be right for this caller: status and slots."""
        f = self.facts
        if not f.book:
            return {"status": "not_interested", "slots": {}}
        if f.wants_person:
            return {"status": "transferred", "slots": {}}
        slots: dict[str, Any] = {
            "client_name": f.client_name,
            "phone": national(f.phone or self.caller_number),
            "video_conclusion": f.video_conclusion,
            "contraindications": f.contraindications,
            "discount": f.discount,
        }
        if f.age is not None:
            slots["age"] = f.age
        if f.weight_kg is not None:
            slots["weight_kg"] = f.weight_kg
        day = (self.day_said or self.days[0]).lower()
        slots["appointment_date"] = (
            (self.today + timedelta(days=1)).isoformat() if day == "tomorrow" else day
        )
        if self.time_chosen is not None:
            slots["appointment_time"] = self.time_chosen
        return {"status": "booked", "slots": slots}

    def checks(self, status: str | None, slots: dict[str, Any]) -> list[dict[str, Any]]:
        """Every expected value against the outcome's, each passed or not."""
        want = self.expected()
        out = [_check("status", want["status"], status, want["status"] == status)]
        for slot, value in want["slots"].items():
            actual = slots.get(slot)
            out.append(_check(f"slots.{slot}", value, actual, _slot_matches(slot, value, actual)))
        return out

    def repeats(self) -> dict[str, Any]:
        """The longest run of the same question, turn after turn, the runs over two, and the
        question asked most often in the call."""
        longest, runs = 0, []
        for ask, group in itertools.groupby(self.asks):
            times = len(list(group))
            if ask is None:
                continue
            longest = max(longest, times)
            if times > 2:
                runs.append({"ask": ask, "times": times})
        counts = collections.Counter(a for a in self.asks if a is not None)
        most = counts.most_common(1)
        return {
            "max_in_row": longest,
            "over_two": runs,
            # A question that comes back between others (asked, a person offered, asked
            # again...) loops too, though never more than twice in a row.
            "most_asked": {"ask": most[0][0], "times": most[0][1]} if most else None,
        }


def _say_time(hhmm: str) -> str:
    hour, minute = int(hhmm[:2]), int(hhmm[3:])
    suffix = "AM" if hour < 12 else "PM"
    hour12 = hour % 12 or 12
    return f"{hour12}:{minute:02d} {suffix}" if minute else f"{hour12} {suffix}"


def _check(name: str, expected: Any, actual: Any, passed: bool) -> dict[str, Any]:
    return {"check": name, "expected": expected, "actual": actual, "passed": passed}


def _slot_matches(slot: str, expected: Any, actual: Any) -> bool:
    if actual is None:
        return False
    if slot == "client_name":
        return str(actual).strip().lower() == str(expected).lower()
    if slot == "phone":
        return national(str(actual)).endswith(str(expected)) or str(expected).endswith(
            national(str(actual))
        )
    if slot in ("age", "weight_kg"):
        return isinstance(actual, int | float) and abs(float(actual) - float(expected)) < 0.51
    if slot == "appointment_date":
        if str(expected) in WEEKDAYS:
            try:
                return bool(WEEKDAYS[date.fromisoformat(str(actual)).weekday()] == expected)
            except ValueError:
                return False
        return str(actual) == str(expected)
    return bool(actual == expected)
