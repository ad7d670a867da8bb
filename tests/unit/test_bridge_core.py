"""The bridge's turn-taking core on frame and event timelines: when the agent yields, what the
caller is reported to have heard, when the agent reprompts, when the call is hung up."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from callkit.contracts.asr import SpeechStarted, TranscriptFinal
from callkit.contracts.dialog import CallStarted, Dtmf
from fs_bridge.bargein import BargeInConfig, BargeInDetector
from fs_bridge.busy import load_phrases
from fs_bridge.echo import FRAME
from fs_bridge.turns import (
    Action,
    HangUp,
    Measure,
    Recognize,
    Resume,
    StartTurn,
    StopPlayback,
    TurnConfig,
    TurnTaker,
    Yield,
)

ROOT = Path(__file__).resolve().parents[2]
PHRASES = load_phrases(ROOT / "prompts" / "bridge.json", "en")
BACKCHANNELS = PHRASES.backchannel_words("en")
UNFINISHED = PHRASES.unfinished_endings("en")

AGENT = 3000.0  # the agent's voice on the played channel (RMS)
CALLER = 2500.0  # the caller's voice
ECHO = AGENT * 0.2  # the agent's voice returned by the line, -14 dB
QUIET = 30.0  # line noise
SENTENCE = "one two three four five six seven eight"  # 8 words


@dataclass(frozen=True)
class Audio:
    """``ms`` of frames with these levels on the caller and the played channel."""

    ms: int
    caller: float
    played: float


@dataclass(frozen=True)
class Say:
    """The agent's sentence: its audio goes out now and lasts ``ms``."""

    ms: int
    text: str = SENTENCE
    file: bool = False  # file mode: played out by its length, not by a mark


@dataclass(frozen=True)
class PlayedOut:
    mark: str


@dataclass(frozen=True)
class Final:
    text: str
    end_ms: int | None = None  # where the words ended on the audio timeline; None: now


@dataclass(frozen=True)
class SpeechStart:
    t_ms: int = 0  # where the speech began on the audio timeline


@dataclass(frozen=True)
class Key:
    digit: str


@dataclass(frozen=True)
class Tick:
    pass


@dataclass(frozen=True)
class TurnEnds:
    """The shell reports the current turn's replies said and played."""


Step = Audio | Say | PlayedOut | Final | SpeechStart | Key | Tick | TurnEnds


def describe(action: Action) -> str | None:
    if isinstance(action, Recognize | Measure):
        return None
    if isinstance(action, StopPlayback):
        return f"stop: {action.heard!r}"
    if isinstance(action, HangUp):
        return "hang up"
    if isinstance(action, Yield):
        return "yield"
    if isinstance(action, Resume):
        return "resume: " + ", ".join(f"{s.key} from {s.from_ms:.0f} ms" for s in action.sentences)
    event = action.event
    details = {
        "user.interrupted": lambda: (
            f"{event.heard_text!r}"  # type: ignore[union-attr]
            + (f" then {event.utterance.text!r}" if event.utterance else "")
        ),  # type: ignore[union-attr]
        "user.utterance": lambda: repr(event.text),  # type: ignore[union-attr]
        "user.silence": lambda: f"{event.seconds} s",  # type: ignore[union-attr]
        "dtmf": lambda: repr(event.digits),  # type: ignore[union-attr]
    }
    return f"{event.type}: {details[event.type]()}" if event.type in details else event.type


