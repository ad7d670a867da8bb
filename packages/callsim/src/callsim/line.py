"""The caller's side of a call, 20 ms at a time: speech, line echo and noise, through the codec.

``CallerLine.frame()`` is what the switch reads from the far end each tick (16 kHz L16): queued
speech mixed with a delayed, attenuated copy of what the agent played (echo, as a hybrid or a
speakerphone returns it) and steady noise, then encoded and decoded by the negotiated codec so
the fork hears what a real line delivers. It also keeps the tick count, the fork's timeline.
"""

from __future__ import annotations

import array
from collections import deque
from dataclasses import dataclass

import numpy as np

from callkit.audio import alaw_decode, alaw_encode, resample, ulaw_decode, ulaw_encode

RATE = 16000
FRAME = RATE // 50  # samples per 20 ms tick
CODECS = ("PCMU", "PCMA", "G722", "L16")


def through_codec(codec: str, pcm16k: bytes) -> bytes:
    """An utterance as it comes out of the codec, back at 16 kHz and time-aligned (the one-shot
    resampler compensates its filter delay, so the timeline stays exact)."""
    if codec not in CODECS:
        raise ValueError(f"codec {codec!r} is not emulated; use {', '.join(CODECS)}")
    if codec == "L16" or not pcm16k:
        return pcm16k
    if codec == "G722":
        return _G722Line().process(pcm16k)
    narrow = resample(pcm16k, RATE, 8000)
    line = ulaw_decode(ulaw_encode(narrow)) if codec == "PCMU" else alaw_decode(alaw_encode(narrow))
    return resample(line, 8000, RATE)[: len(pcm16k)].ljust(len(pcm16k), b"\0")


class _G722Line:
    """G.722 at 64 kbit/s, encoder and decoder state carried across calls."""

    def __init__(self) -> None:
        from G722 import G722

        self._encoder = G722(RATE, 64000)
        self._decoder = G722(RATE, 64000)

    def process(self, pcm: bytes) -> bytes:
        decoded = self._decoder.decode(self._encoder.encode(np.frombuffer(pcm, "<i2")))
        out = decoded.tobytes() if isinstance(decoded, array.array) else bytes(decoded)
        return out[: len(pcm)].ljust(len(pcm), b"\0")


def _companded(codec: str, pcm16k: bytes) -> bytes:
    """Line noise and echo through the codec's quantizer, frame by frame (no resampling, so no
    delay): G.711 companding, or G.722's own coder."""
    if codec == "PCMU":
        return ulaw_decode(ulaw_encode(pcm16k))
    if codec == "PCMA":
        return alaw_decode(alaw_encode(pcm16k))
    return pcm16k


@dataclass
class LineOptions:
    echo_delay_ms: int = 0  # 0: no echo
    echo_gain_db: float = -24.0
    noise_dbfs: float | None = None  # steady white noise level, None for a clean line
    seed: int = 1


class CallerLine:
    def __init__(self, codec: str, options: LineOptions | None = None) -> None:
        if codec not in CODECS:
            raise ValueError(f"codec {codec!r} is not emulated; use {', '.join(CODECS)}")
        self.codec = codec
        self._g722 = _G722Line() if codec == "G722" else None
        self.options = options or LineOptions()
        self.tick = 0  # 20 ms frames produced so far: the fork's timeline
        self._speech = bytearray()
        delay = self.options.echo_delay_ms // 20
        self._echo: deque[bytes] = deque([bytes(FRAME * 2)] * delay, maxlen=max(delay, 1))
        self._rng = np.random.default_rng(self.options.seed)

    @property
    def speaking(self) -> bool:
        return bool(self._speech)

    def queue(self, pcm16k: bytes) -> tuple[int, bytes]:
        """Queue speech: the tick it starts at on the timeline, and the audio as the line
        carries it (after the codec), frame-aligned from that tick."""
        step = FRAME * 2
        pending = len(self._speech)
        if pending % step:  # start the utterance on a frame boundary
            self._speech += bytes(step - pending % step)
        start = self.tick + len(self._speech) // step
        coded = through_codec(self.codec, pcm16k)
        self._speech += coded
        return start, coded

    def cancel_speech(self) -> None:
        self._speech.clear()

    def frame(self, played: bytes | None = None) -> bytes:
        """The next 20 ms the far end sends (16 kHz L16). ``played`` is what the agent's side
        played in the previous tick (the echo source)."""
        need = FRAME * 2
        chunk = bytes(self._speech[:need]).ljust(need, b"\0")
        del self._speech[:need]
        self.tick += 1
        line = np.zeros(FRAME, np.float32)
        if self.options.echo_delay_ms > 0:
            self._echo.append(played if played is not None and len(played) == need else bytes(need))
            if len(self._echo) == self._echo.maxlen:
                echo = np.frombuffer(self._echo[0], "<i2").astype(np.float32)
                line += echo * 10 ** (self.options.echo_gain_db / 20)
        if self.options.noise_dbfs is not None:
            line += self._rng.normal(0, 32767 * 10 ** (self.options.noise_dbfs / 20), FRAME)
        if self._g722 is None and not line.any():
            return chunk
        extra = np.clip(line, -32768, 32767).astype("<i2").tobytes()
        extra = (
            self._g722.process(extra) if self._g722 is not None else _companded(self.codec, extra)
        )
        mixed = np.frombuffer(chunk, "<i2").astype(np.int32) + np.frombuffer(extra, "<i2")
        out: bytes = np.clip(mixed, -32768, 32767).astype("<i2").tobytes()
        return out
