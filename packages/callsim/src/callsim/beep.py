"""A voicemail beep in what the far end sends, found the way mod_avmd reports it: once.

mod_avmd watches the read side of an outbound leg (what the callee's end plays) for a sinusoid
that holds its frequency, and fires ``avmd::beep`` the first time it finds one. This detector keeps
that contract on the emulator's 20 ms frames: a frame is tonal when one frequency (its FFT peak
and the two bins either side, which a Hann window spreads a pure tone over) carries nearly all of
its energy and is loud enough to be heard; a beep is ``min_frames`` tonal frames in a row at the
same frequency. Speech spreads its energy over harmonics and glides between them, so it never
holds one bin that long. Frames in, at most one :class:`Beep` out; nothing here reads a clock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Beep:
    frequency_hz: float
    frequency_variance: float
    amplitude: float  # RMS of the tone's frames, in 16-bit sample units


@dataclass
class BeepDetector:
    rate: int = 16000
    min_frames: int = 5  # 100 ms of one tone
    min_rms: float = 300.0  # about -40 dBFS: line noise stays below it
    purity: float = 0.85  # share of the frame's energy at the peak frequency
    band_hz: tuple[float, float] = (300.0, 3000.0)
    found: Beep | None = None
    _streak: list[tuple[float, float]] = field(default_factory=list)  # (frequency, rms)

    def feed(self, pcm: bytes) -> Beep | None:
        """One frame of 16-bit mono L16; the beep on the frame it is found, else None."""
        if self.found is not None:
            return None
        tone = self._tone(np.frombuffer(pcm, "<i2").astype(np.float64))
        if tone is None or (self._streak and abs(tone[0] - self._streak[0][0]) > self._bin_hz(pcm)):
            self._streak = [tone] if tone is not None else []
            return None
        self._streak.append(tone)
        if len(self._streak) < self.min_frames:
            return None
        freqs = np.array([f for f, _ in self._streak])
        self.found = Beep(
            frequency_hz=float(freqs.mean()),
            frequency_variance=float(freqs.var()),
            amplitude=float(np.mean([a for _, a in self._streak])),
        )
        return self.found

    def _bin_hz(self, pcm: bytes) -> float:
        return self.rate / max(1, len(pcm) // 2)

    def _tone(self, x: np.ndarray) -> tuple[float, float] | None:
        """(frequency, rms) of a frame that is one steady tone, else None."""
        if x.size < 16:
            return None
        rms = float(np.sqrt(np.mean(x * x)))
        if rms < self.min_rms:
            return None
        power = np.abs(np.fft.rfft(x * np.hanning(x.size))) ** 2
        peak = int(np.argmax(power))
        share = float(power[max(0, peak - 2) : peak + 3].sum() / max(power.sum(), 1e-12))
        frequency = peak * self.rate / x.size
        low, high = self.band_hz
        if share < self.purity or not low <= frequency <= high:
            return None
        return frequency, rms


@dataclass
class BeepWatch:
    """A channel tap: what the far end sent, each tick, into the detector."""

    detector: BeepDetector
    on_beep: Callable[[Beep], None]

    def __call__(self, read16: bytes, written16: bytes | None) -> None:
        found = self.detector.feed(read16)
        if found is not None:
            self.on_beep(found)
