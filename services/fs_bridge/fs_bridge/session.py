"""One call: FreeSWITCH's audio fork in, the agent's voice out.

The fork's stereo frames are split into the caller's channel (to the ASR gateway, to the
barge-in detector) and the played channel (the echo reference), and written to the call's
stereo recording. Each agent turn is one task: the policy engine's sentences (SSE) go one by one
to the TTS gateway and their audio straight to the call, in streaming mode as L16 frames with a
mark after every sentence (the module reports each mark when it has really been played), in file
mode as ``playAudio`` files played with ``sendmsg … playback``. A barge-in stops playback at
once, cancels the turn (its policy and TTS streams with it) and tells the policy engine exactly
what the caller heard. Every task of the call belongs to its task group, so nothing outlives it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import ValidationError
from starlette.websockets import WebSocket, WebSocketDisconnect

from callkit.audio import WavWriter
from callkit.contracts import live
from callkit.contracts.asr import ServerEvent, SpeechStarted, TranscriptFinal
from callkit.contracts.dialog import (
    Action,
    CallEnded,
    CallStarted,
    DialogError,
    Dtmf,
    Event,
    HangupAction,
    HeardUtterance,
    ReplyDone,
    ReplySentence,
    TransferAction,
    UserInterrupted,
    UserSilence,
    UserUtterance,
)
from callkit.contracts.outcome import CallLatency
from callkit.errors import AgentError
from callkit.events import validation_problems
from fs_bridge.bargein import BargeInDetector, rms
from fs_bridge.clients import AsrStream
from fs_bridge.echo import FRAME, EchoCanceller

if TYPE_CHECKING:
    from fs_bridge.bridge import Bridge

log = logging.getLogger("fs_bridge.call")
RATE = 16000
CHUNK = RATE // 50 * 2 * 2  # 20 ms of stereo L16 at 16 kHz


@dataclass
class Spoken:
    """One sentence sent to the call, and what is known of its playout."""

    text: str
    mark: str
    duration_ms: float
    started_ms: float | None = None  # when its audio began to play (fork timeline)
    played: bool = False


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


@dataclass
class CallSession:
    call_id: str
    ws: WebSocket
    bridge: Bridge
    metadata: dict[str, Any] = field(default_factory=dict)
    t_ms: float = 0.0  # the fork's audio timeline
    hangup_cause: str | None = None
    _spoken: list[Spoken] = field(default_factory=list)
    _marks: int = 0
    _turn: asyncio.Task[None] | None = None
    _pending_interrupt: str | None = None
    _interrupt_at: float = 0.0
    _agent_done_ms: float | None = None
    _last_caller_voice_ms: float = 0.0
    _turn_started_wall: float | None = None
    _first_audio_pending: bool = False
    _ended: asyncio.Event = field(default_factory=asyncio.Event)
    _quiet: asyncio.Event = field(default_factory=asyncio.Event)  # nothing left to play
    _turn_audio_ms: float | None = None  # when the current turn's first audio went out
    _awaiting_final_since: float | None = None  # the recognizer heard speech, no final yet
    _connected_wall: float = field(default_factory=time.monotonic)
    _greeting_measured: bool = False
    _file_waiters: dict[str, asyncio.Future[None]] = field(default_factory=dict)
    # The caller's voice end (fork timeline) of the turn answering them, until its first audio.
    _answering_voice_end_ms: float | None = None
    _v2v_ms: list[float] = field(default_factory=list)
    _barge_ins: int = 0
    _barge_in_stop_ms: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        settings = self.bridge.settings
        self.detector = BargeInDetector(settings.barge_in_config())
        self.echo = EchoCanceller()
        self.audio: asyncio.Queue[bytes] = asyncio.Queue(maxsize=500)
        self.recording: Path = settings.recordings_dir / f"{self.call_id}.wav"
        self.streaming = settings.playback == "stream"

    # ------------------------------------------------------------------ lifecycle

    async def run(self, first: str | bytes | None) -> None:
        self.bridge.metrics.active.inc()
        settings = self.bridge.settings
        settings.recordings_dir.mkdir(parents=True, exist_ok=True)
        recorder = WavWriter(self.recording, RATE, 2)
        language = str(self.metadata.get("language") or settings.language)
        asr = AsrStream(settings.asr_url, self.call_id, language, self.audio, self._on_asr)
        started = self._call_started_event()
        await self._publish(live.LiveCallStarted(call_id=self.call_id, direction=started.direction))
        try:
            async with asyncio.TaskGroup() as group:
                self._group = group
                asr_task = group.create_task(asr.run())
                watch = group.create_task(self._watchdog())
                self._start_turn(started)
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
            self.bridge.metrics.active.dec()
            await self._end()

    def _call_started_event(self) -> CallStarted:
        meta = self.metadata
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
                extra={"call_id": self.call_id, "error": validation_problems(exc)},
            )
            direction = "outbound" if event["direction"] == "outbound" else "inbound"
            return CallStarted(direction=direction)

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
                self._on_text(text)

    def latency(self) -> CallLatency:
        """The call's figures so far, on the fork's audio timeline."""
        return CallLatency(
            v2v_ms=list(self._v2v_ms),
            barge_ins=self._barge_ins,
            barge_in_stop_ms=list(self._barge_in_stop_ms),
        )

    async def _end(self) -> None:
        cause = (self.hangup_cause or "NORMAL_CLEARING")[:64]
        ended = CallEnded(
            cause=cause,
            event_id="call.ended",
            recording_path=str(self.recording),
            latency=self.latency(),
        )
        try:
            async for _ in self.bridge.policy.events(self.call_id, ended):
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

    # ------------------------------------------------------------------ audio in

    def _on_audio(self, data: bytes, recorder: WavWriter) -> None:
        usable = data[: len(data) - len(data) % 4]
        if not usable:
            return
        recorder.write(usable)
        stereo = np.frombuffer(usable, "<i2")
        caller, played = stereo[0::2], stereo[1::2]
        to_asr: list[bytes] = []
        for i in range(0, caller.size, FRAME):
            chunk, reference = caller[i : i + FRAME], played[i : i + FRAME]
            caller_level, played_level = rms(chunk.tobytes()), rms(reference.tobytes())
            self.t_ms += chunk.size / RATE * 1000
            speaking = self._agent_speaking()
            if self.detector.feed(caller_level, played_level, speaking):
                self._group.create_task(self._interrupt(self.detector.last_interruption_ms))
            if self.detector.last_voiced:
                self._last_caller_voice_ms = self.t_ms
            # The recognizer gets the caller channel with the agent's echo removed (the played
            # channel is the reference); whether the agent is speaking changes nothing, so the
            # caller's quiet syllables over the agent are never cut.
            to_asr.append(self.echo.process(chunk, reference))
        if self.audio.full():
            self.audio.get_nowait()  # the ASR fell behind: drop the oldest audio, keep the call
        self.audio.put_nowait(b"".join(to_asr))

    def _on_text(self, text: str) -> None:
        try:
            message = json.loads(text)
        except json.JSONDecodeError:
            if not self.metadata:
                self.metadata = {"raw": text}
            return
        if not isinstance(message, dict):
            return
        if message.get("type") == "mark" and isinstance(message.get("data"), dict):
            self._on_mark(str(message["data"].get("name")), str(message["data"].get("event")))

    # ------------------------------------------------------------------ playout bookkeeping

    def _agent_speaking(self) -> bool:
        return any(not s.played for s in self._spoken)

    def _on_mark(self, name: str, event: str) -> None:
        for i, spoken in enumerate(self._spoken):
            if spoken.mark == name and not spoken.played:
                spoken.played = True
                if event == "playout" and i + 1 < len(self._spoken):
                    nxt = self._spoken[i + 1]
                    if nxt.started_ms is None:
                        nxt.started_ms = self.t_ms
                break
        if not self._agent_speaking():
            self._agent_done_ms = self.t_ms
            self._quiet.set()

    def heard_text(self) -> str:
        return heard_text(self._spoken, self.t_ms)

    # ------------------------------------------------------------------ agent turns

    def _start_turn(self, event: Event, *, answering_voice_end_ms: float | None = None) -> None:
        """Run the agent's turn for ``event``; ``answering_voice_end_ms``: it answers the
        caller's words that ended then (the turn's voice-to-voice time is measured from it)."""
        if self._turn is not None and not self._turn.done():
            self._turn.cancel()
        self._answering_voice_end_ms = answering_voice_end_ms
        self._spoken = []
        self._quiet.set()
        self._agent_done_ms = None
        self._turn_audio_ms = None
        self._turn_started_wall = time.monotonic()
        self._first_audio_pending = True
        self._turn = self._group.create_task(self._agent_turn(event))

    async def _agent_turn(self, event: Event) -> None:
        actions: list[Action] = []
        try:
            async for reply in self.bridge.policy.events(self.call_id, event):
                if isinstance(reply, ReplySentence):
                    await self._say(reply.text)
                elif isinstance(reply, ReplyDone):
                    actions = list(reply.actions)
                elif isinstance(reply, DialogError):
                    log.warning("policy engine error mid-turn", extra={"code": reply.code})
        except AgentError as exc:
            log.warning("agent turn failed", extra={"call_id": self.call_id, "error": exc.message})
            await self._apologize()
        await self._quiet.wait()
        self._agent_done_ms = self.t_ms
        for action in actions:
            if isinstance(action, HangupAction):
                await self.bridge.control(f"uuid_kill {self.call_id} NORMAL_CLEARING")
            elif isinstance(action, TransferAction):
                target = action.target.strip()
                if target:
                    await self.bridge.control(f"uuid_transfer {self.call_id} {target}")

    async def _apologize(self) -> None:
        text = self.bridge.settings.apology_text
        with contextlib.suppress(AgentError):
            await self._say(text)

    async def _say(self, text: str) -> None:
        if not text:
            return
        self._marks += 1
        mark = f"s{self._marks}"
        sent = 0
        chunks: list[bytes] = []
        spoken = Spoken(text=text, mark=mark, duration_ms=0.0)
        idle = not self._agent_speaking()
        self._spoken.append(spoken)
        self._quiet.clear()
        async for chunk in self.bridge.tts.speak(text, RATE):
            if self.streaming:
                if sent == 0:
                    if idle:
                        spoken.started_ms = self.t_ms
                    self._note_first_audio()
                await self.ws.send_bytes(chunk)
            else:
                chunks.append(chunk)
            sent += len(chunk)
        spoken.duration_ms = sent / 2 / RATE * 1000
        await self._publish(live.AgentSentence(call_id=self.call_id, text=text))
        if self.streaming:
            await self.ws.send_text(json.dumps({"type": "mark", "data": {"name": mark}}))
            return
        await self._play_file(spoken, b"".join(chunks), idle)

    async def _play_file(self, spoken: Spoken, pcm: bytes, idle: bool) -> None:
        """File mode (upstream mod_audio_fork): playAudio writes a file, we play it."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._file_waiters[spoken.mark] = waiter
        await self.ws.send_text(
            json.dumps(
                {
                    "type": "playAudio",
                    "data": {
                        "audioContentType": "raw",
                        "sampleRate": RATE,
                        "audioContent": base64.b64encode(pcm).decode(),
                        "textContent": spoken.mark,
                    },
                }
            )
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(waiter, 5)
        self._note_first_audio()
        if idle and spoken.started_ms is None:
            spoken.started_ms = self.t_ms
        # The playback's duration is known; its end marks the sentence played.
        self._group.create_task(self._file_played(spoken))

    async def _file_played(self, spoken: Spoken) -> None:
        started = spoken.started_ms if spoken.started_ms is not None else self.t_ms
        while not spoken.played and self.t_ms < started + spoken.duration_ms:  # noqa: ASYNC110 (the fork's timeline advances with its frames; there is no event to wait on)
            await asyncio.sleep(0.02)
        self._on_mark(spoken.mark, "playout")

    def on_play_audio(self, body: str) -> None:
        """ESL mod_audio_fork::play_audio: the file is written; play it in order."""
        try:
            data = json.loads(body)
        except json.JSONDecodeError:
            return
        mark, path = data.get("textContent"), data.get("file")
        if not path:
            return
        self._group.create_task(self.bridge.playback(self.call_id, str(path)))
        waiter = self._file_waiters.pop(str(mark), None)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _note_first_audio(self) -> None:
        if self._turn_audio_ms is None:
            self._turn_audio_ms = self.t_ms
        if self._answering_voice_end_ms is not None:
            self._v2v_ms.append(round(max(0.0, self.t_ms - self._answering_voice_end_ms), 1))
            self._answering_voice_end_ms = None
        if not self._first_audio_pending or self._turn_started_wall is None:
            return
        self._first_audio_pending = False
        seconds = time.monotonic() - self._turn_started_wall
        if not self._greeting_measured:
            self._greeting_measured = True
            self.bridge.metrics.greeting.observe(time.monotonic() - self._connected_wall)
        else:
            self.bridge.metrics.turn_first_audio.observe(seconds)

    # ------------------------------------------------------------------ barge-in

    async def _interrupt(self, stop_ms: float | None = None) -> str | None:
        """Stop the agent now; what the caller heard of its turn (None if it was silent).

        ``stop_ms``: from the caller's voice onset to this stop, when the detector knows it.
        """
        if not self._agent_speaking():
            return None
        heard = self.heard_text()
        self._pending_interrupt = heard
        self._interrupt_at = time.monotonic()
        if self._turn is not None:
            self._turn.cancel()
        for spoken in self._spoken:
            spoken.played = True
        self._quiet.set()
        self._agent_done_ms = self.t_ms
        with contextlib.suppress(Exception):
            await self.ws.send_text(json.dumps({"type": "killAudio"}))
        if not self.streaming:
            await self.bridge.control(f"uuid_break {self.call_id} all", slow=False)
        self.bridge.metrics.barge_ins.inc()
        self._barge_ins += 1
        if stop_ms is not None:
            self._barge_in_stop_ms.append(float(stop_ms))
        await self._publish(
            live.BargeIn(call_id=self.call_id, heard_words=len(heard.split()), stop_ms=stop_ms)
        )
        return heard

    # ------------------------------------------------------------------ the caller's words

    async def _on_asr(self, event: ServerEvent) -> None:
        if isinstance(event, SpeechStarted):
            self._last_caller_voice_ms = self.t_ms
            self._awaiting_final_since = time.monotonic()
        if not isinstance(event, TranscriptFinal):
            return
        self._awaiting_final_since = None
        text = event.text.strip()
        if not text:
            return
        segment = f"{self.call_id}:{event.segment_id}:{round(self.t_ms)}"
        utterance = HeardUtterance(text=text, segment_id=segment)
        voice_end = self._last_caller_voice_ms
        await self._publish(live.CallerFinal(call_id=self.call_id, text=text))
        if self._pending_interrupt is not None:
            heard, self._pending_interrupt = self._pending_interrupt, None
            self._start_turn(
                UserInterrupted(heard_text=heard, utterance=utterance),
                answering_voice_end_ms=voice_end,
            )
        elif self._agent_speaking():
            if self._turn_audio_ms is not None and self._caller_voice_before_turn():
                # The caller spoke before this turn's audio began (a reprompt crossed their
                # answer): stop it and take the answer, reporting what was heard of it.
                cut = await self._interrupt()
                if cut is not None:
                    self._pending_interrupt = None
                    self._start_turn(
                        UserInterrupted(heard_text=cut, utterance=utterance),
                        answering_voice_end_ms=voice_end,
                    )
                return
            # Words over the agent that were no interruption: a backchannel. The agent goes on.
            return
        else:
            self._start_turn(
                UserUtterance(text=text, segment_id=segment), answering_voice_end_ms=voice_end
            )

    def _caller_voice_before_turn(self) -> bool:
        return self._turn_audio_ms is not None and self._last_caller_voice_ms < self._turn_audio_ms

    def on_dtmf(self, digit: str) -> None:
        try:
            event = Dtmf(digits=digit)
        except ValidationError:
            log.warning("DTMF event with an unknown digit ignored", extra={"call_id": self.call_id})
            return
        self._start_turn(event)

    # ------------------------------------------------------------------ timers

    async def _watchdog(self) -> None:
        settings = self.bridge.settings
        while True:
            await asyncio.sleep(0.25)
            if self.t_ms >= settings.max_call_s * 1000:
                log.info("call reached its maximum length", extra={"call_id": self.call_id})
                await self.bridge.control(f"uuid_kill {self.call_id} NORMAL_CLEARING")
                return
            if (
                self._pending_interrupt is not None
                and time.monotonic() - self._interrupt_at > settings.interrupt_wait_s
            ):
                heard, self._pending_interrupt = self._pending_interrupt, None
                self._start_turn(UserInterrupted(heard_text=heard))
                continue
            turn_running = self._turn is not None and not self._turn.done()
            if turn_running or self._agent_done_ms is None or self._pending_interrupt is not None:
                continue
            if (
                self._awaiting_final_since is not None
                and time.monotonic() - self._awaiting_final_since < settings.interrupt_wait_s * 3
            ):
                continue  # the caller spoke and the recognizer is still on it: not silence
            quiet_since = max(self._agent_done_ms, self._last_caller_voice_ms)
            if self.t_ms - quiet_since >= settings.silence_s * 1000:
                # The contract caps a silence at an hour; a longer call reports that much.
                seconds = min(3600.0, round((self.t_ms - quiet_since) / 1000, 1))
                self._start_turn(
                    UserSilence(seconds=seconds, event_id=f"silence-{round(self.t_ms)}")
                )

    # ------------------------------------------------------------------ events

    async def _publish(self, event: live.LiveEvent) -> None:
        """A live event of this call, stamped with the fork's audio time."""
        await self.bridge.publish(event.model_copy(update={"t_ms": round(self.t_ms)}))


SessionFactory = Callable[..., CallSession]
