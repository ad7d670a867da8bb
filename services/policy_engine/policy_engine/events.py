"""The `POST /dialog` contract (ARCHITECTURE.md §4.2): the events a call sends and the reply."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SESSION_ID = r"^[A-Za-z0-9._:-]{1,128}$"


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # Optional client-chosen id that makes any event idempotent (utterances use segment_id).
    event_id: str | None = Field(None, max_length=128)


class Contact(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, max_length=120)
    phone: str | None = Field(None, max_length=32)


class CallStarted(_Event):
    type: Literal["call.started"]
    direction: Literal["inbound", "outbound"] = "inbound"
    caller: str | None = Field(None, max_length=64)
    callee: str | None = Field(None, max_length=64)
    campaign_id: str | None = Field(None, max_length=128)
    contact: Contact | None = None
    locale: str | None = Field(None, max_length=8)


class UserUtterance(_Event):
    type: Literal["user.utterance"]
    text: str
    segment_id: str | int = Field(description="The ASR final's segment id; retries reuse it.")


class HeardUtterance(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str
    segment_id: str | int


class UserInterrupted(_Event):
    type: Literal["user.interrupted"]
    heard_text: str = Field(description="What the caller heard of the agent's turn.")
    utterance: HeardUtterance | None = None


class UserSilence(_Event):
    type: Literal["user.silence"]
    seconds: float = Field(ge=0, le=3600)


class Dtmf(_Event):
    type: Literal["dtmf"]
    digits: str = Field(pattern=r"^[0-9*#A-D]{1,32}$")


class CallEnded(_Event):
    type: Literal["call.ended"]
    cause: str | None = Field(None, max_length=64)


Event = Annotated[
    CallStarted | UserUtterance | UserInterrupted | UserSilence | Dtmf | CallEnded,
    Field(discriminator="type"),
]
EVENT_TYPES = (
    "call.started",
    "user.utterance",
    "user.interrupted",
    "user.silence",
    "dtmf",
    "call.ended",
)


class DialogRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    session_id: str = Field(pattern=SESSION_ID)
    event: Event


class ReplySentence(BaseModel):
    text: str
    cache_key: str | None = None


class DialogReply(BaseModel):
    session_id: str
    state: str
    replies: list[ReplySentence]
    slots: dict[str, Any]
    actions: list[dict[str, Any]]
    status: str | None = None
    ended: bool = False
    replayed: bool = False
    llm_calls: int = Field(0, description="LLM requests this turn made (0: scripted only).")
