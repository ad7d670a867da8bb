"""The resampler keeps a tone's frequency and level, removes aliases, and streams seamlessly."""

from __future__ import annotations

import numpy as np
import pytest

from callkit.audio import StreamResampler, resample
from callkit.errors import InvalidInput, UnsupportedFormat


def tone(freq_hz: float, rate_hz: int, seconds: float = 1.0, amplitude: float = 0.5) -> bytes:
    t = np.arange(int(rate_hz * seconds)) / rate_hz
    return (amplitude * 32767 * np.sin(2 * np.pi * freq_hz * t)).astype("<i2").tobytes()


def analyse(pcm: bytes, rate_hz: int) -> tuple[float, float]:
    """(dominant frequency in Hz, RMS in dBFS) of the middle of the signal."""
    x = np.frombuffer(pcm, "<i2").astype(float) / 32768
    x = x[len(x) // 8 : -len(x) // 8]  # skip filter edges
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    peak = float(np.fft.rfftfreq(len(x), 1 / rate_hz)[np.argmax(spectrum)])
    rms_db = float(20 * np.log10(np.sqrt(np.mean(x**2))))
    return peak, rms_db


@pytest.mark.parametrize(
    ("src", "dst", "freq"),
    [
        (16000, 8000, 1000),
        (8000, 16000, 1000),
        (22050, 16000, 440),
        (22050, 8000, 3000),
        (48000, 16000, 2500),
    ],
)
def test_tone_keeps_frequency_and_level(src: int, dst: int, freq: float) -> None:
    pcm = tone(freq, src)
    out = resample(pcm, src, dst)
    assert len(out) // 2 == pytest.approx(dst, abs=2)  # one second in, one second out
    _, in_db = analyse(pcm, src)
    out_freq, out_db = analyse(out, dst)
    assert out_freq == pytest.approx(freq, abs=2.0)
    assert out_db == pytest.approx(in_db, abs=0.1)


def test_content_above_the_new_nyquist_is_filtered_not_aliased() -> None:
    # A 5 kHz tone cannot exist at 8 kHz; a naive decimator would fold it to 3 kHz.
    out = resample(tone(5000, 16000), 16000, 8000)
    _, level_db = analyse(out, 8000)
    assert level_db < -60


def test_streaming_in_odd_chunks_equals_whole_buffer() -> None:
    pcm = tone(700, 22050, 0.5)
    whole = np.frombuffer(resample(pcm, 22050, 16000), "<i2").astype(int)
    stream = StreamResampler(22050, 16000)
    pieces = [
        stream.process(pcm[i : i + 333]) for i in range(0, len(pcm), 333)
    ]  # splits samples too
    streamed = np.frombuffer(b"".join(pieces) + stream.flush(), "<i2").astype(int)
    assert len(streamed) == pytest.approx(len(whole), abs=2)
    n = min(len(whole), len(streamed))
    assert np.max(np.abs(whole[:n] - streamed[:n])) <= 2


def test_stereo_channels_stay_separate() -> None:
    left = np.frombuffer(tone(500, 16000), "<i2")
    right = np.frombuffer(tone(1500, 16000), "<i2")
    stereo = np.column_stack([left, right]).astype("<i2").tobytes()
    out = np.frombuffer(resample(stereo, 16000, 8000, channels=2), "<i2").reshape(-1, 2)
    assert analyse(out[:, 0].copy().tobytes(), 8000)[0] == pytest.approx(500, abs=2)
    assert analyse(out[:, 1].copy().tobytes(), 8000)[0] == pytest.approx(1500, abs=2)


def test_same_rate_is_passthrough() -> None:
    pcm = tone(440, 16000, 0.1)
    assert resample(pcm, 16000, 16000) == pcm


def test_bad_input_is_rejected_clearly() -> None:
    with pytest.raises(UnsupportedFormat, match="sample rate"):
        resample(b"\x00\x00", 16000, 0)
    with pytest.raises(InvalidInput, match="whole"):
        resample(b"\x00\x00\x00", 16000, 8000)
