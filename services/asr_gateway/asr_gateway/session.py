"""One caller's transcription session: audio in, what to emit and what to transcribe out.

The session never touches a socket or the model. ``feed`` takes 16 kHz samples and returns
actions: events to send (``Emit``, carrying the server events of :mod:`callkit.contracts.asr`)
and audio to transcribe (``Transcribe``); the edge runs them and hands results back through
``on_partial`` / ``on_final``. Times are milliseconds of session audio, so latency can be
measured against the audio timeline.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import numpy.typing as npt

from asr_gateway.agreement import LocalAgreement
from asr_gateway.endpointing import (
    AskTurn,
    EndpointConfig,
    Endpointer,
    EndpointEvent,
    SpeechEnded,
    SpeechStarted,
    State,
    Verdict,
)
from asr_gateway.engines import Transcription
from asr_gateway.postprocess import (
    Evidence,
    HotwordCorrector,
    format_entities,
    hallucination_reason,
)
from asr_gateway.ring import AudioRing
from callkit.contracts import asr
from callkit.vad import FRAME_MS, SAMPLE_RATE, VadStream

SAMPLES_PER_MS = SAMPLE_RATE // 1000
TURN_WINDOW_MS = 8000  # the turn model reads the last 8 s of an utterance
_MARGIN = np.zeros(SAMPLE_RATE // 2, dtype=np.float32)  # 0.5 s of silence around each utterance


@dataclass
class SessionConfig:
    language: str | None = "en"
    hotwords: list[str] = field(default_factory=list)
    # The language's terms the finals are corrected towards (not given to the decoder).
    vocabulary: list[str] = field(default_factory=list)
    prompt: str | None = None  # the initial prompt the recognizer reads (the guard knows it)
    endpoint: EndpointConfig = field(default_factory=EndpointConfig)
    partials: bool = True
    pre_roll_ms: int = 400
    # Audio after the end of speech given to the model; the endpoint has already waited
    # end_silence_ms for it, so including most of it costs no latency and helps the last words.
    post_roll_ms: int = 450


@dataclass(frozen=True, slots=True)
class Emit:
    event: asr.SpeechStarted | asr.SpeechEnded | asr.TranscriptPartial


@dataclass(frozen=True, slots=True)
class Transcribe:
    kind: Literal["partial", "final"]
    utterance: int
    audio: npt.NDArray[np.float32]
    start_ms: int
    end_ms: int
    speech_ratio: float = 1.0
    # An early final: transcribed while the end silence is still running, kept until the
    # endpoint confirms it (a final with ``early`` set to the same key) or speech resumes.
    early: tuple[int, int] | None = None
    speculative: bool = False  # the early final itself (not the endpoint's confirmation)
    decided_ms: int | None = None  # audio time at which the endpoint fired (finals it ended)
    decided_at: float | None = None  # wall time of that, when a verdict decided it after its audio


@dataclass(frozen=True, slots=True)
class Withdraw:
    """Speech resumed: the early final with this key will not be used."""

    early: tuple[int, int]


@dataclass(frozen=True, slots=True)
class JudgeTurn:
    """Ask the turn model whether the caller has finished: the utterance's last 8 s of audio up
    to now, in its trailing silence. The answer goes back to ``on_turn`` with ``key``."""

    key: tuple[int, int]  # (utterance, silence start)
    audio: npt.NDArray[np.float32]
    silence_ms: int  # trailing silence so far


Action = Emit | Transcribe | Withdraw | JudgeTurn


@dataclass(frozen=True, slots=True)
class TurnOutcome:
    verdict: Verdict | None  # None: the silence it was about is over (speech resumed or it ended)
    actions: list[Action]


@dataclass(frozen=True, slots=True)
class FinalOutcome:
    event: asr.TranscriptFinal | None  # None when the guard dropped it
    dropped_reason: str | None


class TranscriptionSession:
    def __init__(self, session_id: str, config: SessionConfig, vad: VadStream) -> None:
        self.session_id = session_id
        self.config = config
        self.vad = vad
        self.endpointer = Endpointer(config.endpoint)
        capacity_ms = (
            config.endpoint.max_speech_ms + config.pre_roll_ms + config.post_roll_ms + 2000
        )
        self.ring = AudioRing(capacity_ms * SAMPLES_PER_MS)
        self.agreement = LocalAgreement()
        self.corrector = HotwordCorrector([*config.hotwords, *config.vocabulary])
        self.partial_interval_ms = 300
        # Trailing silence after which an early final starts (None: no early finals); the edge
        # sets it from the model's measured time per final, so the result is ready when the
        # end silence completes.
        self.early_final_after_ms: int | None = None
        self._early: tuple[int, int] | None = None  # (utterance, silence start) in flight
        self.utterance = 0
        self._frames_seen = 0
        self._utt_start_ms = 0
        self._speech_frames = 0
        self._utt_frames = 0
        self._last_partial_ms = 0
        self._partial_pending = False
        self.partials_sent = 0
        # (end sample, arrival time) of each feed, to tell when a point of audio arrived.
        self._arrivals: deque[tuple[int, float]] = deque(maxlen=4096)

    # ------------------------------------------------------------------ configuration

    def configure(
        self,
        *,
        language: str | None = None,
        hotwords: list[str] | None = None,
        vocabulary: list[str] | None = None,
        prompt: str | None = None,
        endpoint: EndpointConfig | None = None,
    ) -> None:
        if language is not None:
            self.config.language = language
            self.config.prompt = prompt
        if hotwords is not None:
            self.config.hotwords = hotwords
        if vocabulary is not None:
            self.config.vocabulary = vocabulary
        if hotwords is not None or vocabulary is not None:
            self.corrector = HotwordCorrector([*self.config.hotwords, *self.config.vocabulary])
        if endpoint is not None:
            self.config.endpoint = endpoint
            self.endpointer.reconfigure(endpoint)

    # ------------------------------------------------------------------ audio

    @property
    def speaking(self) -> bool:
        return self.endpointer.state is State.SPEECH

    @property
    def audio_ms(self) -> int:
        return self.ring.end // SAMPLES_PER_MS

    def arrival_of(self, t_ms: int) -> float | None:
        """Wall-clock time (as passed to ``feed``) at which audio time ``t_ms`` arrived."""
        sample = t_ms * SAMPLES_PER_MS
        for end, wall in self._arrivals:
            if end >= sample:
                return wall
        return None

    def feed(self, samples: npt.NDArray[np.int16], now: float) -> list[Action]:
        self.ring.append(samples)
        self._arrivals.append((self.ring.end, now))
        actions: list[Action] = []
        for prob in self.vad.feed(samples):
            t_ms = self._frames_seen * FRAME_MS
            self._frames_seen += 1
            if self.speaking:
                self._utt_frames += 1
                self._speech_frames += prob >= 0.5
            for event in self.endpointer.feed(prob, t_ms, FRAME_MS):
                actions.extend(self._on_endpoint(event))
        actions.extend(self._early_final())
        if (
            self.speaking
            and self.config.partials
            and not self._partial_pending
            and not self.endpointer.trailing_silence
        ):
            now_ms = self._frames_seen * FRAME_MS
            if (
                now_ms - self._last_partial_ms >= self.partial_interval_ms
                and now_ms - self._utt_start_ms >= 300
            ):
                self._partial_pending = True
                self._last_partial_ms = now_ms
                actions.append(self._transcribe("partial", self._utt_start_ms, now_ms))
        return actions

    @property
    def turn_ask_ms(self) -> int | None:
        """Trailing silence at which to ask the turn model (None: do not ask, fixed end silence)."""
        return self.endpointer.turn_ask_ms

    @turn_ask_ms.setter
    def turn_ask_ms(self, value: int | None) -> None:
        self.endpointer.turn_ask_ms = value

    def on_turn(self, key: tuple[int, int], probability: float) -> TurnOutcome:
        """The turn model's answer to a ``JudgeTurn``: it sets how long this silence must run,
        and ends the utterance now if it already has."""
        utterance, silence_start = key
        if utterance != self.utterance:
            return TurnOutcome(None, [])
        now_ms = self._frames_seen * FRAME_MS
        verdict, events = self.endpointer.turn_verdict(silence_start, probability, now_ms)
        return self._turn_outcome(verdict, events)

    def on_no_turn(self, key: tuple[int, int]) -> TurnOutcome:
        """A ``JudgeTurn`` that gets no answer (the model failed, or was not asked after all):
        the silence ends at the default end silence."""
        utterance, silence_start = key
        if utterance != self.utterance:
            return TurnOutcome(None, [])
        now_ms = self._frames_seen * FRAME_MS
        verdict, events = self.endpointer.no_verdict(silence_start, now_ms)
        return self._turn_outcome(verdict, events)

    def _turn_outcome(self, verdict: Verdict | None, events: list[EndpointEvent]) -> TurnOutcome:
        actions: list[Action] = []
        for event in events:
            actions.extend(self._on_endpoint(event))
        return TurnOutcome(verdict, actions)

    def _early_final(self) -> list[Action]:
        """Start the final during the end silence, or withdraw one when speech resumed."""
        silence = self.endpointer.silence_start_ms
        key = None if silence is None else (self.utterance, silence)
        actions: list[Action] = []
        if self._early is not None and self._early != key:
            actions.append(Withdraw(self._early))
            self._early = None
        after = self.early_final_after_ms
        if key is None or after is None or self._early is not None:
            return actions
        now_ms = self._frames_seen * FRAME_MS
        assert silence is not None
        if now_ms - silence >= after:
            self._early = key
            job = self._transcribe("final", self._utt_start_ms, silence, tail_ms=now_ms - silence)
            actions.append(replace(job, early=key, speculative=True))
        return actions

    def commit(self) -> list[Action]:
        """Force a final now (input.commit)."""
        ended = self.endpointer.force_end(self._frames_seen * FRAME_MS)
        return self._on_endpoint(ended) if ended else []

    def _on_endpoint(self, event: SpeechStarted | SpeechEnded | AskTurn) -> list[Action]:
        if isinstance(event, AskTurn):
            begin = max(self._utt_start_ms - self.config.pre_roll_ms, event.t_ms - TURN_WINDOW_MS)
            audio = self.ring.slice(max(0, begin) * SAMPLES_PER_MS, event.t_ms * SAMPLES_PER_MS)
            key = (self.utterance, event.silence_start_ms)
            silence_ms = event.t_ms - event.silence_start_ms
            return [JudgeTurn(key, audio.astype(np.float32) / 32768.0, silence_ms)]
        if isinstance(event, SpeechStarted):
            self.utterance += 1
            self._utt_start_ms = event.t_ms
            self._last_partial_ms = (
                event.t_ms - self.partial_interval_ms
            )  # the first partial comes early
            self._speech_frames = self._utt_frames = 0
            self._partial_pending = False
            self.agreement.reset()
            return [Emit(asr.SpeechStarted(t_ms=event.t_ms))]
        ended = Emit(asr.SpeechEnded(t_ms=event.t_ms, forced=event.forced))
        ratio = self._speech_frames / self._utt_frames if self._utt_frames else 1.0
        final = self._transcribe("final", self._utt_start_ms, event.t_ms, ratio=ratio)
        final = replace(final, decided_ms=self._frames_seen * FRAME_MS)
        early, self._early = self._early, None
        if early == (self.utterance, event.t_ms):
            # The early final heard exactly this utterance: the edge uses its result.
            final = replace(final, early=early)
        elif early is not None:
            return [Withdraw(early), ended, final]
        return [ended, final]

    def _transcribe(
        self,
        kind: Literal["partial", "final"],
        start_ms: int,
        end_ms: int,
        *,
        ratio: float = 1.0,
        tail_ms: int | None = None,
    ) -> Transcribe:
        begin = max(0, start_ms - self.config.pre_roll_ms) * SAMPLES_PER_MS
        tail = self.config.post_roll_ms if kind == "final" else 0
        tail = tail if tail_ms is None else min(tail, tail_ms)
        end = (end_ms + tail) * SAMPLES_PER_MS
        audio = self.ring.slice(begin, end).astype(np.float32) / 32768.0
        # Whisper was trained on speech with silence around it; a tight cut at the VAD edges
        # costs accuracy (measured: 12 vs 6 word errors on the espeak set), padding costs nothing.
        audio = np.concatenate([_MARGIN, audio, _MARGIN])
        return Transcribe(kind, self.utterance, audio, start_ms, end_ms, ratio)

    # ------------------------------------------------------------------ results

    def on_partial(self, job: Transcribe, result: Transcription) -> list[Emit]:
        self._partial_pending = False
        if job.utterance != self.utterance or not self.speaking or not result.text:
            return []  # stale: the utterance ended or a new one began meanwhile
        stable, full = self.agreement.update(result.text)
        self.partials_sent += 1
        return [
            Emit(
                asr.TranscriptPartial(
                    segment_id=job.utterance, text=full, stable_text=stable, t_ms=job.end_ms
                )
            )
        ]

    def on_final(self, job: Transcribe, result: Transcription) -> FinalOutcome:
        evidence = Evidence(
            no_speech_prob=result.mean("no_speech_prob"),
            avg_logprob=result.mean("avg_logprob"),
            compression_ratio=result.mean("compression_ratio"),
            speech_ratio=job.speech_ratio,
        )
        reason = hallucination_reason(result.text, evidence, prompt=self.config.prompt)
        if reason is not None:
            return FinalOutcome(None, reason)
        language = self.config.language or result.language
        text = format_entities(self.corrector.correct(result.text), language)
        return FinalOutcome(
            asr.TranscriptFinal(
                segment_id=job.utterance,
                text=text,
                raw_text=result.text,
                start_ms=job.start_ms,
                end_ms=job.end_ms,
                confidence=round(math.exp(min(0.0, evidence.avg_logprob)), 3),
                language=result.language,
            ),
            None,
        )
