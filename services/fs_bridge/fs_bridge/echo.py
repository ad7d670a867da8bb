"""The agent's echo on the caller channel, found with the played channel as reference and removed.

A line (a hybrid, a speakerphone) returns what the agent says, delayed and attenuated. Every
``hop_ms`` the canceller cross-correlates the last ``window_ms`` of the caller channel with the
played channel at every delay up to ``max_delay_ms``; a peak of normalized correlation at or
above ``min_coherence`` gives the echo path (delay and gain, least squares). From then on each
20 ms frame has the predicted echo (the played audio that delay back, times the gain)
subtracted, and a frame whose remainder is ``explained_db`` below the predicted echo carried
nothing but echo and goes to the recognizer as silence. Everything else goes through as it
came (minus the predicted echo): the caller's quiet syllables are never cut for being quiet
while the agent speaks. A window in which the caller channel stays ``no_echo_db`` below the
played audio whose echo must have come back within it (the window less its last
``max_delay_ms``: a sentence that has only just begun has no echo back yet) says the line returns
no echo; then the caller channel passes untouched.

Only before the first estimate, while the agent is audible, frames no louder than the worst
echo a line returns (``unknown_margin`` of the recent played level) are held back. The model is
a flat delay and gain: a line whose echo is spread over many milliseconds leaves more remainder,
which then goes through rather than cutting speech. Pure numpy, no clocks: table-tested.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt

RATE = 16000
FRAME = RATE // 50  # samples per 20 ms frame

Samples = npt.NDArray[np.float64]


@dataclass(frozen=True)
class EchoConfig:
    max_delay_ms: int = 400  # the longest echo delay looked for (played channel to caller)
    window_ms: int = 800  # audio each estimate correlates
    hop_ms: int = 200  # how often the path is estimated
    min_coherence: float = 0.6  # normalized correlation that proves an echo path
    coherence_decay: float = 0.005  # per hop: how fast a cleaner window's estimate stops counting
    min_played_rms: float = 150.0  # about -47 dBFS: a quieter window tells nothing of the line
    no_echo_db: float = 35.0  # caller this far below the played window: the line returns none
    explained_db: float = 20.0  # remainder this far below the predicted echo: the frame is echo
    # (G.711 leaves 26-36 dB below the echo; a syllable 14 dB below it is the caller's)
    min_echo_rms: float = 20.0  # predicted echo quieter than this is left in (below line noise)
    unknown_margin: float = 0.5  # -6 dB: the loudest echo a line returns, before the path is known


@dataclass(frozen=True, slots=True)
class EchoPath:
    delay_samples: int
    gain: float
    coherence: float

    @property
    def delay_ms(self) -> float:
        return self.delay_samples * 1000 / RATE

    @property
    def gain_db(self) -> float:
        return float(20 * np.log10(max(abs(self.gain), 1e-9)))


def _rms(x: Samples) -> float:
    return float(np.sqrt(np.mean(x * x))) if x.size else 0.0


@dataclass
class EchoCanceller:
    """Fed one frame of each channel at a time; returns the frame for the recognizer."""

    config: EchoConfig = field(default_factory=EchoConfig)
    path: EchoPath | None = None  # the echo path, once a window proved one
    no_echo: bool = False  # a window proved the line returns no echo
    last_suppressed: bool = False  # whether the last frame was echo only (sent as silence)
    frames: int = 0
    suppressed_frames: int = 0

    def __post_init__(self) -> None:
        c = self.config
        self._max_lag = c.max_delay_ms * RATE // 1000
        self._window = c.window_ms * RATE // 1000
        self._hop_frames = max(1, c.hop_ms // 20)
        self._played: Samples = np.zeros(self._max_lag + self._window + FRAME)
        self._caller: Samples = np.zeros(self._window)
        self._filled = 0  # samples of caller audio seen, up to the window
        self._explained = 10 ** (-c.explained_db / 20)
        self._no_echo = 10 ** (-c.no_echo_db / 20)

    def process(self, caller: npt.NDArray[np.int16], played: npt.NDArray[np.int16]) -> bytes:
        """One frame of the caller channel and of the played channel (same length, int16)."""
        x = caller.astype(np.float64)
        n = x.size
        self._played = np.concatenate([self._played[n:], played.astype(np.float64)])
        self._caller = np.concatenate([self._caller[n:], x])
        self._filled = min(self._window, self._filled + n)
        self.frames += 1
        if self.frames % self._hop_frames == 0 and self._filled >= self._window:
            self._estimate()
        out = self._clean(x)
        self.last_suppressed = out is None
        if out is None:
            self.suppressed_frames += 1
            return bytes(2 * n)
        if out is x:
            return caller.astype("<i2").tobytes()
        return np.clip(np.rint(out), -32768, 32767).astype("<i2").tobytes()

    def _clean(self, x: Samples) -> Samples | None:
        """The frame minus its predicted echo, or None when it is echo and nothing else."""
        if self.path is not None:
            d, n = self.path.delay_samples, x.size
            end = self._played.size - d
            predicted = self.path.gain * self._played[end - n : end]
            echo = _rms(predicted)
            if echo < self.config.min_echo_rms:
                return x
            rest = x - predicted
            return None if _rms(rest) <= self._explained * echo else rest
        if self.no_echo:
            return x
        # The loudest 20 ms of what was played within the longest delay, at any offset: an echo
        # delayed by a part of a frame (250 ms is 12.5 frames) spans two played frames, and
        # with its energy in their halves it is up to 3 dB louder than either aligned frame.
        recent = self._played[-(self._max_lag + FRAME) :]
        energy = np.concatenate(([0.0], np.cumsum(recent * recent)))
        loudest = float(np.sqrt(max(0.0, float(np.max(energy[FRAME:] - energy[:-FRAME]))) / FRAME))
        if (
            loudest >= self.config.min_played_rms
            and _rms(x) <= self.config.unknown_margin * loudest
        ):
            return None
        return x

    def _estimate(self) -> None:
        """Delay and gain of the echo from the last window, when the window can tell."""
        m, w = self._max_lag, self._window
        ref = self._played[-(m + w) :]
        cap = self._caller
        ref_rms, cap_energy = _rms(ref[m:]), float(np.dot(cap, cap))
        if ref_rms < self.config.min_played_rms:
            return  # the agent was (nearly) silent: nothing to learn about the line
        size = 1 << int(np.ceil(np.log2(m + 2 * w)))
        spectrum = np.fft.rfft(ref, size) * np.conj(np.fft.rfft(cap, size))
        # corr[k] = sum_n cap[n] * ref[k + n]; delay L lines up ref[m - L + n] with cap[n].
        corr = np.fft.irfft(spectrum, size)[: m + 1][::-1]
        energy = np.concatenate([[0.0], np.cumsum(ref * ref)])
        starts = m - np.arange(m + 1)
        ref_energy = energy[starts + w] - energy[starts]
        coherence = corr / np.sqrt(np.maximum(ref_energy * cap_energy, 1e-9))
        lag = int(np.argmax(np.abs(coherence)))
        best = abs(float(coherence[lag]))
        if self.path is not None:
            # Windows where the caller talks too correlate less and give a rougher gain (0.3 dB
            # off leaves the echo only 30 dB down): only one as clean as the path's own replaces
            # it. The bar sinks a little each hop, so a line that changes is followed.
            self.path = replace(
                self.path, coherence=self.path.coherence - self.config.coherence_decay
            )
        if best >= self.config.min_coherence and (self.path is None or best >= self.path.coherence):
            gain = float(corr[lag] / max(ref_energy[lag], 1e-9))
            self.path = EchoPath(lag, gain, best)
            self.no_echo = False
        elif self._no_echo_shown(cap_energy):
            self.path = None
            self.no_echo = True

    def _no_echo_shown(self, cap_energy: float) -> bool:
        """The caller window stays far below agent audio whose echo, at any delay the canceller
        looks for, must have come back inside it: the line returns none. Only that older part
        of the played window counts: a sentence that has just begun has no echo back yet."""
        m, w = self._max_lag, self._window
        settled = self._played[-w:-m] if 0 < m < w else self._played[-w:]
        settled_rms = _rms(settled)
        if settled_rms < self.config.min_played_rms:
            return False
        return bool(np.sqrt(cap_energy / w) < self._no_echo * settled_rms)
