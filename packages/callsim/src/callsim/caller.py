"""A scripted far end on one channel, and what it measures on the fork's audio timeline.

The caller is attached to a channel before its media starts: it becomes the channel's read side
(``CallerLine``) and taps every 20 ms tick, so it hears exactly what the fork sends: its own
audio on the left, what the agent played on the right. Times in the report are milliseconds of
that timeline (tick x 20 ms from the first frame), not wall-clock times from service logs.

- v2v: from the end of the caller's speech (its last voiced frame) to the first voiced frame the
  agent plays after it.
- barge-ins and backchannels (:mod:`callsim.played`): from the played channel's audio, when the
  agent yielded (its level dropped after the caller's onset), whether its interrupted speech
  came back, and how much of it the caller never heard or heard twice. The first stop command
  the switch got (``killAudio``, ``uuid_break``, ``stop_play``) is a second figure.
- a caller's mid-sentence pause (``say_with_pause``): whether the agent's audio began before
  the caller had finished the whole sentence (a premature cut-in).
- longest wait: after each caller turn, the longest stretch without the agent's audio before the
  caller spoke again: the wait for its first audio, the pauses inside its reply (after "One
  moment."), and for a persona that heard no question, the silence it waited out.

A voicemail or a call screener with no ``turns`` takes a message
(:meth:`ScriptedCaller.take_message`): once its greeting (and beep) has played it listens for the
agent, and hangs up when the agent's turn ends, when nothing comes within ``voicemail_wait_s``,
or at ``voicemail_max_s``.

A persona script (:mod:`callsim.persona`) has no fixed lines: at each end of the agent's turn
the caller asks its ``Ears`` what the agent said and answers that.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from callkit.audio import WavWriter
from callkit.esl import Event
from callsim.line import FRAME, RATE, CallerLine, LineOptions
from callsim.persona import Persona, question_of
from callsim.played import (
    FRAME_MS,
    MATCH_MS,
    PREROLL_FRAMES,
    RESUME_WINDOW_FRAMES,
    VOICED_RMS,
    PlayedChannel,
    cut_in,
    measure,
    rms,
)
from callsim.script import MACHINES, CallScript, OutboundOutcome, Step
from callsim.voices import voice_for

if TYPE_CHECKING:
    from callsim.switch import Channel, Switch

log = logging.getLogger("callsim.caller")
INTERJECTIONS = ("barge_in", "backchannel")
TICK_MS = FRAME_MS
HANGOVER_TICKS = 10  # a pause shorter than 200 ms does not end a run of agent audio
STOP_WINDOW_MS = 2000  # how long after an interjection's onset to wait for a stop command
HELLO = "Hello? Are you still there?"  # what a persona says into the agent's silence
#: Backchannels and barge-ins may be wrong by this much and still count as correct.
LOST_OK_MS = 20


def voiced_frames(pcm16k: bytes) -> list[bool]:
    """Whether each 20 ms frame of an utterance is voiced."""
    step = FRAME * 2
    return [rms(pcm16k[i : i + step]) > VOICED_RMS for i in range(0, len(pcm16k), step)]


def voiced_bounds(pcm16k: bytes) -> tuple[int, int]:
    """(first, last+1) voiced 20 ms frames of an utterance, as frame offsets."""
    return _bounds(voiced_frames(pcm16k), 0, None)


def _bounds(frames: list[bool], start: int, end: int | None) -> tuple[int, int]:
    span = frames[start:end]
    if not any(span):
        return start, start + len(span)
    return start + span.index(True), start + len(span) - span[::-1].index(True)


def _pauses(voiced: list[bool], parts: list[int], pause: int) -> list[tuple[int, int]]:
    """The silences between the voiced frames of consecutive parts, as frame offsets; ``parts``
    are the parts' lengths and ``pause`` the silence put between them, in samples."""
    spans = []
    at = 0
    for n in parts:
        spans.append(_bounds(voiced, at // FRAME, -(-(at + n) // FRAME)))
        at += n + pause
    return [(a[1], b[0]) for a, b in itertools.pairwise(spans) if b[0] > a[1]]


class Ears(Protocol):
    """How a persona learns what the agent said."""

    async def agent_said(self) -> list[str]:
        """The agent's sentences since the last call, in order."""
        ...


@dataclass
class Utterance:
    index: int
    kind: str  # say | barge_in | backchannel | voicemail | screener
    text: str
    onset_tick: int
    end_tick: int
    agent_first_tick: int | None = None
    agent_was_speaking: bool = False
    #: The first stop command the switch got after the onset (interjections).
    switch_stop_tick: int | None = None
    switch_stop_kind: str | None = None
    #: The caller's silences inside the utterance, [start, end) ticks (``say_with_pause``).
    pauses: list[tuple[int, int]] = field(default_factory=list)
    #: When the caller acted next (spoke, pressed keys, hung up); None: the call ended first.
    next_action_tick: int | None = None
    #: The silence before that action counts as waiting (a persona heard no question).
    waited_out: bool = False


@dataclass
class Timeline:
    tick: int = 0
    agent_voiced_ticks: int = 0
    last_agent_tick: int = -10_000
    agent_runs: list[list[int]] = field(default_factory=list)  # [start, end) of agent audio
    stops: list[tuple[int, str]] = field(default_factory=list)  # switch-side stops of playback
    played: PlayedChannel = field(default_factory=PlayedChannel)  # levels, audio, discards

    @property
    def agent_speaking(self) -> bool:
        return self.tick - self.last_agent_tick <= HANGOVER_TICKS


class ScriptedCaller:
    def __init__(
        self,
        switch: Switch,
        channel: Channel,
        script: CallScript,
        *,
        recording: Path | None = None,
        progress: Callable[[str], None] | None = None,
        ears: Ears | None = None,
    ) -> None:
        self.switch = switch
        self.channel = channel
        self.script = script
        self.voice = voice_for(script.caller.voice, script.caller.speed)
        self.ears = ears
        self.persona = (
            Persona(script.persona, script.caller.number) if script.persona is not None else None
        )
        #: A persona's conversation: each agent turn, what it took as the question, the reply.
        self.exchanges: list[dict[str, Any]] = []
        echo = script.line.echo
        self.line = CallerLine(
            script.caller.codec,
            LineOptions(
                echo_delay_ms=echo.delay_ms if echo else 0,
                echo_gain_db=echo.gain_db if echo else -24.0,
                noise_dbfs=script.line.noise_dbfs,
            ),
        )
        self.timeline = Timeline()
        self.utterances: list[Utterance] = []
        self.errors: list[str] = []
        self.recording = recording
        self._recorder: WavWriter | None = None
        self._progress = progress
        self._tick_event = asyncio.Event()
        self._caller_mark = 0  # tick of the caller's last action: agent turns count after it
        self._step_index = 0
        self.started_wall: float | None = None
        #: How an outbound callee took this call (a person, a voicemail…); None: inbound.
        self.answered_as: OutboundOutcome | None = None
        channel.line = self.line
        channel.taps.append(self._on_tick)
        channel.stop_listeners.append(self._on_switch_stop)
        channel.discard_listeners.append(self.timeline.played.discarded)
        # A hung-up channel sends no more ticks: its hang-up must wake whatever waits for one.
        switch.listeners.append(self._on_switch_event)

    # ------------------------------------------------------------------ the tap

    def _on_tick(self, read16: bytes, written16: bytes | None) -> None:
        tl = self.timeline
        tl.tick = self.line.tick
        if self.started_wall is None:
            self.started_wall = time.time()
            if self.recording is not None:
                self.recording.parent.mkdir(parents=True, exist_ok=True)
                self._recorder = WavWriter(self.recording, 16000, 2)
        if self._recorder is not None:
            right = written16 if written16 is not None else bytes(len(read16))
            stereo = np.empty(len(read16), dtype="<i2")
            stereo[0::2] = np.frombuffer(read16, "<i2")
            stereo[1::2] = np.frombuffer(right, "<i2")
            self._recorder.write(stereo.tobytes())
        level = rms(written16)
        # Frame tick-1 is the one that began at (tick-1) x 20 ms, as utterances count.
        tl.played.add(tl.tick - 1, written16, level)
        if level > VOICED_RMS:
            if tl.tick - tl.last_agent_tick > HANGOVER_TICKS or not tl.agent_runs:
                tl.agent_runs.append([tl.tick, tl.tick + 1])
            else:
                tl.agent_runs[-1][1] = tl.tick + 1
            tl.last_agent_tick = tl.tick
            tl.agent_voiced_ticks += 1
            for u in self.utterances:
                if u.agent_first_tick is None and tl.tick >= u.end_tick and u.kind == "say":
                    u.agent_first_tick = tl.tick
        self._tick_event.set()
        self._tick_event = asyncio.Event()
        if self._progress is not None and tl.tick % 50 == 0:
            state = "agent speaking" if tl.agent_speaking else "agent silent"
            where = (
                f"turn {min(self._step_index + 1, len(self.script.turns))}/{len(self.script.turns)}"
                if self.persona is None
                else f"answer {len(self.exchanges)}"
            )
            self._progress(
                f"{self.script.name}: {tl.tick * TICK_MS / 1000:5.1f} s  {where}  {state}"
            )

    def _on_switch_event(self, event: Event) -> None:
        if event.get("Unique-ID") != self.channel.uuid:
            return
        name = event.get("Event-Name")
        if name in ("CHANNEL_HANGUP", "CHANNEL_DESTROY"):
            self._tick_event.set()
            self.switch.listeners.remove(self._on_switch_event)
        elif name == "CHANNEL_EXECUTE" and event.get("Application") == "bridge":
            self._tick_event.set()  # handed to a person: no more ticks come from the fork

    def _on_switch_stop(self, kind: str) -> None:
        self.timeline.stops.append((self.line.tick, kind))

    # ------------------------------------------------------------------ waiting on the timeline

    @property
    def hung_up(self) -> bool:
        return self.channel.uuid not in self.switch.channels

    async def _next_tick(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        await asyncio.wait_for(self._tick_event.wait(), remaining)

    async def _until(self, predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not predicate():
            if self.hung_up:
                raise CallOver("the call was hung up")
            if self.channel.transferred_to is not None:
                raise Transferred(f"transferred to {self.channel.transferred_to}")
            try:
                await self._next_tick(deadline)
            except TimeoutError:
                raise CallOver(f"timed out after {timeout_s:g}s waiting for {what}") from None

    def _agent_spoke_since_mark(self) -> bool:
        runs = self.timeline.agent_runs
        return bool(runs) and runs[-1][1] > self._caller_mark

    async def agent_turn_end(self) -> None:
        """Wait until the agent has spoken after the caller's last action and then gone quiet."""
        gap = self.script.timing.agent_turn_gap_ms // TICK_MS
        tl = self.timeline
        await self._until(
            lambda: (
                self._agent_spoke_since_mark()
                and not self.line.speaking
                and tl.tick - tl.last_agent_tick >= gap
            ),
            self.script.timing.step_timeout_s,
            "the agent to speak and finish its turn",
        )

    async def agent_onset(self) -> int:
        """Wait for the agent to start speaking after the caller's last action; its tick."""
        await self._until(
            self._agent_spoke_since_mark,
            self.script.timing.step_timeout_s,
            "the agent to start speaking",
        )
        return self.timeline.agent_runs[-1][0]

    # ------------------------------------------------------------------ speaking

    def speak(
        self, kind: str, text: str, parts: list[str] | None = None, pause_ms: int = 0
    ) -> Utterance:
        """Queue an utterance: ``text``, or ``parts`` said with ``pause_ms`` of silence between."""
        self._mark_action()
        pause = bytes(RATE * pause_ms // 1000 * 2)
        spoken = [self.voice.speak(p) for p in parts] if parts else [self.voice.speak(text)]
        pcm = pause.join(spoken)
        start, coded = self.line.queue(pcm)
        voiced = voiced_frames(coded)
        first, last = _bounds(voiced, 0, None)
        utterance = Utterance(
            index=len(self.utterances),
            kind=kind,
            text=" ".join(parts) if parts else text,
            onset_tick=start + first,
            end_tick=start + last,
            agent_was_speaking=self.timeline.agent_speaking,
        )
        if pause_ms > 0 and len(spoken) > 1:
            utterance.pauses = _pauses(voiced, [len(p) // 2 for p in spoken], len(pause) // 2)
            utterance.pauses = [(start + a, start + b) for a, b in utterance.pauses]
        if kind in INTERJECTIONS:
            self.timeline.played.keep(
                utterance.onset_tick - PREROLL_FRAMES,
                utterance.end_tick + RESUME_WINDOW_FRAMES + MATCH_MS // FRAME_MS + 1,
            )
        self.utterances.append(utterance)
        self._caller_mark = utterance.end_tick
        return utterance

    def _mark_action(self, waited_out: bool = False) -> None:
        """The caller acts now: the previous turn's wait for the agent ends here."""
        last = self.utterances[-1] if self.utterances else None
        if last is not None and last.kind != "say" and last.next_action_tick is None:
            last.next_action_tick = self.timeline.tick  # the interjection's turn ends too
        for u in reversed(self.utterances):
            if u.kind == "say":
                if u.next_action_tick is None:
                    u.next_action_tick = self.timeline.tick
                    u.waited_out = waited_out
                break

    async def _finish_speaking(self) -> None:
        await self._until(lambda: not self.line.speaking, 120, "the caller's audio to play out")

    # ------------------------------------------------------------------ steps

    async def run(self) -> None:
        """Play the script; errors end the call early and are kept for the report."""
        try:
            await self._until(lambda: self.timeline.tick > 0, 20, "the audio fork to start")
            if self.persona is not None:
                await self._converse(self.persona)
            if self.answered_as in MACHINES and not self.script.turns:
                await self.take_message()
            for index, step in enumerate(self.script.turns):
                self._step_index = index
                await self._step(step)
            await self._until(
                lambda: False, self.script.timing.end_timeout_s, "the agent to hang up"
            )
        except Transferred:
            pass  # the agent handed the call on: the script ends here
        except CallOver as over:
            if not self.hung_up:
                self.errors.append(str(over))
        finally:
            if not self.hung_up:
                self.switch.hangup(self.channel, "NORMAL_CLEARING", by="caller")
            if self._recorder is not None:
                self._recorder.close()
                self._recorder = None

    async def _step(self, step: Step) -> None:
        kind = step.kind
        if kind == "say":
            await self.agent_turn_end()
            self.speak("say", step.say or "")
            await self._finish_speaking()
        elif kind == "say_with_pause":
            paused = step.say_with_pause
            assert paused is not None
            await self.agent_turn_end()
            self.speak("say", paused.text, paused.parts, paused.pause_ms)
            await self._finish_speaking()
        elif kind in INTERJECTIONS:
            spec = step.barge_in or step.backchannel
            assert spec is not None
            onset = await self.agent_onset()
            await self._until(
                lambda: self.timeline.tick >= onset + spec.after_agent_ms // TICK_MS,
                self.script.timing.step_timeout_s,
                "the moment to cut in",
            )
            if not self.timeline.agent_speaking:
                self.errors.append(
                    f"turn {self._step_index + 1}: the agent had stopped before the {kind}"
                )
            utterance = self.speak(kind, spec.say)
            await self._finish_speaking()
            await self._watch_stop(utterance)
        elif kind == "silence":
            await self.agent_turn_end()
            self._mark_action()
            seconds = float((step.silence or {})["seconds"])
            start = self.timeline.tick
            await self._until(
                lambda: self.timeline.tick >= start + int(seconds * 1000) // TICK_MS,
                seconds + 30,
                "the silence to pass",
            )
            self._caller_mark = self.timeline.tick - int(seconds * 1000) // TICK_MS
        elif kind == "dtmf":
            await self.agent_turn_end()
            await self.press(step.dtmf or "")
        elif kind == "hangup":
            if not (step.hangup or {}).get("immediately"):
                await self.agent_turn_end()
            self._mark_action()
            self.switch.hangup(self.channel, "NORMAL_CLEARING", by="caller")
            raise CallOver("the caller hung up")

    # ------------------------------------------------------------------ a machine

    async def take_message(self) -> None:
        """A voicemail or screener after its greeting: take the agent's message, then hang up.

        The message counts from the end of the greeting (and beep): it must begin within
        ``voicemail_wait_s`` and ends with the agent's turn (``agent_turn_gap_ms`` of silence)
        or at ``voicemail_max_s``, as a box stops recording. Either way the machine hangs up;
        the agent hanging up first ends the call as well.
        """
        out = self.script.outbound
        await self._finish_speaking()
        self._caller_mark = self.timeline.tick
        began = time.monotonic()
        if await self._wait_for(self._agent_spoke_since_mark, out.voicemail_wait_s):
            gap = self.script.timing.agent_turn_gap_ms // TICK_MS
            tl = self.timeline
            left = out.voicemail_max_s - (time.monotonic() - began)
            if left > 0:
                await self._wait_for(lambda: tl.tick - tl.last_agent_tick >= gap, left)
        self._mark_action()
        self.switch.hangup(self.channel, "NORMAL_CLEARING", by="caller")
        raise CallOver("the machine hung up")

    # ------------------------------------------------------------------ a persona

    async def _converse(self, persona: Persona) -> None:
        """Answer each turn of the agent until the call ends (the agent hangs up or hands on)."""
        if self.ears is None:
            raise CallOver(
                "a persona caller hears the agent through calls:events or the ASR gateway: "
                "give a Redis URL (--redis-url) or an ASR URL (--asr-url)"
            )
        while True:
            if not await self._agent_answers(persona):
                silent = persona.spec.hello_after_s * 2
                self.errors.append(f"the agent said nothing for {silent:g} s: the caller hung up")
                self.switch.hangup(self.channel, "NORMAL_CLEARING", by="caller")
                raise CallOver("the caller hung up")
            heard = await self._hear_turn(persona)
            reply = persona.respond(heard)
            at = self.timeline.tick
            self._mark_action(waited_out=reply.ask is None)
            self.exchanges.append(
                {
                    "t_ms": at * TICK_MS,
                    "agent": heard,
                    "ask": reply.ask,
                    "caller": f"[DTMF {reply.dtmf}]" if reply.dtmf else reply.text,
                }
            )
            if reply.dtmf:
                await self.press(reply.dtmf, gap_s=0.3)  # a person typing a number
            elif reply.parts:
                self.speak("say", reply.text, reply.parts, reply.pause_ms)
                await self._finish_speaking()
            if reply.hangup:
                self.switch.hangup(self.channel, "NORMAL_CLEARING", by="caller")
                raise CallOver("the caller hung up")

    async def _agent_answers(self, persona: Persona) -> bool:
        """Wait for the agent's turn to end. A caller met with silence asks whether anyone is
        there, and gives up when the silence goes on as long again (False)."""
        wait = persona.spec.hello_after_s
        if await self._wait_for(self._agent_spoke_since_mark, wait):
            await self.agent_turn_end()
            return True
        self._mark_action(waited_out=True)
        self.exchanges.append(
            {"t_ms": self.timeline.tick * TICK_MS, "agent": "", "ask": None, "caller": HELLO}
        )
        self.speak("say", HELLO)
        await self._finish_speaking()
        if await self._wait_for(self._agent_spoke_since_mark, wait):
            await self.agent_turn_end()
            return True
        self._mark_action(waited_out=True)
        return False

    async def _hear_turn(self, persona: Persona) -> str:
        """The agent's turn as text. With no question in it yet, the persona waits for more (the
        agent's "One moment." before its answer, or sentences not yet on the stream) for its
        patience, and then answers what it has."""
        assert self.ears is not None
        said = await self.ears.agent_said()
        deadline = time.monotonic() + persona.spec.patience_s
        tl = self.timeline
        while question_of(" ".join(said), persona.rules) is None:
            if time.monotonic() >= deadline:
                break
            mark = tl.tick

            def again(since: int = mark) -> bool:
                return tl.last_agent_tick > since

            spoke = await self._wait_for(again, 0.25)
            if spoke:
                self._caller_mark = mark
                await self.agent_turn_end()
            said += await self.ears.agent_said()
        return " ".join(said)

    async def _wait_for(self, predicate: Callable[[], bool], seconds: float) -> bool:
        """Whether ``predicate`` came true within ``seconds``; raises when the call is over."""
        try:
            await self._until(predicate, seconds, "")
        except CallOver:
            if self.hung_up or self.channel.transferred_to is not None:
                raise
            return False
        return True

    async def press(self, digits: str, gap_s: float = 0.1) -> None:
        """Keypad digits as a phone sends them: one DTMF event a key, ``gap_s`` apart."""
        self._mark_action()
        for digit in digits:
            self.switch.fire_channel(
                "DTMF",
                self.channel,
                [("DTMF-Digit", digit), ("DTMF-Duration", "2000"), ("DTMF-Source", "RTP")],
            )
            await asyncio.sleep(gap_s)
        self._caller_mark = self.timeline.tick

    async def _watch_stop(self, u: Utterance) -> None:
        """After a barge-in or backchannel: wait for the first stop command the switch gets
        (``killAudio``, ``uuid_break``, ``stop_play``), ``STOP_WINDOW_MS`` from the onset at
        most. What the caller heard is measured from the played channel at the end of the call
        (:func:`callsim.played.measure`); the command is the second figure.
        """
        deadline_tick = u.onset_tick + STOP_WINDOW_MS // TICK_MS
        tl = self.timeline

        def stopped() -> tuple[int, str] | None:
            return next(((t, k) for t, k in tl.stops if t >= u.onset_tick), None)

        with contextlib.suppress(CallOver):
            await self._until(
                lambda: tl.tick >= deadline_tick or stopped() is not None,
                STOP_WINDOW_MS / 1000 + 10,
                "the agent's audio after the interjection",
            )
        first = stopped()
        if first is not None and first[0] <= deadline_tick:
            u.switch_stop_tick, u.switch_stop_kind = first
        self._caller_mark = max(self._caller_mark, u.end_tick)

    # ------------------------------------------------------------------ results

    def _longest_wait(self, u: Utterance) -> int | None:
        """The longest stretch without agent audio from the end of ``u`` to the caller's next
        action; None when the agent never spoke again."""
        until = u.next_action_tick
        at, longest, heard = u.end_tick, 0, False
        for start, end in self.timeline.agent_runs:
            if end <= u.end_tick:
                continue
            if until is not None and start >= until:
                break
            longest = max(longest, start - at)
            at, heard = max(at, end), True
        if u.waited_out and until is not None:
            longest = max(longest, until - at)
        elif not heard:
            return None
        return longest * TICK_MS

    def measurements(self) -> dict[str, Any]:
        turns = []
        for u in self.utterances:
            if u.kind != "say":
                continue
            end_ms = u.end_tick * TICK_MS
            first = u.agent_first_tick * TICK_MS if u.agent_first_tick is not None else None
            turns.append(
                {
                    "index": u.index,
                    "text": u.text,
                    "caller_speech_start_ms": u.onset_tick * TICK_MS,
                    "caller_speech_end_ms": end_ms,
                    "agent_first_audio_ms": first,
                    "v2v_ms": first - end_ms if first is not None else None,
                    "longest_wait_ms": self._longest_wait(u),
                    **self._cut_in(u),
                }
            )
        interjections = [self._interjection(u) for u in self.utterances if u.kind in INTERJECTIONS]
        return {"turns": turns, "barge_ins": interjections}

    def _cut_in(self, u: Utterance) -> dict[str, Any]:
        """For an utterance with pauses: did the agent speak before the caller had finished?"""
        if not u.pauses:
            return {"pauses_ms": [], "cut_in": None, "cut_in_ms": None, "cut_in_pause": None}
        at = cut_in(self.timeline.played.levels, u.onset_tick, u.end_tick)
        return {
            "pauses_ms": [[a * TICK_MS, b * TICK_MS] for a, b in u.pauses],
            "cut_in": at is not None,
            "cut_in_ms": at * TICK_MS if at is not None else None,
            # Began in one of the caller's pauses (not over its words).
            "cut_in_pause": at is not None and any(a <= at < b for a, b in u.pauses),
        }

    def _interjection(self, u: Utterance) -> dict[str, Any]:
        """A barge-in or backchannel: what the caller heard the agent do, and the verdict."""
        found = measure(self.timeline.played, u.onset_tick, u.end_tick, u.next_action_tick)
        quiet = found.yielded
        yield_ms = (quiet.start - u.onset_tick) * TICK_MS if quiet is not None else None
        command = u.switch_stop_tick
        command_ms = (command - u.onset_tick) * TICK_MS if command is not None else None
        resumed = found.resumed_at is not None
        stopped = quiet is not None and not resumed
        should = u.kind == "barge_in"
        # A barge-in: the agent yields and does not take its sentence up again. A backchannel:
        # it does not yield, or it resumes without losing a word.
        went_on = quiet is None or (resumed and found.lost_ms <= LOST_OK_MS)
        correct = stopped if should else went_on
        return {
            "index": u.index,
            "kind": u.kind,
            "text": u.text,
            "caller_onset_ms": u.onset_tick * TICK_MS,
            "caller_end_ms": u.end_tick * TICK_MS,
            "yielded": quiet is not None,
            "yield_ms": yield_ms,
            "agent_audio_stopped_ms": quiet.start * TICK_MS if quiet is not None else None,
            "command_stop_ms": command_ms,
            "command": u.switch_stop_kind,
            "resumed": resumed,
            "resumed_ms": found.resumed_at * TICK_MS if found.resumed_at is not None else None,
            "agent_audio_again_ms": found.spoke_again_at * TICK_MS
            if found.spoke_again_at is not None
            else None,
            "discarded_ms": found.discarded_ms,
            "lost_ms": found.lost_ms,
            "repeated_ms": found.repeated_ms,
            "alignment": found.alignment,
            # Kept for readers of earlier reports: the stop latency is the yield, and stopped
            # means for good (it yielded and did not resume).
            "stop_latency_ms": yield_ms,
            "stopped": stopped,
            "should_stop": should,
            "correct": correct,
        }


class CallOver(Exception):
    """The call ended (or cannot go on) before the script did."""


class Transferred(CallOver):
    """The agent transferred the call (to a person): the scripted caller's part is over."""
