"""The bridge's shared parts: settings, service clients, the Event Socket, the calls in progress."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import httpx
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from redis.asyncio import Redis
from redis.exceptions import RedisError

from callkit.contracts import live
from callkit.errors import AgentError
from callkit.esl import Event
from fs_bridge.clients import PolicyClient, TtsClient
from fs_bridge.esl import EventSocketFactory, connect_event_socket
from fs_bridge.settings import BridgeSettings

if TYPE_CHECKING:
    from fs_bridge.session import CallSession

log = logging.getLogger("fs_bridge")


class BridgeMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.active = Gauge("bridge_calls_active", "Calls in progress.", registry=registry)
        self.calls = Counter(
            "bridge_calls_total", "Calls whose audio fork connected.", registry=registry
        )
        self.refused = Counter(
            "bridge_fork_refused_total",
            "Fork connections refused, by reason.",
            ["reason"],
            registry=registry,
        )
        buckets = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10)
        self.greeting = Histogram(
            "bridge_answer_to_greeting_seconds",
            "Fork connected (call answered) to the greeting's first audio sent.",
            buckets=buckets,
            registry=registry,
        )
        self.turn_first_audio = Histogram(
            "bridge_turn_first_audio_seconds",
            "Caller's final transcript to the reply's first audio sent.",
            buckets=buckets,
            registry=registry,
        )
        self.barge_ins = Counter(
            "bridge_barge_ins_total", "Agent playback stopped by the caller.", registry=registry
        )
        self.esl_up = Gauge(
            "bridge_esl_connected", "1 while the Event Socket is connected.", registry=registry
        )


class Bridge:
    def __init__(
        self,
        settings: BridgeSettings,
        redis: Redis,
        registry: CollectorRegistry,
        *,
        event_socket: EventSocketFactory = connect_event_socket,
    ) -> None:
        self.settings = settings
        self.redis = redis
        self.metrics = BridgeMetrics(registry)
        self.http = httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=2.0))
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
