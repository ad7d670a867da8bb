"""The engine interface: one sentence in, int16 audio at the engine's native rate out."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt


class SynthesisCancelled(Exception):
    """The request was cancelled (the caller barged in or the client went away)."""


class CancelToken:
    """Set from the event loop, observed by the synthesis thread.

    Engines register a callback that aborts their current inference (onnxruntime's
    ``RunOptions.terminate``), so a cancel stops the CPU work mid-sentence instead of after it.
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._aborts: list[object] = []
        self.cancelled_at: float | None = None  # perf_counter() when cancel() was called

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def cancel(self) -> None:
        with self._lock:
            if self.cancelled_at is None:
                self.cancelled_at = time.perf_counter()
            self._event.set()
            for abort in self._aborts:
                abort.terminate = True  # type: ignore[attr-defined]

    def register(self, run_options: object) -> None:
        """Abort ``run_options``'s inference when cancelled (immediately if already cancelled)."""
        with self._lock:
            self._aborts.append(run_options)
            if self._event.is_set():
                run_options.terminate = True  # type: ignore[attr-defined]

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise SynthesisCancelled


@dataclass(frozen=True, slots=True)
class Synthesis:
    audio: npt.NDArray[np.int16]
    sample_rate: int


class TtsEngine(Protocol):
    """A loaded voice."""

    name: str
    language: str
    sample_rate: int
    model_version: str

    def synthesize(self, text: str, *, speed: float, cancel: CancelToken) -> Synthesis:
        """Synthesize one sentence of normalized text; blocking, run in a worker thread."""
        ...
