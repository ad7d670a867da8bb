"""The bridge's shared parts: settings, service clients, the Event Socket, the calls in progress,
and admission: a call beyond ``BRIDGE_MAX_CALLS`` is refused with the busy phrase (``busy``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import httpx
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis
from redis.exceptions import RedisError

from callkit.contracts import live
from callkit.contracts.asr import ServerEvent
from callkit.errors import AgentError, ConfigError
from callkit.esl import Event
from callkit.vad import VadModel, VadStream
from fs_bridge.amd import AmdConfig, AnsweringMachineDetector, MachinePhrases
from fs_bridge.amd import load_phrases as load_amd_phrases
from fs_bridge.busy import BusyLine, Phrases
from fs_bridge.clients import AsrStream, PolicyClient, TtsClient
from fs_bridge.esl import EventSocketFactory, connect_event_socket
from fs_bridge.load import LoadReporter
from fs_bridge.metrics import BridgeMetrics
from fs_bridge.session import CallSession, Recognizer
from fs_bridge.settings import BridgeSettings

#: Builds a call's recognizer: (ASR URL, call id, language, audio queue, event callback).
RecognizerFactory = Callable[
    [str, str, str, asyncio.Queue[bytes], Callable[[ServerEvent], Awaitable[None]]], Recognizer
]

log = logging.getLogger("fs_bridge")


class Bridge:
    def __init__(
        self,
        settings: BridgeSettings,
        redis: Redis,
        registry: CollectorRegistry,
        phrases: Phrases,
        *,
        event_socket: EventSocketFactory = connect_event_socket,
        recognizer: RecognizerFactory = AsrStream,
        transport: httpx.AsyncBaseTransport | None = None,
        vad: VadModel | None = None,
    ) -> None:
        """``recognizer`` and ``transport`` (the HTTP transport to the policy engine and the TTS
        gateway) are the seams tests replace; production uses the defaults. ``vad``: the shared
        speech detector every call's barge-in uses (None: level and echo guard alone)."""
        self.settings = settings
        self.vad = vad
        self.redis = redis
        self.metrics = BridgeMetrics(registry)
        self._recognizer = recognizer
        self.http = httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=2.0), transport=transport)
        self.policy = PolicyClient(settings.policy_url, self.http)
        self.tts = TtsClient(settings.tts_url, self.http)
        self.phrases = phrases
        self.calls: dict[str, CallSession] = {}
        #: Refused calls while they hear the busy phrase; never counted in ``calls``.
        self.refusing: dict[str, BusyLine] = {}
        self.load = LoadReporter(redis, settings.replica, self._load)
        self._load_task: asyncio.Task[None] | None = None
        self.esl = event_socket(
            settings.esl_host,
            settings.esl_port,
            settings.esl_password.get_secret_value(),
            self._on_event,
            self._resync,
        )
        #: Machine phrases per language: the bridge's language must have them (checked here, at
        #: start-up); another call language without them uses the bridge's.
        self._amd_phrases: dict[str, MachinePhrases] = {}
        if settings.amd:
            for language in {settings.language, "en", "ru"}:
                with contextlib.suppress(ConfigError):
                    self._amd_phrases[language] = load_amd_phrases(
                        settings.amd_phrases_file, language
                    )
            if settings.language not in self._amd_phrases:
                load_amd_phrases(
                    settings.amd_phrases_file, settings.language
                )  # raises, and says why
        self.metrics.esl_up.set_function(lambda: 1.0 if self.esl.connected.is_set() else 0.0)

    async def start(self) -> None:
        self.esl.start()
        self._load_task = asyncio.create_task(self.load.run(), name="bridge-load")

    async def close(self) -> None:
        if self._load_task is not None:
            self._load_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._load_task
            await self.load.stopped()
        await self.esl.close()
        await self.http.aclose()

    # ------------------------------------------------------------------ admission

    def _load(self) -> tuple[int, int]:
        return len(self.calls), self.settings.max_calls

    def has_room(self) -> bool:
        """Whether a new call may start; it must be added before anything is awaited, so two
        forks arriving together cannot both take the last place."""
        return len(self.calls) < self.settings.max_calls

    def add(self, call: CallSession) -> None:
        self.calls[call.call_id] = call
        self.load.changed()

    def remove(self, call_id: str) -> None:
        self.calls.pop(call_id, None)
        self.load.changed()

    async def refuse(self, busy: BusyLine) -> None:
        """A call the bridge has no room for hears the busy phrase and is hung up."""
        self.metrics.calls_refused.inc()
        log.info(
            "call refused: every line is busy",
            extra={
                "call_id": busy.call_id,
                "active": len(self.calls),
                "max_calls": self.settings.max_calls,
            },
        )
        self.refusing[busy.call_id] = busy
        try:
            await busy.run()
        finally:
            self.refusing.pop(busy.call_id, None)

    def recognizer(
        self,
        call_id: str,
        language: str,
        audio: asyncio.Queue[bytes],
        on_event: Callable[[ServerEvent], Awaitable[None]],
    ) -> Recognizer:
        return self._recognizer(self.settings.asr_url, call_id, language, audio, on_event)

    # ------------------------------------------------------------------ answering machines

    def answering_machine_detector(self, language: str) -> AnsweringMachineDetector | None:
        if not self.settings.amd:
            return None
        phrases = self._amd_phrases.get(language.split("-")[0].lower())
        if phrases is None:
            phrases = self._amd_phrases[self.settings.language]
        return AnsweringMachineDetector(AmdConfig(), phrases)

    def listening_line(self, language: str) -> str | None:
        return self.phrases.listening_text(language)

    # ------------------------------------------------------------------ the caller's voice

    def speech_detector(self) -> VadStream | None:
        return None if self.vad is None else self.vad.stream()

    def backchannels(self, language: str) -> frozenset[str]:
        return self.phrases.backchannel_words(language)

    def unfinished(self, language: str) -> frozenset[tuple[str, ...]]:
        return self.phrases.unfinished_endings(language)

    # ------------------------------------------------------------------ FreeSWITCH control

    async def control(self, command: str, *, slow: bool = True) -> str:
        """Run an API on the switch (bgapi for slow ones); a failure is logged, never raised."""
        try:
            reply = await (self.esl.bgapi(command) if slow else self.esl.api(command))
        except (AgentError, TimeoutError) as exc:
            log.warning(
                "FreeSWITCH command failed",
                extra={"command": command.split(" ")[0], "error": str(exc)},
            )
            return ""
        return reply

    async def playback(self, call_id: str, path: str) -> None:
        try:
            await self.esl.sendmsg_playback(call_id, path)
        except AgentError as exc:
            log.warning("playback command failed", extra={"call_id": call_id, "error": exc.message})

    def _on_event(self, event: Event) -> None:
        uuid = event.get("Unique-ID") or ""
        name, subclass = event.name, event.subclass
        busy = self.refusing.get(uuid)
        if busy is not None:
            if name == "CUSTOM" and subclass == "mod_audio_fork::play_audio":
                busy.on_play_audio(event.body)
            return
        call = self.calls.get(uuid)
        if call is None:
            return
        if name == "CHANNEL_HANGUP_COMPLETE":
            call.hangup_cause = event.get("Hangup-Cause")
        elif name == "DTMF":
            digit = event.get("DTMF-Digit")
            if digit:
                call.on_dtmf(digit)
        elif name == "CUSTOM" and subclass == "mod_audio_fork::play_audio":
            call.on_play_audio(event.body)
        elif name == "CUSTOM" and subclass == "avmd::beep":
            call.on_beep()

    async def _resync(self) -> None:
        """After a (re)connect: calls FreeSWITCH no longer has are over; close their forks."""
        for call_id, call in list(self.calls.items()):
            exists = await self.control(f"uuid_exists {call_id}", slow=False)
            if exists.strip() == "false":
                log.info("call gone after the Event Socket reconnected", extra={"call_id": call_id})
                call.hangup_cause = call.hangup_cause or "LOST_AFTER_RECONNECT"
                await call.ws.close(1000)

    # ------------------------------------------------------------------ call events

    async def publish(self, event: live.LiveEvent) -> None:
        """The event on calls:events; a Redis failure costs the event, never the call."""
        try:
            await live.publish(self.redis, event)
        except (RedisError, OSError) as exc:
            log.warning("could not publish a call event", extra={"error": type(exc).__name__})

    async def wait_esl(self, timeout_s: float) -> bool:
        try:
            await asyncio.wait_for(self.esl.connected.wait(), timeout_s)
        except TimeoutError:
            return False
        return True
