"""Dual-channel barge-in: is the caller really interrupting the agent?

Fed one 20 ms frame at a time with the level of the caller channel and of the played channel
(what the agent is saying, the echo reference). A frame counts as the caller speaking only when
it is loud in absolute terms *and* well above what the agent's own audio, returned by the line
as echo, could explain. An interruption is speech that lasts: backchannels ("uh-huh", "okay",
"mm-hmm" are 350-650 ms) and short noises do not stop the agent; short gaps inside speech do not
reset it. Pure: no clocks or I/O, so it is table-tested.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

FRAME_MS = 20


def rms(pcm: bytes) -> float:
    if not pcm:
        return 0.0
    x = np.frombuffer(pcm, "<i2").astype(np.float32)
    return float(np.sqrt(np.mean(x * x))) if x.size else 0.0


@dataclass(frozen=True)
class BargeInConfig:
    min_voiced_ms: int = 400  # the caller's own voice, summed over the window
    min_span_ms: int = 700  # from the onset: backchannels ("uh-huh", "mm-hmm") are shorter
    max_gap_ms: int = 400  # a pause this long ends the caller's speech (phrases have shorter ones)
    window_ms: int = 1500
    speech_rms: float = 350.0  # about -39 dBFS: quieter is line noise
    echo_margin: float = (
        0.25  # caller level must exceed this share (-12 dB) of the recent agent level
    )
    echo_window_ms: int = 400  # how far back the echo of the agent's audio can arrive


@dataclass
class BargeInDetector:
    config: BargeInConfig = field(default_factory=BargeInConfig)
    _played: deque[float] = field(default_factory=deque)
    _voiced: deque[bool] = field(default_factory=deque)
    _gap_frames: int = 0
    _onset_frame: int | None = None
    frame: int = 0
    last_voiced: bool = False  # whether the last frame fed was the caller's own voice
    # How long the caller had been speaking when the last interruption was recognized: the
    # detector's share of the stop latency (playback stops on that very frame).
    last_interruption_ms: int | None = None

    def __post_init__(self) -> None:
        self._played = deque(maxlen=max(1, self.config.echo_window_ms // FRAME_MS))
        self._voiced = deque(maxlen=max(1, self.config.window_ms // FRAME_MS))

    def caller_speaking(self, caller_rms: float, played_rms: float) -> bool:
        """Whether this frame is the caller's own voice (not silence, not the agent's echo)."""
        self._played.append(played_rms)
        echo_level = max(self._played) * self.config.echo_margin
        return caller_rms >= self.config.speech_rms and caller_rms > echo_level

    def feed(self, caller_rms: float, played_rms: float, agent_speaking: bool) -> bool:
        """One frame; True exactly once, on the frame an interruption is recognized.

        An interruption: while the agent speaks, the caller's voice adds up to ``min_voiced_ms``
        within the window and has lasted ``min_span_ms`` since it began, with no pause longer
        than ``max_gap_ms``, and the caller is speaking on this very frame.
        """
        self.frame += 1
        voiced = self.caller_speaking(caller_rms, played_rms)
        self.last_voiced = voiced
        self._voiced.append(voiced)
        if voiced:
            if self._onset_frame is None:
                self._onset_frame = self.frame
            self._gap_frames = 0
        elif self._onset_frame is not None:
            self._gap_frames += 1
            if self._gap_frames * FRAME_MS > self.config.max_gap_ms:
                self.reset()
        if not agent_speaking or not voiced or self._onset_frame is None:
            # Speech while the agent is silent is an ordinary turn, not an interruption.
            return False
        span_ms = (self.frame - self._onset_frame + 1) * FRAME_MS
        voiced_ms = sum(self._voiced) * FRAME_MS
        if span_ms >= self.config.min_span_ms and voiced_ms >= self.config.min_voiced_ms:
            self.last_interruption_ms = span_ms
            self.reset()
            return True
        return False

    @property
    def onset_ms(self) -> int | None:
        """When the caller's current speech began, in ms of the frames fed."""
        return None if self._onset_frame is None else self._onset_frame * FRAME_MS

    def reset(self) -> None:
        self._gap_frames = 0
        self._onset_frame = None
        self._voiced.clear()
