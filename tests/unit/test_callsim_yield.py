"""What the caller hears when it talks over the agent, measured from the played channel: when the
agent yields, whether it takes its sentence up again, and how much of it is lost or repeated;
and whether the agent cuts in while the caller pauses mid-sentence."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from callsim.caller import ScriptedCaller, Utterance, _pauses
from callsim.cli import _suite_summary
from callsim.played import FRAME_BYTES, RATE, PlayedChannel, cut_in, locate, measure
from callsim.run import summary_lines
from callsim.script import CallScript, Step
from callsim.switch import Channel, Playback, Switch

MS = RATE // 1000 * 2  # bytes per millisecond of 16 kHz L16


def speech(seconds: float, seed: int = 1, level: float = 4000.0) -> bytes:
    """Stand-in for the agent's voice: noise in 'words' with an uneven envelope, never periodic,
    so no stretch of it matches another."""
    rng = np.random.default_rng(seed)
    n = int(RATE * seconds)
    envelope = 0.6 + 0.4 * np.abs(np.sin(np.arange(n) / RATE * 2 * np.pi * 2.3))
    return (rng.normal(0, level, n) * envelope).clip(-32768, 32767).astype("<i2").tobytes()


class Played:
    """Builds a played channel frame by frame, as the switch would play it."""

    def __init__(self) -> None:
        self.channel = PlayedChannel()
        self.channel.keep(0, 10_000)

    @property
    def frame(self) -> int:
        return len(self.channel.levels)

    def play(self, pcm: bytes) -> None:
        for i in range(0, len(pcm), FRAME_BYTES):
            self.channel.add(self.frame, pcm[i : i + FRAME_BYTES].ljust(FRAME_BYTES, b"\0"))

    def silence(self, ms: int) -> None:
        for _ in range(ms // 20):
            self.channel.add(self.frame, None)

    def discard(self, pcm: bytes) -> None:
        self.channel.discarded(pcm)


SENTENCE = speech(4.0)


def interrupted(at_ms: int) -> tuple[Played, int]:
    """The agent's sentence played up to ``at_ms``, then stopped (the rest thrown away)."""
    played = Played()
    played.play(SENTENCE[: at_ms * MS])
    stop = played.frame
    played.discard(SENTENCE[at_ms * MS :])
    return played, stop


def test_a_backchannel_the_agent_yields_to_and_resumes_from_the_cut_word() -> None:
    played, stop = interrupted(1500)
    onset = stop - 7  # the caller began 140 ms before the agent went quiet
    end = onset + 25  # "uh-huh", 500 ms
    played.silence(800)
    resume = played.frame
    played.play(SENTENCE[1300 * MS :])  # backed up 200 ms, to the start of the cut word
    found = measure(played.channel, onset, end, None)
    assert found.yielded is not None
    assert found.yielded.start == stop
    assert (found.yielded.start - onset) * 20 == 140
    assert found.resumed_at == resume
    assert found.alignment == "matched"
    assert found.repeated_ms == 200
    assert found.lost_ms == 0
    assert found.discarded_ms == 2500


def test_a_resumption_that_skips_ahead_loses_what_it_skipped() -> None:
    played, stop = interrupted(1500)
    played.silence(600)
    played.play(SENTENCE[1800 * MS :])
    found = measure(played.channel, stop - 5, stop + 20, None)
    assert found.resumed_at is not None
    assert (found.lost_ms, found.repeated_ms) == (300, 0)


def test_a_new_turn_that_says_a_later_sentence_again_is_not_a_resumption() -> None:
    """The answer to "how much is it?" repeats the cut turn's price sentence from the TTS
    cache: the same samples, but from well past where the caller stopped hearing."""
    played, stop = interrupted(1000)
    played.silence(900)
    played.play(SENTENCE[2200 * MS :])
    found = measure(played.channel, stop - 5, stop + 20, None)
    assert found.resumed_at is None
    assert found.spoke_again_at is not None
    assert found.alignment == "other"
    assert found.lost_ms == found.discarded_ms


def test_a_stop_without_resumption_loses_the_rest() -> None:
    played, stop = interrupted(1500)
    played.silence(3000)
    found = measure(played.channel, stop - 8, stop + 30, None)
    assert found.yielded is not None
    assert found.yielded.start == stop
    assert found.resumed_at is None
    assert found.spoke_again_at is None
    assert found.lost_ms == 2500


def test_an_answer_after_a_barge_in_is_not_a_resumption() -> None:
    played, stop = interrupted(1500)
    played.silence(700)
    answer = played.frame
    played.play(speech(2.0, seed=7))  # new words: the reply to the interruption
    found = measure(played.channel, stop - 8, stop + 30, None)
    assert found.resumed_at is None
    assert found.spoke_again_at == answer
    assert found.alignment == "other"
    assert found.lost_ms == 2500


