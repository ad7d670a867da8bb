"""One call: FreeSWITCH's audio fork in, the agent's voice out; the shell around the turn-taking core.

The core (``turns.TurnTaker``) decides; this shell does the I/O. It reads the fork: binary
messages become 16 kHz frames of the caller and played channels (``fork_audio``), written to the
call's stereo recording as they came and fed to the core; text frames are the module's marks.
It runs what the core returns: the caller's audio to the ASR gateway, the agent's turns, stopping
playback, hanging up, the latency metrics. Each agent turn is one task: the policy engine's
sentences (SSE) go one by one to the TTS gateway at the fork's rate and their audio straight to
the call, in streaming mode as L16 frames with a mark after every sentence (the module reports
each mark when it has really been played), in file mode as ``playAudio`` files played with
``sendmsg … playback``. A barge-in stops playback at once, cancels the turn (its policy and TTS
streams with it); the core tells the policy engine exactly what the caller heard. Every task of
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
    Spoken,
    StartTurn,
    StopPlayback,
    TurnConfig,
    TurnTaker,
    heard_text,
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
    def speak(self, text: str, sample_rate: int = 16000) -> AsyncIterator[bytes]: ...


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

    def __post_init__(self) -> None:
        settings = self.services.settings
        config = TurnConfig(
            silence_s=settings.silence_s,
            max_call_s=settings.max_call_s,
            interrupt_wait_s=settings.interrupt_wait_s,
            dtmf_digit_pause_s=settings.dtmf_digit_pause_s,
        )
        self.language = str(self.metadata.values.get("language") or settings.language)
        outbound = self.metadata.values.get("direction") == "outbound"
        self.core = TurnTaker(
            self.call_id,
            config,
            BargeInDetector(settings.barge_in_config()),
            EchoCanceller(),
            amd=self.services.answering_machine_detector(self.language) if outbound else None,
        )
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
        mark = self.core.sentence(text)
        self._sync_quiet()
        sent = 0
        chunks: list[bytes] = []
        async for chunk in self.services.tts.speak(text, self.rate):
            if self.streaming:
                if sent == 0:
                    await self._execute(self.core.audio_out(mark, time.monotonic()))
                await self.ws.send_bytes(chunk)
            else:
                chunks.append(chunk)
            sent += len(chunk)
        self.core.sentence_length(mark, sent / 2 / self.rate * 1000)
        await self._publish(live.AgentSentence(call_id=self.call_id, text=text))
        if self.streaming:
            await self.ws.send_text(audiofork.mark(mark))
            return
        await self._play_file(mark, b"".join(chunks))

    async def _play_file(self, mark: str, pcm: bytes) -> None:
        """File mode (upstream mod_audio_fork): playAudio writes a file, we play it."""
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
        await self._execute(self.core.file_playing(mark, time.monotonic()))

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
