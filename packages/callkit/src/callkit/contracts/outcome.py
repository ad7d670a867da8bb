"""A finished call: the one entry the policy engine (or the dialer) appends to calls:completed.

The entry holds a single field, ``outcome``, with the JSON of :class:`CallOutcome`. The stream
outlives a deploy, so every outcome says which schema ``version`` wrote it: additions that old
readers may ignore keep the version; a change that old readers would misread raises it, and a
reader refuses versions newer than it knows (the notifier parks them in calls:dead, to be
replayed after its upgrade) rather than guessing.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, computed_field

from callkit.errors import InvalidInput
from callkit.events import validation_problems

#: The schema version this code writes and the newest it reads.
OUTCOME_VERSION: Final = 1
#: The one field of a calls:completed entry; it holds the outcome's JSON.
ENTRY_FIELD: Final = "outcome"

Status = Literal[
    "booked",
    "callback",
    "not_interested",
    "opt_out",
    "transferred",
    "wrong_number",
    "incomplete",
    "failed",
    "busy",
    "no_answer",
    "voicemail",
    "invalid_number",
    "rejected",
    "skipped_dnc",
]

#: What each status means; the sheet's status column and the console show the status itself.
STATUSES: Final[dict[str, str]] = {
    "booked": "the caller booked an appointment (date and time in the slots)",
    "callback": "the caller asked to be called back later",
    "not_interested": "the caller declined; they may be called in a later campaign",
    "opt_out": "the caller asked never to be called again (the dialer adds them to do-not-call)",
    "transferred": "the call was handed to a person (the script's transfer target)",
    "wrong_number": "the person reached is not the contact, or the caller dialled by mistake",
    "incomplete": "the call ended before the script reached an exit (the caller hung up early)",
    "failed": "the call could not go on: a service failed or the call was lost",
    "busy": "outbound: the number was busy",
    "no_answer": "outbound: nobody answered before the ring timeout",
    "voicemail": "outbound: an answering machine or voicemail took the call",
    "invalid_number": "outbound: the number does not exist or cannot be dialled",
    "rejected": "outbound: the network or the callee refused the call",
    "skipped_dnc": "outbound: not dialled, the number is on the do-not-call list",
}


class Slots(BaseModel):
    """What the dialog learned; every field may be missing (the caller hung up early).

    Further slots of the script (``pain_character``, ``discount``…) ride along as extras.
    """

    model_config = ConfigDict(extra="allow")

    client_name: str | None = None
    phone: str | None = None
    age: int | None = Field(None, ge=0, le=130)
    weight_kg: float | None = Field(None, gt=0, le=500)
    symptoms: str | None = None
    symptoms_duration: str | None = None
    study_type: str | None = Field(None, description="The study's name, as the sheet shows it.")
    appointment_date: str | None = Field(None, description="ISO date; only when booked.")
    appointment_time: str | None = Field(None, description="HH:MM; only when booked.")
    price: float | None = Field(None, ge=0)
    currency: str | None = None
    video_conclusion: bool | None = None


class TranscriptLine(BaseModel):
    """One line of the call's dialog; ``t`` is seconds from the call's start."""

    model_config = ConfigDict(extra="ignore")

    role: Literal["caller", "agent"]
    text: str
    t: float = Field(ge=0)
    interrupted: bool = Field(False, description="The caller cut this agent line short.")


def _percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile; None without values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


class CallLatency(BaseModel):
    """The call's responsiveness as the bridge measured it on the call's audio timeline.

    ``v2v_ms``: per answered turn, from the end of the caller's voice to the agent's first
    audio (voice to voice). ``barge_in_stop_ms``: per barge-in, from the caller's voice onset
    to the agent's playback being stopped. The p50/p95 figures are derived, never sent in.
    """

    # Derived figures in a dump are ignored on the way back in, so a dump round-trips.
    model_config = ConfigDict(extra="ignore")

    v2v_ms: list[float] = Field(default_factory=list)
    first_audio_ms: float | None = Field(
        None,
        ge=0,
        description="From the answer (the fork's connect) to the agent's first audio; None if "
        "the agent never spoke. Over 2 s on an outbound call counts as abandoned.",
    )
    barge_ins: int = Field(0, ge=0)
    barge_in_stop_ms: list[float] = Field(default_factory=list)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def v2v_p50_ms(self) -> float | None:
        return _percentile(self.v2v_ms, 0.5)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def v2v_p95_ms(self) -> float | None:
        return _percentile(self.v2v_ms, 0.95)


AnsweredBy = Literal["human", "machine", "unknown"]


class Amd(BaseModel):
    """Who answered an outbound call, as the bridge's answering-machine detection decided."""

    model_config = ConfigDict(extra="ignore")

    answered_by: AnsweredBy
    cue: str = Field(
        max_length=32,
        description="What decided it: beep, phrase, screener, long_greeting, many_words, "
        "short_greeting, reply_to_prompt, timeout, late_beep and late_phrase (after a person's verdict), hung_up.",
    )
    verdict_ms: float = Field(ge=0, description="From the answer to the verdict.")