def test_audio_after_the_callers_next_action_is_not_a_resumption() -> None:
    played, stop = interrupted(1500)
    played.silence(1000)
    played.play(SENTENCE[1300 * MS :])
    onset, end = stop - 8, stop + 10
    found = measure(played.channel, onset, end, next_action=stop + 30)  # before the audio came
    assert found.yielded is not None
    assert found.resumed_at is None


def test_an_agent_that_talks_on_did_not_yield() -> None:
    played = Played()
    played.play(SENTENCE)
    found = measure(played.channel, 50, 75, None)
    assert found.yielded is None
    assert (found.lost_ms, found.repeated_ms) == (0, 0)


def test_a_short_pause_in_the_agents_own_speech_is_not_a_yield() -> None:
    played = Played()
    played.play(SENTENCE[: 1000 * MS])
    played.silence(160)  # a comma
    played.play(SENTENCE[1000 * MS :])
    assert measure(played.channel, 45, 70, None).yielded is None


def test_ducking_counts_as_yielding_and_loses_nothing() -> None:
    played = Played()
    played.play(SENTENCE[: 1000 * MS])
    ducked = np.frombuffer(SENTENCE[1000 * MS : 1600 * MS], "<i2") // 10  # -20 dB
    played.play(ducked.astype("<i2").tobytes())
    played.play(SENTENCE[1600 * MS :])
    onset = 50 - 6
    found = measure(played.channel, onset, onset + 20, None)
    assert found.yielded is not None
    assert found.yielded.start == 50
    assert found.resumed_at == 80
    assert (found.lost_ms, found.repeated_ms, found.alignment) == (0, 0, "continuous")


def test_locate_finds_a_probe_that_runs_past_the_reference() -> None:
    reference = SENTENCE[: 1000 * MS]
    probe = SENTENCE[900 * MS : 1300 * MS]  # only 100 ms of it inside the reference
    assert locate(reference, probe, 0) == 900 * RATE // 1000
    assert locate(reference, speech(0.4, seed=3), 0) is None


def test_an_agent_that_speaks_in_the_callers_pause_cut_in() -> None:
    levels = [0.0] * 200
    onset, end = 20, 150
    assert cut_in(levels, onset, end) is None
    levels[90:140] = [3000.0] * 50  # the agent began during the caller's pause at 80..115
    assert cut_in(levels, onset, end) == 90
    assert cut_in(levels, onset, 90) is None  # the caller had finished by then


def test_the_callers_pauses_are_where_its_parts_are_silent() -> None:
    frame = RATE // 50
    # Two parts of 10 and 8 frames, voiced in frames 1..8 and 1..6 of each, 700 ms apart.
    first = [False] + [True] * 8 + [False]
    gap = [False] * 35
    second = [False] + [True] * 6 + [False]
    pauses = _pauses(first + gap + second, [10 * frame, 8 * frame], 35 * frame)
    assert pauses == [(9, 46)]


def script(step: Any) -> CallScript:
    return CallScript.model_validate({"name": "pause", "turns": [step]})


def test_a_sentence_with_pauses_is_said_in_parts() -> None:
    step = script(
        {
            "say_with_pause": {
                "say": "My number is nine one six | five five five, one two three four",
                "pause_ms": 700,
            }
        }
    ).turns[0]
    assert step.kind == "say_with_pause"
    assert step.say_with_pause is not None
    assert step.say_with_pause.parts == [
        "My number is nine one six",
        "five five five, one two three four",
    ]
    assert step.say_with_pause.pause_ms == 700
    assert step.say_with_pause.text.startswith("My number is nine one six five five five")


@pytest.mark.parametrize(
    "bad",
    [
        {"say_with_pause": {"say": "no pause marker here"}},
        {"say_with_pause": {"say": "trailing |"}},
        {"say_with_pause": {"say": "a | b", "pause_ms": 20}},
        {"say_with_pause": {"say": "a | b"}, "say": "and a say"},
    ],
)
def test_a_broken_paused_sentence_is_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Step.model_validate(bad)


def test_a_break_reports_the_rest_of_the_file_and_the_queue_as_discarded(tmp_path: Any) -> None:
    queued = tmp_path / "next.r16"
    queued.write_bytes(SENTENCE[:3200])
    ch = Channel(uuid="u", direction="inbound", caller_number="1", destination_number="2")
    thrown: list[bytes] = []
    ch.discard_listeners.append(thrown.append)
    ch.playing = Playback("now.r16", "app", audio=SENTENCE[:64000], position=32000)
    ch.write_audio += SENTENCE[31360:32000]
    ch.playlist.append((str(queued), "app2"))
    ch.break_playback(flush_queue=True)
    assert thrown == [SENTENCE[31360:64000] + SENTENCE[:3200]]