class Timeline:
    """Drives a core the way the shell does; wall time follows the audio time."""

    def __init__(self, config: TurnConfig | None = None) -> None:
        detector = BargeInDetector(BargeInConfig(min_span_ms=700, min_voiced_ms=400))
        self.core = TurnTaker(
            "call-1",
            config or TurnConfig(),
            detector,
            backchannels=BACKCHANNELS,
            unfinished=UNFINISHED,
        )
        self.rng = np.random.default_rng(7)
        self.turn = 0
        self.log: list[tuple[int, str]] = []
        self.recognized = b""
        self.measured: list[Measure] = []
        self._take(self.core.start(CallStarted(), 0.0))
        assert self.log == [(0, "call.started")]  # the greeting
        self.log.clear()

    @property
    def now_s(self) -> float:
        return self.core.t_ms / 1000

    def _noise(self, level: float) -> np.ndarray:
        return np.clip(self.rng.normal(0, level, FRAME), -32768, 32767).astype(np.int16)

    def _take(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, StartTurn):
                self.turn = action.turn
            if isinstance(action, Recognize):
                self.recognized += action.pcm
            if isinstance(action, Measure):
                self.measured.append(action)
            if isinstance(action, Resume) and action.sentences:
                # The shell sends the first sentence again from where it resumes.
                first = action.sentences[0]
                self.core.audio_out(first.mark, self.now_s, from_ms=first.from_ms)
            text = describe(action)
            if text is not None:
                self.log.append((round(self.core.t_ms), text))

    def run(self, steps: list[Step]) -> list[tuple[int, str]]:
        for step in steps:
            if isinstance(step, Audio):
                for _ in range(step.ms // 20):
                    caller, played = self._noise(step.caller), self._noise(step.played)
                    self._take(self.core.feed(caller, played, self.now_s))
                    self._take(self.core.tick(self.now_s))
            elif isinstance(step, Say):
                mark = self.core.sentence(step.text)
                self.core.sentence_length(mark, step.ms)
                out = self.core.file_playing if step.file else self.core.audio_out
                self._take(out(mark, self.now_s))
            elif isinstance(step, PlayedOut):
                self.core.on_mark(step.mark, "playout")
            elif isinstance(step, Final):
                final = TranscriptFinal(
                    segment_id=1,
                    text=step.text,
                    raw_text=step.text,
                    start_ms=0,
                    end_ms=round(self.core.t_ms) if step.end_ms is None else step.end_ms,
                    confidence=0.9,
                    language="en",
                )
                self._take(self.core.on_transcript(final, self.now_s))
            elif isinstance(step, SpeechStart):
                self._take(self.core.on_transcript(SpeechStarted(t_ms=step.t_ms), self.now_s))
            elif isinstance(step, Key):
                self._take(self.core.on_dtmf(Dtmf(digits=step.digit), self.now_s))
            elif isinstance(step, Tick):
                self._take(self.core.tick(self.now_s))
            elif isinstance(step, TurnEnds):
                self.core.turn_ended(self.turn)
        return self.log


GREETING = "call.started"
#: The agent's one-second sentence, played out to its end: the caller's turn comes next.
SAID: list[Step] = [Say(1000), Audio(1000, QUIET, AGENT), PlayedOut("s1"), TurnEnds()]


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        pytest.param(
            [
                Say(2000),
                Audio(500, QUIET, AGENT),
                Audio(1000, CALLER, AGENT),
                Audio(200, QUIET, QUIET),
                Final("where is the clinic"),
            ],
            [
                (540, "yield"),
                (1200, "stop: 'one two'"),
                (1700, "user.interrupted: 'one two' then 'where is the clinic'"),
            ],
            id="barge-in: quiet 40 ms after the onset, stopped at 700 ms, what was heard "
            "until the yield reported, the caller's words answered",
        ),
        pytest.param(
            [
                Say(3000),
                Audio(500, QUIET, AGENT),
                Audio(500, CALLER, QUIET),
                Final("uh-huh"),
                Audio(600, QUIET, QUIET),
            ],
            [(540, "yield"), (1400, "resume: s1 from 540 ms")],
            id="a 500 ms backchannel over the agent: quiet at once, resumed 400 ms after it",
        ),
        pytest.param(
            [
                Say(3000),
                Audio(500, QUIET, AGENT),
                Audio(500, CALLER, AGENT),
                Audio(2000, QUIET, AGENT),
                PlayedOut("s1"),
                TurnEnds(),
                Audio(1500, QUIET, QUIET),
                Final("uh-huh"),  # a slow recognizer: the final comes after the agent finished
            ],
            [(540, "yield"), (1400, "resume: s1 from 540 ms")],
            id="a backchannel's late final, after the agent finished, is still no answer",
        ),
        pytest.param(
            [
                Say(2000),
                Audio(1700, QUIET, AGENT),
                Audio(300, CALLER, AGENT),  # "yes" over the question's last words
                PlayedOut("s1"),
                TurnEnds(),
                Audio(300, CALLER, QUIET),
                Audio(400, QUIET, QUIET),
                Final("yes that's right"),
            ],
            [(1740, "yield"), (2700, 'user.utterance: "yes that\'s right"')],
            id="an answer that overlapped the question's last words is answered",
        ),
        pytest.param(
            [
                Say(2000),
                Audio(1800, QUIET, AGENT),
                Audio(200, CALLER, AGENT),
                PlayedOut("s1"),
                TurnEnds(),
                Audio(600, QUIET, QUIET),
                Final("yes"),
            ],
            [(1840, "yield"), (2600, "user.utterance: 'yes'")],
            id="a short answer said over the question's last word and ended with it is answered",
        ),
        pytest.param(
            [
                Say(3000),
                Audio(500, QUIET, AGENT),
                Audio(300, CALLER, QUIET),  # "Wait!": too short to stop the agent by its length
                Audio(500, QUIET, QUIET),
                Audio(300, QUIET, AGENT),
                Final("wait"),
            ],
            [
                (540, "yield"),
                (1200, "resume: s1 from 540 ms"),
                (1600, "stop: 'one two'"),
                (1600, "user.interrupted: 'one two' then 'wait'"),
            ],
            id="a short word that is no backchannel stops the resumed agent when it is heard",
        ),
        pytest.param(
            [
                Say(3000),
                Audio(500, QUIET, AGENT),
                Audio(300, CALLER, QUIET),
                Audio(500, QUIET, QUIET),
                Final("Okay, mm-hmm."),
                Audio(300, QUIET, AGENT),
            ],
            [(540, "yield"), (1200, "resume: s1 from 540 ms")],
            id="backchannel words heard after the resumption change nothing",
        ),
        pytest.param(
            [Say(3000), Audio(3000, ECHO, AGENT)],
            [],
            id="the agent's own echo on the caller channel never stops it",
        ),
        pytest.param(
            [
                Say(2000),
                Audio(1000, QUIET, AGENT),
                Audio(1000, CALLER, AGENT),
                Audio(3200, QUIET, QUIET),
            ],
            [
                (1040, "yield"),
                (1700, "stop: 'one two three four'"),
                (4700, "user.interrupted: 'one two three four'"),
            ],
            id="a barge-in whose words never come: reported after the 3 s wait, heard only",
        ),
        pytest.param(
            [
                *SAID,
                Audio(7100, QUIET, QUIET),
            ],
            [(8000, "user.silence: 7.0 s")],
            id="the caller says nothing for 7 s after the agent finished: a reprompt",
        ),
        pytest.param(
            [
                *SAID,
                Audio(6000, QUIET, QUIET),
                SpeechStart(),
                Audio(3000, QUIET, QUIET),
            ],
            [],
            id="no reprompt while the recognizer works on what the caller began to say",
        ),
        pytest.param(
            [
                *SAID,
                SpeechStart(1000),
                Audio(1000, CALLER, QUIET),
                Audio(300, QUIET, QUIET),
                Final("hi this is john smith"),
                Audio(500, CALLER, QUIET),  # the rest of the sentence, before the reply began
                Audio(300, QUIET, QUIET),
                Say(2000),
                Audio(1000, QUIET, AGENT),
                SpeechStart(2300),  # a busy recognizer: the news of its start comes late,
                Final("my left knee has hurt for two weeks"),  # and so does its final
            ],
            [
                (2300, "user.utterance: 'hi this is john smith'"),
                (4100, "stop: 'one two three four'"),
                (
                    4100,
                    "user.interrupted: 'one two three four' then "
                    "'my left knee has hurt for two weeks'",
                ),
            ],
            id="the rest of a sentence said before the reply began, recognized late, crosses it: "
            "not dropped as a backchannel",
        ),
        pytest.param(
            [
                Say(1000),
                Audio(1000, QUIET, AGENT),
                PlayedOut("s1"),
                Audio(8000, QUIET, QUIET),
            ],
            [],
            id="no reprompt while the turn is still running (its actions pending)",
        ),
        pytest.param(
            [
                *SAID,
                Audio(800, CALLER, QUIET),
                Audio(300, QUIET, QUIET),
                Final("my knee hurts"),
            ],
            [(2100, "user.utterance: 'my knee hurts'")],
            id="the caller answers after the agent: their words are the next turn",
        ),
        pytest.param(
            [
                *SAID,
                Audio(400, CALLER, QUIET),
                Audio(300, QUIET, QUIET),
                Audio(100, CALLER, QUIET),  # speaking again as the first part's final comes
                Final("Yes,"),
                Audio(900, CALLER, QUIET),
                Audio(300, QUIET, QUIET),
                Final("that works for me."),
            ],
            [(3000, "user.utterance: 'Yes, that works for me.'")],
            id="a final that comes as the caller speaks again waits for the rest: one turn",
        ),
        pytest.param(
            [
                *SAID,
                Audio(400, CALLER, QUIET),
                Audio(300, QUIET, QUIET),
                Audio(100, CALLER, QUIET),  # a cough, and nothing more is said
                Final("Yes."),
                Audio(1500, QUIET, QUIET),
            ],
            [(3000, "user.utterance: 'Yes.'")],
            id="held words are the turn once the caller stays quiet and no more words come",
        ),
        pytest.param(
            [
                *SAID,
                Audio(600, CALLER, QUIET),
                Audio(500, QUIET, QUIET),  # a pause for thought, ended as a sentence
                Final("My name is."),
                Audio(300, QUIET, QUIET),
                Audio(700, CALLER, QUIET),
                Audio(300, QUIET, QUIET),
                Final("Peter Brown."),
            ],
            [(3400, "user.utterance: 'My name is. Peter Brown.'")],
            id="words that stop on 'my name is' wait for the name: one turn",
        ),
        pytest.param(
            [
                *SAID,
                Audio(600, CALLER, QUIET),
                Audio(500, QUIET, QUIET),
                Final("My knee and"),
                Audio(1500, QUIET, QUIET),  # and nothing more is said
            ],
            [(2800, "user.utterance: 'My knee and'")],
            id="unfinished words with nothing after them are the turn after a moment of quiet",
        ),
        pytest.param(
            [
                *SAID,
                Audio(600, CALLER, QUIET),
                Audio(700, QUIET, QUIET),  # a pause for thought
                Audio(700, CALLER, QUIET),
                SpeechStart(t_ms=2300),  # the rest began...
                Final("My name is.", end_ms=1600),  # ...before a busy recognizer ended the start
                Audio(1500, QUIET, QUIET),
                Final("Peter Brown."),
            ],
            [(4500, "user.utterance: 'My name is. Peter Brown.'")],
            id="the start's final coming after the rest began: the rest's final is awaited",
        ),
        pytest.param(
            [
                *SAID,
                Audio(7000, QUIET, QUIET),  # the reprompt is started at 8000 ms...
                Audio(300, CALLER, QUIET),  # ...as the caller answers, before its audio
                Audio(100, QUIET, QUIET),
                Say(2000),
                Audio(500, QUIET, AGENT),
                Final("tuesday"),
            ],
            [
                (8000, "user.silence: 7.0 s"),
                (8900, "stop: 'one two'"),
                (8900, "user.interrupted: 'one two' then 'tuesday'"),
            ],
            id="a reprompt that crossed the caller's answer is stopped for the answer",
        ),
        pytest.param(
            [Say(2000), Audio(500, QUIET, AGENT), Key("0"), Audio(2000, QUIET, AGENT)],
            [(2500, "dtmf: '0'")],
            id="a single key press is its turn once the caller pauses 2 s",
        ),
        pytest.param(
            [Say(1000, file=True), Audio(1100, QUIET, AGENT), Audio(900, CALLER, AGENT)],
            [],
            id="file mode: the sentence is played out by its length, then speech is no barge-in",
        ),
        pytest.param(
            [
                *SAID,
                *[step for key in "5551234567" for step in (Key(key), Audio(300, QUIET, QUIET))],
                Audio(2000, QUIET, QUIET),
            ],
            [(5700, "dtmf: '5551234567'")],
            id="a phone number keyed digit by digit is one turn, 2 s after the last key",
        ),
        pytest.param(
            [
                *SAID,
                Key("4"),
                Audio(200, QUIET, QUIET),
                Key("2"),
                Audio(200, QUIET, QUIET),
                Key("#"),
                Audio(3000, QUIET, QUIET),
            ],
            [(1400, "dtmf: '42'")],
            id="# ends the digits at once and is not one of them",
        ),
        pytest.param(
            [
                *SAID,
                Key("#"),
                Audio(3000, QUIET, QUIET),
            ],
            [],
            id="# with no digits before it is no turn",
        ),
        pytest.param(
            [
                *SAID,
                Key("1"),
                Audio(2500, QUIET, QUIET),
                Key("2"),
                Audio(2500, QUIET, QUIET),
            ],
            [(3000, "dtmf: '1'"), (5500, "dtmf: '2'")],
            id="keys 2.5 s apart are two inputs",
        ),
        pytest.param(
            [
                *SAID,
                Audio(5000, QUIET, QUIET),
                Key("1"),
                Audio(1500, QUIET, QUIET),  # the 7 s of silence pass while the caller keys in
                Key("2"),
                Audio(1500, QUIET, QUIET),
                Key("3"),
                Audio(2500, QUIET, QUIET),
            ],
            [(11000, "dtmf: '123'")],
            id="no silence reprompt while the caller is keying in",
        ),
        pytest.param(
            [
                Say(2000),
                Audio(500, QUIET, AGENT),
                Audio(1000, CALLER, AGENT),  # a barge-in (the keys' tones can be one)
                Key("1"),
                Audio(4000, QUIET, QUIET),
            ],
            [(540, "yield"), (1200, "stop: 'one two'"), (3500, "dtmf: '1'")],
            id="keys after a barge-in answer it: no turn for the interruption as well",
        ),
    ],
)
def test_turn_taking_on_a_timeline(steps: list[Step], expected: list[tuple[int, str]]) -> None:
    assert Timeline().run(steps) == expected


