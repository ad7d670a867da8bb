"""The dual-channel barge-in detector, fed frames as the bridge feeds them."""

from __future__ import annotations

import numpy as np
import pytest

from fs_bridge.bargein import BargeInConfig, BargeInDetector, rms

AGENT = 3000.0  # the agent's speech level on the played channel
CALLER = 2500.0  # the caller speaking into the phone
QUIET = 30.0  # line noise


def run(
    detector: BargeInDetector, frames: list[tuple[float, float]], speaking: bool = True
) -> list[int]:
    """Frame numbers (1-based) on which an interruption was recognized."""
    return [i for i, (c, p) in enumerate(frames, 1) if detector.feed(c, p, speaking)]


def test_speech_over_the_agent_stops_it_after_the_minimum_duration() -> None:
    detector = BargeInDetector(BargeInConfig(min_span_ms=700))
    frames = [(QUIET, AGENT)] * 10 + [(CALLER, AGENT)] * 60
    assert run(detector, frames) == [10 + 35]  # 700 ms = 35 frames after the onset
    assert detector.last_interruption_ms == 700  # the stop latency the call's outcome reports


@pytest.mark.parametrize("ms", [300, 460, 620])
def test_backchannels_do_not_stop_the_agent(ms: int) -> None:
    detector = BargeInDetector(BargeInConfig(min_span_ms=700))
    frames = [(QUIET, AGENT)] * 10 + [(CALLER, AGENT)] * (ms // 20) + [(QUIET, AGENT)] * 50
    assert run(detector, frames) == []


def test_pauses_between_phrases_do_not_reset_it() -> None:
    detector = BargeInDetector(BargeInConfig(min_span_ms=700, max_gap_ms=400))
    speech = [(CALLER, AGENT)] * 10 + [(QUIET, AGENT)] * 15 + [(CALLER, AGENT)] * 20
    # The span reaches 700 ms during the pause, the voice totals 400 ms on frame 35: the
    # interruption is recognized on the first voiced frame after both hold.
    assert run(detector, speech) == [35]
    assert detector.last_interruption_ms == 35 * 20  # from the onset, pause included


def test_a_long_pause_starts_over() -> None:
    detector = BargeInDetector(BargeInConfig(min_span_ms=700, max_gap_ms=400))
    speech = [(CALLER, AGENT)] * 25 + [(QUIET, AGENT)] * 25 + [(CALLER, AGENT)] * 25
    assert run(detector, speech) == []


def test_a_quiet_voice_is_not_enough() -> None:
    detector = BargeInDetector(BargeInConfig(min_span_ms=700, min_voiced_ms=400))
    # Voiced one frame in four over a whole second: 260 ms of voice, not an interruption.
    speech = [(CALLER if i % 4 == 0 else QUIET, AGENT) for i in range(52)]
    assert run(detector, speech) == []


def test_echo_of_the_agent_is_not_the_caller() -> None:
    """The line returns the agent's voice 18 dB down and 120 ms late: never an interruption."""
    detector = BargeInDetector(BargeInConfig(min_span_ms=700))
    played = [AGENT if (i // 25) % 2 == 0 else QUIET for i in range(300)]
    echo = [QUIET] * 6 + [p * 10 ** (-18 / 20) + QUIET for p in played[:-6]]
    assert run(detector, list(zip(echo, played, strict=True))) == []


def test_loud_echo_is_still_echo_but_the_caller_over_it_is_heard() -> None:
    detector = BargeInDetector(BargeInConfig(min_span_ms=700, echo_margin=0.45))
    loud_echo = AGENT * 0.3  # a bad hybrid: -10 dB
    assert run(detector, [(loud_echo, AGENT)] * 100) == []
    assert run(detector, [(loud_echo + CALLER, AGENT)] * 40) == [35]


def test_speech_while_the_agent_is_silent_is_a_turn_not_an_interruption() -> None:
    detector = BargeInDetector()
    assert run(detector, [(CALLER, QUIET)] * 100, speaking=False) == []


def test_the_onset_is_where_the_speech_began() -> None:
    detector = BargeInDetector()
    run(detector, [(QUIET, AGENT)] * 7 + [(CALLER, AGENT)] * 5)
    assert detector.onset_ms == 8 * 20


def test_rms_of_pcm() -> None:
    tone = (np.sin(np.arange(320) * 2 * np.pi / 32) * 1000).astype("<i2").tobytes()
    assert rms(tone) == pytest.approx(1000 / np.sqrt(2), rel=0.01)
    assert rms(b"") == 0.0


def test_heard_text_keeps_played_sentences_and_the_words_of_the_cut_one() -> None:
    from fs_bridge.session import Spoken, heard_text

    turn = [
        Spoken("From what you describe, I would recommend an MRI.", "s1", 3000, 0, played=True),
        Spoken("An MRI of the knee costs $450.", "s2", 2000, 3000),
        Spoken("Would you like to book it?", "s3", 1500),
    ]
    assert heard_text(turn, 3000) == "From what you describe, I would recommend an MRI."
    # Half of the price sentence had played: three of its seven words.
    assert heard_text(turn, 4000) == ("From what you describe, I would recommend an MRI. An MRI of")
    assert heard_text([], 1000) == ""
