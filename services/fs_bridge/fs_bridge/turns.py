"""Turn-taking of one call: frames, marks, transcripts and ticks in, what to do out.

The core never touches a socket, a task or a clock. The shell (``session.py``) feeds it the two
channels of the fork as 16 kHz frames (the caller, and what was played to them: the echo
reference), the playout of each sentence, the recognizer's events, key presses and ticks, each
with the wall time it happened (``now_s``), and runs the actions it returns: give the caller's
audio to the recognizer (``Recognize``), run the agent's turn for an event (``StartTurn``), go
quiet the moment the caller's voice starts over the agent (``Yield``), then either take the turn
back where the caller stopped hearing it (``Resume``: a backchannel, a cough) or stop for good
(``StopPlayback``: a real interruption), hang up (``HangUp``), record a latency (``Measure``).
Whether a frame is the caller's voice is the speech detector's (Silero VAD, ``vad``) on the
caller channel with the agent's echo removed (``echo``), checked against the played channel. Times on the fork's audio timeline (``t_ms``) advance with the frames fed;
the waits for the caller's words after a barge-in and for the recognizer use ``now_s``.

An outbound call starts with answering-machine detection (``amd``): the agent listens first
(saying one short line, ``Prompt``, if the callee stays silent) and holds the call's start until
``amd.AnsweringMachineDetector`` decides. A person (or no verdict in time) gets the opening at
once; a machine gets ``call.started`` only once its greeting is over (the beep), so the policy
engine's message goes onto the recording. Until then transcripts and silences start no turn.

Key presses are collected, not answered one by one: the caller's digits become one ``dtmf`` turn
when they press ``#`` or pause between keys; a single key is a string of one. What a key means
(a yes, a person, part of a number) is the policy engine's to decide.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

from callkit.contracts.asr import ServerEvent, SpeechStarted, TranscriptFinal, TranscriptPartial
from callkit.contracts.dialog import (
    CallMachine,
    CallStarted,
    Dtmf,
    Event,
    HeardUtterance,
    UserInterrupted,
    UserSilence,
    UserUtterance,
)
from callkit.contracts.outcome import Amd
from callkit.vad import VadStream
from fs_bridge.amd import BEEP_IN_SPEECH_MS, LATE_BEEP_MS, AnsweringMachineDetector, Verdict
from fs_bridge.bargein import FRAME_MS, BargeInDetector, Frame, rms
from fs_bridge.echo import FRAME, RATE, EchoCanceller

Samples = npt.NDArray[np.int16]
#: Caller words ending this close to the end of the agent's audio answer it (they overlapped its
#: last words); words that ended earlier, without stopping the agent, were a backchannel.
OVERLAP_ANSWER_MS = 400
#: An outbound callee's first words up to this long are a greeting the opening answers ("Hello,
#: who is this?"), not a turn of the dialog.
GREETING_WORDS = 4
#: The caller's voice this recent when a final comes in: they are speaking again, and the final
#: is the first part of what they say.
SPEAKING_AGAIN_MS = 60
#: Words held for the rest of what the caller says are delivered after this much quiet when no
#: more words come (the recognizer heard no speech in what followed).
HELD_WORDS_QUIET_MS = 1200
#: The most keys one ``dtmf`` event carries (the contract's limit): more are a new turn.
MAX_DIGITS = 32


@dataclass
class Spoken:
    """One sentence sent to the call, and what is known of its playout.

    ``key`` names the sentence for the whole turn (the shell keeps its audio under it);
    ``mark`` is the name of its current playout mark, a new one each time it is resumed."""

    text: str
    mark: str
    duration_ms: float
    started_ms: float | None = None  # when its audio (from its start) began to play (fork timeline)
    played: bool = False
    key: str = ""

    def __post_init__(self) -> None:
        self.key = self.key or self.mark


def heard_text(spoken: list[Spoken], now_ms: float) -> str:
    """What the caller has heard of a turn at ``now_ms``: every sentence played out in full,
    then the words of the sentence playing now in proportion to its elapsed playout."""
    words: list[str] = []
    for sentence in spoken:
        if sentence.played:
            words.extend(sentence.text.split())
            continue
        if sentence.started_ms is not None and sentence.duration_ms > 0:
            share = max(0.0, min(1.0, (now_ms - sentence.started_ms) / sentence.duration_ms))
            all_words = sentence.text.split()
            words.extend(all_words[: math.floor(share * len(all_words))])
        break
    return " ".join(words)


def resume_point(pcm: bytes, rate: int, from_ms: float, *, look_back_ms: int = 600) -> int:
    """Where to take up a sentence the caller stopped hearing ``from_ms`` into it: the start of
    the word cut there, as a byte offset into its L16 audio (``rate`` Hz).

    The word starts after the last pause before ``from_ms`` (10 ms steps quieter than a tenth
    of the sentence's typical level) within ``look_back_ms``; without one, at the quietest step
    there. The offset keeps 20 ms of the pause, so the word's onset is not clipped.
    """
    x = np.frombuffer(pcm[: len(pcm) - len(pcm) % 2], "<i2").astype(np.float32)
    at = min(x.size, max(0, round(from_ms * rate / 1000)))
    if at == 0 or at >= x.size:
        return 2 * at
    step = max(1, rate // 100)
    levels = np.sqrt(np.mean(x[: x.size - x.size % step].reshape(-1, step) ** 2, axis=1))
    voiced = levels[levels > 50.0]
    quiet = 0.1 * float(np.median(voiced)) if voiced.size else 50.0
    last = min(at // step, levels.size) - 1
    first = max(0, last - look_back_ms // 10)
    window = levels[first : last + 1]
    if window.size == 0:
        return 2 * at
    pauses = np.flatnonzero(window <= quiet)
    index = first + (int(pauses[-1]) if pauses.size else int(np.argmin(window)))
    start = max(0, (index + 1) * step - 2 * step)
    return 2 * int(min(start, at))


# ---------------------------------------------------------------- actions


@dataclass(frozen=True, slots=True)
class Recognize:
    """The caller's audio (16 kHz, the agent's echo removed) for the recognizer."""

    pcm: bytes


@dataclass(frozen=True, slots=True)
class StartTurn:
    """Run the agent's turn for ``event``, cancelling the one in flight.

    The shell reports the turn's end with :meth:`TurnTaker.turn_ended` and its ``turn``.
    """

    turn: int
    event: Event


@dataclass(frozen=True, slots=True)
class StopPlayback:
    """The caller interrupted: stop the audio now and cancel the turn (policy and TTS streams).

    ``turn``: the turn stopped (the shell cancels it only if it is still the current one);
    ``heard``: what the caller heard of it; ``stop_ms``: from the caller's voice onset to this
    stop, when the detector knows it.
    """

    turn: int
    heard: str
    stop_ms: float | None
    barge_in: bool = True  # False: the agent stopped for a machine's late beep


@dataclass(frozen=True, slots=True)
class Yield:
    """The caller's voice began over the agent: go quiet now (clear what the switch buffered),
    keep the turn running and its audio, until ``Resume`` or ``StopPlayback``."""

    turn: int
    onset_ms: float  # the caller's voice onset (fork timeline)


@dataclass(frozen=True, slots=True)
class ResumeFrom:
    """One sentence to send again: ``key`` its audio, ``mark`` its new mark, from ``from_ms``
    into it (the shell backs up to the start of the word the caller stopped hearing)."""

    key: str
    mark: str
    from_ms: float


@dataclass(frozen=True, slots=True)
class Resume:
    """It was no interruption: play the turn's unplayed sentences again, in order."""

    turn: int
    sentences: tuple[ResumeFrom, ...]


