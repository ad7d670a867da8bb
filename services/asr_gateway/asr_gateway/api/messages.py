"""Client → server messages of WS /ws/transcribe (ARCHITECTURE.md §4.1)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from callkit.events import EventCodec, WireEvent


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
    type: Literal["input.commit"] = "input.commit"


class SessionClose(WireEvent):
    type: Literal["session.close"] = "session.close"


START: EventCodec[SessionStart] = EventCodec([SessionStart])
Control = SessionConfigure | InputCommit | SessionClose
CONTROLS: EventCodec[Control] = EventCodec([SessionConfigure, InputCommit, SessionClose])
