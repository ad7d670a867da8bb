"""Dual-channel barge-in: yield to the caller at once, then decide whether they really interrupt.

Fed one 20 ms frame at a time with two judgements of it (:meth:`BargeInDetector.judge`): whether
it is **loud**, meaning loud in absolute terms and well above what the agent's own audio,
returned by the line as echo, could explain (the played channel is the reference; a frame the
echo canceller found to be echo alone is not), and whether it is the caller's **voice**: loud and
speech by the speech detector (Silero VAD on the caller channel with the echo removed).

While the agent speaks, ``yield_ms`` of loud frames make the agent **yield**: it goes quiet at
once (the shell clears what the switch buffered) and keeps its turn. Loudness alone decides this
first step because it is cheap to take back and the speech detector needs a window or two of a
word before it is sure. Then the voice decides:

- the caller's voice goes on, adding up to ``min_voiced_ms`` over ``min_span_ms`` from the onset:
  a real **interruption**; the turn stops for good;
- the voice stops for ``resume_gap_ms`` first (a backchannel: "uh-huh", "okay", "mm-hmm" are
  350-650 ms; a cough, a short noise): the agent **resumes** where the caller stopped hearing it;
- neither within ``max_yield_ms`` (scattered noise): it resumes too.

Pure: no clocks or I/O, so it is table-tested.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

FRAME_MS = 20

Decision = Literal["yield", "interrupt", "resume"]


@dataclass(frozen=True, slots=True)
class Frame:
    """One 20 ms frame of the caller channel, judged."""

    loud: bool  # loud, and not the agent's echo
    voice: bool  # loud and speech: the caller's own voice


def rms(pcm: bytes) -> float:
    if not pcm:
        return 0.0
    x = np.frombuffer(pcm, "<i2").astype(np.float32)
    return float(np.sqrt(np.mean(x * x))) if x.size else 0.0


@dataclass(frozen=True)
class BargeInConfig:
    yield_ms: int = 40  # loud frames over the agent this long: the agent goes quiet
    min_voiced_ms: int = 400  # the caller's own voice, summed over the window
    min_span_ms: int = 700  # from the onset: backchannels ("uh-huh", "mm-hmm") are shorter
    resume_gap_ms: int = 400  # after a yield, a pause this long: it was no interruption
    max_yield_ms: int = 2000  # undecided this long after the onset (scattered noise): resume
    window_ms: int = 1500
    speech_rms: float = 350.0  # about -39 dBFS: quieter is line noise
    echo_margin: float = (
        0.25  # caller level must exceed this share (-12 dB) of the recent agent level
    )
    echo_window_ms: int = 400  # how far back the echo of the agent's audio can arrive
    vad_threshold: float = 0.5  # speech probability at or above which a frame may be voice


@dataclass
class BargeInDetector:
    config: BargeInConfig = field(default_factory=BargeInConfig)
    _played: deque[float] = field(default_factory=deque)
    _voiced: deque[bool] = field(default_factory=deque)
    _gap_frames: int = 0
    _onset_frame: int | None = None
    _run_loud: int = 0  # loud frames since the onset
    frame: int = 0
    last_voiced: bool = False  # whether the last frame fed was the caller's own voice
    yielded: bool = False  # the agent is quiet for the caller, undecided
    #: How long the caller had been speaking when the agent last yielded: the detector's share
    #: of the yield latency (the shell clears the switch's audio on that very frame).
    last_yield_ms: int | None = None
    yield_onset_ms: int | None = None  # where the speech that made the agent yield began

    def __post_init__(self) -> None:
        self._played = deque(maxlen=max(1, self.config.echo_window_ms // FRAME_MS))
        self._voiced = deque(maxlen=max(1, self.config.window_ms // FRAME_MS))

    def judge(self, caller_rms: float, played_rms: float, speech_prob: float = 1.0) -> Frame:
        """A frame of the caller channel (its level with the echo removed, 0 for a frame that
        was echo alone), the played channel's level, and the VAD's ``speech_prob``."""
        self._played.append(played_rms)
        echo_level = max(self._played) * self.config.echo_margin
        loud = caller_rms >= self.config.speech_rms and caller_rms > echo_level
        return Frame(loud, loud and speech_prob >= self.config.vad_threshold)

    def feed(self, frame: Frame | bool, agent_speaking: bool) -> Decision | None:
        """One frame; the decision this frame brings, if any. (A bool is a frame that is as
        loud as it is voiced.)

        ``yield`` once per onset over the agent; after it exactly one of ``interrupt`` (the
        caller's voice lasted) or ``resume`` (it stopped, or stayed scattered). Speech while
        the agent is silent is an ordinary turn: no decision.
        """
        if isinstance(frame, bool):
            frame = Frame(frame, frame)
        self.frame += 1
        voiced = frame.voice
        self.last_voiced = voiced
        self._voiced.append(voiced)
        c = self.config
        if frame.loud:
            if self._onset_frame is None:
                self._onset_frame = self.frame
                self._run_loud = 0
            self._run_loud += 1
            self._gap_frames = 0
        elif self._onset_frame is not None:
            self._gap_frames += 1
        if self.yielded:
            return self._decide(agent_speaking)
        if self._onset_frame is not None and self._gap_frames * FRAME_MS > c.resume_gap_ms:
            self.reset()
        if not agent_speaking or not frame.loud or self._onset_frame is None:
            return None
        if self._run_loud * FRAME_MS >= c.yield_ms:
            self.yielded = True
            self.last_yield_ms = self._span_ms()
            self.yield_onset_ms = self._onset_frame * FRAME_MS
            decided = self._decide(agent_speaking)
            return "interrupt" if decided == "interrupt" else "yield"
        return None

    def _span_ms(self) -> int:
        assert self._onset_frame is not None
        return (self.frame - self._onset_frame + 1) * FRAME_MS

    def _decide(self, agent_speaking: bool) -> Decision | None:
        c = self.config
        if not agent_speaking:
            self.reset()  # the turn ended meanwhile (or was stopped): nothing to resume
            return None
        if self._onset_frame is None or self._gap_frames * FRAME_MS >= c.resume_gap_ms:
            self.reset()
            return "resume"
        span_ms = self._span_ms()
        voiced_ms = sum(self._voiced) * FRAME_MS
        if self.last_voiced and span_ms >= c.min_span_ms and voiced_ms >= c.min_voiced_ms:
            self.reset()
            return "interrupt"
        if span_ms >= c.max_yield_ms:
            self.reset()
            return "resume"
        return None

    @property
    def onset_ms(self) -> int | None:
        """When the caller's current speech began, in ms of the frames fed."""
        return None if self._onset_frame is None else self._onset_frame * FRAME_MS

    def reset(self) -> None:
        self.yielded = False
        self._gap_frames = 0
        self._onset_frame = None
        self._run_loud = 0
        self._voiced.clear()
