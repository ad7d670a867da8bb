"""The endpointer with a turn model: it asks once per trailing silence, and the verdict sets the
end silence (complete: short, unsure: the default, incomplete: long). Pure tables, no model."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from test_asr_core import ScriptedVad

from asr_gateway.endpointing import (
    AskTurn,
    EndpointConfig,
    Endpointer,
    SpeechEnded,
    SpeechStarted,
    Verdict,
)
from asr_gateway.session import JudgeTurn, SessionConfig, Transcribe, TranscriptionSession

FRAME = 32
CONFIG = EndpointConfig(
    min_speech_ms=96,
    end_silence_ms=512,
    complete_silence_ms=224,
    incomplete_silence_ms=1504,
    complete_above=0.5,
    incomplete_below=0.15,
)


def drive(
    script: str, answers: dict[int, float], *, ask_ms: int | None = 96
) -> list[tuple[str, int]]:
    """One frame per character (S speech, . silence); ``answers`` maps a frame index to the
    turn model's probability, handed in after that frame (for the last question asked)."""
    ep = Endpointer(CONFIG)
    ep.turn_ask_ms = ask_ms
    out: list[tuple[str, int]] = []
    asked: AskTurn | None = None
    for i, c in enumerate(script):
        for e in ep.feed(0.9 if c == "S" else 0.0, i * FRAME, FRAME):
            if isinstance(e, AskTurn):
                asked = e
                out.append(("ask", e.t_ms - e.silence_start_ms))
            elif isinstance(e, SpeechStarted):
                out.append(("start", e.t_ms))
            else:
                out.append(("end", e.t_ms))
        if i in answers and asked is not None:
            now = (i + 1) * FRAME
            verdict, events = ep.turn_verdict(asked.silence_start_ms, answers[i], now)
            out.append(("verdict", -1 if verdict is None else list(Verdict).index(verdict)))
            out += [("end", e.t_ms) for e in events if isinstance(e, SpeechEnded)]
    return out


def ends_after(script: str, answers: dict[int, float], **kw: Any) -> list[int]:
    """Trailing silence (ms) at which each utterance ended, from the frame that ended it."""
    events = drive(script, answers, **kw)
    return [e[1] for e in events if e[0] == "end"]


SPEECH = "S" * 10  # speech 0-320 ms; its trailing silence starts at 320


@pytest.mark.parametrize(
    ("probability", "end_frames"),
    [
        # Asked at 96 ms of silence (frame 12); answered then. Complete: the end waits for the
        # short silence (224 ms, 7 frames) and no longer.
        (0.97, 7),
        # Unsure: the default 512 ms.
        (0.3, 16),
        # Incomplete: held to the long silence.
        (0.02, 47),
        # At the boundaries: complete_above counts as complete, incomplete_below does not count
        # as incomplete.
        (0.5, 7),
        (0.15, 16),
    ],
)
def test_the_verdict_sets_the_end_silence(probability: float, end_frames: int) -> None:
    script = SPEECH + "." * 60
    events = drive(script, {12: probability})
    assert events[:2] == [("start", 0), ("ask", 96)]
    ended = [i for i, e in enumerate(events) if e[0] == "end"]
    assert len(ended) == 1
    # Replay frame by frame: the utterance is still open one frame before its end silence.
    assert ends_after(SPEECH + "." * (end_frames - 1), {12: probability}) == []
    assert ends_after(SPEECH + "." * (end_frames + 1), {12: probability}) == [320]


def test_a_verdict_that_comes_after_the_short_silence_ends_the_utterance_at_once() -> None:
    # Answered at frame 18 (256 ms of silence, past the 224 ms a complete turn needs).
    events = drive(SPEECH + "." * 20, {17: 0.95})
    assert events[-2:] == [("verdict", 0), ("end", 320)]


def test_a_verdict_on_its_way_holds_the_end_until_an_incomplete_turns_silence() -> None:
    # Asked and not yet answered (the model is slow under load): the default end silence does
    # not cut the caller off; the end waits for the verdict, up to an incomplete turn's 1504 ms.
    assert ends_after(SPEECH + "." * 17, {}) == []
    assert ends_after(SPEECH + "." * 46, {}) == []
    assert ends_after(SPEECH + "." * 48, {}) == [320]
    # No turn model at all: never asked, same end as before it existed.
    assert not any(e[0] == "ask" for e in drive(SPEECH + "." * 20, {}, ask_ms=None))
    assert ends_after(SPEECH + "." * 17, {}, ask_ms=None) == [320]


def test_no_verdict_coming_ends_the_silence_at_the_default() -> None:
    """The model failed, or the question was skipped: the default end silence, then as now."""
    ep = Endpointer(CONFIG)
    ep.turn_ask_ms = 96
    for i in range(10):
        ep.feed(0.9, i * FRAME, FRAME)
    for i in range(10, 14):
        ep.feed(0.0, i * FRAME, FRAME)  # the question went out at frame 12
    assert ep.no_verdict(320, 14 * FRAME) == (Verdict.UNSURE, [])  # 128 ms: not yet
    ends = [e for i in range(14, 30) for e in ep.feed(0.0, i * FRAME, FRAME)]
    assert [e.t_ms for e in ends if isinstance(e, SpeechEnded)] == [320]
    # Told only once the default silence has already run: it ends at once.
    ep = Endpointer(CONFIG)
    ep.turn_ask_ms = 96
    for i in range(10):
        ep.feed(0.9, i * FRAME, FRAME)
    for i in range(10, 30):
        ep.feed(0.0, i * FRAME, FRAME)
    verdict, events = ep.no_verdict(320, 30 * FRAME)
    assert verdict is Verdict.UNSURE
    assert [e.t_ms for e in events if isinstance(e, SpeechEnded)] == [320]