def test_a_call_at_its_maximum_length_is_hung_up_once() -> None:
    timeline = Timeline(TurnConfig(max_call_s=2.0))
    assert timeline.run([Audio(1980, QUIET, QUIET)]) == []
    assert timeline.run([Audio(1000, QUIET, QUIET), Tick()]) == [(2000, "hang up")]


def test_what_the_caller_heard_follows_the_marks_of_a_streamed_reply() -> None:
    timeline = Timeline()
    timeline.run([Say(1000, "I can book an MRI."), Say(1000, "It costs four hundred dollars.")])
    timeline.run([Audio(1200, QUIET, AGENT), PlayedOut("s1"), Audio(400, QUIET, AGENT)])
    # The second sentence began when the first was reported played (1200 ms): 400 of its 1000 ms.
    assert timeline.core.heard() == "I can book an MRI. It costs"
    timeline.run([Audio(900, CALLER, AGENT)])
    # Quiet from the yield (40 ms after the onset): the words after it were never heard.
    assert timeline.log[-2:] == [(1640, "yield"), (2300, "stop: 'I can book an MRI. It costs'")]
    assert timeline.core.barge_ins == 1
    assert timeline.core.barge_in_stop_ms == [40.0]
    assert not timeline.core.agent_speaking


def test_voice_to_voice_runs_from_the_callers_last_voiced_frame_to_the_replys_first_audio() -> None:
    timeline = Timeline()
    timeline.run([Say(500), Audio(500, QUIET, AGENT), PlayedOut("s1"), TurnEnds()])
    timeline.run([Audio(600, CALLER, QUIET), Audio(700, QUIET, QUIET), Final("my knee")])
    timeline.run([Audio(300, QUIET, QUIET), Say(1000)])
    assert timeline.core.v2v_ms == [1000.0]  # voice ended at 1100 ms, the reply began at 2100 ms
    assert [m.metric for m in timeline.measured] == ["greeting", "turn_first_audio"]
    assert timeline.measured[1].seconds == pytest.approx(0.3)  # final to the reply's first audio


