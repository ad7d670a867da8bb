"""The clinic script as data: loading and validating prompts/clinic/*.yaml.

A clinic edits these files without touching code. Everything the engine relies on is checked
at start-up, and a broken script is refused with a message naming the file and the state.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, time
from pathlib import Path
from typing import Any, Literal, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from callkit.errors import ConfigError, validation_problems
from policy_engine.lexicon import Lexicon, LexiconFile, Words, lexicon_for, words_of
from policy_engine.lexicon import problems as lexicon_problems

Kind = Literal["question", "announce", "exit", "end"]
# What a question does once it has failed twice in a row: ask to spell the name, offer the
# keypad, go on without the slot, or offer a person.
Strategy = Literal["spell", "keypad", "skip", "offer_person"]
Localized = dict[str, str]

# Every slot the engine knows how to fill, with what it holds.
SLOTS: dict[str, str] = {
    "client_name": "the caller's name",
    "symptoms": "what bothers the caller, in their words",
    "symptoms_duration": "how long it has lasted",
    "pain_character": "sharp, dull, aching…",
    "visited_doctor": "yes/no",
    "study_requested": "yes/no: a doctor asked for a study",
    "study_type": "catalogue id of the study",
    "study_decision": "yes/no: wants the study",
    "video_conclusion": "yes/no",
    "appointment_date": "ISO date",
    "appointment_time": "HH:MM, held in Redis",
    "time_confirmed": "yes/no",
    "phone": "E.164",
    "age": "years",
    "weight_kg": "kilograms",
    "contraindications": "yes/no (details in contraindication_notes)",
    "discount": "yes/no",
    "appointment_confirmed": "yes/no",
    "correction": "what the caller asked to change",
    "good_time": "yes/no: the person called has time to talk now (the outbound opening)",
    "callback_at": "when to call back, ISO-8601 UTC (the dialer reads it)",
}
YES_NO_SLOTS = frozenset(
    [
        "visited_doctor",
        "study_requested",
        "study_decision",
        "video_conclusion",
        "time_confirmed",
        "contraindications",
        "discount",
        "appointment_confirmed",
        "good_time",
    ]
)
# Yes/no slots whose no means "not now": a call back, and a refusal ends the call as not
# interested instead of answering the question.
NOT_NOW_SLOTS = frozenset(["good_time"])
# Slots a booking can do without: a question about them may be skipped after two failures.
OPTIONAL_SLOTS = frozenset(
    [
        "client_name",
        "symptoms",
        "symptoms_duration",
        "pain_character",
        "visited_doctor",
        "study_requested",
        "video_conclusion",
        "age",
        "weight_kg",
        "discount",
    ]
)
# Slots whose value is a number the caller may key in: while one is asked for, every key
# pressed is part of it (a 0 too, which elsewhere asks for a person).
NUMBER_SLOTS = frozenset(["phone", "age", "weight_kg"])
# Placeholders a text may use; the engine fills them per call.
PLACEHOLDERS = frozenset(
    [
        "client_name",
        "study_name",
        "study_name_cap",
        "price",
        "prices_from",
        "video_price",
        "total_price",
        "date",
        "time",
        "times",
        "address",
        "clinic_phone",
        "hours",
        "discount_percent",
        "horizon_days",
        "clinic_name",
        "agent_name",
        "phone_digits",
        "call_reason",
        "callback_when",
    ]
)


class EngineState(NamedTuple):
    kind: Kind
    why: str


# The states the engine names in code. Each must be in script.yaml with this kind, so renaming
# one there is refused at start-up instead of silently changing what a call does.
EXIT_INTENTS: dict[str, str] = {
    # First: "I'm not interested, don't call me again" is an opt-out.
    "opt_out": "goodbye_opt_out",
    "wants_human": "transfer_to_human",
    "wrong_number": "goodbye_wrong_number",
    "not_interested": "goodbye_not_interested",
    "call_back_later": "goodbye_callback",
}
SILENCE_EXIT = "goodbye_silence"
VOICEMAIL_EXIT = "leave_voicemail"
UNRESOLVED_EXIT = "goodbye_unresolved"
TIME_OFFER = "offer_appointment_times"
CORRECTION = "ask_correction"
RECOMMENDATION = "recommend_study"
ENGINE_STATES: dict[str, EngineState] = {
    "goodbye_opt_out": EngineState("exit", "the caller asks never to be called again"),
    "goodbye_not_interested": EngineState("exit", "the caller is not interested"),
    "goodbye_wrong_number": EngineState("exit", "the caller says it is a wrong number"),
    "goodbye_callback": EngineState("exit", "the caller asks to be called back later"),
    SILENCE_EXIT: EngineState("exit", "the caller stays silent"),
    VOICEMAIL_EXIT: EngineState(
        "exit", "an answering machine took an outbound call (its message, after the beep)"
    ),
    UNRESOLVED_EXIT: EngineState(
        "exit",
        "a question the booking needs went through all its fallbacks and the caller declined "
        "a person",
    ),
    "transfer_to_human": EngineState("exit", "the caller asks for a person"),
    TIME_OFFER: EngineState("question", "a booking fails and free times are offered again"),
    CORRECTION: EngineState(
        "question", "the caller wants to change something (their words name the slot)"
    ),
    RECOMMENDATION: EngineState("announce", "a study is chosen from the symptoms"),
}
# Those the engine goes to by itself: reachable even when no transition leads there.
ENTERED_BY_ENGINE = (
    *EXIT_INTENTS.values(),
    SILENCE_EXIT,
    UNRESOLVED_EXIT,
    VOICEMAIL_EXIT,
    TIME_OFFER,
)
# Sentences the engine says outside any state.
ENGINE_PHRASES = frozenset(
    [
        "resume",
        "off_topic",
        "cannot_answer",
        "date_closed",
        "date_out_of_range",
        "day_full",
        "time_taken",
        "time_not_offered",
        "objection_price",
        "discount_applied",
        "contraindication_noted",
        "booking_failed",
        "unclear_study",
        "spell_name",
        "keypad_phone",
        "keypad_yes_no",
        "skip_slot",
        "offer_person",
        "phone_read_back",
    ]
)
STATUSES = frozenset(
    [
        "booked",
        "callback",
        "not_interested",
        "opt_out",
        "transferred",
        "wrong_number",
        "incomplete",
        "failed",
        "voicemail",
    ]
)
DIRECTIONS = frozenset(["inbound", "outbound"])
# ``caller:withheld``: an inbound call that leaves no number to call back (the caller id is
# withheld or no number, and no phone was given on the call).
CALLER_CONDITIONS = frozenset(["withheld"])
_CONDITION = re.compile(r"^(filled|missing|yes|no|direction|caller):(\w+)$")
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


class Transition(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    when: str | None = Field(None, alias="if")
    to: str
    clear: list[str] = Field(default_factory=list)


class Variant(BaseModel):
    """A text said instead of the state's ``say`` while its condition holds (the first that
    does): ``direction:outbound`` for a call the clinic placed, or a slot's condition."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    when: str = Field(alias="if")
    say: Localized


