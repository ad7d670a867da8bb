"""Turn VAD probabilities into speech start and end, with hysteresis, a hold state and a cap.

A pure state machine fed one frame at a time (probability, audio time in ms); it never reads a
clock, so tests drive it with tables. States: SILENCE → (enough speech) SPEECH → (enough silence)
SILENCE; after a long silence SILENCE becomes HOLD, in which the session stops keeping audio
and asks for nothing; SPEECH longer than ``max_speech_ms`` is cut with a forced end.

With a turn model (``turn_ask_ms`` set), the end silence depends on what was said: once the
trailing silence reaches ``turn_ask_ms`` the endpointer emits ``AskTurn`` (once per silence),
and the verdict handed back (``turn_verdict``, the probability that the turn is complete) sets
the silence that ends it: ``complete_silence_ms`` for a complete turn, ``end_silence_ms`` when
the model is unsure, ``incomplete_silence_ms`` for a cut-off one. While a verdict is on its way
the end waits for it, up to ``incomplete_silence_ms`` (ending at the default would cut "My name
is ..." whenever the model is slow); a model that fails or is skipped (``no_verdict``) ends the
silence at ``end_silence_ms``, as without one.
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


@dataclass(frozen=True, slots=True)
class AskTurn:
    """The trailing silence reached ``turn_ask_ms``: ask the turn model about the audio so far."""

    silence_start_ms: int  # the key of this trailing silence (where it began)
    t_ms: int  # audio time of the question (the end of the frame that reached it)


Event = SpeechStarted | SpeechEnded | AskTurn
EndpointEvent = Event


class Verdict(Enum):
    COMPLETE = "complete"
    UNSURE = "unsure"
    INCOMPLETE = "incomplete"


@dataclass
class EndpointConfig:
    sensitivity: Sensitivity = "medium"
    min_speech_ms: int = 150
    end_silence_ms: int = 500
    max_speech_ms: int = 20_000
    hold_after_ms: int = 10_000
    # With a turn model: the end silence of a complete turn and of an incomplete one (the
    # unsure one keeps end_silence_ms), and the probabilities that divide them.
    complete_silence_ms: int = 200
    incomplete_silence_ms: int = 1500
    complete_above: float = 0.5
    incomplete_below: float = 0.15

    def classify(self, probability: float) -> Verdict:
        if probability >= self.complete_above:
            return Verdict.COMPLETE
        if probability < self.incomplete_below:
            return Verdict.INCOMPLETE
        return Verdict.UNSURE

    def silence_for(self, verdict: Verdict | None) -> int:
        """The trailing silence that ends an utterance given the turn model's verdict (never
        shorter than end_silence_ms for an incomplete turn, nor longer for a complete one)."""
        if verdict is Verdict.COMPLETE:
            return min(self.complete_silence_ms, self.end_silence_ms)
        if verdict is Verdict.INCOMPLETE:
            return max(self.incomplete_silence_ms, self.end_silence_ms)
        return self.end_silence_ms


class Endpointer:
    def __init__(self, config: EndpointConfig | None = None) -> None:
        self.config = config or EndpointConfig()
        self.state = State.SILENCE
        self._run_start: int | None = None  # first frame of a run of speech (while confirming)
        self._speech_start = 0
        self._silence_start: int | None = None
        self._last_speech_end = 0
        # Trailing silence at which to ask the turn model (None: no turn model, or it is
        # skipped for now); the session sets it from the model's measured time.
        self.turn_ask_ms: int | None = None
        self._asked: int | None = None  # silence start the turn model was asked about
        self._verdict: Verdict | None = None  # its answer, for that silence

    @property
    def silence_start_ms(self) -> int | None:
        """Where the trailing silence of the current utterance began, if it is in one."""
        return self._silence_start if self.state is State.SPEECH else None

    @property
    def trailing_silence(self) -> bool:
        """In speech, but the last frames were silence: the utterance may be about to end."""
        return self.state is State.SPEECH and self._silence_start is not None

    @property
    def verdict(self) -> Verdict | None:
        """The turn model's verdict on the current trailing silence, if one came."""
        return self._verdict if self.trailing_silence else None

    @property
    def expected_silence_ms(self) -> int:
        """The trailing silence at which the current one is expected to end: the verdict's, or,
        while a turn model is to be asked, a complete turn's (the soonest the end can come)."""
        if self._verdict is None and self.turn_ask_ms is not None:
            return self.config.silence_for(Verdict.COMPLETE)
        return self.config.silence_for(self._verdict)

    def reconfigure(self, config: EndpointConfig) -> None:
        self.config = config

    def turn_verdict(
        self, silence_start_ms: int, probability: float, t_ms: int
    ) -> tuple[Verdict | None, list[Event]]:
        """The turn model's answer about the silence that began at ``silence_start_ms``, arriving
        at audio time ``t_ms``. None when that silence is over (speech resumed or it ended);
        otherwise the verdict, and the end of the utterance if its silence has already run."""
        return self._decided(silence_start_ms, self.config.classify(probability), t_ms)

    def no_verdict(self, silence_start_ms: int, t_ms: int) -> tuple[Verdict | None, list[Event]]:
        """The turn model was asked about this silence but will not answer (it failed, or the
        question was skipped): the silence ends as an unsure one's, at the default."""
        return self._decided(silence_start_ms, Verdict.UNSURE, t_ms)

    def _decided(
        self, silence_start_ms: int, verdict: Verdict, t_ms: int
    ) -> tuple[Verdict | None, list[Event]]:
        if not self.trailing_silence or self._silence_start != silence_start_ms:
            return None, []
        self._verdict = verdict
        if t_ms - silence_start_ms >= self.config.silence_for(verdict):
            return verdict, [self._end(silence_start_ms, forced=False)]
        return verdict, []

    def _end_after_ms(self) -> int:
        """How long the current trailing silence must run to end the utterance. While the turn
        model's verdict on it is on its way, the end waits for it (up to an incomplete turn's
        silence): ending at the default would cut "My name is ..." whenever the model is slow."""
        if self._verdict is None and self._asked == self._silence_start:
            return max(self.config.incomplete_silence_ms, self.config.end_silence_ms)
        return self.config.silence_for(self._verdict)

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
            first = self._silence_start is None
            if self._silence_start is None:
                self._silence_start = t_ms
                self._verdict = None
            silence = t_ms + frame_ms - self._silence_start
            ask = self.turn_ask_ms
            if ask is not None and self._asked != self._silence_start and silence >= ask:
                self._asked = self._silence_start
                events.append(AskTurn(self._silence_start, t_ms + frame_ms))
            if not first and silence >= self._end_after_ms():
                events.append(self._end(self._silence_start, forced=False))
                return events
        else:
            self._silence_start = None
            self._verdict = None
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
        self._verdict = None
        self._last_speech_end = t_ms
        return SpeechEnded(t_ms, forced)
