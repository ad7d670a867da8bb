"""Semantic end of turn: Smart Turn v3 on onnxruntime, asked once per trailing silence.

The model reads the last 8 s of an utterance as Whisper log-mel features (80 bins, 100 frames
a second, 800 frames; a shorter utterance is padded with silence at the start) and returns the
probability that the speaker has finished their turn. Its features are Whisper's, computed with
faster-whisper's own numpy extractor on the waveform normalized to zero mean and unit variance.

One ONNX session (one intra-op thread) serves every call, on a worker thread of its own so the
event loop never waits for it. ``TurnDetector.ask_after_ms`` says when in a trailing silence to
ask, from the model's measured time per call, so the verdict lands when a complete turn's short
silence has run; when the calls already waiting would make it land after the default end
silence, it says not to ask at all (the verdict could change nothing).
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import Executor
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
from faster_whisper.feature_extractor import FeatureExtractor

from asr_gateway.scheduler import AsrMetrics
from callkit.errors import ModelError

SAMPLE_RATE = 16000
WINDOW_S = 8
WINDOW_SAMPLES = WINDOW_S * SAMPLE_RATE
MEL_BINS = 80
FRAMES = WINDOW_S * 100
_NORM_EPS = 1e-7  # variance floor of the waveform normalization (silence stays finite)


_EXTRACTOR = FeatureExtractor(feature_size=MEL_BINS, sampling_rate=SAMPLE_RATE)


def features(audio: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """(80, 800) log-mel features of the last 8 s of ``audio`` (16 kHz, float in [-1, 1]),
    silence-padded at the start when shorter."""
    x = np.asarray(audio, dtype=np.float32)[-WINDOW_SAMPLES:]
    x = np.pad(x, (WINDOW_SAMPLES - len(x), 0))
    x = (x - x.mean()) / np.sqrt(x.var() + _NORM_EPS)
    mel: npt.NDArray[np.float32] = _EXTRACTOR(x, padding=0).astype(np.float32)
    return mel[:, -FRAMES:]


class SmartTurn:
    """The shared ONNX model; ``probability`` is blocking and thread-safe."""

    def __init__(self, model_path: Path) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self._session = ort.InferenceSession(
            str(model_path), options, providers=["CPUExecutionProvider"]
        )
        (inp,) = self._session.get_inputs()
        if list(inp.shape[1:]) != [MEL_BINS, FRAMES]:
            raise ModelError(
                f"turn model {model_path.name} takes {inp.shape}, not (batch, {MEL_BINS}, {FRAMES})"
            )
        self._input = inp.name

    def probability(self, audio: npt.NDArray[np.float32]) -> float:
        """The probability that the speaker's turn is complete at the end of ``audio``."""
        (out,) = self._session.run(None, {self._input: features(audio)[None]})
        return float(np.asarray(out).reshape(-1)[0])


class TurnDetector:
    """Runs the shared model off the event loop and keeps its measured time per call."""

    #: No question before this much trailing silence. The model reads the silence too: asked at
    #: 96 ms it called 3 of 30 complete Piper sentences unsure (0.20-0.46), at 224 ms none (all
    #: >= 0.55); 96 ms is what lets its verdict land by ~224 ms on a 2-core CPU (see the README).
    MIN_ASK_MS = 96

    def __init__(self, model: SmartTurn, executor: Executor, metrics: AsrMetrics) -> None:
        self.model = model
        self.executor = executor
        self.metrics = metrics
        self._seconds = 0.1  # running estimate of model time per call
        self.in_flight = 0

    def _wait_ms(self) -> int:
        """How long a question asked now is expected to take, the ones ahead of it included."""
        return int(1.2 * self._seconds * 1000 * (self.in_flight + 1))

    def ask_after_ms(self, complete_ms: int) -> int:
        """Trailing silence at which to ask, so the verdict is back when ``complete_ms`` of
        silence has run; never before ``MIN_ASK_MS``."""
        return max(self.MIN_ASK_MS, complete_ms - self._wait_ms())

    def worth_asking(self, silence_ms: int, end_silence_ms: int) -> bool:
        """Whether a verdict asked for at ``silence_ms`` would be back before ``end_silence_ms``,
        the end without one (a later one changes nothing: the cheap skip under load)."""
        return silence_ms + self._wait_ms() < end_silence_ms

    def _timed(self, audio: npt.NDArray[np.float32]) -> tuple[float, float]:
        started = time.perf_counter()  # on the worker: the model's own time, not the wait
        prob = self.model.probability(audio)
        return prob, time.perf_counter() - started

    async def probability(self, audio: npt.NDArray[np.float32]) -> float:
        loop = asyncio.get_running_loop()
        self.in_flight += 1
        try:
            prob, seconds = await loop.run_in_executor(self.executor, self._timed, audio)
        finally:
            self.in_flight -= 1
        self.metrics.turn_seconds.observe(seconds)
        self._seconds = 0.7 * self._seconds + 0.3 * seconds
        return prob