async def caller_hearing(played: Played, *utterances: Utterance) -> ScriptedCaller:
    switch = Switch()
    channel = switch.create_channel(
        direction="inbound", caller="+15550001111", destination="100", codec="L16"
    )
    caller = ScriptedCaller(switch, channel, script("Hello."))
    caller.timeline.played = played.channel
    caller.utterances.extend(utterances)
    return caller


def interjection(kind: str, onset: int, end: int) -> Utterance:
    return Utterance(index=0, kind=kind, text="uh-huh", onset_tick=onset, end_tick=end)


async def test_verdicts_follow_what_the_caller_heard() -> None:
    played, stop = interrupted(1500)
    played.silence(800)
    played.play(SENTENCE[1300 * MS :])
    caller = await caller_hearing(played, interjection("backchannel", stop - 7, stop + 18))
    (backchannel,) = caller.measurements()["barge_ins"]
    assert backchannel["yield_ms"] == backchannel["stop_latency_ms"] == 140
    assert backchannel["resumed"] is True
    assert backchannel["stopped"] is False
    assert (backchannel["lost_ms"], backchannel["repeated_ms"]) == (0, 200)
    assert backchannel["correct"] is True

    # The same resumption over a barge-in is wrong: the agent took its sentence up again.
    caller = await caller_hearing(played, interjection("barge_in", stop - 7, stop + 18))
    (barge,) = caller.measurements()["barge_ins"]
    assert barge["resumed"] is True
    assert barge["correct"] is False

    skipped, stop = interrupted(1500)
    skipped.silence(800)
    skipped.play(SENTENCE[1900 * MS :])
    caller = await caller_hearing(skipped, interjection("backchannel", stop - 7, stop + 18))
    (lossy,) = caller.measurements()["barge_ins"]
    assert lossy["lost_ms"] == 400
    assert lossy["correct"] is False


async def test_a_stop_for_good_is_a_correct_barge_in() -> None:
    played, stop = interrupted(1500)
    played.silence(3000)
    caller = await caller_hearing(played, interjection("barge_in", stop - 10, stop + 30))
    (barge,) = caller.measurements()["barge_ins"]
    assert barge["stopped"] is True
    assert barge["correct"] is True
    assert barge["lost_ms"] == barge["discarded_ms"] == 2500


def report(barge_ins: list[dict[str, Any]], turns: list[dict[str, Any]]) -> dict[str, Any]:
    return {"script": "s", "passed": True, "barge_ins": barge_ins, "turns": turns}


def heard(kind: str, yield_ms: int | None, resumed: bool = False, lost: int = 0) -> dict[str, Any]:
    return {
        "kind": kind,
        "caller_onset_ms": 1000,
        "yielded": yield_ms is not None,
        "yield_ms": yield_ms,
        "stop_latency_ms": yield_ms,
        "command_stop_ms": yield_ms,
        "resumed": resumed,
        "resumed_ms": 2000 if resumed else None,
        "lost_ms": lost,
        "repeated_ms": 0,
        "stopped": yield_ms is not None and not resumed,
        "should_stop": kind == "barge_in",
        "correct": True,
    }


def turn(cut: bool | None) -> dict[str, Any]:
    return {"v2v_ms": 700, "cut_in": cut, "cut_in_ms": 5000 if cut else None}


def test_the_suite_summary_reports_yields_resumptions_lost_words_and_cut_ins() -> None:
    calls = [
        report(
            [heard("barge_in", 160), heard("backchannel", 120, resumed=True)],
            [turn(None), turn(True)],
        ),
        report(
            [heard("backchannel", 140, resumed=True, lost=300), heard("backchannel", None)],
            [turn(False), turn(False)],
        ),
    ]
    summary = _suite_summary(calls)
    assert summary["yield_n"] == 3
    assert summary["yield_p50_ms"] == 140
    assert summary["yield_p95_ms"] == 160
    assert summary["barge_in_stop_p50_ms"] == 160
    assert summary["backchannels"] == 3
    assert summary["backchannels_yielded"] == 2
    assert summary["backchannel_resumed_share"] == 1.0
    assert summary["backchannel_words_lost"] == 1
    assert summary["backchannel_lost_ms"] == 300
    assert summary["paused_turns"] == 3
    assert summary["premature_cuts"] == 1
    assert summary["premature_cut_share"] == 0.333


def test_the_report_lines_say_what_the_agent_did() -> None:
    one = report(
        [heard("backchannel", 120, resumed=True, lost=300)],
        [{**turn(True), "index": 0, "caller_speech_end_ms": 6000, "agent_first_audio_ms": 6700,
          "cut_in_pause": True}],
    )  # fmt: skip
    one["interjections"] = _suite_summary([one])
    text = "\n".join(summary_lines(one))
    assert "yielded in 120 ms" in text
    assert "lost 300 ms" in text
    assert "CUT IN at 5000 ms (in a pause)" in text
    assert "premature cuts 1/1" in text
