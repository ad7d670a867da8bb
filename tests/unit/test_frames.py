"""PCM frames, stereo split/interleave and byte-stream alignment."""

from __future__ import annotations

import numpy as np
import pytest

from callkit.audio import PcmFrame, SampleAligner, interleave, split_stereo
from callkit.errors import InvalidInput, UnsupportedFormat


def test_split_and_interleave_are_inverse() -> None:
    left = np.arange(0, 100, dtype="<i2").tobytes()
    right = np.arange(-100, 0, dtype="<i2").tobytes()
    stereo = interleave(left, right)
    assert np.frombuffer(stereo, "<i2")[:4].tolist() == [0, -100, 1, -99]
    assert split_stereo(stereo) == (left, right)


def test_interleave_pads_the_shorter_channel_only_when_asked() -> None:
    with pytest.raises(InvalidInput, match="channel lengths differ"):
        interleave(b"\x01\x00" * 3, b"\x01\x00")
    out = np.frombuffer(interleave(b"\x01\x00" * 3, b"\x02\x00", pad=True), "<i2")
    assert out.tolist() == [1, 2, 1, 0, 1, 0]


def test_frame_knows_its_duration_and_channels() -> None:
    frame = PcmFrame(bytes(640), 16000)  # 20 ms of mono 16 kHz
    assert frame.num_samples == 320
    assert frame.duration_ms == 20.0
    left, right = PcmFrame(bytes(1280), 16000, 2).split()
    assert left.duration_ms == right.duration_ms == 20.0


@pytest.mark.parametrize(
    ("data", "rate", "channels", "error", "message"),
    [
        (bytes(3), 16000, 1, InvalidInput, "not a whole number of 16-bit mono samples"),
        (bytes(6), 16000, 2, InvalidInput, "stereo"),
        (bytes(4), 0, 1, UnsupportedFormat, "sample rate"),
        (bytes(6), 16000, 3, UnsupportedFormat, "1 or 2 channels"),
    ],
)
def test_malformed_frames_are_rejected(data, rate, channels, error, message) -> None:
    with pytest.raises(error, match=message):
        PcmFrame(data, rate, channels)


def test_float_conversion_clips_instead_of_wrapping() -> None:
    frame = PcmFrame.from_float([0.0, 0.5, 1.5, -2.0], 8000)
    assert frame.samples().tolist() == [0, 16384, 32767, -32767]


def test_aligner_reassembles_samples_split_across_messages() -> None:
    stereo = np.arange(12, dtype="<i2").tobytes()  # 6 stereo samples, 4 bytes each
    aligner = SampleAligner(channels=2)
    out = aligner.feed(stereo[:5]) + aligner.feed(stereo[5:11]) + aligner.feed(stereo[11:])
    assert out == stereo
    assert aligner.pending == 0
    assert aligner.feed(b"\x01\x02\x03") == b""
    assert aligner.pending == 3