@dataclass(frozen=True, slots=True)
class HangUp:
    reason: Literal["max_call_length"]


@dataclass(frozen=True, slots=True)
class Measure:
    """A wall-clock latency: answer to the greeting's first audio, or event to a reply's."""

    metric: Literal["greeting", "turn_first_audio"]
    seconds: float


@dataclass(frozen=True, slots=True)
class Prompt:
    """Outbound, before the verdict: say the one short line ("Hello?") and keep listening."""


@dataclass(frozen=True, slots=True)
class Decided:
    """Answering-machine detection reached its verdict (for the metrics and the log)."""

    verdict: Verdict


Action = Recognize | StartTurn | Yield | Resume | StopPlayback | HangUp | Measure | Prompt | Decided


@dataclass(frozen=True, slots=True)
class _Pause:
    """The agent yielded: what the caller had heard, and where its audio was."""

    turn: int
    at_ms: float
    onset_ms: float
    heard: str
    key: str | None  # the sentence that was playing
    offset_ms: float  # how far into it


@dataclass(frozen=True)
class TurnConfig:
    silence_s: float = 7.0  # caller silence before the agent reprompts
    max_call_s: float = 900.0
    interrupt_wait_s: float = 3.0  # after a barge-in, how long the caller's words are awaited
    dtmf_digit_pause_s: float = 2.0  # a pause between key presses this long ends the digits


