"""A finished call as it arrives on the `calls:completed` stream (ARCHITECTURE.md §4.4)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from callkit.errors import InvalidInput

STREAM = "calls:completed"
DEAD_STREAM = "calls:dead"

Status = Literal[
    "booked",
    "callback",
    "not_interested",
    "no_answer",
    "busy",
    "voicemail",
    "transferred",
    "wrong_number",
    "incomplete",
    "failed",
]


class Slots(BaseModel):
    """What the dialog learned; every field may be missing (the caller hung up early)."""

    model_config = ConfigDict(extra="allow")

    client_name: str | None = None
    phone: str | None = None
    age: int | None = Field(None, ge=0, le=130)
    weight_kg: float | None = Field(None, gt=0, le=500)
    symptoms: str | None = None
    symptoms_duration: str | None = None
    study_type: str | None = None
    appointment_date: str | None = None
    appointment_time: str | None = None
    price: float | None = Field(None, ge=0)
    currency: str | None = None
    video_conclusion: bool | None = None


class CallOutcome(BaseModel):
    model_config = ConfigDict(extra="allow")

    call_id: str = Field(min_length=1, max_length=128)
    direction: Literal["inbound", "outbound"]
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
    transcript: list[dict[str, Any]] = Field(default_factory=list)
    recording_path: str | None = None
    latency: dict[str, float] = Field(default_factory=dict)


def parse_entry(fields: dict[bytes, bytes]) -> CallOutcome:
    """A stream entry holds one field, ``outcome``, with the JSON outcome; anything else is refused."""
    raw = fields.get(b"outcome")
    if raw is None:
        keys = ", ".join(sorted(k.decode(errors="replace") for k in fields)) or "none"
        raise InvalidInput(f"entry has no 'outcome' field (fields: {keys})", code="unmappable")
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"outcome is not valid JSON: {exc}", code="unmappable") from None
    try:
        return CallOutcome.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise InvalidInput(
            f"outcome does not match the contract: {problems}", code="unmappable"
        ) from None


def entry_for(outcome: CallOutcome) -> dict[str, str]:
    """The stream entry that carries an outcome (what the policy engine appends)."""
    return {"outcome": outcome.model_dump_json()}
