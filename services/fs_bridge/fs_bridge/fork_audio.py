"""The fork's binary messages as whole 20 ms frames of its two channels, at 16 kHz.

mod_audio_fork's binary messages are a byte stream of interleaved stereo L16 at the fork's rate
(left: what the caller says, right: what is played to them), not aligned packets: a message may
hold several frames, or end inside a sample. Whole stereo samples are cut from the stream (the
remainder waits for the next message, so the channels never swap), an 8 kHz fork is resampled
to 16 kHz with its filter state carried across messages (both channels alike, so the echo path
between them is kept), and the result is handed on in whole 20 ms frames.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from callkit.audio import SampleAligner, StreamResampler
from fs_bridge.echo import FRAME, RATE
from fs_bridge.turns import Samples

_FRAME_BYTES = FRAME * 2 * 2  # 20 ms of stereo L16 at 16 kHz


@dataclass
class ForkFrames:
    """The frames of what came in so far: the caller channel, the played channel, and the
    stereo bytes as they came (whole samples, at the fork's rate) for the recording."""

    caller: Samples
    played: Samples
    stereo: bytes


@dataclass
class ForkAudio:
    rate: int = RATE
    _aligner: SampleAligner = field(default_factory=lambda: SampleAligner(channels=2))
    _pending: bytearray = field(default_factory=bytearray)  # 16 kHz stereo short of a frame

    def __post_init__(self) -> None:
        # MQ: its filter holds back about 26 ms of an 8 kHz stream (HQ about 66 ms), which every
        # barge-in would pay; telephone speech has nothing above 4 kHz for HQ to keep.
        self._resampler = (
            None
            if self.rate == RATE
            else StreamResampler(self.rate, RATE, channels=2, quality="MQ")
        )

    def feed(self, data: bytes) -> ForkFrames:
        stereo = self._aligner.feed(data)
        wide = stereo if self._resampler is None else self._resampler.process(stereo)
        self._pending += wide
        cut = len(self._pending) - len(self._pending) % _FRAME_BYTES
        frames = np.frombuffer(bytes(self._pending[:cut]), "<i2")
        del self._pending[:cut]
        return ForkFrames(frames[0::2], frames[1::2], stereo)
