"""Turn VAD probabilities into speech start and end, with hysteresis, a hold state and a cap.

A pure state machine fed one frame at a time (probability, audio time in ms); it never reads a
clock, so tests drive it with tables. States: SILENCE → (enough speech) SPEECH → (enough silence)
SILENCE; after a long silence SILENCE becomes HOLD, in which the session stops keeping audio
and asks for nothing; SPEECH longer than ``max_speech_ms`` is cut with a forced end.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Literal

Sensitivity = Literal["low", "medium", "high"]
# (onset, offset) speech-probability thresholds: higher sensitivity starts on weaker speech.
THRESHOLDS: dict[str, tuple[float, float]] = {
    "low": (0.7, 0.5),
    "medium": (0.5, 0.35),
    "high": (0.35, 0.2),
}


class State(Enum):
    SILENCE = "silence"
    SPEECH = "speech"
    HOLD = "hold"


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    t_ms: int  # where speech began on the audio timeline (first speech frame)


@dataclass(frozen=True, slots=True)
class SpeechEnded:
    t_ms: int  # where speech ended (start of the trailing silence)
    forced: bool = False  # cut because it ran longer than max_speech_ms


Event = SpeechStarted | SpeechEnded


@dataclass
class EndpointConfig:
    sensitivity: Sensitivity = "medium"
    min_speech_ms: int = 150
    end_silence_ms: int = 500
    max_speech_ms: int = 20_000
    hold_after_ms: int = 10_000


class Endpointer:
    def __init__(self, config: EndpointConfig | None = None) -> None:
        self.config = config or EndpointConfig()
        self.state = State.SILENCE
        self._run_start: int | None = None  # first frame of a run of speech (while confirming)
        self._speech_start = 0
        self._silence_start: int | None = None
        self._last_speech_end = 0

    @property
    def silence_start_ms(self) -> int | None:
        """Where the trailing silence of the current utterance began, if it is in one."""
        return self._silence_start if self.state is State.SPEECH else None

    @property
    def trailing_silence(self) -> bool:
        """In speech, but the last frames were silence: the utterance may be about to end."""
        return self.state is State.SPEECH and self._silence_start is not None

    def reconfigure(self, config: EndpointConfig) -> None:
        self.config = config

    def feed(self, prob: float, t_ms: int, frame_ms: int) -> list[Event]:
        onset, offset = THRESHOLDS[self.config.sensitivity]
        events: list[Event] = []
        if self.state is not State.SPEECH:
            if prob >= onset:
                if self._run_start is None:
                    self._run_start = t_ms
                if t_ms + frame_ms - self._run_start >= self.config.min_speech_ms:
                    self.state = State.SPEECH
                    self._speech_start = self._run_start
                    self._silence_start = None
                    events.append(SpeechStarted(self._run_start))
            else:
                self._run_start = None
                if (
                    self.state is State.SILENCE
                    and t_ms - self._last_speech_end >= self.config.hold_after_ms
                ):
                    self.state = State.HOLD
            return events
        # In speech.
        if prob < offset:
            if self._silence_start is None:
                self._silence_start = t_ms
            elif t_ms + frame_ms - self._silence_start >= self.config.end_silence_ms:
                events.append(self._end(self._silence_start, forced=False))
                return events
        else:
            self._silence_start = None
        if t_ms + frame_ms - self._speech_start >= self.config.max_speech_ms:
            events.append(self._end(t_ms + frame_ms, forced=True))
            # Still speaking: a new utterance starts right away.
            self.state = State.SPEECH
            self._speech_start = t_ms + frame_ms
            events.append(SpeechStarted(self._speech_start))
        return events

    def force_end(self, t_ms: int) -> SpeechEnded | None:
        """End the current utterance now (the client sent input.commit)."""
        if self.state is not State.SPEECH:
            return None
        return self._end(t_ms, forced=True)

    def _end(self, t_ms: int, *, forced: bool) -> SpeechEnded:
        self.state = State.SILENCE
        self._run_start = None
        self._silence_start = None
        self._last_speech_end = t_ms
        return SpeechEnded(t_ms, forced)
