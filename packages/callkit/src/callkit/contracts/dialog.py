"""POST /dialog: the events a call sends to the policy engine, its reply, and the SSE stream.

A request is ``{"session_id", "event"}``. The answer is a :class:`DialogReply` as JSON, or with
``Accept: text/event-stream`` one ``reply.sentence`` per sentence as soon as it is ready, then
``reply.done`` (the reply without its sentences) or ``error``. Events are idempotent: an
utterance by its ``segment_id``, any other event by its optional ``event_id``.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, ClassVar, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from callkit.contracts.outcome import Amd, CallLatency, Status
from callkit.errors import InvalidInput
from callkit.events import validation_problems

SESSION_ID: Final = r"^[A-Za-z0-9._:-]{1,128}$"


class _Event(BaseModel):
    # ``type`` has a default for producers; the Event union still requires it on the wire.
    model_config = ConfigDict(extra="forbid")
    # Optional client-chosen id that makes any event idempotent (utterances use segment_id).
    event_id: str | None = Field(None, max_length=128)


class Contact(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, max_length=120)
    phone: str | None = Field(None, max_length=32)


class CallStarted(_Event):
    type: Literal["call.started"] = "call.started"
    direction: Literal["inbound", "outbound"] = "inbound"
    caller: str | None = Field(None, max_length=64)
    callee: str | None = Field(None, max_length=64)
    campaign_id: str | None = Field(None, max_length=128)
    contact: Contact | None = None
    locale: str | None = Field(None, max_length=8)
    amd: Amd | None = Field(
        None,
        description="An outbound call's answering-machine verdict; a machine is sent only once "
        "its greeting is over (after the beep), so a message is said to the recording.",
    )


class UserUtterance(_Event):
    type: Literal["user.utterance"] = "user.utterance"
    text: str
    segment_id: str | int = Field(description="The ASR final's segment id; retries reuse it.")


class HeardUtterance(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str
    segment_id: str | int


class UserInterrupted(_Event):
    type: Literal["user.interrupted"] = "user.interrupted"
    heard_text: str = Field(
        description="What the caller heard of the agent's turn, from its playout (the bridge's)."
    )
    utterance: HeardUtterance | None = None


class UserSilence(_Event):
    type: Literal["user.silence"] = "user.silence"
    seconds: float = Field(ge=0, le=3600)


class Dtmf(_Event):
    type: Literal["dtmf"] = "dtmf"
    digits: str = Field(pattern=r"^[0-9*#A-D]{1,32}$")


class CallEnded(_Event):
    type: Literal["call.ended"] = "call.ended"
    cause: str | None = Field(None, max_length=64)
    recording_path: str | None = Field(
        None, max_length=1024, description="The call's stereo WAV, written by the bridge."
    )
    latency: CallLatency | None = Field(None, description="The call's figures, from the bridge.")


class CallMachine(_Event):
    """An outbound call taken for a person turned out to be a machine (its beep came after
    the agent opened): the agent stops, and the call goes the voicemail way."""

    type: Literal["call.machine"] = "call.machine"
    amd: Amd


Event = Annotated[
    CallStarted | UserUtterance | UserInterrupted | UserSilence | Dtmf | CallEnded | CallMachine,
    Field(discriminator="type"),
]
EVENT_TYPES: Final = (
    "call.started",
    "user.utterance",
    "user.interrupted",
    "user.silence",
    "dtmf",
    "call.ended",
    "call.machine",
)


class DialogRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    session_id: str = Field(pattern=SESSION_ID)
    event: Event


class HangupAction(BaseModel):
    """End the call once the turn's audio has played."""

    type: Literal["hangup"] = "hangup"


class TransferAction(BaseModel):
    """Hand the call to ``target`` (a dialplan extension) once the turn's audio has played."""

    type: Literal["transfer"] = "transfer"
    target: str = Field(min_length=1, max_length=128)


class NoAction(BaseModel):
    type: Literal["none"] = "none"


Action = Annotated[HangupAction | TransferAction | NoAction, Field(discriminator="type")]


class ReplySentence(BaseModel):
    """One sentence of the agent's turn; SSE event ``reply.sentence``."""

    sse_event: ClassVar[str] = "reply.sentence"
    text: str
    cache_key: str | None = None


class ReplyDone(BaseModel):
    """The turn's end and the dialog's state after it; SSE event ``reply.done``."""

    sse_event: ClassVar[str] = "reply.done"
    session_id: str
    state: str
    slots: dict[str, Any]
    actions: list[Action]
    status: Status | None = None
    ended: bool = False
    replayed: bool = False
    llm_calls: int = Field(0, description="LLM requests this turn made (0: scripted only).")


class DialogReply(ReplyDone):
    """The whole reply (the JSON answer): ``reply.done`` with the turn's sentences."""

    replies: list[ReplySentence]


class DialogError(BaseModel):
    """The turn failed after its first sentence; SSE event ``error``."""

    sse_event: ClassVar[str] = "error"
    code: str
    message: str
    recoverable: bool


SseEvent = ReplySentence | ReplyDone | DialogError
SSE_EVENTS: Final[dict[str, type[SseEvent]]] = {
    m.sse_event: m for m in (ReplySentence, ReplyDone, DialogError)
}


def sse_frame(event: SseEvent) -> bytes:
    """One server-sent event: ``event: <kind>`` and its JSON ``data`` line."""
    data = json.dumps(event.model_dump(mode="json"), ensure_ascii=False)
    return f"event: {event.sse_event}\ndata: {data}\n\n".encode()


def parse_sse(kind: str, data: str) -> SseEvent:
    """The model of one received SSE event; :class:`InvalidInput` if it is not one."""
    model = SSE_EVENTS.get(kind)
    if model is None:
        known = ", ".join(sorted(SSE_EVENTS))
        raise InvalidInput(
            f"unknown dialog stream event {kind!r}; expected one of: {known}",
            code="unknown_event_type",
        )
    try:
        return model.model_validate_json(data)
    except ValidationError as exc:
        raise InvalidInput(
            f"invalid {kind!r} event: {validation_problems(exc)}", code="invalid_event"
        ) from None
