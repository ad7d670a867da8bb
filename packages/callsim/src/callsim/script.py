"""Caller scripts: a phone call as the far end plays it, from a YAML file.

::

    name: knee-mri-booking
    language: en
    direction: inbound            # or outbound (the agent dials the caller's number)
    outbound: {answer_after_rings: 2, outcome: answer}   # answer | busy | no_answer | voicemail
                                                        # | screener | reject | unallocated
    # outbound: {attempts: [busy, answer]}              # per call to the number, the last repeats
    # outbound: {greeting: "Hello?", greeting_delay_ms: 2000}   # a person who speaks first
    # outbound: {outcome: voicemail, voicemail_greeting: "...", voicemail_beep: false}
    caller: {number: "+15551234567", voice: "espeak:en-us", codec: PCMU}
    line: {echo: {delay_ms: 120, gain_db: -20}, noise_dbfs: -55}
    turns:
      - say: "Hi, my name is John Smith."       # spoken once the agent's turn has ended
      - "My left knee has hurt for two weeks."  # a plain string is a `say`
      - barge_in: {after_agent_ms: 700, say: "Sorry, how much does it cost?"}
      - backchannel: {after_agent_ms: 500, say: "uh-huh"}   # the agent may yield, then goes on
      - say_with_pause: {say: "My number is nine one six | five five five, one two three four",
                         pause_ms: 700}               # silent 700 ms at each |: must not be cut
      - silence: {seconds: 8}
      - dtmf: "1"
      - hangup: {}
    expect: {status: booked, slots: {client_name: "John Smith"}}   # answered_by: human | machine

A ``barge_in`` must make the agent yield and not take up its sentence again; a ``backchannel``
may make it yield, but then it must resume without losing a word (:mod:`callsim.played`). A
``say_with_pause`` is a ``say`` (spoken once the agent's turn has ended) in parts: the caller
stops for ``pause_ms`` at each ``|``, as someone reading out a number does, and the report says
whether the agent began speaking before the whole sentence was out (``cut_in``).

A voicemail (or a call screener) without ``turns`` takes a message: after its greeting (and the
beep) it listens until the agent's turn ends, and hangs up then, when nothing is said within
``voicemail_wait_s``, or at ``voicemail_max_s``.

Instead of ``turns``, a script may give a ``persona`` (:mod:`callsim.persona`): facts and a
manner, answering whatever the agent asks; its ``expect`` comes from the facts when the script
gives none::

    caller: {voice: "espeak:en-gb-scotland", codec: G722, speed: 0.85}
    persona:
      facts: {client_name: "Moira Campbell", phone: "07700900123", age: 58, weight_kg: 64,
              symptoms: "My shoulder hurts when I lift my arm.", days: [Thursday], time: last}
      manner: {brief: true, hesitate: [appointment_date], correct: {fact: age, first: 48}}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from callkit.errors import ConfigError, validation_problems
from callsim.line import CODECS
from callsim.persona import PersonaSpec

Codec = Literal["PCMU", "PCMA", "G722", "L16"]
assert set(CODECS) == {"PCMU", "PCMA", "G722", "L16"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Caller(_Strict):
    number: str = "+15550100000"
    voice: str = "espeak:en-us"
    codec: Codec = "PCMU"
    #: Speaking rate against the voice's usual (espeak-ng 165 words a minute, Piper's own).
    speed: float = Field(1.0, ge=0.5, le=2.0)


class Echo(_Strict):
    delay_ms: int = Field(120, ge=20, le=1000)
    gain_db: float = Field(-20.0, le=0)


class Line(_Strict):
    echo: Echo | None = None
    noise_dbfs: float | None = Field(None, le=-10)


#: How the called number takes a call: a person answers; busy; it rings out; a voicemail answers
#: (its greeting, then a beep); a call-screening assistant answers (its prompt, no beep, then it
#: listens); the carrier rejects it (603) or has no such number (404).
OutboundOutcome = Literal[
    "answer", "busy", "no_answer", "voicemail", "screener", "reject", "unallocated"
]
#: The outcomes in which a machine, not the person, takes the call.
MACHINES: tuple[OutboundOutcome, ...] = ("voicemail", "screener")

#: What a machine plays on answer when the script gives no ``voicemail_greeting``.
STOCK_GREETINGS: dict[str, str] = {
    "voicemail": "Hi, you have reached my voicemail. Please leave a message after the tone.",
    "screener": "Hi, the person you're calling is using a screening service. Please say your "
    "name and why you are calling.",
}


class Outbound(_Strict):
    """The callee of a campaign call (``direction: outbound``; ``caller.number`` is dialled)."""

    answer_after_rings: int = Field(1, ge=0, le=30)
    outcome: OutboundOutcome = "answer"
    #: One outcome per call to the number, in order, the last one repeating: ``[busy, answer]``
    #: is busy the first time and answers every later time. Empty: always ``outcome``.
    attempts: list[OutboundOutcome] = Field(default_factory=list, max_length=20)
    #: What a person says the moment they pick up, before hearing anything ("Hello?"); None:
    #: they wait for the agent. The script's ``turns`` follow it.
    greeting: str | None = Field(None, min_length=1)
    #: Silence on the line before the greeting (a person who picks up and says nothing at first).
    greeting_delay_ms: int = Field(0, ge=0, le=10000)
    #: What a voicemail or a call screener plays on answer; None: a stock one of its kind.
    voicemail_greeting: str | None = Field(None, min_length=1)
    #: Whether a voicemail's greeting ends in a beep (some boxes record straight after the words).
    voicemail_beep: bool = True
    #: How long a machine waits for the agent to begin after its greeting (and beep) before it
    #: hangs up, as a box gives up on a silent line.
    voicemail_wait_s: float = Field(5.0, gt=0, le=120)
    #: The longest message a machine takes, from the end of its greeting; then it hangs up.
    voicemail_max_s: float = Field(60.0, gt=0, le=600)

    @model_validator(mode="after")
    def _greeting_needs_a_person(self) -> Outbound:
        if self.greeting_delay_ms and self.greeting is None:
            raise ValueError("greeting_delay_ms is the silence before a greeting: give a greeting")
        if self.greeting is not None and "answer" not in (self.attempts or [self.outcome]):
            raise ValueError(
                "greeting is what a person says on pickup, and this callee never answers in "
                "person (outcome answer)"
            )
        return self

    def outcome_of(self, attempt: int) -> OutboundOutcome:
        """The outcome of the ``attempt``-th call (from 1)."""
        if not self.attempts:
            return self.outcome
        return self.attempts[min(max(attempt, 1), len(self.attempts)) - 1]

    def greeting_of(self, outcome: OutboundOutcome) -> str | None:
        """What the far end says on answer before the agent is heard, for one outcome."""
        if outcome in MACHINES:
            return self.voicemail_greeting or STOCK_GREETINGS[outcome]
        return self.greeting if outcome == "answer" else None

    @property
    def ever_answers(self) -> bool:
        return any(o in ("answer", *MACHINES) for o in (self.attempts or [self.outcome]))


class Timing(_Strict):
    # Silence on the agent's side that ends its turn (sentences inside a turn may pause).
    agent_turn_gap_ms: int = Field(1200, ge=200, le=10000)
    # How long one step may wait for the agent before the call is given up.
    step_timeout_s: float = Field(45.0, gt=0, le=600)
    # After the last step, how long to wait for the agent to hang up.
    end_timeout_s: float = Field(30.0, gt=0, le=600)
    max_call_s: float = Field(600.0, gt=0, le=3600)


class Interjection(_Strict):
    after_agent_ms: int = Field(ge=0, le=60000)
    say: str = Field(min_length=1)


class PausedSay(_Strict):
    """A sentence said in parts, with a silence at each ``|``."""

    say: str = Field(min_length=1)
    pause_ms: int = Field(700, ge=100, le=10000)

    @model_validator(mode="after")
    def _has_parts(self) -> PausedSay:
        if len(self.parts) < 2 or any(not p for p in self.parts):
            raise ValueError("say_with_pause needs words on both sides of each | (the pauses)")
        return self

    @property
    def parts(self) -> list[str]:
        return [p.strip() for p in self.say.split("|")]

    @property
    def text(self) -> str:
        return " ".join(self.parts)


class Step(_Strict):
    """One turn of the script; exactly one field is set."""

    say: str | None = None
    say_with_pause: PausedSay | None = None
    barge_in: Interjection | None = None
    backchannel: Interjection | None = None
    silence: dict[str, float] | None = None
    dtmf: str | None = Field(None, pattern=r"^[0-9*#A-D]{1,32}$")
    hangup: dict[str, Any] | None = None

    @model_validator(mode="before")
    @classmethod
    def _plain_say(cls, value: Any) -> Any:
        return {"say": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one_kind(self) -> Step:
        set_fields = [k for k in type(self).model_fields if getattr(self, k) is not None]
        if len(set_fields) != 1:
            raise ValueError(
                "a turn is exactly one of say, barge_in, backchannel, say_with_pause, silence, "
                "dtmf, hangup; "
                f"got {set_fields or 'none'}"
            )
        if self.silence is not None and "seconds" not in self.silence:
            raise ValueError("silence needs {seconds: N}")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in type(self).model_fields if getattr(self, k) is not None)


class Expect(_Strict):
    status: str | None = None
    #: Who the agent should take the callee for (the outcome's ``amd.answered_by``).
    answered_by: Literal["human", "machine", "unknown"] | None = None
    slots: dict[str, Any] = Field(default_factory=dict)


class CallScript(_Strict):
    name: str
    language: str = "en"
    direction: Literal["inbound", "outbound"] = "inbound"
    outbound: Outbound = Field(default_factory=Outbound)
    caller: Caller = Field(default_factory=Caller)
    callee: str = Field("+15550000100", description="The number dialled (inbound) or dialling.")
    line: Line = Field(default_factory=Line)
    timing: Timing = Field(default_factory=Timing)
    turns: list[Step] = Field(default_factory=list)
    persona: PersonaSpec | None = None
    expect: Expect = Field(default_factory=Expect)

    @model_validator(mode="after")
    def _lines_or_persona(self) -> CallScript:
        if self.persona is not None and self.turns:
            raise ValueError("a script has either turns (fixed lines) or a persona, not both")
        return self


def load_script(path: Path) -> CallScript:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read the script: {exc}") from None
    if isinstance(data, dict):
        data.setdefault("name", path.stem)
    try:
        return CallScript.model_validate(data)
    except ValidationError as exc:
        problems = validation_problems(exc)
        raise ConfigError(f"{path}: {problems}") from None


def load_scripts(path: Path) -> list[tuple[Path, CallScript]]:
    """One file, or every *.yaml in a folder (sorted): a suite."""
    files = sorted(path.glob("*.yaml")) if path.is_dir() else [path]
    if not files:
        raise ConfigError(f"{path}: no *.yaml call scripts in this folder")
    return [(f, load_script(f)) for f in files]
