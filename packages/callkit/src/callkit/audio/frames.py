"""Signed 16-bit little-endian PCM frames, stereo split/interleave and byte-stream alignment."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from callkit.errors import InvalidInput, UnsupportedFormat

SAMPLE_WIDTH = 2  # bytes per sample: everything on the call path is L16
#: Rates the call path accepts from telephony and clients; others are resampled at the edge.
CALL_RATES_HZ = (8000, 16000)

Int16Array = npt.NDArray[np.int16]


@dataclass(frozen=True, slots=True)
class PcmFrame:
    """A block of interleaved L16LE audio with its sample rate and channel count."""

    data: bytes
    sample_rate: int
    channels: int = 1

    def __post_init__(self) -> None:
        if self.sample_rate <= 0 or self.sample_rate > 384_000:
            raise UnsupportedFormat(f"sample rate must be 1..384000 Hz, got {self.sample_rate}")
        if self.channels not in (1, 2):
            raise UnsupportedFormat(f"expected 1 or 2 channels, got {self.channels}")
        block = SAMPLE_WIDTH * self.channels
        if len(self.data) % block:
            raise InvalidInput(
                f"PCM frame of {len(self.data)} bytes is not a whole number of 16-bit "
                f"{'stereo' if self.channels == 2 else 'mono'} samples ({block} bytes each)"
            )

    @classmethod
    def from_array(cls, samples: npt.ArrayLike, sample_rate: int) -> PcmFrame:
        """From int16 samples shaped (n,) for mono or (n, 2) for stereo."""
        arr = np.asarray(samples)
        if arr.dtype != np.int16:
            raise UnsupportedFormat(f"expected int16 samples, got {arr.dtype}")
        channels = 1 if arr.ndim == 1 else arr.shape[1]
        return cls(
            np.ascontiguousarray(arr).astype("<i2", copy=False).tobytes(), sample_rate, channels
        )

    @classmethod
    def from_float(cls, samples: npt.ArrayLike, sample_rate: int) -> PcmFrame:
        """From float samples in [-1, 1]; values outside are clipped, not wrapped."""
        arr = np.clip(np.asarray(samples, dtype=np.float64), -1.0, 1.0)
        return cls.from_array(np.round(arr * 32767.0).astype(np.int16), sample_rate)

    @property
    def num_samples(self) -> int:
        """Samples per channel."""
        return len(self.data) // (SAMPLE_WIDTH * self.channels)

    @property
    def duration_ms(self) -> float:
        return 1000.0 * self.num_samples / self.sample_rate

    def samples(self) -> Int16Array:
        """A read-only int16 view: shape (n,) for mono, (n, 2) for stereo."""
        arr = np.frombuffer(self.data, dtype="<i2")
        return arr if self.channels == 1 else arr.reshape(-1, self.channels)

    def to_float32(self) -> npt.NDArray[np.float32]:
        return self.samples().astype(np.float32) / 32768.0

    def split(self) -> tuple[PcmFrame, PcmFrame]:
        """Left and right channels of a stereo frame as two mono frames."""
        left, right = split_stereo(self.data)
        return PcmFrame(left, self.sample_rate), PcmFrame(right, self.sample_rate)


def split_stereo(data: bytes) -> tuple[bytes, bytes]:
    """Interleaved stereo L16 → (left, right) mono L16."""
    if len(data) % (2 * SAMPLE_WIDTH):
        raise InvalidInput(f"stereo L16 needs a multiple of 4 bytes, got {len(data)}")
    arr = np.frombuffer(data, dtype="<i2").reshape(-1, 2)
    return arr[:, 0].tobytes(), arr[:, 1].tobytes()


def interleave(left: bytes, right: bytes, *, pad: bool = False) -> bytes:
    """Two mono L16 streams → interleaved stereo.

    With ``pad`` the shorter side is padded with silence (a recording where the agent spoke
    less than the caller); without it, unequal lengths are an error.
    """
    if len(left) % SAMPLE_WIDTH or len(right) % SAMPLE_WIDTH:
        raise InvalidInput("mono L16 streams must have an even number of bytes")
    a = np.frombuffer(left, dtype="<i2")
    b = np.frombuffer(right, dtype="<i2")
    if len(a) != len(b):
        if not pad:
            raise InvalidInput(f"channel lengths differ: {len(a)} vs {len(b)} samples")
        n = max(len(a), len(b))
        a = np.pad(a, (0, n - len(a)))
        b = np.pad(b, (0, n - len(b)))
    out = np.empty(2 * len(a), dtype="<i2")
    out[0::2] = a
    out[1::2] = b
    return out.tobytes()


class SampleAligner:
    """Cuts an arbitrary byte stream into whole samples, keeping the remainder for next time.

    mod_audio_fork sends binary messages that are a byte stream, not aligned packets; a
    message may end in the middle of a stereo sample.
    """

    def __init__(self, channels: int = 1) -> None:
        self._block = SAMPLE_WIDTH * channels
        self._tail = b""

    def feed(self, data: bytes) -> bytes:
        buf = self._tail + data
        cut = len(buf) - len(buf) % self._block
        self._tail = buf[cut:]
        return buf[:cut]

    @property
    def pending(self) -> int:
        return len(self._tail)