class CallOutcome(BaseModel):
    """The call's outcome as the notifier writes it to the sheet and the console shows it."""

    model_config = ConfigDict(extra="allow")

    version: int = Field(
        OUTCOME_VERSION, ge=1, description="Schema version; entries without one are version 1."
    )
    call_id: str = Field(min_length=1, max_length=128)
    direction: Literal["inbound", "outbound"]
    locale: str | None = Field(
        None,
        description="The language the call was held in (the script's locale: en, ru); entries "
        "without one do not say it.",
    )
    campaign_id: str | None = None
    caller: str | None = None
    callee: str | None = None
    started_at: datetime
    ended_at: datetime
    duration_s: float = Field(ge=0)
    hangup_cause: str | None = None
    final_state: str | None = None
    status: Status
    slots: Slots = Field(default_factory=Slots)
    summary: str | None = None
    transcript: list[TranscriptLine] = Field(default_factory=list)
    recording_path: str | None = Field(None, description="The call's stereo WAV on the bridge.")
    latency: CallLatency = Field(default_factory=CallLatency)
    amd: Amd | None = Field(None, description="Outbound calls: who answered, and how it was told.")


def parse_outcome(data: Any) -> CallOutcome:
    """An outcome from its decoded JSON; :class:`InvalidInput` (``unmappable``) if it is not one."""
    if not isinstance(data, dict):
        raise InvalidInput(
            f"outcome must be a JSON object, got {type(data).__name__}", code="unmappable"
        )
    version = data.get("version", 1)
    if isinstance(version, int) and not isinstance(version, bool) and version > OUTCOME_VERSION:
        raise InvalidInput(
            f"outcome version {version} is newer than this reader's {OUTCOME_VERSION}; "
            "upgrade it and replay the entry",
            code="unmappable",
        )
    try:
        return CallOutcome.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(
            f"outcome does not match the contract: {validation_problems(exc)}", code="unmappable"
        ) from None


def parse_entry(fields: Mapping[bytes, bytes] | Mapping[str, str]) -> CallOutcome:
    """A calls:completed entry: one field, ``outcome``, with the JSON outcome."""
    decoded = {
        (k.decode(errors="replace") if isinstance(k, bytes) else k): v for k, v in fields.items()
    }
    raw = decoded.get(ENTRY_FIELD)
    if raw is None:
        keys = ", ".join(sorted(decoded)) or "none"
        raise InvalidInput(
            f"entry has no {ENTRY_FIELD!r} field (fields: {keys})", code="unmappable"
        )
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"outcome is not valid JSON: {exc}", code="unmappable") from None
    return parse_outcome(data)


def entry(outcome: CallOutcome) -> dict[str, str]:
    """The calls:completed entry that carries an outcome (what its producer appends)."""
    return {ENTRY_FIELD: outcome.model_dump_json()}