def test_it_asks_once_per_trailing_silence_and_again_after_speech_resumes() -> None:
    script = SPEECH + "." * 5 + "S" * 5 + "." * 20
    events = drive(script, {})
    assert [e for e in events if e[0] == "ask"] == [("ask", 96), ("ask", 96)]
    # A pause shorter than the question point costs no question.
    assert not any(e[0] == "ask" for e in drive(SPEECH + ".." + SPEECH + "." * 2, {}))


def test_speech_that_resumes_drops_the_verdict_and_the_next_silence_starts_afresh() -> None:
    # Incomplete at the first pause; the caller goes on; the new silence is asked about afresh
    # and, unanswered, held to an incomplete turn's silence (the first verdict no longer counts).
    script = SPEECH + "." * 6 + "S" * 6 + "." * 48
    events = drive(script, {12: 0.01})
    assert ("verdict", 2) in events
    assert ends_after(script, {12: 0.01}) == [(10 + 6 + 6) * FRAME]


def test_a_verdict_about_a_silence_that_is_over_changes_nothing() -> None:
    ep = Endpointer(CONFIG)
    ep.turn_ask_ms = 96
    for i in range(10):
        ep.feed(0.9, i * FRAME, FRAME)
    for i in range(10, 14):
        ep.feed(0.0, i * FRAME, FRAME)
    ep.feed(0.9, 14 * FRAME, FRAME)  # speech resumed before the answer came
    assert ep.turn_verdict(320, 0.99, 15 * FRAME) == (None, [])
    assert ep.trailing_silence is False


@pytest.mark.parametrize(
    ("end_silence_ms", "complete", "unsure", "incomplete"),
    [
        (512, 224, 512, 1504),
        # A client's own short end silence: a complete turn never waits longer than it, and an
        # incomplete one never ends sooner.
        (160, 160, 160, 1504),
        # A long one: the incomplete hold is never shorter than it.
        (2000, 224, 2000, 2000),
    ],
)
def test_end_silence_by_verdict_stays_ordered(
    end_silence_ms: int, complete: int, unsure: int, incomplete: int
) -> None:
    config = EndpointConfig(
        end_silence_ms=end_silence_ms, complete_silence_ms=224, incomplete_silence_ms=1504
    )
    assert config.silence_for(Verdict.COMPLETE) == complete
    assert config.silence_for(Verdict.UNSURE) == config.silence_for(None) == unsure
    assert config.silence_for(Verdict.INCOMPLETE) == incomplete


def test_expected_silence_is_a_complete_turns_until_the_verdict_says_otherwise() -> None:
    ep = Endpointer(CONFIG)
    assert ep.expected_silence_ms == 512  # no turn model
    ep.turn_ask_ms = 96
    assert ep.expected_silence_ms == 224
    for i in range(10):
        ep.feed(0.9, i * FRAME, FRAME)
    for i in range(10, 13):
        ep.feed(0.0, i * FRAME, FRAME)
    ep.turn_verdict(320, 0.02, 13 * FRAME)
    assert ep.verdict is Verdict.INCOMPLETE
    assert ep.expected_silence_ms == 1504


# ---------------------------------------------------------------- the session around it


def session_for(script: str) -> TranscriptionSession:
    session = TranscriptionSession(
        "s",
        SessionConfig(partials=False, endpoint=CONFIG),
        ScriptedVad(script),  # type: ignore[arg-type]
    )
    session.turn_ask_ms = 96
    session.early_final_after_ms = 96  # what the edge sets with a turn model and a slow final
    return session


def test_the_session_asks_with_the_utterances_audio_and_a_complete_verdict_uses_the_early_final() -> (
    None
):
    script = "." * 20 + SPEECH + "." * 30  # speech 640-960 ms
    session = session_for(script)
    tone = np.full(512, 1000, np.int16)
    actions: list[Any] = []
    for i in range(33):  # through the frame that reaches 96 ms of silence
        actions += session.feed(tone if script[i] == "S" else np.zeros(512, np.int16), now=i)
    (ask,) = [a for a in actions if isinstance(a, JudgeTurn)]
    assert ask.key == (1, 960)
    assert ask.silence_ms == 96
    # The question holds the pre-roll, the speech and the silence so far, nothing later.
    assert len(ask.audio) == (400 + 320 + 96) * 16
    assert np.count_nonzero(ask.audio) == 320 * 16
    (early,) = [a for a in actions if isinstance(a, Transcribe)]
    assert early.speculative
    assert early.early == (1, 960)
    outcome = session.on_turn(ask.key, 0.9)
    assert outcome.verdict is Verdict.COMPLETE
    assert outcome.actions == []
    more: list[Any] = []
    for i in range(33, 40):
        more += session.feed(np.zeros(512, np.int16), now=i)
    final = next(a for a in more if isinstance(a, Transcribe))
    assert final.early == early.early
    assert not final.speculative
    assert final.decided_ms is not None
    assert final.decided_ms - final.end_ms == 224


def test_a_late_verdict_ends_the_utterance_from_on_turn() -> None:
    script = SPEECH + "." * 30
    session = session_for(script)
    session.early_final_after_ms = None
    for i in range(18):  # 256 ms of silence, past a complete turn's 224 ms
        session.feed(np.full(512, 1000 if i < 10 else 0, np.int16), now=i)
    outcome = session.on_turn((1, 320), 0.95)
    kinds = [type(a).__name__ for a in outcome.actions]
    assert kinds == ["Emit", "Transcribe"]
    assert outcome.actions[0].event.type == "vad.speech_end"  # type: ignore[union-attr]
    assert session.on_turn((1, 320), 0.95).verdict is None  # that silence is over now
