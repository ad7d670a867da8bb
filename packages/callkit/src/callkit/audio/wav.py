"""WAV files for PCM 16-bit audio: read, write, and a streaming writer for call recordings."""

from __future__ import annotations

import struct
import wave
from pathlib import Path
from types import TracebackType

from callkit.audio.frames import SAMPLE_WIDTH, PcmFrame
from callkit.errors import InvalidInput, UnsupportedFormat


def read_wav(path: str | Path) -> PcmFrame:
    """Read a PCM 16-bit WAV file (mono or stereo)."""
    try:
        with wave.open(str(path), "rb") as w:
            if w.getsampwidth() != SAMPLE_WIDTH:
                raise UnsupportedFormat(
                    f"{path}: expected 16-bit PCM, got {8 * w.getsampwidth()}-bit samples"
                )
            if w.getnchannels() not in (1, 2):
                raise UnsupportedFormat(f"{path}: expected 1 or 2 channels, got {w.getnchannels()}")
            return PcmFrame(w.readframes(w.getnframes()), w.getframerate(), w.getnchannels())
    except (wave.Error, EOFError) as exc:
        raise InvalidInput(f"{path}: not a readable PCM WAV file ({exc})") from None


def write_wav(path: str | Path, frame: PcmFrame) -> None:
    """Write a frame as a PCM 16-bit WAV file, replacing any existing file."""
    with WavWriter(path, frame.sample_rate, frame.channels) as w:
        w.write(frame.data)


class WavWriter:
    """Appends PCM to a WAV file as it arrives; the header is finalised on close.

    Writes go to ``<name>.part`` and the file is renamed into place on close, so a reader
    never sees a recording with a wrong length in its header.
    """

    def __init__(self, path: str | Path, sample_rate: int, channels: int = 1) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._part = self.path.with_name(self.path.name + ".part")
        self._block = SAMPLE_WIDTH * channels
        self._wav = wave.open(str(self._part), "wb")  # noqa: SIM115 (closed in close())
        self._wav.setnchannels(channels)
        self._wav.setsampwidth(SAMPLE_WIDTH)
        self._wav.setframerate(sample_rate)
        self._closed = False
        self.frames_written = 0

    def write(self, pcm: bytes) -> None:
        if len(pcm) % self._block:
            raise InvalidInput(
                f"{len(pcm)} bytes is not a whole number of {self._block}-byte samples"
            )
        self._wav.writeframesraw(pcm)
        self.frames_written += len(pcm) // self._block

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._wav.close()
        self._part.replace(self.path)

    def __enter__(self) -> WavWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def wav_header(sample_rate: int, channels: int = 1, data_bytes: int | None = None) -> bytes:
    """A 44-byte PCM 16-bit WAV header.

    With ``data_bytes=None`` the sizes are set to the maximum, the convention for a WAV streamed
    before its length is known (players read until the stream ends).
    """

    size = 0xFFFFFFFF - 36 if data_bytes is None else data_bytes
    block = channels * SAMPLE_WIDTH
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        min(36 + size, 0xFFFFFFFF),
        b"WAVE",
        b"fmt ",
        16,
        1,
        channels,
        sample_rate,
        sample_rate * block,
        block,
        8 * SAMPLE_WIDTH,
        b"data",
        size,
    )
