"""The bridge's shared parts: settings, service clients, the Event Socket, the calls in progress."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import httpx
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis
from redis.exceptions import RedisError

from callkit.contracts import live
from callkit.contracts.asr import ServerEvent
from callkit.errors import AgentError
from callkit.esl import Event
from fs_bridge.clients import AsrStream, PolicyClient, TtsClient
from fs_bridge.esl import EventSocketFactory, connect_event_socket
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
        *,
        event_socket: EventSocketFactory = connect_event_socket,
        recognizer: RecognizerFactory = AsrStream,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """``recognizer`` and ``transport`` (the HTTP transport to the policy engine and the TTS
        gateway) are the seams tests replace; production uses the defaults."""
        self.settings = settings
        self.redis = redis
        self.metrics = BridgeMetrics(registry)
        self._recognizer = recognizer
        self.http = httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=2.0), transport=transport)
        self.policy = PolicyClient(settings.policy_url, self.http)
        self.tts = TtsClient(settings.tts_url, self.http)
        self.calls: dict[str, CallSession] = {}
        self.esl = event_socket(
            settings.esl_host,
            settings.esl_port,
            settings.esl_password.get_secret_value(),
            self._on_event,
            self._resync,
        )
        self.metrics.esl_up.set_function(lambda: 1.0 if self.esl.connected.is_set() else 0.0)

    async def start(self) -> None:
        self.esl.start()

    async def close(self) -> None:
        await self.esl.close()
        await self.http.aclose()

    def recognizer(
        self,
        call_id: str,
        language: str,
        audio: asyncio.Queue[bytes],
        on_event: Callable[[ServerEvent], Awaitable[None]],
    ) -> Recognizer:
        return self._recognizer(self.settings.asr_url, call_id, language, audio, on_event)

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
        call = self.calls.get(event.get("Unique-ID") or "")
        if call is None:
            return
        name, subclass = event.name, event.subclass
        if name == "CHANNEL_HANGUP_COMPLETE":
            call.hangup_cause = event.get("Hangup-Cause")
        elif name == "DTMF":
            digit = event.get("DTMF-Digit")
            if digit:
                call.on_dtmf(digit)
        elif name == "CUSTOM" and subclass == "mod_audio_fork::play_audio":
            call.on_play_audio(event.body)

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