class StateDef(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = ""
    kind: Kind
    slots: list[str] = Field(default_factory=list)
    say: Localized = Field(default_factory=dict)
    reprompt: Localized = Field(default_factory=dict)
    next: str | list[Transition] | None = None
    status: str | None = None
    action: Literal["hangup", "transfer", "none"] | None = None
    fallback: list[Strategy] = Field(default_factory=list)
    variants: list[Variant] = Field(default_factory=list)
    #: An announcement the caller cut into is said again (false: a greeting, which the caller
    #: who speaks over it no longer needs).
    repeat_when_cut: bool = True

    @property
    def strategies(self) -> list[Strategy]:
        """What follows the second failed ask, one per failure; it always ends by going on
        without the slots (when the booking can do without them) or by offering a person."""
        out = list(self.fallback)
        if not out or out[-1] not in ("skip", "offer_person"):
            out.append("skip" if set(self.slots) <= OPTIONAL_SLOTS else "offer_person")
        return out

    @property
    def transitions(self) -> list[Transition]:
        if self.next is None:
            return []
        if isinstance(self.next, str):
            return [Transition(to=self.next)]
        return self.next


class Study(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    name: Localized
    modality: str
    price: float = Field(ge=0)
    minutes: int = Field(gt=0)
    keywords: dict[str, list[str]] = Field(default_factory=dict)


class VideoConclusion(BaseModel):
    price: float = Field(ge=0)


class Discount(BaseModel):
    percent: float = Field(ge=0, le=100)
    automatic_from_age: int | None = None


class Catalogue(BaseModel):
    model_config = ConfigDict(extra="forbid")
    studies: list[Study]
    default_study: str
    video_conclusion: VideoConclusion
    discount: Discount

    def study(self, study_id: str) -> Study:
        return next(s for s in self.studies if s.id == study_id)


class Schedule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    timezone: str
    slot_minutes: int = Field(gt=0, le=240)
    horizon_days: int = Field(gt=0, le=365)
    offer_count: int = Field(gt=0, le=10)
    modalities: list[str]
    days: dict[str, tuple[time, time] | None]
    closed: list[date] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {value!r}") from None
        return value

    @field_validator("days")
    @classmethod
    def _week(
        cls, value: dict[str, tuple[time, time] | None]
    ) -> dict[str, tuple[time, time] | None]:
        week = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
        unknown = set(value) - set(week)
        if unknown:
            raise ValueError(f"unknown day(s) {sorted(unknown)}; use {', '.join(week)}")
        for day, hours in value.items():
            if hours is not None and hours[0] >= hours[1]:
                raise ValueError(f"{day}: opening {hours[0]} is not before closing {hours[1]}")
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def hours(self, day: date) -> tuple[time, time] | None:
        if day in self.closed:
            return None
        name = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"][
            day.weekday()
        ]
        return self.days.get(name)

    @property
    def earliest_opening(self) -> time:
        return min(h[0] for h in self.days.values() if h is not None)


class Clinic(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Localized
    agent_name: Localized
    address: Localized
    phone: str
    website: str | None = None
    hours: Localized
    currency: str = Field(min_length=3, max_length=3)
    default_country_code: str = Field(pattern=r"^\d{1,3}$")
    #: The locale of a call whose call.started (and campaign) names none; unset, the script's
    #: first. POLICY_LOCALE, when set, comes before it.
    locale: str | None = Field(None, min_length=2, max_length=8)
    transfer_target: str


class FaqTopic(BaseModel):
    """An answer to a common question; ``otherwise`` is said instead while ``say`` needs a
    value the call does not have yet (the price before the study is known)."""

    model_config = ConfigDict(extra="forbid")
    keywords: dict[str, list[str]]
    say: Localized
    otherwise: Localized | None = None


class Reason(BaseModel):
    """Why the clinic calls, from one column of the campaign's contact list (``{value}``, its
    cell; the study's name instead when ``names_study`` and the cell names a catalogue study,
    which is then the call's study)."""

    model_config = ConfigDict(extra="forbid")
    field: str = Field(min_length=1)
    names_study: bool = False
    say: Localized


class Outbound(BaseModel):
    """The calls the clinic places: where they start, and why the opening says it calls
    (``{call_reason}``): the first reason whose column the contact has, else the campaign's
    purpose, else ``default`` (no campaign context)."""

    model_config = ConfigDict(extra="forbid")
    start: str
    reasons: list[Reason] = Field(default_factory=list)
    purposes: dict[Literal["informational", "service", "marketing"], Localized] = Field(
        default_factory=dict
    )
    default: Localized


INTENTS = frozenset(
    [
        "opt_out",
        "wants_human",
        "wrong_number",
        "not_interested",
        "call_back_later",
        "objection_price",
        "prompt_injection",
        "leaving",
    ]
)


@dataclass(frozen=True)
class Script:
    start: str
    locales: tuple[str, ...]
    states: dict[str, StateDef]
    phrases: dict[str, Localized]
    # Per locale, the short fixed phrases said at once when a reply takes a while.
    acknowledgements: dict[str, tuple[str, ...]]
    clinic: Clinic
    catalogue: Catalogue
    schedule: Schedule
    faq: dict[str, FaqTopic]
    lexicons: dict[str, Lexicon]
    words: Words
    directory: Path
    outbound: Outbound | None = None

    def state(self, state_id: str) -> StateDef:
        return self.states[state_id]

    @property
    def default_locale(self) -> str:
        """The clinic's locale: a call that names none is in it."""
        return self.clinic.locale or self.locales[0]

    def start_for(self, direction: str) -> str:
        """Where a call begins: an outbound call at its own opening, when the script has one."""
        if direction == "outbound" and self.outbound is not None:
            return self.outbound.start
        return self.start


def _read(path: Path) -> Any:
    if not path.is_file():
        raise ConfigError(f"{path}: the script needs this file")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None


def _model(cls: type[BaseModel], data: Any, where: str) -> Any:
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        problems = validation_problems(exc)
        raise ConfigError(f"{where}: {problems}") from None


def load_script(directory: Path) -> Script:
    """Load prompts/clinic and check everything the engine relies on."""
    directory = Path(directory)
    script_path = directory / "script.yaml"
    raw = _read(script_path)
    if not isinstance(raw, dict) or not isinstance(raw.get("states"), dict):
        raise ConfigError(f"{script_path}: expected a mapping with 'start', 'locales' and 'states'")
    locales = tuple(raw.get("locales") or ())
    if not locales:
        raise ConfigError(f"{script_path}: 'locales' lists no locale")
    states: dict[str, StateDef] = {}
    for state_id, body in raw["states"].items():
        state = _model(StateDef, body, f"{script_path}: state {state_id!r}")
        state.id = state_id
        states[state_id] = state
    phrases_raw = raw.get("phrases") or {}
    outbound = (
        _model(Outbound, raw["outbound"], f"{script_path}: outbound")
        if raw.get("outbound") is not None
        else None
    )
    acknowledgements = _acknowledgements(raw.get("acknowledgements"), locales, script_path)
    clinic = _model(Clinic, _read(directory / "clinic.yaml"), str(directory / "clinic.yaml"))
    catalogue = _model(
        Catalogue, _read(directory / "catalogue.yaml"), str(directory / "catalogue.yaml")
    )
    schedule = _model(
        Schedule, _read(directory / "schedule.yaml"), str(directory / "schedule.yaml")
    )
    faq_raw = _read(directory / "faq.yaml") or {}
    faq = {
        k: _model(FaqTopic, v, f"{directory / 'faq.yaml'}: topic {k!r}")
        for k, v in (faq_raw.get("topics") or {}).items()
    }
    lexicon_path = directory / "lexicon.yaml"
    lex = _model(LexiconFile, _read(lexicon_path), str(lexicon_path))
    missing = lexicon_problems(lex, locales, INTENTS)
    if missing:
        raise ConfigError(f"{lexicon_path}: {'; '.join(missing)}")
    script = Script(
        start=str(raw.get("start", "")),
        locales=locales,
        states=states,
        phrases=phrases_raw,
        acknowledgements=acknowledgements,
        clinic=clinic,
        catalogue=catalogue,
        schedule=schedule,
        faq=faq,
        lexicons={loc: lexicon_for(lex, loc) for loc in locales},
        words=words_of(lex, locales),
        directory=directory,
        outbound=outbound,
    )
    _validate(script, script_path)
    return script


def _acknowledgements(raw: Any, locales: tuple[str, ...], path: Path) -> dict[str, tuple[str, ...]]:
    """``acknowledgements: {say: {en: [...], ...}}``: at least two fixed phrases per locale, so
    one is never said twice in a row (a ``say`` list, which the TTS gateway prerenders)."""
    texts = raw.get("say") if isinstance(raw, dict) else None
    if not isinstance(texts, dict):
        raise ConfigError(f"{path}: 'acknowledgements' needs a 'say' list per locale")
    out: dict[str, tuple[str, ...]] = {}
    for locale in locales:
        phrases = texts.get(locale)
        if (
            not isinstance(phrases, list)
            or len(phrases) < 2
            or not all(isinstance(p, str) and p.strip() for p in phrases)
        ):
            raise ConfigError(
                f"{path}: acknowledgements: {locale!r} needs a list of at least two phrases"
            )
        if any("{" in p for p in phrases):
            raise ConfigError(
                f"{path}: acknowledgements: {locale!r} phrases are fixed prompts; no placeholders"
            )
        out[locale] = tuple(p.strip() for p in phrases)
    return out


def _check_text(text: Localized, locales: tuple[str, ...], where: str, what: str) -> None:
    for locale in locales:
        value = text.get(locale)
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{where}: '{what}' has no {locale!r} text")
        unknown = set(_PLACEHOLDER.findall(value)) - PLACEHOLDERS
        if unknown:
            raise ConfigError(
                f"{where}: '{what}' ({locale}) uses unknown placeholder(s) "
                f"{sorted(unknown)}; known: {', '.join(sorted(PLACEHOLDERS))}"
            )


def _check_condition(condition: str, where: str) -> None:
    m = _CONDITION.match(condition)
    if not m:
        raise ConfigError(
            f"{where}: condition {condition!r} is not filled:/missing:/yes:/no:<slot>, "
            "direction:inbound|outbound or caller:withheld"
        )
    if m.group(1) == "direction":
        if m.group(2) not in DIRECTIONS:
            raise ConfigError(f"{where}: condition {condition!r} names no direction")
    elif m.group(1) == "caller":
        if m.group(2) not in CALLER_CONDITIONS:
            raise ConfigError(
                f"{where}: condition {condition!r}: the caller condition is caller:withheld"
            )
    elif m.group(2) not in SLOTS:
        raise ConfigError(f"{where}: condition {condition!r} names an unknown slot")


def _validate_outbound(script: Script, path: Path) -> None:
    outbound = script.outbound
    uses_reason = any(
        "{call_reason}" in text
        for state in script.states.values()
        for texts in (state.say, state.reprompt, *(v.say for v in state.variants))
        for text in texts.values()
    )
    if outbound is None:
        if uses_reason:
            raise ConfigError(f"{path}: {{call_reason}} is used but 'outbound' does not say why")
        return
    where = f"{path}: outbound"
    if outbound.start not in script.states:
        raise ConfigError(f"{where}: start state {outbound.start!r} is not a state")
    _check_text(outbound.default, script.locales, where, "default")
    for purpose, text in outbound.purposes.items():
        _check_text(text, script.locales, where, f"purposes: {purpose}")
    for reason in outbound.reasons:
        for locale in script.locales:
            value = reason.say.get(locale)
            if not isinstance(value, str) or "{value}" not in value:
                raise ConfigError(
                    f"{where}: reason {reason.field!r} needs a {locale!r} text with {{value}}"
                )
            if set(_PLACEHOLDER.findall(value)) - {"value"}:
                raise ConfigError(
                    f"{where}: reason {reason.field!r} ({locale}) may use only {{value}}"
                )


def _validate(script: Script, path: Path) -> None:
    states, locales = script.states, script.locales
    if script.start not in states:
        raise ConfigError(f"{path}: start state {script.start!r} is not a state")
    _validate_outbound(script, path)
    ends = [s for s in states.values() if s.kind == "end"]
    if not ends:
        raise ConfigError(f"{path}: no state has kind 'end'")
    for needed, (kind, why) in ENGINE_STATES.items():
        if needed not in states:
            raise ConfigError(
                f"{path}: state {needed!r} is missing; the engine goes there by name when {why}"
            )
        if states[needed].kind != kind:
            raise ConfigError(
                f"{path}: state {needed!r} must be of kind {kind!r}, not {states[needed].kind!r} "
                f"(the engine uses it when {why})"
            )
    for state in states.values():
        where = f"{path}: state {state.id!r}"
        if state.kind == "end":
            continue
        _check_text(state.say, locales, where, "say")
        for variant in state.variants:
            _check_condition(variant.when, where)
            _check_text(variant.say, locales, where, f"variants ({variant.when})")
        if state.kind == "question":
            if not state.slots:
                raise ConfigError(f"{where}: a question must name the slots it collects")
            _check_text(state.reprompt, locales, where, "reprompt")
        elif state.slots:
            raise ConfigError(f"{where}: only questions collect slots")
        for slot in state.slots:
            if slot not in SLOTS:
                raise ConfigError(
                    f"{where}: unknown slot {slot!r}; known: {', '.join(sorted(SLOTS))}"
                )
        _check_fallback(state, where)
        if state.kind == "exit":
            if state.status not in STATUSES:
                raise ConfigError(
                    f"{where}: an exit needs a status, one of {', '.join(sorted(STATUSES))}"
                )
        elif state.status is not None:
            raise ConfigError(f"{where}: only exits have a status")
        transitions = state.transitions
        if not transitions:
            raise ConfigError(f"{where}: 'next' is missing")
        if transitions[-1].when is not None:
            raise ConfigError(f"{where}: the last transition must have no 'if' (the default)")
        for tr in transitions:
            if tr.to not in states:
                raise ConfigError(f"{where}: next state {tr.to!r} is not a state")
            if tr.when is not None:
                _check_condition(tr.when, where)
            for slot in tr.clear:
                if slot not in SLOTS:
                    raise ConfigError(f"{where}: 'clear' names unknown slot {slot!r}")
    for phrase in sorted(ENGINE_PHRASES):
        if phrase not in script.phrases:
            raise ConfigError(f"{path}: phrases: {phrase!r} is missing")
    for phrase, text in script.phrases.items():
        _check_text(text, locales, f"{path}: phrases", phrase)
    reachable = _reachable(script)
    for state in states.values():
        if state.id not in reachable:
            raise ConfigError(f"{path}: state {state.id!r} cannot be reached from {script.start!r}")
    _validate_facts(script)


def _check_fallback(state: StateDef, where: str) -> None:
    if state.fallback and state.kind != "question":
        raise ConfigError(f"{where}: only questions have a fallback")
    slots = set(state.slots)
    for i, strategy in enumerate(state.fallback):
        if strategy in ("skip", "offer_person") and i != len(state.fallback) - 1:
            raise ConfigError(f"{where}: fallback {strategy!r} ends the fallback, it must be last")
        if strategy == "spell" and "client_name" not in slots:
            raise ConfigError(f"{where}: fallback 'spell' is for a question that asks the name")
        if strategy == "keypad" and not slots & ({"phone"} | YES_NO_SLOTS):
            raise ConfigError(
                f"{where}: fallback 'keypad' is for a phone number or a yes/no question"
            )
        if strategy == "skip" and not slots <= OPTIONAL_SLOTS:
            raise ConfigError(
                f"{where}: fallback 'skip' needs slots a booking can do without; "
                f"{sorted(slots - OPTIONAL_SLOTS)} are not ({', '.join(sorted(OPTIONAL_SLOTS))})"
            )


def _reachable(script: Script) -> set[str]:
    seen = set()
    todo = [script.start, script.start_for("outbound"), *ENTERED_BY_ENGINE]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        todo.extend(tr.to for tr in script.states[current].transitions)
    return seen


def _validate_facts(script: Script) -> None:
    d = script.directory
    locales = script.locales
    ids = [s.id for s in script.catalogue.studies]
    if len(ids) != len(set(ids)):
        raise ConfigError(f"{d / 'catalogue.yaml'}: study ids repeat")
    if script.catalogue.default_study not in ids:
        raise ConfigError(
            f"{d / 'catalogue.yaml'}: default_study {script.catalogue.default_study!r} is not a study"
        )
    for study in script.catalogue.studies:
        _check_text(study.name, locales, f"{d / 'catalogue.yaml'}: study {study.id!r}", "name")
        if study.modality not in script.schedule.modalities:
            raise ConfigError(
                f"{d / 'catalogue.yaml'}: study {study.id!r} uses modality {study.modality!r}, "
                f"which schedule.yaml does not list"
            )
    for field in ("name", "agent_name", "address", "hours"):
        _check_text(getattr(script.clinic, field), locales, str(d / "clinic.yaml"), field)
    if script.clinic.locale is not None and script.clinic.locale not in locales:
        raise ConfigError(
            f"{d / 'clinic.yaml'}: locale {script.clinic.locale!r} is not one of the script's "
            f"({', '.join(locales)})"
        )
    for topic_id, topic in script.faq.items():
        _check_text(topic.say, locales, f"{d / 'faq.yaml'}: topic {topic_id!r}", "say")
        if topic.otherwise is not None:
            where = f"{d / 'faq.yaml'}: topic {topic_id!r}"
            _check_text(topic.otherwise, locales, where, "otherwise")
    if not any(h is not None for h in script.schedule.days.values()):
        raise ConfigError(f"{d / 'schedule.yaml'}: the clinic is never open")
