"""One call: FreeSWITCH's audio fork in, the agent's voice out; the shell around the turn-taking core.

The core (``turns.TurnTaker``) decides; this shell does the I/O. It reads the fork: binary
messages become 16 kHz frames of the caller and played channels (``fork_audio``), written to the
call's stereo recording as they came and fed to the core; text frames are the module's marks.
It runs what the core returns: the caller's audio to the ASR gateway, the agent's turns, stopping
playback, hanging up, the latency metrics. Each agent turn is one task: the policy engine's
sentences (SSE) go one by one to the TTS gateway at the fork's rate and their audio straight to
the call, in streaming mode as L16 frames with a mark after every sentence (the module reports
each mark when it has really been played), in file mode as ``playAudio`` files played with
``sendmsg … playback``. The caller's voice over the agent makes it yield at once: the shell
clears what the switch buffered (``killAudio``; ``uuid_break`` in file mode) and holds back the
turn's audio, which it keeps per sentence. A backchannel resumes it: the unplayed audio goes out
again, the cut sentence from the start of the word the caller stopped hearing. A real
interruption cancels the turn (its policy and TTS streams with it); the core tells the policy
engine exactly what the caller heard. Every task of
the call belongs to its task group, so nothing outlives it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pydantic import ValidationError
from starlette.websockets import WebSocket, WebSocketDisconnect

from callkit import audiofork
from callkit.audio import WavWriter
from callkit.contracts import live
from callkit.contracts.asr import ServerEvent, TranscriptFinal
from callkit.contracts.dialog import (
    Action,
    CallEnded,
    CallStarted,
    DialogError,
    Dtmf,
    Event,
    HangupAction,
    ReplyDone,
    ReplySentence,
    SseEvent,
    TransferAction,
)
from callkit.contracts.outcome import CallLatency
from callkit.errors import AgentError, InvalidInput
from callkit.events import validation_problems
from callkit.vad import VadStream
from fs_bridge.amd import AnsweringMachineDetector
from fs_bridge.bargein import BargeInDetector
from fs_bridge.echo import EchoCanceller
from fs_bridge.fork_audio import ForkAudio
from fs_bridge.metrics import BridgeMetrics
from fs_bridge.settings import BridgeSettings
from fs_bridge.turns import Action as TurnAction
from fs_bridge.turns import (
    Decided,
    HangUp,
    Measure,
    Prompt,
    Recognize,
    Resume,
    Spoken,
    StartTurn,
    StopPlayback,
    TurnConfig,
    TurnTaker,
    Yield,
    heard_text,
    resume_point,
)

__all__ = ["CallServices", "CallSession", "Recognizer", "Spoken", "heard_text"]

log = logging.getLogger("fs_bridge.call")
TICK_S = 0.25


class Recognizer(Protocol):
    """The caller's audio to the ASR gateway for as long as the call lasts (``clients.AsrStream``)."""

    async def run(self) -> None: ...


class Policy(Protocol):
    def events(self, session_id: str, event: Event) -> AsyncIterator[SseEvent]: ...


class Speech(Protocol):
    def speak(
        self, text: str, sample_rate: int = 16000, language: str | None = None
    ) -> AsyncIterator[bytes]: ...


class CallServices(Protocol):
    """What a call needs of the bridge: its settings and metrics, the services, the switch."""

    @property
    def settings(self) -> BridgeSettings: ...

    @property
    def metrics(self) -> BridgeMetrics: ...

    @property
    def policy(self) -> Policy: ...

    @property
    def tts(self) -> Speech: ...

    def recognizer(
        self,
        call_id: str,
        language: str,
        audio: asyncio.Queue[bytes],
        on_event: Callable[[ServerEvent], Awaitable[None]],
    ) -> Recognizer: ...

    async def control(self, command: str, *, slow: bool = True) -> str: ...

    async def playback(self, call_id: str, path: str) -> None: ...

    async def publish(self, event: live.LiveEvent) -> None: ...

    def answering_machine_detector(self, language: str) -> AnsweringMachineDetector | None:
        """A detector for an outbound call in ``language``; None when detection is off."""
        ...

    def listening_line(self, language: str) -> str | None:
        """The short line said to a callee who is silent before the verdict ("Hello?")."""
        ...

    def speech_detector(self) -> VadStream | None:
        """A call's own stream over the shared speech detector; None when it is off."""
        ...

    def backchannels(self, language: str) -> frozenset[str]:
        """The words that are a listener's feedback in ``language`` ("uh-huh", "okay")."""
        ...

    def unfinished(self, language: str) -> frozenset[tuple[str, ...]]:
        """The endings that leave the caller's words unfinished ("my name is", "and")."""
        ...


