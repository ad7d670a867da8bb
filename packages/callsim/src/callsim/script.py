"""Caller scripts: a phone call as the far end plays it, from a YAML file.

::

    name: knee-mri-booking
    language: en
    direction: inbound            # or outbound (the agent dials the caller's number)
    outbound: {answer_after_rings: 2, outcome: answer}   # answer | busy | no_answer | voicemail
                                                        # | reject | unallocated
    # outbound: {attempts: [busy, answer]}              # per call to the number, the last repeats
    caller: {number: "+15551234567", voice: "espeak:en-us", codec: PCMU}
    line: {echo: {delay_ms: 120, gain_db: -20}, noise_dbfs: -55}
    turns:
      - say: "Hi, my name is John Smith."       # spoken once the agent's turn has ended
      - "My left knee has hurt for two weeks."  # a plain string is a `say`
      - barge_in: {after_agent_ms: 700, say: "Sorry, how much does it cost?"}
      - backchannel: {after_agent_ms: 500, say: "uh-huh"}   # must NOT stop the agent
      - silence: {seconds: 8}
      - dtmf: "1"
      - hangup: {}
    expect: {status: booked, slots: {client_name: "John Smith"}}

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
#: (its greeting, then a beep); the carrier rejects it (603) or has no such number (404).
OutboundOutcome = Literal["answer", "busy", "no_answer", "voicemail", "reject", "unallocated"]


class Outbound(_Strict):
    """The callee of a campaign call (``direction: outbound``; ``caller.number`` is dialled)."""

    answer_after_rings: int = Field(1, ge=0, le=30)
    outcome: OutboundOutcome = "answer"
    #: One outcome per call to the number, in order, the last one repeating: ``[busy, answer]``
    #: is busy the first time and answers every later time. Empty: always ``outcome``.
    attempts: list[OutboundOutcome] = Field(default_factory=list, max_length=20)
    voicemail_greeting: str = (
        "Hi, you have reached my voicemail. Please leave a message after the tone."
    )

    def outcome_of(self, attempt: int) -> OutboundOutcome:
        """The outcome of the ``attempt``-th call (from 1)."""
        if not self.attempts:
            return self.outcome
        return self.attempts[min(max(attempt, 1), len(self.attempts)) - 1]

    @property
    def ever_answers(self) -> bool:
        return any(o in ("answer", "voicemail") for o in (self.attempts or [self.outcome]))


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


class Step(_Strict):
    """One turn of the script; exactly one field is set."""

    say: str | None = None
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
                "a turn is exactly one of say, barge_in, backchannel, silence, dtmf, hangup; "
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
