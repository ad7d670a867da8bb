"""A bounded ring buffer of 16 kHz int16 samples addressed by absolute sample index.

A session keeps only the recent past (the utterance being transcribed plus a little before it),
so a 30-minute call holds the same memory as a 1-minute one.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


class AudioRing:
    def __init__(self, capacity_samples: int) -> None:
        self.capacity = capacity_samples
        self._buf = np.zeros(capacity_samples, dtype=np.int16)
        self.end = 0  # absolute index one past the newest sample

    @property
    def start(self) -> int:
        """Absolute index of the oldest sample still held."""
        return max(0, self.end - self.capacity)

    @property
    def nbytes(self) -> int:
        return self._buf.nbytes

    def append(self, samples: npt.NDArray[np.int16]) -> None:
        n = len(samples)
        if n > self.capacity:  # only the newest capacity samples can be kept
            self.end += n - self.capacity
            samples = samples[-self.capacity :]
            n = self.capacity
        pos = self.end % self.capacity
        first = min(n, self.capacity - pos)
        self._buf[pos : pos + first] = samples[:first]
        if first < n:
            self._buf[: n - first] = samples[first:]
        self.end += n

    def slice(self, begin: int, end: int | None = None) -> npt.NDArray[np.int16]:
        """Samples [begin, end) by absolute index, clipped to what is still held."""
        end = self.end if end is None else min(end, self.end)
        begin = max(begin, self.start)
        length = end - begin
        if length <= 0:
            return np.zeros(0, dtype=np.int16)
        a = begin % self.capacity
        if length <= self.capacity - a:
            return self._buf[a : a + length].copy()
        return np.concatenate([self._buf[a:], self._buf[: length - (self.capacity - a)]])
