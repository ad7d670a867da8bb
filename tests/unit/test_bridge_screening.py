"""An outbound call's first seconds in the turn-taking core: the agent listens before it opens,
says one short line to a silent callee, opens at once to a person, and gives a machine its
``call.started`` only after the beep, with who answered attached."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from callkit.contracts.asr import TranscriptFinal, TranscriptPartial
from callkit.contracts.dialog import CallStarted
from fs_bridge.amd import AmdConfig, AnsweringMachineDetector, load_phrases
from fs_bridge.bargein import BargeInDetector
from fs_bridge.echo import FRAME
from fs_bridge.turns import (
    Action,
    Decided,
    Prompt,
    Recognize,
    StartTurn,
    StopPlayback,
    TurnConfig,
    TurnTaker,
)

PHRASES = Path(__file__).parents[2] / "prompts" / "amd.json"
VOICE = 2500.0
QUIET = 30.0


class Callee:
    """Drives the core as the shell does on an outbound call; wall time follows the audio."""

    def __init__(self, *, amd: bool = True, direction: str = "outbound") -> None:
        detector = AnsweringMachineDetector(AmdConfig(), load_phrases(PHRASES, "en"))
        self.core = TurnTaker(
            "call-1", TurnConfig(), BargeInDetector(), amd=detector if amd else None
        )
        self.rng = np.random.default_rng(3)
        self.log: list[tuple[int, str]] = []
        self.started: CallStarted | None = None
        self.recognized = 0  # bytes of the callee's audio given to the recognizer
        self._take(self.core.start(CallStarted(direction=direction), 0.0))  # type: ignore[arg-type]

    def _take(self, actions: list[Action]) -> None:
        for action in actions:
            t = round(self.core.t_ms)
            if isinstance(action, Prompt):
                self.log.append((t, "prompt"))
                mark = self.core.sentence("Hello?")  # the shell says the line: 600 ms of audio
                self.core.sentence_length(mark, 600)
                self.core.audio_out(mark, self.core.t_ms / 1000)
                self.prompt_mark = mark
            elif isinstance(action, Decided):
                self.log.append((t, f"verdict {action.verdict.answered_by} ({action.verdict.cue})"))
            elif isinstance(action, StartTurn):
                if isinstance(action.event, CallStarted):
                    self.started = action.event
                self.log.append((t, action.event.type))
            elif isinstance(action, StopPlayback):
                self.log.append((t, "stop"))
            elif isinstance(action, Recognize):
                self.recognized += len(action.pcm)

    def audio(self, ms: int, level: float) -> None:
        for _ in range(ms // 20):
            caller = np.clip(self.rng.normal(0, level, FRAME), -32768, 32767).astype(np.int16)
            played = np.zeros(FRAME, np.int16)
            now = self.core.t_ms / 1000
            self._take(self.core.feed(caller, played, now))
            if getattr(self, "prompt_mark", None) and self.core.t_ms >= self._prompt_end():
                self.core.on_mark(self.prompt_mark, "playout")
                self.prompt_mark = None
            self._take(self.core.tick(self.core.t_ms / 1000))

    def _prompt_end(self) -> float:
        spoken = next(s for s in self.core.spoken if s.mark == self.prompt_mark)
        assert spoken.started_ms is not None
        return spoken.started_ms + spoken.duration_ms

    def words(self, text: str, *, final: bool) -> None:
        now = self.core.t_ms / 1000
        event = (
            TranscriptFinal(
                segment_id=1,
                text=text,
                raw_text=text,
                start_ms=0,
                end_ms=0,
                confidence=0.9,
                language="en",
            )
            if final
            else TranscriptPartial(segment_id=1, text=text, stable_text="", t_ms=0)
        )
        self._take(self.core.on_transcript(event, now))

    def beep(self) -> None:
        self._take(self.core.on_beep(self.core.t_ms / 1000))


def test_a_person_who_says_hello_gets_the_opening_at_once() -> None:
    callee = Callee()
    callee.audio(300, QUIET)
    callee.audio(500, VOICE)  # "Hello?"
    callee.words("Hello?", final=False)
    callee.audio(1200, QUIET)
    callee.words("Hello?", final=True)  # the final is no turn of the dialog
    verdicts = [(t, what) for t, what in callee.log if what.startswith("verdict")]
    assert verdicts
    assert verdicts[0][1] == "verdict human (short_greeting)"
    assert verdicts[0][0] < 1800  # decided within a pause of the greeting's end
    assert [what for _, what in callee.log].count("call.started") == 1
    assert callee.started is not None
    assert callee.started.amd is not None
    assert callee.started.amd.answered_by == "human"
    assert "prompt" not in [what for _, what in callee.log]  # nobody talked over them
    assert not callee.core.screening


def test_a_silent_callee_hears_one_short_line_then_is_answered() -> None:
    callee = Callee()
    callee.audio(2000, QUIET)
    assert [what for _, what in callee.log] == ["prompt"]
    assert 1400 <= callee.log[0][0] <= 1600
    callee.audio(400, QUIET)  # the line plays out
    callee.audio(450, VOICE)  # "Yes?"
    callee.audio(1000, QUIET)
    whats = [what for _, what in callee.log]
    assert whats.count("prompt") == 1
    assert "call.started" in whats
    assert callee.started is not None
    assert callee.started.amd is not None
    assert callee.started.amd.answered_by == "human"


def test_a_voicemail_gets_the_call_only_after_its_beep() -> None:
    callee = Callee()
    callee.audio(400, QUIET)
    callee.audio(1500, VOICE)
    callee.words("Hi, you have reached Mary. Please leave a message", final=False)
    assert any(what == "verdict machine (phrase)" for _, what in callee.log)
    callee.audio(1200, VOICE)  # the greeting goes on: nothing may start over it
    callee.audio(600, QUIET)
    assert "call.started" not in [what for _, what in callee.log]
    callee.beep()
    assert [what for _, what in callee.log][-1] == "call.started"
    assert callee.started is not None
    assert callee.started.amd is not None
    assert callee.started.amd.answered_by == "machine"
    assert callee.started.amd.cue == "phrase"


def test_a_greeting_over_the_agent_line_is_evidence_never_a_barge_in() -> None:
    callee = Callee()
    callee.audio(1600, QUIET)  # the short line starts
    callee.audio(4000, VOICE)  # a long recorded greeting over it
    whats = [what for _, what in callee.log]
    assert "stop" not in whats
    assert "verdict machine (long_greeting)" in whats


def test_a_call_that_ends_before_the_verdict_still_reaches_the_policy_engine() -> None:
    callee = Callee()
    callee.audio(500, QUIET)
    held = callee.core.release()
    assert held is not None
    assert held.direction == "outbound"
    assert held.amd is not None
    assert held.amd.answered_by == "unknown"
    assert callee.core.release() is None  # once


def test_inbound_calls_and_detection_off_open_at_once() -> None:
    for callee in (Callee(direction="inbound"), Callee(amd=False)):
        assert [what for _, what in callee.log] == ["call.started"]
        assert callee.started is not None
        assert callee.started.amd is None


def test_a_beep_after_a_short_greeting_turns_the_call_into_a_voicemail() -> None:
    """ "Sarah Connor." and a pause pass for a person; the box's beep a moment later stops the
    agent's opening and sends the call the voicemail way."""
    callee = Callee()
    callee.audio(300, QUIET)
    callee.audio(700, VOICE)  # "Sarah Connor."
    callee.audio(1200, QUIET)
    assert callee.started is not None
    assert callee.started.amd is not None
    assert callee.started.amd.answered_by == "human"
    mark = callee.core.sentence("Hello! This is Anna, an automated assistant.")
    callee.core.sentence_length(mark, 3000)
    callee.core.audio_out(mark, callee.core.t_ms / 1000)
    callee.audio(400, QUIET)
    callee.beep()
    whats = [what for _, what in callee.log]
    assert whats[-3:] == ["verdict machine (late_beep)", "stop", "call.machine"]
    assert callee.core.barge_ins == 0  # not the callee interrupting


