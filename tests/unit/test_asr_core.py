"""The ASR gateway's pure core: ring buffer, endpointing, local agreement, post-processing,
which window results to trust."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from asr_gateway.agreement import LocalAgreement
from asr_gateway.endpointing import EndpointConfig, Endpointer, SpeechEnded, SpeechStarted, State
from asr_gateway.engines.whisper import _Decoded, repeats_itself
from asr_gateway.postprocess import (
    Evidence,
    HotwordCorrector,
    format_entities,
    hallucination_reason,
)
from asr_gateway.ring import AudioRing
from asr_gateway.session import Emit, SessionConfig, Transcribe, TranscriptionSession, Withdraw
from callkit.spoken import words_to_number

# ---------------------------------------------------------------- ring buffer


def test_ring_keeps_only_the_newest_samples_by_absolute_index() -> None:
    ring = AudioRing(10)
    ring.append(np.arange(0, 7, dtype=np.int16))
    ring.append(np.arange(7, 15, dtype=np.int16))  # wraps around
    assert (ring.start, ring.end) == (5, 15)
    assert ring.slice(8, 12).tolist() == [8, 9, 10, 11]
    assert ring.slice(0, 7).tolist() == [5, 6]  # what fell out is gone, not zeros
    assert ring.slice(5).tolist() == list(range(5, 15))


def test_ring_memory_does_not_grow_with_the_call() -> None:
    ring = AudioRing(16000 * 22)
    size = ring.nbytes
    for _ in range(2000):  # 2000 × 0.5 s = over 16 minutes
        ring.append(np.ones(8000, dtype=np.int16))
    assert ring.nbytes == size
    assert ring.end == 2000 * 8000


def test_ring_takes_a_block_longer_than_itself() -> None:
    ring = AudioRing(4)
    ring.append(np.arange(10, dtype=np.int16))
    assert ring.slice(0).tolist() == [6, 7, 8, 9]


# ---------------------------------------------------------------- endpointing

FRAME = 32


def run(probs: list[float], config: EndpointConfig | None = None) -> list[tuple[str, int, bool]]:
    ep = Endpointer(
        config or EndpointConfig(min_speech_ms=96, end_silence_ms=320, max_speech_ms=20_000)
    )
    out = []
    for i, p in enumerate(probs):
        for e in ep.feed(p, i * FRAME, FRAME):
            out.append(
                ("start", e.t_ms, False)
                if isinstance(e, SpeechStarted)
                else ("end", e.t_ms, e.forced)
            )
    return out


@pytest.mark.parametrize(
    ("probs", "events"),
    [
        # speech from frame 2 to 7, then 10 frames of silence: start at 64, end where silence began
        ([0, 0] + [0.9] * 6 + [0.1] * 10, [("start", 64, False), ("end", 256, False)]),
        # a 64 ms blip (2 frames) is shorter than min_speech_ms: nothing
        ([0, 0.9, 0.9, 0, 0, 0], []),
        # a short dip inside speech does not end it (hysteresis: 0.4 is above the 0.35 offset)
        ([0.9] * 4 + [0.4] * 3 + [0.9] * 4 + [0] * 11, [("start", 0, False), ("end", 352, False)]),
        # a pause shorter than end_silence_ms keeps one utterance
        ([0.9] * 4 + [0.1] * 5 + [0.9] * 4 + [0] * 11, [("start", 0, False), ("end", 416, False)]),
    ],
)
def test_endpointing_table(probs: list[float], events: list[tuple[str, int, bool]]) -> None:
    assert run(probs) == events


def test_long_speech_gets_a_forced_final_and_goes_on() -> None:
    config = EndpointConfig(min_speech_ms=96, end_silence_ms=320, max_speech_ms=640)
    events = run([0.9] * 30, config)
    assert events[:3] == [("start", 0, False), ("end", 640, True), ("start", 640, False)]


def test_sensitivity_decides_whether_quiet_speech_starts() -> None:
    quiet = [0.45] * 10
    assert run(quiet, EndpointConfig(sensitivity="low", min_speech_ms=96)) == []
    assert run(quiet, EndpointConfig(sensitivity="high", min_speech_ms=96))[0] == (
        "start",
        0,
        False,
    )


def test_long_silence_puts_the_session_on_hold_and_speech_wakes_it() -> None:
    ep = Endpointer(EndpointConfig(min_speech_ms=64, hold_after_ms=1000))
    for i in range(40):
        ep.feed(0.0, i * FRAME, FRAME)
    assert ep.state is State.HOLD
    events = [e for i in range(40, 43) for e in ep.feed(0.9, i * FRAME, FRAME)]
    assert events == [SpeechStarted(40 * FRAME)]
    assert ep.state is State.SPEECH


def test_commit_forces_the_end_only_during_speech() -> None:
    ep = Endpointer(EndpointConfig(min_speech_ms=64))
    assert ep.force_end(0) is None
    for i in range(3):
        ep.feed(0.9, i * FRAME, FRAME)
    assert ep.force_end(100) == SpeechEnded(100, forced=True)


# ---------------------------------------------------------------- local agreement


@pytest.mark.parametrize(
    ("hypotheses", "stable"),
    [
        (["my", "my name", "my name is", "my name is John"], ["", "my", "my name", "my name is"]),
        # a word that changes is not committed until two hypotheses agree on it
        (["I have pain", "I have a pain", "I have a pain in"], ["", "I have", "I have a pain"]),
        # case and punctuation do not break agreement
        (["Hello, my", "hello my name"], ["", "hello my"]),
        # committed words are never taken back, even if a later hypothesis disagrees
        (
            ["book an MRI", "book an MRI scan", "look a Mori scan please"],
            ["", "book an MRI", "book an MRI scan"],
        ),
    ],
)
def test_local_agreement_table(hypotheses: list[str], stable: list[str]) -> None:
    agreement = LocalAgreement()
    got = [agreement.update(h)[0] for h in hypotheses]
    assert got == stable


def test_full_text_always_starts_with_the_stable_prefix() -> None:
    agreement = LocalAgreement()
    for hyp in [
        "it hurts",
        "it hurts when",
        "it hurts when I walk",
        "it hurts when I walk upstairs",
    ]:
        stable, full = agreement.update(hyp)
        assert full.startswith(stable)
    assert full == "it hurts when I walk upstairs"


# ---------------------------------------------------------------- post-processing


@pytest.mark.parametrize(
    ("text", "fixed"),
    [
        ("I want to book at Rooma clinic.", "I want to book at RUMA clinic."),
        ("Is Ruma open today?", "Is RUMA open today?"),
        ("I'd like a room please", "I'd like a room please"),
        ("The roomer on the third floor", "The RUMA on the third floor"),
        ("Doctor Kovalenko said so", "Doctor Kovalenko said so"),
    ],
)
def test_hotword_correction(text: str, fixed: str) -> None:
    assert HotwordCorrector(["RUMA"]).correct(text) == fixed


def test_multi_word_hotword() -> None:
    corrector = HotwordCorrector(["Medi Scan Plus"])
    assert (
        corrector.correct("I called Medi Scan plus yesterday")
        == "I called Medi Scan Plus yesterday"
    )


@pytest.mark.parametrize(
    ("text", "formatted"),
    [
        ("My phone number is 555-123-4,567.", "My phone number is 555-123-4567."),
        ("call me on 555, 123, 45, 67", "call me on 555-123-4567"),
        (
            "ring 555, 125, 3, 4, 567",
            "ring 55512534567",
        ),  # 11 digits, no country code: kept as said
        ("five five five one two three four five six seven", "555-123-4567"),
        ("I am forty two years old", "I am 42 years old"),
        ("I weigh eighty kilograms", "I weigh 80 kg"),
        ("I weigh 80 kilos", "I weigh 80 kg"),
        ("tomorrow at 3pm works", "tomorrow at 3 PM works"),
        ("at 3.30pm please", "at 3:30 PM please"),
        ("at 1015 AM", "at 10:15 AM"),
        ("it costs 120 dollars", "it costs $120"),
        ("it costs eighty five dollars and fifty cents", "it costs $85.50"),
        ("one hundred and twenty dollars", "$120"),
        ("I have two knees", "I have 2 knees"),
    ],
)
def test_entity_formatting(text: str, formatted: str) -> None:
    assert format_entities(text) == formatted


def test_words_to_number() -> None:
    assert words_to_number("one hundred and twenty") == 120
    assert words_to_number("forty-two") == 42
    assert words_to_number("banana") is None


SPEECH = Evidence(no_speech_prob=0.05, avg_logprob=-0.2, compression_ratio=1.3, speech_ratio=0.9)


@pytest.mark.parametrize(
    ("text", "evidence", "reason"),
    [
        ("My knee hurts.", SPEECH, None),
        ("Thank you.", SPEECH, None),  # a caller really says this
        (
            "Thank you for watching!",
            Evidence(0.5, -0.8, 1.2, 0.2),
            "known phantom phrase on weak speech",
        ),
        ("Hello", Evidence(0.7, -1.4, 1.0, 0.9), "recognizer says no speech"),
        ("no no no no no no no no no no no no", Evidence(0.1, -0.3, 3.1, 0.9), "repetitive output"),
        ("Something", Evidence(0.1, -0.3, 1.0, 0.05), "no speech in the audio (VAD)"),
        ("  ...  ", SPEECH, "empty"),
    ],
)
def test_hallucination_guard(text: str, evidence: Evidence, reason: str | None) -> None:
    assert hallucination_reason(text, evidence) == reason


# ---------------------------------------------------------------- fitted encoder windows


@pytest.mark.parametrize(
    ("text", "repeats"),
    [
        ("No. No.", True),
        ("Seven Seven Seven Seven", True),
        ("the pain, the pain started", True),
        ("I am 42 years old I am 42 years old", True),
        ("7 7", True),
        ("Yes, yes.", True),
        ("five five five, one two three four", False),  # a phone number, digit by digit
        ("five five five five, one two", True),
        ("My name is John Smith.", False),
        ("It is what it is.", False),
        ("No.", False),
        ("", False),
    ],
)
def test_repetition_table(text: str, repeats: bool) -> None:
    assert repeats_itself(text) is repeats


def decoded(text: str = "My name is John Smith.", **fields: Any) -> _Decoded:
    values: dict[str, Any] = {
        "text": text,
        "language": "en",
        "segments": [(0.0, 2.0, text)],
        "tokens": 8,
        "avg_logprob": -0.2,
        "no_speech_prob": 0.01,
        "compression_ratio": 1.1,
        "window_s": 15.0,
    }
    return _Decoded(**(values | fields))


@pytest.mark.parametrize(
    ("result", "trusted"),
    [
        (decoded(), True),
        (decoded(compression_ratio=2.9), False),  # Whisper's own "too repetitive"
        (decoded(avg_logprob=-1.4), False),  # Whisper's own "too unlikely"
        (decoded(avg_logprob=-1.4, no_speech_prob=0.9), True),  # silence: nothing to redo
        (decoded(tokens=60), False),  # more tokens than 4 s of speech can hold
        (decoded("No. No."), False),  # a fitted window repeating itself
        (decoded("No. No.", window_s=30.0), True),  # the full window said it: the caller did
        (decoded(tokens=60, window_s=30.0), True),
    ],
)
def test_which_fitted_results_are_decoded_again_over_the_full_window(
    result: _Decoded, trusted: bool
) -> None:
    assert result.trusted(audio_s=4.0) is trusted


def test_silence_from_a_window_is_an_empty_transcription() -> None:
    quiet = decoded("Thank you.", avg_logprob=-1.3, no_speech_prob=0.95).transcription()
    assert (quiet.text, quiet.segments) == ("", ())
    spoken = decoded().transcription()
    assert spoken.text == "My name is John Smith."
    assert [(s.start_s, s.end_s) for s in spoken.segments] == [(0.0, 2.0)]


# ---------------------------------------------------------------- early finals


class ScriptedVad:
    """Speech probabilities by frame, in place of Silero: 1 for speech, 0 for silence."""

    def __init__(self, script: str) -> None:
        self.probs = [1.0 if c == "S" else 0.0 for c in script]

    def feed(self, samples: np.ndarray) -> list[float]:
        n = len(samples) // 512
        out, self.probs = self.probs[:n], self.probs[n:]
        return out


def run_session(script: str, early_after_ms: int | None) -> list[Any]:
    """Feed one 32 ms frame per script character; every action the session asks for."""
    session = TranscriptionSession("s", SessionConfig(partials=False), ScriptedVad(script))  # type: ignore[arg-type]
    session.early_final_after_ms = early_after_ms
    actions: list[Any] = []
    for i in range(len(script)):
        actions += session.feed(np.full(512, 1000, np.int16), now=i * 0.032)
    return actions


def finals(actions: list[Any]) -> list[Transcribe]:
    return [a for a in actions if isinstance(a, Transcribe) and a.kind == "final"]


def test_an_early_final_starts_in_the_end_silence_and_the_endpoint_confirms_it() -> None:
    # 0.64 s of speech, then silence: 7 frames (224 ms) in, the final starts early.
    actions = run_session("S" * 20 + "." * 30, early_after_ms=200)
    early, confirmed = finals(actions)
    assert early.speculative
    assert early.early == (1, 640)
    assert (early.start_ms, early.end_ms) == (0, 640)
    ended = next(a for a in actions if isinstance(a, Emit) and a.event.type == "vad.speech_end")
    assert actions.index(early) < actions.index(ended)  # before the end silence completed
    assert not confirmed.speculative
    assert confirmed.early == early.early  # use the early result, do not transcribe again
    assert not any(isinstance(a, Withdraw) for a in actions)


def test_speech_after_a_pause_withdraws_the_early_final_and_keeps_one_utterance() -> None:
    # A 320 ms pause mid-sentence: long enough to start an early final, too short to end.
    actions = run_session("S" * 20 + "." * 10 + "S" * 20 + "." * 30, early_after_ms=200)
    withdrawn = [a for a in actions if isinstance(a, Withdraw)]
    assert [w.early for w in withdrawn] == [(1, 640)]
    last = finals(actions)[-1]
    assert (last.start_ms, last.end_ms, last.utterance) == (0, 1600, 1)
    assert last.early == (1, 1600)  # the second early final, taken at the real end
    starts = [a for a in actions if isinstance(a, Emit) and a.event.type == "vad.speech_start"]
    assert len(starts) == 1


def test_without_an_early_threshold_the_final_waits_for_the_endpoint() -> None:
    actions = run_session("S" * 20 + "." * 30, early_after_ms=None)
    (final,) = finals(actions)
    assert final.early is None
    assert not final.speculative