def test_the_recognizer_gets_every_frame_of_the_caller_channel() -> None:
    timeline = Timeline()
    timeline.run([Audio(1000, CALLER, QUIET)])
    assert len(timeline.recognized) == 16000 * 2  # one second at 16 kHz, nothing dropped
    assert timeline.core.t_ms == 1000


def test_the_pause_that_ends_the_digits_is_configured() -> None:
    timeline = Timeline(TurnConfig(dtmf_digit_pause_s=0.8))
    timeline.run([Say(500), Audio(500, QUIET, AGENT), PlayedOut("s1"), TurnEnds()])
    steps: list[Step] = [Key("7"), Audio(500, QUIET, QUIET), Key("8"), Audio(1000, QUIET, QUIET)]
    assert timeline.run(steps) == [(1800, "dtmf: '78'")]  # 0.5 s between keys, then 0.8 s


def test_more_keys_than_one_event_carries_are_delivered_in_full() -> None:
    timeline = Timeline()
    timeline.run([Say(500), Audio(500, QUIET, AGENT), PlayedOut("s1"), TurnEnds()])
    assert timeline.run([Key("1" * 20), Key("2" * 20), Audio(2000, QUIET, QUIET)]) == [
        (500, f"dtmf: '{'1' * 20 + '2' * 12}'"),
        (2500, f"dtmf: '{'2' * 8}'"),
    ]
