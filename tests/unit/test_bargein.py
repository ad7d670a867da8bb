"""The dual-channel barge-in detector, fed frames as the bridge feeds them: the agent yields at
once to the caller's voice, then resumes after a backchannel or stops for an interruption."""

from __future__ import annotations

import numpy as np
import pytest

from fs_bridge.bargein import BargeInConfig, BargeInDetector, rms

AGENT = 3000.0  # the agent's speech level on the played channel
CALLER = 2500.0  # the caller speaking into the phone
QUIET = 30.0  # line noise


def run(
    detector: BargeInDetector,
    frames: list[tuple[float, float]],
    speaking: bool = True,
    prob: float = 1.0,
) -> list[tuple[int, str]]:
    """(frame number, 1-based; decision) for every decision the frames bring. An interruption
    stops the agent, as the bridge does."""
    out = []
    for i, (caller, played) in enumerate(frames, 1):
        decision = detector.feed(detector.judge(caller, played, prob), speaking)
        if decision is not None:
            out.append((i, decision))
        speaking = speaking and decision != "interrupt"
    return out


def test_speech_over_the_agent_yields_at_once_then_stops_it_after_the_minimum_duration() -> None:
    detector = BargeInDetector(BargeInConfig(yield_ms=40, min_span_ms=700))
    frames = [(QUIET, AGENT)] * 10 + [(CALLER, AGENT)] * 60
    # Quiet on the second loud frame (40 ms), stopped for good 700 ms (35 frames) after the onset.
    assert run(detector, frames) == [(12, "yield"), (45, "interrupt")]
    assert detector.last_yield_ms == 40  # the yield latency the call's outcome reports


@pytest.mark.parametrize("ms", [300, 460, 620])
def test_backchannels_yield_then_resume(ms: int) -> None:
    detector = BargeInDetector(BargeInConfig(min_span_ms=700, resume_gap_ms=400))
    frames = [(QUIET, AGENT)] * 10 + [(CALLER, AGENT)] * (ms // 20) + [(QUIET, AGENT)] * 50
    # Resumed once the caller has been quiet 400 ms (20 frames) after their last voiced frame.
    assert run(detector, frames) == [(12, "yield"), (10 + ms // 20 + 20, "resume")]


def test_a_click_shorter_than_the_yield_changes_nothing() -> None:
    detector = BargeInDetector(BargeInConfig(yield_ms=60))
    frames = [(QUIET, AGENT)] * 10 + [(CALLER, AGENT)] * 2 + [(QUIET, AGENT)] * 40
    assert run(detector, frames) == []


def test_a_pause_between_phrases_shorter_than_the_resume_gap_keeps_it_quiet() -> None:
    detector = BargeInDetector(BargeInConfig(min_span_ms=700, resume_gap_ms=400))
    speech = [(CALLER, AGENT)] * 10 + [(QUIET, AGENT)] * 15 + [(CALLER, AGENT)] * 20
    # The span reaches 700 ms during the 300 ms pause, the voice totals 400 ms on frame 35: the
    # interruption is recognized on the first voiced frame after both hold.
    assert run(detector, speech) == [(2, "yield"), (35, "interrupt")]


def test_a_long_pause_resumes_and_the_next_words_yield_again() -> None:
    detector = BargeInDetector(BargeInConfig(min_span_ms=700, resume_gap_ms=400))
    speech = [(CALLER, AGENT)] * 10 + [(QUIET, AGENT)] * 25 + [(CALLER, AGENT)] * 40
    assert run(detector, speech) == [(2, "yield"), (30, "resume"), (37, "yield"), (70, "interrupt")]


def test_scattered_voice_never_adds_up_to_an_interruption_and_is_resumed() -> None:
    detector = BargeInDetector(BargeInConfig(min_voiced_ms=400, max_yield_ms=2000))
    # Voiced one frame in eight: it never totals 400 ms in the window; quiet on the second loud
    # frame, resumed 2 s after the onset.
    speech = [(CALLER if i % 8 == 0 else QUIET, AGENT) for i in range(100)]
    assert run(detector, speech) == [(9, "yield"), (100, "resume")]


def test_echo_of_the_agent_is_not_the_caller() -> None:
    """The line returns the agent's voice 18 dB down and 120 ms late: never even a yield."""
    detector = BargeInDetector(BargeInConfig(min_span_ms=700))
    played = [AGENT if (i // 25) % 2 == 0 else QUIET for i in range(300)]
    echo = [QUIET] * 6 + [p * 10 ** (-18 / 20) + QUIET for p in played[:-6]]
    assert run(detector, list(zip(echo, played, strict=True))) == []


def test_loud_echo_is_still_echo_but_the_caller_over_it_is_heard() -> None:
    detector = BargeInDetector(BargeInConfig(min_span_ms=700, echo_margin=0.45))
    loud_echo = AGENT * 0.3  # a bad hybrid: -10 dB
    assert run(detector, [(loud_echo, AGENT)] * 100) == []
    assert run(detector, [(loud_echo + CALLER, AGENT)] * 40) == [(2, "yield"), (35, "interrupt")]


def test_what_the_speech_detector_calls_no_speech_never_stops_the_agent() -> None:
    """A loud noise (a door, a line click train) the VAD does not take for speech: the agent
    goes quiet for it, as for anything loud, and resumes; only speech stops it."""
    detector = BargeInDetector(BargeInConfig(max_yield_ms=2000))
    assert run(detector, [(CALLER, AGENT)] * 100, prob=0.1) == [(2, "yield"), (100, "resume")]
    assert run(detector, [(CALLER, AGENT)] * 40, prob=0.9) == [(2, "yield"), (35, "interrupt")]


def test_speech_while_the_agent_is_silent_is_a_turn_not_an_interruption() -> None:
    detector = BargeInDetector()
    assert run(detector, [(CALLER, QUIET)] * 100, speaking=False) == []


def test_speech_that_began_before_the_agent_counts_from_its_onset() -> None:
    detector = BargeInDetector(BargeInConfig(min_span_ms=700))
    for _ in range(40):  # the caller talks 800 ms before the reply starts
        assert detector.feed(detector.judge(CALLER, QUIET), agent_speaking=False) is None
    # The reply's first frame: their speech already lasted 700 ms: stopped at once.
    assert detector.feed(detector.judge(CALLER, AGENT), agent_speaking=True) == "interrupt"


def test_a_turn_that_ends_while_yielded_is_nothing_to_resume() -> None:
    detector = BargeInDetector()
    assert run(detector, [(CALLER, AGENT)] * 5) == [(2, "yield")]
    assert run(detector, [(QUIET, QUIET)] * 40, speaking=False) == []
    assert not detector.yielded


def test_the_onset_is_where_the_speech_began() -> None:
    detector = BargeInDetector()
    run(detector, [(QUIET, AGENT)] * 7 + [(CALLER, AGENT)] * 5)
    assert detector.onset_ms == 8 * 20
    assert detector.yield_onset_ms == 8 * 20


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
