"""The engine interface: 16 kHz float audio in, text with the recognizer's confidence out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True, slots=True)
class Segment:
    start_s: float
    end_s: float
    text: str
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float


@dataclass(frozen=True, slots=True)
class Transcription:
    text: str
    language: str
    segments: tuple[Segment, ...]
    window_s: float = 30.0  # the encoder window the text came from
    retried: bool = False  # a fitted window's result was rejected and decoded again over 30 s

    def mean(self, field: str) -> float:
        if not self.segments:
            return 0.0
        return float(np.mean([getattr(s, field) for s in self.segments]))


class AsrEngine(Protocol):
    name: str
    device: str

    def transcribe(
        self,
        audio: npt.NDArray[np.float32],
        *,
        language: str | None,
        hotwords: list[str],
        with_timestamps: bool = False,
        fallback: bool = True,
    ) -> Transcription: ...


@runtime_checkable
class BatchingEngine(Protocol):
    """An engine that can run several sessions' clips in one pass (the scheduler batches them)."""

    def transcribe_batch(
        self,
        audios: list[npt.NDArray[np.float32]],
        *,
        language: str,
        hotwords: list[str],
        with_timestamps: bool = False,
        fallback: bool = True,
    ) -> list[Transcription]: ...
