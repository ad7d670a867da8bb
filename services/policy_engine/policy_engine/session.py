"""A call's dialog session, and the store it lives in between turns.

The session is the call's whole dialog state (where the script is, the slots, the transcript,
the stored replies of retried events). A ``SessionStore`` keeps it between turns and serializes
the turns of one call, so a retried utterance and the original never run at the same time;
``stores/sessions.py`` keeps it in Redis.
"""

from __future__ import annotations

import time
from contextlib import AbstractAsyncContextManager
from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field

from callkit.contracts.outcome import Amd, CallLatency

MAX_TRANSCRIPT = 400
MAX_REMEMBERED_EVENTS = 64


class Sentence(BaseModel):
    """One sentence the agent says, with where it came from (for barge-in rollback)."""

    text: str
    cache_key: str | None = None
    state: str | None = None
    source: Literal["say", "reprompt", "phrase", "faq", "answer", "ack"] = "say"


class Line(BaseModel):
    role: Literal["caller", "agent"]
    text: str
    at: float
    state: str | None = None
    interrupted: bool = False


class Hold(BaseModel):
    modality: str
    date: str
    time: str
    booked: bool = False


class Session(BaseModel):
    session_id: str
    direction: Literal["inbound", "outbound"] = "inbound"
    caller: str | None = None
    callee: str | None = None
    campaign_id: str | None = None
    locale: str = "en"
    # Outbound: why the clinic calls, as the opening says it (from the campaign's context).
    call_reason: str | None = None
    started_at: float = Field(default_factory=time.time)
    ended_at: float | None = None
    hangup_cause: str | None = None
    recording_path: str | None = None  # from call.ended (the bridge's recording)
    latency: CallLatency | None = None  # from call.ended (the bridge's figures)
    amd: Amd | None = None  # outbound: the bridge's answering-machine verdict
    # On a machine the campaign wants no message: the voicemail exit hangs up without a word.
    voicemail_silent: bool = False

    state: str = ""
    slots: dict[str, Any] = Field(default_factory=dict)
    said: list[str] = Field(default_factory=list)
    asked: dict[str, int] = Field(default_factory=dict)
    # Per question, the asks in a row the caller's answers have not filled (the repeat rule).
    misses: dict[str, int] = Field(default_factory=dict)
    # Per question, the asks this call has left unfilled, in a row or not: the repeat rule's
    # budget for the whole call, so its fallbacks never start over.
    unanswered: dict[str, int] = Field(default_factory=dict)
    skipped: list[str] = Field(default_factory=list)  # slots the call goes on without
    person_offered: str | None = None  # the question after whose failures a person was offered
    silences: int = 0
    offered_times: list[str] = Field(default_factory=list)
    hold: Hold | None = None
    status: str | None = None
    final_state: str | None = None
    callback_when: str | None = None  # the call back the caller asked for, as the goodbye says it

    transcript: list[Line] = Field(default_factory=list)
    last_reply: list[Sentence] = Field(default_factory=list)
    responses: dict[str, dict[str, Any]] = Field(default_factory=dict)
    outcome_sent: bool = False
    outcome_due_at: float | None = None  # written without call.ended from then (epoch seconds)
    turns: int = 0
    llm_calls: int = 0
    acknowledgements: int = 0  # said so far; the next is the next phrase in the list
    llm_turns: int = 0  # turns the parsers alone did not understand (the LLM was or would be asked)
    degraded_turns: int = 0
    version: int = 0

    @property
    def ended(self) -> bool:
        return self.ended_at is not None

    def remember(self, event_key: str, response: dict[str, Any]) -> None:
        """Keep the response of an event so a retry gets the same answer (bounded)."""
        self.responses[event_key] = response
        while len(self.responses) > MAX_REMEMBERED_EVENTS:
            self.responses.pop(next(iter(self.responses)))

    def add_line(self, role: Literal["caller", "agent"], text: str, **extra: Any) -> None:
        self.transcript.append(Line(role=role, text=text, at=time.time(), **extra))
        if len(self.transcript) > MAX_TRANSCRIPT:
            del self.transcript[: len(self.transcript) - MAX_TRANSCRIPT]


class SessionStore(Protocol):
    """Where sessions live between turns."""

    async def load(self, session_id: str) -> Session | None: ...

    async def save(self, session: Session) -> None:
        """Store the session (its ``version`` goes up by one)."""

    async def delete(self, session_id: str) -> bool: ...

    def locked(self, session_id: str) -> AbstractAsyncContextManager[None]:
        """Hold the call's turn lock; waits for a turn in progress to finish."""
