"""Sample-rate conversion with libsoxr (VHQ/HQ polyphase filters), whole-buffer and streaming."""

from __future__ import annotations

from typing import Literal

import numpy as np
import soxr

from callkit.errors import InvalidInput, UnsupportedFormat

Quality = Literal["VHQ", "HQ", "MQ", "LQ", "QQ"]
_MAX_RATE_HZ = 384_000


def _check_rates(from_hz: int, to_hz: int) -> None:
    for rate in (from_hz, to_hz):
        if not 1000 <= rate <= _MAX_RATE_HZ:
            raise UnsupportedFormat(f"sample rate must be 1000..{_MAX_RATE_HZ} Hz, got {rate}")


def resample(
    pcm: bytes, from_hz: int, to_hz: int, *, channels: int = 1, quality: Quality = "HQ"
) -> bytes:
    """Resample a whole L16LE buffer. Use :class:`StreamResampler` for audio that arrives in chunks."""
    _check_rates(from_hz, to_hz)
    if len(pcm) % (2 * channels):
        raise InvalidInput(
            f"L16 buffer of {len(pcm)} bytes does not hold whole {channels}-channel samples"
        )
    if from_hz == to_hz or not pcm:
        return pcm
    x = np.frombuffer(pcm, dtype="<i2").reshape(-1, channels)
    y = soxr.resample(x, from_hz, to_hz, quality=quality)
    return np.asarray(y, dtype="<i2").tobytes()


class StreamResampler:
    """Resamples a stream chunk by chunk with filter state carried across chunks.

    Chunk boundaries leave no clicks: the output equals resampling the concatenated input,
    apart from the filter delay that :meth:`flush` releases at the end of the stream.
    """

    def __init__(
        self, from_hz: int, to_hz: int, *, channels: int = 1, quality: Quality = "HQ"
    ) -> None:
        _check_rates(from_hz, to_hz)
        self.from_hz = from_hz
        self.to_hz = to_hz
        self.channels = channels
        self._passthrough = from_hz == to_hz
        self._stream = (
            None
            if self._passthrough
            else soxr.ResampleStream(from_hz, to_hz, channels, dtype="int16", quality=quality)
        )
        self._tail = b""
        self._block = 2 * channels

    def process(self, pcm: bytes) -> bytes:
        """Feed any number of bytes; a trailing partial sample is kept for the next call."""
        buf = self._tail + pcm
        cut = len(buf) - len(buf) % self._block
        self._tail = buf[cut:]
        if self._passthrough or self._stream is None:
            return buf[:cut]
        x = np.frombuffer(buf[:cut], dtype="<i2").reshape(-1, self.channels)
        return np.asarray(self._stream.resample_chunk(x, last=False), dtype="<i2").tobytes()

    def flush(self) -> bytes:
        """End of stream: release the samples still inside the filter."""
        if self._passthrough or self._stream is None:
            return b""
        empty = np.zeros((0, self.channels), dtype=np.int16)
        out = np.asarray(self._stream.resample_chunk(empty, last=True), dtype="<i2").tobytes()
        self._stream.clear()
        return out