# ---------------------------------------------------------------- the core


@dataclass
class TurnTaker:
    call_id: str
    config: TurnConfig
    detector: BargeInDetector
    echo: EchoCanceller = field(default_factory=EchoCanceller)
    #: Outbound calls: who answered, a person or a machine (None: no detection).
    amd: AnsweringMachineDetector | None = None
    #: The speech detector on the caller channel (None: level and echo alone decide).
    vad: VadStream | None = None
    #: Words that are a listener's feedback, not a turn ("uh-huh", "okay"), lower case.
    backchannels: frozenset[str] = frozenset()
    #: Endings after which the caller is plainly not done ("my name is", "and", "um"), as
    #: lower-case word sequences: words ending so wait for the rest.
    unfinished: frozenset[tuple[str, ...]] = frozenset()
    t_ms: float = 0.0  # the fork's audio timeline
    spoken: list[Spoken] = field(default_factory=list)
    v2v_ms: list[float] = field(default_factory=list)
    barge_ins: int = 0
    barge_in_stop_ms: list[float] = field(default_factory=list)
    yields: int = 0
    resumes: int = 0
    yield_ms: list[float] = field(default_factory=list)  # onset to yield, per yield
    _pause: _Pause | None = None
    _held_words: str = ""  # the caller's words so far, while they go on speaking
    _held_segment: int = 0
    _speech_prob: float = 0.0
    _last_yield_onset_ms: float | None = None
    _turn: int = 0
    _turn_running: bool = False
    _marks: int = 0
    _idle_marks: set[str] = field(default_factory=set)  # sentences that began with nothing playing
    _file_ends: dict[str, float] = field(default_factory=dict)  # file mode: mark -> end (t_ms)
    _pending_interrupt: str | None = None
    _interrupt_at_s: float = 0.0
    _agent_done_ms: float | None = None
    _last_caller_voice_ms: float = 0.0
    _turn_started_s: float | None = None
    _first_audio_pending: bool = False
    _connected_s: float = 0.0
    _greeting_measured: bool = False
    #: Answer (the fork's connect) to the greeting's first audio, once it went out.
    first_audio_ms: float | None = None
    _turn_audio_ms: float | None = None  # when the current turn's first audio went out
    _awaiting_final_since_s: float | None = None  # the recognizer heard speech, no final yet
    _speech_began_ms: float = -1.0  # where the recognizer's last speech began (audio timeline)
    # The caller's voice end (fork timeline) of the turn answering them, until its first audio.
    _answering_voice_end_ms: float | None = None
    _hung_up: bool = False
    _digits: str = ""  # keys pressed and not yet delivered (``#`` never among them)
    _last_key_s: float = 0.0
    _held: CallStarted | None = None  # the call's start, until the answering-machine verdict
    _prompting: bool = False  # the short line was asked for and has not been played out yet
    verdict: Verdict | None = None
    #: When the detection ended: the finals of words said before it (the callee's "Hello?")
    #: are no answer to the opening that follows.
    _screened_until_ms: float | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self, event: CallStarted, now_s: float) -> list[Action]:
        """The fork connected (the call is answered): the agent's greeting turn."""
        self._connected_s = now_s
        if self.amd is not None and event.direction == "outbound":
            self._held = event  # listen first: a person says "Hello?", a machine its greeting
            return []
        return [self._start_turn(event, now_s)]

    @property
    def screening(self) -> bool:
        """Outbound and not yet decided: the agent listens and starts no turn."""
        return self._held is not None

    @property
    def _machine(self) -> bool:
        return self.verdict is not None and self.verdict.answered_by == "machine"

    def release(self) -> CallStarted | None:
        """The held start of a call that ended before the verdict was acted on, with what is
        known of who answered; the shell still tells the policy engine the call took place."""
        held, self._held = self._held, None
        if held is None:
            return None
        verdict = self.verdict
        if verdict is None:
            verdict = Verdict("unknown", "hung_up", self.t_ms)
        return held.model_copy(update={"amd": _amd(verdict)})

    def on_beep(self, now_s: float) -> list[Action]:
        """The switch's voicemail beep (mod_avmd's avmd::beep). After a person's verdict, soon
        enough, it was a machine with a short greeting: the agent stops, the voicemail way."""
        if self.amd is None:
            return []
        if self.screening:
            self.amd.beep(self.t_ms)
            return self._screen(now_s)
        onset = self.detector.onset_ms
        speaking_ms = 0 if onset is None else self.detector.frame * FRAME_MS - onset
        if not self._late_machine_possible() or speaking_ms > BEEP_IN_SPEECH_MS:
            return []
        return self._late_machine("late_beep", now_s)

    def _late_machine_possible(self) -> bool:
        """A person's verdict recent enough to be taken back."""
        verdict = self.verdict
        return (
            verdict is not None
            and verdict.answered_by != "machine"
            and self.t_ms - verdict.at_ms <= LATE_BEEP_MS
        )

    def _late_machine(self, cue: str, now_s: float) -> list[Action]:
        """The call taken for a person was a machine: stop the opening, the voicemail way."""
        self.verdict = Verdict("machine", cue, self.t_ms)
        actions: list[Action] = [Decided(self.verdict)]
        if self.agent_speaking:
            heard = self.heard()
            for spoken in self.spoken:
                spoken.played = True
            self._file_ends.clear()
            actions.append(StopPlayback(self._turn, heard, None, barge_in=False))
        self._pending_interrupt = None
        actions.append(self._start_turn(CallMachine(amd=_amd(self.verdict)), now_s))
        return actions

    def _screen(self, now_s: float) -> list[Action]:
        """Answering-machine detection's next step: the short line, the verdict, the start."""
        assert self.amd is not None
        assert self._held is not None
        actions: list[Action] = []
        if self._prompting and self.spoken and not self.agent_speaking:
            self._prompting = False
            self.amd.prompted(self.t_ms)
        if self.verdict is None:
            if self.amd.due_prompt(self.t_ms):
                self._prompting = True
                actions.append(Prompt())
            verdict = self.amd.decide(self.t_ms)
            if verdict is None:
                return actions
            self.verdict = verdict
            actions.append(Decided(verdict))
        if self.verdict.answered_by == "machine" and not self.amd.ready_for_message(self.t_ms):
            return actions  # its greeting goes on: the message waits for the beep
        held, self._held = self._held, None
        self._screened_until_ms = self.t_ms
        started = held.model_copy(update={"amd": _amd(self.verdict)})
        voice_end = self._last_caller_voice_ms if self.verdict.answered_by == "human" else None
        actions.append(self._start_turn(started, now_s, answering_voice_end_ms=voice_end))
        return actions

    @property
    def agent_speaking(self) -> bool:
        return any(not s.played for s in self.spoken)

    def heard(self) -> str:
        """What the caller heard of the turn so far (up to the yield while the agent is quiet)."""
        return heard_text(self.spoken, self._pause.at_ms if self._pause else self.t_ms)

    @property
    def paused(self) -> bool:
        return self._pause is not None

    def mark_of(self, key: str) -> str | None:
        """The current mark name of the sentence ``key`` (None: not in this turn)."""
        return next((s.mark for s in self.spoken if s.key == key), None)

    def _start_turn(
        self, event: Event, now_s: float, *, answering_voice_end_ms: float | None = None
    ) -> StartTurn:
        """``answering_voice_end_ms``: the turn answers the caller's words that ended then (its
        voice-to-voice time is measured from it)."""
        self._turn += 1
        self._turn_running = True
        self._answering_voice_end_ms = answering_voice_end_ms
        self.spoken = []
        self._idle_marks.clear()
        self._file_ends.clear()
        self._agent_done_ms = None
        self._turn_audio_ms = None
        self._turn_started_s = now_s
        self._first_audio_pending = True
        self._pause = None
        return StartTurn(self._turn, event)

    def turn_ended(self, turn: int) -> None:
        """The turn's replies are all said and played (or it failed); its actions are next."""
        if turn == self._turn:
            self._agent_done_ms = self.t_ms
            self._turn_running = False

    # ------------------------------------------------------------------ audio in

    def feed(self, caller: Samples, played: Samples, now_s: float) -> list[Action]:
        """Whole 20 ms frames of both channels (16 kHz, same length)."""
        actions: list[Action] = []
        to_asr: list[bytes] = []
        for i in range(0, caller.size, FRAME):
            chunk, reference = caller[i : i + FRAME], played[i : i + FRAME]
            self.t_ms += chunk.size / RATE * 1000
            self._files_played()
            # The recognizer gets the caller channel with the agent's echo removed (the played
            # channel is the reference); whether the agent is speaking changes nothing, so the
            # caller's quiet syllables over the agent are never cut.
            cleaned = self.echo.process(chunk, reference)
            to_asr.append(cleaned)
            frame = self._judge(cleaned, reference)
            decision = self.detector.feed(frame, self.agent_speaking)
            if self.amd is not None and self.screening:
                # Before the verdict the callee's voice is evidence, never an interruption.
                self.amd.voice(frame.voice, self.t_ms)
            elif decision == "yield":
                actions.extend(self._yield())
            elif decision == "resume":
                actions.extend(self._resume())
            elif decision == "interrupt":
                stop = self._interrupt(now_s, self.detector.last_yield_ms)
                if stop is not None:
                    actions.append(stop)
            if frame.voice:
                self._last_caller_voice_ms = self.t_ms
        if to_asr and not self._machine:
            # A machine's greeting is decided: its words are nobody's answer, and recognizing
            # them only takes the recognizer from the calls with people on them.
            actions.append(Recognize(b"".join(to_asr)))
        if self.screening:
            actions.extend(self._screen(now_s))
        return actions

    def _judge(self, cleaned: bytes, reference: Samples) -> Frame:
        """Whether this frame is loud and whether it is the caller's own voice: its level with
        the echo removed (a frame that was echo alone is silence), the echo margin, and the
        speech detector on the cleaned frame."""
        if self.vad is not None:
            probs = self.vad.feed(np.frombuffer(cleaned, "<i2"))
            if probs:
                self._speech_prob = probs[-1]
        prob = self._speech_prob if self.vad is not None else 1.0
        level = 0.0 if self.echo.last_suppressed else rms(cleaned)
        return self.detector.judge(level, rms(reference.tobytes()), prob)

    # ------------------------------------------------------------------ the agent's sentences

    def sentence(self, text: str) -> str:
        """The agent is about to say ``text``; the sentence's mark name."""
        self._marks += 1
        mark = f"s{self._marks}"
        if not self.agent_speaking:
            self._idle_marks.add(mark)
        self.spoken.append(Spoken(text=text, mark=mark, duration_ms=0.0))
        return mark

    def sentence_length(self, mark: str, duration_ms: float) -> None:
        spoken = self._find(mark)
        if spoken is not None:
            spoken.duration_ms = duration_ms

    def audio_out(self, mark: str, now_s: float, *, from_ms: float = 0.0) -> list[Action]:
        """The sentence's first audio reached the call (streamed, or its file is playing);
        ``from_ms``: it was sent from that far into the sentence (a resumption)."""
        spoken = self._find(mark)
        if spoken is not None and mark in self._idle_marks and spoken.started_ms is None:
            spoken.started_ms = self.t_ms - from_ms
        return self._first_audio(now_s)

    def file_playing(self, mark: str, now_s: float, *, from_ms: float = 0.0) -> list[Action]:
        """File mode: the sentence's file is playing (from ``from_ms`` into the sentence); it
        is played out once the rest of its length passed."""
        actions = self.audio_out(mark, now_s, from_ms=from_ms)
        spoken = self._find(mark)
        if spoken is not None:
            started = spoken.started_ms if spoken.started_ms is not None else self.t_ms - from_ms
            self._file_ends[mark] = started + spoken.duration_ms
        return actions

    def on_mark(self, name: str, event: str) -> None:
        """Streaming mode: the module reports a mark played out (or cleared)."""
        if self._pause is not None and event == "cleared":
            return  # cleared by the yield: the sentence is sent again on resumption
        for i, spoken in enumerate(self.spoken):
            if spoken.mark == name and not spoken.played:
                spoken.played = True
                if event == "playout" and i + 1 < len(self.spoken):
                    nxt = self.spoken[i + 1]
                    if nxt.started_ms is None:
                        nxt.started_ms = self.t_ms
                break
        if not self.agent_speaking:
            self._agent_done_ms = self.t_ms

    def _files_played(self) -> None:
        for mark, end_ms in list(self._file_ends.items()):
            if self.t_ms >= end_ms:
                del self._file_ends[mark]
                self.on_mark(mark, "playout")

    def _find(self, mark: str) -> Spoken | None:
        return next((s for s in self.spoken if s.mark == mark), None)

    def _first_audio(self, now_s: float) -> list[Action]:
        if self._turn_audio_ms is None:
            self._turn_audio_ms = self.t_ms
        if self._answering_voice_end_ms is not None:
            self.v2v_ms.append(round(max(0.0, self.t_ms - self._answering_voice_end_ms), 1))
            self._answering_voice_end_ms = None
        if not self._first_audio_pending or self._turn_started_s is None:
            return []
        self._first_audio_pending = False
        if not self._greeting_measured:
            self._greeting_measured = True
            self.first_audio_ms = round((now_s - self._connected_s) * 1000, 1)
            return [Measure("greeting", now_s - self._connected_s)]
        return [Measure("turn_first_audio", now_s - self._turn_started_s)]

    # ------------------------------------------------------------------ barge-in

    def _yield(self) -> list[Action]:
        """The caller's voice began over the agent: it goes quiet, undecided."""
        if not self.agent_speaking or self._pause is not None:
            return []
        onset = self.t_ms - (self.detector.last_yield_ms or 0)
        playing = next((s for s in self.spoken if not s.played), None)
        offset = 0.0
        if playing is not None and playing.started_ms is not None:
            offset = max(0.0, self.t_ms - playing.started_ms)
            if playing.duration_ms > 0:
                offset = min(offset, playing.duration_ms)
        self._pause = _Pause(
            turn=self._turn,
            at_ms=self.t_ms,
            onset_ms=onset,
            heard=self.heard(),
            key=None if playing is None else playing.key,
            offset_ms=offset,
        )
        self._last_yield_onset_ms = onset
        self._file_ends.clear()  # file mode: the playback is broken off, not played out
        self.yields += 1
        if self.detector.last_yield_ms is not None:
            self.yield_ms.append(float(self.detector.last_yield_ms))
        return [Yield(self._turn, onset)]

    def _resume(self) -> list[Action]:
        """It was no interruption: the unplayed sentences again, the one cut from where it was."""
        pause, self._pause = self._pause, None
        if pause is None or pause.turn != self._turn or not self.agent_speaking:
            return []
        self.resumes += 1
        plan: list[ResumeFrom] = []
        for spoken in self.spoken:
            if spoken.played:
                continue
            self._marks += 1
            spoken.mark = f"s{self._marks}"
            spoken.started_ms = None
            if not plan:
                self._idle_marks.add(spoken.mark)  # nothing plays before it
            start = pause.offset_ms if spoken.key == pause.key else 0.0
            plan.append(ResumeFrom(spoken.key, spoken.mark, start))
        return [Resume(self._turn, tuple(plan))]

    def _interrupt(self, now_s: float, stop_ms: float | None) -> StopPlayback | None:
        """Stop the agent now, remembering what the caller heard (None if it was silent)."""
        if not self.agent_speaking:
            return None
        heard = self.heard()
        self._pause = None
        self._pending_interrupt = heard
        self._interrupt_at_s = now_s
        self._turn_running = False
        for spoken in self.spoken:
            spoken.played = True
        self._file_ends.clear()
        self._agent_done_ms = self.t_ms
        self.barge_ins += 1
        if stop_ms is not None:
            self.barge_in_stop_ms.append(float(stop_ms))
        return StopPlayback(self._turn, heard, None if stop_ms is None else float(stop_ms))

    # ------------------------------------------------------------------ the caller's words

    def on_transcript(self, event: ServerEvent, now_s: float) -> list[Action]:
        if self.amd is not None and self.screening:
            # The callee's first words decide who answered; they are no turn of the dialog.
            if isinstance(event, TranscriptPartial | TranscriptFinal) and event.text.strip():
                self.amd.transcript(event.text, isinstance(event, TranscriptFinal), self.t_ms)
            return self._screen(now_s)
        if isinstance(event, SpeechStarted):
            # Where the speech began on the audio timeline, not when the news of it came: on a
            # busy recognizer it comes late, and words said before the agent's reply began
            # would count as said over it (a backchannel, dropped) instead of crossing it.
            began = min(self.t_ms, float(event.t_ms))
            self._last_caller_voice_ms = max(self._last_caller_voice_ms, began)
            self._awaiting_final_since_s = now_s
            self._speech_began_ms = float(event.t_ms)
        if not isinstance(event, TranscriptFinal):
            return []
        if event.end_ms >= self._speech_began_ms:
            # A busy recognizer may send the final of words said before a pause after the speech
            # that followed it began ("My name is | Peter Brown."): that speech's final is
            # still to come.
            self._awaiting_final_since_s = None
        text = event.text.strip()
        if not text:
            return []
        if self._screened_until_ms is not None:
            said_before = self._last_caller_voice_ms <= self._screened_until_ms
            if (
                said_before
                and self._late_machine_possible()
                and self.amd is not None
                and self.amd.machine_words(text)
            ):
                # "Hello, this is Charlotte. Please leave a message.": a short greeting whose
                # words came in only after the pause that made it a person.
                self._screened_until_ms = None
                return self._late_machine("late_phrase", now_s)
            if said_before and len(text.split()) <= GREETING_WORDS:
                # "Hello?", "Yes, speaking.": the words the verdict was made on, recognized
                # only now; the opening answers them. Longer words are an answer to deliver.
                return []
            self._screened_until_ms = None
        if self._held_words:
            text = f"{self._held_words} {text}"
        if self.t_ms - self._last_caller_voice_ms <= SPEAKING_AGAIN_MS or (
            not self.agent_speaking
            and self._pending_interrupt is None
            and self.ends_unfinished(text)
        ):
            # The caller is speaking again as their words come in ("Yes, | that works for
            # me."), or stopped on words nobody ends on ("My name is... | Peter Brown."): the
            # end of turn came too soon. The rest is awaited and said as one; with no more
            # words after HELD_WORDS_QUIET_MS of quiet, what was said is the turn.
            self._held_words = text
            self._held_segment = event.segment_id
            return []
        self._held_words = ""
        return self._heard(text, event.segment_id, now_s)

    def _heard(self, text: str, segment_id: int, now_s: float) -> list[Action]:
        """The caller's words, whole: the turn they start, the interruption they complete, or
        nothing (a backchannel)."""
        segment = f"{self.call_id}:{segment_id}:{round(self.t_ms)}"
        utterance = HeardUtterance(text=text, segment_id=segment)
        voice_end = self._last_caller_voice_ms
        if self._pending_interrupt is not None:
            heard, self._pending_interrupt = self._pending_interrupt, None
            interrupted = UserInterrupted(heard_text=heard, utterance=utterance)
            return [self._start_turn(interrupted, now_s, answering_voice_end_ms=voice_end)]
        if not self.agent_speaking and self._said_over_agent(voice_end):
            # A backchannel whose final came only after the agent finished (a slow recognizer):
            # the words were said, and ended, while the agent spoke on. Not an answer.
            return []
        if not self.agent_speaking:
            answer = UserUtterance(text=text, segment_id=segment)
            return [self._start_turn(answer, now_s, answering_voice_end_ms=voice_end)]
        crossed = self._turn_audio_ms is not None and voice_end < self._turn_audio_ms
        if crossed or (not self.backchannel(text) and self._voice_since_yield(voice_end)):
            # The caller spoke before this turn's audio began (a reprompt crossed their
            # answer), or said words the agent yielded to that were too short to stop it by
            # their length and are no backchannel ("Wait!", "No, Tuesday."): stop it and take
            # them as the answer, reporting what was heard of it.
            stop = self._interrupt(now_s, None)
            if stop is None:
                return []
            self._pending_interrupt = None
            interrupted = UserInterrupted(heard_text=stop.heard, utterance=utterance)
            return [stop, self._start_turn(interrupted, now_s, answering_voice_end_ms=voice_end)]
        # Words over the agent that were no interruption: a backchannel. The agent goes on.
        return []

    def ends_unfinished(self, text: str) -> bool:
        """Whether ``text`` stops on words nobody ends a sentence on ("My name is.", "and")."""
        words = tuple(w for w in (_word(w) for w in text.split()) if w)
        return any(words[-len(end) :] == end for end in self.unfinished if len(words) >= len(end))

    def backchannel(self, text: str) -> bool:
        """Whether ``text`` is only a listener's feedback ("Uh-huh.", "Okay, okay.", "Mm-hmm")."""
        words = [w for w in (_word(w) for w in text.split()) if w]
        return not words or all(w in self.backchannels for w in words)

    def _voice_since_yield(self, voice_end_ms: float) -> bool:
        """The agent yielded during this turn's audio, to speech that ended at ``voice_end_ms``."""
        onset = self._last_yield_onset_ms
        return (
            onset is not None
            and self._turn_audio_ms is not None
            and onset >= self._turn_audio_ms
            and voice_end_ms >= onset
        )

    def _said_over_agent(self, voice_end_ms: float) -> bool:
        """The caller's last voice ended inside the agent's audio of this turn, well before its
        end: words said over the agent that did not stop it. Words that end with the agent's
        last syllables are an answer (a caller who answers as the question ends)."""
        if self._turn_audio_ms is None or self._agent_done_ms is None:
            return False
        return self._turn_audio_ms <= voice_end_ms <= self._agent_done_ms - OVERLAP_ANSWER_MS

    # ------------------------------------------------------------------ key presses

    def on_dtmf(self, event: Dtmf, now_s: float) -> list[Action]:
        """Keys pressed (one per event from the switch): collected until ``#``, a pause of
        ``dtmf_digit_pause_s`` (see :meth:`tick`), or as many as one event may carry."""
        actions: list[Action] = []
        for key in event.digits:
            if key == "#":
                actions.extend(self._deliver_digits(now_s))
                continue
            self._digits += key
            self._last_key_s = now_s
            if len(self._digits) >= MAX_DIGITS:
                actions.extend(self._deliver_digits(now_s))
        return actions

    def _deliver_digits(self, now_s: float) -> list[Action]:
        """The collected keys as one turn (a ``#`` alone delivers nothing)."""
        if not self._digits:
            return []
        digits, self._digits = self._digits, ""
        # Keys pressed after a barge-in (their tones can be one) are what the caller answered.
        self._pending_interrupt = None
        return [self._start_turn(Dtmf(digits=digits), now_s)]

    # ------------------------------------------------------------------ timers

    def tick(self, now_s: float) -> list[Action]:
        """Every quarter second or so: the call's length, the keys, the waits, the caller's
        silence."""
        if self._hung_up:
            return []
        if self.t_ms >= self.config.max_call_s * 1000:
            self._hung_up = True
            return [HangUp("max_call_length")]
        if self.screening:
            return self._screen(now_s)
        if (
            self._held_words
            and (
                self._awaiting_final_since_s is None
                # the recognizer's final of what followed never came (dropped as no words)
                or now_s - self._awaiting_final_since_s >= self.config.interrupt_wait_s
            )
            and self.t_ms - self._last_caller_voice_ms >= HELD_WORDS_QUIET_MS
        ):
            words, self._held_words = self._held_words, ""
            return self._heard(words, self._held_segment, now_s)
        if self._digits:
            if now_s - self._last_key_s >= self.config.dtmf_digit_pause_s:
                return self._deliver_digits(now_s)
            return []  # the caller is keying in: no reprompt, nothing else is due meanwhile
        if (
            self._pending_interrupt is not None
            and now_s - self._interrupt_at_s > self.config.interrupt_wait_s
        ):
            heard, self._pending_interrupt = self._pending_interrupt, None
            return [self._start_turn(UserInterrupted(heard_text=heard), now_s)]
        if self._turn_running or self._agent_done_ms is None or self._pending_interrupt is not None:
            return []
        if (
            self._awaiting_final_since_s is not None
            and now_s - self._awaiting_final_since_s < self.config.interrupt_wait_s * 3
        ):
            return []  # the caller spoke and the recognizer is still on it: not silence
        quiet_since = max(self._agent_done_ms, self._last_caller_voice_ms)
        if self.t_ms - quiet_since < self.config.silence_s * 1000:
            return []
        # The contract caps a silence at an hour; a longer call reports that much.
        seconds = min(3600.0, round((self.t_ms - quiet_since) / 1000, 1))
        silence = UserSilence(seconds=seconds, event_id=f"silence-{round(self.t_ms)}")
        return [self._start_turn(silence, now_s)]


def _word(token: str) -> str:
    """A transcript's token as the phrase lists spell it: lower case, no punctuation around."""
    return token.strip(".,!?;:…-—\"'()[]").lower()


def _amd(verdict: Verdict) -> Amd:
    return Amd(answered_by=verdict.answered_by, cue=verdict.cue, verdict_ms=round(verdict.at_ms, 1))