def call_started(call_id: str, metadata: audiofork.ForkMetadata) -> CallStarted:
    """The policy engine's call.started from the dialplan's metadata."""
    meta = metadata.values
    event: dict[str, Any] = {
        "direction": meta.get("direction", "inbound"),
        "caller": meta.get("caller"),
        "callee": meta.get("callee"),
    }
    if meta.get("campaign_id"):
        event["campaign_id"] = meta["campaign_id"]
    if isinstance(meta.get("contact"), dict):
        event["contact"] = meta["contact"]
    if meta.get("locale") or meta.get("language"):
        event["locale"] = meta.get("locale") or meta.get("language")
    try:
        return CallStarted.model_validate(event)
    except ValidationError as exc:
        # The fork's metadata is the dialplan's; a bad field costs that field, not the call.
        log.warning(
            "call metadata does not fit call.started; sending the call without it",
            extra={"call_id": call_id, "error": validation_problems(exc)},
        )
        direction = "outbound" if event["direction"] == "outbound" else "inbound"
        return CallStarted(direction=direction)


@dataclass
class CallSession:
    call_id: str
    ws: WebSocket
    services: CallServices
    metadata: audiofork.ForkMetadata = field(default_factory=audiofork.ForkMetadata)
    hangup_cause: str | None = None
    _turn: asyncio.Task[None] | None = None
    _turn_id: int = 0
    _ended: asyncio.Event = field(default_factory=asyncio.Event)
    _quiet: asyncio.Event = field(default_factory=asyncio.Event)  # nothing left to play
    _file_waiters: dict[str, asyncio.Future[None]] = field(default_factory=dict)
    # The current turn's audio per sentence (``Spoken.key``), as the TTS gateway sent it, and
    # how much of it went to the call since it was (re)started; kept so a yield can resume it.
    _pcm: dict[str, bytearray] = field(default_factory=dict)
    _sent: dict[str, int] = field(default_factory=dict)
    _complete: set[str] = field(default_factory=set)  # sentences whose audio is all here
    _marked: set[str] = field(default_factory=set)  # marks (or files) sent to the switch
    _out: set[str] = field(default_factory=set)  # marks whose first audio was reported
    _paused: bool = False  # the agent yielded: nothing goes out until it resumes or stops
    _connected_s: float = 0.0

    def __post_init__(self) -> None:
        settings = self.services.settings
        config = TurnConfig(
            silence_s=settings.silence_s,
            max_call_s=settings.max_call_s,
            interrupt_wait_s=settings.interrupt_wait_s,
            dtmf_digit_pause_s=settings.dtmf_digit_pause_s,
        )
        meta = self.metadata.values
        # The call's language (the dialplan's or the campaign's locale, "ru-RU" is ru), else the
        # bridge's: the recognizer, the voice and the phrases follow it.
        locale = meta.get("language") or meta.get("locale") or settings.language
        self.language = str(locale).split("-")[0].split("_")[0].lower() or settings.language
        outbound = self.metadata.values.get("direction") == "outbound"
        self.core = TurnTaker(
            self.call_id,
            config,
            BargeInDetector(settings.barge_in_config()),
            EchoCanceller(),
            amd=self.services.answering_machine_detector(self.language) if outbound else None,
            vad=self.services.speech_detector(),
            backchannels=self.services.backchannels(self.language),
            unfinished=self.services.unfinished(self.language),
        )
        self._send_lock = asyncio.Lock()
        self.rate = self.metadata.sample_rate  # the fork's frames and the agent's audio
        self.fork_audio = ForkAudio(self.rate)
        self.audio: asyncio.Queue[bytes] = asyncio.Queue(maxsize=500)
        self.recording: Path = settings.recordings_dir / f"{self.call_id}.wav"
        self.streaming = settings.playback == "stream"
        self._quiet.set()

    @property
    def t_ms(self) -> float:
        return self.core.t_ms

    @property
    def echo(self) -> EchoCanceller:
        return self.core.echo

    # ------------------------------------------------------------------ lifecycle

    async def run(self, first: str | bytes | None) -> None:
        self._connected_s = time.monotonic()
        services = self.services
        services.metrics.active.inc()
        settings = services.settings
        settings.recordings_dir.mkdir(parents=True, exist_ok=True)
        recorder = WavWriter(self.recording, self.rate, 2)
        asr = services.recognizer(self.call_id, self.language, self.audio, self._on_asr)
        started = call_started(self.call_id, self.metadata)
        log.debug(
            "call started",
            extra={"call_id": self.call_id, "caller": started.caller, "callee": started.callee},
        )
        await self._publish(
            live.LiveCallStarted(
                call_id=self.call_id, direction=started.direction, campaign_id=started.campaign_id
            )
        )
        try:
            async with asyncio.TaskGroup() as group:
                self._group = group
                asr_task = group.create_task(asr.run())
                watch = group.create_task(self._watchdog())
                await self._execute(self.core.start(started, time.monotonic()))
                try:
                    if isinstance(first, bytes):
                        self._on_audio(first, recorder)
                    await self._read(recorder)
                finally:
                    self._ended.set()
                    asr_task.cancel()
                    watch.cancel()
                    if self._turn is not None:
                        self._turn.cancel()
        finally:
            recorder.close()
            services.metrics.active.dec()
            await self._end()

    async def _read(self, recorder: WavWriter) -> None:
        while True:
            try:
                message = await self.ws.receive()
            except (WebSocketDisconnect, RuntimeError):
                return
            if message["type"] == "websocket.disconnect":
                return
            data = message.get("bytes")
            if data is not None:
                self._on_audio(data, recorder)
                continue
            text = message.get("text")
            if text:
                reply = audiofork.parse_mark_reply(text)
                if reply is not None:
                    self.core.on_mark(reply.name, reply.event)
                    self._sync_quiet()

    def latency(self) -> CallLatency:
        """The call's figures so far, on the fork's audio timeline."""
        return CallLatency(
            v2v_ms=list(self.core.v2v_ms),
            first_audio_ms=self.core.first_audio_ms,
            barge_ins=self.core.barge_ins,
            barge_in_stop_ms=list(self.core.barge_in_stop_ms),
        )

    async def _end(self) -> None:
        cause = (self.hangup_cause or "NORMAL_CLEARING")[:64]
        held = self.core.release()
        if held is not None:
            # Hung up before the verdict was acted on (a box that stopped recording, a person
            # who gave up): the policy engine still learns the call, and who answered it.
            try:
                async for _ in self.services.policy.events(self.call_id, held):
                    pass
            except AgentError as exc:
                log.warning(
                    "could not tell the policy engine the call started",
                    extra={"error": exc.message},
                )
        ended = CallEnded(
            cause=cause,
            event_id="call.ended",
            recording_path=str(self.recording),
            latency=self.latency(),
        )
        try:
            async for _ in self.services.policy.events(self.call_id, ended):
                pass
        except AgentError as exc:
            log.warning(
                "could not tell the policy engine the call ended", extra={"error": exc.message}
            )
        await self._publish(
            live.LiveCallEnded(
                call_id=self.call_id, cause=cause, recording_path=str(self.recording)
            )
        )
        path = self.echo.path
        log.info(
            "call ended",
            extra={
                "call_id": self.call_id,
                "cause": cause,
                "ms": round(self.t_ms),
                "echo_delay_ms": None if path is None else round(path.delay_ms, 1),
                "echo_gain_db": None if path is None else round(path.gain_db, 1),
                "echo_suppressed_frames": self.echo.suppressed_frames,
            },
        )

    # ------------------------------------------------------------------ running the core's actions

    def _on_audio(self, data: bytes, recorder: WavWriter) -> None:
        frames = self.fork_audio.feed(data)
        if frames.stereo:
            recorder.write(frames.stereo)
        if not frames.caller.size:
            return
        actions = self.core.feed(frames.caller, frames.played, time.monotonic())
        rest: list[TurnAction] = []
        for action in actions:
            if isinstance(action, Recognize):
                self._recognize(action.pcm)
                continue
            if isinstance(action, StopPlayback):
                self._cancel_turn(action.turn)  # now, before anything else runs: the rest is I/O
            if isinstance(action, Yield):
                self._paused = True  # now: no more of the turn's audio goes out
            rest.append(action)
        self._sync_quiet()
        if rest:
            self._group.create_task(self._execute(rest))

    def _recognize(self, pcm: bytes) -> None:
        if self.audio.full():
            self.audio.get_nowait()  # the ASR fell behind: drop the oldest audio, keep the call
        self.audio.put_nowait(pcm)

    async def _execute(self, actions: Sequence[TurnAction]) -> None:
        for action in actions:
            if isinstance(action, StartTurn):
                self._start_turn(action)
            elif isinstance(action, StopPlayback):
                await self._stop_playback(action)
            elif isinstance(action, Yield):
                await self._yield(action)
            elif isinstance(action, Resume):
                await self._resume(action)
            elif isinstance(action, Measure):
                metrics = self.services.metrics
                greeting = action.metric == "greeting"
                (metrics.greeting if greeting else metrics.turn_first_audio).observe(action.seconds)
            elif isinstance(action, HangUp):
                log.info("call reached its maximum length", extra={"call_id": self.call_id})
                await self.services.control(f"uuid_kill {self.call_id} NORMAL_CLEARING")
            elif isinstance(action, Recognize):
                self._recognize(action.pcm)
            elif isinstance(action, Prompt):
                line = self.services.listening_line(self.language)
                if line:
                    self._group.create_task(self._say_safely(line))
            elif isinstance(action, Decided):
                self._decided(action)
        self._sync_quiet()

    async def _say_safely(self, text: str) -> None:
        try:
            await self._say(text)
        except (AgentError, WebSocketDisconnect, RuntimeError) as exc:
            log.warning("could not say the listening line", extra={"error": str(exc)})

    def _decided(self, action: Decided) -> None:
        verdict = action.verdict
        metrics = self.services.metrics
        metrics.amd_verdicts.labels(verdict.answered_by, verdict.cue).inc()
        metrics.amd_seconds.observe(verdict.at_ms / 1000)
        log.info(
            "answered by",
            extra={
                "call_id": self.call_id,
                "answered_by": verdict.answered_by,
                "cue": verdict.cue,
                "ms": round(verdict.at_ms),
            },
        )

    def _sync_quiet(self) -> None:
        if self.core.agent_speaking:
            self._quiet.clear()
        else:
            self._quiet.set()

    # ------------------------------------------------------------------ agent turns

    def _start_turn(self, action: StartTurn) -> None:
        if self._turn is not None and not self._turn.done():
            self._turn.cancel()
        self._paused = False
        for kept in (self._pcm, self._sent):
            kept.clear()
        for names in (self._complete, self._marked, self._out):
            names.clear()
        self._sync_quiet()
        self._turn_id = action.turn
        self._turn = self._group.create_task(self._agent_turn(action))

    async def _agent_turn(self, turn: StartTurn) -> None:
        actions: list[Action] = []
        try:
            async for reply in self.services.policy.events(self.call_id, turn.event):
                if isinstance(reply, ReplySentence):
                    log.debug(
                        "agent sentence", extra={"call_id": self.call_id, "sentence": reply.text}
                    )
                    await self._say(reply.text)
                elif isinstance(reply, ReplyDone):
                    actions = list(reply.actions)
                elif isinstance(reply, DialogError):
                    log.warning("policy engine error mid-turn", extra={"code": reply.code})
        except AgentError as exc:
            log.warning("agent turn failed", extra={"call_id": self.call_id, "error": exc.message})
            await self._apologize()
        await self._quiet.wait()
        self.core.turn_ended(turn.turn)
        for action in actions:
            if isinstance(action, HangupAction):
                await self.services.control(f"uuid_kill {self.call_id} NORMAL_CLEARING")
            elif isinstance(action, TransferAction):
                target = action.target.strip()
                if target:
                    await self.services.control(f"uuid_transfer {self.call_id} {target}")

    async def _apologize(self) -> None:
        text = self.services.settings.apology_text
        with contextlib.suppress(AgentError):
            await self._say(text)

    async def _say(self, text: str) -> None:
        if not text:
            return
        key = self.core.sentence(text)
        self._sync_quiet()
        audio = self._pcm[key] = bytearray()
        self._sent[key] = 0
        async for chunk in self.services.tts.speak(text, self.rate, self.language):
            audio += chunk
            if self.streaming:
                await self._send(key)
        self.core.sentence_length(key, len(audio) / 2 / self.rate * 1000)
        self._complete.add(key)
        await self._publish(live.AgentSentence(call_id=self.call_id, text=text))
        await self._send(key)

    async def _send(self, key: str) -> None:
        """What is here of the sentence and not yet sent, unless the agent yielded: streamed
        audio (its mark once it is complete), or in file mode the whole sentence as one file."""
        async with self._send_lock:
            mark = self.core.mark_of(key)
            if self._paused or mark is None or mark in self._marked:
                return
            audio, sent = self._pcm[key], self._sent[key]
            if not self.streaming:
                if key in self._complete:
                    self._marked.add(mark)
                    await self._play_file(mark, bytes(audio[sent:]), sent)
                return
            if sent < len(audio):
                if mark not in self._out:
                    self._out.add(mark)
                    from_ms = sent / 2 / self.rate * 1000
                    await self._execute(
                        self.core.audio_out(mark, time.monotonic(), from_ms=from_ms)
                    )
                step = self.rate  # half a second of L16 per message
                for at in range(sent, len(audio), step):
                    if self._holding():
                        return  # the caller's voice came in meanwhile: the rest waits
                    piece = bytes(audio[at : at + step])
                    await self.ws.send_bytes(piece)
                    self._sent[key] = at + len(piece)
            if key in self._complete and not self._holding():
                # Never after a yield: the switch would play the mark out and the sentence
                # would count as heard.
                self._marked.add(mark)
                await self.ws.send_text(audiofork.mark(mark))

    def _holding(self) -> bool:
        """Whether the agent has yielded (it may have while a send was awaited)."""
        return self._paused

    async def _yield(self, action: Yield) -> None:
        """The caller's voice began over the agent: silence now, the turn's audio kept."""
        if action.turn != self._turn_id:
            return
        with contextlib.suppress(Exception):
            await self.ws.send_text(audiofork.encode(audiofork.KillAudio()))
        if not self.streaming:
            await self.services.control(f"uuid_break {self.call_id} all", slow=False)
        self.services.metrics.yields.inc()
        # How far the fork's audio timeline is behind the wall clock: a bridge that reads the
        # fork late yields late, whatever its detector decides.
        behind_ms = (time.monotonic() - self._connected_s) * 1000 - self.t_ms
        log.debug(
            "agent yielded",
            extra={
                "call_id": self.call_id,
                "onset_ms": round(action.onset_ms),
                "ms": round(self.t_ms),
                "fork_behind_ms": round(behind_ms),
            },
        )

    async def _resume(self, action: Resume) -> None:
        """A backchannel: the unplayed sentences go out again, in order; the one that was cut
        from the start of the word the caller stopped hearing."""
        if action.turn != self._turn_id or not self._paused:
            return
        for sentence in action.sentences:
            audio = self._pcm.get(sentence.key)
            if audio is None:
                continue
            self._sent[sentence.key] = resume_point(bytes(audio), self.rate, sentence.from_ms)
        self._paused = False
        self.services.metrics.resumes.inc()
        for sentence in action.sentences:
            if sentence.key in self._pcm:
                await self._send(sentence.key)

    async def _play_file(self, mark: str, pcm: bytes, sent: int = 0) -> None:
        """File mode (upstream mod_audio_fork): playAudio writes a file, we play it; ``sent``:
        the file starts that many bytes into the sentence (a resumption)."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._file_waiters[mark] = waiter
        play = audiofork.PlayAudio(
            data=audiofork.PlayAudioData(
                audio_content_type="raw",
                sample_rate=self.rate,
                audio_content=base64.b64encode(pcm).decode(),
                text_content=mark,
            )
        )
        await self.ws.send_text(audiofork.encode(play))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(waiter, 5)
        # The playback's duration is known; the core marks it played when that much has passed.
        from_ms = sent / 2 / self.rate * 1000
        await self._execute(self.core.file_playing(mark, time.monotonic(), from_ms=from_ms))

    def on_play_audio(self, body: str) -> None:
        """ESL mod_audio_fork::play_audio: the file is written; play it in order."""
        try:
            event = audiofork.parse_play_audio_event(body)
        except InvalidInput:
            return
        if not event.file:
            return
        self._group.create_task(self.services.playback(self.call_id, event.file))
        waiter = self._file_waiters.pop(str(event.text_content), None)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # ------------------------------------------------------------------ barge-in

    def _cancel_turn(self, turn: int) -> None:
        # A turn started since the stop was decided (the caller's words) is not the one stopped.
        if self._turn is not None and self._turn_id == turn:
            self._turn.cancel()

    async def _stop_playback(self, stop: StopPlayback) -> None:
        self._cancel_turn(stop.turn)
        self._sync_quiet()
        with contextlib.suppress(Exception):
            await self.ws.send_text(audiofork.encode(audiofork.KillAudio()))
        if not self.streaming:
            await self.services.control(f"uuid_break {self.call_id} all", slow=False)
        if not stop.barge_in:
            return
        self.services.metrics.barge_ins.inc()
        await self._publish(
            live.BargeIn(
                call_id=self.call_id, heard_words=len(stop.heard.split()), stop_ms=stop.stop_ms
            )
        )

    # ------------------------------------------------------------------ the caller's words

    async def _on_asr(self, event: ServerEvent) -> None:
        if isinstance(event, TranscriptFinal) and event.text.strip():
            log.debug("caller heard", extra={"call_id": self.call_id, "text": event.text})
            await self._publish(live.CallerFinal(call_id=self.call_id, text=event.text.strip()))
        await self._execute(self.core.on_transcript(event, time.monotonic()))

    def on_beep(self) -> None:
        """ESL avmd::beep: the voicemail's tone; its message can go on the recording now."""
        actions = self.core.on_beep(time.monotonic())
        if actions:
            self._group.create_task(self._execute(actions))

    def on_dtmf(self, digit: str) -> None:
        """A key the switch reported: the core collects it; the digits' turn starts on ``#``,
        or from the watchdog's tick once the caller pauses."""
        try:
            event = Dtmf(digits=digit)
        except ValidationError:
            log.warning("DTMF event with an unknown digit ignored", extra={"call_id": self.call_id})
            return
        for action in self.core.on_dtmf(event, time.monotonic()):
            if isinstance(action, StartTurn):
                self._start_turn(action)

    # ------------------------------------------------------------------ timers

    async def _watchdog(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            await self._execute(self.core.tick(time.monotonic()))

    # ------------------------------------------------------------------ events

    async def _publish(self, event: live.LiveEvent) -> None:
        """A live event of this call, stamped with the fork's audio time."""
        await self.services.publish(event.model_copy(update={"t_ms": round(self.t_ms)}))
