"""WAV files: round trip, format checks, and recordings that appear only when complete."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from callkit.audio import PcmFrame, WavWriter, read_wav, write_wav
from callkit.errors import InvalidInput, UnsupportedFormat


def test_write_then_read_gives_the_same_audio(tmp_path: Path) -> None:
    frame = PcmFrame(np.arange(-800, 800, dtype="<i2").tobytes(), 8000, 2)
    write_wav(tmp_path / "a.wav", frame)
    assert read_wav(tmp_path / "a.wav") == frame


def test_8bit_wav_is_refused_with_the_reason(tmp_path: Path) -> None:
    path = tmp_path / "u8.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(1)
        w.setframerate(8000)
        w.writeframes(bytes(80))
    with pytest.raises(UnsupportedFormat, match="expected 16-bit PCM, got 8-bit"):
        read_wav(path)


def test_garbage_is_not_a_wav(tmp_path: Path) -> None:
    path = tmp_path / "x.wav"
    path.write_bytes(b"this is not audio")
    with pytest.raises(InvalidInput, match="not a readable PCM WAV"):
        read_wav(path)


def test_streaming_writer_publishes_the_file_only_on_close(tmp_path: Path) -> None:
    path = tmp_path / "calls" / "rec.wav"
    writer = WavWriter(path, 16000, channels=2)
    writer.write(bytes(640))
    writer.write(bytes(640))
    assert not path.exists()
    with pytest.raises(InvalidInput):
        writer.write(bytes(3))
    writer.close()
    frame = read_wav(path)
    assert (frame.channels, frame.sample_rate, frame.num_samples) == (2, 16000, 320)
    assert writer.frames_written == 320
