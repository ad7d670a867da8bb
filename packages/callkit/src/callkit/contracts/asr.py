"""WS /ws/transcribe: the JSON messages between a client (the bridge) and the ASR gateway.

The client sends ``session.start`` first, then binary PCM frames (16-bit little-endian mono)
and JSON controls; the gateway answers with the server events. Times (``t_ms``, ``start_ms``,
``end_ms``) are milliseconds of the session's audio, so latency is measured on the audio
timeline. ``segment_id`` numbers the utterances of a session: a partial and the final of one
utterance share it.
"""

from __future__ import annotations

from typing import Final, Literal

from pydantic import Field

from callkit.events import ErrorEvent, EventCodec, WireEvent

# ---------------------------------------------------------------- client -> server


class SessionStart(WireEvent):
    type: Literal["session.start"] = "session.start"
    call_id: str | None = Field(None, max_length=128)
    sample_rate: Literal[8000, 16000] = 16000
    language: str | None = Field(None, min_length=2, max_length=8)
    hotwords: list[str] = Field(default_factory=list, max_length=100)
    sensitivity: Literal["low", "medium", "high"] | None = None
    end_silence_ms: int | None = Field(None, ge=100, le=5000)
    partials: bool = True


class SessionConfigure(WireEvent):
    type: Literal["session.configure"] = "session.configure"
    language: str | None = Field(None, min_length=2, max_length=8)
    hotwords: list[str] | None = Field(None, max_length=100)
    sensitivity: Literal["low", "medium", "high"] | None = None
    end_silence_ms: int | None = Field(None, ge=100, le=5000)


class InputCommit(WireEvent):
    """Finalize the speech in progress now."""

    type: Literal["input.commit"] = "input.commit"


class SessionClose(WireEvent):
    type: Literal["session.close"] = "session.close"


Control = SessionConfigure | InputCommit | SessionClose
START: Final[EventCodec[SessionStart]] = EventCodec([SessionStart])
CONTROLS: Final[EventCodec[Control]] = EventCodec([SessionConfigure, InputCommit, SessionClose])

# ---------------------------------------------------------------- server -> client


class SessionCreated(WireEvent):
    type: Literal["session.created"] = "session.created"
    session_id: str
    call_id: str | None = None
    sample_rate: int
    language: str
    model: str
    end_silence_ms: int


class SessionUpdated(WireEvent):
    type: Literal["session.updated"] = "session.updated"
    language: str
    hotwords: int = Field(ge=0, description="How many hot words the session now has.")


class SpeechStarted(WireEvent):
    type: Literal["vad.speech_start"] = "vad.speech_start"
    t_ms: int = Field(ge=0, description="The first speech frame.")


class SpeechEnded(WireEvent):
    type: Literal["vad.speech_end"] = "vad.speech_end"
    t_ms: int = Field(ge=0, description="The start of the trailing silence.")
    forced: bool = Field(False, description="Cut by input.commit or the longest utterance.")


class TranscriptPartial(WireEvent):
    type: Literal["transcript.partial"] = "transcript.partial"
    segment_id: int
    text: str
    stable_text: str = Field(description="The prefix never taken back within the utterance.")
    t_ms: int = Field(ge=0)


class TranscriptFinal(WireEvent):
    type: Literal["transcript.final"] = "transcript.final"
    segment_id: int
    text: str = Field(description="Hot words corrected, entities formatted.")
    raw_text: str = Field(description="The model's own words.")
    start_ms: int = Field(ge=0)
    end_ms: int = Field(ge=0)
    confidence: float = Field(ge=0, le=1)
    language: str


class SessionClosed(WireEvent):
    type: Literal["session.closed"] = "session.closed"
    session_id: str


ServerEvent = (
    SessionCreated
    | SessionUpdated
    | SpeechStarted
    | SpeechEnded
    | TranscriptPartial
    | TranscriptFinal
    | SessionClosed
    | ErrorEvent
)
SERVER_EVENTS: Final[EventCodec[ServerEvent]] = EventCodec(
    [
        SessionCreated,
        SessionUpdated,
        SpeechStarted,
        SpeechEnded,
        TranscriptPartial,
        TranscriptFinal,
        SessionClosed,
        ErrorEvent,
    ]
)