def test_a_beep_long_after_the_verdict_or_inside_speech_changes_nothing() -> None:
    late = Callee()
    late.audio(300, QUIET)
    late.audio(500, VOICE)
    late.audio(8000, QUIET)
    before = list(late.log)
    late.beep()
    assert late.log == before
    talking = Callee()  # a tone detector firing on the person's answer to the opening
    talking.audio(300, QUIET)
    talking.audio(500, VOICE)
    talking.audio(1200, QUIET)
    talking.audio(2000, VOICE)
    before = list(talking.log)
    talking.beep()
    assert talking.log == before


def test_a_callee_who_answers_the_line_with_their_answer_is_heard() -> None:
    """Silent, then, to "Hello?", the whole answer: the opening starts, and the words are the
    callee's first turn rather than lost with the greeting."""
    callee = Callee()
    callee.audio(2000, QUIET)
    callee.audio(400, QUIET)
    callee.audio(2500, VOICE)
    callee.audio(800, QUIET)
    assert "call.started" in [what for _, what in callee.log]
    callee.words("Sorry, I was on the other line. No, thank you, I am not interested.", final=True)
    assert [what for _, what in callee.log][-1] == "user.utterance"


def test_a_machine_phrase_recognized_after_a_short_greeting_turns_the_call_around() -> None:
    """The words of a short greeting arrive after the pause that made it a person: "Please
    leave a message" in them sends the call the voicemail way, a person's words do not."""
    callee = Callee()
    callee.audio(300, QUIET)
    callee.audio(1400, VOICE)  # "Hello, this is Charlotte. Please leave a message."
    callee.audio(1600, QUIET)
    assert callee.started is not None
    callee.words("Hello, this is Charlotte. Please leave a message.", final=True)
    assert [what for _, what in callee.log][-2:] == [
        "verdict machine (late_phrase)",
        "call.machine",
    ]
    person = Callee()
    person.audio(300, QUIET)
    person.audio(1400, VOICE)
    person.audio(1600, QUIET)
    person.words("Hello, this is Charlotte speaking, who is this?", final=True)
    assert "call.machine" not in [what for _, what in person.log]
