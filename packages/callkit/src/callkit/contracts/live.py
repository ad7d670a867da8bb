"""calls:events: what happens in a call while it happens, for dashboards and the console.

The bridge publishes the call's side (started, the caller's finals, the agent's sentences,
barge-ins, ended), with ``t_ms`` on the call's audio timeline; the policy engine publishes the
dialog's side (state changes, each turn's time). A stream entry is flat: every field a string,
numbers and booleans as JSON, absent values left out. The stream is bounded
(:data:`~callkit.contracts.streams.CALLS_EVENTS_MAXLEN`) and read by whoever watches; readers skip
entries they cannot parse, so a newer producer never breaks an older console.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from redis.asyncio import Redis

from callkit.contracts.streams import CALLS_EVENTS, CALLS_EVENTS_MAXLEN
from callkit.errors import InvalidInput
from callkit.events import UnknownEventType, validation_problems

#: The schema version this code writes and the newest it reads.
LIVE_VERSION: Final = 1


class LiveEvent(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    type: str
    version: int = Field(LIVE_VERSION, ge=1)
    call_id: str = Field(min_length=1, max_length=128)
    t_ms: int | None = Field(None, ge=0, description="The call's audio timeline (bridge events).")


class LiveCallStarted(LiveEvent):
    type: Literal["started"] = "started"
    direction: Literal["inbound", "outbound"] = "inbound"
    campaign_id: str | None = Field(None, description="The campaign of an outbound call.")


class LiveCallEnded(LiveEvent):
    type: Literal["ended"] = "ended"
    cause: str
    recording_path: str | None = None


class CallerFinal(LiveEvent):
    """The caller's words, as the ASR gateway finalized them."""

    type: Literal["caller.final"] = "caller.final"
    text: str


class AgentSentence(LiveEvent):
    """A sentence the agent said (sent to the call)."""

    type: Literal["agent.sentence"] = "agent.sentence"
    text: str


class BargeIn(LiveEvent):
    """The caller cut the agent off."""

    type: Literal["barge_in"] = "barge_in"
    heard_words: int = Field(ge=0, description="Words of the agent's turn the caller heard.")
    stop_ms: float | None = Field(None, ge=0, description="The caller's voice onset to the stop.")


class StateChanged(LiveEvent):
    type: Literal["state"] = "state"
    from_state: str
    to_state: str


class TurnTimed(LiveEvent):
    """One dialog turn's time inside the policy engine."""

    type: Literal["turn"] = "turn"
    state: str = Field(description="The state after the turn.")
    ms: float = Field(ge=0)
    llm_calls: int = Field(0, ge=0)


LIVE_EVENTS: Final[dict[str, type[LiveEvent]]] = {
    str(m.model_fields["type"].default): m
    for m in (
        LiveCallStarted,
        LiveCallEnded,
        CallerFinal,
        AgentSentence,
        BargeIn,
        StateChanged,
        TurnTimed,
    )
}


def entry(event: LiveEvent) -> dict[str, str]:
    """The flat stream entry for an event."""
    out: dict[str, str] = {}
    for name, value in event.model_dump(mode="json", exclude_none=True).items():
        out[name] = value if isinstance(value, str) else json.dumps(value)
    return out


def parse_entry(fields: Mapping[bytes, bytes] | Mapping[str, str]) -> LiveEvent:
    """The event of a calls:events entry; :class:`InvalidInput` if it is not one this code knows."""
    data: dict[str, Any] = {
        (k.decode(errors="replace") if isinstance(k, bytes) else k): (
            v.decode(errors="replace") if isinstance(v, bytes) else v
        )
        for k, v in fields.items()
    }
    kind = data.get("type")
    model = LIVE_EVENTS.get(kind) if isinstance(kind, str) else None
    if model is None:
        known = ", ".join(sorted(LIVE_EVENTS))
        raise UnknownEventType(f"unknown live event type {kind!r}; expected one of: {known}")
    try:
        event = model.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(
            f"invalid {kind!r} live event: {validation_problems(exc)}", code="invalid_event"
        ) from None
    if event.version > LIVE_VERSION:
        raise InvalidInput(
            f"live event version {event.version} is newer than this reader's {LIVE_VERSION}",
            code="invalid_event",
        )
    return event


async def publish(redis: Redis, *events: LiveEvent) -> None:
    """Append events to calls:events, trimming it; Redis errors are the caller's to handle."""
    for event in events:
        await redis.xadd(
            CALLS_EVENTS,
            entry(event),  # type: ignore[arg-type]
            maxlen=CALLS_EVENTS_MAXLEN,
            approximate=True,
        )
