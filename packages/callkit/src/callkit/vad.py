"""Silero VAD on onnxruntime (no torch): one shared model, one small state per stream.

The model takes 512 new samples at 16 kHz plus the previous 64 as context and returns the
probability that the window is speech. Windows quieter than the energy floor skip the model
entirely (probability 0): on a phone line most of the time is silence, and that is most of the
saving. The ASR gateway runs it for endpointing, the bridge for barge-in; each call or session
holds a ``VadStream`` over the one process-wide ``SileroVad``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

FRAME_SAMPLES = 512  # 32 ms at 16 kHz
CONTEXT_SAMPLES = 64
SAMPLE_RATE = 16000
FRAME_MS = FRAME_SAMPLES * 1000 // SAMPLE_RATE


class VadModel(Protocol):
    """A shared speech detector; ``SileroVad`` is the real one."""

    def stream(self, energy_floor_dbfs: float = -55.0) -> VadStream: ...

    def run(
        self, frame: npt.NDArray[np.float32], state: npt.NDArray[np.float32]
    ) -> tuple[float, npt.NDArray[np.float32]]:
        """The probability that ``frame`` (context + 512 new samples) is speech, and the new state."""
        ...


class SileroVad:
    """The shared ONNX model. ``InferenceSession.run`` is thread-safe; streams keep their own state."""

    def __init__(self, model_path: Path) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(
            str(model_path), options, providers=["CPUExecutionProvider"]
        )
        self._sr = np.array(SAMPLE_RATE, dtype=np.int64)

    def stream(self, energy_floor_dbfs: float = -55.0) -> VadStream:
        return VadStream(self, energy_floor_dbfs)

    def run(
        self, frame: npt.NDArray[np.float32], state: npt.NDArray[np.float32]
    ) -> tuple[float, npt.NDArray[np.float32]]:
        prob, new_state = self._session.run(
            None, {"input": frame[None, :], "state": state, "sr": self._sr}
        )
        return float(prob[0, 0]), new_state


class VadStream:
    """Per-stream VAD: feed any number of 16 kHz samples, get one probability per 32 ms window."""

    def __init__(self, model: VadModel, energy_floor_dbfs: float) -> None:
        self._model = model
        self._state = np.zeros((2, 1, 128), dtype=np.float32)
        self._context = np.zeros(CONTEXT_SAMPLES, dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)
        self._floor = 10 ** (energy_floor_dbfs / 20)
        self.frames = 0
        self.skipped = 0  # windows below the energy floor, not run through the model

    def feed(self, samples: npt.NDArray[np.int16]) -> list[float]:
        audio = np.concatenate([self._pending, samples.astype(np.float32) / 32768.0])
        probs: list[float] = []
        n = len(audio) // FRAME_SAMPLES
        for i in range(n):
            frame = audio[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES]
            if float(np.sqrt(np.mean(frame * frame))) < self._floor:
                probs.append(0.0)
                self.skipped += 1
            else:
                x = np.concatenate([self._context, frame])
                prob, self._state = self._model.run(x, self._state)
                probs.append(prob)
            self._context = frame[-CONTEXT_SAMPLES:]
        self._pending = audio[n * FRAME_SAMPLES :]
        self.frames += n
        return probs
