"""The turn model's input: Whisper log-mel features of the utterance's last 8 s, padded at the start."""

from __future__ import annotations

import numpy as np

from asr_gateway.turn import features


def tone(seconds: float, hz: float = 440.0) -> np.ndarray:
    t = np.arange(int(16000 * seconds)) / 16000
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def loud_frames(mel: np.ndarray) -> np.ndarray:
    """Frames (10 ms each) well above the features' floor."""
    return np.nonzero(mel.max(axis=0) > mel.min() + 0.5)[0]


def test_a_short_utterance_is_padded_with_silence_at_the_start() -> None:
    mel = features(tone(2.0))
    assert mel.shape == (80, 800)
    assert mel.dtype == np.float32
    frames = loud_frames(mel)
    # The 2 s of sound fill the last 200 frames; the 6 s before them are padding.
    assert 595 <= frames[0] <= 605
    assert frames[-1] == 799


def test_a_long_utterance_keeps_its_last_8_seconds() -> None:
    # 4 s of a low tone then 6 s of a high one: only the last 2 s of the low one remain.
    audio = np.concatenate([tone(4.0, 300.0), tone(6.0, 3000.0)])
    mel = features(audio)
    assert mel.shape == (80, 800)
    low, high = mel[:20].max(axis=0), mel[40:].max(axis=0)  # the loudest bin of each band
    assert low[:190].min() > low[210:].max() + 0.3
    assert high[210:].min() > high[:190].max() + 0.3


def test_loudness_does_not_change_the_features() -> None:
    # The waveform is normalized first: a quiet line and a loud one read the same.
    audio = tone(3.0)
    assert np.allclose(features(audio), features(audio * 0.05), atol=1e-3)
